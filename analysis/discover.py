"""Scenario discovery with PRIM: where in an experiment's design does a KPI — or one scenario's effect on it —
fall below or rise above a value?

``python run.py discover STORE --kpi K (--below X | --above X)`` calls :func:`discover` and
:func:`write_discovery`.

**Inputs x**: the design parameters of the store (the ``param.<key>`` columns of ``runs.parquet``), one row
per design point. A parameter with a null value at some point (a grid's ``null``) is left out, with a note.

**Output y**, per design point, in the KPI's unit (shares as 0–1, so ``--below -0.02`` is a drop of more
than 2 percentage points):

- a store with one scenario: the KPI's mean over the point's finished replications;
- a store with two or more: the paired difference S − B, replication k of S against replication k of B
  (the same seed: common random numbers), averaged over the point's pairs. S defaults to the first scenario
  that is not the baseline, B to the store's baseline.

A point is a *case of interest* when y < X (``--below``) or y > X (``--above``).

**PRIM** (the patient rule induction method, Friedman & Fisher 1999, as EMA Workbench implements it for
scenario discovery, Kwakkel 2017) starts from the box holding every point and peels off, step by step, a
share ``peel_alpha`` of the points along the one parameter whose peel raises the share of cases inside the
most, until the box would hold less than ``mass_min`` of the points; it then pastes back what raises it. Each
step is a box on the *peeling trajectory*, with

- coverage: the share of all cases of interest that lie inside the box;
- density: the share of the points inside the box that are cases of interest;
- mass: the share of all points inside the box;
- restricted dimensions: the parameters whose range the box narrows.

**Which box on a trajectory** (:data:`SELECTION_RULE`): the one with the highest coverage among those whose
density reaches the threshold; of equal coverage the denser, then the one that restricts fewer parameters.
(EMA Workbench 3 has no threshold argument and selects the last box by default, the densest but smallest.)
The points of a chosen box are set aside and PRIM looks for the next box among the rest, until a trajectory
never reaches the threshold, no case of interest is left outside the boxes, or :data:`MAX_BOXES` boxes.

Writes ``DIR`` (default ``STORE/discovery/<kpi>-<below|above>-<X>/``):

    discovery.json   the question, y's distribution, the PRIM settings and selection rule, the boxes (coverage,
                     density, mass, limits of the restricted parameters with their quasi-p values), the
                     trajectories and the plain reading
    peeling.csv      every box's peeling trajectory: box, id, coverage, density, mass, res_dim, n, k, chosen
    points.csv       per design point: its parameters, y with its 95% t interval over replications, n, case
    figures/*.png    y by parameter; the peeling trajectories (coverage against density, chosen box marked);
                     the box limits over the parameters' ranges
    discovery.html   self-contained (figures embedded), and discovery.md beside it: the same content

The experiment report (``python run.py report STORE``) lists every discovery stored under ``STORE/discovery/``.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from common.stats import interval_table
from common.store import write_json_atomic
from sim.errors import WenzhengError
from sim.results import KPI_NAMES

from .figures import styled, to_png
from .report import (
    Bullets,
    Para,
    Picture,
    Section,
    Table,
    describe_change,
    describe_value,
    render_html,
    render_markdown,
)
from .store import PARAM_PREFIX, Store, as_store
from .summarize import is_share, kpi_label, kpi_unit

#: Where discoveries are written inside a store, one folder each (``<kpi>-<below|above>-<X>``).
DISCOVERY_DIR = "discovery"
#: Fewest design points with a value of y that PRIM is run on: with fewer, a box holds one or two points and
#: its limits say nothing about the design.
MIN_POINTS = 10
#: At most this many boxes are looked for, one after the other.
MAX_BOXES = 5
#: Defaults: the density a chosen box must reach (share of its points that are cases of interest), the share
#: of points peeled per step and the smallest box (share of all points); EMA Workbench's defaults for the last two.
DEFAULT_THRESHOLD = 0.8
DEFAULT_PEEL_ALPHA = 0.05
DEFAULT_MASS_MIN = 0.05
#: A box's limit whose quasi-p value is below this is called significant in the reading.
QP_LEVEL = 0.05
SELECTION_RULE = ("on each box's peeling trajectory, the box with the highest coverage among those whose density "
                  "reaches the threshold; of equal coverage the denser, then the one restricting fewer parameters")
_TRAJECTORY_COLUMNS = ["box", "id", "coverage", "density", "mass", "res_dim", "n", "k", "chosen"]


class DiscoverError(WenzhengError):
    """Scenario discovery cannot be done as asked; the message names the file or flag and what is allowed."""


# ---------------------------------------------------------------------------------------------- the question
@dataclass(frozen=True)
class Question:
    """What is asked: is ``kpi`` (or ``scenario`` − ``versus`` in it) ``rule`` (below|above) ``value``?"""

    kpi: str
    rule: str
    value: float
    scenario: str
    versus: str | None = None

    @property
    def slug(self) -> str:
        """The folder name of this discovery: ``<kpi>-<below|above>-<X>``."""
        return f"{self.kpi}-{self.rule}-{self.value:g}"

    def is_case(self, y: np.ndarray) -> np.ndarray:
        """Whether each y is a case of interest (strictly below or above the value)."""
        return y < self.value if self.rule == "below" else y > self.value

    def describe_y(self, y: float) -> str:
        """A value of y in words, in the KPI's unit (a difference when paired)."""
        return describe_change(y, self.kpi) if self.versus else describe_value(y, self.kpi)

    def value_words(self) -> str:
        """The value compared with, in words ("zero" for no difference)."""
        return "zero" if self.versus and self.value == 0 else self.describe_y(self.value)

    def subject(self) -> str:
        """What y is, in words: "mandate − no_mandate in the true resolution rate"."""
        if self.versus:
            return f"the paired difference **{self.scenario}** − **{self.versus}** in the {kpi_label(self.kpi)}"
        return f"the {kpi_label(self.kpi)} of **{self.scenario}**"

    def case_words(self, negate: bool = False) -> str:
        """The case of interest as a clause: "**mandate** lowers the true resolution rate against **no_mandate**"."""
        if self.versus and self.value == 0:
            verb = ("lower" if self.rule == "below" else "raise") if negate else (
                "lowers" if self.rule == "below" else "raises")
            return (f"**{self.scenario}** {'does not ' if negate else ''}{verb} the {kpi_label(self.kpi)} "
                    f"against **{self.versus}**")
        return f"{self.subject()} is {'not ' if negate else ''}{self.rule} {self.value_words()}"


