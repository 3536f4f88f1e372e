"""Reading an experiment's result store from disk (or wrapping in-memory tables) for analysis.

The store layout is written by ``experiments`` (README.md, "The result store"; the format itself is common/store.py); ``analysis`` only reads it::

    common/store.py                the format, the writer and the reader (this module wraps the reader)

Every problem with the store (missing directory, missing or corrupt manifest, unreadable Parquet, missing
columns) raises :class:`StoreError`, whose message names the file and what is wrong. Failed runs are kept
aside in :attr:`Store.failed` and every analysis works on the runs that finished (``status == "ok"``).
The names ``analysis`` modules import (``ALL``, ``SPLITS``, ``PARAM_PREFIX``, ``StoreError``) are re-exported;
the groups of the split by handling level and of the queue waits are named here (``HANDLING_LEVELS``,
``QUEUE_ROLES``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from common.store import (
    ALL,
    DISTRIBUTION_COLUMNS,
    PARAM_PREFIX,
    REQUIRED_RUN_COLUMNS,
    REQUIRED_SUMMARY_COLUMNS,
    SPLITS,
    TIMESERIES_COLUMNS,
    StoreError,
    check_manifest,
    read_distributions,
    read_parquet,
    read_tables,
    require_columns,
    timeseries_files,
)

#: The KPIs figures show first when a spec lists many: resolution as recorded and as true, the gaming gap, the
#: other two rates, time to close, trust, cost.
HEADLINE_KPIS: tuple[str, ...] = ("resolution_rate", "true_resolution_rate", "gaming_gap", "response_rate",
                                  "satisfaction_rate", "median_close_h", "mean_trust", "cost_hours")
#: ``group_by`` of the split by the level a case was handled at, and its groups top to bottom ("platform":
#: answered at intake, never dispatched). Written by sim/metrics.py ``build_result``; older stores lack it.
LEVEL_SPLIT = "handling_level"
HANDLING_LEVELS: tuple[str, ...] = ("central", "province", "prefecture", "county", "township", "platform")
#: ``group_by`` of the queue waits by bureau (group ``"<role>@<level>"``, e.g. ``"relay@county"``; kpis
#: ``queue_wait_h``, ``queue_starts``, ``staff``; sim/metrics.py ``_queue_rows``), and the roles in display
#: order: relays pass orders down the hierarchy, departments handle them.
QUEUE_SPLIT = "queue"
QUEUE_ROLES: tuple[str, ...] = ("relay", "department")
#: What the runs and summary tables must hold (the store's other columns are optional here).
RUN_COLUMNS = REQUIRED_RUN_COLUMNS
SUMMARY_COLUMNS = REQUIRED_SUMMARY_COLUMNS


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
    _distributions: pd.DataFrame | None = None
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
        manifest = check_manifest(dict(manifest), "manifest")
        runs = _normalise_runs(require_columns(runs, RUN_COLUMNS, "runs table"))
        summary = _normalise_summary(require_columns(summary, SUMMARY_COLUMNS, "summary table"))
        if timeseries is not None:
            timeseries = require_columns(timeseries, TIMESERIES_COLUMNS, "time-series table")
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
        """Every non-overall row of the finished runs: the equity splits (requester_kind, channel, area), the
        split by handling level (:data:`LEVEL_SPLIT`) and the queue waits (:data:`QUEUE_SPLIT`)."""
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
        files = timeseries_files(self.path)
        if not files:
            self.notes.append(f"{self.path / 'timeseries'} holds no time series; the daily figures are left out")
            return empty
        parts = [require_columns(read_parquet(f), TIMESERIES_COLUMNS, str(f)) for f in files]
        return pd.concat(parts, ignore_index=True)

    def distributions(self) -> pd.DataFrame:
        """The stored histograms of the times to first response and to closure of the finished runs
        (:data:`common.store.DISTRIBUTION_COLUMNS`; empty for a store written before they existed). Read
        once, then kept."""
        if self._distributions is None:
            if self.path is None:
                self._distributions = pd.DataFrame(columns=DISTRIBUTION_COLUMNS)
            else:
                d = read_distributions(self.path)
                self._distributions = d[d["run_id"].isin(set(self.ok_runs["run_id"]))].reset_index(drop=True)
        return self._distributions

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
        return read_parquet(file, columns=cols)


# ---------------------------------------------------------------------------------------------- loading
def load_store(path: str | Path) -> Store:
    """Read the result store in directory ``path`` (:func:`common.store.read_tables`). Raises
    :class:`StoreError` on any problem."""
    tables = read_tables(path)
    store = Store(manifest=tables.manifest, runs=_normalise_runs(tables.runs),
                  summary=_normalise_summary(tables.summary), path=tables.root)
    if tables.pending:
        store.notes.append(f"{tables.pending} batch(es) not yet consolidated were read from "
                           f"{tables.root / '_pending'} (the experiment is running or was interrupted)")
    store._finish()
    return store


def as_store(store: Store | str | Path) -> Store:
    """Accept a :class:`Store` or a store directory."""
    return store if isinstance(store, Store) else load_store(store)


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


__all__ = ["ALL", "HANDLING_LEVELS", "HEADLINE_KPIS", "LEVEL_SPLIT", "PARAM_PREFIX", "QUEUE_ROLES", "QUEUE_SPLIT",
           "SPLITS", "Store", "StoreError", "as_store", "load_store"]
