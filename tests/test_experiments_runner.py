"""Running experiments end to end: the store contract, CRN pairing, reruns, failure isolation, determinism
across engines and worker counts, kill and resume, export."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from pandas.testing import assert_frame_equal

import experiments.runner as runner
import sim
from experiments.engines import DaskEngine, LocalEngine, SerialEngine, SerialExecutor
from experiments.export import export_store
from experiments.runner import ExperimentOutcome, execute_plan, kpi_table, rerun, run_experiment
from experiments.spec import load_spec, replication_seeds
from experiments.store import ResultStore, StoreError, committed_run_ids, load_tables

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = (ROOT / "scenarios" / "default.yaml").as_posix()
KPIS = ["response_rate", "resolution_rate", "satisfaction_rate", "median_close_h", "backlog_end"]


def write_spec(tmp_path: Path, name: str = "tiny.yaml", **extra) -> Path:
    spec = {"name": "tiny",
            "scenarios": {"a": DEFAULT, "b": {"file": DEFAULT, "set": {"policy.supervision_intensity": 40}}},
            "replications": 2, "days": 10, "warmup_days": 0, "seed": 5, "kpis": KPIS}
    spec.update(extra)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def run_with(engine, spec: Path, out: Path, resume: bool = False) -> ExperimentOutcome:
    plan = load_spec(spec)
    store = ResultStore.open(out, runner.build_manifest(plan), resume, runner.run_order(plan),
                             [f"param.{n}" for n in plan.design.names])
    return execute_plan(plan, store, engine)


def contents(out: Path) -> dict:
    """A store's contents apart from timings, workers and creation times, in a canonical order."""
    t = load_tables(out)
    runs = t["runs"].drop(columns=["wall_s", "worker"]).sort_values("run_id").reset_index(drop=True)
    summary = t["summary"].sort_values(["run_id", "group_by", "group", "kpi"]).reset_index(drop=True)
    ts = t["timeseries"].sort_values(["run_id", "metric", "day"]).reset_index(drop=True)
    from common.store import read_distributions

    dist = read_distributions(out).sort_values(["run_id", "measure", "bin"]).reset_index(drop=True)
    manifest = {k: v for k, v in t["manifest"].items()
                if k not in ("created", "timings", "resumed", "git_commit", "versions", "spec_path")}
    return {"runs": runs, "summary": summary, "timeseries": ts, "distributions": dist, "manifest": manifest}


def assert_same_store(a: Path, b: Path) -> None:
    ca, cb = contents(a), contents(b)
    assert ca["manifest"] == cb["manifest"]
    for key in ("runs", "summary", "timeseries", "distributions"):
        assert_frame_equal(ca[key], cb[key], check_dtype=True, obj=key)


@pytest.fixture(scope="module")
def serial_store(tmp_path_factory) -> tuple[Path, Path, ExperimentOutcome]:
    tmp = tmp_path_factory.mktemp("serial")
    spec = write_spec(tmp)
    outcome = run_experiment(str(spec), out=str(tmp / "store"), engine="serial", progress=False)
    return spec, tmp / "store", outcome


# --------------------------------------------------------------------------------- store contract
def test_store_contract(serial_store):
    spec, out, outcome = serial_store
    assert (outcome.n_ok, outcome.n_failed, outcome.n_skipped, outcome.n_total) == (4, 0, 0, 4)
    manifest = json.loads((out / "manifest.json").read_text())
    for key in ("spec", "spec_hash", "spec_path", "git_commit", "versions", "master_seed", "replication_seeds",
                "scenarios", "design", "kpis", "baseline", "days", "warmup_days", "created", "timings"):
        assert key in manifest, key
    assert manifest["spec"] == yaml.safe_load(spec.read_text())
    assert manifest["master_seed"] == 5 and manifest["replication_seeds"] == replication_seeds(5, 2)
    assert manifest["baseline"] == "a" and manifest["kpis"] == KPIS and manifest["days"] == 10
    assert manifest["design"] == {"type": "none", "parameters": [], "n_points": 1}
    assert set(manifest["versions"]) >= {"python", "mesa", "numpy", "pandas", "pyarrow", "wenzheng"}
    assert manifest["scenarios"]["b"]["policy"]["supervision_intensity"] == 40
    assert manifest["timings"]["wall_s"] > 0

    runs = pd.read_parquet(out / "runs.parquet")
    assert list(runs.columns) == ["run_id", "scenario", "point", "replication", "seed", "status", "error",
                                  "wall_s", "worker"]
    assert list(runs["run_id"]) == ["a__p0000__r000", "a__p0000__r001", "b__p0000__r000", "b__p0000__r001"]
    assert (runs["status"] == "ok").all() and (runs["error"] == "").all()
    # common random numbers: replication k has the same seed in every scenario
    seeds = runs.pivot(index="replication", columns="scenario", values="seed")
    assert (seeds["a"] == seeds["b"]).all() and list(seeds["a"]) == replication_seeds(5, 2)

    summary = pd.read_parquet(out / "summary.parquet")
    assert list(summary.columns) == ["run_id", "scenario", "point", "replication", "kpi", "value",
                                     "group_by", "group"]
    overall = summary[summary["group_by"] == "all"]
    assert len(overall) == 4 * len(KPIS) and set(overall["kpi"]) == set(KPIS)
    assert {"requester_kind", "channel", "area"} <= set(summary["group_by"])
    assert not summary["kpi"].isin(["on_time_response_rate"]).any()  # only the spec's KPIs are kept

    parts = sorted((out / "timeseries").glob("part-*.parquet"))
    assert parts
    ts = pd.concat([pd.read_parquet(p) for p in parts])
    assert list(ts.columns) == ["run_id", "scenario", "point", "replication", "day", "metric", "value"]
    assert ts.groupby("run_id")["day"].nunique().eq(10).all()
    assert {"backlog", "arrivals", "response_rate"} <= set(ts["metric"])
    assert not (out / "cases").exists() and not (out / "_pending").exists()


