"""Each policy lever on its own (sim/levers.py), how the model wires the levers in, and the rule that only the
levers read the policy settings."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from sim.cases import Status
from sim.levers import (
    CallBack,
    Inspection,
    Levers,
    PublicRanking,
    ResponseMandate,
    SystemicFix,
    Tracking,
    always_open,
)
from sim.model import GovernanceModel
from sim.scenario import DispatchMode, Hours, Scenario

SIM = Path(__file__).resolve().parents[1] / "sim"

LEVER_CLASSES = (ResponseMandate, Tracking, CallBack, Inspection, PublicRanking, SystemicFix, Levers)

#: a tiny city for the wiring tests (built, never stepped)
TINY = {"world.population": 200, "world.counties": 3, "world.townships": 6, "run.days": 5}


def test_always_open_tells_the_two_hours_apart():
    assert always_open(Hours.ALWAYS) is True
    assert always_open(Hours.OFFICE) is False
    assert always_open(Hours("7x24")) is True


def test_no_lever_carries_a_detection_constant():
    for cls in LEVER_CLASSES:
        names = [f.name for f in dataclasses.fields(cls)]
        assert not [n for n in names if "detect" in n], f"{cls.__name__} has a detection field: {names}"
        assert not hasattr(cls, "expected_detection"), cls.__name__


def test_mandate_sets_a_sign_for_deadline_from_creation():
    m = ResponseMandate(hours=24.0)
    assert m.active
    assert m.deadline(np.array([0.0, 3.5, 100.0])).tolist() == [24.0, 27.5, 124.0]
    off = ResponseMandate(hours=None)
    assert not off.active and off.deadline(np.array([0.0])) is None


def test_mandate_flags_only_unsigned_cases_past_the_deadline():
    m = ResponseMandate(hours=24.0)
    created = np.array([0.0, 0.0, 10.0, 0.0])
    first = np.array([np.nan, 5.0, np.nan, np.nan])
    # at 30 h: case 0 unsigned for 30 h (late), case 1 signed, case 2 unsigned for 20 h, case 3 late
    assert m.unsigned_past_deadline(created, first, 30.0).tolist() == [True, False, False, True]
    assert m.unsigned_past_deadline(created, first, 24.0).tolist() == [False, False, False, False]
    off = ResponseMandate(hours=None)
    assert not off.unsigned_past_deadline(created, first, 1e6).any()
    assert len(off.unsigned_past_deadline(created, first, 1e6)) == 4


def test_tracking_reminds_lead_hours_before_due_but_not_before_the_first_hour():
    t = Tracking(on=True, lead_h=24.0)
    when = t.reminder_times(np.array([100.0, 30.0, 10.0]), np.array([0.0, 0.0, 5.0]))
    assert when.tolist() == [76.0, 6.0, 6.0]
    assert Tracking(on=True, lead_h=0.0).reminder_times(np.array([100.0]), np.array([0.0])).tolist() == [100.0]
    assert Tracking(on=False, lead_h=24.0).reminder_times(np.array([100.0]), np.array([0.0])) is None


def test_callback_reopening_counts_against_the_limit():
    cb = CallBack(on=True, reopen_allowed=True, max_reopens=2)
    assert cb.may_reopen(np.array([0, 1, 2, 3])).tolist() == [True, True, False, False]
    assert CallBack(on=True, reopen_allowed=True, max_reopens=0).may_reopen(np.array([0, 1])).tolist() == [False] * 2
    assert CallBack(on=True, reopen_allowed=False, max_reopens=2).may_reopen(np.array([0])) is None


def test_inspections_round_the_fraction_at_random_with_the_right_mean():
    rng = np.random.default_rng(3)
    whole = Inspection(intensity=4.0)
    assert {whole.inspections_today(rng) for _ in range(50)} == {4}
    assert {Inspection(intensity=0.0).inspections_today(rng) for _ in range(50)} == {0}
    frac = Inspection(intensity=2.3)
    draws = np.array([frac.inspections_today(rng) for _ in range(20_000)])
    assert set(draws.tolist()) == {2, 3}
    assert draws.mean() == pytest.approx(2.3, abs=0.02)


def test_inspections_draw_once_every_day_whatever_the_budget():
    """One draw a day, even for a whole budget: changing the budget does not shift the other draws."""
    for k in (0.0, 4.0, 2.3):
        rng, ref = np.random.default_rng(7), np.random.default_rng(7)
        Inspection(intensity=k).inspections_today(rng)
        ref.random()
        assert rng.random() == ref.random()


def test_ranking_falls_due_at_the_end_of_every_period():
    r = PublicRanking(on=True, period_days=30)
    assert [d for d in range(100) if r.due(d)] == [29, 59, 89]
    assert [d for d in range(20) if PublicRanking(on=True, period_days=7).due(d)] == [6, 13]
    assert not any(PublicRanking(on=False).due(d) for d in range(100))


def test_systemic_fix_triggers_past_threshold_and_not_while_in_force():
    f = SystemicFix(on=True, threshold=5, window_days=30, effect=0.4, duration_days=90)
    counts = np.array([[5, 4], [9, 6]])
    fix_until = np.array([[-1.0, -1.0], [50.0, -1.0]])  # cell (1, 0) has a fix in force until day 50
    assert f.triggered(counts, fix_until, day=10).tolist() == [[True, False], [False, True]]
    assert f.triggered(counts, fix_until, day=50).tolist() == [[True, False], [False, True]]  # still in force
    assert f.triggered(counts, fix_until, day=51).tolist() == [[True, False], [True, True]]
    assert f.rate_factor(fix_until, day=10).tolist() == [[1.0, 1.0], [0.6, 1.0]]
    assert f.rate_factor(fix_until, day=50).tolist() == [[1.0, 1.0], [0.6, 1.0]]  # the last day still counts
    assert f.rate_factor(fix_until, day=51).tolist() == [[1.0, 1.0], [1.0, 1.0]]
    assert SystemicFix(False, 5, 30, 0.4, 90).triggered(counts, fix_until, day=10) is None


def test_levers_from_scenario_map_every_policy_setting():
    sc = Scenario().with_overrides({
        "policy.response_mandate_hours": 24, "policy.tracking": True, "policy.reminder_lead_h": 12.0,
        "policy.callback": False, "policy.reopen_allowed": False, "policy.max_reopens": 3,
        "policy.public_ranking": True, "policy.supervision_intensity": 5, "policy.county_supervision_intensity": 1.5,
        "policy.upper_supervision_intensity": 0.5,
        "policy.dispatch_mode": "direct", "policy.platform_hours": "office",
        "policy.systemic_fix": True, "policy.systemic_fix_threshold": 7, "policy.systemic_fix_window_days": 14,
        "policy.systemic_fix_effect": 0.25, "policy.systemic_fix_duration_days": 60})
    lv = Levers.from_scenario(sc)
    assert lv == Levers(
        mandate=ResponseMandate(24.0), tracking=Tracking(True, 12.0), callback=CallBack(False, False, 3),
        inspection=Inspection(5.0), county_inspection=Inspection(1.5), upper_inspection=Inspection(0.5),
        ranking=PublicRanking(True, 30),
        systemic_fix=SystemicFix(True, 7, 14, 0.25, 60), dispatch_mode=DispatchMode.DIRECT,
        platform_always_open=False)
    off = Levers.from_scenario(sc.with_overrides({
        "policy.response_mandate_hours": None, "policy.tracking": False, "policy.public_ranking": False,
        "policy.supervision_intensity": 0, "policy.county_supervision_intensity": 0, "policy.systemic_fix": False,
        "policy.platform_hours": "7x24"}))
    assert not off.mandate.active and not off.tracking.on and not off.ranking.on and not off.systemic_fix.on
    assert off.inspection.intensity == 0.0 and off.county_inspection.intensity == 0.0
    assert off.platform_always_open
    # the defaults: no mandate, tracking, call-backs, the city's inspections only
    d = Levers.from_scenario(Scenario())
    assert not d.mandate.active and d.tracking.on and d.callback.on
    assert d.inspection.intensity == 20.0 and d.county_inspection.intensity == 0.0


def test_county_inspection_gives_every_county_its_own_office():
    m = GovernanceModel(Scenario().with_overrides({**TINY, "policy.county_supervision_intensity": 1.5}), seed=1)
    city, *counties, province = m.supervisors
    assert city is m.supervisor and city.county is None and city.budget == Inspection(20.0)
    assert [o.county for o in counties] == [0, 1, 2]
    assert all(o.budget is m.levers.county_inspection and o.budget.intensity == 1.5 for o in counties)
    assert province is m.upper_supervisor and m.upper_supervisor.budget == Inspection(1.0)
    # each county office inspects the overdue cases of its own departments only; the city's office, all of them
    t = m.departments
    n = len(t)
    ids = m.cases.add(dept=np.arange(n), status=np.full(n, int(Status.NEGLECTED)), created=np.zeros(n),
                      due=np.zeros(n))
    above = t.level[np.arange(n)] < 2  # provincial and central departments: the province's office, not the city's
    assert above.any()
    assert sorted(city.candidates(10.0).tolist()) == ids[~above].tolist()
    assert sorted(province.candidates(10.0).tolist()) == ids[above].tolist()
    for o in counties:
        mine = o.candidates(10.0)
        assert len(mine) > 0 and (t.county[m.cases.dept[mine]] == o.county).all()
    assert sorted(np.concatenate([o.candidates(10.0) for o in counties]).tolist()) == ids[t.county >= 0].tolist()
    assert (t.county == -1).any()  # the city's own bureaus belong to no county
    m = GovernanceModel(Scenario().with_overrides({**TINY, "policy.county_supervision_intensity": 0.0,
                                                   "policy.upper_supervision_intensity": 0.0}), seed=1)
    assert m.supervisors == [m.supervisor]


def test_the_ranking_is_published_when_it_falls_due():
    for on in (True, False):
        m = GovernanceModel(Scenario().with_overrides({**TINY, "policy.public_ranking": on,
                                                       "policy.supervision_intensity": 0.0}), seed=1)
        for day in range(30):
            m.end_of_day(day)
        assert [day for day, _ in m.rankings] == ([29] if on else [])


def _policy_reads(path: Path) -> list[int]:
    """Lines of ``path`` that read an attribute of something called ``policy`` (``x.policy.field``,
    ``policy.field``) or bind ``pol`` to it."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "policy":
            lines.append(node.lineno)
        elif isinstance(node, ast.Name) and node.id in ("policy", "pol") and isinstance(node.ctx, ast.Load):
            lines.append(node.lineno)
    return lines


