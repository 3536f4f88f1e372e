"""Uncertainty over replications: Student-t intervals and paired differences (common random numbers).

Used by ``experiments.runner`` (the end-of-experiment KPI table), ``experiments.calibration`` (the fit per
target) and ``analysis.summarize`` (tables, paired differences, bands). Values keep their own unit (shares
0–1, hours, staff-hours, ...); intervals are in that unit too.

Intervals are two-sided: mean ± t(1−α/2, n−1) · sd / √n, with the sample standard deviation (ddof 1).
With fewer than two values an interval is undefined (NaN); zero spread gives a zero-width interval.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import stdtrit


@dataclass(frozen=True)
class Interval:
    """A mean with its two-sided t confidence interval (in the unit of the values)."""

    mean: float
    low: float
    high: float
    sd: float
    n: int

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0


def t_quantile(n: Any, confidence: float = 0.95) -> Any:
    """The two-sided t critical value for ``n`` values (n − 1 degrees of freedom, at least 1); vectorised.
    ``scipy.special.stdtrit`` is what ``scipy.stats.t.ppf`` computes, and lighter to import."""
    return stdtrit(np.maximum(np.asarray(n, dtype="float64") - 1, 1), 0.5 + confidence / 2.0)


def t_half_width(sd: Any, n: Any, confidence: float = 0.95) -> Any:
    """Half-width t(1−α/2, n−1) · sd / √n of the interval; NaN where n < 2. Scalars or arrays."""
    n_arr = np.asarray(n, dtype="float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        half = t_quantile(n_arr, confidence) * np.asarray(sd, dtype="float64") / np.sqrt(n_arr)
    half = np.where(n_arr >= 2, half, np.nan)
    return float(half) if half.ndim == 0 else half


def interval_from_moments(mean: float, sd: float, n: int, confidence: float = 0.95) -> Interval:
    """The t interval of ``n`` values with this mean and sample sd; NaN bounds when n < 2 or sd is not finite."""
    if n < 2 or sd is None or not np.isfinite(sd):
        return Interval(mean, math.nan, math.nan, math.nan if n < 2 else sd, n)
    half = t_half_width(sd, n, confidence)
    return Interval(mean, mean - half, mean + half, sd, n)


def t_interval(values: Iterable[float], confidence: float = 0.95) -> Interval:
    """Mean and Student-t interval of ``values`` (None and NaN dropped). n < 2 gives a NaN interval; zero
    spread gives a zero-width interval at the mean."""
    x = np.asarray([v for v in values if v is not None], dtype="float64")
    x = x[~np.isnan(x)]
    n = int(x.size)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, math.nan, 1)
    sd = float(x.std(ddof=1))
    half = t_half_width(sd, n, confidence)
    return Interval(mean, mean - half, mean + half, sd, n)


def interval_table(data: pd.DataFrame, keys: Sequence[str], confidence: float = 0.95,
                   value: str = "value") -> pd.DataFrame:
    """:func:`t_interval` of column ``value`` for every group of ``keys``, vectorised (large designs have
    thousands of groups), groups in order of appearance. NaN values are dropped; groups with no value are
    left out. Columns: ``*keys, n, mean, sd, ci_low, ci_high, half_width`` (sd NaN when n < 2)."""
    cols = [*keys, "n", "mean", "sd", "ci_low", "ci_high", "half_width"]
    data = data.dropna(subset=[value])
    if data.empty:
        return pd.DataFrame(columns=cols)
    agg = data.groupby(list(keys), sort=False)[value].agg(n="count", mean="mean", sd="std").reset_index()
    n = agg["n"].to_numpy()
    half = t_half_width(agg["sd"].to_numpy(), n, confidence)
    agg["sd"] = np.where(n >= 2, agg["sd"], np.nan)
    agg["ci_low"] = agg["mean"] - half
    agg["ci_high"] = agg["mean"] + half
    agg["half_width"] = half
    agg["n"] = agg["n"].astype(int)
    return agg[cols]


# ---------------------------------------------------------------------------------------------- pairs
def paired_t_pvalue(diffs: Iterable[float]) -> float:
    """Two-sided p-value of the paired t-test that the mean difference is zero (NaN when n < 2).

    Zero spread: p = 1 when every difference is zero, p = 0 when they are all the same non-zero value
    (common random numbers can make a policy's effect deterministic)."""
    from scipy import stats

    d = np.asarray(diffs, dtype="float64")
    d = d[~np.isnan(d)]
    n = d.size
    if n < 2:
        return math.nan
    sd = d.std(ddof=1)
    mean = d.mean()
    if sd == 0.0 or not np.isfinite(sd):
        return 1.0 if mean == 0.0 else 0.0
    tstat = mean / (sd / math.sqrt(n))
    return float(2.0 * stats.t.sf(abs(tstat), n - 1))


def significance_marker(p: float) -> str:
    """``***`` p < 0.001, ``**`` p < 0.01, ``*`` p < 0.05, else empty."""
    if p is None or not np.isfinite(p):
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""


def paired_difference(baseline: Sequence[float], scenario: Sequence[float],
                      confidence: float = 0.95) -> dict[str, Any]:
    """Scenario minus baseline, value by value (replication k of both ran with the same seed).

    ``baseline`` and ``scenario`` are matched arrays without gaps. Returns ``n`` (pairs), ``baseline_mean``,
    ``scenario_mean``, ``diff`` (mean paired difference, in the values' unit), ``sd``, ``ci_low``, ``ci_high``
    (its t interval), ``relative`` (diff / baseline mean; NaN when that mean is 0), ``effect_dz`` (diff / sd
    of the differences), ``p_value`` (paired t-test), ``significant`` (p < 1 − confidence) and ``marker``.
    """
    b = np.asarray(baseline, dtype="float64")
    s = np.asarray(scenario, dtype="float64")
    d = s - b
    iv = t_interval(d, confidence)
    p = paired_t_pvalue(d)
    bmean = float(b.mean())
    significant = bool(np.isfinite(p) and p < 1 - confidence)
    return {
        "n": iv.n, "baseline_mean": bmean, "scenario_mean": float(s.mean()), "diff": iv.mean,
        "sd": iv.sd, "ci_low": iv.low, "ci_high": iv.high,
        "relative": iv.mean / bmean if bmean != 0 else math.nan,
        "effect_dz": (iv.mean / iv.sd if iv.sd and np.isfinite(iv.sd) and iv.sd > 0 else math.nan),
        "p_value": p, "significant": significant, "marker": significance_marker(p) if significant else "",
    }