def test_rerun_reproduces_a_stored_run(serial_store):
    _, out, _ = serial_store
    result = rerun(out, "b__p0000__r001")
    stored = pd.read_parquet(out / "summary.parquet")
    stored = stored[(stored["run_id"] == "b__p0000__r001") & (stored["group_by"] == "all")]
    for kpi, value in zip(stored["kpi"], stored["value"], strict=True):
        assert (math.isnan(value) and math.isnan(result.summary[kpi])) or result.summary[kpi] == value, kpi
    ts = load_tables(out)["timeseries"]
    backlog = ts[(ts["run_id"] == "b__p0000__r001") & (ts["metric"] == "backlog")].sort_values("day")
    assert np.array_equal(backlog["value"].to_numpy(), result.timeseries["backlog"].to_numpy(dtype=float))
    with pytest.raises(StoreError, match="no run"):
        rerun(out, "zz__p0000__r000")


def test_end_table_has_t_intervals(serial_store):
    _, out, outcome = serial_store
    t = outcome.table
    assert list(t.columns) == ["scenario", "point", "kpi", "mean", "ci_low", "ci_high", "n"]
    assert len(t) == 2 * len(KPIS) and (t["n"] == 2).all()
    summary = pd.read_parquet(out / "summary.parquet")
    vals = summary[(summary["scenario"] == "b") & (summary["kpi"] == "backlog_end")
                   & (summary["group_by"] == "all")]["value"].to_numpy()
    row = t[(t["scenario"] == "b") & (t["kpi"] == "backlog_end")].iloc[0]
    half = 12.706204736174707 * vals.std(ddof=1) / math.sqrt(2)  # t(0.975, 1 df)
    assert row["mean"] == pytest.approx(vals.mean())
    assert row["ci_high"] - row["mean"] == pytest.approx(half)
    from rich.table import Table
    assert isinstance(outcome.render_table(), Table)


def test_kpi_table_single_replication_has_no_interval():
    summary = pd.DataFrame({"run_id": ["x"], "scenario": ["s"], "point": [0], "replication": [0],
                            "kpi": ["response_rate"], "value": [0.5], "group_by": ["all"], "group": ["all"]})
    row = kpi_table(summary, ["s"], ["response_rate"]).iloc[0]
    assert row["mean"] == 0.5 and row["n"] == 1 and math.isnan(row["ci_low"])


def test_export_table_layout(serial_store, tmp_path):
    _, out, _ = serial_store
    path = export_store(str(out), out=str(tmp_path / "table.csv"))
    table = pd.read_csv(path)
    cols = list(table.columns)
    assert cols[:6] == ["[run number]", "run_id", "scenario", "point", "replication", "seed"]
    # the setting that differs between the scenarios is a parameter column, before [step] and the metrics
    assert "policy.supervision_intensity" in cols
    assert cols.index("policy.supervision_intensity") < cols.index("[step]") < cols.index("backlog")
    assert len(table) == 4 * 10 and table.groupby("run_id")["[step]"].nunique().eq(10).all()
    assert sorted(table["[run number]"].unique()) == [1, 2, 3, 4]
    ts = load_tables(out)["timeseries"]
    one = ts[(ts["run_id"] == "a__p0000__r001") & (ts["metric"] == "backlog")].sort_values("day")
    assert np.allclose(table[table["run_id"] == "a__p0000__r001"].sort_values("[step]")["backlog"],
                       one["value"])
    pq_path = export_store(str(out), fmt="parquet", out=str(tmp_path / "table.parquet"))
    assert len(pd.read_parquet(pq_path)) == len(table)
    with pytest.raises(StoreError, match="allowed formats"):
        export_store(str(out), fmt="xlsx")


