"""Write one run's tables to disk, as README.md's "Outputs of one run" describes (``python run.py run``)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from sim import RunResult, Scenario
from sim.results import CHUNK_ROWS


def _clean(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def write_cases(result: RunResult, path: str | Path, rows: int = CHUNK_ROWS) -> int:
    """Write the cases table of ``result`` to the parquet file ``path`` a piece of ``rows`` cases at a time
    (one row group each), so that the whole table is never held in memory at once, neither as a frame nor
    as an Arrow table. Read back with pandas, the file gives :attr:`RunResult.cases` exactly. Returns the
    rows written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    written = 0
    writer = None
    try:
        for piece in result.case_chunks(rows):
            table = pa.Table.from_pandas(piece, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
            written += len(piece)
    finally:
        if writer is not None:
            writer.close()
    return written


def write_run(result: RunResult, scenario: Scenario, out_dir: str | Path) -> Path:
    """Write ``cases.parquet``, ``timeseries.parquet``, ``groups.parquet`` and ``summary.json`` into ``out_dir``.

    Files are written to a temporary name and renamed, so a reader never sees half a file. The cases go
    out in pieces (:func:`write_cases`).
    NaN KPIs are written as JSON ``null``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".cases.parquet.tmp"
    write_cases(result, tmp)
    os.replace(tmp, out / "cases.parquet")
    for name, frame in (("timeseries", result.timeseries), ("groups", result.groups)):
        tmp = out / f".{name}.parquet.tmp"
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, out / f"{name}.parquet")
    summary = {
        "kpis": _clean(dict(result.summary)),
        "seed": result.meta.get("seed"),
        "scenario": scenario.to_dict(),
        "meta": _clean(result.meta),
    }
    tmp = out / ".summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, out / "summary.json")
    return out
