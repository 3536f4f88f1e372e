"""The case lifecycle: one function per transition, each naming the statuses it moves cases from and to.

A case's path (statuses of :class:`sim.cases.Status`)::

    arise (sim.demand) → report ─ AWAITING_INTAKE ─ accept ─┬─ direct answer ─ after_reply
                                                             └─ dispatch ─ IN_TRANSIT ─ arrive ─ choose
    at a relay (cascade), choose ─ proper: QUEUED ─ start_service ─ IN_SERVICE ─ forward ─ IN_TRANSIT ─ arrive
    (at the next bureau of the route); sit and bounce as at a department; no reply, no sign-for
    choose (the department's action, sim.departments) ─┬─ proper: take_up ─ QUEUED ─ start_service ─ IN_SERVICE ─ reply
                                                        ├─ perfunctory: take_up ─ IN_SERVICE ─ reply (claims solved)
                                                        ├─ sit: NEGLECTED (signed for or not) until pressed
                                                        └─ bounce: IN_TRANSIT ─ come_back ─ (the platform re-dispatches)
    reply ─ after_reply ─┬─ AWAITING_CALLBACK ─ call_back ─ judge
                         └─ judge ─┬─ CLOSED
                                   └─ reopened or escalated: send_back ─ IN_TRANSIT (to arrive)
    press (reminder, inspection, escalation): QUEUED moves up; NEGLECTED ─ choose again, with the pressure
    lose_patience: no reply for patience_h ─ escalate, or ABANDONED
    a final case whose problem is unsolved ─ reconsider (later) ─ a repeat report (a new case, repeat_of set)
    deadlines (due, sign-for under a mandate): a violation against the department; tracking flags it

Timed transitions are :class:`Event` s, kept by the model's agenda (:class:`sim.cases.Agenda`) and
handled through :data:`HANDLERS`, in the order the enum declares them, within each hour. Every function
takes the model, the case ids (numpy int64) and the times (hours since the start of the run).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import TYPE_CHECKING

import numpy as np

from .cases import Action, Status, Violation

if TYPE_CHECKING:  # pragma: no cover
    from .model import GovernanceModel


class Event(IntEnum):
    """Timed transitions, declared in the order they are handled within an hour."""

    ACCEPT = 0      # an operator has taken in the request
    ARRIVE = 1      # the order reaches the next bureau of its route (a relay, or its handling department)
    REMIND = 2      # tracking reminds the department before the due time
    REPLY = 3       # the department's reply is ready
    FORWARD = 4     # a relay has registered the order and passes it on
    CALLBACK = 5    # the call-back survey reaches the requester
    PATIENCE = 6    # the requester's patience without any reply runs out
    RETURN = 7      # a bounced order is back at the platform
    DUE = 8         # the reply deadline passes
    SIGN_DUE = 9    # the sign-for deadline of a response mandate passes
    RECONSIDER = 10  # the owner of a problem left unsolved decides whether to report it again


# ------------------------------------------------------------------------------------------ intake
def report(m: GovernanceModel, ids: np.ndarray) -> None:
    """New cases (``AWAITING_INTAKE``) reach the platform; tracking and the requester's patience start."""
    if len(ids) == 0:
        return
    cs = m.cases
    m.platform.receive(ids)
    created = cs.created[ids]
    when = m.levers.tracking.reminder_times(cs.due[ids], created)
    if when is not None:
        m.agenda.schedule(Event.REMIND, when, ids)
    if m.settings.citizens.behaviour:
        m.agenda.schedule(Event.PATIENCE, created + m.settings.citizens.patience_h, ids)


def accept(m: GovernanceModel, ids: np.ndarray, times: np.ndarray) -> None:
    """``AWAITING_INTAKE`` → answered at intake (consultations, a share ``direct_answer_share``; then
    :func:`after_reply`) or :func:`dispatch`. Requests whose requester gave up meanwhile are skipped."""
    cs = m.cases
    rng = m.rng_intake
    waiting = cs.status[ids] == Status.AWAITING_INTAKE
    if not waiting.all():
        ids, times = ids[waiting], times[waiting]
    cs.accepted[ids] = times
    direct = cs.consultation[ids] & (rng.random(len(ids)) < m.settings.platform.direct_answer_share)
    any_direct = bool(direct.any())
    if any_direct:
        d_ids, d_t = ids[direct], times[direct]
        cs.direct_answer[d_ids] = True
        cs.first_response[d_ids] = d_t
        cs.replied[d_ids] = d_t
        cs.true_resolved[d_ids] = True
        cs.recorded_resolved[d_ids] = True
        m.ledger.work("operators", float(cs.intake_time[d_ids].sum()), float(d_t[0]))
        after_reply(m, d_ids, d_t)
    if any_direct:
        other = ~direct
        o_ids, o_t = ids[other], times[other]
    else:
        o_ids, o_t = ids, times
    if len(o_ids):
        m.ledger.work("operators", float(cs.intake_time[o_ids].sum()), float(o_t[0]))
        dispatch(m, o_ids, o_t)