# ------------------------------------------------------------------------------- refusing to mix
def test_existing_store_is_never_overwritten(serial_store, tmp_path):
    spec, out, _ = serial_store
    with pytest.raises(StoreError, match="--resume"):
        run_experiment(str(spec), out=str(out), engine="serial", progress=False)
    again = run_experiment(str(spec), out=str(out), engine="serial", resume=True, progress=False)
    assert (again.n_ok, again.n_skipped, again.n_failed) == (4, 4, 0)
    other = write_spec(tmp_path, "other.yaml", seed=6)
    with pytest.raises(StoreError, match="different spec"):
        run_experiment(str(other), out=str(out), engine="serial", resume=True, progress=False)
    with pytest.raises(StoreError, match="different spec"):
        run_experiment(str(spec), out=str(out), engine="serial", resume=True, replications=3, progress=False)


def test_a_store_that_never_ran_is_reused(tmp_path):
    """An experiment that stopped before its first run (say, the Dask scheduler was unreachable) left only a
    manifest; running again needs no --resume."""
    spec = write_spec(tmp_path, replications=1, scenarios={"a": DEFAULT})
    plan = load_spec(spec)
    store = ResultStore.open(tmp_path / "s", runner.build_manifest(plan), False, runner.run_order(plan), [])
    store.finish({"wall_s": 0.1})  # as after a failed engine start: manifest and empty tables
    assert (tmp_path / "s" / "runs.parquet").exists()
    outcome = run_experiment(str(spec), out=str(tmp_path / "s"), engine="serial", progress=False)
    assert outcome.n_ok == 1


# ------------------------------------------------------------------------------ failure isolation
def test_a_failing_run_is_recorded_and_the_rest_go_on(tmp_path, monkeypatch, serial_store):
    _, reference, _ = serial_store
    spec = write_spec(tmp_path)
    real = sim.run_scenario
    bad_seed = replication_seeds(5, 2)[1]

    def flaky(scenario, seed, **kw):
        if scenario.name == "b" and seed == bad_seed:
            raise RuntimeError("queue exploded")
        return real(scenario, seed=seed, **kw)

    monkeypatch.setattr(sim, "run_scenario", flaky)
    outcome = run_experiment(str(spec), out=str(tmp_path / "s"), engine="serial", progress=False)
    assert (outcome.n_ok, outcome.n_failed) == (3, 1)
    assert outcome.failures == [("b__p0000__r001", "RuntimeError: queue exploded")]
    runs = pd.read_parquet(tmp_path / "s" / "runs.parquet").set_index("run_id")
    assert runs.loc["b__p0000__r001", "status"] == "failed"
    assert "queue exploded" in runs.loc["b__p0000__r001", "error"]
    assert (runs.drop(index="b__p0000__r001")["status"] == "ok").all()
    summary = pd.read_parquet(tmp_path / "s" / "summary.parquet")
    assert "b__p0000__r001" not in set(summary["run_id"]) and summary["run_id"].nunique() == 3
    # once the cause is gone, --resume reruns only the failed run and ends with the uninterrupted store
    monkeypatch.setattr(sim, "run_scenario", real)
    resumed = run_experiment(str(spec), out=str(tmp_path / "s"), engine="serial", resume=True, progress=False)
    assert (resumed.n_ok, resumed.n_failed, resumed.n_skipped) == (4, 0, 3)
    assert_same_store(tmp_path / "s", reference)


class _CrashingSerial(SerialEngine):
    """In-process stand-in for a pool whose worker dies: BrokenProcessPool counts as a dead worker."""

    isolate_alone = True

    def is_worker_death(self, exc):
        return isinstance(exc, BrokenProcessPool)

    def restart(self):
        self._executor = SerialExecutor()
        return self._executor


