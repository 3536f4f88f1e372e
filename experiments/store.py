"""The result store of one experiment, written as runs finish and safe to kill at any moment.

Layout (DESIGN.md, "Result contracts"; ``analysis`` reads it)::

    DIR/manifest.json              spec, spec_hash, git_commit, versions, master_seed, replication_seeds,
                                   scenarios {name: resolved scenario}, design, kpis, baseline, days,
                                   warmup_days, created, timings
    DIR/runs.parquet               one row per run: run_id, scenario, point, replication, seed, status
                                   ("ok" | "failed"), error, wall_s (seconds), worker, param.<dotted.key> ...
    DIR/summary.parquet            long: run_id, scenario, point, replication, kpi, value, group_by, group
    DIR/timeseries/part-<batch>.parquet   long: run_id, scenario, point, replication, day, metric, value
    DIR/cases/<run_id>.parquet     only when the spec says keep_cases: true

How a finished batch is committed (each file written to a temporary name, then ``os.replace``d):
its cases files, then its time-series part, then ``_pending/summary-<batch>.parquet``, and last
``_pending/runs-<batch>.parquet`` — the commit mark. ``runs.parquet`` and ``summary.parquet`` are rewritten
from memory every couple of seconds and at the end, after which the pending parts they now hold are removed.
A kill at any point therefore leaves every committed batch readable (consolidated files plus pending parts);
:meth:`ResultStore.open` folds the pending parts back in and removes the leftovers of an uncommitted batch.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from sim.errors import WenzhengError

RUN_COLUMNS = ["run_id", "scenario", "point", "replication", "seed", "status", "error", "wall_s", "worker"]
SUMMARY_COLUMNS = ["run_id", "scenario", "point", "replication", "kpi", "value", "group_by", "group"]
TIMESERIES_COLUMNS = ["run_id", "scenario", "point", "replication", "day", "metric", "value"]
MANIFEST = "manifest.json"
PENDING = "_pending"
_PART_RE = re.compile(r"^(?:part|runs|summary)-(\d+)\.parquet$")


class StoreError(WenzhengError):
    """A result store is missing, corrupt, or belongs to a different spec. The message says what to do."""


# ------------------------------------------------------------------------------------ atomic writes
def write_parquet_atomic(df: pd.DataFrame, path: Path) -> None:
    """Write a DataFrame as Parquet: a temporary file in the same folder, fsync, then ``os.replace``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    df.to_parquet(tmp, index=False, engine="pyarrow")
    _fsync(tmp)
    os.replace(tmp, path)


def write_json_atomic(obj: Any, path: Path) -> None:
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


def read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not path.exists():
        raise StoreError(f"{path}: no manifest; {root} is not an experiment store")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StoreError(f"{path}: corrupt manifest ({exc})") from None
    if not isinstance(data, dict) or "spec_hash" not in data:
        raise StoreError(f"{path}: corrupt manifest (no spec_hash)")
    return data


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path, engine="pyarrow")
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a corrupt store
        raise StoreError(f"{path}: unreadable Parquet file ({type(exc).__name__}: {exc})") from None


def _part_id(path: Path) -> int:
    m = _PART_RE.match(path.name)
    return int(m.group(1)) if m else -1


