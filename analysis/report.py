"""The experiment report: ``write_report(DIR)`` writes ``DIR/report.html`` (self-contained, figures embedded
as base64 PNG) and ``DIR/report.md`` with the figures beside it in ``DIR/figures/*.png``.

Sections, in order (their HTML ids in :data:`SECTIONS`): what was run (spec, seeds, versions, timings), a
plain-language reading generated from the numbers (only effects whose 95% interval excludes zero), the KPI
table, the paired differences against the baseline, equity splits, the outcomes by handling level with the
queue waits by bureau role and level, sensitivity (for sweep and sensitivity designs), the scenario discoveries
stored under ``discovery/`` (``python run.py discover``), the figures, and the failed runs. Both files are
built from one list of blocks, so they always say the same thing.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from common.dotted import flatten
from common.formatting import format_setting
from common.stats import t_interval
from sim.errors import WenzhengError

from .figures import FigureOutput, all_figures, to_png
from .store import HANDLING_LEVELS, PARAM_PREFIX, QUEUE_ROLES, SPLITS, Store, as_store
from .summarize import (
    COST_KPIS,
    FTE_HOURS_PER_WEEK,
    HIGHER_IS_BETTER,
    LOWER_IS_BETTER,
    SensitivityUnavailable,
    format_interval,
    format_signed,
    format_value,
    fte,
    group_gaps,
    group_table,
    kpi_label,
    kpi_matrix,
    kpi_table,
    kpi_unit,
    level_table,
    morris_indices,
    paired_differences,
    pareto_efficient,
    queue_table,
    sobol_indices,
)

#: (HTML id, heading) of every section, in the order they appear in both files.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("what-was-run", "What was run"),
    ("reading", "Reading"),
    ("kpi-table", "KPI table"),
    ("paired-differences", "Paired differences against the baseline"),
    ("equity", "Equity"),
    ("handling-level", "By handling level"),
    ("sensitivity", "Sensitivity"),
    ("discovery", "Scenario discovery"),
    ("figures", "Figures"),
    ("failed-runs", "Failed runs"),
)
#: At most this many significant effects per scenario are spelled out in the reading.
MAX_EFFECTS_PER_SCENARIO = 6
EQUITY_KPIS: tuple[str, ...] = ("response_rate", "resolution_rate", "true_resolution_rate", "gaming_gap",
                                "satisfaction_rate", "median_response_h", "online_share")
#: Columns of the table by handling level: (KPI of the split, or ``cases`` / ``case_share``, heading).
LEVEL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("response_rate", "response rate"), ("median_response_h", "median time to first response"),
    ("true_resolution_rate", "true resolution"), ("resolution_rate", "recorded resolution"),
    ("cases", "cases per run"), ("case_share", "share of the scenario's cases"),
)


class ReportError(WenzhengError):
    """The report cannot be written (e.g. the output directory is not writable)."""


# ---------------------------------------------------------------------------------------------- blocks
@dataclass
class Para:
    text: str  # plain text; **bold** allowed


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    caption: str = ""
    numeric_from: int = 1  # columns from here on are right-aligned
    strong: set[tuple[int, int]] = field(default_factory=set)  # (row, column) cells shown in bold


@dataclass
class Code:
    text: str
    summary: str = ""


@dataclass
class Picture:
    name: str
    title: str
    caption: str
    png: bytes


@dataclass
class Section:
    id: str
    title: str
    blocks: list[Any] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- words
def describe_value(value: float, kpi: str) -> str:
    """A KPI value in words: shares as %, share differences as percentage points, hours with "h"."""
    if value is None or not np.isfinite(value):
        return "undefined"
    unit = kpi_unit(kpi)
    if unit.startswith("share points"):
        return f"{100 * value:.1f} pp"
    if unit.startswith("share"):
        return f"{100 * value:.1f}%"
    if unit == "hours":
        return f"{value:.1f} h"
    if unit in ("staff-hours", "open cases", "cases"):
        return f"{value:,.0f} {unit}"
    return format_value(value, kpi)


def describe_change(diff: float, kpi: str) -> str:
    """A difference in words, in the KPI's unit: percentage points for shares."""
    unit = kpi_unit(kpi)
    sign = "+" if diff >= 0 else "−"
    mag = abs(diff)
    if unit.startswith("share"):
        return f"{sign}{100 * mag:.1f} pp"
    if unit == "hours":
        return f"{sign}{mag:.1f} h"
    if unit in ("staff-hours", "open cases", "cases"):
        return f"{sign}{mag:,.0f} {unit}"
    return f"{sign}{format_value(mag, kpi)}"


def verdict(kpi: str, diff: float) -> str:
    """Whether a change is better or worse for the people served (paid hours: costlier or cheaper)."""
    if kpi in COST_KPIS:
        return "costlier" if diff > 0 else "cheaper"
    if kpi in HIGHER_IS_BETTER:
        return "better" if diff > 0 else "worse"
    if kpi in LOWER_IS_BETTER:
        return "better" if diff < 0 else "worse"
    return ""


def effect_sentence(row: Any) -> str:
    """One significant paired difference as a clause: "raised the response rate from 80.7% to 89.0%
    (+8.3 pp; 95% CI +6.3 to +10.3; better)"."""
    kpi = row.kpi
    verb = "raised" if row.diff > 0 else "lowered"
    if kpi.endswith("_h") and row.diff < 0:
        verb = "shortened"
    elif kpi.endswith("_h"):
        verb = "lengthened"
    ci = f"95% CI {describe_change(row.ci_low, kpi).split(' ')[0]} to {describe_change(row.ci_high, kpi).split(' ')[0]}"
    rel = (f", {row.relative:+.0%}".replace("-", "−")
           if np.isfinite(row.relative) and not kpi_unit(kpi).startswith("share") else "")
    tag = verdict(kpi, row.diff)
    return (f"{verb} the {kpi_label(kpi)} from {describe_value(row.baseline_mean, kpi)} to "
            f"{describe_value(row.scenario_mean, kpi)} ({describe_change(row.diff, kpi)}{rel}; {ci}"
            f"{'; ' + tag if tag else ''})")