def parse_rule(below: float | None, above: float | None) -> tuple[str, float]:
    """(rule, value) from the ``--below`` / ``--above`` flags: exactly one must be given, a finite number."""
    if (below is None) == (above is None):
        got = "both" if below is not None else "neither"
        raise DiscoverError(f"give exactly one of --below X or --above X (the value y is compared with, in the "
                            f"KPI's unit; shares as 0–1); got {got}")
    rule, value = ("below", below) if below is not None else ("above", above)
    if not math.isfinite(float(value)):
        raise DiscoverError(f"--{rule} must be a finite number, got {value}")
    return rule, float(value)


def _check_settings(threshold: float, peel_alpha: float, mass_min: float) -> None:
    """The PRIM settings must be in range (shares of points or of a box's points)."""
    for flag, v, ok, allowed in (("--threshold", threshold, 0 < threshold <= 1, "in (0, 1]"),
                                 ("--peel-alpha", peel_alpha, 0 < peel_alpha < 0.5, "in (0, 0.5)"),
                                 ("--mass-min", mass_min, 0 < mass_min < 1, "in (0, 1)")):
        if not (math.isfinite(v) and ok):
            raise DiscoverError(f"{flag} must be {allowed}, got {v:g}")


def _check_design(store: Store) -> None:
    """:class:`DiscoverError` when the store has no design to discover over (or lost its ``param.*`` columns)."""
    root = store.path or Path("store")
    if not store.parameters:
        raise DiscoverError(f"{root / 'manifest.json'}: key 'design': the store has no design parameters "
                            f"(design type '{store.design_type}'), so there is nothing to discover over; allowed: "
                            "a store of a spec with a design (grid, lhs, morris, sobol, posterior), e.g. "
                            "experiments/mandate_backfire.yaml")
    if not store.param_columns():
        raise DiscoverError(f"{root / 'runs.parquet'}: no {PARAM_PREFIX}<key> columns, although the manifest names "
                            f"the design parameters {', '.join(store.parameters)}")


def _check_kpi(store: Store, kpi: str) -> None:
    """``kpi`` must be one of the overall KPIs the store's summary holds."""
    present = set(store.overall["kpi"])
    stored = [k for k in KPI_NAMES if k in present] + sorted(present - set(KPI_NAMES))
    if kpi not in stored:
        where = store.path / "summary.parquet" if store.path else "the store"
        raise DiscoverError(f"--kpi: {kpi!r} is not a KPI of {where}; allowed: {', '.join(stored) or 'none'}")


def resolve_question(store: Store, kpi: str, rule: str, value: float, scenario: str | None = None,
                     versus: str | None = None) -> Question:
    """The question, with S and B resolved: with two or more scenarios, S defaults to the first scenario that
    is not the baseline and B to the baseline; with one, y is that scenario's KPI and ``versus`` is refused."""
    names = store.scenarios
    for flag, name in (("--scenario", scenario), ("--versus", versus)):
        if name is not None and name not in names:
            raise DiscoverError(f"{flag}: {name!r} is not a scenario of {store.path or 'the store'}; allowed: "
                                f"{', '.join(names)}")
    if len(names) < 2:
        if versus is not None:
            raise DiscoverError(f"--versus: {store.path or 'the store'} has one scenario ({names[0]}), so there is "
                                "nothing to pair with; leave --versus out")
        return Question(kpi, rule, value, names[0])
    s = scenario if scenario is not None else next(n for n in names if n != store.baseline)
    b = versus if versus is not None else store.baseline
    if s == b:
        others = ", ".join(n for n in names if n != s)
        raise DiscoverError(f"--versus: the scenario and the one it is paired with are both {s!r}; allowed: {others}")
    return Question(kpi, rule, value, s, b)


