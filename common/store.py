"""The experiment result store: its layout, the writer and the reader — the one module that knows the format.

``experiments.runner`` writes a store through :class:`ResultStore`; ``experiments`` (reruns, export) reads it
with :func:`load_tables` and ``analysis.store`` with :func:`read_tables`. ``experiments.store`` and
``analysis.store`` re-export what their side uses. Layout::

    DIR/manifest.json              spec, spec_hash, git_commit, versions, master_seed, replication_seeds,
                                   scenarios {name: resolved scenario}, design, hold {scenario: design keys
                                   it keeps at its own values}, kpis, baseline, days, warmup_days, created,
                                   timings
    DIR/runs.parquet               one row per run: run_id, scenario, point, replication, seed, status
                                   ("ok" | "failed"), error, wall_s (seconds), worker, param.<dotted.key> ...
    DIR/summary.parquet            long: run_id, scenario, point, replication, kpi, value, group_by, group
    DIR/timeseries/part-<batch>.parquet   long: run_id, scenario, point, replication, day, metric, value
    DIR/distributions/part-<batch>.parquet
                                   per run, histograms of each measured case's time to first response and
                                   to closure on fixed log bins (hours): run_id, scenario, point,
                                   replication, measure, bin, lo_h, hi_h, count; bin −1 counts the cases
                                   that never got there by the end of the run (lo_h = hi_h = inf).
                                   Written for every run, so replications pool without per-case tables
    DIR/cases/<run_id>.parquet     only when the spec says keep_cases: true (times in hours since the start)
    DIR/_pending/runs-<batch>.parquet, summary-<batch>.parquet
                                   batches committed since the last consolidation (a running or interrupted
                                   experiment); a summary part counts only when its runs part, the commit
                                   mark, exists

How a finished batch is committed (each file written to a temporary name, then ``os.replace``d):
its cases files, then its time-series and distribution parts, then ``_pending/summary-<batch>.parquet``, and last
``_pending/runs-<batch>.parquet`` — the commit mark. ``runs.parquet`` and ``summary.parquet`` are rewritten
from memory every couple of seconds and at the end, after which the pending parts they now hold are removed.
A kill at any point therefore leaves every committed batch readable (consolidated files plus pending parts);
:meth:`ResultStore.open` folds the pending parts back in and removes the leftovers of an uncommitted batch.

Every problem with a store (missing folder, missing or corrupt manifest, unreadable Parquet, missing
columns) raises :class:`StoreError`, whose message names the file and what is wrong.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from sim.errors import WenzhengError

# ------------------------------------------------------------------------------------------ layout
MANIFEST = "manifest.json"
RUNS_FILE = "runs.parquet"
SUMMARY_FILE = "summary.parquet"
TIMESERIES_DIR = "timeseries"
DISTRIBUTIONS_DIR = "distributions"
CASES_DIR = "cases"
PENDING = "_pending"

#: Columns of runs.parquet as written (the design's ``param.<key>`` columns follow).
RUN_COLUMNS = ["run_id", "scenario", "point", "replication", "seed", "status", "error", "wall_s", "worker"]
#: Columns of summary.parquet as written.
SUMMARY_COLUMNS = ["run_id", "scenario", "point", "replication", "kpi", "value", "group_by", "group"]
#: Columns of every time-series part.
TIMESERIES_COLUMNS = ["run_id", "scenario", "point", "replication", "day", "metric", "value"]
#: Columns of every distribution part.
DISTRIBUTION_COLUMNS = ["run_id", "scenario", "point", "replication", "measure", "bin", "lo_h", "hi_h", "count"]
#: The fixed bin edges of the stored distributions (hours): 0, then 10 bins a decade from 0.01 h to 10,000 h,
#: then one open bin above. Fixed, so that histograms of any runs add up.
DISTRIBUTION_EDGES_H: tuple[float, ...] = (0.0, *(float(10.0 ** (k / 10.0)) for k in range(-20, 41)), math.inf)
#: What the distributions measure: name -> (start column, end column) of the cases table.
DISTRIBUTION_MEASURES: dict[str, tuple[str, str]] = {"response_h": ("created_h", "first_response_h"),
                                                     "close_h": ("created_h", "closed_h")}
#: What a reader needs of runs and summary tables (older or hand-made stores may lack the rest).
REQUIRED_RUN_COLUMNS: tuple[str, ...] = ("run_id", "scenario", "point", "replication", "seed", "status")
REQUIRED_SUMMARY_COLUMNS: tuple[str, ...] = ("run_id", "scenario", "point", "replication", "kpi", "value")
#: The overall KPIs in summary.parquet carry ``group_by == group == "all"``; other rows are equity splits.
ALL = "all"
#: The equity splits the engine writes, in display order, with their groups in display order.
SPLITS: dict[str, tuple[str, ...]] = {
    "requester_kind": ("citizen", "enterprise"),
    "channel": ("online", "hotline", "offline"),
    "area": ("urban", "rural"),
}
DESIGN_TYPES: tuple[str, ...] = ("none", "grid", "lhs", "morris", "sobol", "posterior")
#: Prefix of the design parameters' columns in runs.parquet (``param.policy.supervision_intensity``).
PARAM_PREFIX = "param."

_RUN_DTYPES = {"run_id": "object", "scenario": "object", "point": "int64", "replication": "int64",
               "seed": "int64", "status": "object", "error": "object", "wall_s": "float64", "worker": "object"}
#: Manifest keys checked when present, with the JSON types they must have.
_MANIFEST_TYPES: dict[str, tuple[type, ...]] = {
    "spec": (dict,), "scenarios": (dict,), "design": (dict,), "kpis": (list,), "versions": (dict,),
    "replication_seeds": (list,), "baseline": (str,), "days": (int, float), "warmup_days": (int, float),
    "wall_s": (int, float), "timings": (dict,), "hold": (dict,),
}


class StoreError(WenzhengError):
    """A result store is missing, corrupt, or belongs to a different spec. The message names the file and
    says what is wrong (and what to do)."""


# ------------------------------------------------------------------------------------ atomic writes
def write_parquet_atomic(df: pd.DataFrame, path: Path) -> None:
    """Write a DataFrame as Parquet: a temporary file in the same folder, fsync, then ``os.replace``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    df.to_parquet(tmp, index=False, engine="pyarrow")
    _fsync(tmp)
    os.replace(tmp, path)


