"""Figures from a result store (seaborn/matplotlib, no pyplot state): one function per figure.

Every function takes a :class:`~analysis.store.Store` (or a store directory) and returns a matplotlib
``Figure``; when the store lacks what a figure needs (no cases stored, not a sweep design, ...) it raises
:class:`FigureSkipped` with the reason, which the report prints instead of the picture.

Style: one look for all figures (seaborn "whitegrid", labelled axes with units), and each scenario keeps one
colour, marker, line style and hatch everywhere. Colours come from viridis, whose lightness rises steadily,
and every series also differs by marker, line style or hatch, so the figures read in grey-scale too.
Intervals are 95% Student-t intervals over replications unless a caption says otherwise.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from common.stats import t_interval

from .store import PARAM_PREFIX, SPLITS, Store, as_store
from .summarize import (
    COST_KPIS,
    FTE_HOURS_PER_WEEK,
    HIGHER_IS_BETTER,
    SensitivityUnavailable,
    fte,
    group_table,
    is_share,
    kpi_label,
    kpi_table,
    kpi_unit,
    morris_indices,
    pareto_efficient,
    sobol_indices,
    timeseries_bands,
)

RATE_KPIS: tuple[str, ...] = ("response_rate", "resolution_rate", "satisfaction_rate")
TIMESERIES_METRICS: tuple[str, ...] = ("backlog", "response_rate", "resolution_rate", "true_resolution_rate",
                                       "mean_trust")
METRIC_UNITS: dict[str, str] = {
    "backlog": "open cases", "response_rate": "share of cases (%)", "resolution_rate": "share of cases (%)",
    "true_resolution_rate": "share of cases (%)", "cost_hours": "staff-hours per day",
    "work_hours": "staff-hours per day",
    "satisfaction_rate": "share of judged cases (%)", "mean_trust": "trust (0–1)", "arrivals": "cases per day",
    "overdue": "open overdue cases", "participation": "share of problems reported (%)",
}
#: Shortest time drawn on the log-scale distributions (hours): one minute; quicker times are drawn there.
MIN_LOG_HOURS = 1.0 / 60.0
#: At most this many cases per scenario are drawn in the distributions (a fixed-seed random subset).
MAX_CASES_PER_SCENARIO = 200_000

HATCHES: tuple[str, ...] = ("", "///", "\\\\\\", "xxx", "...", "+++", "ooo", "---", "|||", "***")
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<")
LINESTYLES: tuple = ("-", "--", ":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 1)),
                     (0, (5, 3, 1, 3)), (0, (8, 2)), (0, (2, 2, 6, 2)))
_HATCHCOLOR = tuple(int(v) for v in mpl.__version__.split(".")[:2]) >= (3, 10)


class FigureSkipped(Exception):  # noqa: N818 — reads as "the figure was skipped: <reason>"
    """The store lacks what this figure needs; the message says what (shown in the report)."""


@dataclass(frozen=True)
class SeriesStyle:
    """How one scenario is drawn, the same in every figure."""

    color: tuple[float, float, float, float]
    marker: str
    linestyle: object
    hatch: str

    @property
    def hatch_color(self) -> str:
        r, g, b, _ = self.color
        return "white" if 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.45 else "0.1"

    def bar_kwargs(self) -> dict:
        kw = {"facecolor": self.color, "hatch": self.hatch, "edgecolor": "0.15", "linewidth": 0.6}
        if _HATCHCOLOR and self.hatch:
            kw["hatchcolor"] = self.hatch_color
        return kw

    def patch(self, label: str) -> Patch:
        return Patch(label=label, **self.bar_kwargs())

    def line(self, label: str) -> Line2D:
        return Line2D([], [], color=self.color, marker=self.marker, linestyle=self.linestyle, label=label,
                      markeredgecolor="0.1", markeredgewidth=0.5)


def scenario_styles(names: Sequence[str]) -> dict[str, SeriesStyle]:
    """A colour (viridis, dark to light), marker, line style and hatch for each scenario, in order."""
    cmap = mpl.colormaps["viridis"]
    n = len(names)
    positions = np.linspace(0.05, 0.82, n) if n > 1 else [0.3]
    return {name: SeriesStyle(tuple(cmap(p)), MARKERS[i % len(MARKERS)], LINESTYLES[i % len(LINESTYLES)],
                              HATCHES[i % len(HATCHES)])
            for i, (name, p) in enumerate(zip(names, positions, strict=True))}


def style_rc() -> dict:
    """The matplotlib settings every figure is drawn with."""
    rc = {**sns.axes_style("whitegrid"), **sns.plotting_context("notebook", font_scale=0.85)}
    rc.update({"axes.titlesize": 11, "axes.titleweight": "bold", "axes.labelsize": 9.5, "legend.fontsize": 8.5,
               "legend.frameon": False, "axes.spines.top": False, "axes.spines.right": False,
               "hatch.linewidth": 0.8, "figure.dpi": 100, "savefig.dpi": 110, "savefig.bbox": "tight",
               "grid.color": "0.88", "axes.edgecolor": "0.3"})
    return rc


@contextmanager
def styled() -> Iterator[None]:
    with mpl.rc_context(style_rc()):
        yield


def to_png(fig: Figure, dpi: int = 110) -> bytes:
    """Render a figure to PNG bytes (no pyplot involved)."""
    buf = io.BytesIO()
    with styled():
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    return buf.getvalue()


def _new_figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained", facecolor="white")


def _scenarios_in(store: Store, present: Sequence[str]) -> list[str]:
    seen = set(present)
    return [s for s in store.scenarios if s in seen]


def _pooled_intervals(store: Store, kpis: Sequence[str]) -> pd.DataFrame:
    """Mean and t interval per scenario and KPI over all finished runs (all design points pooled)."""
    data = store.overall[store.overall["kpi"].isin(kpis)]
    rows = []
    for (scenario, kpi), grp in data.groupby(["scenario", "kpi"], sort=False):
        iv = t_interval(grp["value"])
        rows.append({"scenario": scenario, "kpi": kpi, "n": iv.n, "mean": iv.mean, "low": iv.low, "high": iv.high})
    return pd.DataFrame(rows, columns=["scenario", "kpi", "n", "mean", "low", "high"])


def _percent() -> mpl.ticker.Formatter:
    """Shares (0–1) shown as percentages with as few decimals as the ticks need."""
    return mpl.ticker.FuncFormatter(lambda v, _p: f"{100 * v:.4g}%")


def bounds(name: str) -> tuple[float, float]:
    """The range a KPI or daily metric can take: shares and 0–1 indices [0, 1], the digital gap [−1, 1],
    everything else (hours, cases, staff-hours) [0, ∞); differences of shares (the digital and gaming gaps,
    unit "share points") [−1, 1]. Drawn intervals are clipped to it: with few replications a t interval can
    reach past what is possible."""
    if name in ("digital_gap", "gaming_gap") or kpi_unit(name).startswith("share points"):
        return (-1.0, 1.0)
    unit = kpi_unit(name) or METRIC_UNITS.get(name, "")
    if unit.startswith("share") or "0–1" in unit or "(%)" in unit:
        return (0.0, 1.0)
    return (0.0, np.inf)


def _pooled_note(store: Store) -> str:
    n = store.runs["point"].nunique()
    return f"\nall {n} design points pooled" if n > 1 else ""


def _err(mean, low, high, name: str | None = None) -> np.ndarray:
    """Error-bar lengths below and above ``mean`` (NaN → 0), the interval clipped to ``bounds(name)``."""
    mean, low, high = (np.asarray(v, dtype="float64") for v in (mean, low, high))
    if name is not None:
        lo_b, hi_b = bounds(name)
        low, high = np.clip(low, lo_b, hi_b), np.clip(high, lo_b, hi_b)
    lo = np.nan_to_num(mean - low, nan=0.0)
    hi = np.nan_to_num(high - mean, nan=0.0)
    return np.vstack([np.maximum(lo, 0.0), np.maximum(hi, 0.0)])


def _legend_below(fig: Figure, handles: list, ncol: int | None = None) -> None:
    fig.legend(handles=handles, loc="outside lower center", ncol=ncol or min(len(handles), 4), title=None,
               handlelength=2.6, handleheight=1.4)


# ---------------------------------------------------------------------------------------------- figures
def rates_figure(store: Store | str | Path, kpis: Sequence[str] = RATE_KPIS) -> Figure:
    """The three rates (response, resolution, satisfaction) per scenario: mean and 95% interval over
    replications, one panel per rate, the baseline's mean as a dashed line."""
    store = as_store(store)
    iv = _pooled_intervals(store, kpis)
    if iv.empty:
        raise FigureSkipped("no finished run reports the response, resolution or satisfaction rate")
    kpis = [k for k in kpis if k in set(iv["kpi"])]
    scenarios = _scenarios_in(store, iv["scenario"])
    styles = scenario_styles(store.scenarios)
    with styled():
        fig = _new_figure(3.2 * len(kpis) + 1.2, 0.9 + 0.42 * len(scenarios) + 1.0)
        axes = fig.subplots(1, len(kpis), sharey=True, squeeze=False)[0]
        for ax, kpi in zip(axes, kpis, strict=True):
            sub = iv[iv["kpi"] == kpi].set_index("scenario")
            for y, sc in enumerate(scenarios):
                if sc not in sub.index:
                    continue
                r = sub.loc[sc]
                st = styles[sc]
                ax.errorbar([r["mean"]], [y], xerr=_err([r["mean"]], [r["low"]], [r["high"]], kpi), fmt=st.marker,
                            color=st.color, ecolor="0.15", elinewidth=1.2, capsize=4, markersize=8,
                            markeredgecolor="0.1", markeredgewidth=0.6)
            if store.baseline in sub.index:
                ax.axvline(sub.loc[store.baseline, "mean"], color="0.35", linestyle="--", linewidth=0.9)
            ax.set_title(kpi_label(kpi).capitalize())
            ax.set_xlabel(f"{kpi_unit(kpi)} (%)")
            ax.set_yticks(range(len(scenarios)), scenarios)
            ax.set_ylim(len(scenarios) - 0.5, -0.5)
            ax.xaxis.set_major_formatter(_percent())
        axes[0].set_ylabel("scenario")
        fig.suptitle("Service rates by scenario (mean, 95% CI over replications; dashed: baseline)"
                     + _pooled_note(store), fontsize=10.5)
    return fig


