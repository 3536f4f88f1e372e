"""Wenzheng (问政) interactive explorer: a Solara page on Mesa's ``SolaraViz``.

Start it with ``python run.py explore [SCENARIO]`` or ``make explore`` (it runs ``solara run app.py`` with
the environment variable ``WENZHENG_SCENARIO`` set to the scenario file), then open the printed address.

The page runs the same :class:`sim.model.GovernanceModel` as the command line. :class:`ExplorerModel` only
turns the controls into scenario overrides (``load_scenario(path).with_overrides({...})``) and, because a
model step is one hour, advances **one day (24 model hours) per step** of the explorer: the Step button
moves the city on by one day (times the "Render Interval" slider), and the "Time" shown is in days.

Views: the five-level hierarchy (units and their departments, coloured by the overdue share of the open
cases they hold and sized by how many they hold), live plots of the rates (cumulative to date, with the
command line's KPI definitions): response and satisfaction; resolution as the platform records it against
the true resolution (the problem solved) and their difference, the gaming gap; of backlog and overdue
cases, and of mean trust, and a table of the most overdue open cases with the route their order takes
through the hierarchy.

``sim`` never imports this module.
"""

from __future__ import annotations

import html
import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import solara  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from mesa import DataCollector  # noqa: E402
from mesa.visualization import SolaraViz, make_plot_component  # noqa: E402
from mesa.visualization.utils import update_counter  # noqa: E402

from sim import Scenario, WenzhengError, load_scenario  # noqa: E402
from sim.cases import STATUS_NAMES, Status  # noqa: E402
from sim.hierarchy import LEVELS, Hierarchy  # noqa: E402
from sim.metrics import cases_frame, kpis  # noqa: E402
from sim.model import GovernanceModel  # noqa: E402
from sim.scenario import DispatchMode  # noqa: E402

HERE = Path(__file__).resolve().parent
SCENARIO_DIR = HERE / "scenarios"
HOURS_PER_STEP = 24
"""Model hours advanced by one explorer step (one day)."""

RATE_COLOURS = {"response rate": "tab:blue", "satisfaction rate": "tab:orange"}
RESOLUTION_COLOURS = {"resolution rate": "tab:green", "true resolution rate": "tab:olive", "gaming gap": "tab:red"}
"""Resolution as recorded by the platform (the KPI ``resolution_rate``), as true, and recorded − true."""
LOAD_COLOURS = {"backlog": "tab:purple", "overdue": "tab:red"}
TRUST_COLOURS = {"mean trust": "tab:brown", "mean efficacy": "tab:gray"}
HELD = (Status.QUEUED, Status.NEGLECTED, Status.IN_SERVICE)
"""Statuses of a case that sits at its handling department."""
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
            "mean trust": float(self.population.trust.mean()),
            "mean efficacy": float(self.population.efficacy.mean()),
        }
        self.datacollector.collect(self)


# ------------------------------------------------------------------------------------------ network
def hierarchy_layout(h: Hierarchy) -> dict[str, tuple[float, float]]:
    """Positions for every node of ``h.graph``: one row per level, townships spread evenly, each unit above
    the middle of the units below it, and each unit's departments fanned out just below it."""
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
    for unit, nodes in by_unit.items():
        lo, hi = span[unit]
        pad = 0.15 * (hi - lo)
        xs = np.linspace(lo + pad, hi - pad, len(nodes)) if len(nodes) > 1 else np.array([(lo + hi) / 2])
        y = pos[unit][1] - DEPT_DROP
        for node, x in zip(sorted(nodes), xs, strict=True):
            pos[node] = (float(x), y)
    return pos


