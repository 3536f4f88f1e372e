"""Write one run's tables to disk, as README.md's "Outputs of one run" describes (``python run.py run``)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim import RunResult, Scenario
from sim.results import CHUNK_ROWS

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


def _clean(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


class CaseWriter:
    """A case sink (``sim.run_scenario(..., case_sink=writer)``) that writes the cases table to the parquet
    file ``path`` as the pieces come, one row group each; the whole table is never held in memory, neither as
    a frame nor as an Arrow table. ``close()`` finishes the file (a writer that got no piece writes none);
    read back with pandas, it gives the table the pieces make, exactly. Usable as a context manager, which
    closes it. ``rows``: rows written so far."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.rows = 0
        self._writer: Any = None

    def __call__(self, piece: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(piece, preserve_index=False)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, table.schema)
        self._writer.write_table(table)
        self.rows += len(piece)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> CaseWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_cases(result: RunResult, path: str | Path, rows: int = CHUNK_ROWS) -> int:
    """Write the cases table of ``result`` to the parquet file ``path`` a piece of ``rows`` cases at a time
    (:class:`CaseWriter`). Read back with pandas, the file gives :attr:`RunResult.cases` exactly. Returns
    the rows written."""
    with CaseWriter(path) as writer:
        for piece in result.case_chunks(rows):
            writer(piece)
    return writer.rows


def run_to_dir(scenario: Scenario, out_dir: str | Path, seed: int | None = None, days: float | None = None,
               progress: Callable[[float], None] | None = None) -> RunResult:
    """Run ``scenario`` (with ``seed`` and ``days`` when given) and write its four files into ``out_dir`` as
    :func:`write_run` does, the cases going to ``cases.parquet`` while the run goes on (settled cases during
    the run, the rest at its end: :class:`CaseWriter` as the run's case sink), so that a long run never holds
    its whole table. Returns the result (without a cases table: it is in the file)."""
    from sim import run_scenario

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".cases.parquet.tmp"
    try:
        with CaseWriter(tmp) as writer:
            result = run_scenario(scenario, seed=seed, days=days, progress=progress, case_sink=writer)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, out / "cases.parquet")
    seed = scenario.run.seed if seed is None else seed
    write_run(result, scenario.with_overrides({"run.seed": seed}), out, cases=False)
    return result


def write_run(result: RunResult, scenario: Scenario, out_dir: str | Path, cases: bool = True) -> Path:
    """Write ``cases.parquet``, ``timeseries.parquet``, ``groups.parquet`` and ``summary.json`` into ``out_dir``.

    Files are written to a temporary name and renamed, so a reader never sees half a file. The cases go
    out in pieces (:func:`write_cases`); ``cases=False``: not at all (:func:`run_to_dir` wrote them).
    NaN KPIs are written as JSON ``null``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cases:
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
