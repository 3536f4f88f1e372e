"""Budgets: the hours each role is paid for, the hours it actually works, and planning department staff.

Roles: ``departments`` (their staff), ``operators`` (the platform's intake and call-back seats) and
``supervisors`` (inspections and audits). Paid hours (capacity) accrue hour by hour while a role is on
duty — a 7×24 seat counts every hour, i.e. all its shifts; work hours accrue when a piece of work is done.
Both count only after the warm-up. All hours are staff-hours (one person for one hour).

* capacity hours: what is paid (headcount × hours on duty; supervisors: the daily inspection budget ×
  hours per inspection);
* work hours: what is spent (service time of properly handled cases, perfunctory replies, intake
  handling, call-backs, inspections and audits);
* utilisation: work / capacity for operators and supervisors. A department's work is server occupancy:
  a properly handled case holds a member of staff from the start of handling to the reply, nights and
  weekends included (service times are elapsed hours), so its utilisation is that occupancy over
  staff × every hour (``server_hours``), not over the paid office hours;
* cost hours: everything paid, i.e. the total capacity hours of all roles.

Department staff are *inputs* of a scenario (``departments.staff`` by level, overridden per department by
``departments.staff_by_department``). Sizing departments for a target utilisation is a separate, explicit
planning step (:func:`plan_staff`, ``python run.py plan-staff``) that writes the staffing into a scenario
file, so that every scenario of a comparison can run with the same staff.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .calendar import OFFICE_CLOSE_H, OFFICE_OPEN_H
from .levers import always_open
from .scenario import DispatchMode, ScenarioError

if TYPE_CHECKING:  # pragma: no cover
    from .scenario import Scenario

ROLES: tuple[str, ...] = ("departments", "operators", "supervisors")

#: Load allowance for reopened and escalated cases in :func:`plan_staff` (as the old runtime sizing).
REWORK_FACTOR = 1.1


class HoursLedger:
    """Paid (capacity) and worked hours per role, after the warm-up (``warmup_h``, hours since the start).

    ``capacity_hours`` and ``work_hours``: role -> staff-hours so far (cumulative since the warm-up).
    """

    def __init__(self, warmup_h: float) -> None:
        self.warmup_h = warmup_h
        self.capacity_hours = dict.fromkeys(ROLES, 0.0)
        self.work_hours = dict.fromkeys(ROLES, 0.0)
        self.server_hours = 0.0  # department staff × every hour (what occupancy can fill)

    def paid(self, role: str, hours: float, t: float) -> None:
        """``hours`` (staff-hours) of paid time of ``role`` at time ``t`` (h since the start)."""
        if t >= self.warmup_h:
            self.capacity_hours[role] += hours

    def servers(self, staff: float, t: float) -> None:
        """One hour of ``staff`` department servers in existence at time ``t`` (open or not)."""
        if t >= self.warmup_h:
            self.server_hours += staff

    def work(self, role: str, hours: float, t: float) -> None:
        """``hours`` (staff-hours) of work done by ``role``, counted at time ``t`` (h since the start)."""
        if t >= self.warmup_h:
            self.work_hours[role] += hours

    @property
    def cost_hours(self) -> float:
        """Everything paid so far: the capacity hours of all roles (staff-hours)."""
        return float(sum(self.capacity_hours.values()))

    @property
    def total_work_hours(self) -> float:
        """Hours worked so far by all roles (staff-hours)."""
        return float(sum(self.work_hours.values()))

    def day_row(self) -> dict[str, float]:
        """Cumulative totals for the day's time-series row (call at the end of each day).

        ``cost_hours_cum`` and ``work_hours_cum`` (staff-hours since the warm-up);
        :func:`sim.metrics.timeseries_frame` turns every ``*_cum`` column into daily values.
        """
        return {"cost_hours_cum": self.cost_hours, "work_hours_cum": self.total_work_hours}

    def kpis(self) -> dict[str, float]:
        """The budget KPIs: per role ``capacity_hours_<role>``, ``work_hours_<role>`` (staff-hours) and
        ``utilisation_<role>`` (work / capacity; departments: occupancy / server hours; NaN when zero), the totals ``capacity_hours`` and
        ``work_hours``, and ``cost_hours`` (everything paid = total capacity hours)."""
        out: dict[str, float] = {}
        for role in ROLES:
            cap, work = float(self.capacity_hours[role]), float(self.work_hours[role])
            out[f"capacity_hours_{role}"] = cap
            out[f"work_hours_{role}"] = work
            base = self.server_hours if role == "departments" else cap
            out[f"utilisation_{role}"] = work / base if base > 0 else float("nan")
        out["capacity_hours"] = self.cost_hours
        out["work_hours"] = self.total_work_hours
        out["cost_hours"] = self.cost_hours
        return out


# ------------------------------------------------------------------------------------------ planning
class _PlanningCity:
    """The parts of a model that the expected load needs, built as :class:`sim.model.GovernanceModel`
    builds them (same random streams, so the same townships and population for the same seed)."""

    def __init__(self, scenario: Scenario) -> None:
        from .calendar import WorkCalendar
        from .citizens import Population
        from .demand import Demand
        from .hierarchy import Hierarchy
        from .levers import Levers
        from .model import STREAMS

        self.settings = scenario
        self.seed = scenario.run.seed
        streams = dict(zip(STREAMS, np.random.SeedSequence(self.seed).spawn(len(STREAMS)), strict=True))
        self.levers = Levers.from_scenario(scenario)
        self.warmup_h = scenario.run.warmup_days * 24.0
        self.end_h = (scenario.run.warmup_days + scenario.run.days) * 24.0
        self.calendar = WorkCalendar(scenario.world.start_date, scenario.world.holidays,
                                     math.ceil(self.end_h / 24.0) + 1)
        self.hierarchy = Hierarchy(scenario, np.random.default_rng(streams["world"]))
        self.population = Population(self, np.random.default_rng(streams["population"]))
        self.demand = Demand(self)


def expected_load(scenario: Scenario) -> dict[str, float]:
    """Expected department load before any behaviour, in server-hours per hour, by department node.

    Orders per hour to a department: the problem rate of the (category, township) cells it handles (or the
    fixed request stream split by category share and township population), times the reporting share
    assumed for planning (0.85 with citizen behaviour, else 1), times the share not answered at intake
    (1 − consultation share × ``platform.direct_answer_share``), times 1.1 for reopened and escalated
    cases; times the category's mean service time (h). A relay's load is every order whose cascade route
    passes it, times the mean relay handling time (``departments.relay_handling_h``, lognormal), divided by
    the open share of the week when departments keep office hours (a relay's short jobs do not run on past
    closing): relays are planned for the cascade whatever the scenario's dispatch mode, so that dispatch modes
    compare at equal staff. Office hours do not scale it: a case once started runs on. The population is drawn with the
    scenario's ``run.seed``.
    """
    scenario = scenario.with_overrides({"departments.staff_by_department": {}}, source="plan-staff")
    city = _PlanningCity(scenario)
    dm, h = city.demand, city.hierarchy
    rate, reporting = dm.expected_rate()
    dispatched = 1.0 - dm.category_consult * scenario.platform.direct_answer_share
    orders = rate * reporting * REWORK_FACTOR * dispatched[:, None]  # orders per hour per (category, township)
    load = orders * dm.category_service_mean_h[:, None]
    per_dept = np.zeros(len(h.departments))
    np.add.at(per_dept, h.handler.ravel(), load.ravel())
    # relays: every order of the cascade passes each relay of its route once, whatever the dispatch mode. Their
    # work is short, so it does not run on past closing time: in office hours a relay has only the open share
    # of the week to do it in (working days × 8 h of the run's calendar)
    d = scenario.departments
    relay_h = d.relay_handling_h * math.exp(d.relay_handling_sigma ** 2 / 2.0)  # mean of the lognormal
    if not always_open(d.hours):
        days = max(1, math.ceil(city.end_h / 24.0))
        relay_h /= float(city.calendar.is_workday[:days].mean()) * (OFFICE_CLOSE_H - OFFICE_OPEN_H) / 24.0
    route = h.routes[DispatchMode.CASCADE]
    for k in range(route.shape[2]):
        at = route[:, :, k]
        relay = (at >= 0) & h.dept_relay[np.maximum(at, 0)]
        np.add.at(per_dept, at[relay], orders[relay] * relay_h)
    return {rec.node: float(x) for rec, x in zip(h.departments, per_dept.tolist(), strict=True)}


def _check_utilisation(utilisation: float) -> float:
    try:
        u = float(utilisation)
    except (TypeError, ValueError):
        raise ScenarioError(f"utilisation must be a number in (0, 1], got {utilisation!r}") from None
    if not 0.0 < u <= 1.0:
        raise ScenarioError(f"utilisation must be in (0, 1] (share of staff time busy), got {utilisation!r}")
    return u


def plan_staff(scenario: Scenario, utilisation: float) -> dict[str, int]:
    """Staff per department (node name -> servers, sorted by name) that keeps each department's expected
    load (:func:`expected_load`) at ``utilisation`` (0–1]: ``max(1, ceil(load / utilisation))``.

    Any ``departments.staff_by_department`` in ``scenario`` is ignored (the plan replaces it).
    """
    u = _check_utilisation(utilisation)
    load = expected_load(scenario)
    return {node: max(1, math.ceil(load[node] / u)) for node in sorted(load)}


def staff_plan_yaml(staff: dict[str, int], indent: int = 2) -> str:
    """``staff_by_department:`` and its sorted entries as YAML lines, indented under ``departments:``."""
    pad = " " * indent
    lines = [f"{pad}staff_by_department:"]
    lines += [f"{pad}  '{node}': {int(staff[node])}" for node in sorted(staff)]
    return "\n".join(lines) + "\n"


def _budget_lines(scenario: Scenario, staff: dict[str, int]) -> list[str]:
    """The scenario's budget in words: department staff, operators, inspection and call-back budgets."""
    from .levers import Levers

    lv = Levers.from_scenario(scenario)
    p = scenario.platform
    callbacks = (f"call-backs within {p.callback_hours_per_day:g} operator-hours a day" if lv.callback.on
                 else "no call-backs")
    return [
        f"Budget: {sum(staff.values()):,} department staff in {len(staff)} departments "
        f"(hours: {scenario.departments.hours.value}); {p.operators} operators "
        f"({'7×24' if lv.platform_always_open else 'office hours'}); inspections "
        f"{lv.inspection.intensity:g} a day by the city and {lv.county_inspection.intensity:g} a day by each "
        f"county; {callbacks}.",
    ]