#: Daily metrics counted over the cases *created* that day (right-censored near the end of a run).
BY_CREATION_DAY: tuple[str, ...] = ("response_rate",)


def censored_days(store: Store, q: float = 0.9) -> float | None:
    """Days at the end of a run whose cases had less time than a share ``q`` of first responses take: the
    ``q``-quantile of the time to first response (the upper edge of the stored histogram bin where the
    responded cases' cumulative share reaches it), largest over the scenarios; None without histograms."""
    curves = _histogram_curves(store)
    hours = [x[min(int(np.searchsorted(y / y[-1], q)), len(x) - 1)]
             for c in (curves or {}).values() if "response_h" in c
             for x, y in [c["response_h"]] if y[-1] > 0]
    return max(hours) / 24.0 if hours else None


def timeseries_figure(store: Store | str | Path, metrics: Sequence[str] = TIMESERIES_METRICS) -> Figure:
    """Daily backlog, response and resolution rates and trust after the warm-up: each scenario's mean over
    replications (line) with its 95% interval (band). A rate counted over the cases created each day (the
    response rate) is shaded over the last days, whose cases had less time than 90% of first responses take
    (:func:`censored_days`): its drop there is the cut of the run, not a change in service."""
    store = as_store(store)
    cut = censored_days(store)
    bands = timeseries_bands(store, metrics)
    if bands.empty:
        raise FigureSkipped("the store holds no daily time series (timeseries/part-*.parquet)")
    metrics = [m for m in metrics if m in set(bands["metric"])]
    scenarios = _scenarios_in(store, bands["scenario"])
    styles = scenario_styles(store.scenarios)
    ncols = 2 if len(metrics) > 1 else 1
    nrows = int(np.ceil(len(metrics) / ncols))
    alpha = max(0.08, 0.3 / np.sqrt(len(scenarios)))
    with styled():
        fig = _new_figure(5.2 * ncols, 3.0 * nrows + 0.6)
        axes = fig.subplots(nrows, ncols, sharex=True, squeeze=False).ravel()
        for ax, metric in zip(axes, metrics, strict=False):
            sub = bands[bands["metric"] == metric]
            for sc in scenarios:
                d = sub[sub["scenario"] == sc].sort_values("day")
                if d.empty:
                    continue
                st = styles[sc]
                lo_b, hi_b = bounds(metric)
                ax.fill_between(d["day"], d["ci_low"].clip(lo_b, hi_b), d["ci_high"].clip(lo_b, hi_b),
                                color=st.color, alpha=alpha, linewidth=0)
                ax.plot(d["day"], d["mean"], color=st.color, linestyle=st.linestyle, marker=st.marker,
                        markevery=max(1, len(d) // 8), markersize=5, markeredgecolor="0.1",
                        markeredgewidth=0.4, linewidth=1.4)
            ax.set_title(metric.replace("_", " ").capitalize())
            ax.set_ylabel(METRIC_UNITS.get(metric, metric))
            if cut is not None and metric in BY_CREATION_DAY and len(sub):
                last = float(sub["day"].max())
                ax.axvspan(max(float(sub["day"].min()), last - cut), last, color="0.88", zorder=0, linewidth=0,
                           label="right-censored")
            ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
            if "(%)" in METRIC_UNITS.get(metric, ""):
                ax.yaxis.set_major_formatter(_percent())
        for ax in axes[len(metrics):]:
            ax.set_visible(False)
        for ax in axes[max(0, len(metrics) - ncols):len(metrics)]:
            ax.set_xlabel("day after the warm-up")
            ax.tick_params(labelbottom=True)
        _legend_below(fig, [styles[s].line(s) for s in scenarios])
        note = (f"; grey: the last {cut:.1f} days, whose cases had less time than 90% of first responses take"
                if cut is not None and any(m in BY_CREATION_DAY for m in metrics) else "")
        fig.suptitle("Daily indicators (mean over replications, band: 95% CI" + note + ")" + _pooled_note(store),
                     fontsize=10.5)
    return fig


def _case_times(store: Store) -> pd.DataFrame:
    """Hours from report to first response and to closure, per case, for each scenario's finished runs
    (cases reported during the warm-up are left out). NaN where it did not happen."""
    warm_h = float(store.manifest.get("warmup_days") or 0) * 24.0
    frames = []
    rng = np.random.default_rng(0)
    for sc in store.scenarios:
        ids = store.ok_runs.loc[store.ok_runs["scenario"] == sc, "run_id"]
        parts = []
        for run_id in ids:
            df = store.cases(run_id, ["created_h", "first_response_h", "closed_h"])
            if df is None or df.empty:
                continue
            df = df[df["created_h"] >= warm_h]
            parts.append(pd.DataFrame({"response_h": df["first_response_h"] - df["created_h"],
                                       "close_h": df["closed_h"] - df["created_h"]}))
        if not parts:
            continue
        times = pd.concat(parts, ignore_index=True)
        if len(times) > MAX_CASES_PER_SCENARIO:
            times = times.iloc[rng.choice(len(times), MAX_CASES_PER_SCENARIO, replace=False)]
        frames.append(times.assign(scenario=sc))
    if not frames:
        return pd.DataFrame(columns=["response_h", "close_h", "scenario"])
    return pd.concat(frames, ignore_index=True)


def _histogram_curves(store: Store) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] | None:
    """From the stored histograms (all replications pooled): scenario -> measure -> (upper bin edges in
    hours, cumulative share of all measured cases). None when the store has none."""
    d = store.distributions()
    if d.empty:
        return None
    out: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for (sc, measure), g in d.groupby(["scenario", "measure"], sort=False):
        pooled = g.groupby("bin", sort=True).agg(count=("count", "sum"), hi=("hi_h", "first"))
        total = float(pooled["count"].sum())
        reached = pooled[pooled.index >= 0]
        hi = reached["hi"].to_numpy(dtype="float64").copy()
        if total <= 0 or len(hi) < 2:
            continue
        hi[-1] = hi[-2] * 10 ** 0.1 if not np.isfinite(hi[-1]) else hi[-1]  # the open top bin: one step more
        out.setdefault(str(sc), {})[str(measure)] = (hi, np.cumsum(reached["count"].to_numpy(dtype="float64")) / total)
    return out


