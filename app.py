"""Wenzheng (问政) interactive explorer: a Solara page on Mesa's ``SolaraViz``.

Start it with ``python run.py explore [SCENARIO]`` or ``make explore`` (it runs ``solara run app.py`` with
the environment variable ``WENZHENG_SCENARIO`` set to the scenario file), then open the printed address.

The page runs the same :class:`sim.model.GovernanceModel` as the command line. :class:`ExplorerModel` only
turns the controls into scenario overrides (``load_scenario(path).with_overrides({...})``) and, because a
model step is one hour, advances **one day (24 model hours) per step** of the explorer: the Step button
moves the city on by one day (times the "Render Interval" slider), and the "Time" shown is in days.

Views: the five-level hierarchy (central, province, prefecture, county, township: units, handling
departments and relays, the bureaus that only pass orders on in a cascade, each coloured by the overdue share
of the open cases it holds and sized by how many it holds; the orders' counterpart edges down to the counties
and townships and up to the province and the centre), live plots of the rates (cumulative to date, with the
command line's KPI definitions): response and satisfaction; resolution as the platform records it against
the true resolution (the problem solved) and their difference, the gaming gap; of backlog and overdue
cases, and of mean trust, and a table of the most overdue open cases with the bureau holding each (a relay
on the way or the handling department) and the route its order takes through the hierarchy.

``sim`` never imports this module.
"""

from __future__ import annotations

import html
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import solara  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from mesa import DataCollector  # noqa: E402
from mesa.visualization import SolaraViz, make_plot_component  # noqa: E402
from mesa.visualization.utils import update_counter  # noqa: E402

from sim import Scenario, WenzhengError, load_scenario  # noqa: E402
from sim.cases import STATUS_NAMES  # noqa: E402
from sim.hierarchy import LEVELS, Hierarchy  # noqa: E402
from sim.metrics import cases_frame, kpis  # noqa: E402
from sim.model import GovernanceModel  # noqa: E402
from sim.scenario import DispatchMode, Level  # noqa: E402

HERE = Path(__file__).resolve().parent
SCENARIO_DIR = HERE / "scenarios"
HOURS_PER_STEP = 24
"""Model hours advanced by one explorer step (one day)."""

RATE_COLOURS = {"response rate": "tab:blue", "satisfaction rate": "tab:orange"}
RESOLUTION_COLOURS = {"resolution rate": "tab:green", "true resolution rate": "tab:olive", "gaming gap": "tab:red"}
"""Resolution as recorded by the platform (the KPI ``resolution_rate``), as true, and recorded − true."""
LOAD_COLOURS = {"backlog": "tab:purple", "overdue": "tab:red"}
TRUST_COLOURS = {"mean trust": "tab:brown", "mean efficacy": "tab:gray"}
LEVEL_Y = {lv.value: float(len(LEVELS) - 1 - i) for i, lv in enumerate(LEVELS)}
"""Row of each level in the network drawing (central at the top, township at the bottom)."""
DEPT_DROP = 0.42
"""How far below its unit a department is drawn (in level rows)."""


# ------------------------------------------------------------------------------------------ scenarios
def scenario_choices(directory: Path = SCENARIO_DIR, startup: str | None = None) -> dict[str, Path]:
    """Scenario files offered in the explorer: label (path under ``scenarios/`` without ``.yaml``) -> path.

    The startup file (``WENZHENG_SCENARIO``) is added under its own path when it lies elsewhere.
    """
    out: dict[str, Path] = {}
    for path in sorted(directory.rglob("*.yaml")):
        out[path.relative_to(directory).with_suffix("").as_posix()] = path.resolve()
    if startup:
        p = Path(startup).resolve()
        if p not in out.values():
            out[str(p)] = p
    return out


def startup_scenario() -> Path:
    """The scenario named by ``WENZHENG_SCENARIO``, else ``scenarios/default.yaml``."""
    env = os.environ.get("WENZHENG_SCENARIO")
    return Path(env).resolve() if env else (SCENARIO_DIR / "default.yaml").resolve()


def label_of(path: Path, choices: dict[str, Path]) -> str:
    for label, p in choices.items():
        if p == path.resolve():
            return label
    return str(path)


