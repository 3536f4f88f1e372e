"""Grid designs over true/false settings (and null): the points, the type checks, the stored columns, reruns
and the analysis of a store with a true/false parameter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis.report import write_report
from analysis.store import load_store
from experiments.designs import grid_axis, to_setting
from experiments.runner import rerun, run_experiment, scenario_of_run
from experiments.spec import SpecError, load_spec
from sim import run_scenario

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = (ROOT / "scenarios" / "default.yaml").as_posix()


def write_spec(tmp_path: Path, parameters: list[dict], design_type: str = "grid", name: str = "spec.yaml",
               **extra) -> Path:
    design: dict = {"type": design_type, "parameters": parameters}
    if design_type != "grid":
        design["n"] = 4
    body = {"scenarios": {"a": DEFAULT}, "replications": 1, "days": 2, "warmup_days": 0, "seed": 3,
            "design": design, **extra}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
    return path


CALLBACK = {"name": "policy.callback", "values": [False, True]}
MANDATE = {"name": "policy.response_mandate_hours", "values": [None, 24]}


# ------------------------------------------------------------------------------------------- points
def test_a_boolean_grid_builds_every_combination(tmp_path):
    plan = load_spec(write_spec(tmp_path, [MANDATE, CALLBACK]))
    design = plan.design
    assert design.n_points == 4 and design.kinds == ["float", "bool"]
    points = [design.overrides(i) for i in range(4)]
    assert points == [
        {"policy.response_mandate_hours": None, "policy.callback": False},
        {"policy.response_mandate_hours": None, "policy.callback": True},
        {"policy.response_mandate_hours": 24.0, "policy.callback": False},
        {"policy.response_mandate_hours": 24.0, "policy.callback": True},
    ]
    assert all(type(p["policy.callback"]) is bool for p in points)
    # stored as numbers: 0.0/1.0 for false/true, NaN for null
    assert design.columns(1) == {"param.policy.response_mandate_hours": pytest.approx(np.nan, nan_ok=True),
                                 "param.policy.callback": 1.0}
    assert design.columns(2)["param.policy.callback"] == 0.0
    # the scenario of each point has the setting applied
    assert plan.scenario_at("a", 0).policy.callback is False
    assert plan.scenario_at("a", 3).policy.callback is True
    assert plan.scenario_at("a", 3).policy.response_mandate_hours == 24.0
    manifest = plan.manifest_design()
    entry = manifest["parameters"][1]
    assert entry["kind"] == "bool" and entry["values"] == [False, True]
    assert (entry["low"], entry["high"]) == (0.0, 1.0)


def test_a_boolean_grid_keeps_the_given_order_and_drops_repeats(tmp_path):
    plan = load_spec(write_spec(tmp_path, [{"name": "policy.tracking", "values": [True, False, True]}]))
    assert [plan.design.overrides(i)["policy.tracking"] for i in range(plan.design.n_points)] == [True, False]
    assert plan.manifest_design()["parameters"][0]["values"] == [True, False]


def test_the_hash_tells_boolean_points_apart(tmp_path):
    a = load_spec(write_spec(tmp_path, [CALLBACK], name="a.yaml"))
    b = load_spec(write_spec(tmp_path, [{"name": "policy.callback", "values": [True, False]}], name="b.yaml"))
    assert a.spec_hash != b.spec_hash


def test_stored_values_convert_back_to_settings():
    assert to_setting(1.0, "bool") is True and to_setting(0.0, "bool") is False
    assert to_setting(float("nan"), "bool") is None
    assert to_setting(3.0, "int") == 3 and isinstance(to_setting(3.0, "int"), int)
    assert to_setting(0.5, "float") == 0.5
    assert grid_axis([True, None, False], None, None, None, "bool") == [True, None, False]
    assert grid_axis([1.4, 1.2, None], None, None, None, "int") == [1.0, None]
    assert grid_axis(None, 0.0, 10.0, 3, "float") == [0.0, 5.0, 10.0]


# ------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(("parameters", "design_type", "key", "words"), [
    ([{"name": "policy.callback", "values": [0, 1]}], "grid", "design.parameters.0",
     "'policy.callback' is a true/false setting; its values must be true, false (or null), got 0, 1"),
    ([{"name": "policy.callback", "values": [True, 1]}], "grid", "design.parameters.0", "got 1"),
    ([{"name": "policy.supervision_intensity", "values": [0, True]}], "grid", "design.parameters.0",
     "is a number setting (float); its values must be numbers (or null), got true"),
    ([{"name": "departments.staff.township", "values": [False, 2]}], "grid", "design.parameters.0",
     "is a number setting (int)"),
    ([{"name": "policy.callback", "low": 0, "high": 1, "levels": 2}], "grid", "design.parameters.0",
     "give 'values' (e.g. [false, true])"),
    ([{"name": "policy.callback", "low": 0, "high": 1}], "lhs", "design.parameters.0",
     "can be varied only in a grid design"),
    ([{"name": "policy.callback", "values": [None, True]}], "grid", "design.parameters.0",
     "value null of 'policy.callback' is rejected"),
    ([{"name": "policy.callback", "values": [True, "sometimes"]}], "grid", "design.parameters.0.values",
     "grid values must be numbers, true/false or null; got 'sometimes'"),
    ([{"name": "policy.dispatch_mode", "values": [1, 2]}], "grid", "design.parameters.0",
     "a design varies numbers and true/false settings only"),
])
def test_values_of_the_wrong_type_are_named(tmp_path, parameters, design_type, key, words):
    path = write_spec(tmp_path, parameters, design_type)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    msg = str(err.value)
    assert str(path) in msg and f"key '{key}'" in msg and words in msg, msg


def test_a_nullable_number_still_takes_null_and_numbers(tmp_path):
    plan = load_spec(write_spec(tmp_path, [{"name": "policy.response_mandate_hours", "values": [None, 48, 24]}]))
    assert [plan.design.overrides(i)["policy.response_mandate_hours"] for i in range(3)] == [None, 48.0, 24.0]


# ------------------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def bool_store(tmp_path_factory):
    """A 2 × 2 grid (sign-for mandate × call-backs) on a small city, 1 replication, run serially."""
    folder = tmp_path_factory.mktemp("bool_grid")
    spec = write_spec(folder, [MANDATE, CALLBACK], kpis=["response_rate", "satisfaction_rate", "backlog_end"])
    run_experiment(str(spec), out=str(folder / "s"), engine="serial", progress=False)
    return folder / "s"


def test_the_store_holds_booleans_as_numbers_and_reruns_them(bool_store):
    runs = pd.read_parquet(bool_store / "runs.parquet").sort_values("point")
    assert runs["status"].tolist() == ["ok"] * 4
    assert runs["param.policy.callback"].dtype == np.float64
    assert runs["param.policy.callback"].tolist() == [0.0, 1.0, 0.0, 1.0]
    scenario, seed = scenario_of_run(bool_store, "a__p0001__r000")
    assert scenario.policy.callback is True and scenario.policy.response_mandate_hours is None
    scenario, _ = scenario_of_run(bool_store, "a__p0002__r000")
    assert scenario.policy.callback is False and scenario.policy.response_mandate_hours == 24.0
    # the stored run is the run of that point: the same result again
    again = rerun(bool_store, "a__p0001__r000")
    assert again.summary["response_rate"] == run_scenario(
        load_spec(bool_store.parent / "spec.yaml").scenario_at("a", 1), seed=seed).summary["response_rate"]


def test_analysis_reads_a_boolean_grid(bool_store):
    store = load_store(bool_store)
    assert store.param_columns() == ["param.policy.response_mandate_hours", "param.policy.callback"]
    points = store.points()
    assert points["param.policy.callback"].tolist() == [0.0, 1.0, 0.0, 1.0]
    paths = write_report(bool_store, dpi=40)
    md = paths["md"].read_text(encoding="utf-8")
    assert "grid over 2 parameter(s), 4 point(s)" in md and "policy.callback" in md
    assert (bool_store / "figures" / "sweep_heatmap.png").exists()