def time_distributions_figure(store: Store | str | Path) -> Figure:
    """Distributions of the time to first response and to closure per scenario (log-scale hours), drawn as
    cumulative shares of all cases: each curve ends at the share of cases that ever got there. From the
    per-case tables when the store keeps them, else from the histograms every run stores (fixed log bins,
    10 a decade: the curve is exact at the bin edges)."""
    store = as_store(store)
    curves = None
    if not store.has_cases:
        curves = _histogram_curves(store)
        if curves is None:
            raise FigureSkipped("the store keeps neither per-case tables nor time histograms (written by "
                                "versions before distributions.parquet); rerun the experiment to see them")
        return _time_distribution_panels(store, curves)
    times = _case_times(store)
    if times.empty:
        raise FigureSkipped("no finished run has stored cases")
    curves = {}
    for sc in times["scenario"].unique():
        t_sc = times[times["scenario"] == sc]
        for col in ("response_h", "close_h"):
            t = t_sc[col]
            x = np.sort(np.clip(t.dropna().to_numpy(dtype="float64"), MIN_LOG_HOURS, None))
            if len(t) and x.size:
                curves.setdefault(str(sc), {})[col] = (x, np.arange(1, x.size + 1) / len(t))
    return _time_distribution_panels(store, curves)


def _time_distribution_panels(store: Store, curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]
                              ) -> Figure:
    """The two panels of :func:`time_distributions_figure` from cumulative curves (hours, share)."""
    scenarios = _scenarios_in(store, pd.Series(list(curves)))
    styles = scenario_styles(store.scenarios)
    panels = [("response_h", "Time to first response", "hours from report to first response (log scale)"),
              ("close_h", "Time to close", "hours from report to closure (log scale)")]
    with styled():
        fig = _new_figure(10.4, 4.2)
        axes = fig.subplots(1, 2, sharey=True, sharex=True)
        for ax, (col, title, xlabel) in zip(axes, panels, strict=True):
            for sc in scenarios:
                if col not in curves.get(sc, {}):
                    continue
                x, y = curves[sc][col]
                x = np.clip(x, MIN_LOG_HOURS, None)
                st = styles[sc]
                ax.step(np.r_[MIN_LOG_HOURS, x], np.r_[0.0, y], where="post", color=st.color,
                        linestyle=st.linestyle, linewidth=1.6)
                idx = np.linspace(0, x.size - 1, 6).astype(int)
                ax.plot(x[idx], y[idx], linestyle="none", marker=st.marker, color=st.color, markersize=5,
                        markeredgecolor="0.1", markeredgewidth=0.4)
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _p: f"{v:g}"))
            for h, lab in ((1, "1 h"), (24, "1 day"), (168, "1 week")):
                ax.axvline(h, color="0.6", linewidth=0.7, linestyle=":")
                ax.text(h, 1.0, lab, transform=ax.get_xaxis_transform(), fontsize=7, color="0.35",
                        ha="left", va="bottom")
            ax.set_title(title, pad=14)
            ax.set_xlabel(xlabel)
            ax.set_ylim(0, 1.02)
            ax.yaxis.set_major_formatter(_percent())
        axes[0].set_ylabel("cumulative share of reported cases")
        _legend_below(fig, [styles[s].line(s) for s in scenarios])
        fig.suptitle("How long cases wait (all replications pooled; times under a minute drawn at 1 min)",
                     fontsize=10.5)
    return fig


