"""Accountability as mechanisms: observers with capacity catch violations, catches move beliefs, beliefs move
choices — and a lever that nobody enforces changes nothing. Seeded, paired runs of the default city."""

from __future__ import annotations

import numpy as np
import pytest

from sim import GovernanceModel, load_scenario
from sim.cases import Action, Status, Violation

#: every observer off: no tracking, no call-backs, no inspections (the city's or the province's), no ranking,
#: requesters never escalate
UNOBSERVED = {"policy.tracking": False, "policy.callback": False, "policy.supervision_intensity": 0,
              "policy.upper_supervision_intensity": 0, "policy.public_ranking": False,
              "citizens.escalation_threshold": 100.0}
COMPARED = ("first_response", "replied", "status", "true_resolved", "recorded_resolved", "action", "perfunctory")


def _model(root, overrides: dict, seed: int, days: float) -> GovernanceModel:
    sc = load_scenario(root / "scenarios" / "default.yaml").with_overrides({**overrides, "run.days": days})
    m = GovernanceModel(sc, seed=seed)
    m.run()
    return m


def _rates(m: GovernanceModel, first_day: float, last_day: float) -> tuple[float, float]:
    """(response rate, true resolution rate of final cases) over cases created in [first_day, last_day)."""
    cs = m.cases
    created = cs.created[: cs.n]
    ids = np.flatnonzero((created >= first_day * 24) & (created < last_day * 24))
    st = cs.status[ids]
    final = (st == Status.CLOSED) | (st == Status.ABANDONED)
    return float(np.mean(~np.isnan(cs.first_response[ids]))), float(cs.true_resolved[ids][final].mean())


def _same_tables(a: GovernanceModel, b: GovernanceModel) -> bool:
    if a.cases.n != b.cases.n:
        return False
    n = a.cases.n
    return all(np.array_equal(getattr(a.cases, f)[:n], getattr(b.cases, f)[:n], equal_nan=True) for f in COMPARED)


def test_a_mandate_nobody_observes_fades_away(root):
    """Departments first sign for cases at once under a mandate (their prior expects sanctions); with no
    observer they learn that nobody looks, and the mandate's effect decays toward zero."""
    early, late = [], []
    for seed in (1, 2, 3):
        off = _model(root, {**UNOBSERVED, "policy.response_mandate_hours": None}, seed, 180)
        on = _model(root, {**UNOBSERVED, "policy.response_mandate_hours": 24}, seed, 180)
        r0a, r1a = _rates(off, 0, 30)[0], _rates(on, 0, 30)[0]
        (r0b, t0b), (r1b, t1b) = _rates(off, 120, 180), _rates(on, 120, 180)
        early.append(r1a - r0a)
        late.append((r1b - r0b, t1b - t0b))
    assert np.mean(early) > 0.003, early  # at first the prior makes departments sign
    for d_resp, d_true in late:
        assert abs(d_resp) <= 0.005 and abs(d_true) <= 0.005, late
    assert np.mean([d for d, _ in late]) < 0.5 * np.mean(early)


def test_with_no_prior_an_unobserved_mandate_changes_nothing(root):
    base = {**UNOBSERVED, "departments.prior_strength": 0.0}
    off = _model(root, {**base, "policy.response_mandate_hours": None}, 5, 40)
    on = _model(root, {**base, "policy.response_mandate_hours": 24}, 5, 40)
    assert _same_tables(off, on)


def test_a_ranking_without_consequences_changes_nothing(root):
    ranked = _model(root, {"policy.public_ranking": True, "supervision.ranking_bottom_sanction": 0.0}, 6, 65)
    plain = _model(root, {"policy.public_ranking": False}, 6, 65)
    assert ranked.rankings, "the ranking must have been computed"
    assert _same_tables(ranked, plain)
    # with consequences the same ranking changes what departments do
    biting = _model(root, {"policy.public_ranking": True, "supervision.ranking_bottom_sanction": 20.0}, 6, 65)
    assert not _same_tables(biting, plain)


def test_an_inspection_budget_bounds_what_supervision_catches(root):
    m = _model(root, {"policy.supervision_intensity": 2.5, "policy.upper_supervision_intensity": 0}, 7, 30)
    per_day = np.array([row["inspections"] for row in m.daily])
    assert per_day.max() <= 3 and per_day.mean() == pytest.approx(2.5, abs=0.5)
    assert m.supervisor.inspections + m.supervisor.audits == per_day.sum()
    cs = m.cases
    looked_at = ~np.isnan(cs.inspected_at[: cs.n]) | cs.audited[: cs.n]
    assert 0 < looked_at.sum() <= per_day.sum()


