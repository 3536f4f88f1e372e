"""The benchmark's reference implementation (bench/reference.py) runs, draws the expected case volume, staffs
its departments like sim and reaches the same outcome levels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.reference import ReferenceModel, run_reference
from sim import load_scenario, run_scenario, validate
from sim.hierarchy import Hierarchy
from tests.conftest import ROOT

POPULATION, RATE, DAYS = 500, 60.0, 3


def tiny(**extra: object) -> object:
    """500 citizens, no enterprises, a flat weekday profile: expected problems = N × rate × days / 365."""
    data: dict = {"world": {"population": POPULATION, "enterprise_share": 0.0},
                  "demand": {"problems_per_citizen_year": RATE, "weekday_weights": [1.0] * 7},
                  "run": {"days": DAYS, "warmup_days": 0}}
    for dotted, value in extra.items():
        section, key = dotted.split("__")
        data.setdefault(section, {})[key] = value
    return validate(data, "test")


EXPECTED = POPULATION * RATE * DAYS / 365.0  # ≈ 246.6 problems
TOLERANCE = 4.0 * math.sqrt(EXPECTED)  # four Poisson standard deviations


@pytest.mark.parametrize("seed", [1, 2])
def test_problem_count_matches_the_rate(seed: int) -> None:
    res = run_reference(tiny(), seed=seed)
    assert abs(res.problems - EXPECTED) <= TOLERANCE
    assert 0 < res.reported <= res.problems
    assert res.accepted <= res.reported
    assert 0 < res.closed <= res.reported
    assert res.citizen_hours == POPULATION * DAYS * 24


def test_without_behaviour_every_problem_is_reported_and_nobody_judges() -> None:
    res = run_reference(tiny(citizens__behaviour=False), seed=3)
    assert res.reported == res.problems
    assert abs(res.problems - EXPECTED) <= TOLERANCE
    assert res.abandoned == 0 and res.escalated == 0


def test_same_seed_same_counts_and_warmup_cases_are_not_counted() -> None:
    a, b = run_reference(tiny(), seed=5), run_reference(tiny(), seed=5)
    assert (a.problems, a.reported, a.closed) == (b.problems, b.reported, b.closed)
    warm = run_reference(tiny(), seed=5, days=2, warmup_days=1)
    assert warm.reported < warm.problems  # problems count the whole run, cases only the measured days


def test_same_volume_as_the_model() -> None:
    """Equal work: the reference and sim draw problems and reports at the same expected rate."""
    scenario = tiny()
    ref = run_reference(scenario, seed=11)
    result = run_scenario(scenario, seed=11)
    model_problems = int(result.timeseries["problems"].sum())
    assert abs(ref.problems - model_problems) <= 4.0 * math.sqrt(2 * EXPECTED)
    assert abs(ref.reported - len(result.cases)) <= 4.0 * math.sqrt(2 * EXPECTED)


def test_reference_rejects_a_fixed_request_stream() -> None:
    with pytest.raises(ValueError, match="fixed request stream"):
        ReferenceModel(tiny(demand__requests_per_day=100.0))


def test_nobody_reports_without_an_open_channel() -> None:
    """Online only, and nobody has internet access: problems arise, no case is reported."""
    scenario = tiny(world__digital_access_urban=0.0, world__digital_access_rural=0.0,
                    platform__channels={"online": True, "hotline": False, "offline": False})
    res = run_reference(scenario, seed=4)
    assert res.problems > 0 and res.reported == 0


def default_city(population: int, **overrides: object) -> object:
    """scenarios/default.yaml with fewer agents and the same case volume (problems per agent scaled up), so
    its planned department staff see the load they were planned for."""
    return load_scenario(ROOT / "scenarios" / "default.yaml", {
        "world.population": population, "demand.problems_per_citizen_year": 2.0 * 20_000 / population, **overrides})


def test_departments_and_staff_are_sims() -> None:
    """The same departments as sim's hierarchy, with the staff it gives them (by name, else by level)."""
    scenario = default_city(50)
    model = ReferenceModel(scenario, days=1)
    staff = {d.node: d.staff for d in model.departments}
    assert staff == {r.node: r.staff for r in Hierarchy(scenario, np.random.default_rng(0)).departments}
    assert staff == {**staff, **scenario.departments.staff_by_department}  # every named department as named
    assert all(d.county >= 0 for d in model.departments if d.level in ("county", "township"))