def sweep_heatmap_figure(store: Store | str | Path, kpis: Sequence[str] | None = None) -> Figure:
    """For a grid design over two parameters: each KPI's mean over replications at every grid point
    (more than two parameters: averaged over the others)."""
    store = as_store(store)
    if store.design_type != "grid":
        raise FigureSkipped(f"the design is '{store.design_type}', not a grid sweep")
    pcols = store.param_columns()
    if len(pcols) < 2:
        raise FigureSkipped("the grid sweeps fewer than two parameters (a heatmap needs two)")
    px, py = pcols[0], pcols[1]
    kpis = [k for k in (kpis or store.headline_kpis()) if k in set(store.overall["kpi"])][:4]
    if not kpis:
        raise FigureSkipped("no finished run reports the KPIs to map")
    table = kpi_table(store, kpis).merge(store.points(), on="point")
    for col in (px, py):
        table[col] = _ordered_labels(table[col])
    ncols = min(2, len(kpis))
    nrows = int(np.ceil(len(kpis) / ncols))
    with styled():
        fig = _new_figure(5.6 * ncols, 4.3 * nrows + 0.4)
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for ax, kpi in zip(axes, kpis, strict=False):
            sub = table[table["kpi"] == kpi]
            grid = sub.pivot_table(index=py, columns=px, values="mean", aggfunc="mean", observed=True)
            grid = grid.sort_index(ascending=False)
            unit = kpi_unit(kpi)
            if is_share(kpi):
                grid, fmt, unit = grid * 100.0, ".1f", f"{unit}, %"
            else:
                fmt = ".3f" if unit == "0–1" else ".1f" if unit == "hours" else ".3g"
            sns.heatmap(grid, ax=ax, cmap="cividis", annot=grid.size <= 64, fmt=fmt, annot_kws={"fontsize": 7.5},
                        linewidths=0.5, linecolor="white", cbar_kws={"label": f"{kpi_label(kpi)} ({unit})"})
            ax.set_xlabel(px.removeprefix(PARAM_PREFIX))
            ax.set_ylabel(py.removeprefix(PARAM_PREFIX))
            ax.tick_params(axis="x", labelrotation=0)
            ax.tick_params(axis="y", labelrotation=0)
            ax.set_title(kpi_label(kpi).capitalize())
        for ax in axes[len(kpis):]:
            ax.set_visible(False)
        extra = f"; averaged over {', '.join(c.removeprefix(PARAM_PREFIX) for c in pcols[2:])}" if len(pcols) > 2 else ""
        fig.suptitle(f"Parameter sweep (mean over replications{extra})", fontsize=10.5)
    return fig


