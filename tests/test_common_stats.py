"""common.stats: t intervals against scipy on hand cases, the vectorised table, paired differences."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from common.stats import (
    interval_from_moments,
    interval_table,
    paired_difference,
    paired_t_pvalue,
    significance_marker,
    t_half_width,
    t_interval,
)


@pytest.mark.parametrize("values", [[1.0, 2.0, 3.0, 4.0], [0.2, 0.25], [10.0, 12.5, 9.0, 11.0, 30.0, 8.0]])
def test_t_interval_matches_scipy(values):
    x = np.asarray(values)
    low, high = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    iv = t_interval(values)
    assert iv.n == len(values)
    assert iv.mean == pytest.approx(x.mean())
    assert iv.sd == pytest.approx(x.std(ddof=1))
    assert iv.low == pytest.approx(low, rel=1e-12)
    assert iv.high == pytest.approx(high, rel=1e-12)
    assert iv.half_width == pytest.approx((high - low) / 2, rel=1e-12)


def test_t_interval_by_hand_and_other_confidence():
    # 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.302652729749 → half-width 4.3027 / √3
    iv = t_interval([1, 2, 3])
    assert iv.half_width == pytest.approx(4.302652729749462 / math.sqrt(3), rel=1e-12)
    narrow = t_interval([1, 2, 3], confidence=0.5)
    assert narrow.half_width == pytest.approx(stats.t.ppf(0.75, 2) / math.sqrt(3), rel=1e-12)
    assert narrow.half_width < iv.half_width


def test_t_interval_edge_cases():
    empty = t_interval([])
    assert empty.n == 0 and math.isnan(empty.mean) and math.isnan(empty.low)
    one = t_interval([5.0, float("nan"), None])  # NaN and None are dropped
    assert one.n == 1 and one.mean == 5.0 and math.isnan(one.low) and math.isnan(one.high) and math.isnan(one.sd)
    flat = t_interval([0.5, 0.5, 0.5])
    assert (flat.low, flat.high, flat.sd) == (0.5, 0.5, 0.0)


def test_interval_from_moments_agrees_with_t_interval():
    values = [3.0, 5.0, 4.0, 8.0]
    full = t_interval(values)
    iv = interval_from_moments(full.mean, full.sd, full.n)
    assert (iv.low, iv.high) == (full.low, full.high)
    assert math.isnan(interval_from_moments(4.0, 1.0, 1).low)
    assert math.isnan(interval_from_moments(4.0, math.nan, 5).high)


def test_half_width_vectorised_nan_below_two():
    half = t_half_width(np.array([1.0, 2.0, 1.0]), np.array([1, 4, 9]))
    assert math.isnan(half[0])
    assert half[1] == pytest.approx(stats.t.ppf(0.975, 3) * 2.0 / 2.0)
    assert half[2] == pytest.approx(stats.t.ppf(0.975, 8) / 3.0)
    assert isinstance(t_half_width(1.0, 4), float)


def test_interval_table_matches_t_interval_per_group():
    data = pd.DataFrame({"g": ["a", "a", "a", "b", "b", "c"], "value": [1.0, 2.0, 4.0, 7.0, np.nan, 3.0]})
    table = interval_table(data, ["g"])
    assert list(table["g"]) == ["a", "b", "c"]  # order of appearance
    a = table.iloc[0]
    ref = t_interval([1.0, 2.0, 4.0])
    assert (a["n"], a["mean"], a["ci_low"], a["ci_high"]) == (3, ref.mean, ref.low, ref.high)
    b = table.iloc[1]  # one value left after dropping the NaN: undefined interval
    assert b["n"] == 1 and b["mean"] == 7.0 and math.isnan(b["ci_low"]) and math.isnan(b["sd"])
    assert interval_table(data.iloc[:0], ["g"]).empty


def test_paired_difference_against_scipy_ttest_rel():
    base = np.array([0.50, 0.55, 0.48, 0.52, 0.51])
    scen = np.array([0.58, 0.61, 0.55, 0.60, 0.57])
    out = paired_difference(base, scen)
    d = scen - base
    ref = stats.ttest_rel(scen, base)
    assert out["n"] == 5
    assert out["diff"] == pytest.approx(d.mean())
    assert out["p_value"] == pytest.approx(ref.pvalue, rel=1e-10)
    low, high = stats.t.interval(0.95, 4, loc=d.mean(), scale=stats.sem(d))
    assert (out["ci_low"], out["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    assert out["relative"] == pytest.approx(d.mean() / base.mean())
    assert out["effect_dz"] == pytest.approx(d.mean() / d.std(ddof=1))
    assert out["significant"] and out["marker"] == "***"


def test_paired_difference_without_effect_or_baseline():
    same = paired_difference([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert same["diff"] == 0.0 and same["p_value"] == 1.0 and not same["significant"] and same["marker"] == ""
    assert math.isnan(same["effect_dz"])
    zero_base = paired_difference([0.0, 0.0], [1.0, 3.0])
    assert math.isnan(zero_base["relative"])
    constant_shift = paired_difference([1.0, 2.0, 3.0], [2.0, 3.0, 4.0])  # deterministic effect under CRN
    assert constant_shift["p_value"] == 0.0 and constant_shift["significant"]


def test_paired_t_pvalue_and_markers():
    assert math.isnan(paired_t_pvalue([0.3]))
    assert paired_t_pvalue([0.1, -0.1, 0.2, -0.2]) == pytest.approx(1.0)
    assert [significance_marker(p) for p in (0.0005, 0.005, 0.02, 0.2, math.nan)] == ["***", "**", "*", "", ""]
