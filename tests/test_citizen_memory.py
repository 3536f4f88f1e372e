"""Requesters' memory (trust and efficacy relax toward each one's disposition, lazily), the trust term of the
reporting rule, and the cost and risk of escalating (sim/citizens.py, ``Population``).

Each test builds a small model that is never stepped and calls the population's rules directly, with explicit
times in hours since the start.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from sim.model import GovernanceModel
from sim.scenario import Scenario, ScenarioError

BASE: dict[str, Any] = {"world.population": 2000, "world.counties": 1, "world.townships": 2, "run.days": 5}


def make(overrides: dict[str, Any] | None = None) -> GovernanceModel:
    return GovernanceModel(Scenario().with_overrides({**BASE, **(overrides or {})}), seed=1)


def learn(m: GovernanceModel, who: np.ndarray, satisfied: bool | np.ndarray, resolved: bool | np.ndarray,
          now: float | None = None) -> None:
    k = len(who)
    m.population.learn(np.asarray(who, dtype=np.int64), np.broadcast_to(satisfied, (k,)).astype(bool),
                       np.broadcast_to(resolved, (k,)).astype(bool), np.zeros(k, dtype=np.int8), now=now)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# ------------------------------------------------------------------------------------------ memory
def test_trust_and_efficacy_relax_toward_the_disposition_with_the_memory_time_constant():
    m = make({"citizens.trust_memory_days": 10.0, "citizens.trust_learning_rate": 0.5,
              "citizens.efficacy_learning_rate": 0.5})
    p = m.population
    tau = 10.0 * 24.0
    who = np.array([3, 500, 1999])
    t0, e0 = p.trust0[who].copy(), p.efficacy0[who].copy()
    np.testing.assert_array_equal(t0, p.trust[who])  # the disposition is the value drawn at set-up
    learn(m, who, False, False, now=100.0)
    after_t = t0 + 0.5 * (0.0 - t0)  # nothing to relax yet: still at the disposition when the experience came
    after_e = e0 + 0.5 * (0.0 - e0)
    np.testing.assert_allclose(p.trust_at(who, 100.0), after_t, rtol=0, atol=1e-12)
    stored = p.trust.copy()
    for dt in (1.0, tau, 3.0 * tau):
        np.testing.assert_allclose(p.trust_at(who, 100.0 + dt), t0 + (after_t - t0) * math.exp(-dt / tau),
                                   rtol=0, atol=1e-12)
        np.testing.assert_allclose(p.efficacy_at(who, 100.0 + dt), e0 + (after_e - e0) * math.exp(-dt / tau),
                                   rtol=0, atol=1e-12)
    np.testing.assert_array_equal(p.trust, stored)  # reading is lazy: it stores nothing
    # one time constant later: 1/e of the way back (a regression here would show a linear drift or no return)
    gap = (p.trust_at(who, 100.0 + tau) - t0) / (after_t - t0)
    np.testing.assert_allclose(gap, math.exp(-1.0), rtol=1e-12)
    # the next experience starts from the relaxed value, read from the model's clock when no time is given
    m.hour = int(100 + tau)
    relaxed = t0 + (after_t - t0) * math.exp(-1.0)
    learn(m, who, True, True)
    np.testing.assert_allclose(p.trust[who], relaxed + 0.5 * (1.0 - relaxed), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(p.t_set[who], 100.0 + tau)
    untouched = np.setdiff1d(np.arange(p.n), who)
    assert (p.t_set[untouched] == 0.0).all()  # nobody else was visited


def test_the_running_mean_equals_the_brute_force_mean_after_learns_and_spreads():
    for memory in (5.0, 0.01):  # 0.01 days = 0.24 h: the runs below pass 300 time constants (a rebase)
        m = make({"citizens.trust_memory_days": memory, "citizens.social_influence": 0.5,
                  "citizens.trust_learning_rate": 0.3})
        p = m.population
        rng = np.random.default_rng(7)
        everyone = np.arange(p.n)
        for day in range(10):
            for hour in (8.5, 13.0, 17.25):
                now = day * 24.0 + hour
                who = rng.integers(0, p.n, 150)  # with repeats: several outcomes for one person at once
                learn(m, who, rng.random(150) < 0.4, rng.random(150) < 0.5, now=now)
                assert abs(p.mean_trust(now) - p.trust_at(everyone, now).mean()) < 1e-9
            p.spread_trust(now=day * 24.0 + 23.0)
            end = (day + 1) * 24.0
            assert abs(p.mean_trust(end) - p.trust_at(everyone, end).mean()) < 1e-9
            assert abs(p.mean_efficacy(end) - p.efficacy_at(everyone, end).mean()) < 1e-9
        # the experiences moved the mean (else the check above would prove nothing)
        if memory == 5.0:
            assert abs(p.mean_trust(240.0) - p.trust0.mean()) > 1e-3
        else:
            assert p._t_ref > 0.0  # the sums were rebased
            assert abs(p.mean_trust(240.0 + 100 * 0.24) - p.trust0.mean()) < 1e-12  # fully relaxed back


def test_trust_and_efficacy_stay_within_zero_and_one():
    m = make({"citizens.trust_memory_days": 1.0, "citizens.trust_learning_rate": 1.0,
              "citizens.efficacy_learning_rate": 1.0, "citizens.social_influence": 1.0,
              "citizens.heterogeneity": 0.5})
    p = m.population
    rng = np.random.default_rng(3)
    everyone = np.arange(p.n)
    for day in range(6):
        for k in range(4):
            now = day * 24.0 + 6.0 * k
            who = rng.integers(0, p.n, 400)
            good = bool((day + k) % 2)
            learn(m, who, good, good, now=now)
        p.spread_trust(now=day * 24.0 + 23.0)
        for t in (day * 24.0 + 23.0, day * 24.0 + 500.0):
            for x in (p.trust_at(everyone, t), p.efficacy_at(everyone, t)):
                assert x.min() >= 0.0 and x.max() <= 1.0
            assert 0.0 <= p.mean_trust(t) <= 1.0 and 0.0 <= p.mean_efficacy(t) <= 1.0
    assert p.trust.min() == 0.0 and p.trust.max() == 1.0  # the clipping was exercised


@pytest.mark.parametrize("memory", [1e12, math.inf])
def test_a_very_long_memory_means_no_relaxation(memory: float):
    m = make({"citizens.trust_memory_days": memory, "citizens.trust_learning_rate": 0.2,
              "citizens.efficacy_learning_rate": 0.3, "citizens.social_influence": 0.0})
    p = m.population
    who = np.array([10, 11, 12])
    trust, efficacy = p.trust[who].copy(), p.efficacy[who].copy()
    for now, good in ((10.0, False), (2000.0, True), (9000.0, False)):  # the old rule, by hand
        learn(m, who, good, good, now=now)
        trust += 0.2 * (float(good) - trust)
        efficacy += 0.3 * (float(good) - efficacy)
    tol = 1e-12 if math.isinf(memory) else 1e-6  # 1e12 days: a drift of about t/τ ≈ 4e-8 per unit of gap
    for t in (9000.0, 1e6):
        np.testing.assert_allclose(p.trust_at(who, t), trust, rtol=0, atol=tol)
        np.testing.assert_allclose(p.efficacy_at(who, t), efficacy, rtol=0, atol=tol)
        assert abs(p.mean_trust(t) - p.trust.mean()) < tol
        assert abs(p.mean_efficacy(t) - p.efficacy.mean()) < tol
    # the default memory, by contrast, does relax
    d = make({"citizens.trust_learning_rate": 0.2})
    learn(d, who, False, False, now=10.0)
    assert (np.abs(d.population.trust_at(who, 1e6) - d.population.trust0[who]) < 1e-9).all()


def test_memory_must_be_positive():
    for bad in (0.0, -1.0):
        with pytest.raises(ScenarioError):
            Scenario().with_overrides({"citizens.trust_memory_days": bad})


# ------------------------------------------------------------------------------------------ reporting
def _reports(trust: float, weight: float, k: int = 20000) -> tuple[np.ndarray, np.ndarray]:
    """Report decisions of k problems (severity 0.5, hotline) of requesters with the given trust (and
    disposition), efficacy 0.6, from the same random draws; and the rule's probabilities by hand."""
    m = make({"citizens.report_trust_weight": weight})
    p = m.population
    p.trust[:] = p.trust0[:] = trust
    p.efficacy[:] = p.efficacy0[:] = 0.6
    who = np.arange(k) % p.n
    sev = np.full(k, 0.5)
    rep = p.report(who, sev, np.full(k, 1, dtype=np.int8), np.random.default_rng(11), now=50.0)
    c = m.settings.citizens
    prob = sigmoid((0.5 * 0.6 + weight * (trust - 0.5) - c.channel_cost_hotline - c.report_threshold)
                   / c.report_noise)
    return rep, np.full(k, prob)