def explorer_scenario(path: str | Path, *, use_scenario_policies: bool = False, response_mandate_hours: float = 0,
                      supervision_intensity: float = 10.0, dispatch_mode: str = "cascade",
                      platform_hours: str = "7x24", tracking: bool = True, public_ranking: bool = False,
                      systemic_fix: bool = True, demand_multiplier: float = 1.0) -> Scenario:
    """The scenario the explorer runs: the file, with the policy controls and the demand level applied.

    ``response_mandate_hours`` 0 means no mandate. ``demand_multiplier`` scales whichever demand rate the
    file uses (problems per citizen-year, or a fixed request rate). With ``use_scenario_policies`` the
    policy controls are ignored and the file's own policies run (the demand multiplier still applies).
    Raises :class:`sim.ScenarioError` on a bad file or value.
    """
    base = load_scenario(path)
    d = base.demand
    over: dict[str, object] = {}
    if demand_multiplier != 1.0:
        if d.fixed_rate_per_hour:
            over["demand.fixed_rate_per_hour"] = d.fixed_rate_per_hour * demand_multiplier
        elif d.requests_per_day:
            over["demand.requests_per_day"] = d.requests_per_day * demand_multiplier
        else:
            over["demand.problems_per_citizen_year"] = d.problems_per_citizen_year * demand_multiplier
    if not use_scenario_policies:
        over.update({
            "policy.response_mandate_hours": float(response_mandate_hours) if response_mandate_hours > 0 else None,
            "policy.supervision_intensity": float(supervision_intensity),
            "policy.dispatch_mode": dispatch_mode,
            "policy.platform_hours": platform_hours,
            "policy.tracking": bool(tracking),
            "policy.public_ranking": bool(public_ranking),
            "policy.systemic_fix": bool(systemic_fix),
        })
    return base.with_overrides(over, source=f"{path} (explorer controls)") if over else base


# ------------------------------------------------------------------------------------------ the model
class ExplorerModel(GovernanceModel):
    """The simulator driven by the explorer's controls; one :meth:`step` is one day (24 hours).

    Keyword arguments are the controls (see :func:`explorer_scenario`); ``scenario_file`` is a label of
    :func:`scenario_choices` or a path; ``seed`` None takes the file's ``run.seed``.
    ``datacollector`` records, after every day, the rates to date (the command line's KPI definitions over
    the cases created so far; resolution recorded and true, and the gaming gap), the backlog and overdue counts (cases) and mean trust and efficacy (0–1).
    """

    def __init__(self, scenario_file: str = "", use_scenario_policies: bool = False,
                 response_mandate_hours: int = 0, supervision_intensity: float = 10.0,
                 dispatch_mode: str = "cascade", platform_hours: str = "7x24", tracking: bool = True,
                 public_ranking: bool = False, systemic_fix: bool = True, demand_multiplier: float = 1.0,
                 seed: int | None = None) -> None:
        choices = scenario_choices(startup=str(startup_scenario()))
        path = choices.get(scenario_file) or (Path(scenario_file) if scenario_file else startup_scenario())
        controls = dict(use_scenario_policies=use_scenario_policies, response_mandate_hours=response_mandate_hours,
                        supervision_intensity=supervision_intensity, dispatch_mode=dispatch_mode,
                        platform_hours=platform_hours, tracking=tracking, public_ranking=public_ranking,
                        systemic_fix=systemic_fix, demand_multiplier=demand_multiplier)
        load_error = ""
        try:
            scenario = explorer_scenario(path, **controls)
        except WenzhengError as exc:  # a broken file in the list: say so, and keep the startup scenario
            if Path(path).resolve() == startup_scenario():
                raise
            load_error = f"{exc} (showing {startup_scenario().name} instead)"
            path = startup_scenario()
            scenario = explorer_scenario(path, **controls)
        super().__init__(scenario, seed)
        self.load_error = load_error
        """Why the chosen scenario file could not be used ("" when it could)."""
        self.scenario_path = Path(path)
        self.layout = hierarchy_layout(self.hierarchy)  # computed once: the hierarchy does not change
        self.snapshot: dict[str, float] = {}
        self.datacollector = DataCollector(model_reporters={
            name: (lambda m, name=name: m.snapshot[name])
            for name in (*RATE_COLOURS, *RESOLUTION_COLOURS, *LOAD_COLOURS, *TRUST_COLOURS)})
        self._observe()

    def step(self) -> None:
        """Advance one day (24 model hours, fewer at the end of the run), then record the day."""
        for _ in range(HOURS_PER_STEP):
            if not self.running:
                break
            GovernanceModel.step(self)
        self._observe()

    @property
    def day(self) -> float:
        """Days simulated so far."""
        return self.hour / 24.0

    @property
    def total_days(self) -> float:
        return self.end_h / 24.0

    def _observe(self) -> None:
        """Take the day's numbers: rates to date, backlog, overdue, trust; then collect them."""
        sc = self.settings
        k = kpis(cases_frame(self), float(self.hour), sc.kpi.response_target_h)
        now = float(self.hour)
        open_ids = self.cases.open_ids()
        self.snapshot = {
            "response rate": k["response_rate"], "resolution rate": k["resolution_rate"],
            "true resolution rate": k["true_resolution_rate"], "gaming gap": k["gaming_gap"],
            "satisfaction rate": k["satisfaction_rate"],
            "backlog": float(len(open_ids)), "overdue": float((self.cases.due[open_ids] < now).sum()),
            # trust is updated lazily: the stored arrays are stale, the running means are exact
            "mean trust": float(self.population.mean_trust(now)),
            "mean efficacy": float(self.population.mean_efficacy(now)),
        }
        self.datacollector.collect(self)