def _ordered_labels(values: pd.Series) -> pd.Categorical:
    """Parameter values as ordered labels: "none" (a NaN setting, e.g. no mandate) first, then ascending."""
    nums = pd.to_numeric(values, errors="coerce")
    labels = [("none" if np.isnan(v) else f"{v:g}") for v in nums]
    order = (["none"] if nums.isna().any() else []) + [f"{v:g}" for v in sorted(set(nums.dropna()))]
    return pd.Categorical(labels, categories=order, ordered=True)


def _sensitivity_panels(
    store: Store, table: pd.DataFrame, first: str, second: str, first_label: str, second_label: str,
    xlabel: Callable[[str], str], title: str, conf: tuple[str | None, str | None],
) -> Figure:
    kpis = list(pd.unique(table["kpi"]))[:4]
    ncols = min(2, len(kpis))
    nrows = int(np.ceil(len(kpis) / ncols))
    dark, light = scenario_styles(["a", "b"]).values()
    light = SeriesStyle(light.color, light.marker, light.linestyle, "///")
    n_params = table["parameter"].nunique()
    with styled():
        fig = _new_figure(5.4 * ncols, (0.55 * n_params + 1.4) * nrows + 0.5)
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for ax, kpi in zip(axes, kpis, strict=False):
            sub = table[table["kpi"] == kpi].set_index("parameter").sort_values(first, ascending=False)
            params = list(sub.index)
            y = np.arange(len(params))
            h = 0.38
            for off, col, st, cf in ((-h / 2, first, dark, conf[0]), (h / 2, second, light, conf[1])):
                err = np.nan_to_num(sub[cf].to_numpy(dtype="float64")) if cf else None
                ax.barh(y + off, sub[col], height=h, xerr=err, capsize=2.5 if cf else 0,
                        error_kw={"elinewidth": 0.9, "ecolor": "0.2"}, **st.bar_kwargs())
            ax.set_yticks(y, params)
            ax.set_ylim(len(params) - 0.5, -0.5)
            ax.set_xlabel(xlabel(kpi))
            ax.set_title(kpi_label(kpi).capitalize())
            ax.axvline(0, color="0.3", linewidth=0.8)
        for ax in axes[len(kpis):]:
            ax.set_visible(False)
        _legend_below(fig, [dark.patch(first_label), light.patch(second_label)])
        fig.suptitle(title, fontsize=10.5)
    return fig