def write_json_atomic(obj: Any, path: Path) -> None:
    """Write ``obj`` as indented JSON (NaN refused) the same way: temporary file, fsync, ``os.replace``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_json_default, allow_nan=False) + "\n",
                   encoding="utf-8")
    _fsync(tmp)
    os.replace(tmp, path)


def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError), open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


# ------------------------------------------------------------------------------------ reading pieces
def read_manifest(root: str | Path) -> dict[str, Any]:
    """The manifest of the store in folder ``root``, checked (:func:`check_manifest`)."""
    file = Path(root) / MANIFEST
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
    return check_manifest(manifest, str(file))


def check_manifest(manifest: Any, where: str) -> dict[str, Any]:
    """``manifest`` if it is a JSON object whose known keys have the right types, else :class:`StoreError`."""
    if not isinstance(manifest, dict):
        raise StoreError(f"{where}: must be a JSON object, found {type(manifest).__name__}")
    for key, types in _MANIFEST_TYPES.items():
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


def read_parquet(file: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """One Parquet file (or a Parquet folder); :class:`StoreError` naming the file when it cannot be read."""
    try:
        if file.is_dir():
            return pd.read_parquet(file, columns=columns)
        return pq.read_table(file, columns=columns).to_pandas()
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for truncated or foreign files
        raise StoreError(f"{file}: unreadable Parquet ({type(exc).__name__}: {exc})") from exc


def require_columns(df: pd.DataFrame, columns: Iterable[str], where: str) -> pd.DataFrame:
    """``df`` if it has every one of ``columns``, else :class:`StoreError` naming ``where`` and the gaps."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise StoreError(f"{where}: missing column(s) {', '.join(missing)}; found {', '.join(map(str, df.columns))}")
    return df