# ---------------------------------------------------------------------------------------------- y per point
def point_values(store: Store, q: Question) -> pd.DataFrame:
    """One row per design point with a value of y: ``point``, the design parameters (dotted keys), ``n``
    (replications, or pairs), ``y`` (their mean), ``sd``, ``ci_low``, ``ci_high`` (95% t interval) and
    ``case`` (a case of interest). A replication that failed in either scenario is left out of its pair."""
    ov = store.overall
    ov = ov[ov["kpi"] == q.kpi]
    if q.versus is None:
        per_run = ov[ov["scenario"] == q.scenario][["point", "replication", "value"]]
    else:
        wide = ov[ov["scenario"].isin([q.scenario, q.versus])].pivot_table(
            index=["point", "replication"], columns="scenario", values="value").reindex(
            columns=[q.scenario, q.versus])
        per_run = (wide[q.scenario] - wide[q.versus]).rename("value").reset_index()
    iv = interval_table(per_run, ["point"]).rename(columns={"mean": "y"})
    cols = store.param_columns()
    pts = store.points().rename(columns={c: c.removeprefix(PARAM_PREFIX) for c in cols})
    out = pts.merge(iv[["point", "n", "y", "sd", "ci_low", "ci_high"]], on="point", how="inner")
    out = out.astype({"n": "int64", "y": "float64", "sd": "float64", "ci_low": "float64", "ci_high": "float64"})
    out["case"] = q.is_case(out["y"].to_numpy())
    return out.sort_values("point").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------- PRIM
@dataclass
class Limit:
    """One restricted parameter of a box: its limits (None on a side the box leaves open), the parameter's
    range over the design, and the quasi-p value of each restricted side (Bryant & Lempert 2010: a one-sided
    binomial test of the box's density without that limit)."""

    parameter: str
    low: float | None
    high: float | None
    range_low: float
    range_high: float
    qp_low: float | None = None
    qp_high: float | None = None

    def text(self) -> str:
        """The limits in words: "2.31 ≤ demand.problems_per_citizen_year ≤ 2.9", or one side only."""
        if self.low is not None and self.high is not None:
            return f"{self.low:.3g} ≤ {self.parameter} ≤ {self.high:.3g}"
        if self.low is not None:
            return f"{self.parameter} ≥ {self.low:.3g}"
        return f"{self.parameter} ≤ {self.high:.3g}"

    @property
    def significant(self) -> bool:
        """Whether a restricted side's quasi-p value is below :data:`QP_LEVEL`."""
        return any(p is not None and p < QP_LEVEL for p in (self.qp_low, self.qp_high))

    def qp_text(self) -> str:
        """The quasi-p values of the restricted sides: "quasi-p lower 0.001, upper 0.02" (empty when none)."""
        parts = [f"{side} {p:.2g}" for side, p in (("lower", self.qp_low), ("upper", self.qp_high)) if p is not None]
        return "quasi-p " + ", ".join(parts) if parts else ""


@dataclass
class Box:
    """A chosen box: its number (1, 2, …), its place on its peeling trajectory, its statistics (shares 0–1;
    ``n`` points inside, ``k`` of them cases of interest) and the limits of the parameters it restricts."""

    number: int
    trajectory_id: int
    coverage: float
    density: float
    mass: float
    n: int
    k: int
    limits: list[Limit] = field(default_factory=list)

    def where(self) -> str:
        """The box's limits joined by "and", or "everywhere in the design" for an unrestricted box."""
        return " and ".join(lim.text() for lim in self.limits) or "everywhere in the design"


def _prim_class() -> Any:
    """EMA Workbench's ``Prim``, imported without its warnings about optional extras (ipyparallel, altair …)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from ema_workbench.analysis import prim
    return prim.Prim


def choose_box(trajectory: pd.DataFrame, threshold: float) -> int | None:
    """The id of the box :data:`SELECTION_RULE` picks on a trajectory, or None when no box reaches ``threshold``."""
    ok = trajectory[trajectory["density"] >= threshold]
    if ok.empty:
        return None
    best = ok.sort_values(["coverage", "density", "res_dim", "id"], ascending=[False, False, True, True])
    return int(best["id"].iloc[0])


def _limits(box: Any, i: int, init: pd.DataFrame, ranges: dict[str, tuple[float, float]]) -> list[Limit]:
    """The restricted parameters of box ``i`` on a PRIM box's trajectory: a side is restricted when its limit
    differs from the data's (``init``, the box around every point)."""
    lims = box.box_lims[i]
    qp = box.p_values[i]
    out = []
    for name in lims.columns:
        lo, hi = float(lims.loc[0, name]), float(lims.loc[1, name])
        lo_r, hi_r = lo != float(init.loc[0, name]), hi != float(init.loc[1, name])
        if not (lo_r or hi_r):
            continue
        q_lo, q_hi = (qp.get(name) or [-1.0, -1.0])
        out.append(Limit(name, lo if lo_r else None, hi if hi_r else None, *ranges[name],
                         qp_low=float(q_lo) if lo_r and q_lo >= 0 else None,
                         qp_high=float(q_hi) if hi_r and q_hi >= 0 else None))
    return out