def write_staff_plan(scenario_path: str | Path, utilisation: float, out: str | Path,
                     overrides: list[str] | None = None) -> tuple[Path, dict[str, int]]:
    """Plan the staff of the scenario at ``scenario_path`` and write a scenario file ``out`` that ``extends``
    it (a path relative to ``out``) and sets ``departments.staff_by_department``, with a header comment that
    says how it was made. Returns (the path written, the plan). The written file is read back and checked.
    """
    from common.provenance import git_commit

    from .scenario import load_scenario

    src, dst = Path(scenario_path), Path(out)
    if dst.resolve() == src.resolve():
        raise ScenarioError(f"{dst}: --out must differ from the input scenario (the plan extends it)")
    if dst.suffix not in (".yaml", ".yml"):
        raise ScenarioError(f"{dst}: --out must be a .yaml file")
    scenario = load_scenario(src, overrides)
    staff = plan_staff(scenario, utilisation)
    extends = Path(os.path.relpath(src.resolve(), dst.parent.resolve())).as_posix()
    when = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    commit = git_commit(short=True)
    sets = "".join(f" --set {o}" for o in overrides or [])
    header = [
        f"{dst.name} — {src.name} with its departments staffed for utilisation {float(utilisation):g}.",
        f"Written by `python run.py plan-staff {src.as_posix()} --utilisation {float(utilisation):g}{sets} "
        f"--out {dst.as_posix()}` on {when}" + (f" (git {commit})" if commit else "") + ".",
        "Staff = max(1, ceil(expected load / utilisation)); expected load = orders per hour × mean service time "
        f"(h) × 1.1 (sim/budgets.py, expected_load), with the population of seed {scenario.run.seed}. Staff are "
        "inputs from here on: rerun plan-staff rather than edit by hand.",
        *_budget_lines(scenario, staff),
    ]
    wrapped = [w for line in header
               for w in textwrap.wrap(line, 108, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False)]
    text = "\n".join(f"# {line}" for line in wrapped) + "\n"
    text += f"extends: {extends}\n"
    if overrides:
        text += "# the --set overrides used for planning are not part of this file\n"
    text += "departments:\n" + staff_plan_yaml(staff)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, dst)
    _check_written(dst, src, staff)
    return dst, staff


def _check_written(dst: Path, src: Path, staff: dict[str, int]) -> None:
    """The written file must load and carry exactly the planned staff (an inherited plan for another city
    would leave names of departments this city does not have)."""
    from .scenario import load_scenario

    got: dict[str, Any] = dict(load_scenario(dst).departments.staff_by_department)
    stale = sorted(set(got) - set(staff))
    if stale:
        raise ScenarioError(
            f"{dst}: key 'departments.staff_by_department': {src} (or a file it extends) already names "
            f"{len(stale)} department(s) this city does not have, e.g. {', '.join(stale[:3])}; remove "
            f"departments.staff_by_department from the scenario this city extends, or plan that city instead")
    wrong = [n for n in staff if got.get(n) != staff[n]]
    if wrong:
        raise ScenarioError(f"{dst}: departments.staff_by_department reads back differently for {wrong[:3]}")
