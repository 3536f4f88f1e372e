"""Scenario discovery (analysis/discover.py, ``python run.py discover``): PRIM finds a box planted in a
synthetic store, paired differences follow common random numbers, no case of interest is said plainly, every
bad input is one clear message, and the experiment report lists the discoveries."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fixtures.analysis_stores import BASE_LEVELS, write_store

from analysis.discover import choose_box, discover, write_discovery
from analysis.report import SECTIONS, discovery_section
from analysis.store import load_store
from run import main
from sim.results import KPI_NAMES

LOAD, STAFF, INSPECTIONS = ("demand.problems_per_citizen_year", "departments.staff_scale.county",
                            "policy.supervision_intensity")
RANGES = {LOAD: (1.4, 3.0), STAFF: (0.6, 1.4), INSPECTIONS: (0.0, 80.0)}
#: The planted box: high load and few county staff (the third parameter does not matter).
BOX = {LOAD: (2.4, 3.0), STAFF: (0.6, 1.0)}
N_POINTS = 80


def lhs_points(n: int, seed: int = 7) -> tuple[dict, list[dict[str, float]]]:
    """A Latin hypercube over RANGES: the manifest's design block and the points."""
    rng = np.random.default_rng(seed)
    u = (np.argsort(rng.random((len(RANGES), n)), axis=1).T + rng.random((n, len(RANGES)))) / n
    points = [{name: lo + (hi - lo) * u[i, j] for j, (name, (lo, hi)) in enumerate(RANGES.items())}
              for i in range(n)]
    design = {"type": "lhs", "n_points": n, "parameters": [
        {"name": name, "low": lo, "high": hi, "kind": "float"} for name, (lo, hi) in RANGES.items()]}
    return design, points


def inside(params: dict[str, float]) -> bool:
    return all(lo <= params[name] <= hi for name, (lo, hi) in BOX.items())


def mandate_kpis(scenario, params, replication, rng, crn):
    """True resolution 0.70 plus replication noise shared by both scenarios (common random numbers); the
    mandate lowers it by 5 points inside the box and raises it by 1 point elsewhere."""
    out = {k: BASE_LEVELS[k] for k in KPI_NAMES}
    effect = 0.0 if scenario == "no_mandate" else (-0.05 if inside(params) else 0.01)
    out["true_resolution_rate"] = 0.70 + 0.03 * crn[0] + effect
    return out


def level_kpis(scenario, params, replication, rng, crn):
    """One scenario: true resolution 0.55 inside the box, 0.70 outside, plus a little noise."""
    out = {k: BASE_LEVELS[k] for k in KPI_NAMES}
    out["true_resolution_rate"] = (0.55 if inside(params) else 0.70) + 0.005 * crn[0]
    return out


@pytest.fixture(scope="module")
def paired(tmp_path_factory):
    design, points = lhs_points(N_POINTS)
    root = write_store(tmp_path_factory.mktemp("paired") / "s", scenarios=("no_mandate", "mandate"),
                       replications=3, days=4, design=design, points=points, kpi_fn=mandate_kpis,
                       with_cases=False, failed=[("no_mandate", 0, 5)])
    return root, points


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    design, points = lhs_points(N_POINTS, seed=11)
    root = write_store(tmp_path_factory.mktemp("single") / "s", scenarios=("zzic",), replications=2, days=3,
                       design=design, points=points, kpi_fn=level_kpis, with_cases=False)
    return root, points


def assert_finds_the_box(found, points) -> None:
    truth = np.array([inside(p) for p in points])
    assert found.n_cases == truth.sum() and found.points["case"].tolist() == truth.tolist()
    box = found.boxes[0]
    assert box.coverage >= 0.9 and box.density >= 0.9
    limits = {lim.parameter: lim for lim in box.limits}
    assert set(limits) == set(BOX)                   # the parameter that does not matter is left open
    assert all(lim.significant for lim in box.limits)  # quasi-p below 0.05
    assert limits[LOAD].low == pytest.approx(BOX[LOAD][0], abs=0.1) and limits[LOAD].high is None
    assert limits[STAFF].high == pytest.approx(BOX[STAFF][1], abs=0.06) and limits[STAFF].low is None