def part_id(path: Path) -> int:
    """The batch number of ``runs-000012.parquet`` or ``part-000012.parquet`` (12); -1 when the name has none."""
    digits = path.stem.rsplit("-", 1)[-1]
    return int(digits) if digits.isdigit() else -1


def pending_parts(root: Path, kind: str) -> list[Path]:
    """The pending ``runs`` or ``summary`` parts of a store, in batch order."""
    folder = root / PENDING
    return sorted(folder.glob(f"{kind}-*.parquet"), key=part_id) if folder.is_dir() else []


def timeseries_files(root: Path) -> list[Path]:
    """The store's time-series parts in batch order (a single ``timeseries.parquet`` when there are none)."""
    folder = root / TIMESERIES_DIR
    files = sorted(folder.glob("*.parquet"), key=lambda p: (part_id(p), p.name)) if folder.is_dir() else []
    if not files and (root / "timeseries.parquet").is_file():
        files = [root / "timeseries.parquet"]
    return files


def empty_frame(columns: Iterable[str]) -> pd.DataFrame:
    """An empty table with the store's dtypes (values float64, point and replication int64, else object)."""
    return pd.DataFrame({c: pd.Series(dtype="float64" if c == "value" else
                                      ("int64" if c in ("point", "replication") else "object"))
                         for c in columns})


def concat_frames(frames: Iterable[pd.DataFrame | None], columns: list[str]) -> pd.DataFrame:
    """The non-empty ``frames`` one below the other, with ``columns`` only (an empty table when none)."""
    frames = [f for f in frames if f is not None and len(f)]
    if not frames:
        return empty_frame(columns)
    return pd.concat(frames, ignore_index=True)[columns]


