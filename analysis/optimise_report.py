"""The report of an optimisation store (``python run.py optimise SPEC``; ``python run.py report STORE``).

``write_optimisation_report(DIR)`` writes ``DIR/report.html`` (self-contained, figures embedded as base64 PNG),
``DIR/report.md`` and ``DIR/figures/*.png``, built from one list of blocks (the blocks and renderers of
:mod:`analysis.report`), so both files say the same thing. Everything is read from the store:
``optimisation.json`` (the front, the chosen package, regret, the re-check), ``objectives.parquet`` (per
package: aggregated objectives, constraint bounds, feasibility, front membership), ``evaluations.parquet``
(package × case × seeds × KPI: mean and 95% t interval over replications), ``candidates.json`` (lever
values) and ``manifest.json`` (spec, seeds, timings).

Sections, in order (their HTML ids in :data:`SECTIONS`): what was run; the plain reading (the cheapest
package that meets the targets, its cost in staff-hours and full-time equivalents against today's platform,
its outcomes with intervals, how it fares under the stress cases, and whether any package beats the
reference to beat); the front (cost against each outcome, and a table); robustness (regret and the targets
in every demand case); the winner's curse (the re-check on fresh seeds); convergence per generation.

Units: ``cost_hours`` are paid staff-hours over the measured days of one run (warm-up excluded); a
full-time equivalent (FTE) is 40 paid hours a week over those days (:func:`analysis.report.fte`). Shares are
shown as %, differences of shares in percentage points (pp). Targets are judged on the pessimistic end of
the 95% interval over replications: the lower end for ``at_least``, the upper end for ``at_most``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
import yaml
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.transforms import Bbox

from common.formatting import format_setting
from common.store import StoreError, read_manifest

from .figures import FigureOutput, FigureSkipped, bounds, label_overlaps, styled, to_png
from .report import (
    FTE_HOURS_PER_WEEK,
    Bullets,
    Code,
    Para,
    Picture,
    Section,
    Table,
    describe_value,
    fte,
    write_pages,
)
from .summarize import HIGHER_IS_BETTER, LOWER_IS_BETTER, format_value, is_share, kpi_label, kpi_unit

#: (HTML id, heading) of every section, in the order they appear in both files.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("what-was-run", "What was run"),
    ("reading", "Plain reading"),
    ("front", "The front: cost against each outcome"),
    ("robustness", "Robustness: regret and targets in every demand case"),
    ("winners-curse", "Winner's curse: the re-check on fresh seeds"),
    ("convergence", "Convergence of the search"),
)
#: Short KPI names for table cells and figure panels.
SHORT_NAMES: dict[str, str] = {
    "cost_hours": "cost", "satisfaction_rate": "satisfaction", "on_time_response_rate": "on-time response",
    "true_resolution_rate": "true resolution", "gaming_gap": "gaming gap", "resolution_rate": "recorded resolution",
    "response_rate": "response", "mean_trust": "trust",
}
#: How the chosen package, the references and the other packages are drawn in every figure.
CHOSEN_COLOR = "#d62728"
REFERENCE_MARKERS: tuple[str, ...] = ("D", "s", "^", "v", "P", "h")
REFERENCE_COLORS: tuple[str, ...] = ("#1f3b73", "#7a4f01", "#2a7f62", "#6a3d9a", "#555555", "#b15928")
FRONT_COLOR = mpl.colormaps["viridis"](0.3)
OTHER_COLOR = mpl.colormaps["viridis"](0.75)
TARGET_COLOR = "0.25"


# ---------------------------------------------------------------------------------------------- the store
@dataclass
class OptimisationStore:
    """A finished optimisation read into memory. ``result``: optimisation.json; ``objectives``: one row per
    package (``obj.<kpi>`` aggregated objectives, ``bound.<kpi>`` / ``con.<kpi>`` the pessimistic bound and
    the violation in the KPI's unit, ``feasible``, ``on_front``); ``evaluations``: candidate × case × seeds
    × KPI (mean, ci_low, ci_high, n); ``candidates``: id -> candidates.json entry."""

    root: Path
    result: dict[str, Any]
    objectives: pd.DataFrame
    evaluations: pd.DataFrame
    candidates: dict[int, dict[str, Any]]
    manifest: dict[str, Any]
    runs: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        ev = self.evaluations
        self._stats = {(int(r.candidate), str(r.case), str(r.seeds), str(r.kpi)): r
                       for r in ev.itertuples(index=False)}
        self._rows = {int(r["candidate"]): r for r in self.objectives.to_dict("records")}

    # -- plan facts
    @property
    def days(self) -> float:
        """Measured days of each run (after the warm-up)."""
        return float(self.result.get("days") or self.manifest.get("days") or 0.0)

    @property
    def objective_kpis(self) -> list[str]:
        return [o["kpi"] for o in self.result["objectives"]]

    @property
    def outcome_kpis(self) -> list[str]:
        """The objectives other than the cost, in the spec's order."""
        return [k for k in self.objective_kpis if k != "cost_hours"]

    @property
    def directions(self) -> dict[str, str]:
        return {o["kpi"]: o["direction"] for o in self.result["objectives"]}

    @property
    def constraints(self) -> list[dict[str, Any]]:
        return list(self.result.get("constraints") or [])

    @property
    def cases(self) -> list[str]:
        return [c["name"] for c in self.result["cases"]]

    @property
    def search_cases(self) -> list[str]:
        return [c["name"] for c in self.result["cases"] if c["search"]]

    @property
    def stress_cases(self) -> list[str]:
        return [c["name"] for c in self.result["cases"] if not c["search"]]

    @property
    def reference_ids(self) -> dict[str, int]:
        return {n: int(i) for n, i in self.result["reference_ids"].items()}

    @property
    def today_id(self) -> int:
        return self.reference_ids[self.result["today"]]

    @property
    def compare_id(self) -> int:
        return self.reference_ids[self.result["compare"]]

    @property
    def chosen(self) -> int | None:
        c = self.result.get("chosen")
        return None if c is None else int(c)

    @property
    def robust(self) -> bool:
        return self.result.get("aggregate") is not None

    # -- per package
    def row(self, cand: int) -> dict[str, Any]:
        """The package's objectives.parquet row."""
        return self._rows[int(cand)]

    def label(self, cand: int) -> str:
        """``g01.02`` for a search package, the reference's name for a reference."""
        return str(self.candidates[int(cand)]["label"])

    def name(self, cand: int) -> str:
        """The package as the text names it: "package g01.02 (#12)" or "the reference 'today'"."""
        c = self.candidates[int(cand)]
        if c["kind"] == "reference":
            return f"the reference '{c['label']}'"
        return f"package {c['label']} (#{int(cand)})"

    def levers(self, cand: int) -> dict[str, Any]:
        return dict(self.candidates[int(cand)].get("levers") or {})

    def lever_text(self, cand: int, sep: str = "; ") -> str:
        """The package's lever settings: "mandate_hours = 24; inspections = 20; ..."."""
        lv = self.levers(cand)
        if not lv:
            return "its own scenario file"
        return sep.join(f"{k} = {_setting(v)}" for k, v in lv.items())

    def stat(self, cand: int, case: str, kpi: str, seeds: str = "search") -> Any | None:
        """The evaluations row (mean, ci_low, ci_high, n) of a package in a case, or None."""
        return self._stats.get((int(cand), case, seeds, kpi))

    def cost(self, cand: int) -> float:
        """Paid staff-hours of the package (its aggregated cost objective)."""
        return float(self.row(cand).get("obj.cost_hours", math.nan))

    def role(self, cand: int) -> str:
        """How the package enters the report: reference (today / to beat), chosen, on the front."""
        c = self.candidates[int(cand)]
        if c["kind"] == "reference":
            tags = ["reference"]
            if c["label"] == self.result["today"]:
                tags.append("today")
            if c["label"] == self.result["compare"]:
                tags.append("to beat")
            return ", ".join(tags)
        tags = []
        if cand == self.chosen:
            tags.append("chosen")
        if self.row(cand).get("on_front"):
            tags.append("front")
        return ", ".join(tags) or "search"


def read_optimisation_store(store_dir: str | Path) -> OptimisationStore:
    """Read a finished optimisation store; StoreError naming what is missing or not an optimisation."""
    root = Path(store_dir)
    from experiments.optimise import is_optimisation_store, read_result

    if not is_optimisation_store(root):
        raise StoreError(f"{root}: not an optimisation store (its manifest.json was not written by "
                         "`python run.py optimise`)")
    result, objectives, evaluations, cands = read_result(root)
    runs = None
    if (root / "runs.parquet").exists():
        try:
            runs = pd.read_parquet(root / "runs.parquet")
        except (OSError, ValueError):
            runs = None
    return OptimisationStore(root, result, objectives, evaluations, {int(c["id"]): c for c in cands},
                             read_manifest(root), runs)


# ---------------------------------------------------------------------------------------------- words
def _setting(v: Any) -> str:
    return format_setting(v, none="none")


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _short(kpi: str) -> str:
    return SHORT_NAMES.get(kpi, kpi_label(kpi))


def _hours(h: float) -> str:
    """Staff-hours in words: "62,565 staff-hours"."""
    return f"{h:,.0f} staff-hours" if np.isfinite(h) else "undefined"


def _fte_text(h: float, days: float) -> str:
    """Staff-hours as full-time equivalents: "365.0 FTE"."""
    v = fte(h, days)
    return f"{v:,.1f} FTE" if np.isfinite(v) else "– FTE"


def amount(value: float, kpi: str) -> str:
    """A magnitude (no sign) in the KPI's unit: percentage points for shares, hours, staff-hours."""
    mag = abs(float(value))
    unit = kpi_unit(kpi)
    if is_share(kpi):
        return f"{100 * mag:.1f} pp"
    if unit == "hours":
        return f"{mag:.1f} h"
    if unit in ("staff-hours", "open cases", "cases"):
        return f"{mag:,.0f} {unit}"
    return format_value(mag, kpi)


def signed(value: float, kpi: str) -> str:
    """A difference with its sign in the KPI's unit ("+2.3 pp", "−1,200 staff-hours")."""
    if value is None or not np.isfinite(value):
        return "–"
    text = amount(value, kpi)
    if not any(ch in "123456789" for ch in text.split(" ")[0]):
        return text  # rounds to zero: no sign
    return ("+" if value >= 0 else "−") + text


def _interval_words(stat: Any, kpi: str) -> str:
    """"87.7% (95% CI 86.9% to 88.5%)", or just the mean when the interval is undefined."""
    if stat is None:
        return "not evaluated"
    text = describe_value(float(stat.mean), kpi)
    if np.isfinite(stat.ci_low) and np.isfinite(stat.ci_high):
        text += f" (95% CI {describe_value(float(stat.ci_low), kpi)} to {describe_value(float(stat.ci_high), kpi)})"
    return text


def _cell(stat: Any, kpi: str) -> str:
    """A table cell: the mean on the first line, its 95% interval beneath, clipped to the values the KPI can
    take (with two or three replications a t interval can reach past 100%)."""
    if stat is None:
        return "–"
    lo_b, hi_b = bounds(kpi)
    return _cell_values(float(stat.mean), min(max(float(stat.ci_low), lo_b), hi_b),
                        max(min(float(stat.ci_high), hi_b), lo_b), kpi)


def _cell_values(mean: float, low: float, high: float, kpi: str) -> str:
    main = describe_value(mean, kpi) if kpi != "cost_hours" else f"{mean:,.0f}"
    if np.isfinite(low) and np.isfinite(high) and high > low:
        return f"{main}\n[{describe_value(low, kpi)}, {describe_value(high, kpi)}]"
    return main


def target_text(con: dict[str, Any]) -> str:
    """A target in words: "satisfaction ≥ 90.0%" (judged on the lower end of the 95% interval)."""
    kpi = con["kpi"]
    if con.get("at_least") is not None:
        return f"{_short(kpi)} ≥ {describe_value(float(con['at_least']), kpi)}"
    return f"{_short(kpi)} ≤ {describe_value(float(con['at_most']), kpi)}"


@dataclass
class TargetCheck:
    """One target judged on one package in one case: the pessimistic bound, whether it holds, and by how
    much it is missed (the violation in the KPI's unit; ≤ 0 when met)."""

    con: dict[str, Any]
    bound: float
    met: bool
    violation: float

    @property
    def kpi(self) -> str:
        return self.con["kpi"]

    def words(self) -> str:
        """"misses satisfaction ≥ 90.0% by 2.3 pp (lower end 87.7%)" or "meets satisfaction ≥ 90.0% (...)"."""
        end = "lower" if self.con.get("at_least") is not None else "upper"
        where = f"{end} end {describe_value(self.bound, self.kpi)}"
        if self.met:
            return f"meets {target_text(self.con)} ({where})"
        return f"misses {target_text(self.con)} by {amount(self.violation, self.kpi)} ({where})"


def worst_case_targets(opt: OptimisationStore, cand: int) -> list[TargetCheck] | None:
    """Every target judged on a package at its worst case over the search's cases (robust search): the
    aggregated pessimistic bound the search used (``bound.<kpi>`` and ``con.<kpi>`` in objectives.parquet)."""
    row = opt.objectives[opt.objectives["candidate"] == cand]
    if row.empty:
        return None
    out = []
    for con in opt.constraints:
        bound, violation = row.iloc[0].get(f"bound.{con['kpi']}"), row.iloc[0].get(f"con.{con['kpi']}")
        if bound is None or violation is None or not np.isfinite(bound):
            return None
        out.append(TargetCheck(con, float(bound), float(violation) <= 0, float(violation)))
    return out


def check_targets(opt: OptimisationStore, cand: int, case: str, seeds: str = "search") -> list[TargetCheck] | None:
    """Every target judged on a package in a case, on the pessimistic end of its 95% interval (the mean
    when the interval is undefined); None when the package was not evaluated there."""
    out = []
    for con in opt.constraints:
        s = opt.stat(cand, case, con["kpi"], seeds)
        if s is None or not np.isfinite(s.mean):
            return None
        if con.get("at_least") is not None:
            bound = float(s.ci_low) if np.isfinite(s.ci_low) else float(s.mean)
            violation = float(con["at_least"]) - bound
        else:
            bound = float(s.ci_high) if np.isfinite(s.ci_high) else float(s.mean)
            violation = bound - float(con["at_most"])
        out.append(TargetCheck(con, bound, violation <= 0, violation))
    return out


def _aggregate_words(opt: OptimisationStore) -> str:
    agg = opt.result.get("aggregate") or {}
    if agg.get("aggregate") == "quantile":
        q = float(agg.get("q", 0.1))
        return (f"the {q:g}-quantile over the cases of each maximised outcome (the {1 - q:g}-quantile of a "
                "minimised one)")
    return "the worst case over the cases (the lowest of each maximised outcome, the highest of the cost)"


def _case_keys(keys: dict[str, Any]) -> str:
    if not keys:
        return "the base scenario as it is"
    parts = []
    for k, v in keys.items():
        if isinstance(v, list):
            v = "[" + ", ".join(format_setting(x, none="none") for x in v) + "]"
        else:
            v = _setting(v)
        parts.append(f"{k} = {v}")
    return "; ".join(parts)


def _better(kpi: str, diff: float, opt: OptimisationStore | None = None) -> bool | None:
    """Whether a positive-or-negative difference is good for the package: the spec's direction for an
    objective, the target's for a constraint, else the KPI's usual direction; None when undirected."""
    direction = (opt.directions.get(kpi) if opt else None)
    if direction is None and opt is not None:
        for c in opt.constraints:
            if c["kpi"] == kpi:
                direction = "maximise" if c.get("at_least") is not None else "minimise"
    if direction is None:
        direction = ("maximise" if kpi in HIGHER_IS_BETTER else "minimise" if kpi in LOWER_IS_BETTER
                     or kpi == "cost_hours" else None)
    if direction is None or diff == 0:
        return None
    return diff > 0 if direction == "maximise" else diff < 0


# ---------------------------------------------------------------------------------------------- sections
def _section(sid: str, blocks: list[Any] | None = None) -> Section:
    return Section(sid, dict(SECTIONS)[sid], blocks=list(blocks or []))


def _key_description(dotted: str) -> str:
    """The scenario schema's description of a dotted key (empty when unknown)."""
    from pydantic import BaseModel

    from sim.scenario import Scenario

    model: Any = Scenario
    parts = dotted.split(".")
    i = 0
    desc = ""
    while i < len(parts):
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return ""
        f = model.model_fields.get(parts[i])
        if f is None:
            return ""
        desc = f.description or ""
        ann = f.annotation
        args = [a for a in getattr(ann, "__args__", ()) if isinstance(a, type)]
        if getattr(ann, "__origin__", None) is dict:
            vals = [a for a in ann.__args__[1:] if isinstance(a, type)]
            model = vals[0] if vals else None
            i += 2
            continue
        model = ann if isinstance(ann, type) else next((a for a in args if issubclass(a, BaseModel)), None)
        i += 1
    return desc


def _shock_note(keys: dict[str, Any], end_day: float) -> str:
    """A warning when a case's demand shocks (``start_day``, ``days``: simulated days from the start of the
    run, warm-up included) reach past the end of the run (day ``end_day``): cut short, or never felt."""
    notes = []
    for shock in keys.get("demand.shocks") or []:
        if not isinstance(shock, dict) or "start_day" not in shock:
            continue
        start, length = float(shock["start_day"]), float(shock.get("days", 0))
        if start >= end_day:
            notes.append(f"the shock from day {start:g} starts after the run ends (day {end_day:g}): no effect")
        elif start + length > end_day:
            notes.append(f"the shock from day {start:g} is cut to {end_day - start:g} of its {length:g} days by the "
                         f"end of the run (day {end_day:g})")
    return f" (note: {'; '.join(notes)})" if notes else ""


def _lever_range(lv: dict[str, Any]) -> str:
    kind = lv["kind"]
    if kind in ("float", "int"):
        text = f"{_setting(lv['low'])} – {_setting(lv['high'])}"
        if lv.get("step"):
            text += f", step {_setting(lv['step'])}"
        elif kind == "int":
            text += ", whole numbers"
        return text
    if kind == "options":
        return " | ".join(f"{name}: {_case_keys(keys)}" for name, keys in lv["options"].items())
    return ", ".join(_setting(v) for v in lv.get("choices", []))


def _evaluations_flag(population: int, generations: int, spec_population: int) -> int:
    """An ``--evaluations`` value that makes the same population and generations as the stored run (the
    search uses min(population, evaluations // 2) packages a generation, ceil(evaluations / population)
    generations)."""
    for e in range(population * generations, max(1, population * (generations - 1)), -1):
        p = max(2, min(spec_population, e // 2))
        if (p, math.ceil(e / p)) == (population, generations):
            return e
    return population * generations


def reproduce_command(opt: OptimisationStore) -> str:
    """The command that reruns this optimisation (from the project folder); the results do not depend on
    the engine or the number of workers."""
    from experiments.optimise import OptimiseSpec

    r, m = opt.result, opt.manifest
    raw = m.get("spec") or {}
    spec_pop = int(raw.get("population", OptimiseSpec.model_fields["population"].default))
    evals = _evaluations_flag(int(r["population"]), int(r["generations"]), spec_pop)
    parts = ["python run.py optimise", str(r.get("spec_path") or m.get("spec_path")), f"--evaluations {evals}",
             f"--replications {int(r['replications'])}", f"--days {float(r['days']):g}"]
    sessions = (m.get("timings") or {}).get("sessions") or []
    engine = str(sessions[-1].get("engine", "")) if sessions else ""
    if engine.startswith("dask"):
        parts.append("--engine dask")
        if "(" in engine and "tcp://" in engine:
            parts.append(f"--scheduler {engine.split('(', 1)[1].rstrip(')')}")
    if sessions and sessions[-1].get("workers"):
        parts.append(f"--workers {int(sessions[-1]['workers'])}")
    parts.append(f"--out {opt.root}")
    return " ".join(parts)


def _what_was_run(opt: OptimisationStore) -> Section:
    r, m = opt.result, opt.manifest
    raw = m.get("spec") or {}
    sec = _section("what-was-run")
    refs = list(opt.reference_ids)
    ref_files = raw.get("references") or {}
    timings = m.get("timings") or {}
    sessions = timings.get("sessions") or []
    engines = sorted({str(s.get("engine")) for s in sessions if s.get("engine")})
    workers = sorted({int(s["workers"]) for s in sessions if s.get("workers")})
    runs = opt.runs
    n_ok = int((runs["status"] == "ok").sum()) if runs is not None else None
    n_failed = int((runs["status"] != "ok").sum()) if runs is not None else None
    opt_m = m.get("optimisation") or {}
    stress_front = int(raw.get("stress_front", 8))
    n_search = int((opt.objectives["kind"] == "search").sum())
    facts = [
        f"Optimisation **{r['name']}** from `{r.get('spec_path')}` (spec hash {str(r.get('spec_hash', ''))[:12]})"
        + (f": {raw['description'].strip()}" if raw.get("description") else ""),
        f"Store: `{opt.root}`",
        f"Base scenario (today's platform, the levers are applied to it): `{raw.get('base', '?')}` (relative to "
        "the spec)",
        "References, evaluated on the same seeds: " + "; ".join(
            f"**{n}**" + (f" (`{ref_files[n]}`)" if n in ref_files else "")
            + (" — today: costs are compared with it" if n == r["today"] else "")
            + (" — the package to beat" if n == r["compare"] else "") for n in refs),
        f"Search: Optuna's NSGA-II, {r['generations']} generation(s) of {r['population']} packages = "
        f"{r['evaluations']} packages proposed ({n_search} evaluated), besides the {len(refs)} reference(s)",
        f"Replications: {r['replications']} per package and case, paired by seed (common random numbers: "
        "replication k runs with the same seed in every package)"
        + (f"; replication seeds {', '.join(map(str, m.get('replication_seeds', [])))}"
           if m.get("replication_seeds") else ""),
        f"Simulated days: {float(r['days']):g} measured after a warm-up of {float(r['warmup_days']):g} day(s); "
        f"costs are paid staff-hours over the measured days, full-time equivalents (FTE) at "
        f"{FTE_HOURS_PER_WEEK:g} hours a week",
        f"Master seed {r['seed']}; each generation's sampler is seeded with SeedSequence([seed, generation])",
        "Cases: " + "; ".join(
            f"**{c['name']}** ({_case_keys(c['set'])}) — " + ("searched on" if c["search"] else "stress test")
            + _shock_note(c["set"], float(r["warmup_days"]) + float(r["days"])) for c in r["cases"]),
        ("Robust search: every objective is aggregated over the cases as " + _aggregate_words(opt)
         if opt.robust else
         f"After the search the references, the chosen package and up to {stress_front} packages of the front "
         "(spread over the cost) were stress-tested in the other cases" if opt.stress_cases else
         "No stress test: the spec names only the case the search used"),
        f"Re-check: the chosen package and '{r['compare']}' re-run on {len(opt_m.get('fresh_seeds', []))} fresh "
        "seed(s) (the winner's curse)",
        "Runs: " + (f"{n_ok + n_failed} — {n_ok} finished, {n_failed} failed" if runs is not None else "unknown")
        + (f"; wall time {float(timings['wall_s']):,.0f} s" if timings.get("wall_s") is not None else "")
        + (f" (run time summed over workers {float(timings['run_wall_s']):,.0f} s)"
           if timings.get("run_wall_s") is not None else "")
        + (f"; engine {', '.join(engines)}" if engines else "")
        + (f"; {', '.join(map(str, workers))} worker(s)" if workers and not any("worker" in e for e in engines)
           else "")
        + (f"; {len(sessions)} sessions (resumed)" if len(sessions) > 1 else ""),
        f"Code: git commit {m.get('git_commit') or 'unknown'}; created {m.get('created', 'unknown')}",
    ]
    sec.blocks.append(Bullets(facts))
    rows = []
    for lv in r["levers"]:
        keys = ", ".join(sorted({k for opt_keys in lv["options"].values() for k in opt_keys})) \
            if lv["kind"] == "options" else lv.get("key", "")
        meaning = "; ".join(d for d in dict.fromkeys(_key_description(k) for k in keys.split(", ") if k) if d)
        rows.append([lv["name"], keys, lv["kind"], _lever_range(lv), meaning])
    sec.blocks.append(Table(["lever", "scenario key(s)", "kind", "range or choices", "meaning"], rows,
                            numeric_from=99, caption="The levers the search may pull; every other setting is the "
                            "base scenario's."))
    cons = {c["kpi"]: c for c in opt.constraints}
    rows = []
    for k in dict.fromkeys([*opt.objective_kpis, *cons]):
        d = opt.directions.get(k)
        c = cons.get(k)
        rows.append([k, kpi_unit(k), d or "–",
                     (target_text(c) + (" on the lower end of the 95% CI" if c.get("at_least") is not None
                                        else " on the upper end of the 95% CI")) if c else "–"])
    sec.blocks.append(Table(["KPI", "unit", "objective", "target (constraint)"], rows, numeric_from=99,
                            caption="Objectives (the front trades these off) and targets (a package meets a target "
                            "when the pessimistic end of its 95% interval over replications clears it)."))
    sec.blocks.append(Para("Reproduce (from the project folder; the front does not depend on the engine or the "
                           f"number of workers): `{reproduce_command(opt)}`"))
    if raw:
        sec.blocks.append(Code(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True).strip(),
                               summary="The optimisation spec as run (command-line overrides are listed above)"))
    return sec


def _outcome_words(opt: OptimisationStore, cand: int, case: str) -> str:
    kpis = list(dict.fromkeys([*opt.outcome_kpis, *(c["kpi"] for c in opt.constraints)]))
    return "; ".join(f"{_short(k)} {_interval_words(opt.stat(cand, case, k), k)}" for k in kpis)


def _cost_words(opt: OptimisationStore, cand: int) -> str:
    days = opt.days
    cost, today = opt.cost(cand), opt.cost(opt.today_id)
    text = f"it costs {_hours(cost)} over the {days:g} measured days ({_fte_text(cost, days)})"
    if np.isfinite(today):
        diff = cost - today
        if diff == 0:
            text += f" — the same as today ('{opt.result['today']}')"
        else:
            text += (f" — {_hours(abs(diff))} ({fte(abs(diff), days):,.1f} FTE) {'more' if diff > 0 else 'less'} "
                     f"than today ('{opt.result['today']}': {_hours(today)}, {_fte_text(today, days)})")
    return text


def _stress_words(opt: OptimisationStore, cand: int) -> list[str]:
    out = []
    for case in opt.stress_cases:
        keys = next(c["set"] for c in opt.result["cases"] if c["name"] == case)
        checks = check_targets(opt, cand, case)
        if checks is None:
            out.append(f"Under **{case}** ({_case_keys(keys)}) it was not evaluated (failed runs?).")
            continue
        missed = [c for c in checks if not c.met]
        refs = []
        for name, rid in opt.reference_ids.items():
            rc = check_targets(opt, rid, case)
            if rc is not None:
                n = sum(not c.met for c in rc)
                refs.append(f"'{name}' {'meets every target' if n == 0 else f'misses {n} of {len(rc)}'}")
        verdict = ("it meets every target" if not missed
                   else "it " + "; ".join(c.words() for c in missed))
        if not checks:
            verdict = "there are no targets to judge; " + _outcome_words(opt, cand, case)
        out.append(f"Under **{case}** ({_case_keys(keys)}) {verdict}"
                   + (f" (there, {', '.join(refs)})" if refs and checks else "") + ".")
    return out


def reading(opt: OptimisationStore) -> list[str]:
    """The plain-language findings: the chosen package, its cost against today, its outcomes with
    intervals, the stress cases, the comparison with the reference to beat, and what limits the reading."""
    r = opt.result
    out: list[str] = []
    chosen = opt.chosen
    distinct = _distinct(opt.objectives)
    n_search = int(distinct["evaluated"].sum())
    n_feasible = int(distinct["feasible"].sum())
    search_case = opt.search_cases[0] if len(opt.search_cases) == 1 else None
    targets = " and ".join(target_text(c) for c in opt.constraints) or "no targets"
    if chosen is None:
        out.append("No package of the search was evaluated (every run failed?), so there is nothing to choose.")
    elif r["any_feasible"]:
        out.append(f"The cheapest package that meets the targets ({targets}, each judged on the pessimistic end "
                   f"of its 95% interval) is **{opt.label(chosen)}** (#{chosen}): {opt.lever_text(chosen)}. "
                   f"{_upper_first(_cost_words(opt, chosen))}.")
        if search_case:
            out.append(f"Its outcomes in the {search_case} case: {_outcome_words(opt, chosen, search_case)}; "
                       f"{n_feasible} of the {n_search} distinct packages evaluated meet every target.")
    else:
        checks = check_targets(opt, chosen, search_case) if search_case else worst_case_targets(opt, chosen)
        missed = "; ".join(c.words() for c in (checks or []) if not c.met)
        met = [c for c in (checks or []) if c.met]
        out.append(f"**No package meets every target** ({targets}, each judged on the pessimistic end of its 95% "
                   f"interval) among the {n_search} distinct packages evaluated. The one with the smallest total shortfall is "
                   f"**{opt.label(chosen)}** (#{chosen}): {opt.lever_text(chosen)}. "
                   + (f"{'At its worst over the cases it' if not search_case else 'It'} {missed}" if missed else "")
                   + (f"; it {', '.join(c.words() for c in met)}" if met else "") + ". "
                   + f"{_upper_first(_cost_words(opt, chosen))}.")
        if search_case:
            out.append(f"Its outcomes in the {search_case} case: {_outcome_words(opt, chosen, search_case)}.")
    if chosen is not None and opt.robust:
        out.append("The search was robust: each objective is " + _aggregate_words(opt) + " and the targets must "
                   "hold in every case; per case: " + " | ".join(
                       f"**{c}**: {_outcome_words(opt, chosen, c)}" for c in opt.cases) + ".")
    if chosen is not None and opt.stress_cases:
        out += _stress_words(opt, chosen)
    elif chosen is not None and not opt.robust:
        out.append("The search used one demand case only and the spec names no other, so the package was not "
                   "stress-tested.")
    beat = [int(b) for b in r.get("beats_compare") or []]
    comp = r["compare"]
    if beat:
        beat = sorted(beat, key=lambda b: (opt.cost(b), b))
        cheapest = beat[0]
        saved = opt.cost(opt.compare_id) - opt.cost(cheapest)
        feas = [b for b in beat if opt.row(b).get("feasible")]
        out.append(f"{len(beat)} package(s) are no worse than '{comp}' on every objective (by the means) and "
                   f"cheaper: {', '.join(opt.label(b) for b in beat[:8])}{' …' if len(beat) > 8 else ''}; the "
                   f"cheapest, {opt.label(cheapest)}, saves {_hours(saved)} ({fte(saved, opt.days):,.1f} FTE)"
                   + (f"; {len(feas)} of them also meet every target." if opt.constraints else "."))
    else:
        out.append(f"No evaluated package (the front included) is no worse than '{comp}' on every objective at a "
                   "lower cost: beating it on cost means giving up some outcome.")
    rc = (r.get("recheck") or {}).get("kpis") or {}
    if chosen is not None and rc:
        fresh_checks = check_targets(opt, chosen, search_case, seeds="fresh") if search_case else None
        if fresh_checks:
            miss = [c for c in fresh_checks if not c.met]
            out.append(f"On {int(next(iter(rc.values())).get('fresh', {}).get('n', 0)) or 'fresh'} fresh seeds "
                       "(not the ones it was chosen on) it "
                       + ("still meets every target" if not miss else "; ".join(c.words() for c in miss))
                       + " — see the winner's curse below.")
    reps = int(r["replications"])
    if reps < 5:
        out.append(f"With {reps} replications per package the 95% intervals are wide (a t interval with {reps - 1} "
                   "degree(s) of freedom), so the pessimistic ends that decide the targets sit far below the means; "
                   "more replications could let more packages meet the targets.")
    return out


# ---------------------------------------------------------------------------------------------- figures
def _percent_axis(axis: Any, kpi: str = "") -> None:
    """Shares as %, differences of shares (unit "share points ...") as percentage points."""
    unit = " pp" if kpi_unit(kpi).startswith("share points") else "%"
    axis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _p: f"{100 * v:.4g}{unit}"))