def test_the_callback_budget_bounds_the_calls(root):
    m = _model(root, {"platform.callback_hours_per_day": 0.5, "platform.callback_minutes": 6.0}, 8, 20)
    calls = np.array([row["callbacks"] for row in m.daily])
    assert calls.max() == 5  # 0.5 h a day at 6 minutes a call, and there is more to call than that
    assert 0 < m.cases.surveyed[: m.cases.n].sum() <= calls.sum()  # a reopened case may be called twice


def test_caught_violations_raise_the_expected_sanction_and_uncaught_ones_lower_it(root):
    m = GovernanceModel(load_scenario(root / "scenarios" / "default.yaml"), seed=1)
    t = m.departments
    d, plain = np.array([0]), np.array([False])
    before = float(t.expected_sanction(d, Violation.PERFUNCTORY, plain)[0])
    t.commit(np.array([0, 0]), Violation.PERFUNCTORY, np.array([False, False]))
    t.catch(d, Violation.PERFUNCTORY, plain, 3.0)
    t.learn(0)
    caught = float(t.expected_sanction(d, Violation.PERFUNCTORY, plain)[0])
    assert caught > before
    t.commit(np.zeros(20, dtype=np.int64), Violation.PERFUNCTORY, np.zeros(20, bool))
    t.learn(0)
    assert float(t.expected_sanction(d, Violation.PERFUNCTORY, plain)[0]) < caught
    # other departments and kinds are untouched
    assert float(t.expected_sanction(np.array([1]), Violation.PERFUNCTORY, plain)[0]) == pytest.approx(before)


def test_a_higher_expected_sanction_makes_the_violation_rarer(root):
    m = GovernanceModel(load_scenario(root / "scenarios" / "default.yaml"), seed=2)
    cs = m.cases
    k = 4000
    ids = cs.add(category=np.zeros(k, np.int8), region=np.zeros(k, np.int32), created=np.zeros(k),
                 due=np.full(k, 100.0), dept=np.full(k, int(m.hierarchy.handler[0, 0]), np.int32),
                 status=np.full(k, Status.IN_TRANSIT, np.int8))
    share = []
    for sanction in (0.0, 2.0):
        t = m.departments
        t.sanctions[:, int(Violation.PERFUNCTORY), :] = sanction * t.committed[:, int(Violation.PERFUNCTORY), :]
        action = m.choice.decide(ids, np.random.default_rng(0))
        share.append(np.mean(action == Action.PERFUNCTORY))
    assert share[0] > 0.05 and share[1] < 0.5 * share[0], share


def test_an_audit_finds_perfunctory_replies_and_reopens_them(root):
    """A city where perfunctory replies pay: with an audit budget and no overdue cases to use it on first,
    audits find some of them; the department is sanctioned and the case reopened under an order."""
    over = {"departments.perfunctory_effort": 0.0, "departments.prior_strength": 0.0, "policy.callback": False,
            "policy.supervision_intensity": 40, "supervision.audit_accuracy": 1.0}
    m = _model(root, over, 9, 30)
    assert m.supervisor.audits > 0 and m.supervisor.audit_finds > 0
    cs = m.cases
    reopened_by_audit = cs.audited[: cs.n] & (cs.supervision_level[: cs.n] >= 2) & cs.reopened[: cs.n]
    assert reopened_by_audit.sum() > 0


def test_a_cherry_picking_department_serves_the_shortest_cases_first():
    from sim.calendar import WorkCalendar
    from sim.queues import QueueBank

    cal = WorkCalendar("2024-01-01", [], 10)
    bank = QueueBank(np.array([1]), True, cal)
    service = np.array([5.0, 3.0, 1.0, 2.0])
    due, boost = np.full(4, 100.0), np.zeros(4, np.int8)
    q = np.zeros(4, dtype=np.int64)
    first = bank.run(0.05, q, np.arange(4), np.array([0.0, 0.1, 0.2, 0.3]), service, due, boost)
    assert first[0].tolist() == [0]  # case 0 starts; 1-3 arrive later and wait
    assert len(bank.run(0.5, q[:0], q[:0], np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0, np.int8))[0]) == 0
    bank.set_easy_first(0, True, due, boost)  # the waiting cases are re-keyed: shortest first
    rest = bank.run(20.0, q[:0], q[:0], np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0, np.int8))
    order = [*first[0].tolist(), *rest[0].tolist()]
    assert order == [0, 2, 3, 1]


def test_an_inspection_catches_a_case_passed_over_by_cherry_picking(root):
    m = _model(root, {"departments.cherry_gain": 50.0, "departments.prior_strength": 0.0,
                      "policy.supervision_intensity": 30}, 10, 40)
    t = m.departments
    assert np.array([row["cherry_picking"] for row in m.daily]).sum() > 0
    caught = t.caught[:, int(Violation.CHERRY), 0]
    committed = t.committed[:, int(Violation.CHERRY), 0]
    assert committed.sum() > 0 and 0 < caught.sum()
    assert (t.expected_sanction(np.arange(len(t)), Violation.CHERRY, np.zeros(len(t), bool)) > 0).any()