def dispatch(m: GovernanceModel, ids: np.ndarray, times: np.ndarray) -> None:
    """``AWAITING_INTAKE`` → ``IN_TRANSIT``: the order goes to the first bureau of its route (in a cascade
    the category's bureau at the prefecture; in direct dispatch the handling department), or is misrouted
    and returned first; an ``ARRIVE`` follows."""
    cs = m.cases
    rng = m.rng_intake
    p = m.settings.platform
    t = times + p.dispatch_delay_h
    cs.dispatched[ids] = t
    cs.status[ids] = Status.IN_TRANSIT
    wrong = rng.random(len(ids)) > p.classification_accuracy
    if wrong.any():
        cs.misrouted[ids[wrong]] = True
        back = t[wrong] + p.misroute_return_h
        if not m.dept_always_open:
            back = m.calendar.next_open_fast(back)
        t[wrong] = back + p.dispatch_delay_h
    m.agenda.schedule(Event.ARRIVE, t, ids)
    # a deadline already past is checked from the next hour on (not in this hour's pass: no extra pass)
    next_hour = np.floor(times) + 1.0
    m.agenda.schedule(Event.DUE, np.maximum(cs.due[ids], next_hour), ids)
    sign_by = m.levers.mandate.deadline(cs.created[ids])
    if sign_by is not None:
        m.agenda.schedule(Event.SIGN_DUE, np.maximum(sign_by, next_hour), ids)


# ------------------------------------------------------------------------------------- departments
def _threat(m: GovernanceModel, ids: np.ndarray) -> np.ndarray:
    return m.cases.tattle[ids] | m.cases.collective[ids]


def arrive(m: GovernanceModel, ids: np.ndarray, times: np.ndarray) -> None:
    """``IN_TRANSIT`` → :func:`choose` by the bureau that now holds the order (``dept``; ``held_since`` =
    now). At its handling department the first arrival is ``dept_arrival``; at a relay the hours it will
    need to pass the order on are drawn (``relay_time``). Cases already final (the requester gave up) are
    skipped."""
    cs = m.cases
    keep = cs.status[ids] < Status.CLOSED
    if not keep.all():
        ids, times = ids[keep], times[keep]
        if len(ids) == 0:
            return
    cs.held_since[ids] = times
    relay = m.departments.relay[cs.dept[ids]]
    if relay.any():
        r_ids = ids[relay]
        d = m.settings.departments
        cs.relay_time[r_ids] = d.relay_handling_h * m.rng_service.lognormal(0.0, d.relay_handling_sigma, len(r_ids))
        handler = ~relay
        h_ids, h_t = ids[handler], times[handler]
    else:
        h_ids, h_t = ids, times
    arrived = cs.dept_arrival[h_ids]
    cs.dept_arrival[h_ids] = np.where(np.isnan(arrived), h_t, arrived)
    choose(m, ids, times, relay=relay)