def _marker_box(ax: Any, x: float, y: float, size_pt: float) -> Bbox:
    px, py = ax.transData.transform((x, y))
    r = size_pt * ax.figure.dpi / 72.0 / 2.0 + 1.0
    return Bbox.from_extents(px - r, py - r, px + r, py + r)


def place_labels(ax: Any, items: Sequence[tuple[float, float, str]], obstacles: Sequence[Bbox] = (),
                 fontsize: float = 8.0) -> list[str]:
    """Name points next to them without overlaps: for each (x, y, text) try positions around the point,
    measure the drawn extent of the text with the figure's renderer, and keep the first that lies inside the
    axes and overlaps neither an earlier name nor an obstacle (e.g. the labelled markers). The names are
    left out of the layout, so they cannot move the axes after they were placed. Returns the texts that found
    no place (the legend still identifies those markers)."""
    fig = ax.figure
    fig.draw_without_rendering()  # settle the layout: positions in display units are final from here on
    axbox = ax.get_window_extent()
    placed: list[Bbox] = list(obstacles)
    offsets = [(9, 5), (9, -5), (-9, 5), (-9, -5), (0, 11), (0, -11), (14, 16), (-14, 16), (14, -16),
               (-14, -16), (24, 0), (-24, 0), (0, 24), (0, -24), (30, 26), (-30, 26), (30, -26), (-30, -26)]
    left: list[str] = []
    for x, y, text in items:
        if not (np.isfinite(x) and np.isfinite(y)):
            left.append(text)
            continue
        for dx, dy in offsets:
            ha = "left" if dx > 0 else "right" if dx < 0 else "center"
            va = "bottom" if dy > 0 else "top" if dy < 0 else "center"
            ann = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize,
                              ha=ha, va=va, color="0.1", zorder=6,
                              bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none",
                                    "alpha": 0.8})
            ann.set_in_layout(False)
            box = ann.get_window_extent()  # measured by the figure's renderer
            padded = box.expanded(1.0, 1.0).padded(2.0)
            inside = (box.x0 >= axbox.x0 and box.x1 <= axbox.x1 and box.y0 >= axbox.y0 and box.y1 <= axbox.y1)
            if inside and not any(padded.overlaps(b) for b in placed):
                placed.append(box)
                break
            ann.remove()
        else:
            left.append(text)
    return left


