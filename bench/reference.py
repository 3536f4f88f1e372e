"""The obvious way: a plain Mesa model of the Wenzheng process, kept as the benchmark's reference.

Every citizen is a ``mesa.Agent`` that steps every hour and draws its own problems; every case is a Python
object; the platform and the departments are agents that keep their work in Python lists and step every
hour too; supervision offices are agents that act once a day. It reads the same :class:`sim.Scenario` as
``sim`` and tells the same story with the same rules and parameters (docs/ODD.md III.iv), written per case
and per department instead of over arrays:

a problem arises → the citizen reports it or not (Epstein-style threshold) → picks a channel (logit) →
operators accept it → a consultation is answered at once, or the order is dispatched (cascade through the
levels, or direct; misrouted orders come back first) → the department chooses, by a logit over effort and
the sanctions it expects from its own record, to handle it properly (queue, lognormal service time,
resolved with a logistic probability), reply perfunctorily (recorded as resolved, not solved), sit on it,
or bounce it back to the platform; under a response mandate it may sign for it at once; once a day it may
choose to serve the easiest (shortest) cases first the next day (cherry-picking) → the reply →
call-back within the operators' daily call-back hours (which catches a false "resolved") → the citizen
judges, learns, and may reopen or escalate → closed. Observers impose the sanctions departments learn from
(forgetting sums per violation kind and request class, from a prior): tracking flags passed deadlines and
unfounded bounces and sends reminders; supervision offices spend a daily budget on the most overdue cases
(a ladder: reminder, order, public naming; an overdue case found waiting behind easier ones is a caught
cherry-picking day) and then on audits of replies; the monthly ranking on the measured rates; the upper
level acting on escalations. Patience, systemic fixes and trust spreading on a contact network are in too.
Departments and their staff are those of :class:`sim.hierarchy.Hierarchy` (``departments.staff`` by level,
``departments.staff_by_department`` by name), so both models staff alike.

It omits what ``sim`` gained later, and is compared with ``sim`` with these switched off: relays as staffed
queues in a cascade (here each hand-over is a lognormal delay), repeat reports of unsolved problems, the
fading of trust and efficacy toward each requester's disposition, trust in the reporting rule, the cost and
risk of escalating, and the province's own inspections of provincial and central departments (and the
reduced weight of the city's sanctions on them).

It is written for reading, not speed, and is not bit-identical to ``sim``: times are whole hours (events
are handled in the step after they fall due), and patience is checked once a day. ``python -m bench --suite
reference`` runs it next to ``sim.run_scenario`` on the same scenario and compares case lifecycles completed
(created → closed) per second. It is not part of the simulator and its figures are not results. Units:
hours of model time; shares and probabilities 0–1; effort and sanctions in effort units (1 = one case
handled properly at no load).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass

import mesa
import numpy as np

from sim.hierarchy import LEVEL_INDEX, PREFECTURE_INDEX, Hierarchy
from sim.scenario import DispatchMode, Hours, Level, QueueDiscipline, Scenario

OFFICE = range(9, 17)  # office hours on working days, as in sim/calendar.py
OPEN = ("awaiting_intake", "in_transit", "queued", "neglected", "in_service")  # not yet replied
UNREPLIED = OPEN[1:]  # dispatched and not yet replied: what a deadline checks
KINDS = ("late", "unsigned", "perfunctory", "bounced", "cherry")  # violations a department keeps beliefs about
ACTIONS = ("proper", "perfunctory", "sit", "bounce")


def logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def clip01(x: float) -> float:
    return min(1.0, max(0.0, x))


def logistic_noise(rnd, scale: float) -> float:
    """A Logistic(0, scale) variate."""
    u = min(max(rnd.random(), 1e-12), 1 - 1e-12)
    return scale * math.log(u / (1 - u))


class Case:
    """One request, as a plain Python object."""

    def __init__(self, model: ReferenceModel, citizen: Citizen, category: str, channel: str, due: float) -> None:
        c, rnd = model.params.citizens, model.random
        self.citizen, self.category, self.channel, self.created, self.due = citizen, category, channel, model.now, due
        self.dept = model.department_for(category, citizen)
        cat = model.params.demand.categories[category]
        self.consultation = rnd.random() < cat.consultation_share
        self.service_time = (cat.service_time_median_h * rnd.expovariate(1.0) if cat.service_time_dist == "exponential"
                             else rnd.lognormvariate(math.log(cat.service_time_median_h), cat.service_time_sigma))
        self.tattle, self.collective = rnd.random() < c.tattle_share, rnd.random() < c.collective_threat_share
        self.threat = self.tattle or self.collective  # the request class of the department's beliefs
        self.accepted = self.dispatched = self.dept_arrival = self.first_response = math.nan
        self.replied = self.closed = self.queued_at = math.nan
        self.arrives = self.finishes = self.callback_at = math.inf
        self.inspected_at = -math.inf
        self.patience_at = self.created + c.patience_h
        self.remind_at = max(due - model.params.policy.reminder_lead_h, self.created + 1.0)
        self.true_resolved = self.recorded_resolved = self.perfunctory = False
        self.supervised = self.escalated = self.reopened = self.direct_answer = False
        self.returning = self.surveyed = self.audited = False
        self.reminded = self.due_checked = self.sign_checked = False
        self.listed = True  # in the model's list of open cases
        self.satisfied: bool | None = None
        self.level = self.boost = self.reopens = self.bounced = 0  # supervision ladder; queue priority; counts
        self.status = "awaiting_intake"

    @property
    def compelled(self) -> bool:
        """Under a supervision order (ladder level ≥ 2) or escalated: handled properly, first in the queue."""
        return self.level >= 2 or self.escalated


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
        """Satisfied or not with a reply (score with logistic noise against the threshold); the requester
        knows whether the problem was truly solved."""
        c = self.model.params.citizens
        timely = math.exp(-max(self.model.now - case.created, 0.0) / (2.0 * c.expected_response_h))
        score = (c.satisfaction_resolved_weight * case.true_resolved
                 + c.satisfaction_reply_weight * (not case.perfunctory and not case.true_resolved)
                 + c.satisfaction_timeliness_weight * timely - c.satisfaction_perfunctory_penalty * case.perfunctory
                 + logistic_noise(self.random, c.satisfaction_noise))
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
        """Grievance = severity × (1 − trust), plus logistic noise, against the escalation threshold (lower
        for a request that threatened to tell the upper level or to act collectively)."""
        c = self.model.params.citizens
        severity = self.model.params.demand.categories[case.category].severity
        threshold = c.escalation_threshold - c.threat_escalation_shift * case.threat
        return severity * (1 - self.trust) + logistic_noise(self.random, c.escalation_noise) > threshold


class Platform(mesa.Agent):
    """The 12345 centre: operators take in requests, answer or dispatch, call back, and track deadlines."""

    def __init__(self, model: ReferenceModel) -> None:
        super().__init__(model)
        p = model.params.platform
        self.per_hour = math.inf if p.instant_intake else p.operators * 60.0 / p.handling_minutes
        self.credit = 0.0  # requests the operators can still take in this hour
        self.callback_minutes_today = 0.0
        self.queue: list[Case] = []
        self.in_transit: list[Case] = []  # on their way to a department, or bounced back to the platform
        self.awaiting_callback: list[Case] = []
        self.watched: list[Case] = []  # dispatched cases with a reminder or a deadline still to come

    def step(self) -> None:
        m, p = self.model, self.model.params
        office = m.office_open(m.now)
        if p.policy.platform_hours == Hours.ALWAYS or office:
            self.credit = min(self.credit + self.per_hour, max(self.per_hour, 1.0))
            waiting = []
            for case in self.queue:  # calls need someone to answer, visits need the office open
                if case.status != "awaiting_intake":
                    continue  # the requester gave up
                visit = case.channel == "offline" and p.platform.offline_office_hours
                if self.credit >= 1.0 and (office or not visit):
                    self.credit -= 1.0
                    self.accept(case)
                else:
                    waiting.append(case)
            self.queue = waiting
        for case in [c for c in self.in_transit if c.arrives <= m.now]:
            self.in_transit.remove(case)
            if case.status != "in_transit":
                continue
            if case.returning:
                self.come_back(case)
            else:
                case.dept.receive(case)
        for case in [c for c in self.awaiting_callback if c.callback_at <= m.now]:
            self.awaiting_callback.remove(case)
            if case.status == "awaiting_callback":
                self.call_back(case)

    def accept(self, case: Case) -> None:
        case.accepted = self.model.now
        if case.consultation and self.random.random() < self.model.params.platform.direct_answer_share:
            case.direct_answer = case.true_resolved = case.recorded_resolved = True
            case.first_response = case.replied = self.model.now
            self.model.after_reply(case)
        else:
            self.dispatch(case)

    def dispatch(self, case: Case) -> None:
        """Down the hierarchy (one lognormal hand-over per hop, in working time) or misrouted first."""
        m, p = self.model, self.model.params.platform
        hops = 1 if m.params.policy.dispatch_mode == DispatchMode.DIRECT else case.dept.hops
        t = m.now + p.dispatch_delay_h
        case.dispatched = t
        for _ in range(hops - 1):
            t = m.dept_time(t + p.handover_delay_h * self.random.lognormvariate(0.0, 0.8))
        if self.random.random() > p.classification_accuracy:
            t = m.dept_time(t + p.misroute_return_h) + p.dispatch_delay_h  # the wrong department sends it back
        case.reminded = not m.params.policy.tracking or case.remind_at < m.now  # a reminder at intake is lost
        self.watched.append(case)
        self.send(case, t)

    def send(self, case: Case, when: float) -> None:
        case.arrives, case.status = when, "in_transit"
        self.in_transit.append(case)

    def come_back(self, case: Case) -> None:
        """A bounced order is back: with tracking the platform sees (chance classification_accuracy) that
        the routing was right and flags the bounce; it sends the order back either way."""
        m = self.model
        if m.params.policy.tracking and self.random.random() < m.params.platform.classification_accuracy:
            case.dept.catch("bounced", case.threat, m.params.supervision.tracking_flag_sanction)
        case.returning = False
        self.send(case, m.now + m.params.platform.dispatch_delay_h)

    def call_back(self, case: Case) -> None:
        """The call-back survey, while today's call-back hours last; on the phone a reply recorded as
        resolved that was not is found out (the department sanctioned, the case reopened)."""
        m, p = self.model, self.model.params.platform
        if self.callback_minutes_today + p.callback_minutes > p.callback_hours_per_day * 60.0 + 1e-9:
            m.judge(case, callback=False)
            return
        self.callback_minutes_today += p.callback_minutes
        case.surveyed = True
        found_false = case.recorded_resolved and not case.true_resolved
        if found_false:
            case.dept.catch("perfunctory", case.threat, m.params.supervision.callback_sanction)
        m.judge(case, callback=True, found_false=found_false)

    def track(self) -> None:
        """Reminders before the due time, and the deadlines of dispatched cases (reply due; sign-for under a
        mandate): a case still without a reply is a violation of its department, which tracking flags."""
        m, s = self.model, self.model.params
        mandate = s.policy.response_mandate_hours
        still = []
        for case in self.watched:
            if not case.reminded and case.remind_at <= m.now:
                case.reminded = True
                if case.status in ("in_transit", "queued", "neglected"):
                    m.press(case, s.supervision.tracking_flag_sanction)
            if not case.due_checked and max(case.due, case.dispatched) <= m.now:
                case.due_checked = True
                if case.status in UNREPLIED and math.isnan(case.replied):
                    m.violation(case, "late")
            if not case.sign_checked and (mandate is None or max(case.created + mandate, case.dispatched) <= m.now):
                case.sign_checked = True
                if mandate is not None and case.status in UNREPLIED and math.isnan(case.first_response):
                    m.violation(case, "unsigned")
            if not (case.reminded and case.due_checked and case.sign_checked):
                still.append(case)
        self.watched = still


class Department(mesa.Agent):
    """A functional bureau at one unit: ``staff`` servers, a waiting list, a pile it sits on, cases in hand,
    and its beliefs: per violation kind and request class (plain, threat) the forgetting sums of violations
    committed, caught and sanction units received, from a prior."""

    def __init__(self, model: ReferenceModel, node: str, category: str, level: Level, county: int,
                 staff: int) -> None:
        super().__init__(model)
        d = model.params.departments
        self.node, self.category, self.level, self.county, self.staff = node, category, level.value, county, staff
        self.hops = abs(LEVEL_INDEX[level] - PREFECTURE_INDEX) + 1  # hand-overs of a cascade
        self.queue: list[Case] = []
        self.neglected: list[Case] = []
        self.in_service: list[Case] = []
        prior = [d.prior_strength, d.prior_strength * d.prior_catch,
                 d.prior_strength * d.prior_catch * d.prior_sanction]
        self.record = {(k, r): list(prior) for k in KINDS for r in (False, True)}  # [committed, caught, sanctions]
        self.today = {(k, r): [0.0, 0.0, 0.0] for k in KINDS for r in (False, True)}
        self.late = [0.0, 0.0, 0.0, 0.0]  # late and all properly handled replies: [sum, count, today's, today's]
        self.easy_first = False  # serving the shortest cases first today (cherry-picking)
        self.free_at = [0.0] * staff  # when each member of staff is free for the next case (h)

    # ------------------------------------------------------------------------------------------ beliefs
    def commit(self, kind: str, threat: bool) -> None:
        self.today[(kind, threat)][0] += 1.0

    def catch(self, kind: str, threat: bool, sanction: float) -> None:
        """An observer caught a violation and imposed ``sanction`` (0: no consequence, nothing recorded)."""
        if sanction > 0:
            self.today[(kind, threat)][1] += 1.0
            self.today[(kind, threat)][2] += sanction

    def expected(self, kind: str, threat: bool) -> float:
        """Sanction expected per violation of ``kind``: sanctions received / violations committed."""
        n, _, sanctions = self.record[(kind, threat)]
        return sanctions / n if n > 0 else 0.0

    def learn(self) -> None:
        """End of day: one day of forgetting, then the day's counts."""
        f = math.exp(-1.0 / self.model.params.departments.belief_memory_days)
        for key, today in self.today.items():
            self.record[key] = [f * x + y for x, y in zip(self.record[key], today, strict=True)]
            self.today[key] = [0.0, 0.0, 0.0]
        self.late = [f * self.late[0] + self.late[2], f * self.late[1] + self.late[3], 0.0, 0.0]

    def choose_order(self) -> None:
        """End of day, after learning: with cases waiting, serve the easiest first tomorrow with chance
        σ((cherry_gain × load − E(cherry)) / choice_noise); each such day is a violation in the record."""
        d = self.model.params.departments
        self.easy_first = False
        if self.queue and d.effort_choice:
            u = d.cherry_gain * len(self.queue) / max(self.staff, 1) - self.expected("cherry", False)
            self.easy_first = self.random.random() < logistic(u / d.choice_noise)
            if self.easy_first:
                self.commit("cherry", False)

    # ---------------------------------------------------------------------------------------- choices
    def receive(self, case: Case) -> None:
        if math.isnan(case.dept_arrival):
            case.dept_arrival = self.model.now
        self.choose(case, pressure=0.0)

    def utilities(self, case: Case, pressure: float) -> list[float]:
        """Proper, perfunctory, sit, bounce — effort against the sanctions expected from the record."""
        d = self.model.params.departments
        cost = 1.0 + d.load_weight * len(self.queue) / max(self.staff, 1)
        e_late = self.expected("late", case.threat)
        q_late = self.late[0] / self.late[1] if self.late[1] > 0 else 0.0
        may_bounce = case.bounced < self.model.params.platform.max_bounces
        return [d.duty - cost - q_late * e_late,
                -cost * d.perfunctory_effort - self.expected("perfunctory", case.threat),
                -e_late - pressure,
                -cost * d.bounce_effort - self.expected("bounced", case.threat) if may_bounce else -math.inf]

    def choose(self, case: Case, pressure: float) -> None:
        """Proper (queue), perfunctory (a quick reply claiming it solved), sit, or bounce; a logit choice.
        Compelled and reopened cases are handled properly. Under a mandate it may sign for the case at once."""
        m, d = self.model, self.model.params.departments
        action = "proper"
        if d.effort_choice and not (case.compelled or case.reopened):
            u = self.utilities(case, pressure)
            top = max(u)
            action = self.random.choices(ACTIONS, [math.exp((x - top) / d.choice_noise) for x in u])[0]
        if action != "bounce" and m.params.policy.response_mandate_hours is not None:
            e = self.expected("unsigned", case.threat)
            if self.random.random() < 1.0 - math.exp(-max(e - d.sign_effort, 0.0) / d.choice_noise):
                self.respond(case, m.dept_time(m.now))
        if action == "proper":
            case.perfunctory, case.status, case.queued_at = False, "queued", m.now
            self.queue.append(case)
        elif action == "perfunctory":
            t = m.dept_time(m.now)
            self.respond(case, t)
            case.perfunctory = True
            case.status, case.finishes = "in_service", t + d.perfunctory_reply_h
            self.in_service.append(case)
        elif action == "sit":
            case.status = "neglected"
            self.neglected.append(case)
        else:
            self.bounce(case)

    @staticmethod
    def respond(case: Case, when: float) -> None:
        case.first_response = when if math.isnan(case.first_response) else case.first_response

    def bounce(self, case: Case) -> None:
        """Returned as "not our jurisdiction": back at the platform misroute_return_h later (working time)."""
        m = self.model
        case.bounced += 1
        case.returning = True
        self.commit("bounced", case.threat)
        m.platform.send(case, m.dept_time(m.now + m.params.platform.misroute_return_h))

    # -------------------------------------------------------------------------------------------- work
    def step(self) -> None:
        """Replies of the cases finished by now; then each server free by now (its free time, in office
        hours) takes the next case of the queue by its discipline, as long as that start is not later than now."""
        m = self.model
        for case in [c for c in self.in_service if c.finishes <= m.now]:
            self.in_service.remove(case)
            if case.status == "in_service":  # not given up meanwhile
                self.finish(case)
        while self.queue and self.free_at:
            server = min(range(len(self.free_at)), key=self.free_at.__getitem__)
            case = min(self.queue, key=self.queue_key())
            start = m.dept_time(max(self.free_at[server], case.queued_at))
            if start > m.now:
                break
            self.queue.remove(case)
            self.respond(case, start)
            case.finishes, case.status = start + case.service_time, "in_service"
            self.free_at[server] = case.finishes  # busy until then, even if the requester gives up
            self.in_service.append(case)

    def queue_key(self):
        """The queue order: cherry-picking (pressed first, then the shortest), or the scenario's discipline."""
        discipline = self.model.params.departments.queue_discipline
        if self.easy_first:
            return lambda c: (-c.boost, c.service_time, c.queued_at)
        if discipline == QueueDiscipline.FIFO:
            return lambda c: c.queued_at
        if discipline == QueueDiscipline.DEADLINE:
            return lambda c: (-c.boost, c.due, c.queued_at)
        return lambda c: (-c.boost, c.queued_at)

    def finish(self, case: Case) -> None:
        """The reply: a proper one solves the problem or not (recorded truly); a perfunctory one is recorded
        as resolved without solving anything."""
        m, d = self.model, self.model.params.departments
        if case.perfunctory:
            case.true_resolved, case.recorded_resolved = False, True
            self.commit("perfunctory", case.threat)
        else:
            difficulty = m.params.demand.categories[case.category].difficulty
            x = (d.resolution_intercept - d.resolution_difficulty_weight * difficulty
                 + d.supervised_resolution_bonus * (case.supervised or case.escalated))
            case.true_resolved = case.recorded_resolved = self.random.random() < logistic(x)
            self.late[2] += m.now > case.due
            self.late[3] += 1.0
        case.replied = m.now
        m.after_reply(case)