def test_only_the_levers_read_the_policy_settings():
    """Mechanisms ask a lever; nothing in sim/ but levers.py (and the scenario schema) reads ``policy``."""
    allowed = {"levers.py", "scenario.py"}
    offenders = {p.name: _policy_reads(p) for p in sorted(SIM.glob("*.py")) if p.name not in allowed}
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"policy settings read outside sim/levers.py (file: lines): {offenders}"
    assert _policy_reads(SIM / "levers.py"), "the check must see the reads in levers.py itself"


@pytest.mark.parametrize("compiled", [False, True], ids=["plain", "compiled"])
def test_supervision_candidates_kernel_keeps_what_the_rules_keep(compiled):
    """Both kernel copies against the tests written out with numpy, on random open cases: skipped statuses, the top of the ladder, inspections within 24 h (and never: NaN), departments of another office
    and cases no department holds (−1), NaN due times, reopened cases at level 0 and above."""
    from sim.jit import kernels

    k = kernels(compiled)
    rng = np.random.default_rng(3)
    n, n_dept, now = 5_000, 40, 500.0
    status = rng.integers(0, len(Status), n).astype(np.int8)
    level = rng.integers(0, 4, n).astype(np.int8)
    due = np.where(rng.random(n) < 0.1, np.nan, rng.uniform(0, 1_000, n))
    reopened = rng.random(n) < 0.2
    inspected_at = np.where(rng.random(n) < 0.5, np.nan, rng.uniform(400, 520, n))
    dept = rng.integers(-1, n_dept, n).astype(np.int32)
    mine = rng.random(n_dept) < 0.5
    r = np.flatnonzero(status < Status.CLOSED)  # the open cases
    ids, past = k.supervision_candidates(r, now, status, level, due, reopened, inspected_at, dept, mine,
                                         int(Status.AWAITING_CALLBACK), int(Status.AWAITING_INTAKE))
    st = status[r]
    want = r[(st != Status.AWAITING_CALLBACK) & (st != Status.AWAITING_INTAKE)
             & (level[r] < 3) & ~(inspected_at[r] >= now - 24.0) & mine[dept[r]]]
    assert ids.tolist() == want.tolist() and 0 < len(want) < len(r)
    assert past.tolist() == ((due[want] < now) | (reopened[want] & (level[want] == 0))).tolist()
    assert past.any() and not past.all()