def _legend_below(fig: Figure, handles: list, ncol: int = 3) -> None:
    fig.legend(handles=handles, loc="outside lower center", ncol=min(ncol, len(handles)), frameon=False,
               fontsize=8, handlelength=2.0)


def _ref_style(opt: OptimisationStore) -> dict[int, tuple[str, str]]:
    return {rid: (REFERENCE_MARKERS[i % len(REFERENCE_MARKERS)], REFERENCE_COLORS[i % len(REFERENCE_COLORS)])
            for i, rid in enumerate(opt.reference_ids.values())}


def front_figure(opt: OptimisationStore, kpi: str) -> Figure:
    """Cost (paid staff-hours over the measured days; full-time equivalents on the top axis) against one
    outcome: every evaluated package as a light point (circle: meets every target; cross: misses one), the
    front in dark, the references and the chosen package marked and named, and the target as a dashed line
    where the outcome has one. Targets are judged on the pessimistic end of the 95% interval, so a point on
    the good side of the line can still miss it. The chosen package and the references carry their 95%
    interval over replications (one search case) or show the aggregate over the cases (robust search)."""
    o = opt.objectives
    search = o[(o["kind"] == "search") & o["evaluated"]]
    if search.empty:
        raise FigureSkipped("no package of the search was evaluated")
    xcol, ycol = "obj.cost_hours", f"obj.{kpi}"
    if ycol not in o:
        raise FigureSkipped(f"the objectives hold no '{kpi}'")
    days = opt.days
    case = opt.search_cases[0] if len(opt.search_cases) == 1 else None
    chosen = opt.chosen
    styles = _ref_style(opt)
    with styled():
        fig = Figure(figsize=(6.4, 4.9), layout="constrained", facecolor="white")
        ax = fig.add_subplot()
        handles = []
        for on_front, color, size, what in ((False, OTHER_COLOR, 26, "other package"),
                                            (True, FRONT_COLOR, 46, "on the front")):
            for ok, marker, tail in ((True, "o", "meets every target"), (False, "X", "misses a target")):
                d = search[(search["on_front"] == on_front) & (search["feasible"] == ok)]
                if d.empty:
                    continue
                ax.scatter(d[xcol], d[ycol], s=size, marker=marker, color=color, alpha=0.9 if on_front else 0.55,
                           edgecolors="0.15" if on_front else "none", linewidths=0.5, zorder=3 if on_front else 2)
                handles.append(Line2D([], [], marker=marker, linestyle="none", color=color,
                                      markeredgecolor="0.15" if on_front else color, markersize=7 if on_front else 5.5,
                                      label=f"{what}, {tail}" if opt.constraints else what))
        labels: list[tuple[float, float, str]] = []
        obstacles: list[tuple[float, float, float]] = []

        def interval(cand: int) -> np.ndarray | None:
            s = opt.stat(cand, case, kpi) if case else None
            if s is None or not (np.isfinite(s.ci_low) and np.isfinite(s.ci_high)):
                return None
            lo_b, hi_b = bounds(kpi)
            lo, hi = max(float(s.ci_low), lo_b), min(float(s.ci_high), hi_b)
            m = float(opt.row(cand)[ycol])
            return np.array([[max(m - lo, 0.0)], [max(hi - m, 0.0)]])

        for rid, (marker, color) in styles.items():
            row = opt.row(rid)
            if not row.get("evaluated"):
                continue
            x, y = float(row[xcol]), float(row[ycol])
            ax.errorbar([x], [y], yerr=interval(rid), fmt=marker, color=color, markersize=9, markeredgecolor="0.1",
                        markeredgewidth=0.7, ecolor=color, elinewidth=1.1, capsize=3, zorder=5)
            handles.append(Line2D([], [], marker=marker, linestyle="none", color=color, markeredgecolor="0.1",
                                  markersize=8, label=f"reference '{opt.label(rid)}'"))
            labels.append((x, y, opt.label(rid)))
            obstacles.append((x, y, 10))
        if chosen is not None:
            row = opt.row(chosen)
            x, y = float(row[xcol]), float(row[ycol])
            ax.errorbar([x], [y], yerr=interval(chosen), fmt="*", color=CHOSEN_COLOR, markersize=17,
                        markeredgecolor="0.1", markeredgewidth=0.7, ecolor=CHOSEN_COLOR, elinewidth=1.3, capsize=3,
                        zorder=6)
            handles.append(Line2D([], [], marker="*", linestyle="none", color=CHOSEN_COLOR, markeredgecolor="0.1",
                                  markersize=12, label=f"chosen: {opt.label(chosen)}"))
            labels.insert(0, (x, y, f"chosen {opt.label(chosen)}"))
            obstacles.insert(0, (x, y, 17))
        con = next((c for c in opt.constraints if c["kpi"] == kpi), None)
        if con is not None:
            level = float(con["at_least"] if con.get("at_least") is not None else con["at_most"])
            ax.axhline(level, color=TARGET_COLOR, linestyle="--", linewidth=1.0, zorder=1)
            end = "lower" if con.get("at_least") is not None else "upper"
            handles.append(Line2D([], [], color=TARGET_COLOR, linestyle="--",
                                  label=f"target {target_text(con)} (on the {end} end of the 95% CI)"))
        ax.set_xlabel(f"cost: paid staff-hours over {days:g} measured days")
        ax.set_ylabel(f"{kpi_label(kpi)} ({kpi_unit(kpi)})"
                      + (f", {_aggregate_short(opt)}" if opt.robust else ""))
        ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _p: f"{v:,.0f}"))
        if is_share(kpi):
            _percent_axis(ax.yaxis, kpi)
        ax.margins(x=0.12, y=0.14)
        per_fte = FTE_HOURS_PER_WEEK * days / 7.0 if days > 0 else 1.0
        top = ax.secondary_xaxis("top", functions=(lambda h: h / per_fte, lambda f: f * per_fte))
        top.set_xlabel(f"full-time equivalents ({FTE_HOURS_PER_WEEK:g} h a week)")
        direction = opt.directions.get(kpi, "maximise")
        ax.set_title(f"{_short(kpi).capitalize()} against cost ({'higher' if direction == 'maximise' else 'lower'} "
                     "is better, left is cheaper)", fontsize=10)
        _legend_below(fig, handles, ncol=2)
        fig.draw_without_rendering()
        boxes = [_marker_box(ax, x, y, s) for x, y, s in obstacles]
        place_labels(ax, labels, boxes)
    return fig


