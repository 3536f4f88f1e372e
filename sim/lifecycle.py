"""The case lifecycle: one function per transition, each naming the statuses it moves cases from and to.

A case's path (statuses of :class:`sim.cases.Status`)::

    arise (sim.demand) → report ─ AWAITING_INTAKE ─ accept ─┬─ direct answer ─ after_reply
                                                             └─ dispatch ─ IN_TRANSIT ─ arrive ─┬─ NEGLECTED
                                                                                               └─ take_up
    take_up ─┬─ QUEUED ─ start_service ─ IN_SERVICE ─ reply ─ after_reply
             └─ IN_SERVICE (perfunctory) ─ reply ─ after_reply
    after_reply ─┬─ AWAITING_CALLBACK ─ call_back ─ judge
                 └─ judge ─┬─ CLOSED
                           └─ reopened or escalated ─ IN_TRANSIT (back to arrive)
    press (reminder, supervision, escalation): QUEUED moves up; NEGLECTED ─ take_up
    lose_patience: no reply for patience_h ─ escalate, or ABANDONED

Timed transitions are :class:`Event` s, kept by the model's agenda (:class:`sim.cases.Agenda`) and
handled through :data:`HANDLERS`, in the order the enum declares them, within each hour. Every function
takes the model, the case ids (numpy int64) and the times (hours since the start of the run).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import TYPE_CHECKING

import numpy as np

from .cases import Status

if TYPE_CHECKING:  # pragma: no cover
    from .model import GovernanceModel


class Event(IntEnum):
    """Timed transitions, declared in the order they are handled within an hour."""

    ACCEPT = 0    # an operator has taken in the request
    ARRIVE = 1    # the order reaches its handling department
    REMIND = 2    # tracking reminds the department before the due time
    REPLY = 3     # the department's reply is ready
    CALLBACK = 4  # the call-back survey reaches the requester
    PATIENCE = 5  # the requester's patience without any reply runs out


# ------------------------------------------------------------------------------------------ intake
def report(m: GovernanceModel, ids: np.ndarray) -> None:
    """New cases (``AWAITING_INTAKE``) reach the platform; tracking and the requester's patience start."""
    if len(ids) == 0:
        return
    cs = m.cases
    m.platform.receive(ids)
    when = m.levers.tracking.reminder_times(cs.due[ids], cs.created[ids])
    if when is not None:
        m.agenda.schedule(Event.REMIND, when, ids)
    if m.settings.citizens.behaviour:
        m.agenda.schedule(Event.PATIENCE, cs.created[ids] + m.settings.citizens.patience_h, ids)


def accept(m: GovernanceModel, ids: np.ndarray, times: np.ndarray) -> None:
    """``AWAITING_INTAKE`` → answered at intake (consultations, a share ``direct_answer_share``; then
    :func:`after_reply`) or :func:`dispatch`. Requests whose requester gave up meanwhile are skipped."""
    cs = m.cases
    rng = m.rng_intake
    waiting = cs.status[ids] == Status.AWAITING_INTAKE
    ids, times = ids[waiting], times[waiting]
    cs.accepted[ids] = times
    direct = cs.consultation[ids] & (rng.random(len(ids)) < m.settings.platform.direct_answer_share)
    d_ids, d_t = ids[direct], times[direct]
    if len(d_ids):
        cs.direct_answer[d_ids] = True
        cs.first_response[d_ids] = d_t
        cs.replied[d_ids] = d_t
        cs.resolved[d_ids] = True
        after_reply(m, d_ids, d_t)
    o_ids, o_t = ids[~direct], times[~direct]
    if len(o_ids):
        dispatch(m, o_ids, o_t)


def dispatch(m: GovernanceModel, ids: np.ndarray, times: np.ndarray) -> None:
    """``AWAITING_INTAKE`` → ``IN_TRANSIT``: the order goes down the hierarchy (one hand-over per hop,
    each a lognormal delay in working time) or is misrouted and returned first; an ``ARRIVE`` follows."""
    cs = m.cases
    rng = m.rng_intake
    p = m.settings.platform
    t = times + p.dispatch_delay_h
    cs.dispatched[ids] = t
    cs.status[ids] = Status.IN_TRANSIT
    hops = cs.hops[ids]
    if p.handover_delay_h > 0:
        for k in range(1, int(hops.max(initial=1))):
            more = hops > k
            if more.any():
                delay = p.handover_delay_h * rng.lognormal(0.0, 0.8, int(more.sum()))
                t[more] = t[more] + delay
                if not m.dept_always_open:
                    t[more] = m.calendar.next_open_fast(t[more])
    wrong = rng.random(len(ids)) > p.classification_accuracy
    if wrong.any():
        cs.misrouted[ids[wrong]] = True
        back = t[wrong] + p.misroute_return_h
        if not m.dept_always_open:
            back = m.calendar.next_open_fast(back)
        t[wrong] = back + p.dispatch_delay_h
    m.agenda.schedule(Event.ARRIVE, t, ids)


