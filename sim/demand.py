"""Demand: problems arise in (category, township) cells, and their holders decide whether and how to report.

Problems arise as Poisson counts per hour: ``problems_per_citizen_year / 8760`` per requester, split by
the category shares (enterprises weighted by each category's ``enterprise_weight``), shaped by the
hour-of-week profile (mean 1 over the week), by demand shocks, and by the systemic fixes in force. A
scenario may instead fix the arrival rate of reported requests (``fixed_rate_per_hour`` or
``requests_per_day``); then everyone reports. Reported problems become cases (rows of the case store)
with their due time and handling time drawn here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .cases import Channel, Status
from .scenario import DispatchMode, Scenario, ServiceDist

if TYPE_CHECKING:  # pragma: no cover
    from .model import GovernanceModel


class Demand:
    """The category catalogue as arrays, the problem rates, and :meth:`arise`, the start of every case.

    Counters of participation: ``problems`` and ``reported``, each (area: 0 rural, 1 urban) × (kind:
    0 citizen, 1 enterprise), over the whole run; ``today_problems`` and ``today_ids`` for the day's row.
    """

    def __init__(self, model: GovernanceModel) -> None:
        sc = model.settings
        self.model = model
        cats = sc.demand.categories
        self.category_names = list(cats)
        share = np.array([c.share for c in cats.values()])
        self.category_share = share / share.sum()
        self.category_severity = np.array([c.severity for c in cats.values()])
        self.category_difficulty = np.array([c.difficulty for c in cats.values()])
        self.category_consult = np.array([c.consultation_share for c in cats.values()])
        self.category_enterprise_w = np.array([c.enterprise_weight for c in cats.values()])
        self.category_deadline_days = np.array([sc.deadline_days(n) for n in cats])
        self.category_deadline_h = np.array([c.deadline_hours if c.deadline_hours else np.nan for c in cats.values()])
        self._deadline_h_or_0 = np.nan_to_num(self.category_deadline_h)  # 0 where the deadline is in working days
        self.category_service_mean_h = np.array([c.service_time_mean_h for c in cats.values()])
        self._service_median = np.array([c.service_time_median_h for c in cats.values()])
        self._service_sigma = np.array([c.service_time_sigma for c in cats.values()])
        self._service_exponential = np.array([c.service_time_dist == ServiceDist.EXPONENTIAL for c in cats.values()])
        self._any_exponential = bool(self._service_exponential.any())
        self._deadline_in_hours = ~np.isnan(self.category_deadline_h)  # per category: deadline in hours
        self._deadlines_in = ("hours" if self._deadline_in_hours.all() else
                              "days" if not self._deadline_in_hours.any() else "both")  # of all categories
        self._due_days: np.ndarray | None = None  # the category_deadline_days _due_by_day was made for
        self._due_by_day = np.zeros((0, 0))  # (day, category) → due time (h) of a deadline in working days
        self._cells_of: tuple[np.ndarray, ...] = ()  # the route_first and route_len _cell_route was made for
        self._cell_route = np.zeros((3, 0), dtype=np.int64)  # per cell, flat: first bureau, handler, hops
        # mixtures: per category, the cumulative weights of its phases and each phase's median and shape
        self._phases = {i: (np.cumsum([p.weight for p in c.service_time_phases]) / sum(p.weight for p in
                                                                                      c.service_time_phases),
                            np.array([p.median_h for p in c.service_time_phases]),
                            np.array([p.sigma for p in c.service_time_phases]))
                        for i, c in enumerate(cats.values()) if c.service_time_phases is not None}
        d = sc.demand
        prof = np.outer(np.array(d.weekday_weights), np.array(d.hour_weights)).ravel()
        self.week_profile = prof / prof.mean()  # hour-of-week factor, mean 1 over the week
        pop = model.population
        cit, ent = pop.count[:, 0].astype(float), pop.count[:, 1].astype(float)
        weighted = cit[None, :] + ent[None, :] * self.category_enterprise_w[:, None]
        per_h = d.problems_per_citizen_year / (365.0 * 24.0)
        self.base_rate = per_h * self.category_share[:, None] * weighted  # problems per hour per cell
        self.enterprise_prob = np.where(
            weighted > 0, ent[None, :] * self.category_enterprise_w[:, None] / np.maximum(weighted, 1e-12), 0.0)
        # per (category, township) cell, flat (cell = category × townships + township): its category, township
        # and enterprise share
        n_cat, n_twp = self.base_rate.shape
        self._cell_category = np.repeat(np.arange(n_cat), n_twp).astype(np.int8)
        self._cell_township = np.tile(np.arange(n_twp), n_cat).astype(np.int32)
        self._cell_enterprise_prob = self.enterprise_prob.ravel()
        self._cell_index = np.arange(n_cat * n_twp)
        mode = model.levers.dispatch_mode
        self.routes = model.hierarchy.routes[mode]  # (category, township, hop) → bureau index
        self.route_first = self.routes[:, :, 0]  # the first bureau of each cell's route
        self.route_len = model.hierarchy.route_len[mode]
        self.fixed_rate = bool(d.fixed_rate_per_hour or d.requests_per_day)
        self._rate_day = -1
        self._rate_today = np.zeros(0)
        self.problems = np.zeros((2, 2), dtype=np.int64)
        self.reported = np.zeros((2, 2), dtype=np.int64)
        self._problems_flat = self.problems.reshape(4)  # views, for adding the counts of 2 × urban + kind
        self._reported_flat = self.reported.reshape(4)
        self.today_problems = 0
        self.today_ids: list[np.ndarray] = []

    def rebind(self, mode: DispatchMode, scenario: Scenario) -> None:
        """A policy change: new cases get the resolution deadlines of ``scenario``, and orders dispatched from
        now on (requests still awaiting intake included) the routes of ``mode``. Orders already dispatched keep
        their route: the hop after a relay is read from the cascade table (only cascade orders pass relays)."""
        self.category_deadline_days = np.array([scenario.deadline_days(n) for n in self.category_names])
        h = self.model.hierarchy
        first, length = h.routes[mode][:, :, 0], h.route_len[mode]
        if np.array_equal(first, self.route_first) and np.array_equal(length, self.route_len):
            return
        self.routes = h.routes[DispatchMode.CASCADE]
        self.route_first, self.route_len = first, length
        cs = self.model.cases
        ids = cs.open_ids()
        ids = ids[cs.status[ids] == Status.AWAITING_INTAKE]
        cat, twp = cs.category[ids], cs.region[ids]
        cs.dept[ids] = first[cat, twp]
        cs.hops[ids] = length[cat, twp]

    def expected_cases(self, hours: float) -> int:
        """A first capacity for the case store: reported cases expected over ``hours``, with headroom."""
        sc = self.model.settings
        d = sc.demand
        if d.fixed_rate_per_hour:
            return int(d.fixed_rate_per_hour * hours * 1.1) + 64
        if d.requests_per_day:
            return int(d.requests_per_day * hours / 24 * 1.1) + 64
        # every problem could be reported; a little headroom for shocks
        return int(sc.world.population * d.problems_per_citizen_year * hours / 8760 * 1.05) + 64

    def expected_rate(self) -> tuple[np.ndarray, float]:
        """Expected reports per hour per (category, township) cell before behaviour, and the reporting
        share assumed for staffing (0.85 with citizen behaviour, else 1)."""
        sc = self.model.settings
        d = sc.demand
        if self.fixed_rate:
            total = d.fixed_rate_per_hour or d.requests_per_day / 24.0
            pop = self.model.population
            n_twp = self.model.hierarchy.n_townships
            township_share = np.bincount(pop.region, minlength=n_twp) / max(pop.n, 1)
            return total * self.category_share[:, None] * township_share[None, :], 1.0
        return self.base_rate, (0.85 if sc.citizens.behaviour else 1.0)

    def shock_factor(self, day: float) -> np.ndarray:
        """Factor on each category's rate from the demand shocks in force on ``day``."""
        f = np.ones(len(self.category_names))
        for s in self.model.settings.demand.shocks:
            if s.start_day <= day < s.start_day + s.days:
                if s.categories:
                    idx = [self.category_names.index(c) for c in s.categories]
                    f[idx] *= s.multiplier
                else:
                    f *= s.multiplier
        return f

    def _draw_problems(self, hour: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
        """This hour's problems: (holder, category, township, everyone-reports flag)."""
        m = self.model
        d = m.settings.demand
        rng = m.rng_demand
        pop = m.population
        how = m.calendar.hour_of_week(hour)
        day = hour / 24.0
        if self.fixed_rate:
            lam = d.fixed_rate_per_hour if d.fixed_rate_per_hour else d.requests_per_day / 24.0 * self.week_profile[how]
            k = rng.poisson(lam * float(self.shock_factor(day).mean()))
            cat = rng.choice(len(self.category_names), size=k, p=self.category_share).astype(np.int8)
            who = rng.integers(0, pop.n, size=k)
            return who, cat, pop.region[who], True
        today = hour // 24
        if self._rate_day != today:  # shocks and systemic fixes change at most once a day
            self._rate_today = (self.base_rate * self.shock_factor(day)[:, None]
                                * m.platform.rate_multiplier(day)).ravel()
            self._rate_day = today
        counts = rng.poisson(self._rate_today * self.week_profile[how])
        cells = self._cell_index.repeat(counts)  # each cell's index, as often as its problems
        cat = self._cell_category[cells]
        twp = self._cell_township[cells]
        ent = rng.random(len(cells)) < self._cell_enterprise_prob[cells]
        who = pop.pick_requesters(twp, ent, rng)
        return who, cat, twp, not m.settings.citizens.behaviour

    def arise(self, hour: int) -> np.ndarray:
        """Problems of this hour: draw them, decide who reports and how; returns the new case ids
        (status ``AWAITING_INTAKE``)."""
        m = self.model
        rng = m.rng_demand
        pop = m.population
        who, cat, twp, report_all = self._draw_problems(hour)
        ent = pop.enterprise[who]
        k = len(who)
        self.today_problems += k
        if k == 0:
            return np.zeros(0, dtype=np.int64)
        urban = pop.urban[who]
        self._problems_flat += np.bincount(2 * urban + ent, minlength=4)
        c = m.settings.citizens
        channel = pop.choose_channel(who, rng) if (c.behaviour or c.channel_mix) else \
            np.full(k, Channel.ONLINE, dtype=np.int8)
        reachable = channel >= 0
        all_reachable = bool(reachable.all())
        if not report_all or not all_reachable:
            if all_reachable:  # as below, without selecting everyone
                rep = pop.report(who, self.category_severity[cat], channel, rng)
            else:
                rep = reachable.copy()
                if not report_all:
                    rep[reachable] = pop.report(who[reachable], self.category_severity[cat[reachable]],
                                                channel[reachable], rng)
            who, cat, twp, ent, channel, urban = who[rep], cat[rep], twp[rep], ent[rep], channel[rep], urban[rep]
            k = len(who)
            if k == 0:
                return np.zeros(0, dtype=np.int64)
        self._reported_flat += np.bincount(2 * urban + ent, minlength=4)
        created = rng.random(k)
        created.sort()
        created = hour + created
        u = rng.random((3, k))
        return self.open_cases(
            citizen=who, category=cat, channel=channel, region=twp, enterprise=ent, urban=urban, created=created,
            consultation=u[0] < self.category_consult[cat], tattle=u[1] < c.tattle_share,
            collective=u[2] < c.collective_threat_share)

    def open_cases(self, **columns: np.ndarray) -> np.ndarray:
        """Add reported cases (``AWAITING_INTAKE``) with the given columns (at least citizen, category, region,
        channel, created): their due time, handling time, intake time and route are drawn or looked up here.
        Used for first reports and for repeat reports of a problem still unsolved; returns the new ids."""
        m = self.model
        cat, twp, created = columns["category"], columns["region"], columns["created"]
        k = len(cat)
        made_for = self._cells_of
        if not made_for or made_for[0] is not self.route_first or made_for[1] is not self.route_len:
            # the routes of a new dispatch mode: their flat copy again
            self._cells_of = (self.route_first, self.route_len)
            self._cell_route = np.stack([self.route_first.ravel(), m.hierarchy.handler.ravel(),
                                         self.route_len.ravel()]).astype(np.int64)
        route = self._cell_route.take(cat.astype(np.intp) * self.route_first.shape[1] + twp, axis=1)
        ids = m.cases.add(  # status: AWAITING_INTAKE, the column's default
            **columns, due=self._due(created, cat), service_time=self._service_times(cat),
            dept=route[0], handler=route[1], hops=route[2], measured=created >= m.warmup_h,
            intake_time=m.rng_intake.exponential(m.settings.platform.handling_minutes / 60.0, k))
        self.today_ids.append(ids)
        return ids

    def _due(self, created: np.ndarray, cat: np.ndarray) -> np.ndarray:
        """Due time (h) of new cases created at ``created``: ``deadline_hours`` after creation, or the close of
        office on the ``deadline_days``-th working day after it (:meth:`WorkCalendar.add_working_days`, here by
        a table of every day and category made once for the current deadlines)."""
        if self._deadlines_in == "hours":
            return created + self._deadline_h_or_0[cat]
        cal = self.model.calendar
        if self._due_days is not self.category_deadline_days:
            self._due_by_day = cal.due_table(self.category_deadline_days)
            self._due_days = self.category_deadline_days
        due = self._due_by_day[cal.day_index(created), cat]
        if self._deadlines_in == "both":
            due = np.where(self._deadline_in_hours[cat], created + self._deadline_h_or_0[cat], due)
        return due

    def _service_times(self, cat: np.ndarray) -> np.ndarray:
        """Handling time (elapsed hours) of new cases, from each category's distribution."""
        rng = self.model.rng_service
        u = rng.standard_normal(len(cat))
        e = rng.standard_exponential(len(cat))
        median = self._service_median[cat]
        sigma = self._service_sigma[cat]
        if self._phases:  # a catalogue with mixtures draws one more uniform per case: the phase
            pick = rng.random(len(cat))
            median, sigma = median.copy(), sigma.copy()
            for i, (cum, med, sig) in self._phases.items():
                rows = np.flatnonzero(cat == i)
                k = np.minimum(np.searchsorted(cum, pick[rows], side="right"), len(cum) - 1)
                median[rows], sigma[rows] = med[k], sig[k]
        if not self._any_exponential:  # no category draws exponential times: every case the lognormal
            return median * np.exp(sigma * u)
        return np.where(self._service_exponential[cat], median * e, median * np.exp(sigma * u))

    def end_day(self) -> tuple[int, np.ndarray]:
        """The day's problems and new case ids; resets both for the next day."""
        today = np.concatenate(self.today_ids) if self.today_ids else np.zeros(0, np.int64)
        problems = self.today_problems
        self.today_problems = 0
        self.today_ids = []
        return problems, today
