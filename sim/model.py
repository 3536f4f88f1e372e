"""GovernanceModel: one city's citizens, platform, departments and supervisors, stepped hour by hour.

One step is one hour. Events inside the hour keep their exact (continuous) times: arrivals at 10.37 h,
a server free at 11.02 h. Work per step grows with the number of events (cases), not with the number
of citizens. Daily: supervision inspections, diligence decay, trust spreading, complaint aggregation
and the time-series row. Monthly (every 30 days): the public ranking, when the policy asks for it.
"""

from __future__ import annotations

import math
import time as _time
from collections.abc import Callable

import mesa
import numpy as np

from .calendar import WorkCalendar
from .cases import Agenda, CaseStore, Channel, Status
from .citizens import Population
from .departments import Department, EffortChoice
from .hierarchy import Hierarchy
from .platform import Platform
from .results import RunResult
from .scenario import Hours, QueueDiscipline, Scenario, ServiceDist
from .supervisors import Supervisor

STREAMS = ("world", "population", "demand", "intake", "departments", "citizens", "supervision", "service")


class GovernanceModel(mesa.Model):
    """The simulator. ``GovernanceModel()`` builds the small default city; pass a :class:`Scenario` and a seed.

    Attributes of interest: ``hierarchy`` (networkx graph and routing), ``population`` (columnar citizens),
    ``platform``, ``departments`` (Mesa agents), ``supervisor`` / ``upper_supervisor``, ``cases`` (the
    columnar case store) and ``daily`` (the time-series rows so far).
    """

    def __init__(self, scenario: Scenario | None = None, seed: int | None = None) -> None:
        scenario = scenario if scenario is not None else Scenario()
        seed = scenario.run.seed if seed is None else int(seed)
        super().__init__(rng=seed)
        self.settings = scenario
        self.seed = seed
        children = np.random.SeedSequence(seed).spawn(len(STREAMS))
        streams = {name: np.random.default_rng(ss) for name, ss in zip(STREAMS, children, strict=True)}
        self.rng_world = streams["world"]
        self.rng_demand = streams["demand"]
        self.rng_intake = streams["intake"]
        self.rng_departments = streams["departments"]
        self.rng_citizens = streams["citizens"]
        self.rng_supervision = streams["supervision"]
        self.rng_service = streams["service"]

        run = scenario.run
        self.warmup_h = run.warmup_days * 24.0
        self.end_h = (run.warmup_days + run.days) * 24.0
        self.calendar = WorkCalendar(scenario.world.start_date, scenario.world.holidays,
                                     math.ceil(self.end_h / 24.0) + 1)
        self.hierarchy = Hierarchy(scenario, self.rng_world)
        self.population = Population(self, streams["population"])
        cats = scenario.demand.categories
        self.category_names = list(cats)
        self.category_share = np.array([c.share for c in cats.values()])
        self.category_share = self.category_share / self.category_share.sum()
        self.category_severity = np.array([c.severity for c in cats.values()])
        self.category_difficulty = np.array([c.difficulty for c in cats.values()])
        self.category_consult = np.array([c.consultation_share for c in cats.values()])
        self.category_enterprise_w = np.array([c.enterprise_weight for c in cats.values()])
        self.category_deadline_days = np.array([scenario.deadline_days(n) for n in cats])
        self.category_deadline_h = np.array([c.deadline_hours if c.deadline_hours else np.nan for c in cats.values()])
        self._service_median = np.array([c.service_time_median_h for c in cats.values()])
        self._service_sigma = np.array([c.service_time_sigma for c in cats.values()])
        self._service_exponential = np.array([c.service_time_dist == ServiceDist.EXPONENTIAL for c in cats.values()])
        # hour-of-week profile, mean 1 over the week
        d = scenario.demand
        prof = np.outer(np.array(d.weekday_weights), np.array(d.hour_weights)).ravel()
        self.week_profile = prof / prof.mean()
        self.dept_always_open = scenario.departments.hours == Hours.ALWAYS

        # base problem rate per hour per (category, township)
        pop = self.population
        cit, ent = pop.count[:, 0].astype(float), pop.count[:, 1].astype(float)
        per_h = d.problems_per_citizen_year / (365.0 * 24.0)
        self.base_rate = per_h * self.category_share[:, None] * (cit[None, :] + ent[None, :] * self.category_enterprise_w[:, None])
        self.enterprise_prob = np.where(
            cit[None, :] + ent[None, :] * self.category_enterprise_w[:, None] > 0,
            ent[None, :] * self.category_enterprise_w[:, None]
            / np.maximum(cit[None, :] + ent[None, :] * self.category_enterprise_w[:, None], 1e-12), 0.0)
        self._hops_by_category = self.hierarchy.hops(np.arange(len(cats)), scenario.policy.dispatch_mode)
        self._rate_day = -1
        self._rate_today = np.zeros(0)
        self._size_departments()
        self.cases = CaseStore(capacity=self._expected_cases())
        self.intake_time = np.zeros(self.cases.capacity)
        self.boost = np.zeros(self.cases.capacity, dtype=np.int8)
        self.agenda = Agenda()
        self.platform = Platform(self)
        self.departments = [Department(self, r.index, r.node, r.category, r.level.value, r.staff)
                            for r in self.hierarchy.departments]
        n_d = len(self.departments)
        self.diligence = np.full(n_d, scenario.departments.base_diligence)
        self.dept_waiting = np.zeros(n_d)
        self.active_depts: set[int] = set()
        self._dept_arrivals: list[tuple[np.ndarray, np.ndarray]] = []
        self._cancelled: set[int] = set()
        self.effort = EffortChoice(self)
        self.supervisor = Supervisor(self, "prefecture")
        self.upper_supervisor = Supervisor(self, "province")
        self.intake_active = False

        # counters for participation (problems vs reports) by area (0 rural, 1 urban) × kind (0, 1 enterprise)
        self.problems = np.zeros((2, 2), dtype=np.int64)
        self.reported = np.zeros((2, 2), dtype=np.int64)
        self.daily: list[dict[str, float]] = []
        self._today_problems = 0
        self._today_ids: list[np.ndarray] = []
        self.staff_hours = 0.0
        self.hour = 0
        self.rankings: list[tuple[int, list[int]]] = []
        self._dept_staff_total = float(self.hierarchy.dept_staff.sum())
    # ------------------------------------------------------------------------------------------ set-up
    def _expected_cases(self) -> int:
        d = self.settings.demand
        hours = self.end_h
        if d.fixed_rate_per_hour:
            return int(d.fixed_rate_per_hour * hours * 1.1) + 64
        if d.requests_per_day:
            return int(d.requests_per_day * hours / 24 * 1.1) + 64
        # every problem could be reported; a little headroom for shocks
        return int(self.settings.world.population * d.problems_per_citizen_year * hours / 8760 * 1.05) + 64

    def _size_departments(self) -> None:
        """With ``departments.target_utilisation``: staff each department for its expected load.

        Expected orders per hour to a department: the problem rate of the (category, township) cells it
        handles, times a reporting share of 0.85, times the share not answered at intake, plus 10% for
        reopened and escalated cases. Office-hours departments only take up work 40 of 168 hours a week,
        but a case once started runs on, so the load is not scaled by opening hours.
        """
        target = self.settings.departments.target_utilisation
        if target is None:
            return
        d = self.settings.demand
        h = self.hierarchy
        if d.fixed_rate_per_hour or d.requests_per_day:
            total = d.fixed_rate_per_hour or d.requests_per_day / 24.0
            township_share = np.bincount(self.population.region, minlength=h.n_townships) / max(self.population.n, 1)
            rate = total * self.category_share[:, None] * township_share[None, :]
            reporting = 1.0
        else:
            rate = self.base_rate
            reporting = 0.85 if self.settings.citizens.behaviour else 1.0
        dispatched = 1.0 - self.category_consult * self.settings.platform.direct_answer_share
        mean_service = np.array([c.service_time_mean_h for c in self.settings.demand.categories.values()])
        load = rate * reporting * 1.1 * (dispatched * mean_service)[:, None]  # server-hours per hour per cell
        per_dept = np.zeros(len(h.departments))
        np.add.at(per_dept, h.handler.ravel(), load.ravel())
        staff = np.maximum(1, np.ceil(per_dept / target)).astype(np.int64)
        h.dept_staff = staff
        for rec, k in zip(h.departments, staff.tolist(), strict=True):
            rec.staff = int(k)

    def _ensure_aux(self) -> None:
        cap = self.cases.capacity
        if len(self.intake_time) < cap:
            self.intake_time = np.resize(self.intake_time, cap)
            boost = np.zeros(cap, dtype=np.int8)
            boost[: len(self.boost)] = self.boost
            self.boost = boost

    # ------------------------------------------------------------------------------------------ demand
    def _shock_factor(self, day: float) -> np.ndarray:
        f = np.ones(len(self.category_names))
        for s in self.settings.demand.shocks:
            if s.start_day <= day < s.start_day + s.days:
                if s.categories:
                    idx = [self.category_names.index(c) for c in s.categories]
                    f[idx] *= s.multiplier
                else:
                    f *= s.multiplier
        return f

    def arise(self, hour: int) -> np.ndarray:
        """Problems of this hour: draw, decide who reports and how; returns the new case ids."""
        d = self.settings.demand
        rng = self.rng_demand
        pop = self.population
        how = self.calendar.hour_of_week(hour)
        day = hour / 24.0
        behaviour = self.settings.citizens.behaviour
        if d.fixed_rate_per_hour or d.requests_per_day:
            lam = d.fixed_rate_per_hour if d.fixed_rate_per_hour else d.requests_per_day / 24.0 * self.week_profile[how]
            k = rng.poisson(lam * float(self._shock_factor(day).mean()))
            cat = rng.choice(len(self.category_names), size=k, p=self.category_share).astype(np.int8)
            who = rng.integers(0, pop.n, size=k)
            twp = pop.region[who]
            ent = pop.enterprise[who]
            report_all = True
        else:
            today = hour // 24
            if self._rate_day != today:  # shocks and systemic fixes change at most once a day
                self._rate_today = (self.base_rate * self._shock_factor(day)[:, None]
                                    * self.platform.rate_multiplier(day)).ravel()
                self._rate_day = today
            counts = rng.poisson(self._rate_today * self.week_profile[how])
            nz = np.flatnonzero(counts)
            cells = np.repeat(nz, counts[nz])
            cat = (cells // self.hierarchy.n_townships).astype(np.int8)
            twp = (cells % self.hierarchy.n_townships).astype(np.int32)
            ent = rng.random(len(cells)) < self.enterprise_prob[cat, twp]
            who = pop.pick_requesters(twp, ent, rng)
            ent = pop.enterprise[who]
            report_all = not behaviour
        k = len(who)
        self._today_problems += k
        if k == 0:
            return np.zeros(0, dtype=np.int64)
        urban = pop.urban[who]
        self.problems += np.bincount(2 * urban + ent, minlength=4).reshape(2, 2)
        channel = pop.choose_channel(who, rng) if (behaviour or self.settings.citizens.channel_mix) else \
            np.full(k, Channel.ONLINE, dtype=np.int8)
        reachable = channel >= 0
        if not report_all or not reachable.all():
            rep = reachable.copy()
            if not report_all:
                rep[reachable] = pop.report(who[reachable], self.category_severity[cat[reachable]],
                                            channel[reachable], rng)
            who, cat, twp, ent, channel, urban = who[rep], cat[rep], twp[rep], ent[rep], channel[rep], urban[rep]
            k = len(who)
            if k == 0:
                return np.zeros(0, dtype=np.int64)
        self.reported += np.bincount(2 * urban + ent, minlength=4).reshape(2, 2)
        created = hour + np.sort(rng.random(k))
        c = self.settings.citizens
        u = rng.random((3, k))
        consult = u[0] < self.category_consult[cat]
        tattle = u[1] < c.tattle_share
        collective = u[2] < c.collective_threat_share
        dl_h = self.category_deadline_h[cat]
        due = np.where(np.isnan(dl_h), self.calendar.add_working_days(created, self.category_deadline_days[cat]),
                       created + np.nan_to_num(dl_h))
        service = self._service_times(cat)
        ids = self.cases.add(
            citizen=who, category=cat, channel=channel, region=twp, enterprise=ent, urban=urban,
            created=created, due=due, service_time=service, consultation=consult, tattle=tattle,
            collective=collective, status=np.full(k, Status.AWAITING_INTAKE, np.int8),
            dept=self.hierarchy.handler[cat, twp], hops=self._hops_by_category[cat],
            measured=created >= self.warmup_h)
        self._ensure_aux()
        p = self.settings.platform
        self.intake_time[ids] = self.rng_intake.exponential(p.handling_minutes / 60.0, k)
        self._today_ids.append(ids)
        return ids

    def _service_times(self, cat: np.ndarray) -> np.ndarray:
        """Handling time (elapsed hours) of new cases, from each category's distribution."""
        rng = self.rng_service
        u = rng.standard_normal(len(cat))
        e = rng.standard_exponential(len(cat))
        median = self._service_median[cat]
        return np.where(self._service_exponential[cat], median * e, median * np.exp(self._service_sigma[cat] * u))

    # ------------------------------------------------------------------------------------- lifecycle
    def arrive(self, ids: np.ndarray, times: np.ndarray) -> None:
        """Orders reach their departments: each department decides what to do with them."""
        cs = self.cases
        keep = cs.status[ids] < Status.CLOSED
        ids, times = ids[keep], times[keep]
        if len(ids) == 0:
            return
        cs.dept_arrival[ids] = np.where(np.isnan(cs.dept_arrival[ids]), times, cs.dept_arrival[ids])
        respond, perf = self.effort.decide(ids, self.rng_departments)
        cs.status[ids[~respond]] = Status.NEGLECTED
        self.take_up(ids[respond], times[respond], perf[respond])

    def take_up(self, ids: np.ndarray, times: np.ndarray, perf: np.ndarray) -> None:
        """Cases a department will act on: signed for at once under a mandate, replied to or queued."""
        if len(ids) == 0:
            return
        cs = self.cases
        sign = times if self.dept_always_open else self.calendar.next_open_fast(times)
        if self.settings.policy.response_mandate_hours is not None:
            first = cs.first_response[ids]
            cs.first_response[ids] = np.where(np.isnan(first), sign, first)
        p_ids = ids[perf]
        if len(p_ids):
            cs.perfunctory[p_ids] = True
            t_sign = sign[perf]
            first = cs.first_response[p_ids]
            cs.first_response[p_ids] = np.where(np.isnan(first), t_sign, first)
            cs.status[p_ids] = Status.IN_SERVICE
            self.agenda.schedule("reply", t_sign + self.settings.departments.perfunctory_reply_h, p_ids)
        q_ids, q_t = ids[~perf], times[~perf]
        if len(q_ids):
            cs.status[q_ids] = Status.QUEUED
            depts = cs.dept[q_ids]
            np.add.at(self.dept_waiting, depts, 1)
            self._dept_arrivals.append((q_ids, q_t))

    def _work_departments(self, t_end: float) -> None:
        """Departments with work take up cases until ``t_end``.

        This step's arrivals are prepared for all departments at once (sorted by department, time, case;
        keys and service times looked up in one pass), then each department's queue runs.
        """
        cs = self.cases
        starts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        groups: dict[int, tuple] = {}
        ids = np.zeros(0, dtype=np.int64)
        if self._dept_arrivals:
            ids = np.concatenate([a[0] for a in self._dept_arrivals])
            t = np.concatenate([a[1] for a in self._dept_arrivals])
            self._dept_arrivals = []
            if self._cancelled:
                gone = np.isin(ids, np.fromiter(self._cancelled, dtype=np.int64, count=len(self._cancelled)))
                if gone.any():
                    self._cancelled.difference_update(ids[gone].tolist())
                    ids, t = ids[~gone], t[~gone]
        if len(ids):
            dept = cs.dept[ids]
            order = np.lexsort((ids, t, dept))
            ids, t, dept = ids[order], t[order], dept[order]
            svc = cs.service_time[ids]
            discipline = self.settings.departments.queue_discipline
            boost = ([0] * len(ids) if discipline == QueueDiscipline.FIFO
                     else (-self.boost[ids].astype(np.int64)).tolist())
            t_list = t.tolist()
            if discipline == QueueDiscipline.DEADLINE:
                keys = list(zip(boost, cs.due[ids].tolist(), t_list, strict=True))
            else:
                keys = list(zip(boost, t_list, strict=True))
            arr = list(zip(t_list, ids.tolist(), keys, svc.tolist(), strict=True))
            cuts = (np.flatnonzero(np.diff(dept)) + 1).tolist()
            lo, hi = [0, *cuts], [*cuts, len(ids)]
            for a, b, dp in zip(lo, hi, dept[lo].tolist(), strict=True):
                groups[dp] = (ids[a:b], t[a:b], svc[a:b], arr[a:b])
            self.active_depts.update(groups)
        empty = (np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0), [])
        still = set()
        for dp in sorted(self.active_depts):
            pool = self.departments[dp].pool
            g = groups.get(dp)
            if g is None:
                if pool.blocked_until >= t_end and pool.live:
                    still.add(dp)  # every server busy (or the office closed) past this step
                    continue
                g = empty
            pool.run_sorted(t_end, g[0], g[1], g[2], g[3], starts)
            if len(pool):
                still.add(dp)
        self.active_depts = still
        if starts:
            ids = np.concatenate([x[0] for x in starts])
            st = np.concatenate([x[1] for x in starts])
            done = np.concatenate([x[2] for x in starts])
            cs.service_start[ids] = st
            first = cs.first_response[ids]
            cs.first_response[ids] = np.where(np.isnan(first), st, first)
            cs.status[ids] = Status.IN_SERVICE
            np.add.at(self.dept_waiting, cs.dept[ids], -1)
            self.agenda.schedule("reply", done, ids)

    def reply(self, ids: np.ndarray, times: np.ndarray) -> None:
        """Departments reply: resolved or not (perfunctory replies never resolve)."""
        cs = self.cases
        keep = cs.status[ids] == Status.IN_SERVICE
        ids, times = ids[keep], times[keep]
        if len(ids) == 0:
            return
        perf = cs.perfunctory[ids]
        p = self.effort.resolve_probability(ids)
        cs.resolved[ids] = ~perf & (self.rng_departments.random(len(ids)) < p)
        cs.replied[ids] = times
        self.after_reply(ids, times)

    def after_reply(self, ids: np.ndarray, times: np.ndarray) -> None:
        """The reply closes the case; a call-back follows when the policy has one."""
        cs = self.cases
        cs.closed[ids] = times
        if self.settings.policy.callback and self.settings.citizens.behaviour:
            cs.status[ids] = Status.AWAITING_CALLBACK
            self.agenda.schedule("callback", times + self.settings.platform.callback_delay_h, ids)
        else:
            self.judge(ids, times, callback=False)

    def judge(self, ids: np.ndarray, times: np.ndarray, callback: bool) -> None:
        """The requester judges the outcome; unsatisfied, they may reopen (via call-back) or escalate."""
        cs = self.cases
        pop = self.population
        rng = self.rng_citizens
        c = self.settings.citizens
        pol = self.settings.policy
        if not c.behaviour:
            cs.satisfied[ids] = 1
            cs.status[ids] = Status.CLOSED
            return
        sat = pop.judge(ids, times, rng)
        cs.satisfied[ids] = sat.astype(np.int8)
        unsat = ids[~sat]
        u_t = times[~sat]
        reopen = np.zeros(len(unsat), bool)
        if callback and pol.reopen_allowed and len(unsat):
            reopen = (cs.reopen_count[unsat] < pol.max_reopens) & (rng.random(len(unsat)) < c.reopen_propensity)
        esc = np.zeros(len(unsat), bool)
        rest = ~reopen & ~cs.escalated[unsat]
        if rest.any():
            esc[rest] = pop.escalate(unsat[rest], rng)
        again = reopen | esc
        # final outcomes: learn and close
        final = np.ones(len(ids), bool)
        final[np.flatnonzero(~sat)[again]] = False
        f_ids = ids[final]
        cs.status[f_ids] = Status.CLOSED
        pop.learn(cs.citizen[f_ids], sat[final], cs.resolved[f_ids], cs.channel[f_ids])
        # reopened: back to the department, ahead of the queue
        r_ids, r_t = unsat[reopen], u_t[reopen]
        if len(r_ids):
            cs.reopened[r_ids] = True
            cs.reopen_count[r_ids] += 1
        e_ids, e_t = unsat[esc & ~reopen], u_t[esc & ~reopen]
        if len(e_ids):
            self.upper_supervisor.act_on_escalation(e_ids, float(e_t.max()))
        redo = np.concatenate([r_ids, e_ids])
        if len(redo):
            t = np.concatenate([r_t, e_t])
            cs.closed[redo] = np.nan
            cs.replied[redo] = np.nan
            cs.satisfied[redo] = -1
            cs.resolved[redo] = False
            cs.perfunctory[redo] = False
            cs.status[redo] = Status.IN_TRANSIT
            self.boost[redo] = 2
            self.agenda.schedule("arrive", t + self.settings.platform.dispatch_delay_h, redo)

    def press(self, ids: np.ndarray, now: float, extra_detection: float) -> None:
        """Pressure on open cases (a reminder, supervision or an escalation): raise priority; a neglected
        case is looked at again, with the added risk of detection in mind."""
        cs = self.cases
        st = cs.status[ids]
        forced = (cs.supervision_level[ids] >= 2) | cs.escalated[ids]
        self.boost[ids] = np.maximum(self.boost[ids], np.where(forced, 2, 1)).astype(np.int8)
        q = ids[st == Status.QUEUED]
        for c in q.tolist():
            pool = self.departments[int(cs.dept[c])].pool
            pool.raise_priority(c, pool.key(c, float(cs.dept_arrival[c]), float(cs.due[c]), int(self.boost[c])))
        neg = ids[st == Status.NEGLECTED]
        if len(neg):
            respond, perf = self.effort.decide(neg, self.rng_departments, extra_detection=extra_detection)
            t = np.full(len(neg), now)
            self.take_up(neg[respond], t[respond], perf[respond])

    def remind(self, ids: np.ndarray, times: np.ndarray) -> None:
        """Tracking: a reminder before the due time for cases not yet replied to."""
        cs = self.cases
        st = cs.status[ids]
        ids = ids[(st == Status.QUEUED) | (st == Status.NEGLECTED) | (st == Status.IN_TRANSIT)]
        if len(ids):
            self.press(ids, float(times.max()), extra_detection=0.5)

    def lose_patience(self, ids: np.ndarray, times: np.ndarray) -> None:
        """No reply after ``patience_h``: the requester escalates, or gives up."""
        cs = self.cases
        open_ = (cs.status[ids] < Status.AWAITING_CALLBACK) & np.isnan(cs.first_response[ids])
        ids, times = ids[open_], times[open_]
        if len(ids) == 0 or not self.settings.citizens.behaviour:
            return
        esc = ~cs.escalated[ids] & self.population.escalate(ids, self.rng_citizens)
        if esc.any():
            e_ids = ids[esc]
            self.upper_supervisor.act_on_escalation(e_ids, float(times.max()))
            self.agenda.schedule("patience", times[esc] + self.settings.citizens.patience_h, e_ids)
        g_ids = ids[~esc]
        if len(g_ids):
            queued = g_ids[cs.status[g_ids] == Status.QUEUED]
            for c in queued.tolist():
                if not self.departments[int(cs.dept[c])].pool.remove(c):
                    self._cancelled.add(c)  # still among this step's arrivals
            if len(queued):
                np.add.at(self.dept_waiting, cs.dept[queued], -1)
            cs.status[g_ids] = Status.ABANDONED
            cs.satisfied[g_ids] = 0
            self.population.learn(cs.citizen[g_ids], np.zeros(len(g_ids), bool), np.zeros(len(g_ids), bool),
                                  cs.channel[g_ids])

    # ------------------------------------------------------------------------------------------ step
    def step(self) -> None:
        """Advance one hour."""
        h = self.hour
        t_end = h + 1.0
        new = self.arise(h)
        if len(new):
            self.platform.receive(new)
            self.platform.schedule_reminders(new)
            if self.settings.citizens.behaviour:
                self.agenda.schedule("patience", self.cases.created[new] + self.settings.citizens.patience_h, new)
        if self.intake_active:
            starts: list = []
            self.platform.work(t_end, starts)
            if starts:
                self.agenda.schedule("accept", np.concatenate([x[2] for x in starts]),
                                     np.concatenate([x[0] for x in starts]))
            self.intake_active = bool(len(self.platform.pool) or self.platform.pool.arrivals)
        # events of this hour, in lifecycle order; an event may schedule more events in this same hour,
        # so the hour's bucket is emptied repeatedly (chains are short: at most a few passes)
        passes = 0
        while True:
            events = self.agenda.pop(h)
            if not events:
                break
            passes += 1
            for kind in ("accept", "arrive", "remind", "reply", "callback", "patience"):
                if kind in events:
                    ids, times = events[kind]
                    getattr(self, "_on_" + kind)(ids, times)
            self._work_departments(t_end)
        if passes == 0 and self.active_depts:
            self._work_departments(t_end)
        self._account_staff(h)
        if h % 24 == 23:
            self.end_of_day(h // 24)
        self.hour += 1
        if self.hour >= self.end_h:
            self.running = False

    def _on_accept(self, ids, times):
        self.platform.accept(ids, times)

    def _on_arrive(self, ids, times):
        self.arrive(ids, times)

    def _on_remind(self, ids, times):
        self.remind(ids, times)

    def _on_reply(self, ids, times):
        self.reply(ids, times)

    def _on_callback(self, ids, times):
        keep = self.cases.status[ids] == Status.AWAITING_CALLBACK
        if self.hour >= self.warmup_h:
            self.staff_hours += int(keep.sum()) * self.settings.platform.callback_minutes / 60.0
        self.judge(ids[keep], times[keep], callback=True)

    def _on_patience(self, ids, times):
        self.lose_patience(ids, times)

    def _account_staff(self, h: int) -> None:
        if h < self.warmup_h:
            return
        office_open = self.calendar.office_hour(h)
        dept_open = self.dept_always_open or office_open
        plat_open = self.platform.always_open or office_open
        self.staff_hours += (self._dept_staff_total if dept_open else 0.0) + \
            (self.settings.platform.operators if plat_open else 0.0)

    def end_of_day(self, day: int) -> None:
        """Daily tasks: supervision, ranking (monthly), diligence, trust, aggregation, the day's row."""
        now = (day + 1) * 24.0
        inspected = self.supervisor.inspect(now, self.rng_supervision)
        if day * 24 >= self.warmup_h:
            self.staff_hours += inspected * self.settings.supervision.hours_per_inspection
        if self.settings.policy.public_ranking and (day + 1) % 30 == 0:
            self.rankings.append((day, self.supervisor.rank(now, 30 * 24.0).tolist()))
        self.effort.decay()
        self.population.spread_trust()
        today = np.concatenate(self._today_ids) if self._today_ids else np.zeros(0, np.int64)
        self.platform.aggregate(day, today)
        cs = self.cases
        open_ids = cs.open_ids()
        st = cs.status[open_ids]
        self.daily.append({
            "day": day, "problems": self._today_problems, "arrivals": len(today),
            "backlog": len(open_ids), "overdue": int((cs.due[open_ids] < now).sum()),
            "neglected": int((st == Status.NEGLECTED).sum()), "queued": int((st == Status.QUEUED).sum()),
            "mean_trust": float(self.population.trust.mean()), "mean_efficacy": float(self.population.efficacy.mean()),
            "inspections": inspected, "fixes_active": self.platform.fixes_active(day),
            "mean_diligence": float(self.diligence.mean()), "staff_hours_cum": self.staff_hours,
        })
        self._today_problems = 0
        self._today_ids = []

    def run(self, progress: Callable[[float], None] | None = None) -> None:
        """Run to the end of the scenario; ``progress`` is called with the share done (0–1) each day."""
        while self.running:
            self.step()
            if progress is not None and self.hour % 24 == 0:
                progress(self.hour / self.end_h)

    def result(self) -> RunResult:
        from .metrics import build_result

        return build_result(self)


def run_scenario(scenario: Scenario, seed: int | None = None, days: float | None = None,
                 warmup_days: float | None = None, progress: Callable[[float], None] | None = None) -> RunResult:
    """Run one scenario with one seed and return its tables. ``days``/``warmup_days`` override the scenario's."""
    upd = {}
    if days is not None:
        upd["run.days"] = days
    if warmup_days is not None:
        upd["run.warmup_days"] = warmup_days
    if seed is not None:
        upd["run.seed"] = int(seed)
    if upd:
        scenario = scenario.with_overrides(upd)
    t0 = _time.perf_counter()
    model = GovernanceModel(scenario, seed=scenario.run.seed)
    model.run(progress)
    result = model.result()
    result.meta["wall_s"] = _time.perf_counter() - t0
    return result