def reading(store: Store, diffs: pd.DataFrame) -> list[str]:
    """Plain-language findings generated from the numbers: per scenario, the KPIs whose paired difference
    against the baseline is significant (headline KPIs first, then the largest standardised effects); the
    cost trade-off; the digital gap; and, for sensitivity designs, the most influential parameters."""
    out: list[str] = []
    n_ok, n_failed = len(store.ok_runs), len(store.failed)
    if n_ok == 0:
        return [f"No run finished ({n_failed} failed), so there is nothing to read; see the failed runs below."]
    single_point = diffs.empty or diffs.groupby("scenario")["point"].nunique().max() == 1
    if store.design_type == "none" or single_point:
        for scenario in store.scenarios:
            if scenario == store.baseline:
                continue
            d = diffs[diffs["scenario"] == scenario]
            if d.empty:
                out.append(f"**{scenario}**: no replication could be paired with the baseline "
                           f"'{store.baseline}' (failed runs?), so no comparison is made.")
                continue
            sig = d[d["significant"]].copy()
            if sig.empty:
                out.append(f"**{scenario}** changed no KPI significantly against '{store.baseline}' "
                           f"({int(d['n'].max())} paired replications).")
                continue
            # the headline KPIs first (the three rates, time to close, trust, cost), then by standardised size
            rank = {k: i for i, k in enumerate(store.headline_kpis(6))}
            sig["_head"] = sig["kpi"].map(rank).fillna(len(rank))
            sig["_size"] = sig["effect_dz"].abs().fillna(np.inf)
            sig = sig.sort_values(["_head", "_size"], ascending=[True, False])
            clauses = [effect_sentence(r) for r in sig.head(MAX_EFFECTS_PER_SCENARIO).itertuples(index=False)]
            more = len(sig) - MAX_EFFECTS_PER_SCENARIO
            tail = f"; and {more} smaller significant change(s), in the table" if more > 0 else ""
            out.append(f"Against '{store.baseline}', **{scenario}** " + "; ".join(clauses) + tail + ".")
    out += _tradeoff_reading(store)
    out += _fte_reading(store)
    out += _gap_reading(store, diffs)
    out += _sensitivity_reading(store)
    if len(store.scenarios) > 1 and not diffs.empty:
        out.append("Only differences whose 95% interval excludes zero are named (pp: percentage points); with "
                   "many KPIs compared, about one in twenty such findings can arise by chance.")
    if n_failed:
        out.append(f"{n_failed} run(s) failed and are left out of every number here (see Failed runs).")
    return out


def _tradeoff_reading(store: Store, cost: str = "cost_hours", outcome: str = "true_resolution_rate") -> list[str]:
    if store.design_type != "none" or len(store.scenarios) < 2:
        return []
    t = kpi_table(store, [cost, outcome])
    wide = t.pivot_table(index="scenario", columns="kpi", values="mean")
    if cost not in wide or outcome not in wide:
        return []
    wide = wide.dropna()
    eff = pareto_efficient(wide[cost], wide[outcome])
    names = [s for s, e in zip(wide.index, eff, strict=True) if e]
    beaten = [s for s, e in zip(wide.index, eff, strict=True) if not e]
    text = (f"Weighing {kpi_label(outcome)} against {kpi_label(cost)} (means over replications), no other "
            f"scenario is both cheaper and better than {', '.join(f'**{n}**' for n in names)}")
    text += f"; {', '.join(beaten)} {'is' if len(beaten) == 1 else 'are'} beaten on both." if beaten else "."
    return [text]


def _fte_reading(store: Store) -> list[str]:
    """Each scenario's cost (``cost_hours`` over the measured days) in full-time equivalents."""
    days = float(store.manifest.get("days") or 0)
    if store.design_type != "none" or days <= 0:
        return []
    t = kpi_table(store, ["cost_hours"])
    t = t[t["kpi"] == "cost_hours"].set_index("scenario")
    parts = [f"{sc} {fte(float(t.loc[sc, 'mean']), days):,.1f}" for sc in store.scenarios if sc in t.index]
    if not parts:
        return []
    return [f"Cost in full-time equivalents (paid staff-hours over the {days:g} measured days, at "
            f"{FTE_HOURS_PER_WEEK:g} hours a week): " + "; ".join(parts) + "."]


def _gap_reading(store: Store, diffs: pd.DataFrame) -> list[str]:
    t = kpi_table(store, ["digital_gap"])
    base = t[t["scenario"] == store.baseline]
    if base.empty or len(base) != 1:
        return []
    r = base.iloc[0]
    text = (f"The digital gap (urban minus rural share of cases reported online) is "
            f"{describe_value(r['mean'], 'digital_gap')} in '{store.baseline}'")
    if not diffs.empty:
        sig = diffs[(diffs["kpi"] == "digital_gap") & diffs["significant"]]
        if len(sig):
            text += "; " + "; ".join(f"{s.scenario} moves it by {describe_change(s.diff, 'digital_gap')}"
                                     for s in sig.itertuples(index=False))
        else:
            text += "; no scenario changes it significantly"
    return [text + "."]


def _grid_reading(store: Store) -> list[str]:
    """For each headline KPI: the grid points with the lowest and highest mean, and whether they differ,
    paired over replications (every point runs the same seeds). Only significant spreads are named."""
    out, flat = [], []
    pcols = store.param_columns()
    pts = store.points().set_index("point")
    ov = store.overall
    multi = len(store.scenarios) > 1
    for scenario in store.scenarios:
        t = kpi_table(store, store.headline_kpis(6))
        t = t[(t["scenario"] == scenario)].dropna(subset=["mean"])
        for kpi, g in t.groupby("kpi", sort=False):
            lo, hi = g.loc[g["mean"].idxmin(), "point"], g.loc[g["mean"].idxmax(), "point"]
            vals = ov[(ov["scenario"] == scenario) & (ov["kpi"] == kpi)].pivot_table(
                index="replication", columns="point", values="value")
            iv = t_interval((vals[hi] - vals[lo]).dropna()) if lo != hi else t_interval([])
            if iv.n < 2 or not (iv.low > 0 or iv.high < 0):
                flat.append(kpi_label(kpi))
                continue

            def where(p: int) -> str:
                return ", ".join(f"{c.removeprefix(PARAM_PREFIX)} = {_setting(pts.loc[p, c])}" for c in pcols)

            out.append(f"{'In ' + scenario + ', a' if multi else 'A'}cross the grid the {kpi_label(kpi)} runs from "
                       f"{describe_value(g['mean'].min(), kpi)} ({where(lo)}) to {describe_value(g['mean'].max(), kpi)} "
                       f"({where(hi)}): {describe_change(iv.mean, kpi)}, 95% CI {describe_change(iv.low, kpi)} to "
                       f"{describe_change(iv.high, kpi)}, paired over {iv.n} replications.")
    if flat:
        out.append("Between its lowest and highest grid point, no significant difference (paired over "
                   f"replications) in: {', '.join(dict.fromkeys(flat))}.")
    return out


