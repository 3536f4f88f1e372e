"""Calibration: recovering a known parameter from a target the model itself produced, the written scenario,
and the spec's validation errors (each naming the file and the key)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from experiments.calibration import (
    CalibrationSpecError,
    ParameterSpec,
    TargetSpec,
    _loss,
    _sample,
    _Space,
    calibrate,
    load_calibration_spec,
)
from experiments.spec import SpecError, replication_seeds
from sim import load_scenario, run_scenario
from sim.errors import WenzhengError

TRUE_DUTY = 0.8  # departments.duty that produces the synthetic target (the default is 1.25)
LOW, HIGH = 0.0, 3.0  # the searched range of departments.duty (effort units)


def tiny_base(folder: Path) -> Path:
    """A tiny, unaccountable city: the response rate is the departments' effort choice (well under 1 s a run).

    Nobody observes the departments (no tracking, call-backs, inspections or reopening), so with no queue
    pressure the response rate rises with ``departments.duty`` (about 0.31 at 0, 0.57 at 1, 0.82 at 3 on 3
    seeds). No queue pressure: 300 staff in every department, against at most 119 that ``plan-staff``
    gives any department of this city at 30% utilisation; the file stands alone (schema defaults) because
    default.yaml's ``staff_by_department`` names departments of a larger city and would override the staff.
    """
    body = {
        "name": "tiny",
        "world": {"population": 1000, "counties": 1, "townships": 2, "social_degree": 2},
        "demand": {"problems_per_citizen_year": 40},
        "departments": {"staff": {"prefecture": 300, "county": 300, "township": 300, "relay": 300}},
        "platform": {"direct_answer_share": 0.0},
        "policy": {"tracking": False, "callback": False, "supervision_intensity": 0, "reopen_allowed": False,
                   "systemic_fix": False},
        "run": {"days": 8},
    }
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
    return path


def write(folder: Path, body: dict, name: str = "cal.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(body, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def spec_body(**extra) -> dict:
    body = {
        "name": "tiny_fit",
        "scenario": "tiny.yaml",
        "parameters": [{"name": "departments.duty", "low": LOW, "high": HIGH}],
        "targets": [{"name": "synthetic", "kpi": "response_rate", "observed": 0.3, "tolerance": 0.04}],
        "replications": 2,
        "seed": 5,
        # 8 space-filling points: with fewer, two far-apart points of a 1-D search can tie on noise and the
        # refinement may spend its few points on the wrong side (seen on some seeds with 4)
        "search": {"budget": 36, "initial_points": 8, "points_per_round": 2, "check_candidates": 2,
                   "check_replications": 5},
        "output": "out/tiny_fit.yaml",
    }
    body.update(extra)
    return body


# ------------------------------------------------------------------------------------- recovery
@pytest.fixture(scope="module")
def recovered(tmp_path_factory):
    folder = tmp_path_factory.mktemp("calibration")
    base = tiny_base(folder)
    # the synthetic observation: the model itself at a known value, with seeds the calibration never uses
    truth = load_scenario(base).with_overrides({"departments.duty": TRUE_DUTY})
    observed = float(np.mean([run_scenario(truth, seed=s).summary["response_rate"]
                              for s in replication_seeds(999, 6)]))
    body = spec_body()
    body["targets"][0]["observed"] = round(observed, 4)
    spec = write(folder, body)
    outcome = calibrate(str(spec), workers=1, progress=False)
    return folder, observed, outcome


def test_recovers_a_known_parameter(recovered):
    _, observed, outcome = recovered
    assert 0.3 < observed < 0.7  # the synthetic target is informative (neither 0 nor 1)
    fit = outcome.fitted["departments.duty"]
    assert abs(fit - TRUE_DUTY) < 0.3, outcome.describe()  # a tenth of the searched range
    # within the target's tolerance, 0.04: about 3 standard errors of the difference between two means of a
    # response rate whose runs spread by about 0.02-0.03 (5 check runs, 6 observation runs)
    [target] = outcome.targets
    assert target.within and abs(target.mean - observed) <= 0.04
    assert target.ci_low <= target.mean <= target.ci_high and target.n == 5
    # the spread is reported and contains the fitted value's neighbourhood
    [p] = outcome.parameters
    assert p.min <= p.max and p.sd >= 0 and p.low == LOW and p.high == HIGH
    assert p.min - 0.5 <= TRUE_DUTY <= p.max + 0.5


def test_spends_the_budget_and_reports_it(recovered):
    _, _, outcome = recovered
    # search: 2 runs per point (8 initial points, then 2 a round); check: 2 candidates × 5 fresh replications
    assert outcome.runs_check == 10
    assert outcome.runs == outcome.runs_search + outcome.runs_check <= 36
    assert outcome.runs_search == 2 * len(outcome.evaluations) == 26
    assert [e.stage for e in outcome.evaluations] == ["initial"] * 8 + ["round1"] * 2 + ["round2"] * 2 + ["round3"]
    text = outcome.describe()
    assert "runs: 36 of a budget of 36" in text
    assert "synthetic: response_rate" in text and "within tolerance" in text
    assert "departments.duty" in text


def test_the_search_refines_around_the_best(recovered):
    _, _, outcome = recovered
    evaluations = outcome.evaluations
    initial = [e for e in evaluations if e.stage == "initial"]
    later = [e for e in evaluations if e.stage != "initial"]
    # round k samples a box of half-width 0.25 · shrink^(k-1) of the range around the best point before it
    # (values rounded to 1/1000 of the range)
    for k in range(1, len({e.stage for e in later}) + 1):
        start = next(i for i, e in enumerate(evaluations) if e.stage == f"round{k}")
        best = min(evaluations[:start], key=lambda e: e.loss).values[0]
        half = 0.25 * 0.5 ** (k - 1) * (HIGH - LOW)
        assert all(abs(e.values[0] - best) <= half + 0.001 * (HIGH - LOW)
                   for e in evaluations if e.stage == f"round{k}"), (k, best)
    # so the refinement samples nearer the truth than the space-filling stage (the loss of single points is
    # noisy: a lucky initial point may keep the smallest loss)
    assert np.mean([abs(e.values[0] - TRUE_DUTY) for e in later]) < np.mean(
        [abs(e.values[0] - TRUE_DUTY) for e in initial])
    # the fit is the best candidate on fresh seeds, and it is one of the search's points
    best = min(outcome.check, key=lambda e: e.loss)
    assert outcome.fitted["departments.duty"] == best.values[0]
    assert best.values in {e.values for e in outcome.evaluations}


def test_writes_a_scenario_that_extends_the_input(recovered):
    folder, _, outcome = recovered
    path = outcome.scenario_path
    assert path == folder / "out" / "tiny_fit.yaml" and path.exists()
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# tiny_fit.yaml — calibrated scenario")
    assert "python run.py calibrate" in text and "Fit (mean [95% interval]" in text
    data = yaml.safe_load(text)
    assert data["extends"] == "../tiny.yaml"  # relative to the written file
    assert data["departments"]["duty"] == outcome.fitted["departments.duty"]
    scenario = load_scenario(path)
    assert scenario.name == "tiny_fit"
    assert scenario.departments.duty == outcome.fitted["departments.duty"]
    assert scenario.world.population == 1000  # inherited from the input
    points = pd.read_csv(outcome.points_path)
    assert len(points) == len(outcome.evaluations) + len(outcome.check)
    assert {"stage", "loss", "departments.duty", "mean:synthetic: response_rate"} <= set(points)


# ------------------------------------------------------------------------------------- pieces
def test_loss_is_in_units_of_tolerance():
    targets = [TargetSpec(kpi="response_rate", observed=0.5, tolerance=0.1),
               TargetSpec(kpi="satisfaction_rate", observed=0.8, tolerance=0.05, weight=3)]
    assert _loss([0.5, 0.8], targets) == 0.0
    assert _loss([0.6, 0.8], targets) == pytest.approx(1.0 / 4)
    assert _loss([0.5, 0.85], targets) == pytest.approx(3.0 / 4)
    assert math.isinf(_loss([math.nan, 0.8], targets))


def test_space_rounds_and_maps_log_and_integer_ranges():
    space = _Space([ParameterSpec(name="a.b", low=-2.0, high=1.0),
                    ParameterSpec(name="c.d", low=0.5, high=50.0, log=True),
                    ParameterSpec(name="e.f", low=1, high=4)], ["float", "float", "int"])
    lo = space.values(np.array([0.0, 0.0, 0.0]))
    hi = space.values(np.array([1.0, 1.0, 1.0]))
    assert lo == (-2.0, 0.5, 1.0) and hi == (1.0, 50.0, 4.0)
    mid = space.values(np.array([0.5, 0.5, 0.5]))
    assert mid[1] == pytest.approx(5.0, rel=1e-3)  # geometric middle of 0.5..50
    assert mid[2] in (2.0, 3.0)
    v = space.values(np.array([0.123456789, 0.3, 0.9]))
    assert v[0] == round(v[0], 3)  # 1/1000 of the range, on a decimal grid
    assert np.allclose(space.unit(v), [0.123456789, 0.3, space.unit(v)[2]], atol=1e-3)


def test_samplers_fill_the_unit_cube_reproducibly():
    for sampler in ("lhs", "sobol"):
        a = _sample(6, 3, sampler, 11)
        assert a.shape == (6, 3) and (a >= 0).all() and (a <= 1).all()
        assert np.array_equal(a, _sample(6, 3, sampler, 11))
        assert not np.array_equal(a, _sample(6, 3, sampler, 12))
    # a Latin hypercube puts one point in each of the n strata of every axis
    strata = np.floor(_sample(6, 3, "lhs", 3) * 6)
    assert all(sorted(strata[:, j]) == list(range(6)) for j in range(3))


def test_a_group_target_in_a_scenario_variant(tmp_path):
    """A target taken from one group of a split, measured in a variant of the scenario (4 quick runs)."""
    tiny_base(tmp_path)
    body = spec_body(
        targets=[{"kpi": "response_rate", "group_by": "channel", "group": "online", "observed": 0.5,
                  "tolerance": 0.1, "set": {"policy.tracking": True}}],
        replications=1, search={"budget": 4, "initial_points": 2, "check_candidates": 1, "check_replications": 2},
        output="fit.yaml")
    outcome = calibrate(str(write(tmp_path, body)), workers=1, progress=False)
    [target] = outcome.targets
    assert target.label == "response_rate[channel=online]" and target.settings == "policy.tracking=true"
    assert 0.0 < target.mean <= 1.0 and target.n == 2
    assert outcome.runs == 4 and len(outcome.evaluations) == 2
    assert "measured with policy.tracking=true" in outcome.describe()
    # the variant's setting is not written: only the fitted values (and the spec's fixed settings) are
    assert "tracking" not in outcome.scenario_path.read_text(encoding="utf-8").split("extends:")[1]


# ------------------------------------------------------------------------------------- errors
@pytest.fixture()
def folder(tmp_path):
    tiny_base(tmp_path)
    return tmp_path


@pytest.mark.parametrize(("change", "key", "words"), [
    ({"colour": "blue"}, "colour", "unknown key; allowed keys here"),
    ({"parameters": [{"name": "departments.duty", "low": 1.0, "high": -1.0}]},
     "parameters.0", "must be below"),
    ({"parameters": [{"name": "departments.no_such_knob", "low": 0, "high": 1}]},
     "parameters.0", "unknown key 'no_such_knob'"),
    ({"parameters": [{"name": "policy.tracking", "low": 0, "high": 1}]}, "parameters.0", "only numbers"),
    ({"parameters": [{"name": "platform.classification_accuracy", "low": 0.5, "high": 1.5}]},
     "parameters.0", "value 1.5"),
    ({"parameters": [{"name": "policy.supervision_intensity", "low": 0, "high": 10, "log": True}]},
     "parameters.0", "log-scale range needs low > 0"),
    ({"parameters": [{"name": "departments.duty", "low": 0, "high": 1},
                     {"name": "departments.duty", "low": 0, "high": 1}]},
     "parameters", "repeated"),
    ({"targets": [{"kpi": "happiness", "observed": 1, "tolerance": 0.1}]}, "targets.0", "unknown KPI"),
    ({"targets": [{"kpi": "response_rate", "observed": 0.3, "tolerance": 0}]}, "targets.0.tolerance",
     "greater than 0"),
    ({"targets": [{"kpi": "response_rate", "observed": 0.3, "tolerance": 0.1, "group_by": "channel"}]},
     "targets.0", "both 'group_by' and 'group'"),
    ({"targets": [{"kpi": "response_rate", "observed": 0.3, "tolerance": 0.1, "group_by": "channel",
                   "group": "fax"}]}, "targets.0", "allowed: online, hotline, offline"),
    ({"targets": [{"kpi": "response_rate", "observed": 0.3, "tolerance": 0.1,
                   "set": {"departments.duty": 0}}]}, "targets.0.set", "is fitted"),
    ({"targets": [{"kpi": "response_rate", "observed": 0.3, "tolerance": 0.1,
                   "set": {"policy.tracking": "sometimes"}}]}, "targets.0.set", "policy.tracking"),
    ({"set": {"departments.duty": 0}}, "parameters.0", "also fixed in 'set'"),
    ({"set": {"world.population": -5}}, "scenario", "world.population"),
    ({"scenario": "missing.yaml"}, "scenario", "not found"),
    ({"search": {"budget": 5}}, "search.budget", "cannot pay for"),
    ({"search": {"budget": 50, "sampler": "random"}}, "search.sampler", "'lhs' or 'sobol'"),
    ({"output": "out/fit.txt"}, "output", "must be a .yaml file"),
])
def test_spec_errors_name_the_file_and_the_key(folder, change, key, words):
    path = write(folder, spec_body(**change))
    with pytest.raises(CalibrationSpecError) as info:
        load_calibration_spec(path)
    msg = str(info.value)
    assert str(path) in msg and words in msg, msg
    if key != "output":
        assert f"key '{key}" in msg, msg
    assert isinstance(info.value, SpecError) and isinstance(info.value, WenzhengError)


def test_missing_and_malformed_spec_files(tmp_path):
    with pytest.raises(CalibrationSpecError, match="calibration spec not found"):
        load_calibration_spec(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("parameters: [unclosed\n", encoding="utf-8")
    with pytest.raises(CalibrationSpecError, match=r"bad\.yaml \(line \d+, column \d+\): malformed YAML"):
        load_calibration_spec(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(CalibrationSpecError, match="top level must be a mapping"):
        load_calibration_spec(listed)


def test_plan_resolves_variants_seeds_and_defaults(folder):
    body = spec_body(targets=[
        {"kpi": "response_rate", "observed": 0.3, "tolerance": 0.05},
        {"kpi": "satisfaction_rate", "group_by": "channel", "group": "online", "observed": 0.6, "tolerance": 0.1},
        {"kpi": "response_rate", "observed": 0.4, "tolerance": 0.05, "set": {"citizens.tattle_share": 1.0}},
    ], search={"budget": 60})
    plan = load_calibration_spec(write(folder, body))
    assert len(plan.variants) == 2 and plan.target_variant == [0, 0, 1]
    assert plan.variants[1].citizens.tattle_share == 1.0 and plan.variants[0].citizens.tattle_share == 0.0
    assert plan.runs_per_point == 4 and plan.check_runs == 3 * 2 * 6
    # the check's seeds are fresh: never used by the search
    assert set(plan.check_seeds).isdisjoint(plan.search_seeds) and len(plan.check_seeds) == 6
    assert plan.initial_points == (60 - 36) // 4 // 2
    assert plan.days == 8 and plan.out_path == folder / "out" / "tiny_fit.yaml"
    assert set(plan.kpis) == {"response_rate", "satisfaction_rate"}


def test_cli_reports_a_bad_spec_without_a_traceback(folder, cli):
    path = write(folder, spec_body(targets=[{"kpi": "happiness", "observed": 1, "tolerance": 0.1}]))
    res = cli("calibrate", str(path))
    assert res.returncode == 2
    assert res.stderr.startswith("error: ") and "unknown KPI 'happiness'" in res.stderr
    assert "Traceback" not in res.stderr
