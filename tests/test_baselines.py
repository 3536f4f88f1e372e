"""Pinned baseline: a few short runs must give exactly the stored KPIs and tables.

Any change that moves a result — on purpose or not — fails here. A restructuring must keep this green
without re-pinning; a change meant to move results re-pins once and says so in its commit message:

    make baseline                       # same as: .venv/bin/python tests/test_baselines.py --repin

The runs (scenario, seed, days, warm-up) are listed in ``RUNS``; the pinned values live in
``tests/baseline.json``. Floats are compared after rounding to 10 significant digits, so that a change in
the order of a floating-point sum (last-bit noise) does not count as a change of result, while any real
difference does.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
BASELINE = Path(__file__).with_name("baseline.json")
SIG_DIGITS = 10

#: name -> (scenario file, seed, days, warm-up days)
RUNS: dict[str, tuple[str, int, float, float]] = {
    "default": ("scenarios/default.yaml", 11, 45, 5),
    "zzic": ("scenarios/zzic.yaml", 12, 45, 5),
    "baseline": ("scenarios/baseline.yaml", 13, 45, 5),
    "queue_check": ("scenarios/queue_check.yaml", 14, 60, 5),
}


def _round(x: np.ndarray) -> np.ndarray:
    """Round to SIG_DIGITS significant digits (NaN and inf kept)."""
    x = np.asarray(x, dtype=float)
    out = x.copy()
    ok = np.isfinite(x) & (x != 0)
    mag = np.floor(np.log10(np.abs(x[ok])))
    scale = 10.0 ** (SIG_DIGITS - 1 - mag)
    out[ok] = np.round(x[ok] * scale) / scale
    return out


def table_hash(df: pd.DataFrame) -> str:
    """A digest of a table: column names, then each column's values (floats rounded, categories as text)."""
    h = hashlib.sha256()
    h.update(repr(list(df.columns)).encode())
    h.update(str(len(df)).encode())
    for name in df.columns:
        col = df[name]
        h.update(name.encode())
        if isinstance(col.dtype, pd.CategoricalDtype):
            h.update("\x1f".join(col.astype(str).tolist()).encode())
        elif pd.api.types.is_float_dtype(col.dtype):
            h.update(np.ascontiguousarray(_round(col.to_numpy(dtype=float))).tobytes())
        elif pd.api.types.is_bool_dtype(col.dtype) or pd.api.types.is_integer_dtype(col.dtype):
            h.update(np.ascontiguousarray(col.to_numpy(dtype=np.int64, na_value=-1)).tobytes())  # NA (nullable): −1
        else:
            h.update("\x1f".join(col.astype(str).tolist()).encode())
    return h.hexdigest()


def _rounded_kpi(v: float) -> float | None:
    return None if math.isnan(v) else float(_round(np.array([v]))[0])


def measure(name: str) -> dict:
    """Run one pinned case and return what is compared: KPIs and table digests."""
    from sim import load_scenario, run_scenario

    path, seed, days, warm = RUNS[name]
    result = run_scenario(load_scenario(ROOT / path), seed=seed, days=days, warmup_days=warm)
    return {
        "kpis": {k: _rounded_kpi(v) for k, v in result.summary.items()},
        "cases": len(result.cases),
        "cases_hash": table_hash(result.cases),
        "timeseries_hash": table_hash(result.timeseries),
        "groups_hash": table_hash(result.groups),
    }


def _pinned() -> dict:
    if not BASELINE.exists():
        pytest.fail(f"{BASELINE} is missing: pin it with `make baseline`")
    return json.loads(BASELINE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", list(RUNS))
def test_run_matches_pinned_baseline(name: str) -> None:
    pinned = _pinned()["runs"][name]
    got = measure(name)
    moved = {k: (pinned["kpis"].get(k), v) for k, v in got["kpis"].items() if pinned["kpis"].get(k) != v}
    assert not moved, f"{name}: KPIs moved from the pinned baseline (pinned, now): {moved}"
    assert got["cases"] == pinned["cases"], f"{name}: {got['cases']} cases, pinned {pinned['cases']}"
    for key in ("cases_hash", "timeseries_hash", "groups_hash"):
        assert got[key] == pinned[key], f"{name}: {key} differs from the pinned baseline"


def test_table_hash_sees_a_one_value_change() -> None:
    """The digest must notice a single changed value, but not last-bit float noise."""
    df = pd.DataFrame({"a": [1.0, 2.0, np.nan], "b": pd.Categorical(["x", "y", "x"]), "c": [True, False, True]})
    base = table_hash(df)
    noisy = df.copy()
    noisy.loc[1, "a"] = 2.0 * (1 + 1e-15)
    assert table_hash(noisy) == base
    changed = df.copy()
    changed.loc[1, "a"] = 2.001
    assert table_hash(changed) != base
    flipped = df.copy()
    flipped.loc[0, "c"] = False
    assert table_hash(flipped) != base


def repin() -> None:
    """Measure every run and write tests/baseline.json."""
    runs = {}
    for name in RUNS:
        runs[name] = measure(name)
        print(f"{name}: {runs[name]['cases']} cases, cases_hash {runs[name]['cases_hash'][:12]}")
    digest = hashlib.sha256(json.dumps(runs, sort_keys=True).encode()).hexdigest()
    BASELINE.write_text(json.dumps({"digest": digest, "runs": runs}, indent=1, sort_keys=True) + "\n",
                        encoding="utf-8")
    print(f"pinned {BASELINE.relative_to(ROOT)} (digest {digest[:16]})")


if __name__ == "__main__":
    if sys.argv[1:] != ["--repin"]:
        sys.exit("usage: python tests/test_baselines.py --repin   (re-measure and overwrite tests/baseline.json)")
    sys.path.insert(0, str(ROOT))
    repin()