def choose(m: GovernanceModel, ids: np.ndarray, times: np.ndarray, pressure: float = 0.0,
           relay: np.ndarray | None = None) -> None:
    """``IN_TRANSIT`` or ``NEGLECTED`` → what the department chooses (:meth:`ActionChoice.decide`):
    :func:`take_up` (proper or perfunctory), ``NEGLECTED`` (sit), or :func:`bounce`. Under a mandate the
    department may sign for the case at once (first response at the next working time). ``relay``: whether
    each case's holder is a relay, when the caller has looked it up."""
    if len(ids) == 0:
        return
    cs = m.cases
    action = m.choice.decide(ids, m.rng_departments, pressure)
    cs.action[ids] = action
    mandate = m.levers.mandate
    b = action == Action.BOUNCE
    if mandate.earlier is not None or mandate.active:  # else no case is under a mandate: nobody signs
        if relay is None:
            relay = m.departments.relay[cs.dept[ids]]
        stay = ~b & ~relay  # a relay never signs for a case
        sign = np.zeros(len(ids), bool)
        sign[stay] = m.choice.sign_now(ids[stay], m.rng_mandate)
        if sign.any():
            s_ids = ids[sign]
            when = times[sign] if m.dept_always_open else m.calendar.next_open_fast(times[sign])
            first = cs.first_response[s_ids]
            cs.first_response[s_ids] = np.where(np.isnan(first), when, first)
    if len(ids) == 1:  # one case: its action says where it goes
        a = int(action[0])
        if a == Action.SIT:
            cs.status[ids] = Status.NEGLECTED
        elif a == Action.BOUNCE:
            bounce(m, ids, times)
        elif a == Action.PERFUNCTORY:
            _reply_perfunctorily(m, ids, times)
        else:
            _queue_up(m, ids, times)
        return
    # the cases grouped by action (a stable sort: each group in the order given); PROPER or PERFUNCTORY are taken
    # up (decide chooses no NONE)
    order = np.argsort(action, kind="stable")
    _, n_proper, n_perf, n_sit, n_bounce = np.bincount(action, minlength=len(Action)).tolist()
    ids, times = ids[order], times[order]
    a, b = n_proper + n_perf, n_proper + n_perf + n_sit
    if n_sit:
        cs.status[ids[a:b]] = Status.NEGLECTED
    if n_perf:
        _reply_perfunctorily(m, ids[n_proper:a], times[n_proper:a])
    if n_proper:
        _queue_up(m, ids[:n_proper], times[:n_proper])
    if n_bounce:
        bounce(m, ids[b:], times[b:])


def take_up(m: GovernanceModel, ids: np.ndarray, times: np.ndarray, perf: np.ndarray) -> None:
    """``IN_TRANSIT`` or ``NEGLECTED`` → ``QUEUED`` (proper handling), or ``IN_SERVICE`` for a perfunctory
    reply (first response at the next working time; a ``REPLY`` after ``perfunctory_reply_h``): the cases
    ``perf`` first (:func:`_reply_perfunctorily`), then the others (:func:`_queue_up`)."""
    if len(ids) == 0:
        return
    p_ids = ids[perf]
    if len(p_ids):
        _reply_perfunctorily(m, p_ids, times[perf])
        ids, times = ids[~perf], times[~perf]
    if len(ids):
        _queue_up(m, ids, times)


def _reply_perfunctorily(m: GovernanceModel, ids: np.ndarray, times: np.ndarray) -> None:
    """:func:`take_up` of cases (at least one) to be replied to perfunctorily: ``IN_SERVICE``, first response
    at the next working time, a ``REPLY`` after ``perfunctory_reply_h``."""
    cs = m.cases
    t_sign = times if m.dept_always_open else m.calendar.next_open_fast(times)
    cs.perfunctory[ids] = True
    first = cs.first_response[ids]
    cs.first_response[ids] = np.where(np.isnan(first), t_sign, first)
    cs.status[ids] = Status.IN_SERVICE
    reply_h = m.settings.departments.perfunctory_reply_h
    m.ledger.work("departments", reply_h * len(ids), float(t_sign[0]))
    m.agenda.schedule(Event.REPLY, t_sign + reply_h, ids)


def _queue_up(m: GovernanceModel, ids: np.ndarray, times: np.ndarray) -> None:
    """:func:`take_up` of cases (at least one) to be handled properly: ``QUEUED`` at their department."""
    cs = m.cases
    cs.perfunctory[ids] = False
    cs.status[ids] = Status.QUEUED
    m.departments.enqueue(ids, times, cs)


def bounce(m: GovernanceModel, ids: np.ndarray, times: np.ndarray) -> None:
    """The department returns orders as "not our jurisdiction": → ``IN_TRANSIT``, back at the platform
    ``misroute_return_h`` later (working time), a ``RETURN``. A violation (``BOUNCED``) in its record."""
    cs = m.cases
    cs.status[ids] = Status.IN_TRANSIT
    cs.bounced[ids] += 1
    m.departments.commit(cs.dept[ids], Violation.BOUNCED, _threat(m, ids))
    back = times + m.settings.platform.misroute_return_h
    if not m.dept_always_open:
        back = m.calendar.next_open_fast(back)
    m.agenda.schedule(Event.RETURN, back, ids)


