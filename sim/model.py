"""GovernanceModel: one city's citizens, platform, departments and supervisors, stepped hour by hour.

One step is one hour. Events inside the hour keep their exact (continuous) times: arrivals at 10.37 h,
a server free at 11.02 h. Work per step grows with the number of events (cases), not with the number
of citizens. Where things happen:

* :mod:`sim.demand` — problems arise and become reported cases;
* :mod:`sim.lifecycle` — every transition of a case, and the timed events (:class:`~sim.lifecycle.Event`);
* :mod:`sim.platform` — the operators' intake queue and the aggregation of complaints into systemic fixes;
* :mod:`sim.departments` — departments' queues, beliefs and choice of action;
* :mod:`sim.supervisors` — inspections, the sanction ladder, the ranking, escalations;
* :mod:`sim.levers` — the policy levers (the only reader of ``scenario.policy``);
* :mod:`sim.citizens` — the requesters: a vectorised population with agent-level rules.

Daily: supervision offices spend their budgets, departments learn from the day's record, trust spreads,
complaints are aggregated, and the time-series row is recorded. Monthly (every 30 days): the public
ranking, when that lever is on. A scenario's ``timeline`` changes the policy at the start of the given days
(:meth:`GovernanceModel.change_policy`); the changes applied are listed in the result's
``meta["policy_changes"]``.
"""

from __future__ import annotations

import math
import time as _time
from collections.abc import Callable
from typing import TYPE_CHECKING

import mesa
import numpy as np

from . import lifecycle
from .budgets import HoursLedger
from .calendar import WorkCalendar
from .cases import Agenda, ArrayAgenda, CaseStore, Status, Violation
from .citizens import Population
from .demand import Demand
from .departments import ActionChoice, DepartmentTable
from .hierarchy import Hierarchy
from .jit import choose, kernels
from .levers import Levers, PolicyChange, always_open, policy_timeline
from .lifecycle import HANDLERS, Event
from .platform import Platform
from .results import CHUNK_ROWS, RunResult
from .scenario import Scenario
from .supervisors import RANKING_WINDOW_DAYS, Supervisor

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

STREAMS = ("world", "population", "demand", "intake", "departments", "citizens", "supervision", "service",
           "mandate")

#: Each kind of event with its handler, in the order an hour's events are handled (the order of :class:`Event`).
_IN_ORDER = tuple((event, HANDLERS[event]) for event in Event)