def _aggregate_short(opt: OptimisationStore) -> str:
    agg = opt.result.get("aggregate") or {}
    return f"{float(agg.get('q', 0.1)):g}-quantile over the cases" if agg.get("aggregate") == "quantile" \
        else "worst case over the cases"


def robustness_figure(opt: OptimisationStore) -> Figure:
    """The chosen package and the references in every demand case, on each targeted KPI (the outcome
    objectives when there are no targets): mean and 95% interval over replications, the target as a dashed
    line (judged on the interval's pessimistic end). Cases the search used are marked "(search)"."""
    chosen = opt.chosen
    if chosen is None:
        raise FigureSkipped("no package was chosen")
    kpis = [c["kpi"] for c in opt.constraints] or opt.outcome_kpis
    cons = {c["kpi"]: c for c in opt.constraints}
    packages = [chosen, *[rid for rid in opt.reference_ids.values() if rid != chosen]]
    cases = [c for c in opt.cases if any(opt.stat(p, c, k) is not None for p in packages for k in kpis)]
    if not cases:
        raise FigureSkipped("the chosen package and the references have no evaluations")
    styles = _ref_style(opt)
    names = [f"{c} (search)" if c in opt.search_cases else c for c in cases]
    with styled():
        fig = Figure(figsize=(3.4 * len(kpis) + 1.4, 1.2 + 0.75 * len(cases) + 1.0), layout="constrained",
                     facecolor="white")
        axes = fig.subplots(1, len(kpis), sharey=True, squeeze=False)[0]
        step = 0.7 / max(1, len(packages))
        for ax, kpi in zip(axes, kpis, strict=True):
            for j, p in enumerate(packages):
                marker, color = ("*", CHOSEN_COLOR) if p == chosen else styles[p]
                for i, case in enumerate(cases):
                    s = opt.stat(p, case, kpi)
                    if s is None:
                        continue
                    m = float(s.mean)
                    lo_b, hi_b = bounds(kpi)
                    lo = max(float(s.ci_low), lo_b) if np.isfinite(s.ci_low) else m
                    hi = min(float(s.ci_high), hi_b) if np.isfinite(s.ci_high) else m
                    ax.errorbar([m], [i - 0.35 + step * (j + 0.5)], xerr=[[max(m - lo, 0)], [max(hi - m, 0)]],
                                fmt=marker, color=color, markersize=12 if p == chosen else 7, markeredgecolor="0.1",
                                markeredgewidth=0.6, ecolor=color, elinewidth=1.1, capsize=3, zorder=4)
            if kpi in cons:
                c = cons[kpi]
                ax.axvline(float(c["at_least"] if c.get("at_least") is not None else c["at_most"]),
                           color=TARGET_COLOR, linestyle="--", linewidth=1.0, zorder=1)
            ax.set_title(_short(kpi).capitalize() + (f" ({target_text(cons[kpi])})" if kpi in cons else ""),
                         fontsize=9.5)
            ax.set_xlabel(kpi_unit(kpi))
            if is_share(kpi):
                _percent_axis(ax.xaxis, kpi)
            ax.set_yticks(range(len(cases)), names)
            ax.set_ylim(len(cases) - 0.5, -0.5)
            ax.margins(x=0.15)
        axes[0].set_ylabel("demand case")
        handles = [Line2D([], [], marker="*", linestyle="none", color=CHOSEN_COLOR, markeredgecolor="0.1",
                          markersize=11, label=f"chosen {opt.label(chosen)}")]
        handles += [Line2D([], [], marker=styles[p][0], linestyle="none", color=styles[p][1], markeredgecolor="0.1",
                           markersize=7, label=f"reference '{opt.label(p)}'") for p in packages[1:]]
        if cons:
            handles.append(Line2D([], [], color=TARGET_COLOR, linestyle="--", label="target"))
        _legend_below(fig, handles, ncol=4)
        fig.suptitle("The chosen package and the references in every case (mean, 95% CI over replications)",
                     fontsize=10.5)
    return fig


