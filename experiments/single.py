"""Write one run's tables to disk, as README.md's "Outputs of one run" describes (``python run.py run``)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from sim import RunResult, Scenario


def _clean(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def write_run(result: RunResult, scenario: Scenario, out_dir: str | Path) -> Path:
    """Write ``cases.parquet``, ``timeseries.parquet``, ``groups.parquet`` and ``summary.json`` into ``out_dir``.

    Files are written to a temporary name and renamed, so a reader never sees half a file.
    NaN KPIs are written as JSON ``null``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in (("cases", result.cases), ("timeseries", result.timeseries), ("groups", result.groups)):
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