# ------------------------------------------------------------------------------------------ network
AGGREGATE_TOWNSHIPS_ABOVE = 60
"""With more townships than this, the drawing groups the township bureaus by county and category (one mark
per group, holding the sum of their cases); the township units stay one mark each."""
UP_COLOUR = "#1f4e99"
"""Counterpart edges that carry orders up (prefecture → province → central), and the outline of relays."""
DOWN_COLOUR = "#7aa6d6"
"""Counterpart edges that carry orders down (prefecture → counties → townships)."""
RELAY_LABEL = "relay (passes orders on)"
DEPARTMENT_LABEL = "handling department"
UNIT_LABEL = "unit"


def hierarchy_layout(h: Hierarchy) -> dict[str, tuple[float, float]]:
    """Positions for every node of ``h.graph``: one row per level (central, province, prefecture, county,
    township; :data:`LEVEL_Y`), townships spread evenly, each unit above the middle of the units below it,
    and each unit's bureaus (departments and relays) a row :data:`DEPT_DROP` below it. The bureaus of the
    prefecture and below fan out under their unit; a bureau of the province or the centre stands above the
    same category's bureau at the prefecture, so an order forwarded up climbs straight up the drawing."""
    g = h.graph
    n_t = h.n_townships
    width = float(max(n_t - 1, 1))
    pos: dict[str, tuple[float, float]] = {}
    tx = np.linspace(0.0, width, n_t) if n_t > 1 else np.array([width / 2])
    span: dict[str, tuple[float, float]] = {}
    for j in range(n_t):
        pos[f"township:{j}"] = (float(tx[j]), LEVEL_Y["township"])
        span[f"township:{j}"] = (float(tx[j]) - 0.5, float(tx[j]) + 0.5)
    for i in range(h.n_counties):
        xs = tx[h.township_county == i]
        mid = float(xs.mean()) if len(xs) else width / 2
        pos[f"county:{i}"] = (mid, LEVEL_Y["county"])
        span[f"county:{i}"] = (float(xs.min()) - 0.5, float(xs.max()) + 0.5) if len(xs) else (mid - 0.5, mid + 0.5)
    for unit in ("prefecture", "province", "central"):
        pos[unit] = (width / 2, LEVEL_Y[unit])
        span[unit] = (-0.5, width + 0.5)
    by_unit: dict[str, list[str]] = {}
    for node, data in g.nodes(data=True):
        if data.get("kind") in ("department", "relay"):
            by_unit.setdefault(data["unit"], []).append(node)
    upper = {Level.CENTRAL.value, Level.PROVINCE.value}
    for unit, nodes in by_unit.items():
        if unit in upper:
            continue
        lo, hi = span[unit]
        pad = 0.15 * (hi - lo)
        xs = np.linspace(lo + pad, hi - pad, len(nodes)) if len(nodes) > 1 else np.array([(lo + hi) / 2])
        y = pos[unit][1] - DEPT_DROP
        for node, x in zip(sorted(nodes), xs, strict=True):
            pos[node] = (float(x), y)
    for unit in ("province", "central"):  # above the prefecture's bureau of the same category
        nodes = sorted(by_unit.get(unit, []))
        y = pos[unit][1] - DEPT_DROP
        spare = np.linspace(0.35 * width, 0.65 * width, len(nodes)) if len(nodes) > 1 else [width / 2]
        for node, x in zip(nodes, spare, strict=True):
            below = f"dept:{g.nodes[node]['category']}@prefecture"
            pos[node] = (pos[below][0] if below in pos else float(x), y)
    return pos


def held_ids(model: GovernanceModel) -> np.ndarray:
    """Open cases that a bureau holds: every open case dispatched (or sent back) to the hierarchy. Its holder
    is ``cases.dept``: the relay passing it on or the department handling it (in transit: the bureau it is
    sent to, or, bounced, the one that returned it; replied and awaiting the call-back: the one that replied).
    Not held: cases awaiting intake and answers given at intake."""
    cs = model.cases
    ids = cs.open_ids()
    return ids[~np.isnan(cs.dispatched[ids]) | ~np.isnan(cs.held_since[ids])]


def node_loads(model: GovernanceModel) -> dict[str, tuple[int, int]]:
    """Open cases held and overdue open cases held, per node, at the model's current hour.

    A bureau (handling department or relay) holds the open cases whose ``cases.dept`` it is
    (:func:`held_ids`): every held case counts at exactly one bureau. A unit (central, province, prefecture,
    county, township) holds what its own bureaus hold, so each level's units add up to its bureaus and all
    units together to every held case.
    """
    cs = model.cases
    h = model.hierarchy
    ids = held_ids(model)
    over = cs.due[ids] < float(model.hour)
    dept = cs.dept[ids]
    n_d = len(h.departments)
    d_all = np.bincount(dept, minlength=n_d)
    d_over = np.bincount(dept[over], minlength=n_d)
    units = [n for n, d in h.graph.nodes(data=True) if d.get("kind") == "unit"]
    acc = {u: [0, 0] for u in units}
    out: dict[str, tuple[int, int]] = {}
    for rec in h.departments:
        n, o = int(d_all[rec.index]), int(d_over[rec.index])
        out[rec.node] = (n, o)
        acc[rec.unit][0] += n
        acc[rec.unit][1] += o
    out.update({u: (n, o) for u, (n, o) in acc.items()})
    return out