def test_higher_trust_raises_the_chance_to_report():
    low, p_low = _reports(0.2, 0.2)
    high, p_high = _reports(0.9, 0.2)
    assert (high >= low).all()                   # paired draws: whoever reports with low trust does with high
    assert high.sum() > low.sum() + 500          # and clearly more do
    for rep, prob in ((low, p_low), (high, p_high)):  # the rule's probability, within 4 standard errors
        se = math.sqrt(prob[0] * (1 - prob[0]) / len(rep))
        assert abs(rep.mean() - prob[0]) < 4 * se
    # without the weight, trust does not matter
    a, _ = _reports(0.2, 0.0)
    b, _ = _reports(0.9, 0.0)
    np.testing.assert_array_equal(a, b)


def test_report_reads_relaxed_efficacy():
    m = make({"citizens.trust_memory_days": 1.0, "citizens.report_trust_weight": 0.0,
              "citizens.efficacy_learning_rate": 1.0})
    p = m.population
    who = np.arange(2000)
    p.efficacy0[:] = 0.9
    p.efficacy[:] = 0.9
    learn(m, who, False, False, now=0.0)  # efficacy → 0 now, back toward 0.9 within days
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    sev, ch = np.full(2000, 0.8), np.full(2000, 0, dtype=np.int8)
    soon = p.report(who, sev, ch, rng_a, now=1.0)
    later = p.report(who, sev, ch, rng_b, now=24.0 * 10)
    assert later.sum() > soon.sum() + 300 and (later >= soon).all()


