"""Confidence intervals, paired differences and the other tables, checked against values computed by hand.

The small store: two scenarios (base, reform) × three replications, written as Parquet/JSON by hand.
Student-t quantiles are typed in from tables: t(0.975, 2) = 4.302652729749464, t(0.975, 3) = 3.182446305284263.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from fixtures.analysis_stores import linear_kpis, sensitivity_points, write_store

from analysis.store import Store, load_store
from analysis.summarize import (
    SensitivityUnavailable,
    design_matrix,
    format_kpi_table,
    format_paired_differences,
    group_gaps,
    group_table,
    kpi_table,
    morris_indices,
    paired_differences,
    paired_t_pvalue,
    pareto_efficient,
    significance_marker,
    sobol_indices,
    summary_text,
    t_interval,
    timeseries_bands,
)

T975_DF2 = 4.302652729749464
T975_DF3 = 3.182446305284263

BASE = {"response_rate": [0.70, 0.80, 0.75], "median_response_h": [10.0, 14.0, 12.0], "cost_hours": [100, 100, 100]}
REFORM = {"response_rate": [0.78, 0.86, 0.84], "median_response_h": [10.0, 14.0, 12.0], "cost_hours": [130, 130, 130]}


def hand_store(root, failed_reform_rep: int | None = None):
    """Write the two-scenario store by hand (no helper): manifest.json, runs.parquet, summary.parquet."""
    root.mkdir(parents=True, exist_ok=True)
    runs, summary = [], []
    for sc, values in (("base", BASE), ("reform", REFORM)):
        for k in range(3):
            rid = f"{sc}-{k}"
            ok = not (sc == "reform" and k == failed_reform_rep)
            runs.append({"run_id": rid, "scenario": sc, "point": 0, "replication": k, "seed": 11 + k,
                         "status": "ok" if ok else "failed", "error": None if ok else "RuntimeError: boom",
                         "wall_s": 1.0, "worker": "w0"})
            if not ok:
                continue
            for kpi, vals in values.items():
                summary.append({"run_id": rid, "scenario": sc, "point": 0, "replication": k, "kpi": kpi,
                                "value": float(vals[k]), "group_by": "all", "group": "all"})
            for area, shift in (("urban", 0.05), ("rural", -0.05)):
                summary.append({"run_id": rid, "scenario": sc, "point": 0, "replication": k,
                                "kpi": "response_rate", "value": values["response_rate"][k] + shift,
                                "group_by": "area", "group": area})
    manifest = {"spec": {"name": "hand"}, "scenarios": {"base": {}, "reform": {}}, "baseline": "base",
                "design": {"type": "none", "parameters": [], "n_points": 1}, "kpis": list(BASE),
                "replication_seeds": [11, 12, 13], "days": 10, "warmup_days": 2}
    (root / "manifest.json").write_text(json.dumps(manifest))
    pd.DataFrame(runs).to_parquet(root / "runs.parquet")
    pd.DataFrame(summary).to_parquet(root / "summary.parquet")
    return root


# ---------------------------------------------------------------------------------------------- intervals
def test_t_interval_matches_hand_computation():
    iv = t_interval([1.0, 2.0, 3.0, 4.0])
    sd = math.sqrt((1.5**2 + 0.5**2 + 0.5**2 + 1.5**2) / 3)  # 1.2909944
    half = T975_DF3 * sd / 2.0
    assert iv.n == 4 and iv.mean == pytest.approx(2.5)
    assert iv.sd == pytest.approx(sd)
    assert (iv.low, iv.high) == pytest.approx((2.5 - half, 2.5 + half))
    assert iv.half_width == pytest.approx(2.0542, abs=1e-4)


def test_t_interval_edge_cases():
    assert math.isnan(t_interval([]).mean)
    one = t_interval([3.0, float("nan")])
    assert one.n == 1 and one.mean == 3.0 and math.isnan(one.low) and math.isnan(one.high)
    flat = t_interval([2.0, 2.0, 2.0])
    assert (flat.low, flat.high) == (2.0, 2.0)
    wider = t_interval([1.0, 2.0, 3.0, 4.0], confidence=0.99)
    assert wider.high - wider.low > t_interval([1.0, 2.0, 3.0, 4.0]).high - t_interval([1.0, 2.0, 3.0, 4.0]).low


def test_kpi_table_against_hand_values(tmp_path):
    table = kpi_table(hand_store(tmp_path / "s"))
    row = table[(table["scenario"] == "reform") & (table["kpi"] == "response_rate")].iloc[0]
    vals = np.array([0.78, 0.86, 0.84])
    sd = math.sqrt(((vals - vals.mean()) ** 2).sum() / 2)
    assert row["n"] == 3 and row["unit"] == "share of cases"
    assert row["mean"] == pytest.approx(vals.mean())
    assert row["ci_low"] == pytest.approx(vals.mean() - T975_DF2 * sd / math.sqrt(3))
    assert row["ci_high"] == pytest.approx(vals.mean() + T975_DF2 * sd / math.sqrt(3))
    # baseline first, KPIs in the canonical order
    assert list(pd.unique(table["scenario"])) == ["base", "reform"]
    assert list(table["kpi"][:3]) == ["response_rate", "median_response_h", "cost_hours"]


def test_paired_differences_against_hand_values(tmp_path):
    diffs = paired_differences(hand_store(tmp_path / "s"))
    r = diffs[diffs["kpi"] == "response_rate"].iloc[0]
    d = np.array([0.08, 0.06, 0.09])
    sd = math.sqrt(((d - d.mean()) ** 2).sum() / 2)  # 0.0152753
    se = sd / math.sqrt(3)
    assert r["scenario"] == "reform" and r["baseline"] == "base" and r["n"] == 3
    assert r["diff"] == pytest.approx(0.076667, abs=1e-6)
    assert r["sd"] == pytest.approx(sd)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((d.mean() - T975_DF2 * se, d.mean() + T975_DF2 * se))
    # df = 2: the t CDF is 1/2 + t / (2 sqrt(t² + 2)), so the two-sided p-value is 1 − t / sqrt(t² + 2)
    t = d.mean() / se
    assert r["p_value"] == pytest.approx(1 - t / math.sqrt(t * t + 2))
    assert r["significant"] and r["marker"] == "*"
    assert r["relative"] == pytest.approx(d.mean() / 0.75)
    assert r["effect_dz"] == pytest.approx(d.mean() / sd)
    # paired CI is much tighter than the unpaired spread of either scenario
    assert r["ci_high"] - r["ci_low"] < 0.2


def test_paired_difference_of_identical_and_constant_shifts(tmp_path):
    diffs = paired_differences(hand_store(tmp_path / "s")).set_index("kpi")
    same = diffs.loc["median_response_h"]
    assert same["diff"] == 0 and same["p_value"] == 1.0 and not same["significant"] and same["marker"] == ""
    shift = diffs.loc["cost_hours"]
    assert shift["diff"] == 30 and shift["ci_low"] == shift["ci_high"] == 30
    assert shift["significant"] and shift["marker"] == "***"


def test_failed_run_is_left_out_of_pairs_and_means(tmp_path):
    store = load_store(hand_store(tmp_path / "s", failed_reform_rep=1))
    assert list(store.failed["run_id"]) == ["reform-1"]
    table = kpi_table(store)
    reform = table[(table["scenario"] == "reform") & (table["kpi"] == "response_rate")].iloc[0]
    assert reform["n"] == 2 and reform["mean"] == pytest.approx((0.78 + 0.84) / 2)
    r = paired_differences(store).set_index("kpi").loc["response_rate"]
    assert r["n"] == 2
    assert r["diff"] == pytest.approx((0.08 + 0.09) / 2)
    assert r["baseline_mean"] == pytest.approx((0.70 + 0.75) / 2)  # over the paired replications only


def test_nan_kpi_drops_only_that_pair():
    runs = pd.DataFrame({"run_id": ["a0", "a1", "a2", "b0", "b1", "b2"], "scenario": ["a"] * 3 + ["b"] * 3,
                         "point": 0, "replication": [0, 1, 2] * 2, "seed": [1, 2, 3] * 2, "status": "ok"})
    summary = runs[["run_id", "scenario", "point", "replication"]].assign(
        kpi="median_close_h", value=[10.0, 12.0, 11.0, 9.0, np.nan, 8.0])
    store = Store.from_frames({"baseline": "a", "scenarios": {"a": {}, "b": {}}}, runs, summary)
    r = paired_differences(store).iloc[0]
    assert r["n"] == 2 and r["diff"] == pytest.approx(((9 - 10) + (8 - 11)) / 2)


def test_significance_markers_and_pvalue_rules():
    assert significance_marker(0.0004) == "***"
    assert significance_marker(0.004) == "**"
    assert significance_marker(0.04) == "*"
    assert significance_marker(0.06) == ""
    assert significance_marker(float("nan")) == ""
    assert math.isnan(paired_t_pvalue(np.array([1.0])))
    assert paired_t_pvalue(np.zeros(4)) == 1.0
    assert paired_t_pvalue(np.full(4, 2.0)) == 0.0


def test_pareto_efficient_by_hand():
    cost = [1.0, 2.0, 3.0, 2.0, float("nan")]
    good = [0.5, 0.7, 0.6, 0.7, 0.9]
    assert pareto_efficient(cost, good) == [True, True, False, True, False]
    # lower outcome is better (e.g. hours): (1, 5) beats (2, 6) and (3, 5)
    assert pareto_efficient([1, 2, 3], [5, 6, 5], higher_is_better=False) == [True, False, False]


def test_group_table_and_gaps(tmp_path):
    store = load_store(hand_store(tmp_path / "s"))
    g = group_table(store)
    urban = g[(g["scenario"] == "base") & (g["group"] == "urban")].iloc[0]
    assert urban["mean"] == pytest.approx(0.75 + 0.05) and urban["group_by"] == "area"
    gaps = group_gaps(store)
    row = gaps[(gaps["scenario"] == "reform") & (gaps["gap"] == "urban − rural")].iloc[0]
    assert row["mean"] == pytest.approx(0.10) and row["ci_low"] == pytest.approx(0.10)


def test_timeseries_bands_by_hand(tmp_path):
    root = write_store(tmp_path / "s", scenarios=("baseline",), replications=3, days=2, with_cases=False)
    store = load_store(root)
    ts = store.timeseries(["backlog"])
    day0 = ts[ts["day"] == 0]["value"].to_numpy()
    bands = timeseries_bands(store, ["backlog"])
    b0 = bands[bands["day"] == 0].iloc[0]
    sd = day0.std(ddof=1)
    assert b0["n"] == 3 and b0["mean"] == pytest.approx(day0.mean())
    assert b0["ci_high"] - b0["mean"] == pytest.approx(T975_DF2 * sd / math.sqrt(3))


def test_text_tables_name_scenarios_units_and_markers(tmp_path):
    store = load_store(hand_store(tmp_path / "s"))
    text = format_kpi_table(kpi_table(store), store.scenarios)
    assert "base" in text.splitlines()[0] and "reform" in text.splitlines()[0]
    assert "response_rate (share of cases)" in text and "0.827 ± " in text
    diff_text = format_paired_differences(paired_differences(store))
    assert "+0.077 [+0.039, +0.115]" in diff_text and "***" in diff_text
    full = summary_text(store)
    assert "2 scenario" not in full and "6 finished run(s), 0 failed" in full


# ---------------------------------------------------------------------------------------------- sensitivity
def test_morris_indices_recover_known_effects(tmp_path):
    design, points = sensitivity_points("morris")
    root = write_store(tmp_path / "m", scenarios=("zzic",), replications=2, design=design, points=points,
                       kpi_fn=linear_kpis, with_cases=False, days=3)
    m = morris_indices(root, ["resolution_rate", "median_response_h"]).set_index(["kpi", "parameter"])
    # resolution = 0.5 + 0.04 × supervision: the effect over supervision's range 0–10 is 0.4, mandate none
    assert m.loc[("resolution_rate", "policy.supervision_intensity"), "mu_star"] == pytest.approx(0.4)
    assert m.loc[("resolution_rate", "policy.response_mandate_hours"), "mu_star"] == pytest.approx(0.0)
    assert m.loc[("resolution_rate", "policy.supervision_intensity"), "sigma"] == pytest.approx(0.0, abs=1e-12)
    # median response = 0.5 h per mandate hour over 12–72 h: 30 h
    assert m.loc[("median_response_h", "policy.response_mandate_hours"), "mu_star"] == pytest.approx(30.0)


def test_sobol_indices_isolate_the_only_influential_parameter(tmp_path):
    design, points = sensitivity_points("sobol")
    root = write_store(tmp_path / "s", scenarios=("zzic",), replications=1, design=design, points=points,
                       kpi_fn=linear_kpis, with_cases=False, days=3)
    s = sobol_indices(root, ["resolution_rate", "backlog_end"]).set_index(["kpi", "parameter"])
    assert s.loc[("resolution_rate", "policy.response_mandate_hours"), "S1"] == pytest.approx(0.0, abs=1e-12)
    assert s.loc[("resolution_rate", "policy.response_mandate_hours"), "ST"] == pytest.approx(0.0, abs=1e-12)
    assert s.loc[("resolution_rate", "policy.supervision_intensity"), "ST"] > 0.5
    assert (s.loc["backlog_end", ["S1", "ST"]] == 0).all().all()  # constant KPI: no variance to share


def test_sensitivity_needs_a_complete_sample(tmp_path):
    design, points = sensitivity_points("morris")
    root = write_store(tmp_path / "m", scenarios=("zzic",), replications=1, design=design, points=points,
                       kpi_fn=linear_kpis, with_cases=False, days=2, failed=[("zzic", 0, 4)])
    with pytest.raises(SensitivityUnavailable, match=r"no finished run .*point 4"):
        design_matrix(root, "resolution_rate")
    with pytest.raises(SensitivityUnavailable, match="not 'sobol'"):
        sobol_indices(root)
