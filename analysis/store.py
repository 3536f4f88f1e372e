"""Reading an experiment's result store from disk (or wrapping in-memory tables) for analysis.

The store layout is written by ``experiments`` (DESIGN.md, "Result contracts"); ``analysis`` only reads it::

    DIR/manifest.json              spec, spec_hash, git_commit, versions, master_seed, replication_seeds,
                                   scenarios {name: resolved scenario}, design, kpis, baseline, days, ...
    DIR/runs.parquet               one row per run: run_id, scenario, point, replication, seed, status
                                   ("ok" | "failed"), error, wall_s (seconds), worker, param.<key> ...
    DIR/summary.parquet            long: run_id, scenario, point, replication, kpi, value, group_by, group
    DIR/timeseries/part-*.parquet  long: run_id, scenario, point, replication, day, metric, value
    DIR/cases/<run_id>.parquet     optional: the cases table of one run (times in hours since the start)
    DIR/_pending/runs-<batch>.parquet, summary-<batch>.parquet
                                   batches committed since the last consolidation (an interrupted or
                                   running experiment); a summary part counts only when its runs part,
                                   the commit mark, exists

Every problem with the store (missing directory, missing or corrupt manifest, unreadable Parquet, missing
columns) raises :class:`StoreError`, whose message names the file and what is wrong. Failed runs are kept
aside in :attr:`Store.failed` and every analysis works on the runs that finished (``status == "ok"``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from sim.errors import WenzhengError

RUN_COLUMNS: tuple[str, ...] = ("run_id", "scenario", "point", "replication", "seed", "status")
SUMMARY_COLUMNS: tuple[str, ...] = ("run_id", "scenario", "point", "replication", "kpi", "value")
TIMESERIES_COLUMNS: tuple[str, ...] = ("run_id", "scenario", "point", "replication", "day", "metric", "value")
#: The overall KPIs in summary.parquet carry ``group_by == group == "all"``; other rows are equity splits.
ALL = "all"
#: The equity splits the engine writes, in display order, with their groups in display order.
SPLITS: dict[str, tuple[str, ...]] = {
    "requester_kind": ("citizen", "enterprise"),
    "channel": ("online", "hotline", "offline"),
    "area": ("urban", "rural"),
}
DESIGN_TYPES: tuple[str, ...] = ("none", "grid", "lhs", "morris", "sobol")
#: The KPIs figures show first when a spec lists many: the three rates, time to close, trust, cost.
HEADLINE_KPIS: tuple[str, ...] = ("resolution_rate", "satisfaction_rate", "response_rate", "median_close_h",
                                  "mean_trust", "staff_hours")
PARAM_PREFIX = "param."


class StoreError(WenzhengError):
    """A result store is missing, incomplete or corrupt. The message names the file and the problem."""


@dataclass
class Store:
    """One experiment's results, read into memory (cases stay on disk until asked for).

    ``runs``: every run (ok and failed), one row each. ``summary``: KPI values of the runs that finished,
    long (``run_id, scenario, point, replication, kpi, value, group_by, group``). ``failed``: the runs whose
    status is not ``"ok"``, with their error message. Times are in hours, wall times in seconds.
    """

    manifest: dict[str, Any]
    runs: pd.DataFrame
    summary: pd.DataFrame
    path: Path | None = None
    notes: list[str] = field(default_factory=list)
    _timeseries: pd.DataFrame | None = None
    _cases: dict[str, pd.DataFrame] | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frames(
        cls,
        manifest: Mapping[str, Any],
        runs: pd.DataFrame,
        summary: pd.DataFrame,
        timeseries: pd.DataFrame | None = None,
        cases: Mapping[str, pd.DataFrame] | None = None,
    ) -> Store:
        """Build a store from in-memory tables with the same columns as the files on disk."""
        manifest = _check_manifest(dict(manifest), "manifest")
        runs = _normalise_runs(_require(runs, RUN_COLUMNS, "runs table"))
        summary = _normalise_summary(_require(summary, SUMMARY_COLUMNS, "summary table"))
        if timeseries is not None:
            timeseries = _require(timeseries, TIMESERIES_COLUMNS, "time-series table")
        store = cls(manifest=manifest, runs=runs, summary=summary, _timeseries=timeseries,
                    _cases=dict(cases) if cases is not None else None)
        store._finish()
        return store

    def _finish(self) -> None:
        ok_ids = set(self.runs.loc[self.runs["status"] == "ok", "run_id"])
        known = set(self.runs["run_id"])
        stray = set(self.summary["run_id"]) - known
        if stray:
            self.notes.append(f"summary has {len(stray)} run(s) not listed in runs; they are ignored")
        self.summary = self.summary[self.summary["run_id"].isin(ok_ids)].reset_index(drop=True)
        missing = ok_ids - set(self.summary["run_id"])
        if missing:
            self.notes.append(
                f"{len(missing)} finished run(s) have no KPI rows in the summary and are left out: "
                + ", ".join(sorted(map(str, missing))[:5]) + (" …" if len(missing) > 5 else ""))

    # ------------------------------------------------------------------ manifest views
    @property
    def name(self) -> str:
        """The experiment's name (from the spec), else the store directory's name."""
        spec = self.manifest.get("spec") or {}
        if isinstance(spec, dict) and spec.get("name"):
            return str(spec["name"])
        return self.path.name if self.path is not None else "experiment"

    @property
    def scenarios(self) -> list[str]:
        """Scenario names in the spec's order (baseline first), then any others seen in the runs."""
        names = list(self.manifest.get("scenarios") or {})
        for name in pd.unique(self.runs["scenario"]):
            if name not in names:
                names.append(str(name))
        base = self.baseline
        if base in names:
            names.remove(base)
            names.insert(0, base)
        return names

    @property
    def baseline(self) -> str:
        """The scenario that paired differences are taken against (manifest ``baseline``, else the first)."""
        base = self.manifest.get("baseline")
        if base:
            return str(base)
        names = list(self.manifest.get("scenarios") or {}) or [str(s) for s in pd.unique(self.runs["scenario"])]
        return names[0] if names else ""

    @property
    def design(self) -> dict[str, Any]:
        """The design block: ``type`` (none|grid|lhs|morris|sobol), ``parameters`` [{name, low, high}], ..."""
        design = dict(self.manifest.get("design") or {})
        design.setdefault("type", "none")
        design.setdefault("parameters", [])
        return design

    @property
    def wall_s(self) -> float | None:
        """The experiment's wall time in seconds (all sessions of a resumed experiment together)."""
        timings = self.manifest.get("timings") or {}
        value = timings.get("wall_s", self.manifest.get("wall_s"))
        return float(value) if isinstance(value, int | float) else None

    def headline_kpis(self, n: int = 4) -> list[str]:
        """Up to ``n`` KPIs for figures with one panel per KPI: the spec's KPIs when it lists at most ``n``,
        else the spec's KPIs among HEADLINE_KPIS first, then the rest in the spec's order."""
        kpis = self.kpis
        if len(kpis) <= n:
            return kpis
        first = [k for k in HEADLINE_KPIS if k in kpis]
        return (first + [k for k in kpis if k not in first])[:n]

    @property
    def design_type(self) -> str:
        return str(self.design["type"])

    @property
    def parameters(self) -> list[str]:
        """Design parameter names (dotted scenario keys), in the design's order."""
        return [str(p["name"]) for p in self.design["parameters"]]

    @property
    def kpis(self) -> list[str]:
        """The KPIs the spec asks about (manifest ``kpis``), else every KPI in the summary."""
        from sim.results import KPI_NAMES

        present = list(pd.unique(self.overall["kpi"])) if len(self.summary) else []
        wanted = [str(k) for k in (self.manifest.get("kpis") or [])]
        if wanted:
            return wanted
        ordered = [k for k in KPI_NAMES if k in present]
        return ordered + sorted(k for k in present if k not in ordered)

    # ------------------------------------------------------------------ tables
    @property
    def ok_runs(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] == "ok"].reset_index(drop=True)

    @property
    def failed(self) -> pd.DataFrame:
        """Runs that did not finish: run_id, scenario, point, replication, seed, status, error."""
        cols = [c for c in ("run_id", "scenario", "point", "replication", "seed", "status", "error", "wall_s")
                if c in self.runs]
        return self.runs.loc[self.runs["status"] != "ok", cols].reset_index(drop=True)

    @property
    def overall(self) -> pd.DataFrame:
        """Overall KPI rows (``group_by == group == "all"``) of the finished runs."""
        s = self.summary
        return s[(s["group_by"] == ALL) & (s["group"] == ALL)].reset_index(drop=True)

    @property
    def groups(self) -> pd.DataFrame:
        """Equity split rows (requester_kind, channel, area) of the finished runs."""
        s = self.summary
        return s[~((s["group_by"] == ALL) & (s["group"] == ALL))].reset_index(drop=True)

    def param_columns(self) -> list[str]:
        """The ``param.<key>`` columns of runs, in the design's parameter order where known."""
        cols = [c for c in self.runs.columns if str(c).startswith(PARAM_PREFIX)]
        order = {PARAM_PREFIX + p: i for i, p in enumerate(self.parameters)}
        return sorted(cols, key=lambda c: (order.get(c, len(order)), c))

    def points(self) -> pd.DataFrame:
        """One row per design point with its parameter values (from runs.parquet), ordered by point."""
        cols = ["point", *self.param_columns()]
        return self.runs[cols].drop_duplicates("point").sort_values("point").reset_index(drop=True)

    def timeseries(self, metrics: Iterable[str] | None = None) -> pd.DataFrame:
        """Daily metrics of the finished runs, long (``run_id, scenario, point, replication, day, metric,
        value``); only ``metrics`` when given. Empty (with a note) when the store has no time series."""
        wanted = list(metrics) if metrics is not None else None
        if self._timeseries is None:
            self._timeseries = self._read_timeseries()
        ts = self._timeseries
        if wanted is not None:
            ts = ts[ts["metric"].isin(wanted)]
        ok_ids = set(self.ok_runs["run_id"])
        return ts[ts["run_id"].isin(ok_ids)].reset_index(drop=True)

    def _read_timeseries(self) -> pd.DataFrame:
        empty = pd.DataFrame({c: pd.Series(dtype="float64") for c in TIMESERIES_COLUMNS})
        if self.path is None:
            return empty
        folder = self.path / "timeseries"
        files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
        if not files:
            single = self.path / "timeseries.parquet"
            files = [single] if single.is_file() else []
        if not files:
            self.notes.append(f"{folder} holds no time series; the daily figures are left out")
            return empty
        parts = [_require(_read_parquet(f), TIMESERIES_COLUMNS, str(f)) for f in files]
        return pd.concat(parts, ignore_index=True)

    @property
    def has_cases(self) -> bool:
        """Whether per-case tables were stored (``cases/<run_id>.parquet``)."""
        if self._cases is not None:
            return bool(self._cases)
        return self.path is not None and any((self.path / "cases").glob("*.parquet"))

    def cases(self, run_id: str, columns: Iterable[str] | None = None) -> pd.DataFrame | None:
        """The cases table of one run (times in hours since the start), or None when it was not stored."""
        cols = list(columns) if columns is not None else None
        if self._cases is not None:
            df = self._cases.get(str(run_id))
            return None if df is None else (df[cols] if cols else df)
        if self.path is None:
            return None
        file = self.path / "cases" / f"{run_id}.parquet"
        if not file.is_file():
            return None
        df = _read_parquet(file, columns=cols)
        return df