# ------------------------------------------------------------------------------------------ escalation
def _cases(m: GovernanceModel, k: int) -> np.ndarray:
    """k open cases of category 0 by the first k requesters (no threats)."""
    return m.cases.add(citizen=np.arange(k) % m.population.n, category=np.zeros(k, dtype=np.int64),
                       created=np.zeros(k))


def _escalations(cost: float, k: int = 20000) -> tuple[np.ndarray, float]:
    m = make({"citizens.escalation_cost": cost, "citizens.escalation_threshold": 0.2})
    ids = _cases(m, k)
    p = m.population
    esc = p.escalate(ids, np.random.default_rng(13), now=10.0)
    sev = m.demand.category_severity[0]
    c = m.settings.citizens
    g = sev * (1.0 - p.trust_at(m.cases.citizen[ids], 10.0))
    prob = float(sigmoid((g - cost - c.escalation_threshold) / c.escalation_noise).mean())
    return esc, prob


def test_the_cost_of_escalating_lowers_the_chance_to_escalate():
    free, p_free = _escalations(0.0)
    costly, p_costly = _escalations(0.15)
    assert (costly <= free).all()             # paired draws: the cost only ever holds people back
    assert costly.sum() < free.sum() - 500
    for esc, prob in ((free, p_free), (costly, p_costly)):
        se = math.sqrt(prob * (1 - prob) / len(esc))
        assert abs(esc.mean() - prob) < 4 * se


def test_escalation_reads_relaxed_trust():
    m = make({"citizens.trust_memory_days": 1.0, "citizens.trust_learning_rate": 1.0,
              "citizens.escalation_threshold": 0.2, "citizens.escalation_cost": 0.0})
    p = m.population
    p.trust[:] = p.trust0[:] = 0.9
    ids = _cases(m, 2000)
    learn(m, m.cases.citizen[ids], False, False, now=0.0)  # trust → 0: a strong grievance, fading
    soon = p.escalate(ids, np.random.default_rng(2), now=1.0)
    later = p.escalate(ids, np.random.default_rng(2), now=240.0)
    assert soon.sum() > later.sum() + 300 and (later <= soon).all()


def test_dismissed_escalations_hit_the_set_share():
    m = make({"citizens.escalation_risk": 0.3})
    ids = np.arange(40000)
    d = m.population.dismissed(ids, np.random.default_rng(17))
    assert d.dtype == bool and d.shape == ids.shape
    assert abs(d.mean() - 0.3) < 4 * math.sqrt(0.3 * 0.7 / len(ids))
    # the draws come from the caller's stream: the same stream, the same dismissals
    np.testing.assert_array_equal(d, m.population.dismissed(ids, np.random.default_rng(17)))
    assert m.population.dismissed(ids[:0], np.random.default_rng(17)).shape == (0,)
    rng = np.random.default_rng(4)
    state = rng.bit_generator.state
    none = make({"citizens.escalation_risk": 0.0}).population.dismissed(ids, rng)
    assert not none.any() and rng.bit_generator.state == state  # no risk: no draws
    assert make({"citizens.escalation_risk": 1.0}).population.dismissed(ids, rng).all()


def test_new_settings_have_their_documented_defaults():
    c = Scenario().citizens
    assert (c.trust_memory_days, c.report_trust_weight, c.escalation_cost, c.escalation_risk) == \
        (90.0, 0.2, 0.05, 0.1)


def test_the_running_sums_do_not_depend_on_the_number_of_blas_threads():
    """The running sums of trust and efficacy add a day's changes over many requesters at once (tens of
    thousands in a city of a million). BLAS would split such a dot product across threads, and the last
    bits of the sum would then depend on how many; the model's sums must come out the same either way."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = ("import numpy as np; from sim.citizens import _weighted_sum; rng = np.random.default_rng(4); "
            "d = rng.normal(size=200_000); w = np.exp(rng.normal(size=200_000)); "
            "print(repr(_weighted_sum(d, w)))")
    root = Path(__file__).resolve().parents[1]
    out = []
    for threads in ("1", "2", "4"):
        env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads,
               "MKL_NUM_THREADS": threads, "PYTHONPATH": str(root)}
        run = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True,
                             check=True)
        out.append(float(run.stdout))
    assert out[0] == out[1] == out[2]
    from sim.citizens import _weighted_sum

    rng = np.random.default_rng(4)
    d, w = rng.normal(size=200_000), np.exp(rng.normal(size=200_000))
    assert math.isclose(_weighted_sum(d, w), math.fsum((d * w).tolist()), rel_tol=1e-12)  # and it is the sum