def test_first_in_order_is_the_head_of_a_stable_argsort():
    from sim.supervisors import first_in_order

    rng = np.random.default_rng(11)
    for n in (0, 1, 2, 5, 50, 1_000):
        for key in (rng.normal(size=n), rng.integers(0, 4, n) * 1.0, np.where(rng.random(n) < 0.3, np.nan,
                                                                              rng.integers(0, 3, n) * 1.0),
                    np.where(rng.random(n) < 0.5, -0.0, 0.0), np.full(n, np.nan)):
            want = np.argsort(key, kind="stable")
            for limit in (None, 0, 1, 2, 3, n // 2, n - 1, n, n + 5):
                got = first_in_order(key, limit)
                assert got.tolist() == want[: (n if limit is None else max(limit, 0))].tolist(), (n, limit)


@pytest.mark.parametrize("compiled", [False, True], ids=["plain", "compiled"])
def test_overdue_unreplied_kernel_splits_what_the_rules_split(compiled):
    """Both kernel copies against the rule written out with numpy: open cases in transit to in service with no
    reply, past due (NaN due: not past) or not."""
    from sim.jit import kernels

    k = kernels(compiled)
    rng = np.random.default_rng(5)
    n, t = 4_000, 300.0
    status = rng.integers(0, len(Status), n).astype(np.int8)
    replied = np.where(rng.random(n) < 0.5, np.nan, rng.uniform(0, 400, n))
    due = np.where(rng.random(n) < 0.1, np.nan, rng.uniform(0, 600, n))
    open_ids = np.flatnonzero(status < Status.CLOSED)
    late, rest = k.overdue_unreplied(open_ids, status, replied, due, t, int(Status.IN_TRANSIT),
                                     int(Status.IN_SERVICE))
    st = status[open_ids]
    ids = open_ids[(st >= Status.IN_TRANSIT) & (st <= Status.IN_SERVICE) & np.isnan(replied[open_ids])]
    assert late.tolist() == ids[due[ids] < t].tolist() and len(late) > 0
    assert rest.tolist() == ids[~(due[ids] < t)].tolist() and np.isnan(due[rest]).any()