def node_loads(model: GovernanceModel) -> dict[str, tuple[int, int]]:
    """Open cases and overdue open cases per node at the model's current hour.

    A department holds the cases queued at it, neglected by it or being handled by it. A township or
    county unit holds every open case raised in its area; the prefecture (the platform's level) every open
    case; the province the open escalated cases (it acts on escalations). Relays hold none.
    """
    cs = model.cases
    now = float(model.hour)
    ids = cs.open_ids()
    st = cs.status[ids]
    over = cs.due[ids] < now
    h = model.hierarchy
    n_d = len(model.departments)
    held = np.isin(st, np.array([s.value for s in HELD]))
    d_all = np.bincount(cs.dept[ids][held], minlength=n_d)
    d_over = np.bincount(cs.dept[ids][held & over], minlength=n_d)
    region = cs.region[ids]
    t_all = np.bincount(region, minlength=h.n_townships)
    t_over = np.bincount(region[over], minlength=h.n_townships)
    c_all = np.bincount(h.township_county, weights=t_all, minlength=h.n_counties).astype(int)
    c_over = np.bincount(h.township_county, weights=t_over, minlength=h.n_counties).astype(int)
    esc = cs.escalated[ids]
    out: dict[str, tuple[int, int]] = {"central": (0, 0), "prefecture": (len(ids), int(over.sum())),
                                       "province": (int(esc.sum()), int((esc & over).sum()))}
    for j in range(h.n_townships):
        out[f"township:{j}"] = (int(t_all[j]), int(t_over[j]))
    for i in range(h.n_counties):
        out[f"county:{i}"] = (int(c_all[i]), int(c_over[i]))
    for rec in h.departments:
        out[rec.node] = (int(d_all[rec.index]), int(d_over[rec.index]))
    for node, data in h.graph.nodes(data=True):
        if data.get("kind") == "relay":
            out[node] = (0, 0)
    return out


def short_name(node: str) -> str:
    """``dept:housing@county:2`` -> ``county 2``; ``township:5`` -> ``township 5``."""
    unit = node.split("@", 1)[1] if node.startswith("dept:") else node
    return unit.replace(":", " ")


def route_text(route: list[str]) -> str:
    """The order's path as text: ``platform → prefecture → county 0 → township 3``."""
    return " → ".join("platform" if n == "platform" else short_name(n) for n in route)


def overdue_cases(model: GovernanceModel, n: int = 10) -> pd.DataFrame:
    """The ``n`` most overdue open cases (most hours past due first) with their route.

    Columns: case, category, township, status, hours_overdue (h), opened_day, flags, route.
    """
    cs = model.cases
    now = float(model.hour)
    ids = cs.open_ids()
    ids = ids[cs.due[ids] < now]
    cols = ["case", "category", "township", "status", "hours_overdue", "opened_day", "flags", "route"]
    if len(ids) == 0:
        return pd.DataFrame(columns=cols)
    late = now - cs.due[ids]
    top = ids[np.argsort(-late, kind="stable")[:n]]
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
            "route": route_text(model.hierarchy.route(cat, twp, DispatchMode(mode))),
        })
    return pd.DataFrame(rows, columns=cols)