def run_prim(x: pd.DataFrame, case: np.ndarray, ranges: dict[str, tuple[float, float]], threshold: float,
             peel_alpha: float, mass_min: float) -> tuple[list[Box], pd.DataFrame, str]:
    """Boxes one after the other (see the module docstring): the chosen boxes, every trajectory
    (:data:`_TRAJECTORY_COLUMNS`; the last may belong to a search that found no box) and why the search stopped."""
    with warnings.catch_warnings():  # EMA Workbench 3.0 calls DataFrame.drop(inplace=True), deprecated in pandas 3
        warnings.filterwarnings("ignore", message="The inplace keyword")
        prim = _prim_class()(x.reset_index(drop=True), np.asarray(case, dtype=bool), peel_alpha=peel_alpha,
                             mass_min=mass_min)
    boxes: list[Box] = []
    trajectories = []
    covered = np.zeros(len(x), dtype=bool)
    stopped = f"after {MAX_BOXES} boxes (the most looked for)"
    for number in range(1, MAX_BOXES + 1):
        box = prim.find_box()
        if box is None:
            stopped = "no point was left outside the boxes"
            break
        traj = box.peeling_trajectory
        i = choose_box(traj, threshold)
        trajectories.append(traj.assign(box=number, chosen=traj["id"] == i))
        if i is None:
            stopped = (f"box {number}'s trajectory never reaches density {threshold:.0%} (densest: "
                       f"{traj['density'].max():.0%})")
            break
        box.select(i)
        row = traj.set_index("id").loc[i]
        boxes.append(Box(number, i, float(row["coverage"]), float(row["density"]), float(row["mass"]),
                         int(row["n"]), int(row["k"]), _limits(box, i, prim.box_init, ranges)))
        covered[box.yi] = True
        if not np.asarray(case)[~covered].any():
            stopped = "every case of interest lies in a box"
            break
    frame = (pd.concat(trajectories, ignore_index=True)[_TRAJECTORY_COLUMNS] if trajectories
             else pd.DataFrame(columns=_TRAJECTORY_COLUMNS))
    return boxes, frame.astype({"box": "int64", "id": "int64", "res_dim": "int64", "n": "int64", "k": "int64",
                                "chosen": "bool"}), stopped