def morris_figure(store: Store | str | Path, kpis: Sequence[str] | None = None) -> Figure:
    """Morris screening per KPI: μ* (mean absolute elementary effect, with its bootstrap 95% interval) and σ
    (spread of the effects: interactions or non-linearity), per parameter in the KPI's unit, largest μ* on
    top."""
    store = as_store(store)
    try:
        table = morris_indices(store, kpis or store.headline_kpis())
    except SensitivityUnavailable as exc:
        raise FigureSkipped(f"Morris screening unavailable: {exc}") from exc
    if table.empty:
        raise FigureSkipped("no KPI to screen")
    return _sensitivity_panels(
        store, table, "mu_star", "sigma", "μ* (mean |elementary effect|, 95% CI)", "σ (spread of effects)",
        lambda k: f"effect over the parameter's range ({kpi_unit(k)})",
        "Morris screening: which parameters move each KPI", ("mu_star_conf", None))


def sobol_figure(store: Store | str | Path, kpis: Sequence[str] | None = None) -> Figure:
    """Sobol indices per KPI: first-order S1 (the parameter alone) and total ST (with its interactions),
    with bootstrap 95% intervals, as shares of the KPI's variance over the design, largest S1 on top."""
    store = as_store(store)
    try:
        table = sobol_indices(store, kpis or store.headline_kpis())
    except SensitivityUnavailable as exc:
        raise FigureSkipped(f"Sobol analysis unavailable: {exc}") from exc
    if table.empty:
        raise FigureSkipped("no KPI to analyse")
    return _sensitivity_panels(
        store, table, "S1", "ST", "S1 (first order, 95% CI)", "ST (total, 95% CI)",
        lambda k: "share of the KPI's variance (0–1)", "Sobol indices: what drives the variance of each KPI",
        ("S1_conf", "ST_conf"))


def cost_tradeoff_figure(
    store: Store | str | Path,
    outcomes: Sequence[str] = ("true_resolution_rate", "satisfaction_rate"),
    cost: str = "cost_hours",
) -> Figure:
    """True service outcomes (the problem solved, not what the platform records) against cost (paid
    staff-hours of departments, operators and supervisors) per scenario, with 95% intervals on both axes.
    Filled markers joined by a line: the scenarios no other scenario beats on both (cheaper or equal and at
    least as good, better on one); hollow: beaten. The top axis gives the cost in full-time equivalents (paid
    staff-hours over the measured days at 40 hours a week)."""
    store = as_store(store)
    present = set(store.overall["kpi"])
    if cost not in present:
        raise FigureSkipped(f"the store has no '{cost}' KPI to weigh outcomes against")
    outcomes = [o for o in outcomes if o in present]
    if not outcomes:
        raise FigureSkipped("the store has none of the outcome KPIs " + ", ".join(outcomes))
    table = kpi_table(store, [cost, *outcomes])
    # unstack, not pivot_table: with one replication the intervals are all NaN and must stay as columns
    wide = table.set_index(["scenario", "point", "kpi"])[["mean", "ci_low", "ci_high"]].unstack("kpi")
    wide = wide.dropna(subset=[("mean", cost)]).reset_index()
    scenarios = _scenarios_in(store, wide["scenario"])
    styles = scenario_styles(store.scenarios)
    multi = wide.groupby("scenario")["point"].nunique().max() > 1
    days = float(store.manifest.get("days") or 0) if cost in COST_KPIS else 0.0
    to_label: list = []
    with styled():
        fig = _new_figure(5.3 * len(outcomes), 4.4)
        axes = fig.subplots(1, len(outcomes), squeeze=False)[0]
        for ax, out in zip(axes, outcomes, strict=True):
            labels = _tradeoff_panel(ax, wide, cost, out, styles, multi)
            if days > 0:
                _fte_axis(ax, days)
            if labels is not None:
                to_label.append(labels)
        handles = [styles[s].line(s) for s in scenarios]
        for h in handles:
            h.set_linestyle("none")
        handles += [Line2D([], [], marker="o", color="0.3", markerfacecolor="0.3", linestyle="--",
                           label="not beaten on both (Pareto-efficient)"),
                    Line2D([], [], marker="o", color="0.3", markerfacecolor="white", linestyle="none",
                           label="beaten: another is cheaper and better")]
        _legend_below(fig, handles, ncol=min(len(handles), 4))
        fig.suptitle("Service against cost (mean, 95% CI over replications)", fontsize=10.5)
        fig.draw_without_rendering()  # settle the layout so that label positions can be computed
        for args in to_label:
            _place_labels(*args)
    return fig