def test_runs_lost_with_a_dead_worker_are_recorded_failed(tmp_path, monkeypatch):
    spec = write_spec(tmp_path, batch_size=2)
    real_batch = runner.run_batch

    def dying(tasks):
        if any(t.run_id == "a__p0000__r001" for t in tasks):
            raise BrokenProcessPool("a worker died")
        return real_batch(tasks)

    monkeypatch.setattr(runner, "run_batch", dying)
    outcome = run_with(_CrashingSerial(), spec, tmp_path / "s")
    assert (outcome.n_ok, outcome.n_failed) == (3, 1)
    runs = pd.read_parquet(tmp_path / "s" / "runs.parquet").set_index("run_id")
    assert runs.loc["a__p0000__r001", "status"] == "failed"
    assert "worker process died" in runs.loc["a__p0000__r001", "error"]
    assert len(runs) == 4  # nothing dropped


# ------------------------------------------------------------------------------------- determinism
def test_same_store_whatever_the_engine_and_worker_count(serial_store, tmp_path):
    spec, reference, _ = serial_store
    run_with(LocalEngine(workers=2), spec, tmp_path / "local2")
    assert_same_store(tmp_path / "local2", reference)
    workers = set(pd.read_parquet(tmp_path / "local2" / "runs.parquet")["worker"])
    assert len(workers) >= 1 and all(":" in w for w in workers)
    pytest.importorskip("distributed")
    run_with(DaskEngine(workers=2, processes=False), spec, tmp_path / "dask")
    assert_same_store(tmp_path / "dask", reference)


def test_design_runs_and_keep_cases(tmp_path):
    spec = write_spec(tmp_path, replications=1, keep_cases=True, scenarios={"a": DEFAULT},
                      design={"type": "grid", "parameters": [
                          {"name": "departments.staff.township", "values": [1, 3]},
                          {"name": "policy.response_mandate_hours", "values": [None, 24]}]})
    outcome = run_experiment(str(spec), out=str(tmp_path / "s"), engine="serial", progress=False)
    assert outcome.n_ok == 4 and set(outcome.table["point"]) == {0, 1, 2, 3}
    runs = pd.read_parquet(tmp_path / "s" / "runs.parquet")
    assert runs["param.departments.staff.township"].tolist() == [1.0, 1.0, 3.0, 3.0]
    assert runs["param.policy.response_mandate_hours"].isna().tolist() == [True, False, True, False]
    cases = sorted(p.stem for p in (tmp_path / "s" / "cases").glob("*.parquet"))
    assert cases == sorted(runs["run_id"])
    frame = pd.read_parquet(tmp_path / "s" / "cases" / f"{cases[0]}.parquet")
    assert list(frame.columns) == list(sim.CASE_COLUMNS)
    result = rerun(tmp_path / "s", "a__p0003__r000")
    assert len(result.cases) == len(pd.read_parquet(tmp_path / "s" / "cases" / "a__p0003__r000.parquet"))


def test_every_run_stores_time_histograms_that_pool_like_the_cases(tmp_path):
    """distributions/part-*.parquet: per run, the times to first response and to closure on fixed log bins,
    whether or not cases are kept; counted against the kept cases, and drawn by the report from them alone."""
    from analysis.figures import _histogram_curves, time_distributions_figure
    from analysis.store import load_store
    from common.store import DISTRIBUTION_EDGES_H, read_distributions

    spec = write_spec(tmp_path, replications=2, keep_cases=True, scenarios={"a": DEFAULT})
    run_experiment(str(spec), out=str(tmp_path / "s"), engine="serial", progress=False)
    d = read_distributions(tmp_path / "s")
    edges = np.asarray(DISTRIBUTION_EDGES_H)
    for run_id, g in d.groupby("run_id"):
        cases = pd.read_parquet(tmp_path / "s" / "cases" / f"{run_id}.parquet")
        for measure, end in (("response_h", "first_response_h"), ("close_h", "closed_h")):
            h = g[g["measure"] == measure].set_index("bin")["count"]
            t = (cases[end] - cases["created_h"]).to_numpy()
            assert h.sum() == len(cases) and h[-1] == np.isnan(t).sum(), (run_id, measure)
            for k in (20, 33, 45):  # 1 h, 20 h, 316 h: cases up to the bin's top edge
                assert h.loc[0:k].sum() == (t[~np.isnan(t)] < edges[k + 1]).sum(), (run_id, measure, k)
    # the same experiment without kept cases still draws the distributions, from the histograms
    spec2 = write_spec(tmp_path, name="bare.yaml", replications=2, keep_cases=False, scenarios={"a": DEFAULT})
    run_experiment(str(spec2), out=str(tmp_path / "bare"), engine="serial", progress=False)
    bare = load_store(tmp_path / "bare")
    assert not bare.has_cases
    assert_frame_equal(read_distributions(tmp_path / "bare").drop(columns="run_id"),
                       d.drop(columns="run_id"))  # the same runs, the same histograms
    x, y = _histogram_curves(bare)["a"]["close_h"]
    all_cases = pd.concat([pd.read_parquet(f) for f in sorted((tmp_path / "s" / "cases").glob("*.parquet"))])
    t = (all_cases["closed_h"] - all_cases["created_h"]).to_numpy()
    i = int(np.searchsorted(x, 24.0))  # the edge at or above one day
    assert y[i] == pytest.approx((t[~np.isnan(t)] < x[i]).sum() / len(t))
    fig = time_distributions_figure(bare)
    assert len(fig.axes[0].lines) > 0 and len(fig.axes[1].lines) > 0
    # the daily response rate (by creation day) is shaded over the last days, as long as 90% of responses take
    from analysis.figures import censored_days, timeseries_figure

    r = (all_cases["first_response_h"] - all_cases["created_h"]).dropna().to_numpy()
    cut = censored_days(bare)
    assert np.quantile(r, 0.9) / 24.0 <= cut <= np.quantile(r, 0.9) * 10 ** 0.1 / 24.0 + 1e-9
    axes = {ax.get_title(): ax for ax in timeseries_figure(bare).axes}
    assert len(axes["Response rate"].patches) == 1 and len(axes["Backlog"].patches) == 0