# ---------------------------------------------------------------------------------------------- discovery
@dataclass
class Discovery:
    """The outcome of :func:`discover`: the question, y per point, the parameters' ranges, the PRIM settings,
    the chosen boxes and every trajectory, and why the search stopped (or that PRIM was not run)."""

    question: Question
    store: Store
    points: pd.DataFrame
    parameters: list[str]
    ranges: dict[str, tuple[float, float]]
    settings: dict[str, float]
    boxes: list[Box]
    trajectories: pd.DataFrame
    stopped: str
    left_out: list[str] = field(default_factory=list)

    @property
    def n_points(self) -> int:
        """Design points with a value of y."""
        return len(self.points)

    @property
    def n_cases(self) -> int:
        """Design points that are cases of interest."""
        return int(self.points["case"].sum())

    @property
    def n_sure(self) -> int:
        """Cases of interest whose whole 95% interval over replications is on the case's side of the value."""
        p, q = self.points, self.question
        side = p["ci_high"] < q.value if q.rule == "below" else p["ci_low"] > q.value
        return int((p["case"] & side).sum())

    @property
    def replications(self) -> int:
        """The most replications (or pairs) behind one point's y."""
        return int(self.points["n"].max()) if len(self.points) else 0

    def y_summary(self) -> dict[str, float]:
        """y's min, median, max and mean over the design points (the KPI's unit)."""
        y = self.points["y"]
        return {"min": float(y.min()), "median": float(y.median()), "max": float(y.max()), "mean": float(y.mean())}

    def reading(self) -> list[str]:
        """Plain sentences: how many points are cases of interest, how sure, and where the boxes are."""
        q, s = self.question, self.y_summary()
        spread = (f"{q.describe_y(s['min'])} to {q.describe_y(s['max'])} (median {q.describe_y(s['median'])})")
        pairs = "paired replications" if q.versus else "replications"
        if self.n_cases == 0:
            return [f"{q.case_words(negate=True)} at any of the {self.n_points} design points: "
                    f"y, {q.subject()} averaged over up to {self.replications} {pairs}, runs from {spread}. "
                    "That is a finding too: within these ranges there is nothing to discover."]
        out = [f"In **{self.n_cases} of {self.n_points}** design points ({self.n_cases / self.n_points:.0%}), "
               f"{q.case_words()}; y, {q.subject()} averaged over up to {self.replications} {pairs}, runs from "
               f"{spread}."]
        if self.replications > 1:
            rest = ("" if self.n_sure == self.n_cases else
                    "; at the others chance alone could have put y on that side")
            out.append(f"At {self.n_sure} of these {self.n_cases} points the 95% t interval over the {pairs} lies "
                       f"{q.rule} {q.value_words()} as well{rest}.")
        for b in self.boxes:
            if not b.limits:
                out.append(f"PRIM box {b.number} is the whole design: its density, {b.density:.0%}, already reaches "
                           f"the threshold ({self.settings['threshold']:.0%}), so at that threshold no region "
                           "stands out; a higher --threshold (or a stricter value) asks where the cases are denser.")
                continue
            sig = [lim.text() for lim in b.limits if lim.significant]
            weak = ("" if len(sig) == len(b.limits) else
                    f" Of its limits, {'only ' + ' and '.join(sig) if sig else 'none'} "
                    f"{'have' if len(sig) > 1 else 'has'} a quasi-p value below "
                    f"{QP_LEVEL:g}; the others may narrow the box by chance.")
            out.append(f"PRIM box {b.number} covers {b.coverage:.0%} of them at density {b.density:.0%} ({b.k} of "
                       f"its {b.n} points, {b.mass:.0%} of the design): where {b.where()}.{weak}")
        if not self.boxes:
            out.append(f"PRIM found no box whose density reaches {self.settings['threshold']:.0%}: "
                       f"{self.stopped}; the cases of interest are spread over the design rather than gathered in "
                       "one region of it.")
        else:
            out.append(f"The search stopped because {self.stopped}.")
        if self.left_out:
            out.append(f"Left out of PRIM (null at some points): {', '.join(self.left_out)}.")
        return out

    def to_json(self) -> dict[str, Any]:
        """Everything of the discovery as JSON-ready values (discovery.json; NaN as null)."""
        q = self.question
        return _finite({
            "kpi": q.kpi, "unit": kpi_unit(q.kpi), "rule": q.rule, "value": q.value, "scenario": q.scenario,
            "versus": q.versus, "y": _strip(q.subject()) + " (mean over replications)",
            "store": str(self.store.path) if self.store.path else None,
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "n_points": self.n_points, "n_cases": self.n_cases, "n_cases_sure": self.n_sure,
            "replications": self.replications, "y_summary": self.y_summary(),
            "parameters": [{"name": p, "low": self.ranges[p][0], "high": self.ranges[p][1]} for p in self.parameters],
            "left_out": self.left_out,
            "prim": {**self.settings, "selection": SELECTION_RULE, "max_boxes": MAX_BOXES, "stopped": self.stopped,
                     "ema_workbench": _ema_version(), "ran": not self.trajectories.empty},
            "boxes": [{"box": b.number, "trajectory_id": b.trajectory_id, "coverage": b.coverage,
                       "density": b.density, "mass": b.mass, "n": b.n, "k": b.k, "where": b.where(),
                       "limits": {lim.parameter: {"low": lim.low, "high": lim.high, "range": [lim.range_low,
                                                  lim.range_high], "qp_low": lim.qp_low, "qp_high": lim.qp_high}
                                  for lim in b.limits}} for b in self.boxes],
            "trajectory": self.trajectories.to_dict("records"),
            "reading": [_strip(s) for s in self.reading()],
        })

    def render(self) -> str:
        """A short console summary: the reading's first line and one row per box."""
        lines = [_strip(self.reading()[0])]
        if self.boxes:
            rows = [[str(b.number), f"{b.coverage:.0%}", f"{b.density:.0%}", f"{b.mass:.0%}", f"{b.k}/{b.n}",
                     b.where()] for b in self.boxes]
            header = ["box", "coverage", "density", "mass", "cases", "where"]
            widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
            for r in [header, *rows]:
                lines.append("  ".join(c.rjust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1])
        else:
            lines.append(f"no box: {self.stopped}" if self.n_cases else "no case of interest, so PRIM was not run")
        return "\n".join(lines)


def _strip(text: str) -> str:
    """Plain text from the reading's light markup (``**bold**``)."""
    return text.replace("**", "")


def _finite(obj: Any) -> Any:
    """``obj`` with NaN and infinities as None and numpy scalars as Python ones (for JSON)."""
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if hasattr(obj, "item"):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _ema_version() -> str:
    """The installed EMA Workbench's version, for the record."""
    try:
        return version("ema_workbench")
    except PackageNotFoundError:
        return "unknown"


