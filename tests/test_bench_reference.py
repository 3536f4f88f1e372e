"""The benchmark's reference implementation (bench/reference.py) runs and draws the expected case volume."""

from __future__ import annotations

import math

import pytest

from bench.reference import ReferenceModel, run_reference
from sim import run_scenario, validate

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
