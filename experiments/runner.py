"""Running an experiment: spec → runs → engine → store → the end table.

``python run.py experiment SPEC`` calls :func:`run_experiment`. Every run is one call of
``sim.run_scenario(scenario_at_point, seed)``; the scenario carries the spec's ``days`` and ``warmup_days``
(``run.days`` / ``run.warmup_days``), so :func:`rerun` reproduces any stored run exactly from the manifest
and the run's row in ``runs.parquet``.

Runs execute in replication-major order (replication 0 of every scenario and point first), so an
interrupted experiment already holds paired runs of every scenario. A run that raises is recorded as failed
with its error; the experiment goes on and ``ExperimentOutcome.n_failed`` counts them (``run.py`` exits
non-zero then). ``--resume`` reruns the missing and the failed runs only.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import sim
from common.formatting import format_number
from common.progress import RunProgress
from common.provenance import git_commit, versions
from common.stats import interval_table
from common.store import CaseHistograms, ResultStore, StoreError, load_tables, read_manifest
from sim.errors import WenzhengError
from sim.results import KPI_NAMES, RunResult
from sim.scenario import Scenario, validate

from .designs import to_setting
from .engines import Batch, Batcher, Engine, execute, make_engine
from .spec import ExperimentPlan, load_spec

DEFAULT_OUT = Path("results") / "experiments"


class ExperimentInterrupted(WenzhengError):
    """The experiment was stopped (Ctrl-C); finished runs are kept and ``--resume`` finishes it."""


# --------------------------------------------------------------------------------------- one run
@dataclass
class RunTask:
    """What a worker needs for one run (picklable)."""

    run_id: str
    scenario_name: str
    point: int
    replication: int
    seed: int
    scenario: Scenario
    kpis: list[str]
    keep_cases: bool = False


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _run_scenario() -> Any:
    """``sim.run_scenario``, looked up at call time (tests replace it); straight from ``sim.model`` when
    ``sim`` was imported without its ``__init__`` (a stale editable install seen from another folder)."""
    fn = getattr(sim, "run_scenario", None)
    if fn is None:
        from sim.model import run_scenario as fn
    return fn


def run_one(task: RunTask) -> dict[str, Any]:
    """Run one scenario with one seed; never raises for a model error (status "failed" + error text).

    Returns a plain dict: run_id, status, error, wall_s (seconds), worker, and when ok: summary
    (long: kpi, value, group_by, group), timeseries (long: day, metric, value), distributions (histograms of
    the times to first response and to closure on the store's fixed bins), cases (only if kept).
    """
    t0 = time.perf_counter()
    out: dict[str, Any] = {"run_id": task.run_id, "worker": _worker_id(), "summary": None, "timeseries": None,
                           "cases": None, "distributions": None}
    try:
        # the cases go by as the run hands them on (a full-scale run never holds its whole table)
        hist, kept = CaseHistograms(), []

        def take(piece: pd.DataFrame) -> None:
            hist.add(piece)
            if task.keep_cases:
                kept.append(piece)

        result = _run_scenario()(task.scenario, seed=task.seed, case_sink=take)
        if hist.pieces == 0:  # a run_scenario that kept its cases (a stand-in in tests)
            for piece in result.case_chunks():
                take(piece)
        out["summary"] = _summary_rows(result, task.kpis)
        out["timeseries"] = _timeseries_long(result.timeseries)
        out["distributions"] = hist.frame()
        if task.keep_cases:
            out["cases"] = pd.concat(kept, ignore_index=True) if len(kept) > 1 else kept[0].reset_index(drop=True)
        out["status"], out["error"] = "ok", ""
    except Exception as exc:  # noqa: BLE001 - failure isolation: the experiment goes on
        out["status"], out["error"] = "failed", f"{type(exc).__name__}: {exc}"
        out["summary"] = out["timeseries"] = out["cases"] = out["distributions"] = None
    out["wall_s"] = time.perf_counter() - t0
    return out


def run_batch(tasks: list[RunTask]) -> list[dict[str, Any]]:
    """Run several tasks in order in one worker (one executor task)."""
    return [run_one(t) for t in tasks]


def _summary_rows(result: RunResult, kpis: list[str]) -> pd.DataFrame:
    overall = pd.DataFrame({
        "kpi": list(kpis),
        "value": [float(result.summary.get(k, math.nan)) for k in kpis],
        "group_by": "all", "group": "all",
    })
    groups = result.groups
    if groups is not None and len(groups):
        # the spec's KPIs, plus the splits' own descriptors (e.g. cases, online_share per group)
        keep = groups["kpi"].isin(kpis) | ~groups["kpi"].isin(KPI_NAMES)
        g = groups[keep][["kpi", "value", "group_by", "group"]].copy()
        g["value"] = pd.to_numeric(g["value"], errors="coerce").astype("float64")
        g["group_by"] = g["group_by"].astype(str)
        g["group"] = g["group"].astype(str)
        overall = pd.concat([overall, g], ignore_index=True)
    return overall


def _timeseries_long(ts: pd.DataFrame) -> pd.DataFrame:
    """Every numeric column except ``day`` becomes a metric (values as float64)."""
    if ts is None or not len(ts) or "day" not in ts.columns:
        return pd.DataFrame({"day": pd.Series(dtype="int64"), "metric": pd.Series(dtype="object"),
                             "value": pd.Series(dtype="float64")})
    metrics = [c for c in ts.columns if c != "day" and pd.api.types.is_numeric_dtype(ts[c])]
    day = ts["day"].to_numpy()
    n = len(ts)
    return pd.DataFrame({
        "day": np.tile(day, len(metrics)),
        "metric": np.repeat(np.array(metrics, dtype=object), n),
        "value": np.concatenate([ts[m].to_numpy(dtype="float64") for m in metrics]) if metrics else [],
    })


# ------------------------------------------------------------------------------------- the outcome
@dataclass
class ExperimentOutcome:
    """What an experiment ended with. ``table``: per scenario (and design point) × KPI: mean, ci_low,
    ci_high (95% t-interval over replications), n. ``failures``: (run_id, error) of failed runs."""

    store_dir: Path
    n_ok: int
    n_failed: int
    n_skipped: int
    n_total: int
    table: pd.DataFrame
    wall_s: float
    engine: str
    design_type: str = "none"
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.n_failed == 0

    def render_table(self) -> Any:
        """A rich Table: per KPI and scenario, the mean ± the half-width of its 95% CI (t-interval over
        replications); with a design of several points, the range of the point means instead."""
        from rich.table import Table

        t = self.table
        title = (f"{self.n_ok} runs ok, {self.n_failed} failed"
                 + (f", {self.n_skipped} kept from before" if self.n_skipped else "")
                 + f" — {self.store_dir}")
        caption = ("range of the design points' means" if self.design_type != "none" and t["point"].nunique() > 1
                   else "mean, ± half-width of the 95% confidence interval (t, over replications)")
        table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
        if t.empty:
            table.add_column("no finished runs")
            return table
        table.add_column("KPI", style="bold", no_wrap=True)
        scenarios = list(dict.fromkeys(t["scenario"]))
        kpis = list(dict.fromkeys(t["kpi"]))
        by_design = self.design_type != "none" and t["point"].nunique() > 1
        for s in scenarios:
            table.add_column(s, justify="right")
        for k in kpis:
            cells = []
            for s in scenarios:
                rows = t[(t["scenario"] == s) & (t["kpi"] == k)]
                if rows.empty:
                    cells.append("–")
                elif by_design:
                    cells.append(f"{format_number(rows['mean'].min())} –\n{format_number(rows['mean'].max())}")
                else:
                    r = rows.iloc[0]
                    half = (r["ci_high"] - r["ci_low"]) / 2
                    ci = "" if math.isnan(half) else f"\n±{format_number(half)}"
                    cells.append(f"{format_number(r['mean'])}{ci}")
            table.add_row(k, *cells, end_section=True)
        return table


def kpi_table(summary: pd.DataFrame, scenarios: list[str], kpis: list[str]) -> pd.DataFrame:
    """Per scenario × point × KPI: mean, 95% t-interval over replications (NaN bounds when n < 2), n."""
    cols = ["scenario", "point", "kpi", "mean", "ci_low", "ci_high", "n"]
    if summary is None or summary.empty:
        return pd.DataFrame(columns=cols)
    overall = summary[(summary["group_by"] == "all") & (summary["group"] == "all")]
    agg = interval_table(overall, ["scenario", "point", "kpi"])
    order_s = {s: i for i, s in enumerate(scenarios)}
    order_k = {k: i for i, k in enumerate(kpis)}
    agg = agg.sort_values(["scenario", "point", "kpi"],
                          key=lambda c: c.map(order_s) if c.name == "scenario"
                          else (c.map(order_k) if c.name == "kpi" else c))
    return agg[cols].reset_index(drop=True)


# ------------------------------------------------------------------------------------ manifest
def build_manifest(plan: ExperimentPlan) -> dict[str, Any]:
    """The manifest of a new store (README.md, "The result store"); ``timings`` is added when the experiment ends."""
    return {
        "name": plan.name,
        "spec": plan.raw,
        "spec_hash": plan.spec_hash,
        "spec_path": str(plan.path),
        "git_commit": git_commit(),
        "versions": versions(),
        "master_seed": int(plan.spec.seed),
        "replications": plan.replications,
        "replication_seeds": [int(s) for s in plan.seeds],
        "scenarios": {name: s.to_dict() for name, s in plan.scenarios.items()},
        "design": plan.manifest_design(),
        "hold": {name: list(keys) for name, keys in plan.holds.items()},
        "kpis": list(plan.kpis),
        "baseline": plan.baseline,
        "days": plan.days,
        "warmup_days": plan.warmup_days,
        "keep_cases": bool(plan.spec.keep_cases),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def run_order(plan: ExperimentPlan) -> dict[str, int]:
    """run_id -> canonical position: scenario (spec order), then design point, then replication."""
    order: dict[str, int] = {}
    for s in plan.scenarios:
        for p in range(plan.design.n_points):
            for r in range(plan.replications):
                order[plan.run_id(s, p, r)] = len(order)
    return order


# ------------------------------------------------------------------------------------ running
def run_experiment(spec_path: str, out: str | None = None, workers: int | None = None, engine: str = "local",
                   scheduler: str | None = None, resume: bool = False, replications: int | None = None,
                   days: float | None = None, progress: bool = True) -> ExperimentOutcome:
    """Run (or resume) the experiment of a spec file and return its outcome.

    ``out``: store folder (default ``results/experiments/<spec stem>/``); an existing, non-empty folder is
    refused unless ``resume``. ``workers``: processes (default: CPU count). ``engine``: "local" (process
    pool), "dask" (a LocalCluster, or ``scheduler`` = "tcp://host:port") or "serial" (in this process).
    ``replications`` / ``days`` override the spec. ``progress``: show a progress bar on stderr.
    """
    plan = load_spec(spec_path, replications=replications, days=days)
    out_dir = Path(out) if out else DEFAULT_OUT / Path(spec_path).stem
    eng = make_engine(engine, workers, scheduler)  # fails early (e.g. Dask missing) before touching the store
    store = ResultStore.open(out_dir, build_manifest(plan), resume, run_order(plan),
                             [f"param.{n}" for n in plan.design.names])
    return execute_plan(plan, store, eng, progress=progress)


def execute_plan(plan: ExperimentPlan, store: ResultStore, engine: Engine, progress: bool = False) -> ExperimentOutcome:
    """Run every run of ``plan`` that ``store`` does not hold as ok, on ``engine``; close the engine."""
    t0 = time.perf_counter()
    done = store.ok_run_ids()
    todo = [(s, p, r) for r in range(plan.replications) for s in plan.scenarios for p in range(plan.design.n_points)
            if plan.run_id(s, p, r) not in done]
    n_skipped = len(done & set(store.run_order))
    bar = RunProgress(len(todo), f"{plan.name} on {engine.describe()}") if progress else None
    job = _PlanJob(plan, store, bar)
    batcher = Batcher(todo, engine.capacity(), plan.spec.batch_size, engine.target_batch_s)
    if _run_batches(job, engine, batcher, t0):
        held = len(store.ok_run_ids())
        raise ExperimentInterrupted(
            f"interrupted: {held} of {plan.n_runs} runs are stored in {store.root}; "
            f"run the same command with --resume to finish the rest")
    table = kpi_table(store.summary(), list(plan.scenarios), plan.kpis)
    failed = store.failed_runs()
    n_ok = len(store.ok_run_ids() & set(store.run_order))
    return ExperimentOutcome(
        store_dir=store.root, n_ok=n_ok, n_failed=len(failed), n_skipped=n_skipped, n_total=plan.n_runs,
        table=table, wall_s=time.perf_counter() - t0, engine=engine.describe(), design_type=plan.design.type,
        failures=[(str(r["run_id"]), str(r["error"])) for r in failed])


class _PlanJob:
    """One :func:`execute_plan` call's bookkeeping: run tasks out to the workers, their rows, KPI rows, time
    series and cases back into the store; counts of ok and failed runs and their summed wall time (s)."""

    def __init__(self, plan: ExperimentPlan, store: ResultStore, bar: RunProgress | None) -> None:
        self.plan = plan
        self.store = store
        self.bar = bar
        self.counts: dict[str, Any] = {"ok": 0, "failed": 0, "run_wall_s": 0.0}

    def prepare(self, items: list[tuple[str, int, int]]) -> list[RunTask]:
        plan = self.plan
        return [RunTask(run_id=plan.run_id(s, p, r), scenario_name=s, point=p, replication=r, seed=plan.seeds[r],
                        scenario=plan.scenario_at(s, p), kpis=plan.kpis, keep_cases=bool(plan.spec.keep_cases))
                for s, p, r in items]

    def run_row(self, s: str, p: int, r: int, status: str, error: str, wall_s: float,
                worker: str) -> dict[str, Any]:
        plan = self.plan
        row = {"run_id": plan.run_id(s, p, r), "scenario": s, "point": p, "replication": r,
               "seed": int(plan.seeds[r]), "status": status, "error": error, "wall_s": float(wall_s),
               "worker": worker}
        row.update(plan.design.columns(p))
        return row

    def on_result(self, batch: Batch, outcomes: list[dict[str, Any]]) -> None:
        rows, summaries, series, cases, dists = [], [], [], {}, []
        for (s, p, r), o in zip(batch.items, outcomes, strict=True):
            rows.append(self.run_row(s, p, r, o["status"], o["error"], o["wall_s"], o["worker"]))
            ids = {"run_id": o["run_id"], "scenario": s, "point": p, "replication": r}
            if o["summary"] is not None:
                summaries.append(o["summary"].assign(**ids))
            if o["timeseries"] is not None and len(o["timeseries"]):
                series.append(o["timeseries"].assign(**ids))
            if o["cases"] is not None:
                cases[o["run_id"]] = o["cases"]
            if o.get("distributions") is not None:
                dists.append(o["distributions"].assign(**ids))
            self.counts["ok" if o["status"] == "ok" else "failed"] += 1
            self.counts["run_wall_s"] += float(o["wall_s"])
        self.store.commit(batch.batch_id, rows,
                          pd.concat(summaries, ignore_index=True) if summaries else None,
                          pd.concat(series, ignore_index=True) if series else None, cases,
                          pd.concat(dists, ignore_index=True) if dists else None)
        if self.bar:
            self.bar.advance(len(outcomes), sum(o["status"] != "ok" for o in outcomes))

    def on_lost(self, batch: Batch, reason: str) -> None:
        rows = [self.run_row(s, p, r, "failed", reason, math.nan, "") for s, p, r in batch.items]
        self.store.commit(batch.batch_id, rows)
        self.counts["failed"] += len(rows)
        if self.bar:
            self.bar.advance(len(rows), len(rows))


def _run_batches(job: _PlanJob, engine: Engine, batcher: Batcher, t0: float) -> bool:
    """Execute the batches on ``engine`` (SIGTERM acting as Ctrl-C), then close the engine and finish the
    store whatever happened. True when the experiment was interrupted."""
    store, bar = job.store, job.bar
    interrupted = False
    previous_sigterm = _sigterm_as_interrupt()
    try:
        engine.executor  # start the pool or join the cluster before drawing the bar  # noqa: B018
        if bar:
            bar.start()
        execute(engine, run_batch, batcher, job.on_result, job.on_lost, prepare=job.prepare,
                item_seconds=lambda outs: sum(o["wall_s"] for o in outs), first_batch_id=store.next_batch_id)
    except KeyboardInterrupt:
        interrupted = True
        engine.abort()
    finally:
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)
        if bar:
            bar.stop()
        engine.close()
        store.finish(session_timings(store, engine, job.counts, t0, interrupted))
    return interrupted


def session_timings(store: ResultStore, engine: Engine, counts: dict[str, Any], t0: float,
                    interrupted: bool) -> dict[str, Any]:
    """One session's entry of the manifest's ``timings``: when it started, its wall time and the summed run
    wall time (s), the engine and workers, the runs that ended ok or failed, and whether it was interrupted."""
    return {"started": store.manifest.get("resumed", [store.manifest.get("created")])[-1],
            "wall_s": time.perf_counter() - t0, "run_wall_s": counts["run_wall_s"], "engine": engine.describe(),
            "workers": engine.workers, "runs_ok": counts["ok"], "runs_failed": counts["failed"],
            "interrupted": interrupted}


def _sigterm_as_interrupt() -> Any:
    """Treat SIGTERM (``kill``, ``scancel``, a job's time limit) like Ctrl-C while runs execute, so that the
    workers are stopped and the store is closed cleanly. Returns the previous handler (None off the main
    thread, where handlers cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, handler)
    return previous if previous is not None else signal.SIG_DFL


# ------------------------------------------------------------------------------------ rerun
def scenario_of_run(store_dir: str | Path, run_id: str) -> tuple[Scenario, int]:
    """The exact scenario (design point applied, except the keys its scenario holds) and seed of one stored run."""
    root = Path(store_dir)
    manifest = read_manifest(root)
    runs = load_tables(root)["runs"]
    row = runs[runs["run_id"] == run_id]
    if row.empty:
        raise StoreError(f"{root}: no run {run_id!r} in runs.parquet")
    row = row.iloc[0]
    name = str(row["scenario"])
    scenarios = manifest.get("scenarios") or {}
    if name not in scenarios:
        raise StoreError(f"{root / 'manifest.json'}: scenario {name!r} of run {run_id!r} is not in the manifest")
    base = validate(scenarios[name], f"{root / 'manifest.json'} (scenario {name})")
    kinds = {p["name"]: p.get("kind", "float") for p in (manifest.get("design") or {}).get("parameters", [])}
    held = set((manifest.get("hold") or {}).get(name, ()))
    overrides = {n: to_setting(float(row[f"param.{n}"]), k) for n, k in kinds.items() if n not in held}
    scenario = base.with_overrides(overrides, source=f"{root} run {run_id}") if overrides else base
    return scenario, int(row["seed"])


def rerun(store_dir: str | Path, run_id: str) -> RunResult:
    """Run one stored run again: ``sim.run_scenario(scenario_at_its_point, seed)``, bit for bit the same."""
    scenario, seed = scenario_of_run(store_dir, run_id)
    return _run_scenario()(scenario, seed=seed)
