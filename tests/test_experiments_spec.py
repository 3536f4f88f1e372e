"""Experiment specs: validation errors, seed derivation (common random numbers), design sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from experiments.designs import expected_points, field_kind
from experiments.spec import SpecError, load_spec, replication_seeds
from sim.errors import WenzhengError
from sim.hierarchy import Hierarchy

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = (ROOT / "scenarios" / "default.yaml").as_posix()


def write_spec(tmp_path: Path, body: dict, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
    return path


def base_spec(**extra) -> dict:
    spec = {"scenarios": {"a": DEFAULT, "b": {"file": DEFAULT, "set": {"policy.supervision_intensity": 40}}},
            "replications": 3, "days": 10, "seed": 11}
    spec.update(extra)
    return spec


# ------------------------------------------------------------------------------------------- seeds
def test_replication_seeds_come_from_seedsequence_spawn():
    seeds = replication_seeds(2024, 4)
    children = np.random.SeedSequence(2024).spawn(4)
    assert seeds == [int(c.generate_state(1, np.uint64)[0] >> np.uint64(1)) for c in children]
    assert len(set(seeds)) == 4
    assert all(0 <= s < 2**63 for s in seeds)
    # adding replications keeps the earlier seeds; another master seed gives other seeds
    assert replication_seeds(2024, 7)[:4] == seeds
    assert set(replication_seeds(2025, 4)).isdisjoint(seeds)


def test_plan_pairs_replications_across_scenarios(tmp_path):
    plan = load_spec(write_spec(tmp_path, base_spec()))
    assert plan.seeds == replication_seeds(11, 3)
    assert list(plan.scenarios) == ["a", "b"] and plan.baseline == "a"
    assert plan.n_runs == 6
    # the spec's overrides, name and horizon are applied; the design-less plan has a single point
    assert plan.scenarios["b"].policy.supervision_intensity == 40
    assert plan.scenarios["a"].name == "a" and plan.scenarios["b"].name == "b"
    assert plan.scenarios["a"].run.days == 10 and plan.design.n_points == 1
    assert plan.run_id("b", 0, 2) == "b__p0000__r002"


def test_replications_and_days_overrides_change_the_hash(tmp_path):
    path = write_spec(tmp_path, base_spec())
    plan = load_spec(path)
    assert load_spec(path).spec_hash == plan.spec_hash
    more = load_spec(path, replications=5)
    assert more.replications == 5 and more.seeds[:3] == plan.seeds
    assert more.spec_hash != plan.spec_hash
    shorter = load_spec(path, days=5)
    assert shorter.scenarios["a"].run.days == 5 and shorter.spec_hash != plan.spec_hash


def test_hash_follows_the_scenario_files(tmp_path):
    scen = tmp_path / "s.yaml"
    scen.write_text(f"extends: {DEFAULT}\npolicy:\n  supervision_intensity: 5\n")
    path = write_spec(tmp_path, {"scenarios": {"s": "s.yaml"}, "days": 10, "replications": 2})
    first = load_spec(path).spec_hash
    scen.write_text(f"extends: {DEFAULT}\npolicy:\n  supervision_intensity: 6\n")
    assert load_spec(path).spec_hash != first


# -------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize("mutate, key, words", [
    (lambda s: s.update(replicatons=3), "replicatons", "unknown key"),
    (lambda s: s.update(replications="many"), "replications", "integer"),
    (lambda s: s.update(replications=0), "replications", "greater than or equal to 1"),
    (lambda s: s.update(days=-1), "days", "greater than 0"),
    (lambda s: s.update(kpis=["response_rate", "happiness"]), "kpis", "happiness"),
    (lambda s: s["scenarios"]["b"].update(sett={}), "scenarios.b", "unknown key"),
    (lambda s: s.update(design={"type": "factorial", "parameters": []}), "design.type", "grid"),
    (lambda s: s.update(design={"type": "grid", "parameters": [{"name": "policy.supervision_intensity",
                                                                 "low": 0}]}), "design", "levels"),
    (lambda s: s.update(design={"type": "sobol", "n": 10, "parameters": [
        {"name": "policy.supervision_intensity", "low": 0, "high": 50}]}), "design", "power of 2"),
    (lambda s: s.update(design={"type": "lhs", "n": 4, "parameters": [
        {"name": "policy.supervision_intensity", "low": 50, "high": 10}]}), "design", "below"),
])
def test_spec_mistakes_name_file_and_key(tmp_path, mutate, key, words):
    spec = base_spec()
    mutate(spec)
    path = write_spec(tmp_path, spec)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    msg = str(err.value)
    assert str(path) in msg and f"'{key}" in msg and words in msg
    assert isinstance(err.value, WenzhengError)


def test_missing_scenario_file_is_a_clear_error(tmp_path):
    path = write_spec(tmp_path, base_spec(scenarios={"x": "../nowhere/absent.yaml"}))
    with pytest.raises(SpecError, match=r"scenarios\.x.*'../nowhere/absent.yaml' not found"):
        load_spec(path)


def test_bad_override_and_bad_baseline(tmp_path):
    spec = base_spec()
    spec["scenarios"]["b"]["set"] = {"policy.supervision_intensity": -3}
    with pytest.raises(SpecError, match=r"scenarios\.b.*supervision_intensity"):
        load_spec(write_spec(tmp_path, spec))
    with pytest.raises(SpecError, match=r"'baseline'.*'c'"):
        load_spec(write_spec(tmp_path, base_spec(baseline="c")))


def test_spec_file_problems(tmp_path):
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("scenarios: [a\n")
    with pytest.raises(SpecError, match="malformed YAML"):
        load_spec(bad)
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(SpecError, match="top level must be a mapping"):
        load_spec(tmp_path / "list.yaml")


def test_design_keys_and_ranges_are_checked_against_the_scenario(tmp_path):
    def design(**p):
        return base_spec(design={"type": "lhs", "n": 3, "parameters": [p]})
    with pytest.raises(SpecError, match=r"design\.parameters\.0.*unknown key 'supervision_intensty'"):
        load_spec(write_spec(tmp_path, design(name="policy.supervision_intensty", low=0, high=1)))
    with pytest.raises(SpecError, match=r"design\.parameters\.0.*rejected.*classification_accuracy"):
        load_spec(write_spec(tmp_path, design(name="platform.classification_accuracy", low=0.5, high=1.5)))
    with pytest.raises(SpecError, match=r"'policy\.tracking' is a true/false setting; it can be varied only in a "
                       "grid design"):
        load_spec(write_spec(tmp_path, design(name="policy.tracking", low=0, high=1)))
    with pytest.raises(SpecError, match="varies numbers and true/false settings only"):
        load_spec(write_spec(tmp_path, design(name="policy.dispatch_mode", low=0, high=1)))


def test_field_kinds():
    assert field_kind("policy.supervision_intensity") == "float"
    assert field_kind("departments.staff.township") == "int"
    assert field_kind("policy.response_mandate_hours") == "float"
    assert field_kind("policy.tracking") == "bool"
    assert field_kind("demand.categories.utilities.service_time_median_h") == "float"
    with pytest.raises(ValueError, match="unknown key"):
        field_kind("policy.nothing")


# ----------------------------------------------------------------------------------------- designs
PARAMS3 = [
    {"name": "policy.supervision_intensity", "low": 0, "high": 80},
    {"name": "platform.classification_accuracy", "low": 0.7, "high": 1.0},
    {"name": "departments.staff.township", "low": 1, "high": 4},
]


def test_morris_gives_k_plus_one_times_n_points(tmp_path):
    spec = base_spec(replications=2, design={"type": "morris", "n": 5, "levels": 4, "parameters": PARAMS3})
    plan = load_spec(write_spec(tmp_path, spec))
    assert plan.design.n_points == (3 + 1) * 5 == expected_points("morris", 3, 5)
    assert plan.n_runs == 2 * 20 * 2
    values = plan.design.values
    assert values.shape == (20, 3)
    assert np.all(values[:, 2] == np.rint(values[:, 2]))  # an integer field gets whole values
    assert values[:, 0].min() >= 0 and values[:, 0].max() <= 80
    manifest = plan.manifest_design()
    assert manifest["type"] == "morris" and manifest["n_points"] == 20 and manifest["levels"] == 4
    assert [p["name"] for p in manifest["parameters"]] == [p["name"] for p in PARAMS3]
    assert manifest["parameters"][2]["kind"] == "int"
    # a point's overrides hold ints for integer fields, and the scenario at the point has them applied
    over = plan.design.overrides(3)
    assert isinstance(over["departments.staff.township"], int)
    assert plan.scenario_at("b", 3).departments.staff.township == over["departments.staff.township"]


@pytest.mark.parametrize("second_order, expected", [(True, 8 * (2 * 3 + 2)), (False, 8 * (3 + 2))])
def test_sobol_sizes(tmp_path, second_order, expected):
    spec = base_spec(replications=1, scenarios={"a": DEFAULT},
                     design={"type": "sobol", "n": 8, "second_order": second_order, "parameters": PARAMS3})
    plan = load_spec(write_spec(tmp_path, spec))
    assert plan.design.n_points == expected == expected_points("sobol", 3, 8, second_order)
    assert plan.n_runs == expected


def test_grid_is_full_factorial_with_null_values(tmp_path):
    spec = base_spec(design={"type": "grid", "parameters": [
        {"name": "policy.supervision_intensity", "low": 0, "high": 40, "levels": 3},
        {"name": "policy.response_mandate_hours", "values": [None, 24, 12]},
    ]})
    plan = load_spec(write_spec(tmp_path, spec))
    assert plan.design.n_points == 9 and plan.n_runs == 2 * 9 * 3
    pts = [plan.design.overrides(i) for i in range(9)]
    assert {(p["policy.supervision_intensity"], p["policy.response_mandate_hours"]) for p in pts} == {
        (a, b) for a in (0.0, 20.0, 40.0) for b in (None, 24.0, 12.0)}
    assert np.isnan(plan.design.columns(0)["param.policy.response_mandate_hours"])
    assert plan.scenario_at("a", 0).policy.response_mandate_hours is None


def test_lhs_and_design_seed(tmp_path):
    spec = base_spec(design={"type": "lhs", "n": 6, "parameters": PARAMS3[:2]})
    a = load_spec(write_spec(tmp_path, spec, "a.yaml")).design.values
    b = load_spec(write_spec(tmp_path, spec, "b.yaml")).design.values
    assert a.shape == (6, 2) and np.array_equal(a, b)
    spec["design"]["seed"] = 99
    c = load_spec(write_spec(tmp_path, spec, "c.yaml")).design.values
    assert not np.array_equal(a, c)
    # Latin hypercube: one point in each of the n strata of every parameter
    strata = np.floor((a[:, 0] - 0) / (80 / 6)).astype(int)
    assert sorted(strata) == list(range(6))


@pytest.mark.parametrize("name", ["reforms", "supervision_sweep", "sensitivity_morris", "sobol_example",
                                  "reforms_uncertain", "mandate_backfire"])
def test_shipped_specs_load(name):
    plan = load_spec(ROOT / "experiments" / f"{name}.yaml")
    assert plan.n_runs >= 1
    if name == "reforms_uncertain":  # 20 draws of the shipped posterior × 3 scenarios × 2 replications
        assert plan.design.type == "posterior" and plan.design.n_points == 20 and plan.n_runs == 120
        assert set(plan.design.names) == {"departments.duty", "departments.choice_noise",
                                          "departments.resolution_intercept", "citizens.satisfaction_threshold"}
    if name == "reforms":
        assert list(plan.scenarios) == ["baseline", "zzic", "mandate_24h", "supervision_high",
                                        "direct_dispatch", "combined"]
        assert plan.scenarios["combined"].policy.dispatch_mode == "direct"
    if name == "supervision_sweep":  # inspections × mandate (null or 24 h) × call-backs (false/true)
        assert plan.design.type == "grid" and plan.design.n_points == 4 * 2 * 2
        assert plan.design.kinds == ["float", "float", "bool"]
        assert {plan.design.overrides(p)["policy.callback"] for p in range(16)} == {False, True}
        assert {plan.design.overrides(p)["policy.response_mandate_hours"] for p in range(16)} == {None, 24.0}
    if name == "mandate_backfire":  # with and without the mandate at every point of the hypercube
        assert plan.n_runs == 2 * 60 * 3 and plan.baseline == "no_mandate"
        assert plan.holds == {"no_mandate": ["policy.response_mandate_hours"]}
        assert {plan.scenario_at("no_mandate", p).policy.response_mandate_hours for p in range(60)} == {None}
        assert len({plan.scenario_at("mandate", p).policy.response_mandate_hours for p in range(60)}) == 60
    if name == "sensitivity_morris":
        k = len(plan.design.names)
        assert plan.design.n_points == (k + 1) * plan.spec.design.n
    for key in plan.design.names:  # staff by level reach only departments that staff_by_department leaves out
        if key.startswith("departments.staff."):
            level = key.rsplit(".", 1)[1]
            for scenario in plan.scenarios.values():
                city = Hierarchy(scenario, np.random.default_rng(0))
                free = [d for d in city.departments if d.level.value == level
                        and d.node not in scenario.departments.staff_by_department]
                assert free, f"{key} changes no department of {scenario.name}: staff_by_department names them all"


# ------------------------------------------------------------------------------------- posterior design
def _posterior(tmp_path: Path, weights=(0.0, 1.0, 0.0), name="posterior.json", **data) -> Path:
    import json

    body = {"parameters": ["departments.duty", "citizens.patience_h"],
            "draws": {"departments.duty": [0.5, 1.0, 1.5], "citizens.patience_h": [100.0, 200.0, 300.0]},
            "weights": list(weights)}
    body.update(data)
    path = tmp_path / name
    path.write_text(json.dumps(body), encoding="utf-8")
    return path


def test_posterior_design_draws_parameter_sets_by_weight(tmp_path):
    _posterior(tmp_path)
    plan = load_spec(write_spec(tmp_path, base_spec(design={"type": "posterior", "file": "posterior.json", "n": 4})))
    assert plan.design.type == "posterior" and plan.design.n_points == 4 and plan.n_runs == 2 * 4 * 3
    # all the weight on the second draw: every point is that draw
    assert [plan.design.overrides(i) for i in range(4)] == [
        {"departments.duty": 1.0, "citizens.patience_h": 200.0}] * 4
    assert plan.scenario_at("b", 2).departments.duty == 1.0
    assert plan.manifest_design()["draws"] == [1, 1, 1, 1]
    # even weights: the draws are seeded (the same plan twice) and use more than one particle
    _posterior(tmp_path, weights=(1, 1, 1), name="even.json")
    spec = base_spec(design={"type": "posterior", "file": "even.json", "n": 30})
    a, b = load_spec(write_spec(tmp_path, spec)), load_spec(write_spec(tmp_path, spec, "again.yaml"))
    assert a.manifest_design()["draws"] == b.manifest_design()["draws"]
    assert len(set(a.manifest_design()["draws"])) == 3


@pytest.mark.parametrize(("design", "words"), [
    ({"type": "posterior", "n": 3}, "needs 'file'"),
    ({"type": "posterior", "file": "posterior.json"}, "needs 'file'"),
    ({"type": "posterior", "file": "missing.json", "n": 3}, "not found"),
    ({"type": "posterior", "file": "bad.json", "n": 3}, "not a posterior"),
    ({"type": "posterior", "file": "posterior.json", "n": 3,
      "parameters": [{"name": "departments.duty", "low": 0, "high": 1}]}, "give no 'parameters'"),
    ({"type": "lhs", "file": "posterior.json", "n": 3,
      "parameters": [{"name": "departments.duty", "low": 0, "high": 1}]}, "posterior designs only"),
])
def test_posterior_design_mistakes(tmp_path, design, words):
    _posterior(tmp_path)
    (tmp_path / "bad.json").write_text("{\"draws\": []}", encoding="utf-8")
    path = write_spec(tmp_path, base_spec(design=design))
    with pytest.raises(SpecError, match=words) as err:
        load_spec(path)
    assert str(path) in str(err.value)


def test_posterior_design_rejects_a_value_the_scenario_refuses(tmp_path):
    _posterior(tmp_path, draws={"departments.duty": [-1.0, 1.0, 1.5], "citizens.patience_h": [1.0, 2.0, 3.0]})
    with pytest.raises(SpecError, match="departments.duty"):
        load_spec(write_spec(tmp_path, base_spec(design={"type": "posterior", "file": "posterior.json", "n": 2})))


# ---------------------------------------------------------------------------------------------- hold
MANDATE = {"name": "policy.response_mandate_hours", "low": 6, "high": 72}


def held_spec(**extra) -> dict:
    """Scenario 'with' takes the mandate from the design; 'without' keeps none at every point."""
    spec = base_spec(design={"type": "lhs", "n": 8, "parameters": [PARAMS3[0], MANDATE]})
    spec["scenarios"] = {"with": DEFAULT, "without": {"file": DEFAULT, "set": {"policy.response_mandate_hours": None},
                                                      "hold": ["policy.response_mandate_hours"]}}
    spec.update(extra)
    return spec


def test_a_held_key_keeps_its_value_at_every_design_point(tmp_path):
    plan = load_spec(write_spec(tmp_path, held_spec()))
    assert plan.holds == {"without": ["policy.response_mandate_hours"]}
    mandates = plan.design.values[:, 1]
    supervision = plan.design.values[:, 0]
    assert len(set(mandates)) == 8 and len(set(supervision)) == 8
    for p in range(plan.design.n_points):
        with_, without = plan.scenario_at("with", p), plan.scenario_at("without", p)
        assert with_.policy.response_mandate_hours == pytest.approx(mandates[p])
        assert without.policy.response_mandate_hours is None          # held: the design's value is not applied
        assert with_.policy.supervision_intensity == without.policy.supervision_intensity == pytest.approx(
            supervision[p])                                             # the other parameter varies in both
    # an empty hold is no hold: the spec hash is the one of the spec without the key
    plain = base_spec(design={"type": "lhs", "n": 8, "parameters": [PARAMS3[0], MANDATE]})
    empty = base_spec(design=plain["design"])
    empty["scenarios"]["b"]["hold"] = []
    assert (load_spec(write_spec(tmp_path, plain, "plain.yaml")).spec_hash
            == load_spec(write_spec(tmp_path, empty, "empty.yaml")).spec_hash)


def test_a_held_key_must_be_a_design_parameter(tmp_path):
    spec = held_spec()
    spec["scenarios"]["without"]["hold"] = ["policy.callback"]
    path = write_spec(tmp_path, spec)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    msg = str(err.value)
    assert str(path) in msg and "'scenarios.without.hold'" in msg and "'policy.callback'" in msg
    assert "policy.supervision_intensity, policy.response_mandate_hours" in msg  # the allowed names
    no_design = held_spec()
    del no_design["design"]
    with pytest.raises(SpecError, match="no design, so there is nothing to hold"):
        load_spec(write_spec(tmp_path, no_design, "no_design.yaml"))