# ------------------------------------------------------------------------------------- departments
def arrive(m: GovernanceModel, ids: np.ndarray, times: np.ndarray) -> None:
    """``IN_TRANSIT`` → ``NEGLECTED`` or :func:`take_up`, as the department's effort choice decides.
    Cases already final (the requester gave up) are skipped."""
    cs = m.cases
    keep = cs.status[ids] < Status.CLOSED
    ids, times = ids[keep], times[keep]
    if len(ids) == 0:
        return
    cs.dept_arrival[ids] = np.where(np.isnan(cs.dept_arrival[ids]), times, cs.dept_arrival[ids])
    respond, perf = m.effort.decide(ids, m.rng_departments)
    cs.status[ids[~respond]] = Status.NEGLECTED
    take_up(m, ids[respond], times[respond], perf[respond])


def take_up(m: GovernanceModel, ids: np.ndarray, times: np.ndarray, perf: np.ndarray) -> None:
    """``IN_TRANSIT`` or ``NEGLECTED`` → ``QUEUED``, or ``IN_SERVICE`` for a perfunctory reply (signed for
    at once; a ``REPLY`` after ``perfunctory_reply_h``). Under a response mandate every case taken up is
    signed for (first response) at the next working time."""
    if len(ids) == 0:
        return
    cs = m.cases
    sign = times if m.dept_always_open else m.calendar.next_open_fast(times)
    if m.levers.mandate.active:
        first = cs.first_response[ids]
        cs.first_response[ids] = np.where(np.isnan(first), sign, first)
    p_ids = ids[perf]
    if len(p_ids):
        cs.perfunctory[p_ids] = True
        t_sign = sign[perf]
        first = cs.first_response[p_ids]
        cs.first_response[p_ids] = np.where(np.isnan(first), t_sign, first)
        cs.status[p_ids] = Status.IN_SERVICE
        m.agenda.schedule(Event.REPLY, t_sign + m.settings.departments.perfunctory_reply_h, p_ids)
    q_ids, q_t = ids[~perf], times[~perf]
    if len(q_ids):
        cs.status[q_ids] = Status.QUEUED
        m.departments.enqueue(q_ids, q_t, cs)


def start_service(m: GovernanceModel, ids: np.ndarray, starts: np.ndarray, done: np.ndarray) -> None:
    """``QUEUED`` → ``IN_SERVICE``: staff start on the cases at ``starts`` (the first response, if none
    yet); a ``REPLY`` follows at ``done``."""
    cs = m.cases
    cs.service_start[ids] = starts
    first = cs.first_response[ids]
    cs.first_response[ids] = np.where(np.isnan(first), starts, first)
    cs.status[ids] = Status.IN_SERVICE
    m.agenda.schedule(Event.REPLY, done, ids)


def reply(m: GovernanceModel, ids: np.ndarray, times: np.ndarray) -> None:
    """``IN_SERVICE`` → :func:`after_reply`: resolved or not (a perfunctory reply never resolves)."""
    cs = m.cases
    keep = cs.status[ids] == Status.IN_SERVICE
    ids, times = ids[keep], times[keep]
    if len(ids) == 0:
        return
    perf = cs.perfunctory[ids]
    p = m.effort.resolve_probability(ids)
    cs.resolved[ids] = ~perf & (m.rng_departments.random(len(ids)) < p)
    cs.replied[ids] = times
    after_reply(m, ids, times)


def after_reply(m: GovernanceModel, ids: np.ndarray, times: np.ndarray) -> None:
    """A replied case → ``AWAITING_CALLBACK`` (a ``CALLBACK`` after ``callback_delay_h``) when call-backs
    are made and citizens act, else straight to :func:`judge`."""
    cs = m.cases
    cs.closed[ids] = times
    if m.levers.callback.on and m.settings.citizens.behaviour:
        cs.status[ids] = Status.AWAITING_CALLBACK
        m.agenda.schedule(Event.CALLBACK, times + m.settings.platform.callback_delay_h, ids)
    else:
        judge(m, ids, times, callback=False)


# ---------------------------------------------------------------------------------------- citizens
def call_back(m: GovernanceModel, ids: np.ndarray, times: np.ndarray) -> None:
    """``AWAITING_CALLBACK`` → :func:`judge`, with the chance to reopen; each call costs
    ``callback_minutes`` of staff time (after the warm-up)."""
    keep = m.cases.status[ids] == Status.AWAITING_CALLBACK
    if m.hour >= m.warmup_h:
        m.staff_hours += int(keep.sum()) * m.settings.platform.callback_minutes / 60.0
    judge(m, ids[keep], times[keep], callback=True)