def _distinct(objectives: pd.DataFrame) -> pd.DataFrame:
    """The search's packages, each once: a package proposed again (``same_as`` ≥ 0) is left out."""
    search = objectives[objectives["kind"] == "search"]
    return search[search["same_as"] < 0] if "same_as" in search else search


def convergence_table(opt: OptimisationStore) -> pd.DataFrame:
    """Per generation: packages proposed and evaluated, how many meet every target, the cheapest feasible
    cost so far (staff-hours), the smallest total shortfall so far (sum of the target violations, each
    relative to its target, as the search's choice rule) and the size of the front of the packages so far (the
    search's rule: the non-dominated feasible packages, or all when none is feasible; a package proposed again
    counts once)."""
    from experiments.optimise import pareto_mask

    o = opt.objectives
    search = o[o["kind"] == "search"]
    cols = [f"obj.{k}" for k in opt.objective_kpis]
    signs = np.array([1.0 if opt.directions[k] == "minimise" else -1.0 for k in opt.objective_kpis])
    cons = [f"con.{c['kpi']}" for c in opt.constraints]
    rows = []
    for g in sorted(search["generation"].unique()):
        gen = search[search["generation"] == g]
        sofar = search[(search["generation"] <= g) & search["evaluated"]]
        if "same_as" in sofar:
            sofar = sofar[sofar["same_as"] < 0]
        feas = sofar[sofar["feasible"]]
        pool = feas if len(feas) else sofar
        front = int(pareto_mask(pool[cols].to_numpy(float), signs).sum()) if len(pool) else 0
        scale = [max(abs(c["at_least"] if "at_least" in c else c["at_most"]), 1e-9) for c in opt.constraints]
        short = ((sofar[cons].clip(lower=0) / scale).sum(axis=1) if cons and len(sofar)
                 else pd.Series(dtype=float))
        rows.append({"generation": int(g), "proposed": len(gen), "evaluated": int(gen["evaluated"].sum()),
                     "feasible": int(gen["feasible"].sum()),
                     "best_cost": float(feas["obj.cost_hours"].min()) if len(feas) else math.nan,
                     "gen_best_cost": float(gen.loc[gen["feasible"], "obj.cost_hours"].min())
                     if gen["feasible"].any() else math.nan,
                     "shortfall": float(short.min()) if len(short) else math.nan, "front": front})
    return pd.DataFrame(rows)