def _sensitivity_reading(store: Store) -> list[str]:
    """Which parameters matter, naming only those whose index stays above zero across its bootstrap 95%
    interval (Morris μ* − conf > 0; Sobol ST − conf > 0)."""
    out: list[str] = []
    unclear: list[str] = []
    try:
        if store.design_type == "morris":
            m = morris_indices(store, store.headline_kpis(6))
            for kpi, g in m.groupby("kpi", sort=False):
                g = g[g["mu_star"] - g["mu_star_conf"].fillna(0) > 0].sort_values("mu_star", ascending=False)
                if g.empty:
                    unclear.append(kpi_label(kpi))
                    continue
                names = [f"**{r.parameter}** (μ* = {r.mu_star:.3g})" for r in g.head(3).itertuples()]
                out.append(f"The {kpi_label(kpi)} ({kpi_unit(kpi)}, effect over each parameter's range) is moved "
                           f"most by {', then '.join(names)}.")
        elif store.design_type == "sobol":
            s = sobol_indices(store, store.headline_kpis(6))
            for kpi, g in s.groupby("kpi", sort=False):
                g = g[g["ST"] - g["ST_conf"].fillna(0) > 0].sort_values("ST", ascending=False)
                if g.empty:
                    unclear.append(kpi_label(kpi))
                    continue
                names = [f"**{r.parameter}** (ST = {r.ST:.2f}, alone S1 = {r.S1:.2f})" for r in g.head(3).itertuples()]
                out.append(f"The variance of the {kpi_label(kpi)} comes most from {', then '.join(names)}.")
            if ((s["ST"] > 1.05) | (s["S1"] < -0.05)).any():
                n = store.design.get("n", "?")
                out.append(f"Some Sobol estimates fall outside 0–1, a sign that the base sample (N = {n}) is too "
                           "small for stable indices; treat these rankings as rough.")
        elif store.design_type == "grid":
            out += _grid_reading(store)
    except SensitivityUnavailable as exc:
        out.append(f"The sensitivity analysis could not be done: {exc}.")
    if unclear:
        out.append(f"The sample is too small to tell which parameter matters for: {', '.join(unclear)} (every "
                   "index's 95% interval reaches zero); more trajectories or a larger base sample would.")
    return out


# ---------------------------------------------------------------------------------------------- sections
def _section(sid: str, blocks: list[Any] | None = None) -> Section:
    """An empty section (or one with ``blocks``) with the id and heading :data:`SECTIONS` gives it."""
    return Section(sid, dict(SECTIONS)[sid], blocks=list(blocks or []))


def scenario_differences(store: Store) -> dict[str, list[str]]:
    """For each scenario, the resolved settings that differ from the baseline's ("policy.x: 72 → 24")."""
    scen = store.manifest.get("scenarios") or {}
    base = flatten(scen.get(store.baseline) or {})
    out = {}
    for name in store.scenarios:
        if name == store.baseline or name not in scen:
            continue
        flat = flatten(scen[name] or {})
        changes = []
        for key in sorted(set(base) | set(flat)):
            if key in ("name", "description"):
                continue
            if base.get(key) != flat.get(key):
                changes.append(f"{key}: {_short(base.get(key))} → {_short(flat.get(key))}")
        out[name] = changes
    return out


def _setting(v: Any) -> str:
    """A design parameter value for people: "none" for an unset (NaN) setting."""
    return format_setting(v, none="none")


def _short(v: Any) -> str:
    text = "–" if v is None else str(v)
    return text if len(text) <= 60 else text[:57] + "…"


