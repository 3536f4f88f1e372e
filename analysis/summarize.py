"""Tables with uncertainty: KPI means with t confidence intervals, and paired differences against a baseline.

Replication ``k`` of every scenario runs with the same seed (common random numbers), so the difference
between a scenario and the baseline is taken per replication (matched on design point and replication) and
its interval comes from the spread of those paired differences — much tighter than comparing two
independent means. Every value keeps the KPI's own unit (shares 0–1, hours, staff-hours, open cases);
``relative`` is the difference as a share of the baseline mean.

Intervals are two-sided Student-t intervals over replications: mean ± t(1−α/2, n−1) · sd / √n, with the
sample standard deviation (ddof 1). With fewer than two values an interval is undefined (NaN).
Significance markers are per comparison, not adjusted for the number of KPIs and scenarios compared:
``*`` p < 0.05, ``**`` p < 0.01, ``***`` p < 0.001 (paired t-test, two-sided).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from common.formatting import GENERAL_BANDS, format_number
from common.stats import (
    Interval,
    interval_table,
    paired_difference,
    paired_t_pvalue,
    significance_marker,
    t_half_width,
    t_interval,
)
from sim.results import KPI_NAMES, KPI_UNITS

from .store import (
    ALL,
    HANDLING_LEVELS,
    LEVEL_SPLIT,
    PARAM_PREFIX,
    QUEUE_ROLES,
    QUEUE_SPLIT,
    SPLITS,
    Store,
    as_store,
)

#: KPIs for which a larger value is better for citizens (a policy "improves" them by raising them).
HIGHER_IS_BETTER: frozenset[str] = frozenset({
    "response_rate", "on_time_response_rate", "resolution_rate", "true_resolution_rate",
    "dispatched_resolution_rate", "dispatched_true_resolution_rate", "satisfaction_rate", "on_time_close_rate",
    "mean_trust", "participation_rate", "repeat_true_resolution_rate", "repeat_satisfaction_rate",
})
#: KPIs for which a smaller value is better (times, failures, the gaming and digital gaps).
LOWER_IS_BETTER: frozenset[str] = frozenset({
    "median_response_h", "p90_response_h", "median_close_h", "p90_close_h", "reopen_rate", "escalation_rate",
    "perfunctory_share", "backlog_end", "gaming_gap", "digital_gap", "repeat_share", "median_relay_h",
    "relay_wait_h",
})
#: KPIs that are costs (paid staff-hours): a rise is "costlier", a fall "cheaper". Work hours and utilisation
#: are neither better nor worse in themselves.
COST_KPIS: frozenset[str] = frozenset({
    "cost_hours", "capacity_hours", "capacity_hours_departments", "capacity_hours_operators",
    "capacity_hours_supervisors",
})

#: Human names used in tables, figures and the plain-language reading.
KPI_LABELS: dict[str, str] = {
    "response_rate": "response rate", "on_time_response_rate": "on-time response rate",
    "resolution_rate": "resolution rate", "satisfaction_rate": "satisfaction rate",
    "median_response_h": "median time to first response", "p90_response_h": "90th-percentile time to first response",
    "median_close_h": "median time to close", "p90_close_h": "90th-percentile time to close",
    "on_time_close_rate": "on-time closure rate", "reopen_rate": "reopen rate",
    "escalation_rate": "escalation rate", "perfunctory_share": "share of perfunctory replies",
    "backlog_end": "backlog at the end", "mean_trust": "mean trust in government",
    "participation_rate": "participation rate", "digital_gap": "digital gap (urban − rural online share)",
    "direct_answer_share": "share answered directly at intake",
    "true_resolution_rate": "true resolution rate", "gaming_gap": "gaming gap (recorded − true resolution)",
    "dispatched_resolution_rate": "resolution rate of dispatched cases",
    "dispatched_true_resolution_rate": "true resolution rate of dispatched cases",
    "capacity_hours_departments": "paid department hours", "capacity_hours_operators": "paid operator hours",
    "capacity_hours_supervisors": "paid supervisor hours", "capacity_hours": "paid hours",
    "work_hours_departments": "department hours worked", "work_hours_operators": "operator hours worked",
    "work_hours_supervisors": "supervisor hours worked", "work_hours": "hours worked",
    "utilisation_departments": "department utilisation", "utilisation_operators": "operator utilisation",
    "utilisation_supervisors": "supervisor utilisation", "cost_hours": "cost in paid hours",
    "repeat_share": "share of repeat reports",
    "repeat_true_resolution_rate": "true resolution rate of repeat reports",
    "repeat_satisfaction_rate": "satisfaction rate of repeat reports",
    "median_relay_h": "median time from dispatch to the handling department (relayed cases)",
    "relay_wait_h": "mean wait at a relay",
    "online_share": "online share", "cases": "cases", "case_share": "share of cases",
    "queue_wait_h": "mean wait before work starts", "queue_starts": "cases started", "staff": "staff",
    "cost_fte": "cost in full-time equivalents",
}


#: Units of the extra indicators the splits carry besides the KPIs (``case_share`` is derived by
#: :func:`level_table`; the ``queue_*`` and ``staff`` ones come with the queue waits).
EXTRA_UNITS: dict[str, str] = {"online_share": "share of cases", "cases": "cases", "case_share": "share of cases",
                               "queue_wait_h": "hours", "queue_starts": "cases", "staff": "staff",
                               "cost_fte": "full-time equivalents"}
#: Paid hours of one full-time equivalent a week (a 40-hour week).
FTE_HOURS_PER_WEEK = 40.0


def fte(cost_hours: float, days: float) -> float:
    """Full-time equivalents that ``cost_hours`` paid staff-hours over ``days`` days amount to (40 h a week)."""
    return cost_hours / (FTE_HOURS_PER_WEEK * days / 7.0) if days > 0 else float("nan")


def kpi_label(kpi: str) -> str:
    """The KPI's name in words ("resolution rate")."""
    return KPI_LABELS.get(kpi, kpi.replace("_", " "))