def draw_network(model: ExplorerModel, fig: Figure | None = None) -> Figure:
    """Draw the hierarchy: units (circles) and departments (squares; relays hollow) coloured by the
    overdue share of the open cases they hold, sized by that number; the route of the most overdue open
    case is drawn in red."""
    fig = fig or Figure(figsize=(12.0, 4.6), dpi=90)
    ax = fig.subplots()
    g = model.hierarchy.graph
    pos = model.layout
    loads = node_loads(model)
    cmap = matplotlib.colormaps["RdYlGn_r"]
    norm = Normalize(0.0, 1.0)
    cascade = model.settings.policy.dispatch_mode == DispatchMode.CASCADE
    h = model.hierarchy
    crowd = min(1.0, 40.0 / h.n_townships)  # shrink township-level marks in a big city
    styles = {"admin": ("#555555", 1.2, 0.9), "attached": ("#bbbbbb", 0.5, 0.7 * crowd),
              "counterpart": ("#7aa6d6", 0.5, 0.45 * crowd)}
    for kind, (colour, lw, alpha) in styles.items():
        if kind == "counterpart" and not cascade:
            continue
        segs = [(pos[u], pos[v]) for u, v, d in g.edges(data=True) if d.get("kind") == kind]
        if segs:
            ax.add_collection(LineCollection(segs, colors=colour, linewidths=lw, alpha=alpha, zorder=1))
    top = overdue_cases(model, 1)
    if len(top):
        c = int(top["case"].iloc[0])
        cat = model.category_names[int(model.cases.category[c])]
        route = model.hierarchy.route(cat, int(model.cases.region[c]), DispatchMode(model.settings.policy.dispatch_mode))
        pts = [pos["prefecture"] if n == "platform" else pos[n] for n in route]
        xs, ys = zip(*pts, strict=True)
        ax.plot(xs, ys, color="crimson", lw=2.2, alpha=0.85, zorder=2, label="route of the most overdue case")
    # marker area grows with the square root of the open cases held, relative to the largest of its kind
    groups = {"unit": ("o", 40.0, 420.0), "department": ("s", 10.0, 260.0)}
    for kind, (marker, base, top_size) in groups.items():
        nodes = [n for n, d in g.nodes(data=True) if d.get("kind") == kind]
        xy = np.array([pos[n] for n in nodes])
        n_open = np.array([loads[n][0] for n in nodes], dtype=float)
        share = np.array([loads[n][1] / loads[n][0] if loads[n][0] else np.nan for n in nodes])
        colours = [cmap(norm(s)) if s == s else "#dddddd" for s in share]
        scale = np.where(xy[:, 1] < LEVEL_Y["county"] - DEPT_DROP, math.sqrt(crowd), 1.0)
        sizes = (base + top_size * np.sqrt(n_open / max(1.0, n_open.max()))) * scale
        ax.scatter(xy[:, 0], xy[:, 1], s=sizes, c=colours, marker=marker, edgecolors="#333333", linewidths=0.4,
                   zorder=3)
    relays = [n for n, d in g.nodes(data=True) if d.get("kind") == "relay"]
    if relays:
        xy = np.array([pos[n] for n in relays])
        ax.scatter(xy[:, 0], xy[:, 1], s=10 * crowd, facecolors="white", edgecolors="#7aa6d6", marker="s",
                   linewidths=0.6, zorder=3)
    for unit in ("central", "province", "prefecture"):
        x, y = pos[unit]
        n_open = loads[unit][0]
        ax.annotate(f"{unit}{' (platform)' if unit == 'prefecture' else ''}: {n_open} open", (x, y),
                    xytext=(12, 6), textcoords="offset points", fontsize=8, zorder=4)
    for i in range(h.n_counties):
        x, y = pos[f"county:{i}"]
        ax.annotate(f"county {i}", (x, y), xytext=(8, 5), textcoords="offset points", fontsize=7, zorder=4)
    ax.set_yticks([LEVEL_Y[lv.value] for lv in LEVELS], [lv.value for lv in LEVELS])
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    width = max(h.n_townships - 1, 1)
    ax.set_xlim(-0.8, width + 0.8 + 0.04 * width)
    ax.set_ylim(LEVEL_Y["township"] - DEPT_DROP - 0.35, LEVEL_Y["central"] + 0.45)
    sm = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=ax, fraction=0.025, pad=0.01, label="overdue share of open cases held")
    mode = "cascade (every level relays)" if cascade else "direct (one hop)"
    ax.set_title(f"Hierarchy on day {model.day:.0f}: circles units, squares departments (hollow: relays); "
                 f"size = open cases held; dispatch {mode}", fontsize=9)
    if len(top):
        ax.legend(loc="lower left", fontsize=7, frameon=False, bbox_to_anchor=(0.0, -0.1))
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
                 "hours_overdue": "hours overdue", "opened_day": "opened (day)", "flags": "flags", "route": "route"}


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
        solara.HTML(unsafe_innerHTML="<b>Most overdue open cases</b>: hours past the due time; route = the order's "
                    "hand-overs from the platform to the handling department. One <b>Step</b> = one day (24 model "
                    "hours); a changed control takes effect on <b>Reset</b>.", classes=["wz-caption"])
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