def test_prim_finds_the_planted_box_in_one_scenario(single):
    root, points = single
    found = discover(root, "true_resolution_rate", below=0.6)
    assert found.question.versus is None and found.question.scenario == "zzic"
    assert_finds_the_box(found, points)
    assert "the true resolution rate of **zzic** is below 60.0%" in found.reading()[0]


def test_the_paired_difference_finds_where_the_mandate_backfires(paired, tmp_path, capsys):
    root, points = paired
    assert main(["discover", str(root), "--kpi", "true_resolution_rate", "--below", "0"]) == 0
    out = capsys.readouterr().out
    assert "mandate lowers the true resolution rate against no_mandate" in out and "coverage" in out
    folder = root / "discovery" / "true_resolution_rate-below-0"
    data = json.loads((folder / "discovery.json").read_text(encoding="utf-8"))
    assert (data["scenario"], data["versus"], data["n_points"]) == ("mandate", "no_mandate", N_POINTS)
    assert data["boxes"][0]["limits"][LOAD]["low"] == pytest.approx(BOX[LOAD][0], abs=0.1)
    assert data["n_cases"] == data["n_cases_sure"] == sum(inside(p) for p in points)
    assert {"discovery.html", "discovery.md", "peeling.csv", "points.csv"} <= {p.name for p in folder.iterdir()}
    assert sorted(p.name for p in (folder / "figures").glob("*.png")) == [
        "box_limits.png", "peeling.png", "y_by_parameter.png"]
    peeling = pd.read_csv(folder / "peeling.csv")
    assert peeling["chosen"].sum() == len(data["boxes"])
    html = (folder / "discovery.html").read_text(encoding="utf-8")
    assert html.count('src="data:image/png;base64,') == 3 and "PRIM box 1 covers" in html

    found = discover(root, "true_resolution_rate", below=0)
    assert_finds_the_box(found, points)
    # replication by replication: the shared noise cancels, even where one baseline run failed (point 5)
    expected = np.array([-0.05 if inside(p) else 0.01 for p in points])
    np.testing.assert_allclose(found.points["y"], expected, atol=1e-9)
    assert found.points.set_index("point").loc[5, "n"] == 2 and (found.points["n"] == 3).sum() == N_POINTS - 1
    # the other way round: no_mandate − mandate is positive exactly where the mandate backfires
    reverse = discover(root, "true_resolution_rate", above=0, scenario="no_mandate", versus="mandate")
    np.testing.assert_allclose(reverse.points["y"], -expected, atol=1e-9)
    assert reverse.n_cases == found.n_cases


def test_no_case_of_interest_is_said_plainly(paired, tmp_path):
    root, _ = paired
    found = discover(root, "true_resolution_rate", below=-0.1)
    assert found.n_cases == 0 and not found.boxes and found.trajectories.empty
    text = found.reading()[0]
    assert ("the paired difference **mandate** − **no_mandate** in the true resolution rate is not below −10.0 pp "
            "at any of the 80 design points") in text
    assert "runs from −5.0 pp to +1.0 pp (median +1.0 pp)" in text
    paths = write_discovery(found, out=tmp_path / "none")
    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert data["n_cases"] == 0 and data["boxes"] == [] and data["y_summary"]["min"] == pytest.approx(-0.05)
    assert [p.name for p in paths["figures"].glob("*.png")] == ["y_by_parameter.png"]


def test_the_box_chosen_is_the_widest_dense_enough():
    traj = pd.DataFrame({"id": [0, 1, 2, 3, 4], "coverage": [1.0, 1.0, 0.9, 0.9, 0.5],
                         "density": [0.2, 0.6, 0.8, 0.85, 1.0], "res_dim": [0, 1, 2, 2, 3]})
    assert choose_box(traj, 0.8) == 3        # coverage 0.9 twice: the denser
    assert choose_box(traj, 0.9) == 4
    assert choose_box(traj, 0.5) == 1
    assert choose_box(traj.assign(density=0.1), 0.8) is None