def latest_rows(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """Concatenate; where several frames hold rows of one run (a run retried on resume), keep the last
    frame's rows only. With no rows at all: the first frame (empty), else an empty table of ``columns``."""
    tagged = [f.assign(_src=i) for i, f in enumerate(frames) if f is not None and len(f)]
    if not tagged:
        return frames[0].reset_index(drop=True) if frames else empty_frame(columns)
    both = pd.concat(tagged, ignore_index=True)
    latest = both.groupby("run_id")["_src"].transform("max")
    return both[both["_src"] == latest].drop(columns="_src").reset_index(drop=True)


def committed_run_ids(root: str | Path) -> set[str]:
    """Run ids committed in a store so far (consolidated or pending), whatever their status."""
    root = Path(root)
    ids: set[str] = set()
    files = ([root / RUNS_FILE] if (root / RUNS_FILE).exists() else []) + pending_parts(root, "runs")
    for f in files:
        with contextlib.suppress(Exception):
            ids |= set(pq.read_table(f, columns=["run_id"]).column("run_id").to_pylist())
    return ids


# ------------------------------------------------------------------------------------------- reader
@dataclass
class StoreTables:
    """What a store holds on disk, committed batches only: the manifest, the runs (one row per run, the
    last attempt of a retried run) and the KPI rows (long). ``pending``: batches read from ``_pending``."""

    root: Path
    manifest: dict[str, Any]
    runs: pd.DataFrame
    summary: pd.DataFrame
    pending: int = 0


def read_tables(root: str | Path, require_runs: bool = True) -> StoreTables:
    """Read the manifest, runs and summary of the store in folder ``root`` (pending parts folded in).

    ``require_runs``: a store that lists no run at all is an error (else its runs table is empty).
    Raises :class:`StoreError` on any problem, naming the file.
    """
    root = Path(root)
    if not root.exists():
        raise StoreError(f"{root}: no such result store (the directory does not exist)")
    if not root.is_dir():
        raise StoreError(f"{root}: a result store is a directory, this is a file")
    manifest = read_manifest(root)
    runs, run_parts = _read_runs(root, require_runs)
    summary = _read_summary(root, {part_id(f) for f in run_parts}, bool((runs["status"] == "ok").any()))
    return StoreTables(root=root, manifest=manifest, runs=runs, summary=summary, pending=len(run_parts))


def _read_runs(root: Path, required: bool) -> tuple[pd.DataFrame, list[Path]]:
    runs_file = root / RUNS_FILE
    run_parts = pending_parts(root, "runs")
    files = ([runs_file] if runs_file.exists() else []) + run_parts
    if not files:
        if required:
            raise StoreError(f"{runs_file}: missing — the store lists no runs (was the experiment started?)")
        return empty_frame(RUN_COLUMNS), []
    frames = [require_columns(read_parquet(f), REQUIRED_RUN_COLUMNS, str(f)) for f in files]
    runs = pd.concat(frames, ignore_index=True)
    # A resumed experiment may list a run twice (failed, then finished): the last row counts.
    return runs.drop_duplicates("run_id", keep="last").reset_index(drop=True), run_parts


def _read_summary(root: Path, committed: set[int], any_ok: bool) -> pd.DataFrame:
    summary_file = root / SUMMARY_FILE
    files = ([summary_file] if summary_file.exists() else []) + [
        f for f in pending_parts(root, "summary") if part_id(f) in committed]
    if not files:
        if any_ok:
            raise StoreError(f"{summary_file}: missing, but runs.parquet lists finished runs")
        return empty_frame(SUMMARY_COLUMNS)
    frames = [require_columns(read_parquet(f), REQUIRED_SUMMARY_COLUMNS, str(f)) for f in files]
    return latest_rows(frames, SUMMARY_COLUMNS)


def distribution_files(root: Path) -> list[Path]:
    """The store's distribution parts in batch order (none for a store written before they existed)."""
    folder = root / DISTRIBUTIONS_DIR
    return sorted(folder.glob("part-*.parquet"), key=part_id) if folder.is_dir() else []


def read_distributions(root: str | Path) -> pd.DataFrame:
    """Every distribution part of a store, one below the other (columns :data:`DISTRIBUTION_COLUMNS`)."""
    parts = [require_columns(read_parquet(f), DISTRIBUTION_COLUMNS, str(f)) for f in distribution_files(Path(root))]
    return concat_frames(parts, DISTRIBUTION_COLUMNS)


class CaseHistograms:
    """Histograms of one run's cases (the distribution rows of the store), added up a piece of the cases
    table at a time: :meth:`add` each piece (a case sink for ``sim.run_scenario``), :meth:`frame` at the end.
    ``pieces``: pieces added so far."""

    def __init__(self) -> None:
        self.edges = np.asarray(DISTRIBUTION_EDGES_H)
        self.counts = {m: np.zeros(len(self.edges), dtype=np.int64) for m in DISTRIBUTION_MEASURES}  # bins, never
        self.pieces = 0

    def add(self, piece: pd.DataFrame) -> None:
        edges = self.edges
        for measure, (start, end) in DISTRIBUTION_MEASURES.items():
            t = (piece[end].to_numpy(dtype="float64") - piece[start].to_numpy(dtype="float64"))
            reached = ~np.isnan(t)
            self.counts[measure][:-1] += np.bincount(
                np.clip(np.searchsorted(edges, np.maximum(t[reached], 0.0), side="right") - 1, 0, len(edges) - 2),
                minlength=len(edges) - 1)
            self.counts[measure][-1] += int((~reached).sum())
        self.pieces += 1

    __call__ = add

    def frame(self) -> pd.DataFrame:
        """The distribution rows (measure, bin, lo_h, hi_h, count; bin −1: never)."""
        edges = self.edges
        frames = [pd.DataFrame({
            "measure": measure, "bin": np.r_[np.arange(len(edges) - 1), -1].astype("int64"),
            "lo_h": np.r_[edges[:-1], math.inf], "hi_h": np.r_[edges[1:], math.inf], "count": c})
            for measure, c in self.counts.items()]
        return pd.concat(frames, ignore_index=True)


def case_histograms(cases: pd.DataFrame | Iterable[pd.DataFrame]) -> pd.DataFrame:
    """The distribution rows of one run's cases table (measure, bin, lo_h, hi_h, count; bin −1: never); the
    table whole or in pieces (``RunResult.case_chunks``: the counts are added up piece by piece)."""
    hist = CaseHistograms()
    for piece in ([cases] if isinstance(cases, pd.DataFrame) else cases):
        hist.add(piece)
    return hist.frame()


def read_timeseries(root: str | Path) -> pd.DataFrame:
    """Every time-series part of a store, one below the other (long: run_id, ..., day, metric, value)."""
    parts = [require_columns(read_parquet(f), TIMESERIES_COLUMNS, str(f)) for f in timeseries_files(Path(root))]
    return concat_frames(parts, TIMESERIES_COLUMNS)


def load_tables(root: str | Path) -> dict[str, Any]:
    """Read a finished or interrupted store into memory: manifest, runs, summary, timeseries (all parts).

    For tests, exports and reruns (``analysis`` wraps the same reader in its ``Store``). Pending parts are
    folded in; a store that has not committed a run yet gives empty tables.
    """
    tables = read_tables(root, require_runs=False)
    return {"manifest": tables.manifest, "runs": tables.runs, "summary": tables.summary,
            "timeseries": read_timeseries(root)}


# ------------------------------------------------------------------------------------------- writer
class ResultStore:
    """One experiment's store on disk, plus the runs and KPI rows committed so far (in memory).

    ``run_order``: run_id -> canonical position (scenario order, point, replication); files are sorted by it
    so that the store's contents do not depend on the engine, the worker count or the batch sizes.
    """

    consolidate_every_s = 2.0

    def __init__(self, root: Path, run_order: dict[str, int], param_columns: list[str]) -> None:
        self.root = Path(root)
        self.run_order = run_order
        self.param_columns = list(param_columns)
        self.runs: dict[str, dict[str, Any]] = {}
        self._summary_parts: list[pd.DataFrame] = []
        self.manifest: dict[str, Any] = {}
        self._pending_files: list[Path] = []
        self._last_consolidated = time.monotonic()
        self.next_batch_id = 0

    # ----------------------------------------------------------------------------- opening
    @classmethod
    def open(cls, root: str | Path, manifest: dict[str, Any], resume: bool, run_order: dict[str, int],
             param_columns: list[str]) -> ResultStore:
        """Create a new store, or reopen one for ``--resume`` (same spec hash required).

        Without ``resume``, a folder that already holds files is refused: nothing is ever overwritten.
        """
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise StoreError(f"{root}: exists and is not a folder; choose another --out")
        occupied = root.exists() and any(root.iterdir())
        if occupied and not resume and _is_unstarted_store(root):
            occupied = False  # a store that never committed a run (e.g. the engine failed to start): reuse it
        store = cls(root, run_order, param_columns)
        if occupied and not resume:
            raise StoreError(
                f"{root}: already holds results; add --resume to continue that experiment, "
                "or choose another --out folder (nothing was overwritten)")
        if occupied:
            store.manifest = _resumed_manifest(root, manifest)
            store._load_existing()
        else:
            root.mkdir(parents=True, exist_ok=True)
            store.manifest = dict(manifest)
        (root / TIMESERIES_DIR).mkdir(exist_ok=True)
        (root / PENDING).mkdir(exist_ok=True)
        write_json_atomic(store.manifest, root / MANIFEST)
        return store

    def _load_existing(self) -> None:
        """Fold a resumed store's committed batches into memory and remove what uncommitted ones left."""
        root = self.root
        for tmp in list(root.glob(".*.tmp")) + list(root.glob("*/.*.tmp")):
            tmp.unlink(missing_ok=True)
        committed = {part_id(p) for p in pending_parts(root, "runs")}
        for p in pending_parts(root, "summary"):
            if part_id(p) not in committed:
                p.unlink()  # a batch killed before its commit mark
        tables = read_tables(root, require_runs=False)
        runs = require_columns(tables.runs, RUN_COLUMNS, f"{root}: runs table")
        self.runs = {str(row["run_id"]): row for row in runs.to_dict("records")}
        ok = self.ok_run_ids()
        summary = tables.summary
        self._summary_parts = [summary[summary["run_id"].isin(ok)].reset_index(drop=True)]
        self._pending_files = pending_parts(root, "runs") + pending_parts(root, "summary")
        _remove_uncommitted_files(root, ok)
        ids = [part_id(p) for d in (TIMESERIES_DIR, DISTRIBUTIONS_DIR) for p in (root / d).glob("part-*.parquet")]
        ids += list(committed)
        self.next_batch_id = max(ids, default=-1) + 1

    # ----------------------------------------------------------------------------- queries
    def ok_run_ids(self) -> set[str]:
        return {rid for rid, row in self.runs.items() if row.get("status") == "ok"}

    def failed_runs(self) -> list[dict[str, Any]]:
        return [row for row in self.runs.values() if row.get("status") != "ok"]

    def summary(self) -> pd.DataFrame:
        """Every committed KPI row (long), in canonical run order."""
        self._summary_parts = [self._sorted(concat_frames(self._summary_parts, SUMMARY_COLUMNS))]
        return self._summary_parts[0]

    def runs_frame(self) -> pd.DataFrame:
        rows = sorted(self.runs.values(), key=lambda r: self.run_order.get(str(r["run_id"]), math.inf))
        return self._typed_runs(rows)

    def _typed_runs(self, rows: list[dict[str, Any]]) -> pd.DataFrame:
        columns = RUN_COLUMNS + self.param_columns
        frame = pd.DataFrame(rows, columns=columns)
        if frame.empty:
            frame = pd.DataFrame({c: pd.Series(dtype=_RUN_DTYPES.get(c, "float64")) for c in columns})
        return frame.astype({c: _RUN_DTYPES.get(c, "float64") for c in frame.columns})

    def _sorted(self, frame: pd.DataFrame) -> pd.DataFrame:
        if frame.empty:
            return frame
        key = frame["run_id"].map(self.run_order).fillna(math.inf)
        return frame.iloc[key.argsort(kind="stable")].reset_index(drop=True)

    # ----------------------------------------------------------------------------- writing
    def commit(self, batch_id: int, runs: list[dict[str, Any]], summary: pd.DataFrame | None = None,
               timeseries: pd.DataFrame | None = None, cases: dict[str, pd.DataFrame] | None = None,
               distributions: pd.DataFrame | None = None) -> None:
        """Make one finished batch durable (see the module docstring for the order of writes)."""
        for run_id, frame in (cases or {}).items():
            (self.root / CASES_DIR).mkdir(exist_ok=True)
            write_parquet_atomic(frame, self.root / CASES_DIR / f"{run_id}.parquet")
        if timeseries is not None and len(timeseries):
            write_parquet_atomic(self._sorted(timeseries[TIMESERIES_COLUMNS]),
                                 self.root / TIMESERIES_DIR / f"part-{batch_id:06d}.parquet")
        if distributions is not None and len(distributions):
            (self.root / DISTRIBUTIONS_DIR).mkdir(exist_ok=True)
            write_parquet_atomic(self._sorted(distributions[DISTRIBUTION_COLUMNS]),
                                 self.root / DISTRIBUTIONS_DIR / f"part-{batch_id:06d}.parquet")
        summary = concat_frames([summary] if summary is not None else [], SUMMARY_COLUMNS)
        pending = self.root / PENDING
        if len(summary):
            path = pending / f"summary-{batch_id:06d}.parquet"
            write_parquet_atomic(summary, path)
            self._pending_files.append(path)
        path = pending / f"runs-{batch_id:06d}.parquet"
        write_parquet_atomic(self._typed_runs(runs), path)
        self._pending_files.append(path)
        self._remember(runs, summary)
        self.next_batch_id = max(self.next_batch_id, batch_id + 1)
        if time.monotonic() - self._last_consolidated >= self.consolidate_every_s:
            self.consolidate()

    def _remember(self, runs: list[dict[str, Any]], summary: pd.DataFrame) -> None:
        retried = {str(r["run_id"]) for r in runs if str(r["run_id"]) in self.runs}
        if retried:  # a resumed run replaces whatever its earlier attempt left
            self._summary_parts = [p[~p["run_id"].isin(retried)] for p in self._summary_parts]
        for row in runs:
            self.runs[str(row["run_id"])] = dict(row)
        if len(summary):
            self._summary_parts.append(summary)

    def consolidate(self) -> None:
        """Rewrite runs.parquet and summary.parquet from memory; drop the pending parts they now hold."""
        write_parquet_atomic(self.summary(), self.root / SUMMARY_FILE)
        write_parquet_atomic(self.runs_frame(), self.root / RUNS_FILE)
        for path in self._pending_files:
            path.unlink(missing_ok=True)
        self._pending_files = []
        self._last_consolidated = time.monotonic()

    def finish(self, timings: dict[str, Any]) -> None:
        """Consolidate and record the timings (wall_s totals accumulate over resumed sessions)."""
        self.consolidate()
        with contextlib.suppress(OSError):
            (self.root / PENDING).rmdir()
        old = self.manifest.get("timings") or {}
        sessions = list(old.get("sessions", []))
        sessions.append(timings)
        self.manifest["timings"] = {
            "wall_s": float(sum(s.get("wall_s", 0.0) for s in sessions)),
            "run_wall_s": float(sum(s.get("run_wall_s", 0.0) for s in sessions)),
            "sessions": sessions,
        }
        write_json_atomic(self.manifest, self.root / MANIFEST)


def _resumed_manifest(root: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """The stored manifest, checked to come from the same spec, with this session's versions and commit."""
    old = read_manifest(root)
    if old.get("spec_hash") != manifest["spec_hash"]:
        raise StoreError(
            f"{root}: --resume refused: the store was written by a different spec "
            f"(store spec_hash {str(old.get('spec_hash'))[:12]}…, from {old.get('spec_path')}; "
            f"now {manifest['spec_hash'][:12]}…, from {manifest.get('spec_path')}). The spec, its "
            "scenario files, --replications or days differ; use another --out for the new experiment")
    merged = dict(old)
    for key in ("versions", "git_commit"):
        merged[key] = manifest[key]
    merged.setdefault("resumed", []).append(manifest["created"])
    return merged


def _remove_uncommitted_files(root: Path, ok: set[str]) -> None:
    """Delete time-series and distribution parts and cases files written by batches that never committed."""
    for part in [*(root / TIMESERIES_DIR).glob("part-*.parquet"), *(root / DISTRIBUTIONS_DIR).glob("part-*.parquet")]:
        try:
            run_ids = set(pq.read_table(part, columns=["run_id"]).column("run_id").to_pylist())
        except Exception:  # noqa: BLE001 - a torn file from a kill
            run_ids = {None}
        if not run_ids <= ok:
            part.unlink()
    if (root / CASES_DIR).exists():
        for case_file in (root / CASES_DIR).glob("*.parquet"):
            if case_file.stem not in ok:
                case_file.unlink()


def _is_unstarted_store(root: Path) -> bool:
    """A manifest and no committed run: an experiment that stopped before its first run (say, because the
    Dask scheduler could not be reached). Empty runs/summary tables and empty folders are allowed."""
    if not (root / MANIFEST).exists() or committed_run_ids(root):
        return False
    allowed = {MANIFEST, RUNS_FILE, SUMMARY_FILE}
    return all(path.is_dir() or (path.parent == root and path.name in allowed) for path in root.rglob("*"))