def convergence_figure(opt: OptimisationStore) -> Figure:
    """Per generation: the cheapest package so far that meets every target (staff-hours; when none does
    yet, the smallest total shortfall of the targets so far, relative to the targets) and the size of the front of
    the packages evaluated so far."""
    t = convergence_table(opt)
    if t.empty:
        raise FigureSkipped("no generation was evaluated")
    gens = t["generation"].to_numpy() + 1
    with styled():
        fig = Figure(figsize=(8.4, 3.3), layout="constrained", facecolor="white")
        a1, a2 = fig.subplots(1, 2)
        if t["best_cost"].notna().any():
            a1.plot(gens, t["best_cost"], marker="o", color=FRONT_COLOR, label="cheapest feasible so far")
            a1.scatter(gens, t["gen_best_cost"], marker="x", color=OTHER_COLOR, zorder=3,
                       label="cheapest feasible of the generation")
            a1.set_ylabel("paid staff-hours")
            a1.set_title("Cheapest package meeting every target", fontsize=10)
            a1.yaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _p: f"{v:,.0f}"))
            a1.legend(fontsize=7.5, loc="best")
        else:
            a1.plot(gens, t["shortfall"], marker="o", color=CHOSEN_COLOR)
            a1.set_ylabel("smallest total shortfall (relative)")
            a1.set_title("No package meets every target yet:\nsmallest shortfall so far", fontsize=10)
        a2.plot(gens, t["front"], marker="s", color=FRONT_COLOR)
        a2.set_ylabel("packages on the front so far")
        a2.set_title("Size of the front", fontsize=10)
        for ax in (a1, a2):
            ax.set_xlabel("generation")
            ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
        a2.yaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
    return fig


def _doc(func: Any) -> str:
    return " ".join(line.strip() for line in (func.__doc__ or "").strip().splitlines() if line.strip())


def optimisation_figures(opt: OptimisationStore) -> dict[str, list[FigureOutput]]:
    """Every figure of the report by section id: one front figure per outcome objective, the robustness
    figure and the convergence figure (a skip reason in place of a figure the store cannot support)."""
    def make(name: str, title: str, func: Any, *args: Any, caption: str | None = None) -> FigureOutput:
        try:
            return FigureOutput(name, title, caption or _doc(func), figure=func(opt, *args))
        except FigureSkipped as exc:
            return FigureOutput(name, title, caption or _doc(func), skipped=str(exc))

    outcomes = opt.outcome_kpis
    return {
        "front": [make(f"front_{k}", f"{_upper_first(_short(k))} against cost", front_figure, k,
                       caption=None if i == 0 else f"The {kpi_label(k)} against cost, drawn as the first figure.")
                  for i, k in enumerate(outcomes)],
        "robustness": [make("robustness", "The chosen package and the references in every case", robustness_figure)],
        "convergence": [make("convergence", "Convergence of the search", convergence_figure)],
    }


def _pictures(figs: Sequence[FigureOutput], dpi: int) -> list[Any]:
    out: list[Any] = []
    skipped = []
    for f in figs:
        if f.figure is None:
            skipped.append(f"{f.title}: {f.skipped}")
        else:
            out.append(Picture(f.name, f.title, f.caption, to_png(f.figure, dpi=dpi)))
    if skipped:
        out += [Para("Not drawn:"), Bullets(skipped)]
    return out


# ---------------------------------------------------------------------------------------------- tables
def _value_cells(opt: OptimisationStore, cand: int, kpis: Sequence[str]) -> list[str]:
    """Each KPI's mean and 95% interval on the search seeds (one search case), or the aggregate (robust)."""
    cells = []
    case = opt.search_cases[0] if len(opt.search_cases) == 1 else None
    row = opt.row(cand)
    for k in kpis:
        if case is not None:
            cells.append(_cell(opt.stat(cand, case, k), k))
        elif f"obj.{k}" in row:
            cells.append(describe_value(float(row[f"obj.{k}"]), k) + f"\n({_aggregate_short(opt)})")
        else:
            cells.append(describe_value(float(row.get(f"bound.{k}", math.nan)), k) + "\n(pessimistic bound)")
    return cells