def short_name(node: str) -> str:
    """``dept:housing@county:2`` -> ``county 2``; ``township:5`` -> ``township 5``."""
    unit = node.split("@", 1)[1] if node.startswith("dept:") else node
    return unit.replace(":", " ")


def route_text(route: list[str]) -> str:
    """The order's path as text: ``platform → prefecture → county 0 → township 3``."""
    return " → ".join("platform" if n == "platform" else short_name(n) for n in route)


def holder_text(model: GovernanceModel, case: int) -> str:
    """Who holds an open case now: ``county 2 (relay)`` or ``township 5 (department)``."""
    rec = model.hierarchy.departments[int(model.cases.dept[case])]
    return f"{short_name(rec.node)} ({rec.role})"


def overdue_cases(model: GovernanceModel, n: int = 10) -> pd.DataFrame:
    """The ``n`` most overdue open cases (most hours past due first) with their route.

    Columns: case, category, township, status, hours_overdue (h), opened_day, flags, held_by (the bureau
    holding it now, relay or department; "platform" before dispatch), route (platform to the handling
    department, read from the route table of the dispatch mode in force).
    """
    cs = model.cases
    now = float(model.hour)
    ids = cs.open_ids()
    ids = ids[cs.due[ids] < now]
    cols = ["case", "category", "township", "status", "hours_overdue", "opened_day", "flags", "held_by", "route"]
    if len(ids) == 0:
        return pd.DataFrame(columns=cols)
    late = now - cs.due[ids]
    top = ids[np.argsort(-late, kind="stable")[:n]]
    held = set(np.intersect1d(top, held_ids(model)).tolist())
    mode = model.settings.policy.dispatch_mode
    rows = []
    for c in top.tolist():
        cat = model.category_names[int(cs.category[c])]
        twp = int(cs.region[c])
        flags = [f for f in ("supervised", "escalated", "reopened", "misrouted") if bool(getattr(cs, f)[c])]
        rows.append({
            "case": int(c), "category": cat, "township": twp,
            "status": STATUS_NAMES[int(cs.status[c])].replace("_", " "),
            "hours_overdue": round(float(now - cs.due[c]), 1),
            "opened_day": int(cs.created[c] // 24),
            "flags": ", ".join(flags),
            "held_by": holder_text(model, c) if c in held else "platform",
            "route": route_text(model.hierarchy.route(cat, twp, DispatchMode(mode))),
        })
    return pd.DataFrame(rows, columns=cols)


@dataclass
class Mark:
    """One mark of the network drawing: a node, or (in a big city) a group of township bureaus."""

    key: str
    kind: str  # "unit", "department" or "relay"
    level: str
    x: float
    y: float
    n_open: int
    n_over: int
    members: list[str] = field(default_factory=list)


def network_marks(model: ExplorerModel, loads: dict[str, tuple[int, int]] | None = None
                  ) -> tuple[dict[str, Mark], dict[str, str]]:
    """The marks :func:`draw_network` draws, and the mark of every node of the graph.

    Every unit and bureau is its own mark, except, with more than :data:`AGGREGATE_TOWNSHIPS_ABOVE`
    townships, the township bureaus: one mark per county and category, at the middle of its members, holding
    the sum of their cases.
    """
    h = model.hierarchy
    g = h.graph
    pos = model.layout
    loads = loads if loads is not None else node_loads(model)
    group = h.n_townships > AGGREGATE_TOWNSHIPS_ABOVE
    marks: dict[str, Mark] = {}
    mark_of: dict[str, str] = {}
    for node, data in g.nodes(data=True):
        kind, level = data["kind"], data["level"]
        key = node
        if group and kind != "unit" and level == Level.TOWNSHIP.value:
            county = int(h.township_county[int(data["unit"].split(":")[1])])
            key = f"dept:{data['category']}@townships of county:{county}"
        mark = marks.get(key)
        if mark is None:
            mark = marks[key] = Mark(key, kind, level, 0.0, pos[node][1], 0, 0)
        mark.members.append(node)
        mark.n_open += loads[node][0]
        mark.n_over += loads[node][1]
        mark_of[node] = key
    fans: dict[str, list[Mark]] = {}
    for mark in marks.values():
        mark.x = float(np.mean([pos[n][0] for n in mark.members]))
        if len(mark.members) > 1:
            fans.setdefault(mark.key.split("@", 1)[1], []).append(mark)
    for fan in fans.values():  # a county's groups side by side across its townships
        xs = [pos[n][0] for m in fan for n in m.members]
        lo, hi = min(xs), max(xs)
        pad = 0.15 * (hi - lo)
        spots = np.linspace(lo + pad, hi - pad, len(fan)) if len(fan) > 1 else [(lo + hi) / 2]
        for mark, x in zip(sorted(fan, key=lambda m: m.key), spots, strict=True):
            mark.x = float(x)
    return marks, mark_of


def _level_index(level: str) -> int:
    return [lv.value for lv in LEVELS].index(level)


Segment = tuple[tuple[float, float], tuple[float, float]]


def _draw_edges(ax, model: ExplorerModel, marks: dict[str, Mark], mark_of: dict[str, str], cascade: bool,
                crowd: float) -> dict[str, set[Segment]]:
    """Edges between marks (a grouped mark stands for its members; each segment drawn once): admin (dark
    grey; thinner down to the townships of a big city), attached (light grey), counterpart down (pale blue)
    and up (dark blue, with arrows). Counterpart edges only in a cascade. Returns the segments by kind."""
    g = model.hierarchy.graph
    segs: dict[str, set[Segment]] = {k: set() for k in ("admin", "admin-township", "attached", "down", "up")}
    for u, v, kind in g.edges(data="kind"):
        if mark_of[u] == mark_of[v] or (kind == "attached" and len(marks[mark_of[v]].members) > 1):
            continue
        if kind == "counterpart":
            if not cascade:
                continue
            kind = "up" if _level_index(g.nodes[v]["level"]) < _level_index(g.nodes[u]["level"]) else "down"
        elif kind == "admin" and g.nodes[v]["level"] == Level.TOWNSHIP.value:
            kind = "admin-township"
        a, b = marks[mark_of[u]], marks[mark_of[v]]
        segs[kind].add(((a.x, a.y), (b.x, b.y)))
    styles = {"admin": ("#555555", 1.2, 0.9), "admin-township": ("#555555", max(1.2 * crowd, 0.35), 0.8),
              "attached": ("#bbbbbb", 0.5, 0.7 * max(crowd, 0.4)), "down": (DOWN_COLOUR, 0.6, 0.5 * max(crowd, 0.5)),
              "up": (UP_COLOUR, 1.6, 0.95)}
    for kind, (colour, lw, alpha) in styles.items():
        if segs[kind]:
            ax.add_collection(LineCollection(sorted(segs[kind]), colors=colour, linewidths=lw, alpha=alpha,
                                             zorder=2 if kind == "up" else 1, gid=f"edges-{kind}"))
    for a, b in segs["up"]:
        ax.annotate("", xy=b, xytext=a, zorder=2, arrowprops=dict(arrowstyle="-|>", color=UP_COLOUR, lw=1.6,
                                                                  shrinkA=6, shrinkB=7, mutation_scale=11))
    return segs


def _draw_route(ax, model: ExplorerModel, xy) -> bool:
    """The route of the most overdue open case (red) and a ring round the bureau holding it now (a relay on
    the way, or its handling department). False when no case is overdue."""
    top = overdue_cases(model, 1)
    if not len(top):
        return False
    h = model.hierarchy
    c = int(top["case"].iloc[0])
    cat = model.category_names[int(model.cases.category[c])]
    route = h.route(cat, int(model.cases.region[c]), DispatchMode(model.settings.policy.dispatch_mode))
    pts = [xy("prefecture") if n == "platform" else xy(n) for n in route]
    xs, ys = zip(*pts, strict=True)
    ax.plot(xs, ys, color="crimson", lw=2.2, alpha=0.85, zorder=2, gid="route")
    if top["held_by"].iloc[0] != "platform":
        hx, hy = xy(h.departments[int(model.cases.dept[c])].node)
        ax.scatter([hx], [hy], s=330, facecolors="none", edgecolors="crimson", linewidths=1.8, zorder=4,
                   gid="route-holder")
    return True


MARK_STYLES = {"unit": ("o", 40.0, 420.0, "#333333", 0.4, UNIT_LABEL),
               "department": ("s", 12.0, 300.0, "#333333", 0.4, DEPARTMENT_LABEL),
               "relay": ("D", 10.0, 240.0, UP_COLOUR, 1.0, RELAY_LABEL)}
"""kind -> (marker, least area, added area at the largest load, outline colour, outline width, legend label).
Relays are diamonds with a blue outline; their areas are a little smaller (a diamond looks bigger)."""


def _row_scales(marks: list[Mark], sizes: np.ndarray, pts_per_unit: float) -> np.ndarray:
    """A factor per mark that shrinks each row (marks at one height) so that its biggest mark fits in the
    room between close neighbours (the lower quartile of the gaps); 1 where there is room."""
    ys = np.array([m.y for m in marks])
    xs = np.array([m.x for m in marks])
    out = np.ones(len(marks))
    for y in np.unique(ys):
        row = ys == y
        gaps = np.diff(np.unique(xs[row]))
        if len(gaps) == 0:
            continue
        room = 0.9 * float(np.percentile(gaps, 25)) * pts_per_unit  # points
        out[row] = min(1.0, room ** 2 / float(sizes[row].max()))
    return out


def _draw_marks(ax, marks: dict[str, Mark], pts_per_unit: float) -> None:
    """Units, departments and relays, coloured by the overdue share of the open cases held (light grey: none
    held) with area growing with the square root of that number, relative to the largest of its group
    (units; bureaus, departments and relays alike); a crowded row is shrunk as a whole (:func:`_row_scales`)."""
    cmap = matplotlib.colormaps["RdYlGn_r"]
    ms = list(marks.values())
    top_open = {"unit": max([m.n_open for m in ms if m.kind == "unit"] + [1]),
                "bureau": max([m.n_open for m in ms if m.kind != "unit"] + [1])}
    sizes = np.array([MARK_STYLES[m.kind][1] + MARK_STYLES[m.kind][2] * math.sqrt(
        m.n_open / top_open["unit" if m.kind == "unit" else "bureau"]) for m in ms])
    scale = _row_scales(ms, sizes, pts_per_unit)
    sizes = np.maximum(sizes * scale, 4.0)
    for kind, (marker, _, _, edge, lw, label) in MARK_STYLES.items():
        pick = np.array([m.kind == kind for m in ms])
        if not pick.any():
            continue
        sel = [m for m in ms if m.kind == kind]
        share = np.array([m.n_over / m.n_open if m.n_open else np.nan for m in sel])
        colours = [cmap(v) if v == v else "#e4e4e4" for v in share]
        ax.scatter([m.x for m in sel], [m.y for m in sel], s=sizes[pick], c=colours, marker=marker,
                   edgecolors=edge, linewidths=lw * np.where(scale[pick] < 0.4, 0.6, 1.0), zorder=3, label=label,
                   gid=f"marks-{kind}")


def _draw_labels(ax, model: ExplorerModel, loads: dict[str, tuple[int, int]], xy) -> None:
    """The units above the counties with the cases they hold (the prefecture also with every open case,
    the platform's), the bureaus of the province and the centre by category and role, the counties."""
    h = model.hierarchy
    for unit in ("central", "province", "prefecture"):
        left = unit == "prefecture"  # the route and the orders forwarded up leave it to the right
        extra = f" · {len(model.cases.open_ids())} open in all (platform)" if left else ""
        ax.annotate(f"{unit}: {loads[unit][0]} held{extra}", xy(unit), xytext=(-12 if left else 12, 6),
                    textcoords="offset points", fontsize=8, ha="right" if left else "left", zorder=5)
    for rec in h.departments:
        if rec.level in (Level.CENTRAL, Level.PROVINCE):
            role = "relay" if rec.role == "relay" else "dept"
            ax.annotate(f"{rec.category}\n{role}: {loads[rec.node][0]}", xy(rec.node), xytext=(0, 8),
                        textcoords="offset points", fontsize=7, ha="center", va="bottom", color="#222222",
                        linespacing=1.0, zorder=5)
    for i in range(h.n_counties):
        ax.annotate(f"county {i}", xy(f"county:{i}"), xytext=(8, 5), textcoords="offset points", fontsize=7,
                    zorder=5)


def _legend(ax, cascade: bool, route_drawn: bool) -> None:
    def dot(marker: str, edge: str, label: str) -> Line2D:
        return Line2D([], [], ls="", marker=marker, ms=7, mfc="#e4e4e4", mec=edge, mew=1.0, label=label)

    handles = [dot("o", "#333333", UNIT_LABEL), dot("s", "#333333", DEPARTMENT_LABEL),
               dot("D", UP_COLOUR, RELAY_LABEL)]
    if cascade:
        handles += [Line2D([], [], color=DOWN_COLOUR, lw=1.2, label="order passed down (counterpart)"),
                    Line2D([], [], color=UP_COLOUR, lw=1.6, marker=">", ms=5,
                           label="order forwarded up to province / central (counterpart)")]
    if route_drawn:
        handles += [Line2D([], [], color="crimson", lw=2.2, label="route of the most overdue case"),
                    Line2D([], [], ls="", marker="o", ms=9, mfc="none", mec="crimson", mew=1.6,
                           label="where that case is now")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, -0.01), ncol=4, fontsize=7,
              frameon=False, handletextpad=0.4, columnspacing=1.5)


