"""Implementation verification: Erlang C, conservation of cases, determinism across processes."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from sim import GovernanceModel, load_scenario, run_scenario
from sim.cases import Status


def erlang_c(lam: float, mean_service: float, c: int) -> tuple[float, float]:
    """(probability of waiting, mean wait in hours) of an M/M/c queue."""
    a = lam * mean_service
    rho = a / c
    top = a**c / math.factorial(c) / (1 - rho)
    p_wait = top / (sum(a**k / math.factorial(k) for k in range(c)) + top)
    return p_wait, p_wait * mean_service / (c - a)


@pytest.mark.parametrize(("lam", "mean_service", "servers"), [(3.0, 1.0, 4), (6.0, 0.5, 4)])
def test_queue_check_matches_erlang_c(root, lam, mean_service, servers):
    scenario = load_scenario(root / "scenarios/queue_check.yaml", [
        f"demand.fixed_rate_per_hour={lam}",
        f"demand.categories.general.service_time_median_h={mean_service}",
        f"departments.staff.prefecture={servers}",
    ])
    p_wait, mean_wait = erlang_c(lam, mean_service, servers)
    waits = []
    for seed in (11, 12, 13):
        cases = run_scenario(scenario, seed=seed, days=700, warmup_days=5).cases
        waits.append((cases["service_start_h"] - cases["dept_arrival_h"]).to_numpy())
    w = np.concatenate(waits)
    started = ~np.isnan(w)
    assert started.mean() > 0.999  # only the last minutes' arrivals are still waiting at the end
    w = w[started]
    assert len(w) > 100_000
    assert abs(w.mean() - mean_wait) / mean_wait < 0.05, (w.mean(), mean_wait)
    assert abs((w > 1e-12).mean() - p_wait) / p_wait < 0.05, ((w > 1e-12).mean(), p_wait)


@pytest.fixture(scope="module")
def zzic_model(root):
    scenario = load_scenario(root / "scenarios/zzic.yaml", ["policy.response_mandate_hours=24"])
    model = GovernanceModel(scenario, seed=5)
    model.run()
    return model


def test_conservation_every_case_in_one_state(zzic_model):
    from sim.metrics import cases_frame

    cs = zzic_model.cases
    status = cs.status[: cs.n]
    assert set(np.unique(status)) <= {s.value for s in Status}
    df = cases_frame(zzic_model)
    assert df["status"].notna().all()
    assert df["case_id"].is_unique
    # final cases are closed or abandoned; closed ones have a reply
    closed = df[df["status"] == "closed"]
    assert closed["closed_h"].notna().all()
    assert (df[df["status"] == "abandoned"]["closed_h"].isna()).all()
    # problems met = reported + not reported; every case is a first report of a problem or a repeat of one
    repeats = int((cs.repeat_of[: cs.n] >= 0).sum())
    assert zzic_model.reported.sum() + repeats == cs.n
    assert (cs.repeat_of[: cs.n] < np.arange(cs.n)).all()  # a repeat points back to an earlier case


def test_conservation_time_order(zzic_model):
    from sim.metrics import cases_frame

    df = cases_frame(zzic_model)
    c, a, f, x = (df[k].to_numpy() for k in ("created_h", "accepted_h", "first_response_h", "closed_h"))

    def le(p, q):
        both = ~np.isnan(p) & ~np.isnan(q)
        return bool((p[both] <= q[both] + 1e-9).all())

    assert le(c, a) and le(a, f) and le(f, x) and le(c, x)
    # a case cannot be answered without having been accepted
    assert not (np.isnan(a) & ~np.isnan(f)).any()


_DET_CODE = """
import sys, hashlib
from sim import load_scenario, run_scenario
s = load_scenario(sys.argv[1])
r = run_scenario(s, seed=int(sys.argv[2]), days=20)
print(hashlib.sha256(r.cases.to_csv(index=False).encode()).hexdigest())
"""


def _digest(root, seed: int) -> str:
    out = subprocess.run([sys.executable, "-c", _DET_CODE, str(root / "scenarios/zzic.yaml"), str(seed)],
                         capture_output=True, text=True, check=True, cwd=root)
    return out.stdout.strip()


def test_determinism_across_processes(root):
    a, b, c = _digest(root, 42), _digest(root, 42), _digest(root, 43)
    assert a == b
    assert a != c


def test_same_seed_same_tables_in_process(root):
    s = load_scenario(root / "scenarios/baseline.yaml")
    r1 = run_scenario(s, seed=3, days=15)
    r2 = run_scenario(s, seed=3, days=15)
    pd.testing.assert_frame_equal(r1.cases, r2.cases)
    pd.testing.assert_frame_equal(r1.timeseries, r2.timeseries)
    assert r1.summary == pytest.approx(r2.summary, nan_ok=True)


def test_run_steps_the_hours_as_mesa_step_does(root):
    """``model.run()`` steps the hours itself rather than through Mesa's event list: the same tables as hour
    after hour of ``model.step()``, Mesa's ``steps`` and ``time`` kept, and ``model.step()`` going on from where
    the run stopped (one hour per call, not a catch-up of the hours the paused schedule missed)."""
    s = load_scenario(root / "scenarios/baseline.yaml").with_overrides({"run.days": 6, "run.warmup_days": 0})
    ran, stepped = GovernanceModel(s, seed=4), GovernanceModel(s, seed=4)
    ran.run()
    while stepped.running:
        stepped.step()
    assert ran.steps == stepped.steps == ran.hour == stepped.hour == 6 * 24
    assert ran.time == stepped.time == 6 * 24
    pd.testing.assert_frame_equal(ran.result().cases, stepped.result().cases)
    pd.testing.assert_frame_equal(ran.result().timeseries, stepped.result().timeseries)
    for m in (ran, stepped):
        m.running, m.end_h = True, m.end_h + 24.0
        m.step()
        assert (m.steps, m.time, m.hour) == (6 * 24 + 1, 6 * 24 + 1, 6 * 24 + 1)
    pd.testing.assert_frame_equal(ran.result().cases, stepped.result().cases)


def test_the_departments_choose_their_order_in_one_call_as_one_by_one(root):
    """End of day: ``DepartmentTable.choose_orders`` (all departments with work, one call) leaves the departments
    as their own steps one after another do: the same uniforms drawn, the same days of serving the easiest first
    counted, the same queues re-keyed."""
    s = load_scenario(root / "scenarios/zzic.yaml").with_overrides({"run.days": 30, "run.warmup_days": 0})
    batch, single = GovernanceModel(s, seed=9), GovernanceModel(s, seed=9)
    for _ in range(10 * 24 + 13):  # into a working day: queues are long
        batch.step()
        single.step()
    t1, t2 = batch.departments, single.departments
    t1.today_sanctions[:, 4, 0] += np.arange(len(t1)) % 3  # some departments with a record of being caught
    t2.today_sanctions[:, 4, 0] += np.arange(len(t2)) % 3
    t1.learn_all()
    t2.learn_all()
    depts = np.flatnonzero((t1.waiting > 0) | t1.easy_first).tolist()
    assert len(depts) > 10
    t1.choose_orders(depts, batch)
    for d in depts:
        single.departments.agents[d].step()
    assert np.array_equal(t1.easy_first, t2.easy_first) and t1.easy_first.any() and not t1.easy_first.all()
    assert np.array_equal(t1.today_committed, t2.today_committed)
    assert batch.rng_departments.random() == single.rng_departments.random()
    assert np.array_equal(t1.queues._mode_now, t2.queues._mode_now)
    assert np.array_equal(t1.queues.heap, t2.queues.heap)