class GovernanceModel(mesa.Model):
    """The simulator. ``GovernanceModel()`` builds the small default city; pass a :class:`Scenario` and a seed.

    Attributes of interest: ``levers`` (the policy), ``hierarchy`` (networkx graph and routing),
    ``population`` (columnar citizens), ``demand``, ``platform`` (a Mesa agent), ``departments`` (their
    columnar state and beliefs; ``departments.agents`` are the Mesa agents), ``supervisors`` (the city's
    office first, then the counties'; ``supervisor`` is the city's) and ``upper_supervisor``, ``ledger``
    (paid and worked hours),
    ``cases`` (the columnar case store), ``agenda`` (timed events), ``kernel_kind`` (the kernels the run
    uses, :func:`sim.jit.choose`: ``python``, ``numba`` or ``aot``), ``compiled`` (whether they are compiled;
    ``kernels`` is that module), ``daily`` (the time-series rows),
    ``timeline`` (policy changes still to come) and ``policy_changes`` (those applied); with a ``case_sink``,
    ``handed_off`` (store rows whose cases went to the sink), ``cases_handed_off`` (table rows handed on) and
    ``tally`` (their counts for the result, :class:`sim.metrics.CaseTally`).
    Times are hours since the start of the run (hour 0 is midnight of ``world.start_date``).
    """

    #: Settled cases a hand-off waits for (fewer: it waits for the next day's check, or the end of the run).
    HAND_OFF_ROWS = 100_000

    def __init__(self, scenario: Scenario | None = None, seed: int | None = None,
                 case_sink: Callable[[pd.DataFrame], None] | None = None) -> None:
        scenario = scenario if scenario is not None else Scenario()
        seed = scenario.run.seed if seed is None else int(seed)
        super().__init__(rng=seed)
        self.settings = scenario
        self.seed = seed
        self._streams(seed)
        run = scenario.run
        self.warmup_h = run.warmup_days * 24.0
        self.end_h = (run.warmup_days + run.days) * 24.0
        self.levers = Levers.from_scenario(scenario)
        self.calendar = WorkCalendar(scenario.world.start_date, scenario.world.holidays,
                                     math.ceil(self.end_h / 24.0) + 1)
        self.hierarchy = Hierarchy(scenario, self.rng_world)
        self.population = Population(self, self._population_rng)
        self.demand = Demand(self)
        self.category_names = self.demand.category_names
        self.dept_always_open = always_open(scenario.departments.hours)
        expected = self.demand.expected_cases(self.end_h)
        self.kernel_kind = choose(expected)  # plain Python, numba just in time or ahead of time (sim.jit)
        self.compiled = self.kernel_kind != "python"
        self.kernels = kernels(self.kernel_kind)
        self.cases = CaseStore(capacity=expected)
        # the compiled kernels keep the agenda in arrays (same events, same order as the plain Agenda)
        self.agenda = (ArrayAgenda(Event, self.kernels, math.ceil(self.end_h) + 1) if self.compiled
                       else Agenda())
        self.platform = Platform(self)
        self.departments = DepartmentTable(self, self.dept_always_open)
        self.choice = ActionChoice(self)
        self.supervisor = Supervisor(self, "prefecture", self.levers.inspection)
        self.county_supervisors: list[Supervisor] = []
        if self.levers.county_inspection.intensity > 0:
            self.county_supervisors = [Supervisor(self, "county", self.levers.county_inspection, county=i)
                                       for i in range(self.hierarchy.n_counties)]
        self.upper_supervisor = Supervisor(self, "province", self.levers.upper_inspection)
        self._bind_supervision()
        self.timeline = policy_timeline(scenario)  # dated policy changes still to come, in date order
        self.policy_changes: list[dict] = []  # the changes applied so far (day, date, hour, keys, values)
        self.ledger = HoursLedger(self.warmup_h)
        # participation counters, (area: 0 rural, 1 urban) × (kind: 0 citizen, 1 enterprise)
        self.problems = self.demand.problems
        self.reported = self.demand.reported
        self.daily: list[dict[str, float]] = []
        self.hour = 0
        self.rankings: list[tuple[int, list[int]]] = []
        self._dept_staff_total = float(self.hierarchy.dept_staff.sum())
        self.case_sink = case_sink
        self.handed_off = 0  # store rows whose cases' table rows went to case_sink
        self.cases_handed_off = 0  # table rows (measured cases) handed to case_sink
        self.tally = None  # the result's tally of the cases handed off (sim.metrics.CaseTally)

    def _streams(self, seed: int) -> None:
        """One independent random stream per part of the model, all spawned from ``seed``."""
        children = np.random.SeedSequence(seed).spawn(len(STREAMS))
        streams = {name: np.random.default_rng(ss) for name, ss in zip(STREAMS, children, strict=True)}
        self.rng_world = streams["world"]
        self._population_rng = streams["population"]
        self.rng_demand = streams["demand"]
        self.rng_intake = streams["intake"]
        self.rng_departments = streams["departments"]
        self.rng_citizens = streams["citizens"]
        self.rng_supervision = streams["supervision"]
        self.rng_mandate = streams["mandate"]
        self.rng_service = streams["service"]

    def _bind_supervision(self) -> None:
        """Give each supervision office its budget from the levers, and step those with a budget: the city's
        always, the counties' when ``county_inspection`` > 0 (created the first time), the province's when
        ``upper_inspection`` > 0 (in this order)."""
        lv = self.levers
        self.supervisor.budget = lv.inspection
        self.upper_supervisor.budget = lv.upper_inspection
        counties = lv.county_inspection.intensity > 0
        if counties and not self.county_supervisors:
            self.county_supervisors = [Supervisor(self, "county", lv.county_inspection, county=i)
                                       for i in range(self.hierarchy.n_counties)]
        for office in self.county_supervisors:
            office.budget = lv.county_inspection
        self.supervisors = [self.supervisor, *(self.county_supervisors if counties else [])]
        if lv.upper_inspection.intensity > 0:
            self.supervisors.append(self.upper_supervisor)

    def change_policy(self, change: PolicyChange) -> None:
        """Apply a dated policy change (a ``timeline`` entry) at the start of its hour: the levers become those
        of the new policy, and every part of the model that holds a lever gets the new one. Cases already in
        the system keep what they were given (their due times, their sign-for deadline or none, their route
        once dispatched); new cases, and orders dispatched from now on, follow the new policy."""
        self.levers = self.levers.then(change.levers, change.hour)
        self._bind_supervision()
        self.platform.rebind(self.levers, change.day)
        self.demand.rebind(self.levers.dispatch_mode, change.scenario)
        self.policy_changes.append(change.record(self.settings.world.start_date))

    # ------------------------------------------------------------------------------------------ step
    def step(self) -> None:
        """Advance one hour: a policy change due at this hour, new cases, intake, then the hour's events in
        lifecycle order, departments' work after each pass, staff accounting, and the daily tasks at the end
        of a day."""
        h = self.hour
        t_end = h + 1.0
        while self.timeline and self.timeline[0].hour <= h:
            self.change_policy(self.timeline.pop(0))
        lifecycle.report(self, self.demand.arise(h))
        self.platform.work(t_end)
        # an event may schedule more events in this same hour, so the hour's bucket is emptied
        # repeatedly (chains are short: at most a few passes)
        passes = 0
        while True:
            events = self.agenda.pop(h)
            if not events:
                break
            passes += 1
            for event, handle in _IN_ORDER:
                if event in events:
                    handle(self, *events[event])
            self._work_departments(t_end)
        if passes == 0 and self.departments.queues.active.any():
            self._work_departments(t_end)
        self._account_staff(h)
        if h % 24 == 23:
            self.end_of_day(h // 24)
        self.hour += 1
        if self.hour >= self.end_h:
            self.running = False

    def _work_departments(self, t_end: float) -> None:
        started = self.departments.work(t_end, self.cases)
        if started is not None:
            lifecycle.start_service(self, *started)

    def _account_staff(self, h: int) -> None:
        """Paid hours of this hour: department staff while departments work, operators while the platform
        is open; and the department servers that exist (for occupancy). After the warm-up (the ledger checks)."""
        office_open = self.calendar.office_hour(h)
        self.ledger.servers(self._dept_staff_total, h)
        if self.dept_always_open or office_open:
            self.ledger.paid("departments", self._dept_staff_total, h)
        if self.platform.always_open or office_open:
            self.ledger.paid("operators", float(self.settings.platform.operators), h)

    def end_of_day(self, day: int) -> None:
        """Daily tasks, in this order: every case overdue since before the day began is another day late,
        supervision offices spend their budgets, the monthly ranking, every
        department learns from the day's record, trust spreads, complaints are aggregated, the day's row."""
        now = (day + 1) * 24.0
        lifecycle.stay_overdue(self, day * 24.0)
        hours = self.settings.supervision.hours_per_inspection
        for office in self.supervisors:
            office.step()
            self.ledger.paid("supervisors", office.budget.intensity * hours, now - 1.0)
        if self.levers.ranking.due(day):
            self.rankings.append((day, self.supervisor.rank(now, RANKING_WINDOW_DAYS * 24.0).tolist()))
        t = self.departments
        t.learn_all()
        # each department's step (Department.step: tomorrow's queue order), those with work in one call; an idle
        # department's step does nothing
        t.choose_orders(np.flatnonzero((t.waiting > 0) | t.easy_first).tolist(), self)
        self.population.spread_trust()
        problems, today = self.demand.end_day()
        self.platform.aggregate(day, today)
        self._record_day(day, now, problems, today)
        self.platform.callback_minutes_today = 0.0
        self.platform.callbacks_today = 0
        if self.case_sink is not None:
            settled = self.settled(now, at_least=self.handed_off + self.HAND_OFF_ROWS)
            if settled - self.handed_off >= self.HAND_OFF_ROWS:
                self.hand_off(settled)

    def look_back_h(self) -> float:
        """How far back (h, by creation time) the run still reads or changes cases that are final: the audits
        sample cases created up to ``audit_window_days`` + :data:`sim.supervisors.AUDIT_LOOKBACK_DAYS` ago
        (and may reopen them), the monthly ranking measures the last 30 days."""
        from .supervisors import AUDIT_LOOKBACK_DAYS

        days = max(self.settings.supervision.audit_window_days + AUDIT_LOOKBACK_DAYS, RANKING_WINDOW_DAYS)
        return days * 24.0 + 24.0  # and a day to spare

    def settled(self, now: float, at_least: int = 0) -> int:
        """Store rows before this index hold settled cases: final (closed or abandoned), created more than
        :meth:`look_back_h` before ``now`` (h), and no ``RECONSIDER`` of theirs pending (their owner may still
        report the problem again, a repeat that copies some of their columns). Nothing in the run reads or
        changes them again, except their :data:`sim.cases.RESULT_COLUMNS`: other events still pending for a
        final case are dropped by their handlers on its status (a result column) before anything else is
        read. When the final, old cases alone reach fewer than ``at_least`` rows, that bound is returned
        without looking for pending reconsiderations (a search through the whole agenda)."""
        cs = self.cases
        cs.open_ids()  # moves the store's watermark of final cases
        upto = min(cs.first_open, cs.created_since(now - self.look_back_h()))
        if upto < at_least:
            return upto
        pending = self.agenda.min_id(Event.RECONSIDER)
        return upto if pending is None else min(upto, pending)

    def hand_off(self, upto: int) -> None:
        """Hand the table rows of the measured cases in store rows ``handed_off:upto`` to ``case_sink`` (in
        pieces of :data:`sim.results.CHUNK_ROWS` rows, copies the sink may keep) and count them into the
        result's tally (:class:`sim.metrics.CaseTally`), then release those store rows
        (:meth:`sim.cases.CaseStore.release`). The caller vouches that the cases are settled (:meth:`settled`).
        """
        from .metrics import CaseTally, StoreCases

        upto = min(int(upto), self.cases.n)
        if upto <= self.handed_off:
            return
        if self.tally is None:
            self.tally = CaseTally(self.end_h, self.settings.kpi.response_target_h)
        src = StoreCases(self, self.handed_off, upto)
        if len(src):
            for lo in range(0, len(src), CHUNK_ROWS):
                hi = min(lo + CHUNK_ROWS, len(src))
                self.case_sink(src.piece(lo, hi, copy=True))
                self.tally.add(src.arrays(lo, hi), src.cells(lo, hi))
            self.cases_handed_off += len(src)
        self.handed_off = upto
        self.cases.release(upto)

    def _record_day(self, day: int, now: float, problems: int, today: np.ndarray) -> None:
        """The day's row of the time series (counts at the end of the day; beliefs as the expected sanction
        per violation, plain requests, effort units, averaged over departments weighted by the cases each has
        received)."""
        cs = self.cases
        open_ids = cs.open_ids()
        st = cs.status[open_ids]
        t = self.departments
        every = np.arange(len(t))
        plain = np.zeros(len(t), bool)
        row = {
            "day": day, "problems": problems, "arrivals": len(today),
            "backlog": len(open_ids), "overdue": int((cs.due[open_ids] < now).sum()),
            "neglected": int((st == Status.NEGLECTED).sum()), "queued": int((st == Status.QUEUED).sum()),
            "mean_trust": self.population.mean_trust(now), "mean_efficacy": self.population.mean_efficacy(now),
            "inspections": sum(o.today for o in self.supervisors), "callbacks": self.platform.callbacks_today,
            "fixes_active": self.platform.fixes_active(day), "cherry_picking": int(t.easy_first.sum()),
        }
        weight = t.received if t.received.any() else None
        # every kind's expected sanction of every department (a row per kind: each row averaged as the 1-D
        # array of that kind alone would be, numpy summing a contiguous row pairwise either way)
        per_kind = t.expected_at(t.cells(every, plain.astype(np.int64)), np.array([int(k) for k in Violation]))
        means = np.average(per_kind, axis=1, weights=weight)
        for kind, value in zip(Violation, means.tolist(), strict=True):
            row[f"expected_sanction_{kind.name.lower()}"] = value
        row.update(self.ledger.day_row())
        self.daily.append(row)

    def run(self, progress: Callable[[float], None] | None = None) -> None:
        """Run to the end of the scenario; ``progress`` is called with the share done (0–1) each day.

        The hours are stepped here directly, as Mesa's ``model.step()`` would step them (``steps`` and ``time``
        advance by one an hour), without going through Mesa's event list for each: the model schedules no
        Mesa events, and the list's default step schedule (popped, run and pushed again every hour) cost
        about 6 % of a 30-day default run. Mesa's schedule is paused meanwhile and resumed at the end, so
        ``model.step()`` goes on from where the run stopped. A model whose Mesa event list holds anything
        else (a subclass that schedules events) is stepped through ``model.step()``, events and all."""
        schedule = getattr(self, "_default_schedule", None)
        direct = hasattr(schedule, "pause") and len(getattr(getattr(self, "_event_list", None), "_events", ())) == 1
        if direct:
            schedule.pause()
        try:
            while self.running:
                if direct:
                    self.steps += 1
                    self.time += 1
                    self._user_step()
                else:
                    self.step()
                if progress is not None and self.hour % 24 == 0:
                    progress(self.hour / self.end_h)
        finally:
            if direct:
                schedule.resume()

    def result(self, final: bool = False) -> RunResult:
        """The run's tables and KPIs so far. ``final``: the run is over and the model will not step again
        (the cases table then shares memory with the case store instead of copying it).

        With a ``case_sink``, a final result hands the rest of the cases table to the sink (the sink has then
        had the whole table, in order; at least one piece, empty for a run without cases) and holds no cases
        table itself (:attr:`RunResult.cases` says where it went); a result that is not final is not allowed.
        """
        from .metrics import build_result

        if self.case_sink is not None and not final:
            raise ValueError("a model with a case_sink gives only its final result (its cases went to the sink)")
        result = build_result(self, final=final, start=self.handed_off, tally=self.tally)
        if self.case_sink is not None:
            rest = result.take_source()
            if self.cases_handed_off == 0 or len(rest):
                for piece in rest.chunks(CHUNK_ROWS, copy=True):
                    self.case_sink(piece)
            self.cases_handed_off += len(rest)
            self.handed_off = self.cases.n
        result.meta["policy_changes"] = [dict(c) for c in self.policy_changes]
        result.meta["kernels"] = self.kernel_kind
        return result


def run_scenario(scenario: Scenario, seed: int | None = None, days: float | None = None,
                 warmup_days: float | None = None, progress: Callable[[float], None] | None = None,
                 case_sink: Callable[[pd.DataFrame], None] | None = None) -> RunResult:
    """Run one scenario with one seed and return its tables. ``days``/``warmup_days`` override the scenario's.

    ``case_sink``: a callable that takes the cases table a piece at a time, in order (a writer, an
    accumulator): settled cases go to it during the run and the rest at its end, and the case store releases
    most of a handed-on case's memory (:meth:`GovernanceModel.hand_off`); the result then holds no cases
    table. Without a sink, the result reads its table from the case store, which keeps every case."""
    upd = {}
    if days is not None:
        upd["run.days"] = days
    if warmup_days is not None:
        upd["run.warmup_days"] = warmup_days
    if seed is not None:
        upd["run.seed"] = int(seed)
    if upd:
        given = ", ".join(f"{k}={v:g}" for k, v in upd.items())
        scenario = scenario.with_overrides(upd, source=f"scenario '{scenario.name}' with {given}")
    t0 = _time.perf_counter()
    model = GovernanceModel(scenario, seed=scenario.run.seed, case_sink=case_sink)
    model.run(progress)
    result = model.result(final=True)
    result.meta["wall_s"] = _time.perf_counter() - t0
    return result