def draw_network(model: ExplorerModel, fig: Figure | None = None) -> Figure:
    """Draw the five levels (central, province, prefecture, county, township; one row each, the bureaus
    just below their unit) with their load.

    Units are circles, handling departments squares and relays (bureaus that only pass orders on in a
    cascade) diamonds with a blue outline; each is coloured by the overdue share of the open cases it holds
    and sized by that number (:func:`node_loads`). Counterpart edges show the way orders travel in a
    cascade: pale blue down to counties and townships, dark blue with arrows up to the province and the
    centre. The route of the most overdue open case is drawn in red, with a ring where it is now. In a big
    city the township bureaus are grouped (:func:`network_marks`). The legend names every kind of mark.
    """
    fig = fig or Figure(figsize=(12.0, 5.6), dpi=90)
    ax = fig.subplots()
    h = model.hierarchy
    loads = node_loads(model)
    marks, mark_of = network_marks(model, loads)
    cascade = model.settings.policy.dispatch_mode == DispatchMode.CASCADE
    crowd = min(1.0, 40.0 / h.n_townships)  # fainter township edges in a big city

    def xy(node: str) -> tuple[float, float]:
        m = marks[mark_of[node]]
        return m.x, m.y

    _draw_edges(ax, model, marks, mark_of, cascade, crowd)
    route_drawn = _draw_route(ax, model, xy)
    width = max(h.n_townships - 1, 1)
    x_range = width + 1.6 + 0.04 * width
    _draw_marks(ax, marks, fig.get_figwidth() * 72.0 * 0.84 / x_range)
    _draw_labels(ax, model, loads, xy)
    ax.set_yticks([LEVEL_Y[lv.value] for lv in LEVELS], [lv.value for lv in LEVELS])
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    ax.set_xlim(-0.8, width + 0.8 + 0.04 * width)
    ax.set_ylim(LEVEL_Y["township"] - DEPT_DROP - 0.35, LEVEL_Y["central"] + 0.45)
    sm = matplotlib.cm.ScalarMappable(norm=Normalize(0.0, 1.0), cmap=matplotlib.colormaps["RdYlGn_r"])
    fig.colorbar(sm, ax=ax, fraction=0.025, pad=0.01, label="overdue share of open cases held")
    _legend(ax, cascade, route_drawn)
    mode = "cascade (relays pass orders on)" if cascade else "direct (one hop; relays idle)"
    grouped = (f"; township bureaus grouped by county and category ({h.n_townships} townships)"
               if h.n_townships > AGGREGATE_TOWNSHIPS_ABOVE else "")
    ax.set_title(f"Hierarchy on day {model.day:.0f}, dispatch {mode}{grouped}\ncircles units, squares handling "
                 f"departments, diamonds relays; size = open cases held, colour = overdue share", fontsize=9)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------ page