def _what_was_run(store: Store) -> Section:
    m = store.manifest
    sec = _section("what-was-run")
    runs = store.runs
    seeds = m.get("replication_seeds") or sorted(set(runs["seed"].tolist()))
    reps = runs["replication"].nunique()
    facts = [
        f"Experiment **{store.name}**" + (f" from `{m['spec_path']}`" if m.get("spec_path") else "")
        + (f" (spec hash {m['spec_hash']})" if m.get("spec_hash") else ""),
        f"Store: `{store.path}`" if store.path else "Store: in memory",
        f"Scenarios: {len(store.scenarios)} — baseline **{store.baseline}**; "
        f"{reps} replication(s) each, paired by seed (common random numbers)",
        f"Simulated days: {m.get('days', '–')} after a warm-up of {m.get('warmup_days', '–')} day(s)",
        f"Master seed {m.get('master_seed', '–')}; replication seeds "
        + ", ".join(map(str, seeds[:12])) + (f" … ({len(seeds)} in all)" if len(seeds) > 12 else ""),
        f"Runs: {len(runs)} — {len(store.ok_runs)} finished, {len(store.failed)} failed",
        _timing(store),
        f"Code: git commit {m.get('git_commit') or 'unknown'}; created {m.get('created', 'unknown')}",
    ]
    design = store.design
    if design["type"] != "none":
        params = "; ".join(f"{p['name']} in [{p.get('low')}, {p.get('high')}]" for p in design["parameters"])
        facts.append(f"Design: {design['type']} over {len(design['parameters'])} parameter(s), "
                     f"{design.get('n_points', store.runs['point'].nunique())} point(s): {params}")
    sec.blocks.append(Bullets(facts))
    diffs = scenario_differences(store)
    if diffs:
        rows = [[name, "; ".join(ch) if ch else "(same settings as the baseline)"] for name, ch in diffs.items()]
        sec.blocks.append(Table(["scenario", f"settings that differ from '{store.baseline}'"], rows,
                                numeric_from=99))
    versions = m.get("versions") or {}
    if versions:
        sec.blocks.append(Para("Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items())))
    if m.get("spec"):
        sec.blocks.append(Code(yaml.safe_dump(m["spec"], sort_keys=False, allow_unicode=True).strip(),
                               summary="The experiment spec as run"))
    for note in store.notes:
        sec.blocks.append(Para(f"Note: {note}."))
    return sec


def _timing(store: Store) -> str:
    wall = store.wall_s
    w = pd.to_numeric(store.runs["wall_s"], errors="coerce").dropna()
    workers = store.runs["worker"].dropna().nunique()
    parts = [f"Wall time {wall:,.1f} s" if wall is not None else "Wall time not recorded"]
    sessions = (store.manifest.get("timings") or {}).get("sessions") or []
    engines = sorted({str(x.get("engine")) for x in sessions if x.get("engine")})
    if engines:
        parts.append(f"engine {', '.join(engines)}")
    if len(sessions) > 1:
        parts.append(f"{len(sessions)} sessions (resumed)")
    if len(w):
        parts.append(f"per run {w.mean():.2f} s on average (max {w.max():.2f} s, sum {w.sum():,.1f} s)")
    if workers:
        parts.append(f"{workers} worker(s)")
    return "; ".join(parts)


def with_fte(table: pd.DataFrame, days: float) -> pd.DataFrame:
    """``table`` (:func:`kpi_table`) with a ``cost_fte`` row after each ``cost_hours`` row: the same mean, sd and
    interval in full-time equivalents (:func:`fte`: paid staff-hours over ``days`` measured days at
    :data:`FTE_HOURS_PER_WEEK` hours a week). Unchanged without cost_hours or days."""
    cost = table[table["kpi"] == "cost_hours"]
    if cost.empty or not days > 0:
        return table
    scale = fte(1.0, days)
    rows = cost.assign(kpi="cost_fte", unit=kpi_unit("cost_fte"),
                       **{c: cost[c] * scale for c in ("mean", "sd", "ci_low", "ci_high", "half_width")})
    both = pd.concat([table, rows.set_axis(rows.index + 0.5)]).sort_index(kind="stable")
    return both.reset_index(drop=True)


def _kpi_section(store: Store, table: pd.DataFrame) -> Section:
    sec = _section("kpi-table")
    if table.empty:
        sec.blocks.append(Para("No run finished, so there are no KPI values."))
        return sec
    days = float(store.manifest.get("days") or 0)
    table = with_fte(table, days)
    note = (f" cost_fte: cost_hours in full-time equivalents (paid staff-hours over the {days:g} measured days at "
            f"{FTE_HOURS_PER_WEEK:g} hours a week)." if "cost_fte" in set(table["kpi"]) else "")
    per = table.groupby("scenario")["point"].nunique().max()
    if per == 1 or len(table[["scenario", "point"]].drop_duplicates()) <= 8:
        header, rows = kpi_matrix(table, store.scenarios)
        n = int(table["n"].max())
        sec.blocks.append(Table(header, rows, caption=f"Mean ± half-width of the 95% t interval over up to {n} "
                                "finished replication(s); units in brackets." + note))
    else:
        sec.blocks.append(_points_table(store, table, note))
    return sec


def _points_table(store: Store, table: pd.DataFrame, note: str = "", max_rows: int = 60) -> Table:
    kpis = [k for k in store.kpis if k in set(table["kpi"])][:6]
    if "cost_hours" in kpis and "cost_fte" in set(table["kpi"]):
        kpis.insert(kpis.index("cost_hours") + 1, "cost_fte")
    pcols = store.param_columns()
    pts = store.points().set_index("point")
    wide = table[table["kpi"].isin(kpis)].pivot_table(index=["scenario", "point"], columns="kpi", values="mean")
    header = ["scenario", "point", *[c.removeprefix(PARAM_PREFIX) for c in pcols],
              *[f"{k} ({kpi_unit(k)})" for k in kpis]]
    rows = []
    for (sc, p), r in wide.iterrows():
        rows.append([sc, str(p), *[_setting(pts.loc[p, c]) for c in pcols], *[format_value(r.get(k), k) for k in kpis]])
    caption = "Mean over replications at each design point." + note
    if len(rows) > max_rows:
        caption += f" The first {max_rows} of {len(rows)} rows are shown; all are in summary.parquet."
        rows = rows[:max_rows]
    return Table(header, rows, caption=caption, numeric_from=2)


def _paired_section(store: Store, diffs: pd.DataFrame) -> Section:
    sec = _section("paired-differences")
    if len(store.scenarios) < 2:
        sec.blocks.append(Para("Only one scenario was run, so there is nothing to compare with the baseline."))
        return sec
    if diffs.empty:
        sec.blocks.append(Para(f"No replication of another scenario could be paired with the baseline "
                               f"'{store.baseline}' (its runs failed?)."))
        return sec
    per = diffs.groupby("scenario")["point"].nunique().max()
    if per > 1:
        diffs = diffs[diffs["significant"]]
        sec.blocks.append(Para(f"Per design point, only the significant differences ({len(diffs)}) are listed."))
        rows = [[r.scenario, str(r.point), f"{r.kpi} ({r.unit})", _diff_cell(r)] for r in diffs.head(80).itertuples()]
        sec.blocks.append(Table(["scenario", "point", "KPI (unit)", "difference [95% CI]"], rows, numeric_from=3))
        return sec
    scenarios = [s for s in store.scenarios if s in set(diffs["scenario"])]
    cells = {(r.scenario, r.kpi): r for r in diffs.itertuples(index=False)}
    table = kpi_table(store, list(pd.unique(diffs["kpi"])))
    base_mean = table[table["scenario"] == store.baseline].set_index("kpi")["mean"]
    rows = []
    strong = set()
    for i, kpi in enumerate(pd.unique(diffs["kpi"])):
        row = [f"{kpi} ({kpi_unit(kpi)})", format_value(base_mean.get(kpi, np.nan), kpi)]
        row += [_diff_cell(cells[(s, kpi)]) if (s, kpi) in cells else "–" for s in scenarios]
        strong |= {(i, 2 + j) for j, s in enumerate(scenarios) if (s, kpi) in cells and cells[(s, kpi)].significant}
        rows.append(row)
    n = int(diffs["n"].max())
    sec.blocks.append(Table(
        ["KPI (unit)", f"{store.baseline} mean", *[f"{s} − {store.baseline}" for s in scenarios]], rows,
        caption=(f"Mean paired difference (scenario − baseline, matched on replication: common random numbers) in "
                 f"the KPI's unit, its 95% t interval and the change relative to the baseline mean over the same "
                 f"replications; up to {n} pair(s) (a replication that failed in either scenario is left out). "
                 "Markers: * p < 0.05, ** p < 0.01, *** p < 0.001 (paired t-test, not adjusted for multiple "
                 "comparisons), significant cells in bold; (+) better, (−) worse for the people served, ($) costs "
                 "more paid staff-hours."), strong=strong))
    return sec


def _diff_cell(r: Any) -> str:
    ci = (f" [{format_signed(r.ci_low, r.kpi)}, {format_signed(r.ci_high, r.kpi)}]"
          if np.isfinite(r.ci_low) else "")
    rel = f" ({r.relative:+.1%})" if np.isfinite(r.relative) else ""
    tag = ""
    if r.significant:
        v = verdict(r.kpi, r.diff)
        tag = {"better": " (+)", "worse": " (−)", "costlier": " ($)", "cheaper": " (+)"}.get(v, "")
    marker = f" {r.marker}" if r.marker else ""
    return f"{format_signed(r.diff, r.kpi)}{marker}{tag}\n{ci.strip()}{rel}"


def _equity_section(store: Store) -> Section:
    sec = _section("equity")
    g = group_table(store)
    g = g[g["group_by"].isin(list(SPLITS))] if len(g) else g  # the split by level has its own section
    if g.empty:
        sec.blocks.append(Para("The store has no splits by requester kind, channel or area."))
        return sec
    g = g[g["point"] == g["point"].min()] if g["point"].nunique() > 1 else g
    kpis = [k for k in EQUITY_KPIS if k in set(g["kpi"])]
    scenarios = [s for s in store.scenarios if s in set(g["scenario"])]
    cell = {(r.scenario, r.group_by, r.group, r.kpi): r for r in g.itertuples(index=False)}
    rows = []
    for kpi in kpis:
        for split, groups in SPLITS.items():
            for grp in groups:
                vals = [cell.get((s, split, grp, kpi)) for s in scenarios]
                if all(v is None for v in vals) or (kpi == "online_share" and split == "channel"):
                    continue
                rows.append([f"{kpi} ({kpi_unit(kpi)})", f"{split.replace('_', ' ')}: {grp}",
                             *["–" if v is None else format_interval(v.mean, v.ci_low, v.ci_high, kpi) for v in vals]])
    caption = "Mean [95% t interval] over replications, by group."
    if store.runs["point"].nunique() > 1:
        caption += " Design point " + str(g["point"].min()) + " only."
    sec.blocks.append(Table(["KPI (unit)", "group", *scenarios], rows, caption=caption, numeric_from=2))
    gaps = group_gaps(store, [k for k in kpis if k != "online_share"])
    gaps = gaps[gaps["point"] == gaps["point"].min()] if not gaps.empty else gaps
    digital = kpi_table(store, ["digital_gap"])
    rows = []
    if len(digital):
        digital = digital[digital["point"] == digital["point"].min()]
    dg = {r.scenario: r for r in digital.itertuples(index=False)}
    if dg:
        rows.append(["digital gap: urban − rural online share (share points)",
                     *[format_interval(dg[s].mean, dg[s].ci_low, dg[s].ci_high, "digital_gap") if s in dg else "–"
                       for s in scenarios]])
    gcell = {(r.scenario, r.gap, r.kpi): r for r in gaps.itertuples(index=False)}
    for gap in pd.unique(gaps["gap"]) if len(gaps) else []:
        for kpi in kpis:
            vals = [gcell.get((s, gap, kpi)) for s in scenarios]
            if all(v is None for v in vals):
                continue
            rows.append([f"{gap}: {kpi_label(kpi)} ({kpi_unit(kpi)})",
                         *["–" if v is None else format_interval(v.mean, v.ci_low, v.ci_high, kpi) for v in vals]])
    if rows:
        sec.blocks.append(Table(["gap", *scenarios], rows, caption=(
            "Gaps between groups within each run (first group minus second), mean [95% t interval] over "
            "replications. The digital gap is the urban minus the rural share of cases reported online.")))
    return sec


def _ordered(names: Any, known: Sequence[str]) -> list[str]:
    """The distinct ``names`` in the order of ``known``, unknown ones after (sorted)."""
    names = {str(n) for n in names}
    return [n for n in known if n in names] + sorted(names - set(known))


def _level_section(store: Store) -> Section:
    sec = _section("handling-level")
    if store.ok_runs.empty:
        sec.blocks.append(Para("No run finished, so there is nothing to split by handling level."))
        return sec
    levels = level_table(store, [k for k, _ in LEVEL_COLUMNS])
    if levels.empty:
        sec.blocks.append(Para("The store has no split by handling level (stores written before the runs recorded "
                               "one lack it), so the outcomes by level are left out."))
    else:
        sec.blocks += _level_blocks(store, levels)
    queues = queue_table(store)
    if queues.empty:
        sec.blocks.append(Para("The store has no queue waits by bureau role and level (stores written before the "
                               "runs recorded them lack them), so where the relay builds up is not shown."))
    else:
        sec.blocks += _queue_blocks(store, queues)
    return sec


def _first_point(df: pd.DataFrame, store: Store) -> tuple[pd.DataFrame, str]:
    """The rows of the first design point, and a caption note saying so when the store has several."""
    if store.runs["point"].nunique() <= 1:
        return df, ""
    first = df["point"].min()
    return df[df["point"] == first], f" Design point {first} only."


def _level_blocks(store: Store, levels: pd.DataFrame) -> list[Any]:
    levels, note = _first_point(levels, store)
    present = set(levels["kpi"])
    columns = [(k, h) for k, h in LEVEL_COLUMNS if k in present]
    missing = [k for k, _ in LEVEL_COLUMNS if k not in present]
    names = _ordered(levels["group"], HANDLING_LEVELS)
    cell = {(r.scenario, r.group, r.kpi): r for r in levels.itertuples(index=False)}
    header = ["level"] + [h if k in ("cases", "case_share") else f"{h} ({kpi_unit(k)})" for k, h in columns]
    intro = ("How the cases fare by the level of the department that handled them (platform: answered at intake, "
             "never dispatched), per scenario: mean [95% t interval] over the finished replications. The response "
             "rate counts a sign-for or a reply. Cases per run and their share of the run's cases count a level "
             "that handled none of a run's cases as 0; its rates are undefined in that run and left out "
             "(–: no value)." + note)
    if missing:
        intro += f" Not stored for this split: {', '.join(missing)}."
    blocks: list[Any] = [Para(intro)]
    reps = levels.groupby("scenario")["n"].max()
    for scenario in [s for s in store.scenarios if s in set(levels["scenario"])]:
        rows = []
        for level in names:
            vals = [cell.get((scenario, level, k)) for k, _ in columns]
            if all(v is None for v in vals):
                continue
            rows.append([level, *["–" if v is None else format_interval(v.mean, v.ci_low, v.ci_high, k)
                                  for v, (k, _) in zip(vals, columns, strict=True)]])
        caption = f"{scenario}: by handling level, over up to {int(reps[scenario])} finished replication(s)."
        blocks += [Para(f"**{scenario}**"), Table(header, rows, caption=caption)]
    return blocks


def _queue_blocks(store: Store, queues: pd.DataFrame) -> list[Any]:
    queues, note = _first_point(queues, store)
    scenarios = [s for s in store.scenarios if s in set(queues["scenario"])]
    roles = _ordered(queues["role"], QUEUE_ROLES)
    lvls = _ordered(queues["level"], HANDLING_LEVELS)
    bureaus = sorted(set(zip(queues["group"], queues["role"], queues["level"], strict=True)),
                     key=lambda b: (roles.index(b[1]), lvls.index(b[2]), b[0]))
    cell = {(r.scenario, r.group, r.kpi): r for r in queues.itertuples(index=False)}
    rows, strong, longest = [], set(), []
    for j, scenario in enumerate(scenarios):
        waits = [(cell[(scenario, b[0], "queue_wait_h")].mean, i) for i, b in enumerate(bureaus)
                 if (scenario, b[0], "queue_wait_h") in cell]
        relays = [(w, i) for w, i in waits if bureaus[i][1] == "relay"]
        if waits:
            top = max(waits)[1]
            strong.add((top, 1 + j))
            relay = max(relays)[1] if relays and bureaus[top][1] != "relay" else None
            longest.append((scenario, bureaus[top][0], None if relay is None else bureaus[relay][0]))
    for b in bureaus:
        row = [b[0]]
        for scenario in scenarios:
            wait, starts, staff = (cell.get((scenario, b[0], k)) for k in ("queue_wait_h", "queue_starts", "staff"))
            text = "–" if wait is None else format_interval(wait.mean, wait.ci_low, wait.ci_high, "queue_wait_h")
            sub = [f"{format_value(starts.mean, 'queue_starts')} started per run" if starts is not None else "",
                   f"{format_value(staff.mean, 'staff')} staff" if staff is not None else ""]
            sub = ", ".join(x for x in sub if x)
            row.append(text + (f"\n({sub})" if sub else ""))
        rows.append(row)
    blocks: list[Any] = [Para("Where the relay builds up: how long an order waits at each kind of bureau before "
                              "work on it starts.")]
    if longest:
        def wait(scenario: str, group: str) -> str:
            w = cell[(scenario, group, "queue_wait_h")]
            ci = (f" (95% CI {describe_value(w.ci_low, 'queue_wait_h')} to {describe_value(w.ci_high, 'queue_wait_h')})"
                  if np.isfinite(w.ci_low) else "")
            return f"{describe_value(w.mean, 'queue_wait_h')}{ci}"

        blocks.append(Bullets([
            f"In **{scenario}** orders wait longest at {group}: {wait(scenario, group)} on average before work "
            "starts" + (f"; among the relays, at {relay}: {wait(scenario, relay)}" if relay else "") + "."
            for scenario, group, relay in longest]))
    n = int(queues["n"].max())
    blocks.append(Table(["bureau (role@level)", *scenarios], rows, strong=strong, caption=(
        f"Mean [95% t interval] over up to {n} finished replication(s) of each run's mean wait in hours, from an "
        "order reaching the bureaus of that role and level to the start of work on it (sitting on an order "
        "counts); in brackets beneath, the cases started and the staff, means per run. Relays pass orders down the "
        "hierarchy, departments handle them; the longest wait of each scenario is in bold (–: no order "
        "started there)." + note)))
    return blocks


def _posterior_table(store: Store) -> Table:
    """Predictive intervals over posterior draws × replications, split into parameter uncertainty (the spread
    of the draws' means) and noise (the typical spread of replications at one draw)."""
    overall = store.overall
    rows = []
    for scenario in store.scenarios:
        for kpi in store.headline_kpis(6):
            d = overall[(overall["scenario"] == scenario) & (overall["kpi"] == kpi)]
            v = d["value"].dropna()
            if v.empty:
                continue
            q05, q50, q95 = np.quantile(v, [0.05, 0.5, 0.95])
            means = d.groupby("point")["value"].mean()
            noise = d.groupby("point")["value"].std().mean()
            rows.append([scenario, kpi, f"{q50:.3g}", f"{q05:.3g} – {q95:.3g}", f"{means.std():.3g}",
                         f"{noise:.3g}" if np.isfinite(noise) else "n/a"])
    return Table(["scenario", "KPI", "median", "90% predictive interval", "SD of draw means (parameters)",
                  "mean SD within a draw (noise)"], rows, numeric_from=2, caption=(
        f"Runs over {len(store.points())} parameter sets drawn from a Bayesian calibration's posterior "
        "(calibrate-abc), each replicated: the interval holds both the parameters' uncertainty and the "
        "runs' noise; the last two columns say which of the two dominates."))


def _sensitivity_section(store: Store) -> Section:
    sec = _section("sensitivity")
    dtype = store.design_type
    try:
        if dtype == "morris":
            m = morris_indices(store)
            rows = [[r.kpi, r.parameter, f"{r.mu_star:.3g}", f"{r.mu_star_conf:.3g}", f"{r.mu:.3g}", f"{r.sigma:.3g}"]
                    for r in m.itertuples(index=False)]
            sec.blocks.append(Table(["KPI", "parameter", "μ*", "μ* 95% ±", "μ", "σ"], rows, numeric_from=2, caption=(
                "Morris elementary effects (SALib), in the KPI's unit per change of the parameter over its range, "
                f"from {len(store.points())} design points (means over replications).")))
        elif dtype == "sobol":
            s = sobol_indices(store)
            rows = [[r.kpi, r.parameter, f"{r.S1:.3f}", f"±{r.S1_conf:.3f}", f"{r.ST:.3f}", f"±{r.ST_conf:.3f}"]
                    for r in s.itertuples(index=False)]
            sec.blocks.append(Table(["KPI", "parameter", "S1", "S1 95% ±", "ST", "ST 95% ±"], rows, numeric_from=2,
                                    caption="Sobol first-order (S1) and total (ST) indices (SALib), shares of variance."))
        elif dtype == "posterior":
            sec.blocks.append(_posterior_table(store))
        elif dtype in ("grid", "lhs"):
            sec.blocks.append(Para(f"A {dtype} design over {', '.join(store.parameters)}: the KPI table lists each "
                                   "point" + ("; the heatmap figure maps the sweep." if dtype == "grid" else ".")))
        else:
            sec.blocks.append(Para("This experiment compares scenarios; it has no parameter design to analyse."))
    except SensitivityUnavailable as exc:
        sec.blocks.append(Para(f"The sensitivity analysis could not be done: {exc}."))
    return sec


def discovery_section(store: Store) -> Section:
    """The scenario discoveries stored under ``STORE/discovery/`` (``python run.py discover``): per discovery
    its reading, its boxes with coverage and density, its box-limits figure and where its own report is."""
    from .discover import DISCOVERY_DIR, stored_discoveries

    sec = _section("discovery")
    found = stored_discoveries(store.path) if store.path is not None else []
    if not found:
        sec.blocks.append(Para("No scenario discovery was run on this store (`python run.py discover STORE --kpi K "
                               "--below X` finds, with PRIM, the parts of a design where a KPI or a scenario's "
                               "effect on it falls below or rises above X, and stores it under "
                               f"`{DISCOVERY_DIR}/`)."))
        return sec
    for folder, data in found:
        if isinstance(data, str):
            sec.blocks.append(Para(f"**{folder.name}**: {data}."))
            continue
        where = f"{DISCOVERY_DIR}/{folder.name}"
        sec.blocks.append(Para(f"**{folder.name}** ({data.get('n_cases', '?')} of {data.get('n_points', '?')} "
                               f"design points are cases of interest; the full discovery: `{where}/discovery.html`)"))
        sec.blocks.append(Bullets([str(r) for r in data.get("reading") or []]))
        boxes = [b for b in data.get("boxes") or [] if isinstance(b, dict)]
        if boxes:
            sec.blocks.append(Table(["box", "where", "coverage", "density", "mass"], [
                [str(b.get("box")), str(b.get("where")), *[_share(b.get(k)) for k in ("coverage", "density", "mass")]]
                for b in boxes], numeric_from=2, caption=(
                    "PRIM boxes: coverage = share of all cases of interest inside the box; density = share of the "
                    "box's points that are cases of interest; mass = share of all design points inside it.")))
        png = next((f for f in (folder / "figures" / n for n in ("box_limits.png", "y_by_parameter.png"))
                    if f.is_file()), None)
        if png is not None:
            sec.blocks.append(Picture(f"discovery-{folder.name}", f"Scenario discovery: {folder.name}",
                                      f"From {where}/figures/{png.name}.", png.read_bytes()))
    return sec


def _share(v: Any) -> str:
    """A share (0–1) from a stored discovery as a whole percentage, "–" when absent."""
    return f"{100 * float(v):.0f}%" if isinstance(v, int | float) else "–"


def _figures_section(figs: Sequence[FigureOutput], dpi: int) -> Section:
    sec = _section("figures")
    skipped = []
    for f in figs:
        if f.figure is None:
            skipped.append(f"{f.title}: {f.skipped}")
            continue
        sec.blocks.append(Picture(f.name, f.title, f.caption, to_png(f.figure, dpi=dpi)))
    if skipped:
        sec.blocks.append(Para("Not drawn:"))
        sec.blocks.append(Bullets(skipped))
    return sec


def _failed_section(store: Store) -> Section:
    sec = _section("failed-runs")
    failed = store.failed
    if failed.empty:
        sec.blocks.append(Para(f"None: all {len(store.runs)} run(s) finished."))
        return sec
    sec.blocks.append(Para(f"{len(failed)} of {len(store.runs)} run(s) failed; they are left out of every table and "
                           "figure, and paired differences use only the replications that finished in both "
                           "scenarios."))
    rows = [[str(r.run_id), str(r.scenario), str(r.point), str(r.replication), str(r.seed),
             _short(str(r.error) if r.error is not None else "")] for r in failed.itertuples(index=False)]
    sec.blocks.append(Table(["run", "scenario", "point", "replication", "seed", "error"], rows, numeric_from=2))
    return sec


def build_report(store: Store | str | Path, dpi: int = 110) -> tuple[str, list[Section]]:
    """The report's title and sections (blocks of text, tables and rendered figures)."""
    store = as_store(store)
    table = kpi_table(store)
    diffs = paired_differences(store)
    sections = [
        _what_was_run(store),
        _section("reading", [Bullets(reading(store, diffs))]),
        _kpi_section(store, table),
        _paired_section(store, diffs),
        _equity_section(store),
        _level_section(store),
        _sensitivity_section(store),
        discovery_section(store),
        _figures_section(all_figures(store) if len(store.ok_runs) else [], dpi),
        _failed_section(store),
    ]
    return f"Wenzheng experiment report: {store.name}", sections


# ---------------------------------------------------------------------------------------------- render
def _inline_html(text: str) -> str:
    out = html.escape(text)
    parts = out.split("**")
    out = "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))
    parts = out.split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0 auto;max-width:1400px;
padding:1.5rem 2rem 4rem;color:#1d1d1f;line-height:1.5}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2.4rem;border-bottom:2px solid #444;padding-bottom:.2rem}
nav ol{columns:2;font-size:.95rem}table{border-collapse:collapse;margin:.6rem 0;font-size:.86rem}
th,td{border:1px solid #bbb;padding:.25rem .5rem;vertical-align:top}th{background:#eee;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}caption{caption-side:bottom;
text-align:left;font-size:.8rem;color:#555;padding-top:.3rem}figure{margin:1.2rem 0}figure img{max-width:100%;
height:auto;border:1px solid #ddd}figcaption{font-size:.85rem;color:#444}pre{background:#f6f6f6;padding:.8rem;
overflow:auto;font-size:.8rem}.meta{color:#555;font-size:.9rem}.scroll{overflow-x:auto}
.sub{color:#555;font-size:.78rem}
"""


def render_html(title: str, sections: Sequence[Section], generated: str) -> str:
    """One self-contained HTML page: inline CSS, figures as base64 data URIs, no scripts or fetches."""
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
           f"<header><h1>{html.escape(title)}</h1><p class=\"meta\">Generated {html.escape(generated)} "
           "by analysis.report from the result store; every number comes from the stored runs.</p>",
           "<nav><ol>" + "".join(f'<li><a href="#{s.id}">{html.escape(s.title)}</a></li>' for s in sections)
           + "</ol></nav></header>"]
    for s in sections:
        out.append(f'<section id="{s.id}"><h2>{html.escape(s.title)}</h2>')
        for b in s.blocks:
            out.append(_block_html(b))
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out)


def _block_html(b: Any) -> str:
    if isinstance(b, Para):
        return f"<p>{_inline_html(b.text)}</p>"
    if isinstance(b, Bullets):
        return "<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in b.items) + "</ul>"
    if isinstance(b, Code):
        inner = f"<pre>{html.escape(b.text)}</pre>"
        return f"<details><summary>{html.escape(b.summary)}</summary>{inner}</details>" if b.summary else inner
    if isinstance(b, Table):
        head = "".join(f"<th>{html.escape(h)}</th>" for h in b.header)
        def cell(i: int, j: int, c: str) -> str:
            first, *rest = c.split("\n")
            text = f"<strong>{html.escape(first)}</strong>" if (i, j) in b.strong else html.escape(first)
            text += "".join(f'<br><span class="sub">{html.escape(line)}</span>' for line in rest)
            return f'<td class="num">{text}</td>' if j >= b.numeric_from else f"<td>{text}</td>"

        body = "".join("<tr>" + "".join(cell(i, j, c) for j, c in enumerate(r)) + "</tr>" for i, r in enumerate(b.rows))
        cap = f"<caption>{html.escape(b.caption)}</caption>" if b.caption else ""
        return f'<div class="scroll"><table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
    if isinstance(b, Picture):
        data = base64.b64encode(b.png).decode("ascii")
        return (f'<figure id="fig-{b.name}"><img src="data:image/png;base64,{data}" alt="{html.escape(b.title)}">'
                f"<figcaption><strong>{html.escape(b.title)}.</strong> {html.escape(b.caption)}</figcaption></figure>")
    raise TypeError(f"unknown report block {type(b).__name__}")


def _md_cell(text: str) -> str:
    """A table cell for Markdown: pipes and asterisks (significance markers) escaped, one line."""
    return text.replace("|", "\\|").replace("*", "\\*").replace("\n", " ")


def _md_strong(text: str) -> str:
    """Bold the first line of a cell (the value), keep the rest (its interval) plain."""
    first, _, rest = text.partition("\n")
    return f"**{_md_cell(first)}**" + (f" {_md_cell(rest)}" if rest else "")


def render_markdown(title: str, sections: Sequence[Section], generated: str, figure_dir: str = "figures") -> str:
    """The same report as Markdown; figures are linked from ``figure_dir`` (relative to the report)."""
    out = [f"# {title}", "", f"Generated {generated} by analysis.report from the result store.", ""]
    for s in sections:
        out += [f'<a id="{s.id}"></a>', "", f"## {s.title}", ""]
        for b in s.blocks:
            if isinstance(b, Para):
                out += [b.text, ""]
            elif isinstance(b, Bullets):
                out += [f"- {i}" for i in b.items] + [""]
            elif isinstance(b, Code):
                out += ([f"{b.summary}:", ""] if b.summary else []) + ["```yaml", b.text, "```", ""]
            elif isinstance(b, Table):
                out.append("| " + " | ".join(_md_cell(h) for h in b.header) + " |")
                out.append("|" + "|".join("---:" if i >= b.numeric_from else "---" for i in range(len(b.header))) + "|")
                out += ["| " + " | ".join(_md_strong(c) if (i, j) in b.strong else _md_cell(c)
                                          for j, c in enumerate(r)) + " |" for i, r in enumerate(b.rows)]
                out += ["", f"*{b.caption}*", ""] if b.caption else [""]
            elif isinstance(b, Picture):
                out += [f"### {b.title}", "", f"![{b.title}]({figure_dir}/{b.name}.png)", "", b.caption, ""]
    return "\n".join(out).rstrip() + "\n"


def write_report(store_dir: str | Path | Store, out_dir: str | Path | None = None, dpi: int = 110) -> dict[str, Path]:
    """Write ``report.html``, ``report.md`` and ``figures/*.png`` into ``out_dir`` (default: the store
    directory). Returns ``{"html": Path, "md": Path, "figures": Path}``. Raises StoreError for a missing or
    corrupt store, ReportError when the output cannot be written."""
    store = as_store(store_dir)
    target = Path(out_dir) if out_dir is not None else store.path
    if target is None:
        raise ReportError("an in-memory store needs out_dir to write the report to")
    title, sections = build_report(store, dpi=dpi)
    return write_pages(target, title, sections)


def write_pages(target: Path, title: str, sections: Sequence[Section]) -> dict[str, Path]:
    """Write a report's ``report.html``, ``report.md`` and ``figures/*.png`` (replacing older figures) into
    ``target``; ReportError when they cannot be written."""
    generated = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    fig_dir = target / "figures"
    try:
        fig_dir.mkdir(parents=True, exist_ok=True)
        for old in fig_dir.glob("*.png"):
            old.unlink()
        for s in sections:
            for b in s.blocks:
                if isinstance(b, Picture):
                    (fig_dir / f"{b.name}.png").write_bytes(b.png)
        html_path = target / "report.html"
        md_path = target / "report.md"
        html_path.write_text(render_html(title, sections, generated), encoding="utf-8")
        md_path.write_text(render_markdown(title, sections, generated), encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"{target}: cannot write the report ({exc.strerror or exc})") from exc
    return {"html": html_path, "md": md_path, "figures": fig_dir}


def section_ids() -> list[str]:
    """The HTML ids of the report's sections, in order."""
    return [sid for sid, _ in SECTIONS]


__all__ = ["FTE_HOURS_PER_WEEK", "SECTIONS", "ReportError", "build_report", "describe_change", "describe_value",
           "discovery_section", "fte", "reading", "render_html", "render_markdown", "section_ids", "with_fte",
           "write_report"]