def _ranges(store: Store, x: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """Each parameter's range over the design: the manifest's low/high, else the values the points take."""
    declared = {str(p["name"]): (p.get("low"), p.get("high")) for p in store.design["parameters"]}
    out = {}
    for name in x.columns:
        lo, hi = declared.get(name, (None, None))
        lo = float(lo) if isinstance(lo, int | float) else float(x[name].min())
        hi = float(hi) if isinstance(hi, int | float) else float(x[name].max())
        out[name] = (min(lo, float(x[name].min())), max(hi, float(x[name].max())))
    return out


def discover(store: Store | str | Path, kpi: str, below: float | None = None, above: float | None = None,
             scenario: str | None = None, versus: str | None = None, threshold: float = DEFAULT_THRESHOLD,
             peel_alpha: float = DEFAULT_PEEL_ALPHA, mass_min: float = DEFAULT_MASS_MIN) -> Discovery:
    """Scenario discovery on a store (see the module docstring). Raises :class:`DiscoverError` (or
    :class:`StoreError` for a missing or corrupt store) with a message naming the file or flag."""
    rule, value = parse_rule(below, above)
    _check_settings(threshold, peel_alpha, mass_min)
    store = as_store(store)
    _check_design(store)
    _check_kpi(store, kpi)
    q = resolve_question(store, kpi, rule, value, scenario, versus)
    points = point_values(store, q)
    params = [c.removeprefix(PARAM_PREFIX) for c in store.param_columns()]
    left_out = [p for p in params if points[p].isna().any()]
    params = [p for p in params if p not in left_out]
    if len(points) < MIN_POINTS or not params:
        have = f"{len(points)} design point(s) have" if params else "no design parameter without nulls has"
        raise DiscoverError(f"{store.path or 'the store'}: {have} a value of {_strip(q.subject())}; PRIM needs at "
                            f"least {MIN_POINTS} points with a value (a design of that many, with finished runs"
                            f"{' in both scenarios' if q.versus else ''})")
    x = points[params].astype("float64")
    ranges = _ranges(store, x)
    settings = {"threshold": float(threshold), "peel_alpha": float(peel_alpha), "mass_min": float(mass_min)}
    if points["case"].any():
        boxes, trajectories, stopped = run_prim(x, points["case"].to_numpy(), ranges, **settings)
    else:
        boxes, trajectories = [], pd.DataFrame(columns=_TRAJECTORY_COLUMNS)
        stopped = "no design point is a case of interest, so PRIM was not run"
    return Discovery(q, store, points, params, ranges, settings, boxes, trajectories, stopped, left_out)


# ---------------------------------------------------------------------------------------------- figures
def _new_figure(width: float, height: float) -> Figure:
    """A figure of ``width`` × ``height`` inches, laid out by matplotlib's constrained layout."""
    return Figure(figsize=(width, height), layout="constrained", facecolor="white")


def _y_formatter(q: Question) -> mpl.ticker.Formatter:
    """Tick labels of y: shares as %, paired differences of shares as percentage points."""
    if is_share(q.kpi):
        unit = " pp" if q.versus else "%"
        return mpl.ticker.FuncFormatter(lambda v, _p: f"{100 * v:.3g}{unit}")
    return mpl.ticker.FuncFormatter(lambda v, _p: f"{v:.3g}")


def y_figure(d: Discovery) -> Figure:
    """y at every design point against each parameter, with its 95% interval over replications; filled: the
    cases of interest; dashed: the value they are compared with; shaded: box 1's limits where it restricts
    the parameter."""
    q, p = d.question, d.points
    ncols = min(4, len(d.parameters))
    nrows = math.ceil(len(d.parameters) / ncols)
    first = {lim.parameter: lim for lim in (d.boxes[0].limits if d.boxes else [])}
    with styled():
        fig = _new_figure(3.3 * ncols, 2.7 * nrows + 0.7)
        axes = fig.subplots(nrows, ncols, sharey=True, squeeze=False).ravel()
        for ax, name in zip(axes, d.parameters, strict=False):
            lim = first.get(name)
            if lim is not None:
                lo, hi = d.ranges[name]
                ax.axvspan(lim.low if lim.low is not None else lo, lim.high if lim.high is not None else hi,
                           color="0.9", zorder=0, linewidth=0)
            err = np.vstack([(p["y"] - p["ci_low"]).fillna(0), (p["ci_high"] - p["y"]).fillna(0)])
            ax.errorbar(p[name], p["y"], yerr=err, fmt="none", ecolor="0.7", elinewidth=0.7, zorder=1)
            for case, face in ((False, "white"), (True, "#3b528b")):
                s = p[p["case"] == case]
                ax.scatter(s[name], s["y"], s=22, facecolor=face, edgecolor="#3b528b", linewidth=0.9, zorder=2)
            ax.axhline(q.value, color="0.3", linestyle="--", linewidth=0.9)
            ax.set_xlabel(name, fontsize=8)
            ax.yaxis.set_major_formatter(_y_formatter(q))
        for ax in axes[len(d.parameters):]:
            ax.set_visible(False)
        for ax in axes[::ncols]:
            ax.set_ylabel(_strip(q.subject()).replace(" in the ", "\nin the ") if q.versus else kpi_label(q.kpi),
                          fontsize=8)
        fig.suptitle(f"y by design parameter (filled: {q.rule} {q.value_words()}; bars: 95% CI over "
                     "replications" + ("; grey: box 1" if first else "") + ")", fontsize=10)
    return fig


def peeling_figure(d: Discovery) -> Figure:
    """Each box's peeling trajectory: coverage against density of every box on it, coloured by the number of
    parameters it restricts; the chosen box ringed; dashed: the density threshold."""
    attempts = sorted(set(d.trajectories["box"]))
    cmap = mpl.colormaps["viridis"]
    top = max(1, int(d.trajectories["res_dim"].max()))
    with styled():
        fig = _new_figure(4.2 * len(attempts) + 1.0, 3.8)
        axes = fig.subplots(1, len(attempts), squeeze=False)[0]
        for ax, number in zip(axes, attempts, strict=True):
            t = d.trajectories[d.trajectories["box"] == number]
            sc = ax.scatter(t["coverage"], t["density"], c=t["res_dim"], cmap=cmap, vmin=0, vmax=top, s=26,
                            edgecolor="0.2", linewidth=0.4, zorder=2)
            chosen = t[t["chosen"]]
            if len(chosen):
                ax.scatter(chosen["coverage"], chosen["density"], s=170, facecolor="none", edgecolor="#d1495b",
                           linewidth=2.0, zorder=3, label="chosen box")
            ax.axhline(d.settings["threshold"], color="0.3", linestyle="--", linewidth=0.9, label="threshold")
            ax.set_xlim(-0.03, 1.05)
            ax.set_ylim(-0.03, 1.05)
            ax.xaxis.set_major_formatter(mpl.ticker.PercentFormatter(1.0))
            ax.yaxis.set_major_formatter(mpl.ticker.PercentFormatter(1.0))
            ax.set_xlabel("coverage (share of all cases of interest inside)")
            ax.set_ylabel("density (share of the box's points of interest)")
            ax.set_title(f"Box {number}" + ("" if len(chosen) else " (none reaches the threshold)"))
        fig.colorbar(sc, ax=list(axes), label="restricted parameters", ticks=range(top + 1))
        axes[0].legend(loc="lower left")
        fig.suptitle("PRIM peeling trajectories", fontsize=10.5)
    return fig


def box_limits_figure(d: Discovery) -> Figure:
    """Each chosen box over the design: per parameter its range (grey) and the box's limits (dark where the box
    restricts it), scaled to the parameter's range; the limits in numbers beside the names."""
    with styled():
        fig = _new_figure(4.6 * len(d.boxes) + 2.4, 0.45 * len(d.parameters) + 1.6)
        axes = fig.subplots(1, len(d.boxes), squeeze=False)[0]
        for ax, b in zip(axes, d.boxes, strict=True):
            lims = {lim.parameter: lim for lim in b.limits}
            labels = []
            for row, name in enumerate(d.parameters):
                lo, hi = d.ranges[name]
                ax.barh(row, 1.0, left=0.0, height=0.55, color="0.88", edgecolor="0.7", linewidth=0.5)
                lim = lims.get(name)
                if lim is None:
                    labels.append(f"{name}\n{lo:.3g} – {hi:.3g} (open)")
                    continue
                a = lim.low if lim.low is not None else lo
                z = lim.high if lim.high is not None else hi
                span = (hi - lo) or 1.0
                ax.barh(row, (z - a) / span, left=(a - lo) / span, height=0.55, color="#3b528b")
                labels.append(f"{name}\n{a:.3g} – {z:.3g}")
            ax.set_yticks(range(len(d.parameters)), labels, fontsize=7.5)
            ax.set_ylim(len(d.parameters) - 0.5, -0.5)
            ax.set_xlim(0, 1)
            ax.xaxis.set_major_formatter(mpl.ticker.PercentFormatter(1.0))
            ax.set_xlabel("position in the parameter's range")
            ax.set_title(f"Box {b.number}: coverage {b.coverage:.0%}, density {b.density:.0%}", fontsize=9.5)
        fig.suptitle("PRIM boxes over the design (dark: the box's limits)", fontsize=10.5)
    return fig


def discovery_figures(d: Discovery) -> list[tuple[str, str, Callable[[Discovery], Figure]]]:
    """(file stem, title, function) of every figure the discovery has: y by parameter always, the
    trajectories when PRIM ran, the box limits when it chose a box that restricts a parameter."""
    out: list[tuple[str, str, Callable[[Discovery], Figure]]] = [("y_by_parameter", "y by design parameter",
                                                                  y_figure)]
    if not d.trajectories.empty:
        out.append(("peeling", "Peeling trajectories", peeling_figure))
    if any(b.limits for b in d.boxes):
        out.append(("box_limits", "Box limits", box_limits_figure))
    return out


# ---------------------------------------------------------------------------------------------- writing
SECTIONS: tuple[tuple[str, str], ...] = (
    ("question", "What was asked"), ("reading", "Reading"), ("boxes", "Boxes"), ("figures", "Figures"),
    ("points", "Design points"), ("files", "Files"))


def _sections(d: Discovery, pictures: list[Picture]) -> list[Section]:
    """The discovery's report, one section per entry of :data:`SECTIONS`."""
    title = dict(SECTIONS)
    q = d.question
    facts = [
        f"Store: `{d.store.path}` (experiment **{d.store.name}**)",
        f"y: {q.subject()}, the mean over up to {d.replications} finished "
        + ("pairs of replications with the same seed (common random numbers)" if q.versus else "replications")
        + f" at each design point; unit: {kpi_unit(q.kpi)}",
        f"Case of interest: y {'<' if q.rule == 'below' else '>'} {q.value_words()}",
        f"Inputs: {len(d.parameters)} design parameters over {d.n_points} points: "
        + "; ".join(f"{p} in [{d.ranges[p][0]:.3g}, {d.ranges[p][1]:.3g}]" for p in d.parameters),
        f"PRIM (EMA Workbench {_ema_version()}): peel_alpha {d.settings['peel_alpha']:g}, mass_min "
        f"{d.settings['mass_min']:g}, density threshold {d.settings['threshold']:g}; the box chosen is, "
        f"{SELECTION_RULE}",
    ]
    boxes = [Para(f"No box: {d.stopped}.")]
    if d.boxes:
        rows = [[str(b.number), "\n".join(f"{lim.text()} ({lim.qp_text()})" if lim.qp_text() else lim.text()
                                          for lim in b.limits) or "everywhere in the design",
                 f"{b.coverage:.0%}", f"{b.density:.0%}", f"{b.mass:.0%}", f"{b.k} of {b.n}"] for b in d.boxes]
        boxes = [Table(["box", "limits (quasi-p)", "coverage", "density", "mass", "cases of interest in it"], rows,
                       numeric_from=2, caption=f"Boxes in the order PRIM found them; the search stopped because "
                       f"{d.stopped}. Quasi-p: one-sided binomial test of each limit (Bryant & Lempert 2010).")]
    return [
        Section("question", title["question"], [Bullets(facts)]),
        Section("reading", title["reading"], [Bullets(d.reading())]),
        Section("boxes", title["boxes"], boxes),
        Section("figures", title["figures"], list(pictures)),
        Section("points", title["points"], [_points_table(d)]),
        Section("files", title["files"], [Bullets([
            "`discovery.json`: everything above, for programs", "`peeling.csv`: every trajectory",
            "`points.csv`: y per design point", "`figures/*.png`: the figures"])]),
    ]


def _points_table(d: Discovery) -> Table:
    """Every design point with its parameters and y, the cases of interest first."""
    q = d.question
    p = d.points.sort_values("y", ascending=q.rule == "below")
    rows = [[str(r["point"]), *[f"{r[n]:.3g}" for n in d.parameters],
             f"{q.describe_y(r['y'])}" + (f"\n[{q.describe_y(r['ci_low'])}, {q.describe_y(r['ci_high'])}]"
                                          if np.isfinite(r["ci_low"]) else ""),
             str(int(r["n"])), "yes" if r["case"] else ""] for _, r in p.iterrows()]
    return Table(["point", *d.parameters, "y [95% CI]", "n", "case"], rows, numeric_from=1, strong={
        (i, len(d.parameters) + 1) for i, case in enumerate(p["case"]) if case},
        caption=f"Every design point, {'lowest' if q.rule == 'below' else 'highest'} y first, with its 95% t "
                f"interval over replications; bold: the cases of interest (y {q.rule} {q.value_words()}).")


def default_out(d: Discovery) -> Path:
    """``STORE/discovery/<kpi>-<below|above>-<X>/``."""
    if d.store.path is None:
        raise DiscoverError("an in-memory store needs --out to write the discovery to")
    return d.store.path / DISCOVERY_DIR / d.question.slug


def write_discovery(d: Discovery, out: str | Path | None = None, dpi: int = 110) -> dict[str, Path]:
    """Write the discovery's files into ``out`` (default :func:`default_out`) and return their paths
    (``json``, ``csv``, ``points``, ``html``, ``md``, ``figures``)."""
    target = Path(out) if out is not None else default_out(d)
    pictures = [Picture(name, title, _caption(func), to_png(func(d), dpi=dpi))
                for name, title, func in discovery_figures(d)]
    title = f"Scenario discovery: {d.question.slug} ({d.store.name})"
    generated = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    sections = _sections(d, pictures)
    fig_dir = target / "figures"
    paths = {"json": target / "discovery.json", "csv": target / "peeling.csv", "points": target / "points.csv",
             "html": target / "discovery.html", "md": target / "discovery.md", "figures": fig_dir}
    try:
        fig_dir.mkdir(parents=True, exist_ok=True)
        for old in fig_dir.glob("*.png"):
            old.unlink()
        for pic in pictures:
            (fig_dir / f"{pic.name}.png").write_bytes(pic.png)
        d.trajectories.to_csv(paths["csv"], index=False)
        d.points.to_csv(paths["points"], index=False)
        paths["html"].write_text(render_html(title, sections, generated), encoding="utf-8")
        paths["md"].write_text(render_markdown(title, sections, generated), encoding="utf-8")
        write_json_atomic({**d.to_json(), "figures": [f"figures/{p.name}.png" for p in pictures]}, paths["json"])
    except OSError as exc:
        raise DiscoverError(f"{target}: cannot write the discovery ({exc.strerror or exc})") from exc
    return paths


def _caption(func: Callable[..., Any]) -> str:
    """A figure's caption: its function's docstring on one line."""
    doc = (func.__doc__ or "").strip()
    return " ".join(line.strip() for line in doc.splitlines() if line.strip())


# ---------------------------------------------------------------------------------------------- reading back
def stored_discoveries(store_dir: Path) -> list[tuple[Path, dict[str, Any] | str]]:
    """The discoveries under ``store_dir/discovery/``: (folder, its discovery.json as a dict), or (folder, what
    is wrong with it) when the file cannot be read; sorted by folder name."""
    root = store_dir / DISCOVERY_DIR
    out: list[tuple[Path, dict[str, Any] | str]] = []
    for file in sorted(root.glob("*/discovery.json")) if root.is_dir() else []:
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            out.append((file.parent, f"{file}: cannot be read ({exc})"))
            continue
        out.append((file.parent, data if isinstance(data, dict) else f"{file}: not a JSON object"))
    return out


__all__ = ["DISCOVERY_DIR", "DiscoverError", "Discovery", "Question", "choose_box", "discover", "point_values",
           "run_prim", "stored_discoveries", "write_discovery"]