def _tradeoff_panel(ax, wide: pd.DataFrame, cost: str, out: str, styles: dict[str, SeriesStyle],
                    multi: bool) -> tuple | None:
    """One panel of :func:`cost_tradeoff_figure`: outcome ``out`` against ``cost`` per scenario (and point),
    the Pareto front dashed. Returns what :func:`_place_labels` needs, or None when there are too many
    points to name."""
    x = wide[("mean", cost)].to_numpy(dtype="float64")
    y = wide[("mean", out)].to_numpy(dtype="float64")
    eff = np.array(pareto_efficient(x, y, higher_is_better=out in HIGHER_IS_BETTER))
    order = np.argsort(x[eff])
    ax.plot(x[eff][order], y[eff][order], color="0.25", linewidth=1.0, linestyle="--", zorder=1)
    for i, row in wide.iterrows():
        sc = row[("scenario", "")]
        st = styles[sc]
        ax.errorbar([x[i]], [y[i]],
                    xerr=_err([x[i]], [row[("ci_low", cost)]], [row[("ci_high", cost)]], cost),
                    yerr=_err([y[i]], [row[("ci_low", out)]], [row[("ci_high", out)]], out),
                    fmt=st.marker, markersize=9, color=st.color if eff[i] else "white",
                    markeredgecolor=st.color if not eff[i] else "0.1", markeredgewidth=1.6,
                    ecolor="0.45", elinewidth=0.8, capsize=2, zorder=3)
    label = kpi_label(cost)
    ax.set_xlabel(f"{label} ({kpi_unit(cost)})" + ("" if "cost" in label else ", cost"))
    ax.set_ylabel(f"{kpi_label(out)} ({kpi_unit(out)})")
    if is_share(out):
        ax.yaxis.set_major_formatter(_percent())
    ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _p: f"{v:,.0f}"))
    ax.set_title(f"{kpi_label(out).capitalize()} vs cost")
    ax.margins(x=0.15, y=0.15)
    if len(wide) > 12:
        return None
    labels = [f"{sc} · p{p}" if multi else sc
              for sc, p in zip(wide[("scenario", "")], wide[("point", "")], strict=True)]
    return ax, x, y, labels


def _fte_axis(ax, days: float) -> None:
    """A top axis giving the bottom axis's paid staff-hours in full-time equivalents over ``days`` days."""
    per_fte = 1.0 / fte(1.0, days)  # staff-hours of one full-time equivalent over the days
    top = ax.secondary_xaxis("top", functions=(lambda h: h / per_fte, lambda f: f * per_fte))
    top.set_xlabel(f"full-time equivalents ({FTE_HOURS_PER_WEEK:g} h a week over {days:g} days)")
    top.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _p: f"{v:,.4g}"))


def _place_labels(ax, x: np.ndarray, y: np.ndarray, labels: Sequence[str]) -> None:
    """Name each point next to it, trying eight positions around it so that names do not overlap each other:
    each candidate is drawn and its extent measured by matplotlib's renderer (the text as it will be drawn,
    not an estimate); a name that fits nowhere is left out (the legend still identifies the marker)."""
    placed = []  # extents of the names kept, in display units
    offsets = [(7, 4), (7, -13), (-7, 4), (-7, -13), (7, 15), (7, -24), (-7, 15), (-7, -24)]
    for xi, yi, text in sorted(zip(x, y, labels, strict=True), key=lambda t: -t[1]):
        if not (np.isfinite(xi) and np.isfinite(yi)):
            continue
        for dx, dy in offsets:
            ann = ax.annotate(text, (xi, yi), xytext=(dx, dy), textcoords="offset points", fontsize=8,
                              ha="left" if dx > 0 else "right", va="bottom")
            box = ann.get_window_extent()  # measured by the figure's renderer
            if not any(box.overlaps(b) for b in placed):
                placed.append(box)
                break
            ann.remove()


def label_overlaps(fig: Figure) -> list[tuple[str, str]]:
    """Pairs of text labels (annotations) in the same axes of ``fig`` whose drawn extents overlap."""
    out = []
    for ax in fig.axes:
        texts = [t for t in ax.texts if t.get_visible() and t.get_text()]
        boxes = [t.get_window_extent() for t in texts]
        for i in range(len(texts)):
            for j in range(i + 1, len(texts)):
                if boxes[i].overlaps(boxes[j]):
                    out.append((texts[i].get_text(), texts[j].get_text()))
    return out


EQUITY_KPIS: tuple[str, ...] = ("true_resolution_rate", "gaming_gap", "resolution_rate", "satisfaction_rate",
                                "response_rate", "median_response_h")