class Supervisor(mesa.Agent):
    """A supervision office (the city's, ``county`` None; or one county's): a daily budget of inspections
    spent on the most overdue cases of its departments, the rest on audits of replies."""

    def __init__(self, model: ReferenceModel, intensity: float, county: int | None = None) -> None:
        super().__init__(model)
        self.intensity, self.county = intensity, county

    def mine(self, case: Case) -> bool:
        return self.county is None or case.dept.county == self.county

    def step(self) -> None:
        n = int(self.intensity)
        n += self.random.random() < self.intensity - n
        if n > 0:
            now = self.model.now + 1.0
            n -= self.inspect(now, n)
            if n > 0:
                self.audit(now, n)

    def inspect(self, now: float, n: int) -> int:
        """Overdue (past due, past the sign-for deadline, or reopened and never inspected), not inspected in
        the last day, not yet named; most overdue first. The ladder: reminder, order, public naming."""
        m, s = self.model, self.model.params.supervision
        mandate = m.params.policy.response_mandate_hours
        overdue = [c for c in m.open_cases if c.status in UNREPLIED and self.mine(c)
                   and c.inspected_at < now - 24.0 and c.level < 3 and (
                       c.due < now or (c.reopened and c.level == 0)
                       or (mandate is not None and math.isnan(c.first_response) and c.created + mandate < now))]
        chosen = sorted(overdue, key=lambda c: c.due)[:n]
        for case in chosen:
            case.supervised, case.inspected_at, case.level = True, now, min(case.level + 1, 3)
            case.dept.catch("late", case.threat, {1: s.reminder_sanction, 2: s.order_sanction}.get(
                case.level, s.naming_sanction))
            if case.status == "queued" and case.dept.easy_first:  # waiting behind easier cases
                case.dept.catch("cherry", False, s.cherry_sanction)
            m.press(case, s.order_sanction)
        return len(chosen)

    def audit(self, now: float, n: int) -> None:
        """Audit replies of the window at random; a perfunctory one is found (chance audit_accuracy), the
        department sanctioned and the case reopened under a supervision order."""
        m, s = self.model, self.model.params.supervision
        pool = []
        for case in reversed(m.cases):
            if case.created < now - (s.audit_window_days + 60.0) * 24.0:
                break
            if (case.status in ("closed", "awaiting_callback") and not case.direct_answer and not case.audited
                    and case.replied >= now - s.audit_window_days * 24.0 and self.mine(case)):
                pool.append(case)
        for case in self.random.sample(pool, min(n, len(pool))):
            case.audited = case.supervised = True
            if case.perfunctory and self.random.random() < s.audit_accuracy:
                case.dept.catch("perfunctory", case.threat, s.audit_sanction)
                case.level, case.reopened = max(case.level, 2), True
                m.send_back(case)