# ---------------------------------------------------------------------------------------------- loading
def load_store(path: str | Path) -> Store:
    """Read the result store in directory ``path``. Raises :class:`StoreError` on any problem."""
    root = Path(path)
    if not root.exists():
        raise StoreError(f"{root}: no such result store (the directory does not exist)")
    if not root.is_dir():
        raise StoreError(f"{root}: a result store is a directory, this is a file")
    manifest = _read_manifest(root / "manifest.json")
    runs_file = root / "runs.parquet"
    pending = root / "_pending"
    run_parts = sorted(pending.glob("runs-*.parquet"), key=_part_id) if pending.is_dir() else []
    if not runs_file.exists() and not run_parts:
        raise StoreError(f"{runs_file}: missing — the store lists no runs (was the experiment started?)")
    run_files = ([runs_file] if runs_file.exists() else []) + run_parts
    runs = pd.concat([_require(_read_parquet(f), RUN_COLUMNS, str(f)) for f in run_files], ignore_index=True)
    runs = _normalise_runs(runs)
    committed = {_part_id(f) for f in run_parts}
    summary_file = root / "summary.parquet"
    summary_files = ([summary_file] if summary_file.exists() else []) + [
        f for f in (sorted(pending.glob("summary-*.parquet"), key=_part_id) if pending.is_dir() else [])
        if _part_id(f) in committed]
    if summary_files:
        frames = [_require(_read_parquet(f), SUMMARY_COLUMNS, str(f)) for f in summary_files]
        summary = _normalise_summary(_latest_rows(frames))
    elif (runs["status"] == "ok").any():
        raise StoreError(f"{summary_file}: missing, but runs.parquet lists finished runs")
    else:
        summary = _normalise_summary(pd.DataFrame({c: pd.Series(dtype="object") for c in SUMMARY_COLUMNS}))
    store = Store(manifest=manifest, runs=runs, summary=summary, path=root)
    if run_parts:
        store.notes.append(f"{len(run_parts)} batch(es) not yet consolidated were read from {pending} "
                           "(the experiment is running or was interrupted)")
    store._finish()
    return store