def _front_section(opt: OptimisationStore, figs: Sequence[FigureOutput], dpi: int) -> Section:
    sec = _section("front")
    r = opt.result
    front = sorted((int(i) for i in r["front"]), key=lambda i: (opt.cost(i), i))
    n_search = int(_distinct(opt.objectives)["evaluated"].sum())
    pool = "packages that meet every target" if r["any_feasible"] else \
        "packages (none meets every target, so all are compared)"
    sec.blocks.append(Para(
        f"The front: the {len(front)} of {n_search} distinct packages evaluated that no other beats on every objective at "
        f"once (among the {pool}); moving along it buys outcomes with staff-hours. Each figure shows the cost "
        "against one outcome, so a front package can look beaten in one projection: it wins on another "
        "objective." + (" Objectives are " + _aggregate_words(opt) + "." if opt.robust else "")))
    sec.blocks += _pictures(figs, dpi)
    levers = [lv["name"] for lv in r["levers"]]
    kpis = list(dict.fromkeys([*opt.outcome_kpis, *(c["kpi"] for c in opt.constraints)]))
    header = ["package", *levers, "cost (staff-hours)", *[f"{_short(k)} ({'%' if is_share(k) else kpi_unit(k)})"
                                                          for k in kpis], "meets the targets"]
    rows, strong = [], set()
    listed = list(front)
    chosen = opt.chosen
    if chosen is not None and chosen not in listed:
        listed.append(chosen)
    listed += list(opt.reference_ids.values())
    for cand in listed:
        lv = opt.levers(cand)
        checks = check_targets(opt, cand, opt.search_cases[0]) if len(opt.search_cases) == 1 else None
        row = opt.row(cand)
        feasible = bool(row.get("feasible"))
        missed = [c for c in (checks or []) if not c.met] if checks is not None else []
        if checks is None and not feasible:
            missed_names = [c["kpi"] for c in opt.constraints if float(row.get(f"con.{c['kpi']}", 0)) > 0]
            miss = ", ".join(_short(k) for k in missed_names)
        else:
            miss = ", ".join(_short(c.kpi) for c in missed)
        tag = opt.label(cand) + ("\nchosen" if cand == chosen else "") + \
            ("\nnot on the front" if cand == chosen and cand not in front else "") + \
            ("\nreference" if opt.candidates[cand]["kind"] == "reference" else "")
        cost = opt.cost(cand)
        rows.append([tag, *[_setting(lv[n]) if n in lv else "·" for n in levers],
                     f"{cost:,.0f}\n({_fte_text(cost, opt.days)})", *_value_cells(opt, cand, kpis),
                     "yes" if feasible else "no" + (f"\nmisses {miss}" if miss else "")])
        if cand == chosen:
            strong |= {(len(rows) - 1, j) for j in range(len(header))}
    sec.blocks.append(Table(header, rows, numeric_from=len(levers) + 1, strong=strong, caption=(
        "The front sorted by cost (the chosen package in bold), then the references (their own scenario files: "
        "· marks a lever they do not set). Mean and [95% t interval] over the replications on the search seeds "
        "(shown clipped to the values the KPI can take); "
        f"cost in paid staff-hours over {opt.days:g} measured days and in FTE ({FTE_HOURS_PER_WEEK:g} h a week). "
        "A package meets a target when the pessimistic end of the interval clears it.")))
    if opt.robust:
        sec.blocks.append(_per_case_table(opt, [*front[:12], *opt.reference_ids.values()]))
    return sec


def _per_case_table(opt: OptimisationStore, cands: Sequence[int]) -> Table:
    """Robust search: each package's outcomes per case (mean [95% CI]); the search aggregates these."""
    kpis = opt.outcome_kpis
    header = ["package", "case", *[_short(k) for k in kpis], "targets"]
    rows, strong = [], set()
    for cand in dict.fromkeys(cands):
        for case in opt.cases:
            checks = check_targets(opt, cand, case)
            miss = [c for c in checks or [] if not c.met]
            rows.append([opt.label(cand), case, *[_cell(opt.stat(cand, case, k), k) for k in kpis],
                         "–" if checks is None else "all met" if not miss else
                         "misses " + ", ".join(_short(c.kpi) for c in miss)])
            if cand == opt.chosen:
                strong |= {(len(rows) - 1, j) for j in range(len(header))}
    return Table(header, rows, numeric_from=2, strong=strong, caption=(
        "Robust search: the values per case that the objectives aggregate (" + _aggregate_words(opt) + "); "
        "mean and [95% t interval] over replications on the search seeds."))


def _robustness_section(opt: OptimisationStore, figs: Sequence[FigureOutput], dpi: int) -> Section:
    sec = _section("robustness")
    r = opt.result
    reg = pd.DataFrame(r.get("regret") or [])
    stressed = [int(i) for i in r.get("stressed") or []]
    if reg.empty or not stressed:
        sec.blocks.append(Para("No package was evaluated in more than the search's case, so there is no regret "
                               "to compute."))
        sec.blocks += _pictures(figs, dpi)
        return sec
    cases = [c for c in opt.cases if c in set(reg["case"])]
    what = ("the search used every case (robust search)" if opt.robust else
            f"the search used {', '.join(opt.search_cases)}; " + (
                f"{', '.join(opt.stress_cases)} {'is a stress case' if len(opt.stress_cases) == 1 else 'are stress cases'}"
                if opt.stress_cases else "there is no stress case"))
    sec.blocks.append(Para(
        f"Regret: in each case, how far a package falls behind the best of the {len(stressed)} stress-tested "
        "packages (the references, the chosen package and packages spread along the front) on each objective, in "
        f"the objective's unit (0: it is the best there). Cases: {what}. A package that is cheap in the search's "
        "case but far behind in another is fragile."))
    kpis = opt.objective_kpis
    order = sorted(stressed, key=lambda i: (opt.candidates[i]["kind"] != "reference", i != opt.chosen,
                                            opt.cost(i), i))
    header = ["package", "role", *[f"{_short(k)}: worst regret" for k in kpis]]
    rows, strong = [], set()
    for cand in order:
        row = [opt.label(cand), opt.role(cand)]
        for k in kpis:
            d = reg[(reg["candidate"] == cand) & (reg["kpi"] == k)].set_index("case")
            if d.empty:
                row.append("–")
                continue
            worst = d["regret"].idxmax()
            values = "; ".join(f"{c} {_num(float(d.loc[c, 'mean']), k)}" for c in cases if c in d.index)
            row.append(f"{_num(float(d.loc[worst, 'regret']), k, diff=True)} ({worst})\n{values}")
        rows.append(row)
        if cand == opt.chosen:
            strong |= {(len(rows) - 1, j) for j in range(len(header))}
    sec.blocks.append(Table(header, rows, numeric_from=2, strong=strong, caption=(
        "Per stress-tested package and objective: the worst regret over the cases (the case in brackets) and, "
        "beneath, the package's mean in each case on the search seeds. Cost in staff-hours; shares in "
        "percentage points. The full package × case × objective table is in optimisation.json (regret).")))
    if opt.constraints:
        header = ["package", "role", *cases]
        rows, strong = [], set()
        for cand in order:
            row = [opt.label(cand), opt.role(cand)]
            for case in cases:
                checks = check_targets(opt, cand, case)
                if checks is None:
                    row.append("–")
                    continue
                miss = [c for c in checks if not c.met]
                row.append("meets all" if not miss else f"misses {len(miss)} of {len(checks)}\n" + "; ".join(
                    f"{_short(c.kpi)} {describe_value(c.bound, c.kpi)} (short by {amount(c.violation, c.kpi)})"
                    for c in miss))
            rows.append(row)
            if cand == opt.chosen:
                strong |= {(len(rows) - 1, j) for j in range(len(header))}
        sec.blocks.append(Table(header, rows, numeric_from=2, strong=strong, caption=(
            "Whether each target holds in each case, judged on the pessimistic end of the 95% interval (targets: "
            + "; ".join(target_text(c) for c in opt.constraints) + "); beneath a miss, the pessimistic end and "
            "the shortfall.")))
    sec.blocks += _pictures(figs, dpi)
    return sec


def _num(value: float, kpi: str, diff: bool = False) -> str:
    if kpi == "cost_hours":
        return f"{value:,.0f}"
    if is_share(kpi):
        return f"{100 * value:.1f} pp" if diff else f"{100 * value:.1f}%"
    return format_value(value, kpi)