def equity_figure(store: Store | str | Path, kpis: Sequence[str] | None = None) -> Figure:
    """Equity: KPIs split by requester kind, channel and urban/rural area (bars per scenario, 95%
    intervals), and the digital gap (urban − rural online share) per scenario."""
    store = as_store(store)
    groups = group_table(store)
    groups = groups[groups["group_by"].isin(list(SPLITS))] if len(groups) else groups
    if groups.empty:
        raise FigureSkipped("the summary has no splits by requester kind, channel or area")
    present = set(groups["kpi"])
    kpis = [k for k in (kpis or EQUITY_KPIS) if k in present][:2] or sorted(present)[:2]
    splits = [s for s in SPLITS if s in set(groups["group_by"])]
    gap = _pooled_intervals(store, ["digital_gap"])
    scenarios = _scenarios_in(store, groups["scenario"])
    styles = scenario_styles(store.scenarios)
    ncols = len(splits) + (1 if not gap.empty else 0)
    widths = [len(SPLITS[s]) + 0.6 for s in splits] + ([1.6] if not gap.empty else [])
    with styled():
        fig = _new_figure(max(8.0, 1.3 * sum(widths) + 0.4 * len(scenarios)), 3.2 * len(kpis) + 0.8)
        gs = fig.add_gridspec(len(kpis), ncols, width_ratios=widths)
        width = 0.8 / max(1, len(scenarios))
        for r, kpi in enumerate(kpis):
            first_ax = None
            for c, split in enumerate(splits):
                ax = fig.add_subplot(gs[r, c], sharey=first_ax)
                first_ax = first_ax or ax
                names = [g for g in SPLITS[split] if g in set(groups.loc[groups["group_by"] == split, "group"])]
                sub = groups[(groups["group_by"] == split) & (groups["kpi"] == kpi)]
                for j, sc in enumerate(scenarios):
                    d = sub[sub["scenario"] == sc]
                    d = d.groupby("group").agg(mean=("mean", "mean"), lo=("ci_low", "mean"), hi=("ci_high", "mean"))
                    d = d.reindex(names)
                    xpos = np.arange(len(names)) - 0.4 + width * (j + 0.5)
                    ax.bar(xpos, d["mean"], width=width * 0.95, yerr=_err(d["mean"], d["lo"], d["hi"], kpi),
                           capsize=2, error_kw={"elinewidth": 0.8, "ecolor": "0.2"}, **styles[sc].bar_kwargs())
                ax.set_xticks(range(len(names)), names)
                ax.set_xlabel(split.replace("_", " "))
                if c == 0:
                    ax.set_ylabel(f"{kpi_label(kpi)}\n({kpi_unit(kpi)})")
                else:
                    ax.tick_params(labelleft=False)
                if is_share(kpi):
                    ax.yaxis.set_major_formatter(_percent())
                if r == 0:
                    ax.set_title(f"By {split.replace('_', ' ')}")
            if not gap.empty:
                ax = fig.add_subplot(gs[r, ncols - 1])
                if r == 0:
                    g = gap.set_index("scenario").reindex(scenarios)[["mean", "low", "high"]] * 100.0
                    for j, sc in enumerate(scenarios):
                        ax.bar([j], [g.loc[sc, "mean"]], width=0.75,
                               yerr=_err([g.loc[sc, "mean"]], [g.loc[sc, "low"]], [g.loc[sc, "high"]]), capsize=2,
                               error_kw={"elinewidth": 0.8, "ecolor": "0.2"}, **styles[sc].bar_kwargs())
                    ax.set_xticks(range(len(scenarios)), [""] * len(scenarios))
                    ax.set_xlabel("scenario (legend)")
                    ax.set_ylabel("urban − rural online share\n(percentage points)")
                    ax.set_title("Digital gap")
                    ax.axhline(0, color="0.3", linewidth=0.8)
                else:
                    ax.set_visible(False)
        _legend_below(fig, [styles[s].patch(s) for s in scenarios], ncol=min(len(scenarios), 6))
        fig.suptitle("Equity: outcomes by requester kind, channel and area (mean, 95% CI)", fontsize=10.5)
    return fig


@dataclass
class FigureOutput:
    """One figure of the report: its file stem, title, caption, and the figure or the reason it is absent."""

    name: str
    title: str
    caption: str
    figure: Figure | None = None
    skipped: str | None = None


#: The report's figures in order: (file stem, title, function). Captions come from the docstrings.
FIGURES: tuple[tuple[str, str, Callable[[Store], Figure]], ...] = (
    ("rates", "Service rates by scenario", rates_figure),
    ("timeseries", "Daily indicators", timeseries_figure),
    ("time_distributions", "Time to first response and to close", time_distributions_figure),
    ("tradeoff", "Service against cost", cost_tradeoff_figure),
    ("equity", "Equity and the digital gap", equity_figure),
    ("sweep_heatmap", "Parameter sweep", sweep_heatmap_figure),
    ("morris", "Morris screening", morris_figure),
    ("sobol", "Sobol indices", sobol_figure),
)


def _caption(func: Callable) -> str:
    doc = (func.__doc__ or "").strip()
    return " ".join(line.strip() for line in doc.splitlines() if line.strip())


def all_figures(store: Store | str | Path) -> list[FigureOutput]:
    """Every figure the store supports, with a skip reason for the others. Figures for sweep and
    sensitivity designs are only attempted for those designs."""
    store = as_store(store)
    design_figs = {"grid": "sweep_heatmap", "morris": "morris", "sobol": "sobol"}
    wanted_design = design_figs.get(store.design_type)
    out = []
    for name, title, func in FIGURES:
        if name in design_figs.values() and name != wanted_design:
            continue
        try:
            out.append(FigureOutput(name, title, _caption(func), figure=func(store)))
        except FigureSkipped as exc:
            out.append(FigureOutput(name, title, _caption(func), skipped=str(exc)))
    return out


__all__ = [
    "FIGURES", "FigureOutput", "FigureSkipped", "SeriesStyle", "all_figures", "cost_tradeoff_figure", "label_overlaps",
    "equity_figure", "morris_figure", "rates_figure", "scenario_styles", "sobol_figure", "style_rc",
    "sweep_heatmap_figure", "time_distributions_figure", "timeseries_figure", "to_png",
]
