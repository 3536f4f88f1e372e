"""Export a result store as one tidy table, in the "table" layout NetLogo BehaviorSpace users know.

One row per finished run and simulated day; the columns are ``[run number]`` (1-based, in the store's
canonical run order), the run's parameters (``run_id, scenario, point, replication, seed``, the design
parameters by their dotted keys, and every scenario setting that differs between the experiment's
scenarios), then ``[step]`` (the simulated day), then one column per daily metric (backlog, arrivals,
response_rate, ...; units as in ``sim``'s time series). Failed runs have no rows (see ``runs.parquet``).

The export streams the time-series parts one at a time, so memory stays bounded whatever the store's size.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from common.dotted import flatten
from common.store import StoreError, load_tables, part_id, read_manifest, read_parquet

FORMATS = ("csv", "parquet")


def varied_settings(scenarios: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Scenario settings (dotted keys) whose values differ between scenarios: one row per scenario."""
    flat = {name: flatten(s, lists_as_json=True) for name, s in scenarios.items()}
    keys = list(dict.fromkeys(k for f in flat.values() for k in f))
    varied = [k for k in keys if k not in ("name", "description")
              and len({json.dumps(f.get(k), sort_keys=True) for f in flat.values()}) > 1]
    rows = [{"scenario": name, **{k: f.get(k) for k in varied}} for name, f in flat.items()]
    return pd.DataFrame(rows, columns=["scenario", *varied])


def export_store(store_dir: str, fmt: str = "csv", out: str | None = None) -> Path:
    """Write the store's tidy table as CSV (default) or Parquet; return the file's path.

    Default output: ``<store>/export.csv`` (or ``.parquet``).
    """
    if fmt not in FORMATS:
        raise StoreError(f"--format {fmt!r}: allowed formats are {', '.join(FORMATS)}")
    root = Path(store_dir)
    if not root.is_dir():
        raise StoreError(f"{root}: no such result store folder")
    manifest = read_manifest(root)
    runs = load_tables(root)["runs"] if not (root / "runs.parquet").exists() else read_parquet(root / "runs.parquet")
    path = Path(out) if out else root / f"export.{fmt}"
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = _run_columns(runs, manifest)
    parts = sorted((root / "timeseries").glob("part-*.parquet"), key=part_id) if (root / "timeseries").exists() else []
    metrics: list[str] = []
    for part in parts:
        names = pq.read_table(part, columns=["metric"]).column("metric").unique().to_pylist()
        metrics.extend(m for m in names if m not in metrics)
    tmp = path.with_name(f".{path.name}.tmp")
    _write_rows(tmp, fmt, parts, meta, metrics)
    tmp.replace(path)
    return path


def _run_columns(runs: pd.DataFrame, manifest: dict[str, Any]) -> pd.DataFrame:
    """One row per finished run: ``[run number]`` (canonical order of all runs, failed ones included), the
    run's ids and seed, its design parameters (dotted keys) and the settings that differ between scenarios."""
    order = {name: i for i, name in enumerate(manifest.get("scenarios") or {})}
    runs = runs.assign(_s=runs["scenario"].map(order).fillna(len(order)))
    runs = runs.sort_values(["_s", "point", "replication"], kind="stable").drop(columns="_s").reset_index(drop=True)
    runs["[run number]"] = range(1, len(runs) + 1)
    param_cols = [c for c in runs.columns if c.startswith("param.")]
    meta = runs[runs["status"] == "ok"][["[run number]", "run_id", "scenario", "point", "replication", "seed",
                                         *param_cols]].copy()
    meta = meta.rename(columns={c: c.removeprefix("param.") for c in param_cols})
    settings = varied_settings(manifest.get("scenarios") or {})
    design_keys = [c.removeprefix("param.") for c in param_cols]
    settings = settings[[c for c in settings.columns if c not in design_keys]]
    if len(settings.columns) > 1:
        meta = meta.merge(settings, on="scenario", how="left")
    return meta


def _write_rows(tmp: Path, fmt: str, parts: list[Path], meta: pd.DataFrame, metrics: list[str]) -> None:
    """Stream the time-series parts into ``tmp``, one wide row per run and day, part by part."""
    columns = list(meta.columns) + ["[step]"] + metrics
    writer: pq.ParquetWriter | None = None
    fh = open(tmp, "w", encoding="utf-8", newline="") if fmt == "csv" else None
    try:
        for part in parts:
            long = read_parquet(part)
            long = long[long["run_id"].isin(meta["run_id"])]
            if long.empty:
                continue
            wide = long.pivot_table(index=["run_id", "day"], columns="metric", values="value",
                                    aggfunc="first", sort=False).reindex(columns=metrics).reset_index()
            wide = wide.rename(columns={"day": "[step]"})
            table = meta.merge(wide, on="run_id", how="inner")
            table = table.sort_values(["[run number]", "[step]"], kind="stable")[columns]
            table.columns.name = None
            if fh is not None:
                table.to_csv(fh, header=fh.tell() == 0, index=False, lineterminator="\n")
            else:
                arrow = pa.Table.from_pandas(table, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, arrow.schema)
                writer.write_table(arrow.cast(writer.schema))
        if fh is not None and fh.tell() == 0:
            fh.write(",".join(columns) + "\n")
    finally:
        if fh is not None:
            fh.close()
        if writer is not None:
            writer.close()
    if fmt == "parquet" and writer is None:
        pd.DataFrame(columns=columns).to_parquet(tmp, index=False)
