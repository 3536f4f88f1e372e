"""Each policy lever on its own (sim/levers.py), and the rule that only the levers read the policy settings."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

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
from sim.scenario import DispatchMode, Hours, Scenario

SIM = Path(__file__).resolve().parents[1] / "sim"


def test_always_open_tells_the_two_hours_apart():
    assert always_open(Hours.ALWAYS) is True
    assert always_open(Hours.OFFICE) is False
    assert always_open(Hours("7x24")) is True


def test_mandate_flags_only_unsigned_cases_past_the_deadline():
    m = ResponseMandate(hours=24.0, detect=0.25)
    created = np.array([0.0, 0.0, 10.0, 0.0])
    first = np.array([np.nan, 5.0, np.nan, np.nan])
    # at 30 h: case 0 unsigned for 30 h (late), case 1 signed, case 2 unsigned for 20 h, case 3 late
    assert m.unsigned_past_deadline(created, first, 30.0).tolist() == [True, False, False, True]
    assert m.unsigned_past_deadline(created, first, 24.0).tolist() == [False, False, False, False]
    assert m.active and m.expected_detection() == 0.25
    off = ResponseMandate(hours=None, detect=0.25)
    assert not off.active and off.expected_detection() == 0.0
    assert not off.unsigned_past_deadline(created, first, 1e6).any()


def test_tracking_reminds_lead_hours_before_due_but_not_before_the_first_hour():
    t = Tracking(on=True, lead_h=24.0, detect=0.2)
    when = t.reminder_times(np.array([100.0, 30.0, 10.0]), np.array([0.0, 0.0, 5.0]))
    assert when.tolist() == [76.0, 6.0, 6.0]
    assert Tracking(on=False, lead_h=24.0, detect=0.2).reminder_times(np.array([100.0]), np.array([0.0])) is None
    assert t.expected_detection() == 0.2
    assert Tracking(on=False, lead_h=24.0, detect=0.2).expected_detection() == 0.0


def test_callback_reopening_counts_against_the_limit():
    cb = CallBack(on=True, reopen_allowed=True, max_reopens=2, detect=0.15)
    assert cb.may_reopen(np.array([0, 1, 2, 3])).tolist() == [True, True, False, False]
    assert CallBack(on=True, reopen_allowed=False, max_reopens=2, detect=0.15).may_reopen(np.array([0])) is None
    assert cb.expected_detection() == 0.15
    assert CallBack(on=False, reopen_allowed=True, max_reopens=1, detect=0.15).expected_detection() == 0.0


def test_inspections_round_the_fraction_at_random_with_the_right_mean():
    rng = np.random.default_rng(3)
    whole = Inspection(intensity=4.0, detect_per_inspection=0.01)
    assert {whole.inspections_today(rng) for _ in range(50)} == {4}
    frac = Inspection(intensity=2.3, detect_per_inspection=0.01)
    draws = np.array([frac.inspections_today(rng) for _ in range(20_000)])
    assert set(draws.tolist()) == {2, 3}
    assert draws.mean() == pytest.approx(2.3, abs=0.02)
    assert frac.expected_detection() == pytest.approx(0.023)


def test_ranking_falls_due_at_the_end_of_every_period():
    r = PublicRanking(on=True, detect=0.3, period_days=30)
    assert [d for d in range(100) if r.due(d)] == [29, 59, 89]
    assert not any(PublicRanking(on=False, detect=0.3).due(d) for d in range(100))
    assert r.expected_detection() == 0.3


def test_systemic_fix_triggers_past_threshold_and_not_while_in_force():
    f = SystemicFix(on=True, threshold=5, window_days=30, effect=0.4, duration_days=90)
    counts = np.array([[5, 4], [9, 6]])
    fix_until = np.array([[-1.0, -1.0], [50.0, -1.0]])  # cell (1, 0) has a fix in force until day 50
    assert f.triggered(counts, fix_until, day=10).tolist() == [[True, False], [False, True]]
    assert f.rate_factor(fix_until, day=10).tolist() == [[1.0, 1.0], [0.6, 1.0]]
    assert f.rate_factor(fix_until, day=51).tolist() == [[1.0, 1.0], [1.0, 1.0]]
    assert SystemicFix(False, 5, 30, 0.4, 90).triggered(counts, fix_until, day=10) is None


def test_levers_from_scenario_and_their_summed_detection():
    sc = Scenario().with_overrides({
        "policy.response_mandate_hours": 24, "policy.tracking": True, "policy.callback": False,
        "policy.public_ranking": True, "policy.supervision_intensity": 5, "policy.dispatch_mode": "direct",
        "policy.platform_hours": "office"})
    lv = Levers.from_scenario(sc)
    sup = sc.supervision
    assert lv.mandate.hours == 24 and lv.dispatch_mode == DispatchMode.DIRECT and not lv.platform_always_open
    expected = sup.detect_tracking + sup.detect_mandate + sup.detect_ranking + 5 * sup.detect_per_inspection
    assert lv.expected_detection() == pytest.approx(expected)
    none = Levers.from_scenario(sc.with_overrides({
        "policy.response_mandate_hours": None, "policy.tracking": False, "policy.public_ranking": False,
        "policy.supervision_intensity": 0}))
    assert none.expected_detection() == 0.0


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