# ------------------------------------------------------------------------------------------- store
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
            store.manifest = merged
            store._load_existing()
        else:
            root.mkdir(parents=True, exist_ok=True)
            store.manifest = dict(manifest)
        (root / "timeseries").mkdir(exist_ok=True)
        (root / PENDING).mkdir(exist_ok=True)
        write_json_atomic(store.manifest, root / MANIFEST)
        return store

    def _load_existing(self) -> None:
        root = self.root
        for tmp in list(root.glob(".*.tmp")) + list(root.glob("*/.*.tmp")):
            tmp.unlink(missing_ok=True)
        runs_frames: list[pd.DataFrame] = []
        if (root / "runs.parquet").exists():
            runs_frames.append(_read_parquet(root / "runs.parquet"))
        pending_runs = sorted((root / PENDING).glob("runs-*.parquet"), key=_part_id)
        committed_batches = {_part_id(p) for p in pending_runs}
        for p in pending_runs:
            runs_frames.append(_read_parquet(p))
        for frame in runs_frames:
            missing = [c for c in RUN_COLUMNS if c not in frame.columns]
            if missing:
                raise StoreError(f"{root}: runs table lacks column(s) {', '.join(missing)}")
            for row in frame.to_dict("records"):
                self.runs[str(row["run_id"])] = row  # later parts replace earlier rows (a retried run)
        ok = self.ok_run_ids()

        summary_frames: list[pd.DataFrame] = []
        if (root / "summary.parquet").exists():
            summary_frames.append(_read_parquet(root / "summary.parquet"))
        for p in sorted((root / PENDING).glob("summary-*.parquet"), key=_part_id):
            if _part_id(p) in committed_batches:
                summary_frames.append(_read_parquet(p))
            else:
                p.unlink()  # a batch killed before its commit mark
        summary = _latest_rows(summary_frames, SUMMARY_COLUMNS)
        summary = summary[summary["run_id"].isin(ok)]
        self._summary_parts = [summary.reset_index(drop=True)]
        self._pending_files = pending_runs + sorted((root / PENDING).glob("summary-*.parquet"), key=_part_id)

        ids = [_part_id(p) for p in (root / "timeseries").glob("part-*.parquet")] + list(committed_batches)
        for part in (root / "timeseries").glob("part-*.parquet"):
            try:
                run_ids = set(pq.read_table(part, columns=["run_id"]).column("run_id").to_pylist())
            except Exception:  # noqa: BLE001 - a torn file from a kill
                run_ids = {None}
            if not run_ids <= ok:
                part.unlink()  # written by a batch that never committed
        if (root / "cases").exists():
            for case_file in (root / "cases").glob("*.parquet"):
                if case_file.stem not in ok:
                    case_file.unlink()
        self.next_batch_id = max(ids, default=-1) + 1

    # ----------------------------------------------------------------------------- queries
    def ok_run_ids(self) -> set[str]:
        return {rid for rid, row in self.runs.items() if row.get("status") == "ok"}

    def failed_runs(self) -> list[dict[str, Any]]:
        return [row for row in self.runs.values() if row.get("status") != "ok"]

    def summary(self) -> pd.DataFrame:
        """Every committed KPI row (long), in canonical run order."""
        self._summary_parts = [self._sorted(_concat(self._summary_parts, SUMMARY_COLUMNS))]
        return self._summary_parts[0]

    def runs_frame(self) -> pd.DataFrame:
        rows = sorted(self.runs.values(), key=lambda r: self.run_order.get(str(r["run_id"]), math.inf))
        frame = pd.DataFrame(rows, columns=RUN_COLUMNS + self.param_columns)
        if frame.empty:
            frame = pd.DataFrame({c: pd.Series(dtype=_RUN_DTYPES.get(c, "float64"))
                                  for c in RUN_COLUMNS + self.param_columns})
        return frame.astype({c: _RUN_DTYPES.get(c, "float64") for c in frame.columns})

    def _sorted(self, frame: pd.DataFrame) -> pd.DataFrame:
        if frame.empty:
            return frame
        key = frame["run_id"].map(self.run_order).fillna(math.inf)
        return frame.iloc[key.argsort(kind="stable")].reset_index(drop=True)

    # ----------------------------------------------------------------------------- writing
    def commit(self, batch_id: int, runs: list[dict[str, Any]], summary: pd.DataFrame | None = None,
               timeseries: pd.DataFrame | None = None, cases: dict[str, pd.DataFrame] | None = None) -> None:
        """Make one finished batch durable (see the module docstring for the order of writes)."""
        for run_id, frame in (cases or {}).items():
            (self.root / "cases").mkdir(exist_ok=True)
            write_parquet_atomic(frame, self.root / "cases" / f"{run_id}.parquet")
        if timeseries is not None and len(timeseries):
            write_parquet_atomic(self._sorted(timeseries[TIMESERIES_COLUMNS]),
                                 self.root / "timeseries" / f"part-{batch_id:06d}.parquet")
        summary = _concat([summary] if summary is not None else [], SUMMARY_COLUMNS)
        pending = self.root / PENDING
        if len(summary):
            path = pending / f"summary-{batch_id:06d}.parquet"
            write_parquet_atomic(summary, path)
            self._pending_files.append(path)
        runs_frame = pd.DataFrame(runs, columns=RUN_COLUMNS + self.param_columns).astype(
            {c: _RUN_DTYPES.get(c, "float64") for c in RUN_COLUMNS + self.param_columns})
        path = pending / f"runs-{batch_id:06d}.parquet"
        write_parquet_atomic(runs_frame, path)
        self._pending_files.append(path)
        retried = {str(r["run_id"]) for r in runs if str(r["run_id"]) in self.runs}
        if retried:  # a resumed run replaces whatever its earlier attempt left
            self._summary_parts = [p[~p["run_id"].isin(retried)] for p in self._summary_parts]
        for row in runs:
            self.runs[str(row["run_id"])] = dict(row)
        if len(summary):
            self._summary_parts.append(summary)
        self.next_batch_id = max(self.next_batch_id, batch_id + 1)
        if time.monotonic() - self._last_consolidated >= self.consolidate_every_s:
            self.consolidate()

    def consolidate(self) -> None:
        """Rewrite runs.parquet and summary.parquet from memory; drop the pending parts they now hold."""
        write_parquet_atomic(self.summary(), self.root / "summary.parquet")
        write_parquet_atomic(self.runs_frame(), self.root / "runs.parquet")
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