@pytest.fixture(scope="module")
def plain_store(tmp_path_factory):
    return write_store(tmp_path_factory.mktemp("plain") / "s", replications=2, days=2, with_cases=False)


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    design, points = lhs_points(6)
    return write_store(tmp_path_factory.mktemp("small") / "s", scenarios=("zzic",), replications=2, days=2,
                       design=design, points=points, kpi_fn=level_kpis, with_cases=False)


@pytest.mark.parametrize(("case", "args", "words"), [
    ("missing", ["--kpi", "true_resolution_rate", "--below", "0"], ["no such result store"]),
    ("plain", ["--kpi", "true_resolution_rate", "--below", "0"],
     ["manifest.json: key 'design'", "nothing to discover over", "allowed: a store of a spec with a design"]),
    ("paired", ["--kpi", "true_resolution", "--below", "0"],
     ["--kpi: 'true_resolution' is not a KPI of", "allowed: response_rate", "true_resolution_rate"]),
    ("paired", ["--kpi", "true_resolution_rate", "--below", "0", "--scenario", "mandate_24h"],
     ["--scenario: 'mandate_24h' is not a scenario", "allowed: no_mandate, mandate"]),
    ("paired", ["--kpi", "true_resolution_rate", "--below", "0", "--versus", "mandate"],
     ["--versus", "both 'mandate'", "allowed: no_mandate"]),
    ("single", ["--kpi", "true_resolution_rate", "--below", "0", "--versus", "zzic"],
     ["--versus", "one scenario (zzic)", "nothing to pair with"]),
    ("paired", ["--kpi", "true_resolution_rate"], ["exactly one of --below X or --above X", "got neither"]),
    ("paired", ["--kpi", "true_resolution_rate", "--below", "0", "--above", "0.1"], ["got both"]),
    ("paired", ["--kpi", "true_resolution_rate", "--below", "nan"], ["--below must be a finite number"]),
    ("paired", ["--kpi", "true_resolution_rate", "--below", "0", "--threshold", "1.5"],
     ["--threshold must be in (0, 1], got 1.5"]),
    ("small", ["--kpi", "true_resolution_rate", "--below", "0.6"],
     ["6 design point(s) have a value", "PRIM needs at least 10"]),
])
def test_bad_input_is_one_clear_message(case, args, words, request, tmp_path, capsys):
    fixtures = {"plain": "plain_store", "small": "small_store", "paired": "paired", "single": "single"}
    root = tmp_path / "nowhere" if case == "missing" else request.getfixturevalue(fixtures[case])
    root = root[0] if isinstance(root, tuple) else root
    assert main(["discover", str(root), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    for w in words:
        assert w in err, (w, err)
    if case == "missing":
        assert str(root) in err


def test_the_report_lists_the_discoveries(paired, plain_store, tmp_path):
    root, _ = paired
    write_discovery(discover(root, "true_resolution_rate", below=0))
    sec = discovery_section(load_store(root))
    assert (sec.id, sec.title) == ("discovery", dict(SECTIONS)["discovery"])
    text = " ".join(getattr(b, "text", "") for b in sec.blocks)
    assert "**true_resolution_rate-below-0**" in text
    assert "discovery/true_resolution_rate-below-0/discovery.html" in text
    table = next(b for b in sec.blocks if hasattr(b, "rows"))
    assert table.header == ["box", "where", "coverage", "density", "mass"]
    assert table.rows[0][0] == "1" and LOAD in table.rows[0][1] and table.rows[0][2] == "100%"
    assert any(getattr(b, "name", "") == "discovery-true_resolution_rate-below-0" for b in sec.blocks)
    assert "No scenario discovery was run on this store" in discovery_section(load_store(plain_store)).blocks[0].text
