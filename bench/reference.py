"""The obvious way: a plain Mesa model of the Wenzheng process, kept as the benchmark's reference.

Every citizen is a ``mesa.Agent`` that steps every hour and draws its own problems; the platform and the
departments are agents that keep their work in Python lists and step every hour too. It reads the same
:class:`sim.Scenario` as ``sim`` and tells the same story, with the same rules: a problem arises → the
citizen reports it or not (Epstein-style threshold) → picks a channel (logit) → operators accept it → a
consultation is answered at once, or the order is dispatched (cascade through the levels, or direct) →
the department answers or neglects it (principal–agent effort choice) → handles it (lognormal service
time) → replies (resolved with a logistic probability, or perfunctory) → call-back → the citizen judges,
learns, and may reopen or escalate → closed. Reminders, daily supervision with its ladder of sanctions,
patience, the monthly ranking, systemic fixes and trust spreading on a contact network are in too.

It is written for reading, not speed: times are whole hours, and reminders and patience are checked once
a day. ``python -m bench --suite reference`` runs it next to ``sim.run_scenario`` on the same scenario and
compares case lifecycles completed (created → closed) per second. It is not part of the simulator and its
figures are not results. Units: hours of model time; shares and probabilities 0–1.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass

import mesa

from sim.scenario import DispatchMode, Hours, QueueDiscipline, Scenario

HOPS = {"prefecture": 1, "county": 2, "township": 3}  # hand-overs of a cascade from the city platform down
OFFICE = range(9, 17)  # office hours on working days, as in sim/calendar.py
OPEN = ("awaiting_intake", "in_transit", "queued", "neglected", "in_service")  # not yet replied


def logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def clip01(x: float) -> float:
    return min(1.0, max(0.0, x))


class Case:
    """One request, as a plain Python object."""

    def __init__(self, model: ReferenceModel, citizen: Citizen, category: str, channel: str, due: float) -> None:
        c, rnd = model.params.citizens, model.random
        self.citizen, self.category, self.channel, self.created, self.due = citizen, category, channel, model.now, due
        self.dept = model.department_for(category, citizen)
        self.consultation = rnd.random() < model.params.demand.categories[category].consultation_share
        self.tattle, self.collective = rnd.random() < c.tattle_share, rnd.random() < c.collective_threat_share
        self.accepted = self.dept_arrival = self.first_response = self.replied = self.closed = math.nan
        self.arrives = self.finishes = self.callback_at = math.inf
        self.patience_at = self.created + c.patience_h
        self.resolved = self.perfunctory = self.supervised = self.escalated = self.reopened = False
        self.direct_answer = self.reminded = False
        self.satisfied: bool | None = None
        self.level = self.boost = self.reopens = 0  # supervision ladder step; queue priority; times reopened
        self.status = "awaiting_intake"


class Citizen(mesa.Agent):
    """A resident or an enterprise that meets problems and may report them."""

    def __init__(self, model: ReferenceModel, township: int, urban: bool) -> None:
        super().__init__(model)
        c, w = model.params.citizens, model.params.world
        self.township, self.urban, self.county = township, urban, model.county_of[township]
        self.enterprise = self.random.random() < w.enterprise_share
        access = w.digital_access_urban if urban else w.digital_access_rural
        self.online = self.random.random() < (max(access, 0.95) if self.enterprise else access)
        self.trust = clip01(self.random.gauss(c.initial_trust, c.heterogeneity))
        self.efficacy = clip01(self.random.gauss(c.initial_efficacy, c.heterogeneity))
        self.favourite: str | None = None  # the channel that last satisfied
        self.contacts: list[Citizen] = []
        self.trust_change = 0.0  # today's change, passed on to contacts at the end of the day

    def step(self) -> None:
        m = self.model
        if self.random.random() >= m.problem_chance[self.enterprise]:
            return
        category = self.random.choices(m.categories, m.category_weights[self.enterprise])[0]
        if m.fixed_until.get((category, self.township), -1) >= m.day and \
                self.random.random() < m.params.policy.systemic_fix_effect:
            return  # a systemic fix removed this problem at its source
        m.problems += 1
        channel = self.choose_channel()
        if channel is not None and self.decides_to_report(category, channel):
            m.platform.queue.append(m.new_case(self, category, channel))

    def choose_channel(self) -> str | None:
        """Logit choice among the open channels (online needs access); None when none is open to them."""
        c, open_ = self.model.params.citizens, self.model.params.platform.channels
        if c.channel_mix is not None:
            return self.random.choices(list(c.channel_mix), list(c.channel_mix.values()))[0]
        if not c.behaviour:
            return "online"
        utility = {"online": -c.channel_cost_online if self.online and open_.online else -math.inf,
                   "hotline": -c.channel_cost_hotline if open_.hotline else -math.inf,
                   "offline": -c.channel_cost_offline if open_.offline else -math.inf}
        if self.favourite is not None:
            utility[self.favourite] += c.channel_stickiness
        top = max(utility.values())
        if top == -math.inf:
            return None
        return self.random.choices(list(utility), [math.exp((u - top) / c.channel_choice_scale)
                                                   for u in utility.values()])[0]

    def decides_to_report(self, category: str, channel: str) -> bool:
        c = self.model.params.citizens
        if not c.behaviour:
            return True
        cost = {"online": c.channel_cost_online, "hotline": c.channel_cost_hotline,
                "offline": c.channel_cost_offline}[channel]
        severity = self.model.params.demand.categories[category].severity
        return self.random.random() < logistic((severity * self.efficacy - cost - c.report_threshold) / c.report_noise)

    def judge(self, case: Case) -> bool:
        """Satisfied or not with a reply (score with logistic noise against the threshold)."""
        c = self.model.params.citizens
        timely = math.exp(-max(self.model.now - case.created, 0.0) / (2.0 * c.expected_response_h))
        u = min(max(self.random.random(), 1e-12), 1 - 1e-12)
        score = (c.satisfaction_resolved_weight * case.resolved
                 + c.satisfaction_reply_weight * (not case.perfunctory and not case.resolved)
                 + c.satisfaction_timeliness_weight * timely - c.satisfaction_perfunctory_penalty * case.perfunctory
                 + c.satisfaction_noise * math.log(u / (1 - u)))
        return score > c.satisfaction_threshold

    def learn(self, satisfied: bool, resolved: bool, channel: str) -> None:
        c = self.model.params.citizens
        change = c.trust_learning_rate * (satisfied - self.trust)
        self.trust = clip01(self.trust + change)
        self.trust_change += change
        self.efficacy = clip01(self.efficacy + c.efficacy_learning_rate * (resolved - self.efficacy))
        if satisfied:
            self.favourite = channel
        self.model.changed.add(self)

    def escalates(self, case: Case) -> bool:
        """Grievance = severity × (1 − trust), plus logistic noise, against the escalation threshold."""
        c = self.model.params.citizens
        severity = self.model.params.demand.categories[case.category].severity
        u = min(max(self.random.random(), 1e-12), 1 - 1e-12)
        return severity * (1 - self.trust) + c.escalation_noise * math.log(u / (1 - u)) > c.escalation_threshold


class Platform(mesa.Agent):
    """The 12345 centre: operators take in requests, answer or dispatch, call back (Python lists)."""

    def __init__(self, model: ReferenceModel) -> None:
        super().__init__(model)
        p = model.params.platform
        self.per_hour = math.inf if p.instant_intake else p.operators * 60.0 / p.handling_minutes
        self.credit = 0.0  # requests the operators can still take in this hour
        self.queue: list[Case] = []
        self.in_transit: list[Case] = []
        self.awaiting_callback: list[Case] = []

    def step(self) -> None:
        m = self.model
        office = m.office_open(m.now)
        if m.params.policy.platform_hours == Hours.ALWAYS or office:
            self.credit = min(self.credit + self.per_hour, max(self.per_hour, 1.0))
            waiting = []
            for case in self.queue:  # calls need someone to answer, visits need the office open
                if case.status == "awaiting_intake" and self.credit >= 1.0 and (case.channel != "offline" or office):
                    self.credit -= 1.0
                    self.accept(case)
                elif case.status == "awaiting_intake":
                    waiting.append(case)
            self.queue = waiting
        for case in [c for c in self.in_transit if c.arrives <= m.now]:
            self.in_transit.remove(case)
            if case.status == "in_transit":
                case.dept.receive(case)
        for case in [c for c in self.awaiting_callback if c.callback_at <= m.now]:
            self.awaiting_callback.remove(case)
            m.judge(case, callback=True)

    def accept(self, case: Case) -> None:
        case.accepted = self.model.now
        if case.consultation and self.random.random() < self.model.params.platform.direct_answer_share:
            case.direct_answer = case.resolved = True
            self.model.reply(case)
        else:
            self.dispatch(case)

    def dispatch(self, case: Case) -> None:
        m, p = self.model, self.model.params.platform
        hops = 1 if m.params.policy.dispatch_mode == DispatchMode.DIRECT else HOPS[case.dept.level]
        delay = p.dispatch_delay_h + sum(p.handover_delay_h * self.random.lognormvariate(0.0, 0.8)
                                         for _ in range(hops - 1))
        if self.random.random() > p.classification_accuracy:
            delay += p.misroute_return_h + p.dispatch_delay_h  # the wrong department sends it back
        self.send(case, m.now + delay)

    def send(self, case: Case, when: float) -> None:
        case.arrives, case.status = when, "in_transit"
        self.in_transit.append(case)


class Department(mesa.Agent):
    """A functional bureau at one unit: ``staff`` servers, a waiting list, a neglected pile, cases in hand."""

    def __init__(self, model: ReferenceModel, category: str, level: str, staff: int) -> None:
        super().__init__(model)
        self.category, self.level, self.staff = category, level, staff
        self.diligence = model.params.departments.base_diligence
        self.queue: list[Case] = []
        self.neglected: list[Case] = []
        self.in_service: list[Case] = []

    def receive(self, case: Case) -> None:
        if math.isnan(case.dept_arrival):
            case.dept_arrival = self.model.now
        self.decide(case, extra_detection=0.0)

    def decide(self, case: Case, extra_detection: float) -> None:
        """Answer or neglect (σ of accountability, diligence and load); under a mandate and heavy load,
        sign for it at once and reply perfunctorily."""
        m, d = self.model, self.model.params.departments
        forced = case.level >= 2 or case.escalated or case.reopened
        load = len(self.queue) / max(self.staff, 1)
        respond, perfunctory = True, False
        if d.effort_choice:
            x = (d.neglect_intercept + d.accountability_weight * min(1.0, m.detection(case) + extra_detection)
                 + d.diligence_weight * (self.diligence - d.base_diligence) - d.load_weight * math.log1p(load))
            respond = forced or self.random.random() < logistic(x)
            if m.params.policy.response_mandate_hours is not None and respond and not forced:
                thr = max(d.perfunctory_load_threshold, 1e-9)
                share = d.perfunctory_max_share * (1 - math.exp(-max(load - thr, 0.0) / thr))
                perfunctory = self.random.random() < share
        if not respond:
            case.status = "neglected"
            self.neglected.append(case)
        elif perfunctory:
            case.perfunctory, case.status, case.finishes = True, "in_service", m.now + d.perfunctory_reply_h
            case.first_response = m.now if math.isnan(case.first_response) else case.first_response
            self.in_service.append(case)
        else:
            case.status = "queued"
            self.queue.append(case)

    def step(self) -> None:
        m = self.model
        for case in [c for c in self.in_service if c.finishes <= m.now]:
            self.in_service.remove(case)
            self.finish(case)
        if m.params.departments.hours == Hours.OFFICE and not m.office_open(m.now):
            return
        if m.params.policy.response_mandate_hours is not None:
            for case in self.queue:  # under a mandate, orders are signed for as soon as the office is open
                case.first_response = m.now if math.isnan(case.first_response) else case.first_response
        deadline_first = m.params.departments.queue_discipline == QueueDiscipline.DEADLINE
        while self.queue and sum(not c.perfunctory for c in self.in_service) < self.staff:
            case = min(self.queue, key=lambda c: (-c.boost, c.due if deadline_first else 0.0, c.dept_arrival))
            self.queue.remove(case)
            self.take_up(case)

    def take_up(self, case: Case) -> None:
        m = self.model
        cat = m.params.demand.categories[case.category]
        hours = (cat.service_time_median_h * self.random.expovariate(1.0) if cat.service_time_dist == "exponential"
                 else self.random.lognormvariate(math.log(cat.service_time_median_h), cat.service_time_sigma))
        case.first_response = m.now if math.isnan(case.first_response) else case.first_response
        case.finishes, case.status = m.now + hours, "in_service"
        self.in_service.append(case)

    def finish(self, case: Case) -> None:
        d = self.model.params.departments
        difficulty = self.model.params.demand.categories[case.category].difficulty
        x = (d.resolution_intercept + d.resolution_effort_weight * self.diligence
             - d.resolution_difficulty_weight * difficulty
             + d.supervised_resolution_bonus * (case.supervised or case.escalated))
        case.resolved = not case.perfunctory and self.random.random() < logistic(x)
        self.model.reply(case)

    def penalise(self, amount: float) -> None:
        self.diligence = min(1.0, self.diligence + amount)


class ReferenceModel(mesa.Model):
    """The city: citizens, the platform, departments; supervision and the daily chores in ``end_of_day``."""

    def __init__(self, scenario: Scenario, seed: int = 1, days: float | None = None,
                 warmup_days: float | None = None) -> None:
        super().__init__(rng=seed)
        self.params = s = scenario  # (``self.scenario`` is Mesa's own)
        if s.demand.fixed_rate_per_hour is not None or s.demand.requests_per_day is not None:
            raise ValueError("the reference draws problems per citizen; it has no fixed request stream")
        self.days = s.run.days if days is None else days
        self.warmup = s.run.warmup_days if warmup_days is None else warmup_days
        self.hours = int(round((self.days + self.warmup) * 24))
        self.now, self.day = 0.0, 0
        self.start = dt.date.fromisoformat(s.world.start_date)
        self.holidays = {dt.date.fromisoformat(h) for h in s.world.holidays}
        self.categories = list(s.demand.categories)
        self.problems = 0
        self.cases: list[Case] = []  # every case, warm-up included
        self.open_cases: list[Case] = []
        self.today: list[Case] = []
        self.changed: set[Citizen] = set()
        self.complaints: dict[tuple[str, int], list[int]] = {}  # (category, township) -> days of complaints
        self.fixed_until: dict[tuple[str, int], int] = {}
        w = s.world
        self.county_of = [j * w.counties // w.townships for j in range(w.townships)]
        towns = list(range(w.townships))
        self.random.shuffle(towns)
        n_urban = round(w.urban_township_share * w.townships)
        urban_towns, rural_towns = towns[:n_urban], towns[n_urban:]
        self.platform = Platform(self)
        by_township: dict[int, list[Citizen]] = {}
        for _ in range(w.population):
            urban = bool(urban_towns) and (not rural_towns or self.random.random() < w.urban_population_share)
            township = self.random.choice(urban_towns if urban else rural_towns)
            by_township.setdefault(township, []).append(Citizen(self, township, urban))
        self.citizens = list(self.agents_by_type[Citizen])
        self.departments: dict[tuple[str, int], Department] = {}
        for name, cat in s.demand.categories.items():
            level = cat.jurisdiction.value
            for unit in range({"township": w.townships, "county": w.counties}.get(level, 1)):
                self.departments[(name, unit)] = Department(self, name, level, self.staff_for(name, unit))
        for person in self.citizens:
            for _ in range(w.social_degree):
                local = self.random.random() < w.local_tie_share
                person.contacts.append(self.random.choice(by_township[person.township] if local else self.citizens))

    def staff_for(self, category: str, unit: int) -> int:
        """Staff as in sim: ``departments.staff_by_department`` by the department's node name
        (``dept:<category>@<unit>``), else the staff of its level."""
        s, cat = self.params, self.params.demand.categories[category]
        level = cat.jurisdiction.value
        unit_name = f"{level}:{unit}" if level in ("county", "township") else level
        named = s.departments.staff_by_department.get(f"dept:{category}@{unit_name}")
        if named is not None:
            return int(named)
        return getattr(s.departments.staff, level) if level in HOPS else s.departments.staff.prefecture

    # ----------------------------------------------------------------------------------- calendar
    def working_day(self, day: int) -> bool:
        date = self.start + dt.timedelta(days=day)
        return date.weekday() < 5 and date not in self.holidays

    def office_open(self, hour: float) -> bool:
        return int(hour % 24) in OFFICE and self.working_day(int(hour // 24))

    def due_time(self, created: float, working_days: float) -> float:
        """Close of office on the n-th working day after the day of creation (n rounded up)."""
        day, left = int(created // 24), math.ceil(working_days)
        while left > 0:
            day += 1
            left -= self.working_day(day)
        return day * 24.0 + OFFICE.stop

    # ------------------------------------------------------------------------------------ lifecycle
    def new_case(self, citizen: Citizen, category: str, channel: str) -> Case:
        cat = self.params.demand.categories[category]
        due = (self.now + cat.deadline_hours if cat.deadline_hours is not None
               else self.due_time(self.now, self.params.deadline_days(category)))
        case = Case(self, citizen, category, channel, due)
        self.cases.append(case)
        self.open_cases.append(case)
        self.today.append(case)
        return case

    def department_for(self, category: str, citizen: Citizen) -> Department:
        level = self.params.demand.categories[category].jurisdiction.value
        return self.departments[(category, {"township": citizen.township, "county": citizen.county}.get(level, 0))]

    def detection(self, case: Case) -> float:
        """Probability that neglect of this case is noticed (the expected-penalty term)."""
        s, p = self.params.supervision, self.params.policy
        return min(1.0, s.detect_tracking * p.tracking + s.detect_callback * p.callback
                   + s.detect_mandate * (p.response_mandate_hours is not None)
                   + s.detect_ranking * p.public_ranking + s.detect_per_inspection * p.supervision_intensity
                   + s.detect_tattle * case.tattle + s.detect_collective * case.collective)

    def reply(self, case: Case) -> None:
        """The reply closes the case; a call-back follows when the policy has one."""
        case.replied = case.closed = self.now
        case.first_response = self.now if math.isnan(case.first_response) else case.first_response
        if self.params.policy.callback and self.params.citizens.behaviour:
            case.status, case.callback_at = "awaiting_callback", self.now + self.params.platform.callback_delay_h
            self.platform.awaiting_callback.append(case)
        else:
            self.judge(case, callback=False)

    def judge(self, case: Case, callback: bool) -> None:
        """The requester judges; unsatisfied, they may reopen (via call-back) or escalate, else it is closed."""
        c, p = self.params.citizens, self.params.policy
        case.satisfied = not c.behaviour or case.citizen.judge(case)
        if not case.satisfied:
            reopen = (callback and p.reopen_allowed and case.reopens < p.max_reopens
                      and self.random.random() < c.reopen_propensity)
            escalate = not reopen and not case.escalated and case.citizen.escalates(case)
            if reopen or escalate:
                case.reopened, case.reopens = case.reopened or reopen, case.reopens + reopen
                if escalate:
                    self.escalate(case)
                case.closed = case.replied = math.nan
                case.resolved = case.perfunctory = False
                case.satisfied, case.boost = None, 2
                self.platform.send(case, self.now + self.params.platform.dispatch_delay_h)
                return
        case.status = "closed"
        if c.behaviour:
            case.citizen.learn(case.satisfied, case.resolved, case.channel)

    def press(self, case: Case, extra_detection: float) -> None:
        """A reminder, inspection or escalation: priority rises; a neglected case is looked at again."""
        case.boost = max(case.boost, 2 if case.level >= 2 or case.escalated else 1)
        if case.status == "neglected":
            case.dept.neglected.remove(case)
            case.dept.decide(case, extra_detection)

    def escalate(self, case: Case) -> None:
        case.escalated = case.supervised = True
        case.dept.penalise(self.params.supervision.escalation_penalty)
        self.press(case, extra_detection=1.0)

    # ----------------------------------------------------------------------------------------- step
    def set_demand(self) -> None:
        """This hour's chance of a problem per citizen and per enterprise, and the category mix."""
        d, hour = self.params.demand, int(self.now)
        weekday = (self.start + dt.timedelta(days=hour // 24)).weekday()
        profile = (d.weekday_weights[weekday] / (sum(d.weekday_weights) / 7)
                   * d.hour_weights[hour % 24] / (sum(d.hour_weights) / 24))
        base = d.problems_per_citizen_year / (365.0 * 24.0) * profile / sum(c.share for c in d.categories.values())
        weights = [cat.share * math.prod(sh.multiplier for sh in d.shocks
                                         if sh.start_day <= hour / 24 < sh.start_day + sh.days
                                         and name in (sh.categories or [name]))
                   for name, cat in d.categories.items()]
        firms = [wt * cat.enterprise_weight for wt, cat in zip(weights, d.categories.values(), strict=True)]
        self.category_weights = {False: weights, True: firms}
        self.problem_chance = {False: min(1.0, base * sum(weights)), True: min(1.0, base * sum(firms))}

    def step(self) -> None:
        self.set_demand()
        self.agents_by_type[Citizen].shuffle_do("step")
        self.platform.step()
        self.agents_by_type[Department].do("step")
        if int(self.now) % 24 == 23:
            self.end_of_day()
            self.day += 1
        self.now += 1.0

    def end_of_day(self) -> None:
        """Reminders, patience, supervision, ranking, diligence decay, trust spreading, systemic fixes."""
        s, now, day = self.params, self.now + 1.0, self.day
        self.open_cases = [c for c in self.open_cases if c.status not in ("closed", "abandoned")]
        for case in list(self.open_cases):
            self.remind_or_lose_patience(case, now)
        self.supervise(now)
        if s.policy.public_ranking and (day + 1) % 30 == 0:
            self.rank(now)
        for dept in self.departments.values():
            dept.diligence -= (dept.diligence - s.departments.base_diligence) * s.departments.diligence_decay_per_day
        self.spread_trust()
        self.systemic_fixes(day)

    def remind_or_lose_patience(self, case: Case, now: float) -> None:
        """A tracked case near its due time is reminded; an unanswered citizen out of patience escalates
        once, then gives up."""
        s = self.params
        if s.policy.tracking and not case.reminded and case.due - s.policy.reminder_lead_h <= now:
            case.reminded = True
            if case.status in ("queued", "neglected", "in_transit"):
                self.press(case, extra_detection=0.5)
        if s.citizens.behaviour and case.patience_at <= now and case.status in OPEN and math.isnan(
                case.first_response):
            if not case.escalated and case.citizen.escalates(case):
                self.escalate(case)
                case.patience_at += s.citizens.patience_h
            else:  # gives up
                for pile in (case.dept.queue, case.dept.neglected):
                    if case in pile:
                        pile.remove(case)
                case.status, case.satisfied = "abandoned", False
                case.citizen.learn(False, False, case.channel)

    def spread_trust(self) -> None:
        """Today's trust changes reach each changed citizen's contacts (social influence / degree)."""
        s = self.params
        k = s.world.social_degree
        for person in self.changed:
            for contact in person.contacts:
                contact.trust = clip01(contact.trust + person.trust_change * s.citizens.social_influence / k)
        for person in self.changed:
            person.trust_change = 0.0
        self.changed = set()

    def systemic_fixes(self, day: int) -> None:
        """Count today's complaints per (category, township); enough within the window trigger a fix."""
        s = self.params
        for case in self.today:
            if not case.consultation:
                self.complaints.setdefault((case.category, case.citizen.township), []).append(day)
        self.today = []
        for key, days in self.complaints.items():
            days[:] = [d for d in days if d > day - s.policy.systemic_fix_window_days]
            if s.policy.systemic_fix and len(days) >= s.policy.systemic_fix_threshold \
                    and self.fixed_until.get(key, -1) < day:
                self.fixed_until[key] = day + s.policy.systemic_fix_duration_days
                days.clear()

    def supervise(self, now: float) -> None:
        """Inspect the most overdue open cases, up to the day's intensity; sanctions climb a ladder."""
        s = self.params
        mandate = s.policy.response_mandate_hours
        overdue = [c for c in self.open_cases if c.status in OPEN[1:] and (
            c.due < now or (c.reopened and c.level == 0)
            or (mandate is not None and math.isnan(c.first_response) and c.created + mandate < now))]
        n = int(s.policy.supervision_intensity)
        n += self.random.random() < s.policy.supervision_intensity - n
        for case in sorted(overdue, key=lambda c: c.due)[:n]:
            case.supervised, case.level = True, min(case.level + 1, 3)
            case.dept.penalise({1: s.supervision.reminder_penalty, 2: s.supervision.order_penalty}.get(
                case.level, s.supervision.naming_penalty))
            self.press(case, extra_detection=0.6)

    def rank(self, now: float) -> None:
        """Monthly public ranking on the three rates (30/35/35); the bottom share is penalised."""
        scores: dict[Department, list[float]] = {}
        for case in reversed(self.cases):
            if case.created < now - 720:
                break
            if not case.direct_answer and not math.isnan(case.dept_arrival):
                n = scores.setdefault(case.dept, [0, 0, 0, 0, 0])  # cases, responded, resolved, judged, satisfied
                n[0] += 1
                n[1] += not math.isnan(case.first_response)
                n[2] += case.resolved
                n[3] += case.satisfied is not None
                n[4] += bool(case.satisfied)
        ranked = sorted(scores, key=lambda d: 0.30 * scores[d][1] / scores[d][0] + 0.35 * scores[d][2] / scores[d][0]
                        + 0.35 * (scores[d][4] / scores[d][3] if scores[d][3] else 1.0))
        for dept in ranked[: max(1, round(self.params.supervision.ranking_bottom_share * len(ranked)))]:
            dept.penalise(self.params.supervision.ranking_penalty)


@dataclass
class ReferenceResult:
    """Counts over the cases created after the warm-up, and the wall time in seconds (construction + run)."""

    problems: int
    reported: int
    accepted: int
    direct_answers: int
    closed: int
    abandoned: int
    escalated: int
    satisfied: int
    citizen_hours: int
    wall_s: float


def run_reference(scenario: Scenario, seed: int = 1, days: float | None = None,
                  warmup_days: float | None = None) -> ReferenceResult:
    """Build and run the reference model for the scenario's days (or ``days``) after ``warmup_days``."""
    t0 = time.perf_counter()
    model = ReferenceModel(scenario, seed, days, warmup_days)
    for _ in range(model.hours):
        model.step()
    cases = [c for c in model.cases if c.created >= model.warmup * 24]
    return ReferenceResult(
        problems=model.problems, reported=len(cases), accepted=sum(not math.isnan(c.accepted) for c in cases),
        direct_answers=sum(c.direct_answer for c in cases), closed=sum(c.status == "closed" for c in cases),
        abandoned=sum(c.status == "abandoned" for c in cases), escalated=sum(c.escalated for c in cases),
        satisfied=sum(bool(c.satisfied) for c in cases), citizen_hours=scenario.world.population * model.hours,
        wall_s=time.perf_counter() - t0)