_RUN_DTYPES = {"run_id": "object", "scenario": "object", "point": "int64", "replication": "int64",
               "seed": "int64", "status": "object", "error": "object", "wall_s": "float64", "worker": "object"}


def _concat(frames: Iterable[pd.DataFrame | None], columns: list[str]) -> pd.DataFrame:
    frames = [f for f in frames if f is not None and len(f)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="float64" if c == "value" else
                                          ("int64" if c in ("point", "replication") else "object"))
                             for c in columns})
    return pd.concat(frames, ignore_index=True)[columns]


def _is_unstarted_store(root: Path) -> bool:
    """A manifest and no committed run: an experiment that stopped before its first run (say, because the
    Dask scheduler could not be reached). Empty runs/summary tables and empty folders are allowed."""
    if not (root / MANIFEST).exists() or committed_run_ids(root):
        return False
    allowed = {MANIFEST, "runs.parquet", "summary.parquet"}
    return all(path.is_dir() or (path.parent == root and path.name in allowed) for path in root.rglob("*"))


def _latest_rows(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """Concatenate; where several frames hold rows of the same run, keep the last frame's rows only."""
    tagged = [f.assign(_src=i) for i, f in enumerate(frames) if f is not None and len(f)]
    if not tagged:
        return _concat([], columns)
    both = pd.concat(tagged, ignore_index=True)
    latest = both.groupby("run_id")["_src"].transform("max")
    return both[both["_src"] == latest][columns].reset_index(drop=True)


def committed_run_ids(root: str | Path) -> set[str]:
    """Run ids committed in a store so far (consolidated or pending), whatever their status."""
    root = Path(root)
    ids: set[str] = set()
    files = ([root / "runs.parquet"] if (root / "runs.parquet").exists() else [])
    files += sorted((root / PENDING).glob("runs-*.parquet")) if (root / PENDING).exists() else []
    for f in files:
        with contextlib.suppress(Exception):
            ids |= set(pq.read_table(f, columns=["run_id"]).column("run_id").to_pylist())
    return ids


def load_tables(root: str | Path) -> dict[str, Any]:
    """Read a finished or interrupted store into memory: manifest, runs, summary, timeseries (all parts).

    For tests, exports and reruns; ``analysis`` has its own reader. Pending parts are folded in.
    """
    root = Path(root)
    manifest = read_manifest(root)
    runs_frames = []
    if (root / "runs.parquet").exists():
        runs_frames.append(_read_parquet(root / "runs.parquet"))
    if (root / PENDING).exists():
        runs_frames += [_read_parquet(p) for p in sorted((root / PENDING).glob("runs-*.parquet"), key=_part_id)]
    runs = pd.concat(runs_frames, ignore_index=True) if runs_frames else pd.DataFrame(columns=RUN_COLUMNS)
    runs = runs.drop_duplicates("run_id", keep="last").reset_index(drop=True)
    summary_frames = []
    if (root / "summary.parquet").exists():
        summary_frames.append(_read_parquet(root / "summary.parquet"))
    if (root / PENDING).exists():
        summary_frames += [_read_parquet(p)
                           for p in sorted((root / PENDING).glob("summary-*.parquet"), key=_part_id)]
    summary = _latest_rows(summary_frames, SUMMARY_COLUMNS)
    parts = sorted((root / "timeseries").glob("part-*.parquet"), key=_part_id) if (root / "timeseries").exists() else []
    timeseries = _concat([_read_parquet(p) for p in parts], TIMESERIES_COLUMNS)
    return {"manifest": manifest, "runs": runs, "summary": summary, "timeseries": timeseries}