class ReferenceModel(mesa.Model):
    """The city: citizens, the platform, departments, supervision offices; daily chores in ``end_of_day``."""

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
        self.build()

    def build(self) -> None:
        """Units, departments and staff as sim builds them; citizens in townships; the contact network."""
        s, w = self.params, self.params.world
        h = Hierarchy(s, np.random.default_rng(self.random.getrandbits(32)))
        self.county_of = [int(c) for c in h.township_county]
        self.departments = [Department(self, r.node, r.category, r.level, self.county_at(r.unit), r.staff)
                            for r in h.departments]
        self.handler = {name: [self.departments[int(i)] for i in h.handler[c]]
                        for c, name in enumerate(h.categories)}
        urban_towns = [j for j in range(w.townships) if h.township_urban[j]]
        rural_towns = [j for j in range(w.townships) if not h.township_urban[j]]
        self.platform = Platform(self)
        self.supervisors = [Supervisor(self, s.policy.supervision_intensity)]
        if s.policy.county_supervision_intensity > 0:
            self.supervisors += [Supervisor(self, s.policy.county_supervision_intensity, i)
                                 for i in range(w.counties)]
        by_township: dict[int, list[Citizen]] = {}
        for _ in range(w.population):
            urban = bool(urban_towns) and (not rural_towns or self.random.random() < w.urban_population_share)
            township = self.random.choice(urban_towns if urban else rural_towns)
            by_township.setdefault(township, []).append(Citizen(self, township, urban))
        self.citizens = list(self.agents_by_type[Citizen])
        for person in self.citizens:
            for _ in range(w.social_degree):
                local = self.random.random() < w.local_tie_share
                person.contacts.append(self.random.choice(by_township[person.township] if local else self.citizens))

    def county_at(self, unit: str) -> int:
        """The county a department's unit belongs to (-1 above the counties), for county supervision."""
        kind, _, index = unit.partition(":")
        if kind == "county":
            return int(index)
        return self.county_of[int(index)] if kind == "township" else -1

    # ----------------------------------------------------------------------------------- calendar
    def working_day(self, day: int) -> bool:
        date = self.start + dt.timedelta(days=day)
        return date.weekday() < 5 and date not in self.holidays

    def office_open(self, hour: float) -> bool:
        return int(hour % 24) in OFFICE and self.working_day(int(hour // 24))

    def next_open(self, t: float) -> float:
        """``t`` if offices are open then, else the next opening (09:00 of a working day)."""
        day = int(t // 24)
        if self.working_day(day) and t % 24 < OFFICE.stop:
            return max(t, day * 24.0 + OFFICE.start)
        day += 1
        while not self.working_day(day):
            day += 1
        return day * 24.0 + OFFICE.start

    def dept_time(self, t: float) -> float:
        """When departments can act at or after ``t`` (their opening hours)."""
        return t if self.params.departments.hours == Hours.ALWAYS else self.next_open(t)

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
        return self.handler[category][citizen.township]

    def violation(self, case: Case, kind: str) -> None:
        """A deadline passed: a violation in the department's record, flagged when tracking is on."""
        case.dept.commit(kind, case.threat)
        if self.params.policy.tracking:
            case.dept.catch(kind, case.threat, self.params.supervision.tracking_flag_sanction)

    def after_reply(self, case: Case) -> None:
        """The reply closes the case; a call-back follows for a share of cases when the policy has one."""
        case.closed = self.now
        p = self.params
        if p.policy.callback and p.citizens.behaviour and self.random.random() < p.platform.callback_share:
            case.status, case.callback_at = "awaiting_callback", self.now + p.platform.callback_delay_h
            self.platform.awaiting_callback.append(case)
        else:
            self.judge(case, callback=False)

    def judge(self, case: Case, callback: bool, found_false: bool = False) -> None:
        """The requester judges; unsatisfied, they may reopen (via call-back) or escalate; a false "resolved"
        found on the phone is reopened whatever the judgement; else the case is closed."""
        c, p = self.params.citizens, self.params.policy
        if not c.behaviour:
            case.satisfied, case.status = True, "closed"
            return
        case.satisfied = case.citizen.judge(case)
        reopen = found_false or (not case.satisfied and callback and p.reopen_allowed
                                 and case.reopens < p.max_reopens and self.random.random() < c.reopen_propensity)
        escalate = not reopen and not case.satisfied and not case.escalated and case.citizen.escalates(case)
        if reopen:
            case.reopened, case.reopens = True, case.reopens + 1
        elif escalate:
            self.escalate(case)
        if reopen or escalate:
            self.send_back(case)
            return
        case.status = "closed"
        case.citizen.learn(case.satisfied, case.true_resolved, case.channel)

    def send_back(self, case: Case) -> None:
        """Back to the same department, pressed, its reply and outcome cleared."""
        if not case.listed:
            case.listed = True
            self.open_cases.append(case)
        case.closed = case.replied = math.nan
        case.true_resolved = case.recorded_resolved = case.perfunctory = False
        case.satisfied, case.boost = None, 2
        self.platform.send(case, self.now + self.params.platform.dispatch_delay_h)

    def press(self, case: Case, pressure: float) -> None:
        """A reminder, inspection or escalation: priority rises; a case sat on is chosen about again, leaving
        it now costing ``pressure`` more."""
        case.boost = max(case.boost, 2 if case.compelled else 1)
        if case.status == "neglected":
            case.dept.neglected.remove(case)
            case.dept.choose(case, pressure)

    def escalate(self, case: Case) -> None:
        """The upper level acts: the department is sanctioned for what is complained of (a perfunctory
        reply, or none) and must handle the case."""
        s = self.params.supervision
        case.escalated = case.supervised = True
        case.dept.catch("perfunctory" if case.perfunctory else "late", case.threat, s.escalation_sanction)
        self.press(case, s.escalation_sanction)

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
        self.platform.track()
        if int(self.now) % 24 == 23:
            self.end_of_day()
            self.day += 1
        self.now += 1.0

    def end_of_day(self) -> None:
        """Patience, supervision, ranking, departments' learning, trust spreading, systemic fixes."""
        s, now, day = self.params, self.now + 1.0, self.day
        for case in self.open_cases:
            case.listed = case.status not in ("closed", "abandoned")
        self.open_cases = [c for c in self.open_cases if c.listed]
        for case in list(self.open_cases):
            self.lose_patience(case, now)
        for office in self.supervisors:
            office.step()
        if s.policy.public_ranking and (day + 1) % 30 == 0:
            self.rank(now)
        for dept in self.departments:
            dept.learn()
            dept.choose_order()
        self.spread_trust()
        self.systemic_fixes(day)
        self.platform.callback_minutes_today = 0.0

    def lose_patience(self, case: Case, now: float) -> None:
        """No reply within patience (a sign-for is no reply): the requester escalates once, then gives up."""
        s = self.params
        if not s.citizens.behaviour or case.patience_at > now or case.status not in OPEN \
                or not math.isnan(case.replied):
            return
        if not case.escalated and case.citizen.escalates(case):
            self.escalate(case)
            case.patience_at += s.citizens.patience_h
            return
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

    def rank(self, now: float) -> None:
        """Monthly public ranking on the measured rates (30/35/35); the bottom share is sanctioned."""
        scores: dict[Department, list[float]] = {}
        for case in reversed(self.cases):
            if case.created < now - 720:
                break
            if not case.direct_answer and not math.isnan(case.dept_arrival):
                n = scores.setdefault(case.dept, [0, 0, 0, 0, 0])  # cases, responded, recorded, surveyed, satisfied
                n[0] += 1
                n[1] += not math.isnan(case.first_response)
                n[2] += case.recorded_resolved
                judged = case.surveyed and case.satisfied is not None
                n[3] += judged
                n[4] += judged and case.satisfied
        order = [d for d in self.departments if d in scores]
        ranked = sorted(order, key=lambda d: 0.30 * scores[d][1] / scores[d][0] + 0.35 * scores[d][2] / scores[d][0]
                        + 0.35 * (scores[d][4] / scores[d][3] if scores[d][3] else 1.0))
        sup = self.params.supervision
        for dept in ranked[: max(1, round(sup.ranking_bottom_share * len(ranked)))]:
            dept.catch("late", False, sup.ranking_bottom_sanction)


@dataclass
class ReferenceResult:
    """Counts over the cases created after the warm-up, and the wall time in seconds (construction + run).

    ``final``: closed or abandoned; ``responded``: with a first response; ``recorded_resolved`` and
    ``true_resolved``: among final cases; ``judged``: with a judgement (abandoned ones count, unsatisfied);
    ``replied``: cases with a reply from a department (not answered at intake), ``perfunctory`` of them
    perfunctory; ``bounced``: cases returned at least once.
    """

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
    responded: int = 0
    final: int = 0
    recorded_resolved: int = 0
    true_resolved: int = 0
    judged: int = 0
    replied: int = 0
    perfunctory: int = 0
    bounced: int = 0

    def rates(self) -> dict[str, float]:
        """The outcome levels, defined as sim's KPIs of the same names (NaN without a denominator)."""
        def share(num: int, den: int) -> float:
            return num / den if den else math.nan

        return {"response_rate": share(self.responded, self.reported),
                "resolution_rate": share(self.recorded_resolved, self.final),
                "true_resolution_rate": share(self.true_resolved, self.final),
                "satisfaction_rate": share(self.satisfied, self.judged),
                "perfunctory_share": share(self.perfunctory, self.replied),
                "escalation_rate": share(self.escalated, self.reported)}


def run_reference(scenario: Scenario, seed: int = 1, days: float | None = None,
                  warmup_days: float | None = None) -> ReferenceResult:
    """Build and run the reference model for the scenario's days (or ``days``) after ``warmup_days``."""
    t0 = time.perf_counter()
    model = ReferenceModel(scenario, seed, days, warmup_days)
    for _ in range(model.hours):
        model.step()
    cases = [c for c in model.cases if c.created >= model.warmup * 24]
    final = [c for c in cases if c.status in ("closed", "abandoned")]
    replied = [c for c in cases if not c.direct_answer and not math.isnan(c.replied)]
    return ReferenceResult(
        problems=model.problems, reported=len(cases), accepted=sum(not math.isnan(c.accepted) for c in cases),
        direct_answers=sum(c.direct_answer for c in cases), closed=sum(c.status == "closed" for c in cases),
        abandoned=sum(c.status == "abandoned" for c in cases), escalated=sum(c.escalated for c in cases),
        satisfied=sum(bool(c.satisfied) for c in cases), citizen_hours=scenario.world.population * model.hours,
        wall_s=time.perf_counter() - t0, responded=sum(not math.isnan(c.first_response) for c in cases),
        final=len(final), recorded_resolved=sum(c.recorded_resolved for c in final),
        true_resolved=sum(c.true_resolved for c in final), judged=sum(c.satisfied is not None for c in cases),
        replied=len(replied), perfunctory=sum(c.perfunctory for c in replied), bounced=sum(c.bounced > 0 for c in cases))