def _part_id(path: Path) -> int:
    """The batch number of ``runs-000012.parquet`` (12); -1 when the name has none."""
    digits = path.stem.rsplit("-", 1)[-1]
    return int(digits) if digits.isdigit() else -1


def _latest_rows(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate; where several frames hold rows of one run (a run retried on resume), keep the last."""
    tagged = [f.assign(_src=i) for i, f in enumerate(frames) if len(f)]
    if not tagged:
        return frames[0]
    both = pd.concat(tagged, ignore_index=True)
    latest = both.groupby("run_id")["_src"].transform("max")
    return both[both["_src"] == latest].drop(columns="_src").reset_index(drop=True)


def as_store(store: Store | str | Path) -> Store:
    """Accept a :class:`Store` or a store directory."""
    return store if isinstance(store, Store) else load_store(store)


def _read_manifest(file: Path) -> dict[str, Any]:
    if not file.is_file():
        raise StoreError(f"{file}: missing — not a result store (every store has a manifest.json)")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreError(f"{file}: cannot be read ({exc})") from exc
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StoreError(f"{file}: corrupt JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc
    return _check_manifest(manifest, str(file))


def _check_manifest(manifest: Any, where: str) -> dict[str, Any]:
    if not isinstance(manifest, dict):
        raise StoreError(f"{where}: must be a JSON object, found {type(manifest).__name__}")
    expect: dict[str, tuple[type, ...]] = {
        "spec": (dict,), "scenarios": (dict,), "design": (dict,), "kpis": (list,), "versions": (dict,),
        "replication_seeds": (list,), "baseline": (str,), "days": (int, float), "warmup_days": (int, float),
        "wall_s": (int, float), "timings": (dict,),
    }
    for key, types in expect.items():
        value = manifest.get(key)
        if value is not None and not isinstance(value, types):
            allowed = " or ".join(t.__name__ for t in types)
            raise StoreError(f"{where}: key '{key}' must be {allowed}, found {type(value).__name__}")
    design = manifest.get("design") or {}
    dtype = design.get("type", "none")
    if dtype not in DESIGN_TYPES:
        raise StoreError(f"{where}: key 'design.type' is '{dtype}', allowed: {', '.join(DESIGN_TYPES)}")
    params = design.get("parameters") or []
    if not isinstance(params, list) or not all(isinstance(p, dict) and "name" in p for p in params):
        raise StoreError(f"{where}: key 'design.parameters' must be a list of {{name, low, high}} objects")
    return manifest


def _read_parquet(file: Path, columns: list[str] | None = None) -> pd.DataFrame:
    try:
        if file.is_dir():
            return pd.read_parquet(file, columns=columns)
        return pq.read_table(file, columns=columns).to_pandas()
    except Exception as exc:  # pyarrow raises several types for truncated or foreign files
        raise StoreError(f"{file}: unreadable Parquet ({type(exc).__name__}: {exc})") from exc


def _require(df: pd.DataFrame, columns: Iterable[str], where: str) -> pd.DataFrame:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise StoreError(f"{where}: missing column(s) {', '.join(missing)}; found {', '.join(map(str, df.columns))}")
    return df


def _normalise_runs(runs: pd.DataFrame) -> pd.DataFrame:
    runs = runs.copy()
    for col in ("error", "worker"):
        if col not in runs:
            runs[col] = None
    if "wall_s" not in runs:
        runs["wall_s"] = math.nan
    runs["run_id"] = runs["run_id"].astype(str)
    runs["scenario"] = runs["scenario"].astype(str)
    runs["status"] = runs["status"].astype(str)
    # A resumed experiment may list a run twice (failed, then finished): the last row counts.
    return runs.drop_duplicates("run_id", keep="last").reset_index(drop=True)


def _normalise_summary(summary: pd.DataFrame) -> pd.DataFrame:
    summary = summary.copy()
    for col in ("group_by", "group"):
        if col not in summary:
            summary[col] = ALL
        summary[col] = summary[col].fillna(ALL).astype(str)
    summary["run_id"] = summary["run_id"].astype(str)
    summary["scenario"] = summary["scenario"].astype(str)
    summary["kpi"] = summary["kpi"].astype(str)
    summary["value"] = pd.to_numeric(summary["value"], errors="coerce").astype("float64")
    return summary