def _winners_curse_section(opt: OptimisationStore) -> Section:
    sec = _section("winners-curse")
    rc = opt.result.get("recheck")
    if not rc or not rc.get("kpis"):
        sec.blocks.append(Para("There is no re-check: no package was chosen, or its runs on fresh seeds failed."))
        return sec
    chosen, versus = int(rc["chosen"]), int(rc["versus"])
    cname, vname = opt.label(chosen), opt.label(versus)
    sec.blocks.append(Para(
        f"The search picks the best of many noisy packages, so on the seeds it was picked on the chosen package "
        f"looks better than it is (the winner's curse). The chosen package **{cname}** and '{vname}' were re-run on "
        "fresh seeds: per KPI, the paired difference chosen − "
        f"'{vname}' on the search seeds and on the fresh seeds (mean [95% CI]), the change fresh − search, and the "
        "shrinkage 1 − fresh/search of a lead the chosen package had on the search seeds (0: it held; 1: it was "
        "all noise; below 0: it grew)."))
    header = ["KPI", "search seeds: chosen − " + vname, "fresh seeds: chosen − " + vname, "fresh − search",
              "shrinkage of the lead", f"{cname}: search → fresh"]
    rows = []
    leads, shrunk, reversed_ = [], [], []
    for kpi, e in rc["kpis"].items():
        s, f = e.get("search"), e.get("fresh")

        def diff(x: dict | None, kpi: str = kpi) -> str:
            if not x:
                return "–"
            lo = math.nan if x.get("ci_low") is None else float(x["ci_low"])
            hi = math.nan if x.get("ci_high") is None else float(x["ci_high"])
            text = signed(float(x["diff"]), kpi)
            if np.isfinite(lo) and np.isfinite(hi) and hi > lo:
                text += f"\n[{signed(lo, kpi)}, {signed(hi, kpi)}]"
            return text

        lead = s is not None and _better(kpi, float(s["diff"]), opt)
        shrink = e.get("shrinkage")
        if lead and shrink is not None:
            shrink_text = f"{shrink:.0%}".replace("-", "−")
            leads.append(kpi)
            if shrink > 0:
                shrunk.append((kpi, shrink))
            if f is not None and not _better(kpi, float(f["diff"]), opt):
                reversed_.append(kpi)
        else:
            shrink_text = "n/a (no lead)"
        move = "–"
        if s is not None and f is not None:
            move = (f"{describe_value(float(s['chosen_mean']), kpi)} → {describe_value(float(f['chosen_mean']), kpi)}"
                    if kpi != "cost_hours" else f"{float(s['chosen_mean']):,.0f} → {float(f['chosen_mean']):,.0f}")
        rows.append([kpi, diff(s), diff(f), signed(float(e["fresh_minus_search"]), kpi)
                     if e.get("fresh_minus_search") is not None else "–", shrink_text, move])
    sec.blocks.append(Table(header, rows, numeric_from=1, caption=(
        "Paired differences over replications (replication k of both packages shares its seed); cost in "
        "staff-hours, shares in percentage points. The fresh seeds are new replication seeds of the search case(s)"
        + (" (all cases: robust search)" if opt.robust else "") + ".")))
    words = []
    if not leads:
        words.append(f"On the search seeds **{cname}** led '{vname}' on no KPI, so there is no lead to shrink; the "
                     "fresh seeds show whether its shortfalls hold.")
    else:
        held = [k for k in leads if k not in dict(shrunk)]
        words.append(f"On the search seeds **{cname}** led '{vname}' on {', '.join(_short(k) for k in leads)}. "
                     + (f"On fresh seeds the lead shrank on {', '.join(f'{_short(k)} ({v:.0%})' for k, v in shrunk)}"
                        if shrunk else "On fresh seeds the lead held or grew")
                     + (f"; it held or grew on {', '.join(_short(k) for k in held)}" if held and shrunk else "")
                     + (f"; it reversed on {', '.join(_short(k) for k in reversed_)}" if reversed_ else "") + ".")
    drift = [(k, float(e["chosen_fresh_minus_search"])) for k, e in rc["kpis"].items()
             if e.get("chosen_fresh_minus_search") is not None and k != "cost_hours"]
    worse = [(k, d) for k, d in drift if _better(k, d, opt) is False]
    if drift:
        words.append(f"{cname}'s own means, which the search selected on, moved from the search seeds to the fresh "
                     "ones by " + ", ".join(f"{_short(k)} {signed(d, k)}" for k, d in drift)
                     + (f": worse on {len(worse)} of {len(drift)} KPIs, the direction the winner's curse predicts."
                        if worse else ": none got worse."))
    case = opt.search_cases[0] if len(opt.search_cases) == 1 else None
    fresh = check_targets(opt, chosen, case, seeds="fresh") if case else None
    if fresh:
        miss = [c for c in fresh if not c.met]
        words.append(f"On the fresh seeds {cname} " + ("meets every target." if not miss else
                                                        "; ".join(c.words() for c in miss) + "."))
    n = max((int(x.get("n", 0)) for e in rc["kpis"].values() for x in (e.get("search"), e.get("fresh")) if x),
            default=0)
    if n and n < 5:
        words.append(f"With {n} paired replications these intervals are wide; a shrinkage inside them is not "
                     "distinguishable from noise.")
    sec.blocks.append(Para(" ".join(words)))
    return sec


def _convergence_section(opt: OptimisationStore, figs: Sequence[FigureOutput], dpi: int) -> Section:
    sec = _section("convergence")
    t = convergence_table(opt)
    if t.empty:
        sec.blocks.append(Para("No generation was evaluated."))
        return sec
    days = opt.days
    rows = [[str(int(r.generation) + 1), str(r.proposed), str(r.evaluated), str(r.feasible),
             f"{r.best_cost:,.0f}\n({_fte_text(r.best_cost, days)})" if np.isfinite(r.best_cost) else "none yet",
             f"{r.shortfall:.3g}" if np.isfinite(r.shortfall) else "–", str(r.front)]
            for r in t.itertuples(index=False)]
    sec.blocks.append(Table(["generation", "proposed", "evaluated", "meet every target",
                             "cheapest meeting every target so far (staff-hours)",
                             "smallest total shortfall so far", "front size so far"], rows, caption=(
        "The front size is the number of non-dominated packages among those evaluated up to that generation (the "
        "feasible ones when any is; a package proposed again counts once). The shortfall sums each target's "
        "violation at the pessimistic end relative to the target, as the search does when no package is "
        "feasible. A cost that still falls in the last "
        "generation means a larger budget (--evaluations) would likely find cheaper packages.")))
    last = t.iloc[-1]
    if len(t) > 1 and np.isfinite(last["best_cost"]):
        prev = t.iloc[-2]["best_cost"]
        if np.isfinite(prev) and prev > last["best_cost"]:
            sec.blocks.append(Para(f"The cheapest feasible cost still fell in the last generation (by "
                                   f"{_hours(prev - last['best_cost'])}): the search had not settled."))
    sec.blocks += _pictures(figs, dpi)
    return sec


# ---------------------------------------------------------------------------------------------- assembly
def build_optimisation_report(store_dir: str | Path | OptimisationStore, dpi: int = 110
                              ) -> tuple[str, list[Section]]:
    """The report's title and sections (blocks of text, tables and rendered figures) for an optimisation
    store; StoreError when the store is not a finished optimisation."""
    opt = store_dir if isinstance(store_dir, OptimisationStore) else read_optimisation_store(store_dir)
    figs = optimisation_figures(opt)
    sections = [
        _what_was_run(opt),
        _section("reading", [Bullets(reading(opt))]),
        _front_section(opt, figs["front"], dpi),
        _robustness_section(opt, figs["robustness"], dpi),
        _winners_curse_section(opt),
        _convergence_section(opt, figs["convergence"], dpi),
    ]
    return f"Wenzheng optimisation report: {opt.result['name']}", sections


def write_optimisation_report(store_dir: str | Path, out_dir: str | Path | None = None, dpi: int = 110
                              ) -> dict[str, Path]:
    """Write ``report.html``, ``report.md`` and ``figures/*.png`` into ``out_dir`` (default: the store
    folder). Returns ``{"html": Path, "md": Path, "figures": Path}``. StoreError for a store that is not a
    finished optimisation; ReportError when the output cannot be written."""
    opt = read_optimisation_store(store_dir)
    target = Path(out_dir) if out_dir is not None else opt.root
    title, sections = build_optimisation_report(opt, dpi=dpi)
    return write_pages(target, title, sections)


def figure_label_overlaps(store_dir: str | Path | OptimisationStore) -> dict[str, list[tuple[str, str]]]:
    """For checks: every drawn figure's overlapping text labels (:func:`analysis.figures.label_overlaps`)."""
    opt = store_dir if isinstance(store_dir, OptimisationStore) else read_optimisation_store(store_dir)
    return {f.name: label_overlaps(f.figure) for figs in optimisation_figures(opt).values() for f in figs
            if f.figure is not None}


def section_ids() -> list[str]:
    """The HTML ids of the report's sections, in order."""
    return [sid for sid, _ in SECTIONS]


__all__ = ["SECTIONS", "OptimisationStore", "build_optimisation_report", "check_targets", "convergence_table",
           "figure_label_overlaps", "optimisation_figures", "read_optimisation_store", "reading",
           "reproduce_command", "section_ids", "write_optimisation_report"]