def judge(m: GovernanceModel, ids: np.ndarray, times: np.ndarray, callback: bool) -> None:
    """The requester judges the outcome → ``CLOSED``; unsatisfied, they may have it reopened (only via a
    call-back) or escalate, and the case goes back → ``IN_TRANSIT``, pressed (boost 2)."""
    cs = m.cases
    pop = m.population
    rng = m.rng_citizens
    c = m.settings.citizens
    if not c.behaviour:
        cs.satisfied[ids] = 1
        cs.status[ids] = Status.CLOSED
        return
    sat = pop.judge(ids, times, rng)
    cs.satisfied[ids] = sat.astype(np.int8)
    unsat = ids[~sat]
    u_t = times[~sat]
    reopen = np.zeros(len(unsat), bool)
    if callback and len(unsat):
        may = m.levers.callback.may_reopen(cs.reopen_count[unsat])
        if may is not None:
            reopen = may & (rng.random(len(unsat)) < c.reopen_propensity)
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
        m.upper_supervisor.act_on_escalation(e_ids, float(e_t.max()))
    redo = np.concatenate([r_ids, e_ids])
    if len(redo):
        t = np.concatenate([r_t, e_t])
        cs.closed[redo] = np.nan
        cs.replied[redo] = np.nan
        cs.satisfied[redo] = -1
        cs.resolved[redo] = False
        cs.perfunctory[redo] = False
        cs.status[redo] = Status.IN_TRANSIT
        cs.boost[redo] = 2
        m.agenda.schedule(Event.ARRIVE, t + m.settings.platform.dispatch_delay_h, redo)


def lose_patience(m: GovernanceModel, ids: np.ndarray, times: np.ndarray) -> None:
    """No reply after ``patience_h``: the requester escalates (the province presses the case; patience
    starts again), or gives up: ``AWAITING_INTAKE``/``IN_TRANSIT``/``QUEUED``/``NEGLECTED`` → ``ABANDONED``."""
    cs = m.cases
    open_ = (cs.status[ids] < Status.AWAITING_CALLBACK) & np.isnan(cs.first_response[ids])
    ids, times = ids[open_], times[open_]
    if len(ids) == 0 or not m.settings.citizens.behaviour:
        return
    esc = ~cs.escalated[ids] & m.population.escalate(ids, m.rng_citizens)
    if esc.any():
        e_ids = ids[esc]
        m.upper_supervisor.act_on_escalation(e_ids, float(times.max()))
        m.agenda.schedule(Event.PATIENCE, times[esc] + m.settings.citizens.patience_h, e_ids)
    g_ids = ids[~esc]
    if len(g_ids):
        m.departments.withdraw(g_ids[cs.status[g_ids] == Status.QUEUED], cs)
        cs.status[g_ids] = Status.ABANDONED
        cs.satisfied[g_ids] = 0
        m.population.learn(cs.citizen[g_ids], np.zeros(len(g_ids), bool), np.zeros(len(g_ids), bool),
                           cs.channel[g_ids])


# -------------------------------------------------------------------------------------- pressure
def press(m: GovernanceModel, ids: np.ndarray, now: float, extra_detection: float) -> None:
    """Pressure on open cases (a reminder, supervision or an escalation): ``QUEUED`` cases move up their
    queue (boost 1, or 2 when compelled); ``NEGLECTED`` → :func:`take_up` when the department, with the
    added risk of detection in mind, now answers."""
    cs = m.cases
    st = cs.status[ids]
    cs.boost[ids] = np.maximum(cs.boost[ids], np.where(cs.compelled(ids), 2, 1)).astype(np.int8)
    m.departments.raise_priority(ids[st == Status.QUEUED], cs)
    neg = ids[st == Status.NEGLECTED]
    if len(neg):
        respond, perf = m.effort.decide(neg, m.rng_departments, extra_detection=extra_detection)
        t = np.full(len(neg), now)
        take_up(m, neg[respond], t[respond], perf[respond])


def remind(m: GovernanceModel, ids: np.ndarray, times: np.ndarray) -> None:
    """Tracking's reminder before the due time: :func:`press` on cases not yet taken up
    (``IN_TRANSIT``, ``QUEUED``, ``NEGLECTED``)."""
    cs = m.cases
    st = cs.status[ids]
    ids = ids[(st == Status.QUEUED) | (st == Status.NEGLECTED) | (st == Status.IN_TRANSIT)]
    if len(ids):
        press(m, ids, float(times.max()), extra_detection=0.5)


#: Who handles each timed transition.
HANDLERS: dict[Event, Callable[[GovernanceModel, np.ndarray, np.ndarray], None]] = {
    Event.ACCEPT: accept,
    Event.ARRIVE: arrive,
    Event.REMIND: remind,
    Event.REPLY: reply,
    Event.CALLBACK: call_back,
    Event.PATIENCE: lose_patience,
}