def kpi_unit(kpi: str) -> str:
    """The KPI's unit from sim.results.KPI_UNITS ("share of cases", "hours", ...); empty when unknown."""
    return KPI_UNITS.get(kpi, EXTRA_UNITS.get(kpi, ""))


def is_share(kpi: str) -> bool:
    """Whether a KPI is a share (0–1) or a difference of shares, shown as % and percentage points."""
    return kpi_unit(kpi).startswith("share")


# ---------------------------------------------------------------------------------------------- tables
def _kpi_order(kpis: Sequence[str]) -> dict[str, int]:
    order = {k: i for i, k in enumerate(kpis)}
    base = len(order)
    for i, k in enumerate(KPI_NAMES):
        order.setdefault(k, base + i)
    return order


def _select_kpis(store: Store, kpis: Iterable[str] | None) -> list[str]:
    if kpis is None:
        present = set(store.overall["kpi"])
        listed = [k for k in KPI_NAMES if k in present]
        return listed + sorted(present - set(listed))
    return list(kpis)


def kpi_table(
    store: Store | str | Path,
    kpis: Iterable[str] | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Per scenario and design point, each KPI's mean over replications with its t interval.

    Columns: ``scenario, point, kpi, unit, n, mean, sd, ci_low, ci_high, half_width`` (values in the KPI's
    unit). ``kpis`` defaults to every KPI in the store. Only finished runs count.
    """
    store = as_store(store)
    kpis = _select_kpis(store, kpis)
    data = store.overall[store.overall["kpi"].isin(kpis)]
    return _sorted(_intervals(data, ["scenario", "point", "kpi"], confidence), store, kpis)


_TABLE_COLUMNS = ["scenario", "point", "kpi", "unit", "n", "mean", "sd", "ci_low", "ci_high", "half_width"]


def _intervals(data: pd.DataFrame, keys: list[str], confidence: float) -> pd.DataFrame:
    """:func:`common.stats.interval_table` of ``value`` for every group of ``keys``, with the KPI's unit."""
    cols = [*keys, "unit", "n", "mean", "sd", "ci_low", "ci_high", "half_width"]
    agg = interval_table(data, keys, confidence)
    if agg.empty:
        return pd.DataFrame(columns=cols)
    agg["unit"] = agg["kpi"].map(kpi_unit)
    return agg[cols]


def _sorted(df: pd.DataFrame, store: Store, kpis: Sequence[str], extra: Sequence[str] = ()) -> pd.DataFrame:
    if df.empty:
        return df.reset_index(drop=True)
    sc_order = {s: i for i, s in enumerate(store.scenarios)}
    k_order = _kpi_order(kpis)
    keys = df.assign(_s=df["scenario"].map(sc_order).fillna(len(sc_order)),
                     _k=df["kpi"].map(k_order).fillna(len(k_order)))
    by = ["_s", "point", *extra, "_k"]
    return keys.sort_values(by, kind="stable").drop(columns=["_s", "_k"]).reset_index(drop=True)


def paired_differences(
    store: Store | str | Path,
    kpis: Iterable[str] | None = None,
    baseline: str | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Each scenario minus the baseline, paired on (design point, replication) — common random numbers.

    Columns: ``scenario, baseline, point, kpi, unit, n`` (number of pairs), ``baseline_mean, scenario_mean,
    diff`` (mean paired difference, the effect size in the KPI's unit), ``sd, ci_low, ci_high`` (t interval of
    the difference), ``relative`` (diff / baseline mean; NaN when that mean is 0), ``effect_dz`` (diff / sd of
    the differences, Cohen's d_z), ``p_value``, ``significant`` (interval excludes 0), ``marker``.
    Replications missing in either scenario (failed runs, NaN KPIs) are left out of that pair only.
    """
    store = as_store(store)
    kpis = _select_kpis(store, kpis)
    base = baseline or store.baseline
    data = store.overall[store.overall["kpi"].isin(kpis)]
    wide = data.pivot_table(index=["point", "replication", "kpi"], columns="scenario", values="value",
                            aggfunc="mean")
    rows = []
    others = [s for s in store.scenarios if s != base and s in wide.columns]
    if base in wide.columns:
        for scenario in others:
            pair = wide[[base, scenario]].dropna()
            for (point, kpi), grp in pair.groupby(level=["point", "kpi"], sort=False):
                pair_stats = paired_difference(grp[base].to_numpy(), grp[scenario].to_numpy(), confidence)
                rows.append({"scenario": scenario, "baseline": base, "point": point, "kpi": kpi,
                             "unit": kpi_unit(kpi), **pair_stats})
    return _sorted(pd.DataFrame(rows, columns=_PAIRED_COLUMNS), store, kpis)


_PAIRED_COLUMNS = ["scenario", "baseline", "point", "kpi", "unit", "n", "baseline_mean", "scenario_mean", "diff",
                   "sd", "ci_low", "ci_high", "relative", "effect_dz", "p_value", "significant", "marker"]


def group_table(
    store: Store | str | Path,
    kpis: Iterable[str] | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Equity: KPIs split by requester kind, channel and urban/rural area, mean and t interval per scenario.
    Every other split in the store comes too, after those (the split by handling level and the queue waits,
    which :func:`level_table` and :func:`queue_table` present better); filter on ``group_by`` for the equity ones.

    Columns: ``scenario, point, group_by, group, kpi, unit, n, mean, sd, ci_low, ci_high, half_width``.
    """
    store = as_store(store)
    g = store.groups
    if kpis is not None:
        g = g[g["kpi"].isin(list(kpis))]
    df = _intervals(g, ["scenario", "point", "group_by", "group", "kpi"], confidence)
    if df.empty:
        return df
    split_order = {s: i for i, s in enumerate(SPLITS)}
    group_order = {g: i for groups in SPLITS.values() for i, g in enumerate(groups)}
    df = df.assign(_g=df["group_by"].map(split_order).fillna(99), _h=df["group"].map(group_order).fillna(99))
    df = _sorted(df, store, [k for k in KPI_NAMES if k in set(df["kpi"])], extra=["_g", "_h"])
    return df.drop(columns=["_g", "_h"])


def group_gaps(
    store: Store | str | Path,
    kpis: Iterable[str] | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Within-run gaps between groups, paired per run: enterprise − citizen, urban − rural, online − offline.

    Columns: ``scenario, point, group_by, gap`` (e.g. "urban − rural"), ``kpi, unit, n, mean, ci_low,
    ci_high`` in the KPI's unit. The overall ``digital_gap`` KPI is the urban − rural online share.
    """
    store = as_store(store)
    g = store.groups
    if kpis is not None:
        g = g[g["kpi"].isin(list(kpis))]
    pairs = {"requester_kind": ("enterprise", "citizen"), "area": ("urban", "rural"), "channel": ("online", "offline")}
    rows = []
    for group_by, (a, b) in pairs.items():
        sub = g[(g["group_by"] == group_by) & g["group"].isin([a, b])]
        if sub.empty:
            continue
        wide = sub.pivot_table(index=["scenario", "point", "kpi", "run_id"], columns="group", values="value")
        if a not in wide or b not in wide:
            continue
        diff = (wide[a] - wide[b]).dropna()
        for (scenario, point, kpi), d in diff.groupby(level=["scenario", "point", "kpi"], sort=False):
            iv = t_interval(d, confidence)
            rows.append({"scenario": scenario, "point": point, "group_by": group_by, "gap": f"{a} − {b}",
                         "kpi": kpi, "unit": kpi_unit(kpi), "n": iv.n, "mean": iv.mean, "ci_low": iv.low,
                         "ci_high": iv.high})
    cols = ["scenario", "point", "group_by", "gap", "kpi", "unit", "n", "mean", "ci_low", "ci_high"]
    return pd.DataFrame(rows, columns=cols)


def _group_order(names: Iterable[str], known: Sequence[str]) -> list[str]:
    """``names`` in the order of ``known``, unknown ones after (sorted)."""
    names = set(map(str, names))
    return [n for n in known if n in names] + sorted(names - set(known))


def level_table(
    store: Store | str | Path,
    kpis: Iterable[str] | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """By handling level (the level a case was handled at; "platform": answered at intake): each KPI of the
    split per scenario, design point and level, mean over replications with its t interval, plus
    ``case_share``, the level's cases as a share of all the run's cases.

    A run writes no row for a level that handled none of its cases: for ``cases`` and ``case_share`` that
    level counts as 0 in that run (every level seen anywhere in the store is filled so), while its rates are
    undefined there and left out. Levels in :data:`~analysis.store.HANDLING_LEVELS` order (unknown ones
    after). Columns: ``scenario, point, group, kpi, unit, n, mean, sd, ci_low, ci_high, half_width``; empty
    when the store has no split by handling level (stores written before the model recorded it).
    """
    store = as_store(store)
    cols = ["scenario", "point", "group", "kpi", "unit", "n", "mean", "sd", "ci_low", "ci_high", "half_width"]
    g = store.groups
    lv = g[g["group_by"] == LEVEL_SPLIT]
    if lv.empty:
        return pd.DataFrame(columns=cols)
    keys = ["run_id", "scenario", "point", "replication"]
    levels = _group_order(lv["group"], HANDLING_LEVELS)
    parts = [lv.loc[lv["kpi"] != "cases", [*keys, "group", "kpi", "value"]]]
    counted = lv[lv["kpi"] == "cases"]
    if len(counted):
        counts = counted.pivot_table(index=keys, columns="group", values="value", aggfunc="sum")
        counts = counts.reindex(columns=levels).fillna(0.0)
        total = counts.sum(axis=1)
        share = counts.div(total.where(total > 0), axis=0)
        for name, wide in (("cases", counts), ("case_share", share)):
            wide = wide.rename_axis(columns="group").reset_index()
            parts.append(wide.melt(id_vars=keys, var_name="group", value_name="value").assign(kpi=name))
    data = pd.concat(parts, ignore_index=True)
    if kpis is not None:
        data = data[data["kpi"].isin(list(kpis))]
    df = _intervals(data, ["scenario", "point", "group", "kpi"], confidence)
    if df.empty:
        return pd.DataFrame(columns=cols)
    order = {name: i for i, name in enumerate(levels)}
    df = df.assign(_h=df["group"].map(order))
    present = set(df["kpi"])
    df = _sorted(df, store, [k for k in (*KPI_NAMES, "cases", "case_share") if k in present], extra=["_h"])
    return df.drop(columns=["_h"])[cols]


def queue_table(store: Store | str | Path, confidence: float = 0.95) -> pd.DataFrame:
    """Queue waits by bureau role and level (``group`` "relay@county"): per scenario and design point, the
    mean over replications with its t interval of ``queue_wait_h`` (each run's mean hours from an order
    reaching those bureaus to the start of work on it; a run in which they started nothing has none),
    ``queue_starts`` (cases started per run) and ``staff``.

    Columns: ``scenario, point, group, role, level, kpi, unit, n, mean, sd, ci_low, ci_high, half_width``;
    relays before departments, each top to bottom. Empty when the store has no queue rows."""
    store = as_store(store)
    cols = ["scenario", "point", "group", "role", "level", "kpi", "unit", "n", "mean", "sd", "ci_low", "ci_high",
            "half_width"]
    g = store.groups
    q = g[g["group_by"] == QUEUE_SPLIT]
    df = _intervals(q, ["scenario", "point", "group", "kpi"], confidence) if len(q) else pd.DataFrame()
    if df.empty:
        return pd.DataFrame(columns=cols)
    split = df["group"].str.partition("@")
    df = df.assign(role=split[0], level=split[2])
    roles = {r: i for i, r in enumerate(_group_order(df["role"], QUEUE_ROLES))}
    levels = {lv: i for i, lv in enumerate(_group_order(df["level"], HANDLING_LEVELS))}
    df = df.assign(_r=df["role"].map(roles), _h=df["level"].map(levels))
    df = _sorted(df, store, ["queue_wait_h", "queue_starts", "staff"], extra=["_r", "_h"])
    return df.drop(columns=["_r", "_h"])[cols]


def pareto_efficient(cost: Sequence[float], outcome: Sequence[float], higher_is_better: bool = True) -> list[bool]:
    """Which options no other option beats on both counts (no more cost and at least as good an outcome,
    strictly better on one). Options with a NaN coordinate are never efficient."""
    c = np.asarray(cost, dtype="float64")
    o = np.asarray(outcome, dtype="float64") * (1.0 if higher_is_better else -1.0)
    ok = ~(np.isnan(c) | np.isnan(o))
    flags = []
    for i in range(c.size):
        if not ok[i]:
            flags.append(False)
            continue
        dominated = ok & (c <= c[i]) & (o >= o[i]) & ((c < c[i]) | (o > o[i]))
        flags.append(not bool(dominated.any()))
    return flags


def timeseries_bands(
    store: Store | str | Path,
    metrics: Iterable[str],
    confidence: float = 0.95,
    by_point: bool = False,
) -> pd.DataFrame:
    """Per scenario, day and metric: mean over replications with its t interval (per design point too when
    ``by_point``; otherwise the runs of all points of a scenario are pooled).

    Columns: ``scenario, [point,] day, metric, n, mean, ci_low, ci_high`` (in the metric's unit)."""
    store = as_store(store)
    ts = store.timeseries(metrics)
    keys = ["scenario", *(["point"] if by_point else []), "day", "metric"]
    cols = [*keys, "n", "mean", "ci_low", "ci_high"]
    ts = ts.dropna(subset=["value"])
    if ts.empty:
        return pd.DataFrame(columns=cols)
    agg = ts.groupby(keys, sort=True)["value"].agg(n="count", mean="mean", sd="std").reset_index()
    half = t_half_width(agg["sd"], agg["n"], confidence)
    agg["ci_low"] = agg["mean"] - half
    agg["ci_high"] = agg["mean"] + half
    return agg[cols]


# ---------------------------------------------------------------------------------------------- sensitivity
class SensitivityUnavailable(Exception):
    """The store's design does not support the asked-for sensitivity analysis (reason in the message)."""


def design_matrix(store: Store | str | Path, kpi: str) -> tuple[dict, np.ndarray, np.ndarray]:
    """SALib's ``problem``, the design matrix X (one row per design point, ordered by point, parameters in
    the design's order; values in the parameters' own units) and Y (the KPI's mean over finished
    replications at each point). Raises :class:`SensitivityUnavailable` when a point has no value."""
    store = as_store(store)
    params = store.design["parameters"]
    if not params:
        raise SensitivityUnavailable("the design has no parameters")
    cols = [PARAM_PREFIX + str(p["name"]) for p in params]
    missing = [c for c in cols if c not in store.runs]
    if missing:
        raise SensitivityUnavailable(f"runs.parquet lacks the design column(s) {', '.join(missing)}")
    points = store.runs[["point", *cols]].drop_duplicates("point").sort_values("point")
    n_expected = store.design.get("n_points")
    if n_expected is not None and len(points) != int(n_expected):
        raise SensitivityUnavailable(f"runs.parquet lists {len(points)} design points, the design has {n_expected}")
    values = store.overall[store.overall["kpi"] == kpi].groupby("point")["value"].mean()
    y = points["point"].map(values)
    if y.isna().any():
        lost = points.loc[y.isna(), "point"].tolist()
        raise SensitivityUnavailable(
            f"{kpi}: {len(lost)} design point(s) have no finished run or no value (e.g. point "
            f"{', '.join(map(str, lost[:5]))}); the sample is incomplete")
    problem = {"num_vars": len(params), "names": [str(p["name"]) for p in params],
               "bounds": [[float(p["low"]), float(p["high"])] for p in params]}
    return problem, points[cols].to_numpy(dtype="float64"), y.to_numpy(dtype="float64")


def morris_indices(store: Store | str | Path, kpis: Iterable[str] | None = None, seed: int = 0) -> pd.DataFrame:
    """Morris elementary-effects screening (SALib) from a stored ``morris`` design, per KPI.

    Columns: ``kpi, unit, parameter, mu, mu_star, mu_star_conf, sigma``. Effects are SALib's unscaled
    elementary effects: the change in the KPI (its own unit) per change of the parameter across its whole
    range [low, high], measured one grid step at a time. ``mu_star_conf`` is the bootstrap 95% half-width."""
    from SALib.analyze import morris

    store = as_store(store)
    if store.design_type != "morris":
        raise SensitivityUnavailable(f"the design is '{store.design_type}', not 'morris'")
    num_levels = int(store.design.get("levels", store.design.get("num_levels", 4)))
    rows = []
    for kpi in (list(kpis) if kpis is not None else store.kpis):
        problem, x, y = design_matrix(store, kpi)
        if y.size % (problem["num_vars"] + 1):
            raise SensitivityUnavailable(
                f"{y.size} points is not a whole number of Morris trajectories of {problem['num_vars'] + 1}")
        res = morris.analyze(problem, x, y, num_levels=num_levels, seed=seed)
        for i, name in enumerate(problem["names"]):
            rows.append({"kpi": kpi, "unit": kpi_unit(kpi), "parameter": name, "mu": float(res["mu"][i]),
                         "mu_star": float(res["mu_star"][i]), "mu_star_conf": float(res["mu_star_conf"][i]),
                         "sigma": float(res["sigma"][i])})
    return pd.DataFrame(rows, columns=["kpi", "unit", "parameter", "mu", "mu_star", "mu_star_conf", "sigma"])


def sobol_second_order(store: Store, n_points: int) -> bool:
    """Whether a Sobol sample was drawn with second-order terms: the manifest's ``calc_second_order``, else
    inferred from the sample size (N·(2D+2) points with, N·(D+2) without; with-terms wins a tie, as SALib's
    default)."""
    flag = store.design.get("second_order", store.design.get("calc_second_order"))
    if flag is not None:
        return bool(flag)
    d = len(store.design["parameters"])
    if n_points % (2 * d + 2) == 0:
        return True
    if n_points % (d + 2) == 0:
        return False
    raise SensitivityUnavailable(f"{n_points} points fit neither N·(2D+2) nor N·(D+2) Sobol samples (D = {d})")


def sobol_indices(store: Store | str | Path, kpis: Iterable[str] | None = None, seed: int = 0) -> pd.DataFrame:
    """Sobol first-order (S1) and total (ST) indices (SALib) from a stored ``sobol`` design, per KPI.

    Columns: ``kpi, parameter, S1, S1_conf, ST, ST_conf`` (shares of the KPI's variance, 0–1; conf is the
    half-width of the bootstrap 95% interval). A KPI that does not vary over the design gets zeros."""
    from SALib.analyze import sobol

    store = as_store(store)
    if store.design_type != "sobol":
        raise SensitivityUnavailable(f"the design is '{store.design_type}', not 'sobol'")
    rows = []
    for kpi in (list(kpis) if kpis is not None else store.kpis):
        problem, _x, y = design_matrix(store, kpi)
        second = sobol_second_order(store, y.size)
        if np.allclose(y, y[0]):
            res = {k: np.zeros(problem["num_vars"]) for k in ("S1", "S1_conf", "ST", "ST_conf")}
        else:
            res = sobol.analyze(problem, y, calc_second_order=second, seed=seed + 1)
        for i, name in enumerate(problem["names"]):
            rows.append({"kpi": kpi, "parameter": name, "S1": float(res["S1"][i]),
                         "S1_conf": float(res["S1_conf"][i]), "ST": float(res["ST"][i]),
                         "ST_conf": float(res["ST_conf"][i])})
    return pd.DataFrame(rows, columns=["kpi", "parameter", "S1", "S1_conf", "ST", "ST_conf"])


# ---------------------------------------------------------------------------------------------- text
def format_value(value: float, kpi: str | None = None, digits: int = 3) -> str:
    """A number for people: shares with 3 decimals, hours with 1, counts and staff-hours as integers."""
    if value is None or not np.isfinite(value):
        return "–"
    text = _format_number(float(value), kpi_unit(kpi) if kpi else "", digits)
    if text.startswith("-") and not any(ch in "123456789" for ch in text):
        text = text[1:]  # a negative that rounds to zero reads as zero
    return text


def _format_number(value: float, unit: str, digits: int) -> str:
    if unit.startswith("share") or unit == "0–1":
        return f"{value:.{digits}f}"
    if unit == "hours":
        return f"{value:.1f}"
    if unit in ("staff-hours", "open cases", "cases", "staff"):
        return f"{value:,.0f}"
    if unit == "full-time equivalents":
        return f"{value:,.1f}"
    return format_number(value, GENERAL_BANDS, small=".2e", zero=".3g")


def format_signed(value: float, kpi: str | None = None) -> str:
    text = format_value(value, kpi)
    return text if text.startswith(("-", "–")) else "+" + text


def format_interval(mean: float, low: float, high: float, kpi: str | None = None) -> str:
    """``mean [low, high]``; just the mean when the interval is undefined (one replication)."""
    if not np.isfinite(low) or not np.isfinite(high):
        return format_value(mean, kpi)
    return f"{format_value(mean, kpi)} [{format_value(low, kpi)}, {format_value(high, kpi)}]"


def _text_grid(header: list[str], rows: list[list[str]], align_first_left: int = 1) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for r in [header, None, *rows]:
        if r is None:
            lines.append("  ".join("-" * w for w in widths))
            continue
        cells = [str(c).ljust(w) if i < align_first_left else str(c).rjust(w)
                 for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def kpi_matrix(table: pd.DataFrame, scenarios: Sequence[str] | None = None) -> tuple[list[str], list[list[str]]]:
    """The KPI table as (header, rows) of strings: one row per KPI (with unit), one column per scenario
    (and design point when there are several), cells ``mean ± half-width``."""
    if table.empty:
        return ["KPI (unit)"], []
    cols = table[["scenario", "point"]].drop_duplicates()
    if scenarios is not None:
        order = {s: i for i, s in enumerate(scenarios)}
        cols = cols.assign(_o=cols["scenario"].map(order).fillna(len(order))).sort_values(["_o", "point"])
    multi = cols.groupby("scenario")["point"].nunique().max() > 1
    keys = list(cols.itertuples(index=False, name=None))[: len(cols)]
    header = ["KPI (unit)"] + [f"{s} · point {p}" if multi else str(s) for s, p, *_ in keys]
    cell = {(r.scenario, r.point, r.kpi): r for r in table.itertuples(index=False)}
    rows = []
    for kpi in pd.unique(table["kpi"]):
        unit = kpi_unit(kpi)
        row = [f"{kpi} ({unit})" if unit else kpi]
        for s, p, *_ in keys:
            r = cell.get((s, p, kpi))
            if r is None:
                row.append("–")
            elif np.isfinite(r.half_width):
                row.append(f"{format_value(r.mean, kpi)} ± {format_value(r.half_width, kpi)}")
            else:
                row.append(format_value(r.mean, kpi))
        rows.append(row)
    return header, rows


def format_kpi_table(table: pd.DataFrame, scenarios: Sequence[str] | None = None, max_points: int = 12) -> str:
    """Render :func:`kpi_table` for the terminal: rows KPIs, columns scenarios, ``mean ± half-width`` of
    the 95% interval. With many design points (sensitivity designs) each scenario's column shows the range
    of the per-point means instead."""
    if table.empty:
        return "(no finished runs: no KPI values to show)"
    per_scenario = table.groupby("scenario")["point"].nunique()
    if per_scenario.max() > max_points:
        return _format_spread(table, scenarios)
    header, rows = kpi_matrix(table, scenarios)
    n = table["n"].max()
    note = f"mean ± half-width of the 95% t interval over {n} replication(s)"
    return _text_grid(header, rows) + "\n" + note


def _format_spread(table: pd.DataFrame, scenarios: Sequence[str] | None) -> str:
    names = list(scenarios) if scenarios else list(pd.unique(table["scenario"]))
    header = ["KPI (unit)"] + [f"{s}: min … median … max over points" for s in names]
    rows = []
    for kpi in pd.unique(table["kpi"]):
        unit = kpi_unit(kpi)
        row = [f"{kpi} ({unit})" if unit else kpi]
        for s in names:
            m = table[(table["scenario"] == s) & (table["kpi"] == kpi)]["mean"]
            row.append("–" if m.empty else " … ".join(format_value(v, kpi) for v in (m.min(), m.median(), m.max())))
        rows.append(row)
    npts = table.groupby("scenario")["point"].nunique().max()
    return _text_grid(header, rows) + f"\nmeans per design point ({npts} points); see the report for sensitivity"


def format_paired_differences(diffs: pd.DataFrame) -> str:
    """Render :func:`paired_differences` for the terminal, one row per scenario and KPI."""
    if diffs.empty:
        return "(no paired differences: one scenario only, or no finished pairs)"
    multi = diffs.groupby("scenario")["point"].nunique().max() > 1
    header = ["scenario", *(["point"] if multi else []), "KPI (unit)", "baseline", "scenario", "difference [95% CI]",
              "relative", "sig."]
    rows = []
    for r in diffs.itertuples(index=False):
        ci = (f"{format_signed(r.diff, r.kpi)} [{format_signed(r.ci_low, r.kpi)}, {format_signed(r.ci_high, r.kpi)}]"
              if np.isfinite(r.ci_low) else format_signed(r.diff, r.kpi))
        rel = f"{r.relative:+.1%}" if np.isfinite(r.relative) else "–"
        rows.append([r.scenario, *([str(r.point)] if multi else []), f"{r.kpi} ({r.unit})",
                     format_value(r.baseline_mean, r.kpi), format_value(r.scenario_mean, r.kpi), ci, rel, r.marker])
    base = diffs["baseline"].iloc[0]
    left = 3 if multi else 2
    return (_text_grid(header, rows, align_first_left=left)
            + f"\npaired on replication against '{base}' (common random numbers); "
            "* p<0.05 ** p<0.01 *** p<0.001, unadjusted")


def summary_text(store: Store | str | Path, kpis: Iterable[str] | None = None) -> str:
    """For the terminal: the KPI table (``kpis``, default the spec's), the paired differences of the
    headline KPIs against the baseline, and the failed runs."""
    store = as_store(store)
    kpis = list(kpis) if kpis is not None else store.kpis
    parts = [f"Experiment '{store.name}': {len(store.ok_runs)} finished run(s), {len(store.failed)} failed",
             "", format_kpi_table(kpi_table(store, kpis), store.scenarios)]
    diffs = paired_differences(store, store.headline_kpis(6))
    if not diffs.empty and diffs.groupby("scenario")["point"].nunique().max() <= 12:
        parts += ["", format_paired_differences(diffs)]
    if len(store.failed):
        parts += ["", f"{len(store.failed)} run(s) failed:"]
        parts += [f"  {r.run_id} ({r.scenario}, replication {r.replication}): {r.error}"
                  for r in store.failed.itertuples(index=False)]
    return "\n".join(parts)


__all__ = [
    "ALL", "COST_KPIS", "HIGHER_IS_BETTER", "Interval", "KPI_LABELS", "LOWER_IS_BETTER", "format_interval",
    "format_kpi_table", "format_paired_differences", "format_value", "group_gaps", "group_table", "kpi_label",
    "kpi_matrix", "kpi_table", "kpi_unit", "level_table", "morris_indices", "paired_differences", "paired_t_pvalue",
    "pareto_efficient", "queue_table", "significance_marker", "sobol_indices", "SensitivityUnavailable",
    "summary_text", "t_interval", "timeseries_bands",
]