def come_back(m: GovernanceModel, ids: np.ndarray, times: np.ndarray) -> None:
    """A bounced order is back at the platform (``IN_TRANSIT``): with tracking, the platform checks the
    routing and, when it sees the order was right (chance ``classification_accuracy``), flags the bounce
    against the department; either way it sends the order back (an ``ARRIVE``)."""
    cs = m.cases
    back = cs.status[ids] == Status.IN_TRANSIT
    ids, times = ids[back], times[back]
    if len(ids) == 0:
        return
    if m.levers.tracking.on:
        seen = m.rng_intake.random(len(ids)) < m.settings.platform.classification_accuracy
        m.departments.catch_by_city(cs.dept[ids[seen]], Violation.BOUNCED, _threat(m, ids[seen]),
                            m.settings.supervision.tracking_flag_sanction)
    m.agenda.schedule(Event.ARRIVE, times + m.settings.platform.dispatch_delay_h, ids)


def start_service(m: GovernanceModel, ids: np.ndarray, starts: np.ndarray, done: np.ndarray) -> None:
    """``QUEUED`` → ``IN_SERVICE``: staff start on the cases at ``starts``. At a handling department this is
    the first response (if none yet) and a ``REPLY`` follows at ``done``; at a relay, a ``FORWARD``."""
    cs = m.cases
    m.ledger.work("departments", float((done - starts).sum()), float(starts[0]))
    relay = m.departments.relay[cs.dept[ids]]
    if relay.any():
        cs.status[ids[relay]] = Status.IN_SERVICE
        m.agenda.schedule(Event.FORWARD, done[relay], ids[relay])
        ids, starts, done = ids[~relay], starts[~relay], done[~relay]
        if len(ids) == 0:
            return
    cs.service_start[ids] = starts
    first = cs.first_response[ids]
    cs.first_response[ids] = np.where(np.isnan(first), starts, first)
    cs.status[ids] = Status.IN_SERVICE
    m.agenda.schedule(Event.REPLY, done, ids)


def forward(m: GovernanceModel, ids: np.ndarray, times: np.ndarray) -> None:
    """A relay has registered the order (``IN_SERVICE``) → ``IN_TRANSIT`` to the next bureau of the route
    (``route_pos`` + 1 becomes the holder): an ``ARRIVE`` after a hand-over delay
    (``platform.handover_delay_h`` × lognormal(0, 0.8), in working time unless departments work 7×24).
    Cases whose requester gave up meanwhile are dropped."""
    cs = m.cases
    keep = cs.status[ids] == Status.IN_SERVICE
    if not keep.all():
        ids, times = ids[keep], times[keep]
        if len(ids) == 0:
            return
    pos = cs.route_pos[ids].astype(np.int64) + 1
    cs.route_pos[ids] = pos
    cs.dept[ids] = m.demand.routes[cs.category[ids], cs.region[ids], pos]
    cs.status[ids] = Status.IN_TRANSIT
    t = times + m.settings.platform.handover_delay_h * m.rng_intake.lognormal(0.0, 0.8, len(ids))
    if not m.dept_always_open:
        t = m.calendar.next_open_fast(t)
    m.agenda.schedule(Event.ARRIVE, t, ids)


def reply(m: GovernanceModel, ids: np.ndarray, times: np.ndarray) -> None:
    """``IN_SERVICE`` → :func:`after_reply`. Proper handling solves the problem or not, and the platform
    records the truth; a perfunctory reply solves nothing but is recorded as resolved."""
    cs = m.cases
    keep = cs.status[ids] == Status.IN_SERVICE
    if not keep.all():
        ids, times = ids[keep], times[keep]
        if len(ids) == 0:
            return
    perf = cs.perfunctory[ids]
    p = m.choice.resolve_probability(ids)
    solved = ~perf & (m.rng_departments.random(len(ids)) < p)
    cs.true_resolved[ids] = solved
    cs.recorded_resolved[ids] = solved | perf
    cs.replied[ids] = times
    if perf.any():
        m.departments.commit(cs.dept[ids[perf]], Violation.PERFUNCTORY, _threat(m, ids[perf]))
        proper, p_t = ids[~perf], times[~perf]
    else:
        proper, p_t = ids, times
    if len(proper):
        m.departments.record_proper(cs.dept[proper], p_t > cs.due[proper])
    after_reply(m, ids, times)