def _controls(startup: Path) -> dict:
    """SolaraViz ``model_params``: each control starts at the startup scenario's value."""
    choices = scenario_choices(startup=str(startup))
    sc = load_scenario(startup)
    p = sc.policy
    return {
        "scenario_file": {"type": "Select", "label": "Scenario file", "value": label_of(startup, choices),
                          "values": list(choices)},
        "use_scenario_policies": {"type": "Checkbox", "value": False,
                                  "label": "Run the file's own policies (ignore the policy controls)"},
        "response_mandate_hours": {"type": "SliderInt", "label": "Mandate h (0 none)",
                                   "value": int(p.response_mandate_hours or 0), "min": 0, "max": 72, "step": 6},
        "supervision_intensity": {"type": "SliderInt", "label": "Supervision /day",
                                  "value": int(p.supervision_intensity), "min": 0, "max": 100, "step": 5},
        "dispatch_mode": {"type": "Select", "label": "Dispatch", "value": p.dispatch_mode.value,
                          "values": [m.value for m in DispatchMode]},
        "platform_hours": {"type": "Select", "label": "Platform intake hours", "value": p.platform_hours.value,
                           "values": ["7x24", "office"]},
        "tracking": {"type": "Checkbox", "label": "Tracking (deadline reminders)", "value": p.tracking},
        "public_ranking": {"type": "Checkbox", "label": "Monthly public ranking", "value": p.public_ranking},
        "systemic_fix": {"type": "Checkbox", "label": "Systemic fixes of repeated complaints",
                         "value": p.systemic_fix},
        "demand_multiplier": {"type": "SliderFloat", "label": "Demand ×", "value": 1.0,
                              "min": 0.25, "max": 3.0, "step": 0.25},
        "seed": {"type": "SliderInt", "label": "Seed", "value": int(sc.run.seed), "min": 0, "max": 99, "step": 1},
    }