# ---------------------------------------------------------------------------------- kill and resume
def _experiment_process(spec: Path, out: Path, engine: str, resume: bool = False) -> subprocess.Popen:
    code = ("import sys; from experiments.runner import run_experiment; "
            "run_experiment(sys.argv[1], out=sys.argv[2], engine=sys.argv[3], workers=1, "
            "resume=sys.argv[4] == 'resume', progress=False)")
    return subprocess.Popen([sys.executable, "-c", code, str(spec), str(out), engine, "resume" if resume else "new"],
                            cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_sigkill_then_resume_gives_the_uninterrupted_store(tmp_path):
    """A real SIGKILL of the experiment's process group mid-run; --resume in a new process finishes it."""
    spec = write_spec(tmp_path, replications=4, batch_size=1)
    out = tmp_path / "killed"
    proc = _experiment_process(spec, out, "local")
    try:
        deadline = time.monotonic() + 120
        while len(committed_run_ids(out)) < 2:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the experiment made no progress"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)  # the runner, its pool and its workers, mid-experiment
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    done = committed_run_ids(out)
    assert 2 <= len(done) < 8, "the kill should land mid-experiment"

    # the rest, and an uninterrupted reference, each in a fresh process (as a user would run them)
    resume = _experiment_process(spec, out, "serial", resume=True)
    reference = _experiment_process(spec, tmp_path / "reference", "serial")
    for p in (resume, reference):
        assert p.wait(timeout=300) == 0, p.stderr.read().decode()
    runs = pd.read_parquet(out / "runs.parquet")
    assert len(runs) == 8 and (runs["status"] == "ok").all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["resumed"]) == 1 and len(manifest["timings"]["sessions"]) == 1  # the killed one never closed
    assert_same_store(out, tmp_path / "reference")
    assert not list(out.rglob("*.tmp")) and not (out / "_pending").exists()


def test_a_stored_run_of_a_holding_scenario_reruns_without_the_held_value(tmp_path):
    """The manifest lists each scenario's held keys, and a rerun leaves them at the scenario's own value."""
    spec = write_spec(tmp_path, replications=1, scenarios={
        "a": DEFAULT, "b": {"file": DEFAULT, "set": {"policy.response_mandate_hours": None},
                            "hold": ["policy.response_mandate_hours"]}},
        design={"type": "grid", "parameters": [{"name": "policy.response_mandate_hours", "values": [12, 48]}]})
    plan = load_spec(spec)
    manifest = runner.build_manifest(plan)
    assert manifest["hold"] == {"b": ["policy.response_mandate_hours"]}
    store = ResultStore.open(tmp_path / "s", manifest, False, runner.run_order(plan),
                             [f"param.{n}" for n in plan.design.names])
    store.commit(0, [{"run_id": plan.run_id(s, p, 0), "scenario": s, "point": p, "replication": 0,
                      "seed": plan.seeds[0], "status": "failed", "error": "not run (test)", "wall_s": 0.0,
                      "worker": "test", **plan.design.columns(p)} for s in plan.scenarios for p in (0, 1)])
    store.finish({"wall_s": 0.0})
    for p, hours in ((0, 12.0), (1, 48.0)):
        with_, without = (runner.scenario_of_run(tmp_path / "s", plan.run_id(s, p, 0))[0] for s in ("a", "b"))
        assert with_.policy.response_mandate_hours == hours and without.policy.response_mandate_hours is None