#: what the reference leaves out (bench/reference.py, "It omits"), switched off in sim for the comparison
LIKE_THE_REFERENCE = {"policy.dispatch_mode": "direct", "citizens.max_repeats": 0,
                      "citizens.trust_memory_days": 1e12, "citizens.report_trust_weight": 0.0,
                      "citizens.escalation_cost": 0.0, "citizens.escalation_risk": 0.0,
                      "policy.upper_supervision_intensity": 0.0, "supervision.upper_level_weight": 1.0}


@pytest.mark.parametrize("callback", [True, False])
def test_outcome_levels_match_the_model(callback: bool) -> None:
    """30 days of the default city (2,000 agents, its full case volume), same seed: the reference's outcome
    levels are within a few points of sim's. Without call-backs perfunctory replies go unchecked, and both
    show the same gaming gap (recorded above true resolution)."""
    scenario = default_city(2_000, **{"policy.callback": callback, **LIKE_THE_REFERENCE})
    rates = run_reference(scenario, seed=1, days=30, warmup_days=0).rates()
    summary = run_scenario(scenario, seed=1, days=30, warmup_days=0).summary
    for kpi in ("response_rate", "resolution_rate", "true_resolution_rate", "satisfaction_rate",
                "perfunctory_share", "escalation_rate"):
        assert abs(rates[kpi] - summary[kpi]) <= 0.05, (kpi, rates[kpi], summary[kpi])
    gap = rates["resolution_rate"] - rates["true_resolution_rate"]
    # with the calibrated (nearly deterministic) choice, perfunctory replies are about 4% of the replies
    # without call-backs: a gap of about 0.015 in both; with call-backs none at all
    assert (gap > 0.01) == (not callback) and (summary["gaming_gap"] > 0.01) == (not callback)


def test_without_effort_choice_every_case_is_handled_properly() -> None:
    res = run_reference(tiny(departments__effort_choice=False), seed=6)
    assert res.replied > 0 and res.perfunctory == 0 and res.bounced == 0
    assert res.recorded_resolved == res.true_resolved


def test_the_speed_check_of_a_run_where_no_case_closes_counts_the_cases_created(monkeypatch):
    """The benchmark's speed check compares closed cases per second; in a run too short for any case to close
    (the million-citizen city for one day) it compares the cases created per second instead, and says so, rather
    than reporting an empty ratio as a miss."""
    import bench.scale as scale

    def fake_measure(spec, repeats, timeout_s, log):
        model = spec.kind == "model"
        pop = dict(spec.overrides)["world.population"]
        closed = 0 if pop == 1_000_000 else (900 if model else 850)
        wall = 1.0 if model else 50.0
        cases = 1000 if model else 960
        return scale.Measurement(
            label=spec.label, kind=spec.kind, population=pop, days=spec.days, repeats=1, wall_s=wall, process_s=wall,
            cpu_s=wall, work_cpu_s=wall, peak_rss_mib=1.0, cases=cases, closed=closed, cases_per_day=cases,
            cases_per_s=cases / wall, closed_per_s=closed / wall, citizen_hours_per_s=1.0)

    monkeypatch.setattr(scale, "measure", fake_measure)
    checks = scale.reference_suite(log=lambda *a: None)["checks"]
    assert checks["reference_speed_ratio_20k"]["value"] == pytest.approx(900 / (850 / 50.0))
    assert "closed cases per wall second" in checks["reference_speed_ratio_20k"]["note"]
    one_day = checks["reference_speed_ratio_1000k"]
    assert one_day["value"] == pytest.approx(1000 / (960 / 50.0)) and one_day["ok"] is True
    assert "cases created per wall second" in one_day["note"]
    assert checks["reference_speed_ratio_cpu_1000k"]["value"] == pytest.approx(1000 / (960 / 50.0))