def _style_axes(title: str, ylim: str = "zero"):
    """A ``post_process`` for Mesa's plot component: title, size, x axis from day 0; ``ylim`` "unit" (0–1),
    "zero" (from 0) or "auto"."""

    def post(ax) -> None:
        ax.set_title(title, fontsize=10)
        if ylim == "unit":
            ax.set_ylim(0.0, 1.02)
        elif ylim == "zero":
            ax.set_ylim(bottom=0.0)
        ax.set_xlim(0.0, max(1.0, float(ax.dataLim.x1)))
        ax.figure.set_size_inches(4.2, 2.8)
        ax.figure.set_dpi(90)
        ax.legend(loc="lower left", fontsize=8, frameon=False)

    return post


# Mesa's plot components over the model's DataCollector; the x axis ("Step") counts days.
RatesPlot, _ = make_plot_component(RATE_COLOURS, post_process=_style_axes("Rates to date (share of cases)", "unit"))
ResolutionPlot, _ = make_plot_component(
    RESOLUTION_COLOURS, post_process=_style_axes("Resolution: recorded vs true, gaming gap", "unit"))
LoadPlot, _ = make_plot_component(LOAD_COLOURS, post_process=_style_axes("Open cases: backlog and overdue"))
TrustPlot, _ = make_plot_component(TRUST_COLOURS, post_process=_style_axes("Citizens: mean trust, efficacy (0–1)",
                                                                           "auto"))