def after_reply(m: GovernanceModel, ids: np.ndarray, times: np.ndarray) -> None:
    """A replied case → ``AWAITING_CALLBACK`` (a ``CALLBACK`` after ``callback_delay_h``) for the share
    ``callback_share`` the operators try to call back, when call-backs are made and citizens act; else
    straight to :func:`judge`."""
    cs = m.cases
    cs.closed[ids] = times
    if m.levers.callback.on and m.settings.citizens.behaviour:
        call = m.rng_intake.random(len(ids)) < m.settings.platform.callback_share
        if call.all():
            cs.status[ids] = Status.AWAITING_CALLBACK
            m.agenda.schedule(Event.CALLBACK, times + m.settings.platform.callback_delay_h, ids)
            return
        c_ids = ids[call]
        cs.status[c_ids] = Status.AWAITING_CALLBACK
        m.agenda.schedule(Event.CALLBACK, times[call] + m.settings.platform.callback_delay_h, c_ids)
        judge(m, ids[~call], times[~call], callback=False)
    else:
        judge(m, ids, times, callback=False)


# ---------------------------------------------------------------------------------------- citizens
def call_back(m: GovernanceModel, ids: np.ndarray, times: np.ndarray) -> None:
    """``AWAITING_CALLBACK`` → :func:`judge`. Operators call while the day's call-back hours last
    (``callback_hours_per_day``; each call ``callback_minutes``); the rest are judged without a call. On
    the phone the requester says truthfully whether the problem was solved: a reply recorded as resolved
    that was not is caught (``PERFUNCTORY``) and the platform reopens the case."""
    cs = m.cases
    p = m.settings.platform
    waiting = cs.status[ids] == Status.AWAITING_CALLBACK
    if not waiting.all():
        ids, times = ids[waiting], times[waiting]
        if len(ids) == 0:
            return
    minutes = max(p.callback_minutes, 1e-9)
    room = int(max(p.callback_hours_per_day * 60.0 - m.platform.callback_minutes_today, 0.0) // minutes)
    # the first `room` cases are called (the order of the hour's call-backs), the rest judged without a call
    c_ids, c_t = ids[:room], times[:room]
    if len(c_ids):
        m.platform.callback_minutes_today += len(c_ids) * p.callback_minutes
        m.platform.callbacks_today += len(c_ids)
        m.ledger.work("operators", len(c_ids) * p.callback_minutes / 60.0, float(times[0]))
        cs.surveyed[c_ids] = True
        false = cs.recorded_resolved[c_ids] & ~cs.true_resolved[c_ids]
        if false.any():
            f_ids = c_ids[false]
            m.departments.catch_by_city(cs.dept[f_ids], Violation.PERFUNCTORY, _threat(m, f_ids),
                                m.settings.supervision.callback_sanction)
        else:
            false = None  # nothing found falsely recorded: judge as without a finding
        judge(m, c_ids, c_t, callback=True, found_false=false)
    if room < len(ids):
        judge(m, ids[room:], times[room:], callback=False)


def judge(m: GovernanceModel, ids: np.ndarray, times: np.ndarray, callback: bool,
          found_false: np.ndarray | None = None) -> None:
    """The requester judges the outcome → ``CLOSED``. Unsatisfied, they may have it reopened (only via a
    call-back) or escalate; a reply a call-back found falsely recorded as resolved is reopened by the
    platform. Reopened and escalated cases go back (:func:`send_back`)."""
    cs = m.cases
    pop = m.population
    rng = m.rng_citizens
    c = m.settings.citizens
    if len(ids) == 0:
        return
    if not c.behaviour:
        cs.satisfied[ids] = 1
        cs.status[ids] = Status.CLOSED
        return
    sat = pop.judge(ids, times, rng)
    cs.satisfied[ids] = sat  # 1 or 0
    if found_false is None and sat.all():  # all satisfied, nothing found false: every case closes
        cs.status[ids] = Status.CLOSED
        pop.learn(cs.citizen[ids], sat, cs.true_resolved[ids], cs.channel[ids])
        persist(m, ids, times)
        return
    no = ~sat
    unsat = ids[no]
    u_t = times[no]
    reopen = np.zeros(len(unsat), bool)
    if callback and len(unsat):
        may = m.levers.callback.may_reopen(cs.reopen_count[unsat])
        if may is not None:
            reopen = may & (rng.random(len(unsat)) < c.reopen_propensity)
    if found_false is not None:  # the platform reopens what it found falsely closed, satisfied or not
        reopen |= found_false[no]
        forced_at = sat & found_false
        forced = ids[forced_at]
        if len(forced):
            unsat = np.concatenate([unsat, forced])
            u_t = np.concatenate([u_t, times[forced_at]])
            reopen = np.concatenate([reopen, np.ones(len(forced), bool)])
            sat = sat & ~found_false
    esc = np.zeros(len(unsat), bool)
    rest = ~reopen & ~cs.escalated[unsat]
    if rest.any():
        esc[rest] = pop.escalate(unsat[rest], rng)
        esc = _dismiss(m, unsat, esc)
    gone = reopen | esc
    if not gone.any():  # nobody reopened or escalated: every case closes
        cs.status[ids] = Status.CLOSED
        pop.learn(cs.citizen[ids], cs.satisfied[ids] == 1, cs.true_resolved[ids], cs.channel[ids])
        persist(m, ids, times)
        return
    final = ~_among(ids, unsat[gone])
    f_ids = ids[final]
    cs.status[f_ids] = Status.CLOSED
    pop.learn(cs.citizen[f_ids], cs.satisfied[f_ids] == 1, cs.true_resolved[f_ids], cs.channel[f_ids])
    persist(m, f_ids, times[final])
    r_ids, r_t = unsat[reopen], u_t[reopen]
    if len(r_ids):
        cs.reopened[r_ids] = True
        cs.reopen_count[r_ids] += 1
    up = esc & ~reopen
    e_ids, e_t = unsat[up], u_t[up]
    if len(e_ids):
        m.upper_supervisor.act_on_escalation(e_ids, float(e_t.max()))
    if len(r_ids) or len(e_ids):
        send_back(m, np.concatenate([r_ids, e_ids]), np.concatenate([r_t, e_t]))


def _among(ids: np.ndarray, of: np.ndarray) -> np.ndarray:
    """Which of ``ids`` occur in ``of`` (as ``np.isin``; by binary search in ``of`` sorted, cheap for a short
    ``of``)."""
    if len(of) == 0:
        return np.zeros(len(ids), bool)
    of = np.sort(of)
    return of[np.minimum(np.searchsorted(of, ids), len(of) - 1)] == ids


def send_back(m: GovernanceModel, ids: np.ndarray, times: np.ndarray) -> None:
    """A replied case goes back to its department, pressed (boost 2): → ``IN_TRANSIT``, an ``ARRIVE``
    after ``dispatch_delay_h``; its reply and outcome are cleared."""
    if len(ids) == 0:
        return
    cs = m.cases
    final = cs.status[ids] >= Status.CLOSED
    if final.any():  # a closed case an audit found perfunctory: open again
        cs.reopen(ids[final])
    cs.closed[ids] = np.nan
    cs.replied[ids] = np.nan
    cs.satisfied[ids] = -1
    cs.true_resolved[ids] = False
    cs.recorded_resolved[ids] = False
    cs.perfunctory[ids] = False
    cs.status[ids] = Status.IN_TRANSIT
    cs.boost[ids] = 2
    m.agenda.schedule(Event.ARRIVE, times + m.settings.platform.dispatch_delay_h, ids)


def lose_patience(m: GovernanceModel, ids: np.ndarray, times: np.ndarray) -> None:
    """No reply after ``patience_h`` (a sign-for alone is no reply): the requester escalates (the province
    presses the case; patience starts again), or gives up: any open status before a reply → ``ABANDONED``."""
    cs = m.cases
    open_ = (cs.status[ids] < Status.AWAITING_CALLBACK) & np.isnan(cs.replied[ids])
    if not open_.all():
        ids, times = ids[open_], times[open_]
    if len(ids) == 0 or not m.settings.citizens.behaviour:
        return
    esc = ~cs.escalated[ids] & m.population.escalate(ids, m.rng_citizens)
    esc = _dismiss(m, ids, esc)
    if esc.any():
        e_ids = ids[esc]
        m.upper_supervisor.act_on_escalation(e_ids, float(times.max()))
        m.agenda.schedule(Event.PATIENCE, times[esc] + m.settings.citizens.patience_h, e_ids)
        give_up = ~esc
        g_ids, g_t = ids[give_up], times[give_up]
    else:
        g_ids, g_t = ids, times
    if len(g_ids):
        m.departments.withdraw(g_ids[cs.status[g_ids] == Status.QUEUED], cs)
        cs.status[g_ids] = Status.ABANDONED
        cs.satisfied[g_ids] = 0
        m.population.learn(cs.citizen[g_ids], np.zeros(len(g_ids), bool), np.zeros(len(g_ids), bool),
                           cs.channel[g_ids])
        persist(m, g_ids, g_t)


def _dismiss(m: GovernanceModel, ids: np.ndarray, esc: np.ndarray) -> np.ndarray:
    """Of the cases whose requesters escalate (``esc``), the upper level dismisses some (the risk of
    escalating, ``citizens.escalation_risk``): they are marked escalated but nothing is done — the requester
    stays with the outcome (closed unsatisfied, or gives up). Returns the escalations the upper level takes up."""
    if not esc.any():
        return esc
    where = np.flatnonzero(esc)
    dismissed = m.population.dismissed(ids[where], m.rng_citizens)
    if dismissed.any():
        m.cases.escalated[ids[where[dismissed]]] = True
        esc = esc.copy()
        esc[where[dismissed]] = False
    return esc


# ------------------------------------------------------------------------------------ repeat reports
def persist(m: GovernanceModel, ids: np.ndarray, times: np.ndarray) -> None:
    """Final cases (closed or abandoned) whose problem was not solved: the problem persists, and its owner
    reconsiders it after an exponential delay with mean ``citizens.repeat_delay_days`` (a ``RECONSIDER``),
    unless it was already reported ``citizens.max_repeats`` times after the first. Not when demand is a fixed
    stream of reported requests (``demand.fixed_rate_per_hour`` or ``requests_per_day``): an observed stream
    already holds its repeat reports, and adding more would count them twice."""
    c = m.settings.citizens
    if not c.behaviour or c.max_repeats == 0 or len(ids) == 0 or m.demand.fixed_rate:
        return
    cs = m.cases
    left = ~cs.true_resolved[ids] & (cs.repeat_count[ids] < c.max_repeats)
    if left.any():
        ids, times = ids[left], times[left]  # a copy: the agenda keeps it
        delay = m.rng_citizens.exponential(c.repeat_delay_days * 24.0, len(ids))
        m.agenda.schedule(Event.RECONSIDER, times + delay, ids)


def reconsider(m: GovernanceModel, ids: np.ndarray, times: np.ndarray) -> None:
    """The owner of an unsolved problem decides whether to report it again: a channel by the usual choice,
    then the reporting rule (severity, efficacy and trust against the channel's cost; III.iv.1). A repeat is a
    new case of the same problem, created at the start of the next hour (same requester, category, township, consultation and threat flags) with
    ``repeat_of`` = the earlier case and ``repeat_count`` one more; it starts as any report does."""
    cs = m.cases
    pop = m.population
    rng = m.rng_citizens
    who = cs.citizen[ids]
    channel = pop.choose_channel(who, rng)
    ok = channel >= 0
    if ok.all():  # every owner has an open channel (the usual case): no selection
        ok = pop.report(who, m.demand.category_severity[cs.category[ids]], channel, rng)
    else:
        ok[ok] = pop.report(who[ok], m.demand.category_severity[cs.category[ids[ok]]], channel[ok], rng)
    if not ok.all():
        ids, times, channel, who = ids[ok], times[ok], channel[ok], who[ok]
    n = len(ids)
    if n == 0:
        return
    if n > 1 and (times[1:] < times[:-1]).any():  # (the agenda hands them out in order of time)
        order = np.argsort(times, kind="stable")
        ids, times, channel, who = ids[order], times[order], channel[order], who[order]
    # reported at the start of the next hour: this hour's intake has run (the platform takes the new report in
    # the next step), and case ids stay in order of creation (searches by time rely on it)
    times = np.floor(times) + 1.0
    new = m.demand.open_cases(
        citizen=who, category=cs.category[ids], channel=channel, region=cs.region[ids],
        enterprise=cs.enterprise[ids], urban=cs.urban[ids], created=times, consultation=cs.consultation[ids],
        tattle=cs.tattle[ids], collective=cs.collective[ids], repeat_of=ids,
        repeat_count=(cs.repeat_count[ids] + 1).astype(np.int8))
    report(m, new)


# -------------------------------------------------------------------------------------- pressure
def press(m: GovernanceModel, ids: np.ndarray, now: float, pressure: float) -> None:
    """Pressure on open cases (a reminder, an inspection or an escalation): ``QUEUED`` cases move up their
    queue (boost 1, or 2 when compelled); ``NEGLECTED`` cases → :func:`choose` again, leaving them now
    costing ``pressure`` (effort units) more."""
    cs = m.cases
    st = cs.status[ids]
    cs.boost[ids] = np.maximum(cs.boost[ids], np.where(cs.compelled(ids), np.int8(2), np.int8(1)))  # int8 throughout
    m.departments.raise_priority(ids[st == Status.QUEUED], cs)
    neg = ids[st == Status.NEGLECTED]
    if len(neg):
        choose(m, neg, np.full(len(neg), now), pressure)


def remind(m: GovernanceModel, ids: np.ndarray, times: np.ndarray) -> None:
    """Tracking's reminder before the due time: :func:`press` on cases not yet taken up (``IN_TRANSIT``,
    ``QUEUED``, ``NEGLECTED``); leaving them will be flagged at the due time."""
    cs = m.cases
    st = cs.status[ids]
    ids = ids[(st == Status.QUEUED) | (st == Status.NEGLECTED) | (st == Status.IN_TRANSIT)]
    if len(ids):
        press(m, ids, float(times.max()), m.settings.supervision.tracking_flag_sanction)


# ------------------------------------------------------------------------------------- deadlines
def _unreplied(m: GovernanceModel, ids: np.ndarray) -> np.ndarray:
    """Of ``ids``, the cases in a status that can be overdue (in transit to in service) and not replied to (the
    reply time read only for those)."""
    st = m.cases.status[ids]
    ids = ids[(st >= Status.IN_TRANSIT) & (st <= Status.IN_SERVICE)]
    return ids[np.isnan(m.cases.replied[ids])]


def _violated(m: GovernanceModel, late: np.ndarray, kind: Violation) -> None:
    """Record a passed deadline as a violation of ``kind`` against each case's department; tracking flags it."""
    if len(late) == 0:
        return
    dept, threat = m.cases.dept[late], _threat(m, late)
    m.departments.commit(dept, kind, threat)
    if m.levers.tracking.on:
        m.departments.catch_by_city(dept, kind, threat, m.settings.supervision.tracking_flag_sanction)


def pass_due(m: GovernanceModel, ids: np.ndarray, times: np.ndarray) -> None:
    """The reply deadline passes: a case without a reply is a ``LATE`` violation of its department, which
    tracking flags (status unchanged)."""
    _violated(m, _unreplied(m, ids), Violation.LATE)


def stay_overdue(m: GovernanceModel, day_start: float) -> None:
    """A day ends with unreplied cases that were already past a deadline when it began: each is one more
    violation of its department — ``LATE`` past the reply deadline, else ``UNSIGNED`` past a mandate's sign-for
    deadline without a sign-for — one per overdue day (the first counted by :func:`pass_due` or
    :func:`pass_sign_due`); tracking flags it again, as the platform's overdue list does every day (status
    unchanged). So a department's expected sanction for either kind is a sanction per overdue day, whatever
    observer (tracking, an inspection's ladder, an escalation) imposed it."""
    cs = m.cases
    late, ids = m.kernels.overdue_unreplied(cs.open_ids(), cs.status, cs.replied, cs.due, float(day_start),
                                            int(Status.IN_TRANSIT), int(Status.IN_SERVICE))  # as _unreplied
    _violated(m, late, Violation.LATE)
    _violated(m, ids[m.levers.mandate.unsigned_past_deadline(cs.created[ids], cs.first_response[ids], day_start)],
              Violation.UNSIGNED)


def pass_sign_due(m: GovernanceModel, ids: np.ndarray, times: np.ndarray) -> None:
    """The sign-for deadline of a mandate passes: a case not signed for (no first response) is an
    ``UNSIGNED`` violation, which tracking flags (status unchanged)."""
    late = _unreplied(m, ids)
    _violated(m, late[np.isnan(m.cases.first_response[late])], Violation.UNSIGNED)


#: Who handles each timed transition.
HANDLERS: dict[Event, Callable[[GovernanceModel, np.ndarray, np.ndarray], None]] = {
    Event.ACCEPT: accept,
    Event.ARRIVE: arrive,
    Event.REMIND: remind,
    Event.REPLY: reply,
    Event.FORWARD: forward,
    Event.CALLBACK: call_back,
    Event.PATIENCE: lose_patience,
    Event.RETURN: come_back,
    Event.DUE: pass_due,
    Event.SIGN_DUE: pass_sign_due,
    Event.RECONSIDER: reconsider,
}