CSS = """
.wz-network img, .wz-plots img { max-width: 100%; height: auto; }
.wz-plots > div { min-width: 0; }
.v-card:has(.v-select) .v-slider-thumb__label-container { display: block !important; }
.v-slider-thumb__label { transform: scale(0.8) !important; }
.wz-table { overflow-x: auto; max-width: 100%; }
.wz-table table { border-collapse: collapse; font-size: 13px; width: 100%; }
.wz-table th { text-align: left; border-bottom: 1px solid #999; padding: 2px 8px; white-space: nowrap; }
.wz-table td { border-bottom: 1px solid #e3e3e3; padding: 2px 8px; }
.wz-status, .wz-caption { font-size: 14px; line-height: 1.5; margin: 6px 0; }
"""


def status_line(model: ExplorerModel) -> str:
    """Two lines (HTML): the settings in force, and today's numbers."""
    p = model.settings.policy
    s = model.snapshot
    mandate = f"{p.response_mandate_hours:g} h" if p.response_mandate_hours else "none"
    on = {True: "on", False: "off"}
    rate = lambda v: "n/a" if v != v else f"{v:.3f}"  # noqa: E731
    error = f'<span style="color:#b00020">{html.escape(model.load_error)}</span><br>' if model.load_error else ""
    return error + (f"<b>{html.escape(model.settings.name)}</b>, seed {model.seed}: mandate {mandate} · supervision "
            f"{p.supervision_intensity:g}/day · {p.dispatch_mode.value} dispatch · {p.platform_hours.value} intake · "
            f"tracking {on[p.tracking]} · ranking {on[p.public_ranking]} · systemic fix {on[p.systemic_fix]}<br>"
            f"<b>Day {model.day:.0f} of {model.total_days:.0f}</b>: response rate {rate(s['response rate'])} · "
            f"resolution rate {rate(s['resolution rate'])} (recorded) · true resolution rate "
            f"{rate(s['true resolution rate'])} · gaming gap {rate(s['gaming gap'])} · "
            f"satisfaction rate {rate(s['satisfaction rate'])} · "
            f"backlog {s['backlog']:.0f} · overdue {s['overdue']:.0f} · mean trust {s['mean trust']:.3f}")


@solara.component
def Network(model: ExplorerModel):
    counter = update_counter.get()
    fig = solara.use_memo(lambda: draw_network(model), [counter, model])  # redraw only after a step or reset
    with solara.Div(classes=["wz-network"]):
        solara.FigureMatplotlib(fig, format="png", dependencies=[counter, model])


TABLE_HEADERS = {"case": "case", "category": "category", "township": "township", "status": "status",
                 "hours_overdue": "hours overdue", "opened_day": "opened (day)", "flags": "flags",
                 "held_by": "held by", "route": "route"}


def table_html(df: pd.DataFrame) -> str:
    """The overdue table as a compact HTML table (cells escaped)."""
    head = "".join(f"<th>{html.escape(TABLE_HEADERS[c])}</th>" for c in df.columns)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in df.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


@solara.component
def OverdueTable(model: ExplorerModel):
    update_counter.get()
    df = overdue_cases(model, 10)
    if len(df):
        solara.HTML(unsafe_innerHTML=table_html(df), classes=["wz-table"])
    else:
        solara.HTML(unsafe_innerHTML="No open case is overdue yet.", classes=["wz-table"])


@solara.component
def Dashboard(model: ExplorerModel):
    update_counter.get()
    solara.Style(CSS)
    with solara.Column(style={"padding": "0px 12px"}, gap="4px"):
        solara.HTML(unsafe_innerHTML=status_line(model), classes=["wz-status"])
        Network(model)
        with solara.Columns([1, 1, 1, 1], classes=["wz-plots"]):
            RatesPlot(model)
            ResolutionPlot(model)
            LoadPlot(model)
            TrustPlot(model)
        solara.HTML(unsafe_innerHTML="<b>Most overdue open cases</b>: hours past the due time; held by = the "
                    "bureau that has the case now (a relay passing it on, or the handling department); route = the "
                    "order's hand-overs from the platform to the handling department. One <b>Step</b> = one day "
                    "(24 model hours); a changed control takes effect on <b>Reset</b>.", classes=["wz-caption"])
        OverdueTable(model)


@solara.component
def Page():
    startup = startup_scenario()
    params = solara.use_memo(lambda: _controls(startup), [str(startup)])
    first = solara.use_memo(
        lambda: ExplorerModel(**{k: v["value"] for k, v in params.items()}), [str(startup)])
    model = solara.use_reactive(first)
    SolaraViz(model, components=[], model_params=params, name="Wenzheng explorer · one step = one day")
    Dashboard(model.value)
