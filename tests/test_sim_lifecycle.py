"""Each case transition of sim/lifecycle.py on its own, on a tiny model that is never stepped.

Cases are added straight to the case store in the status a transition moves them from; the random
outcomes are forced through settings (shares of 0 or 1, thresholds far out of reach), never by luck.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sim import lifecycle
from sim.cases import Status
from sim.lifecycle import HANDLERS, Event
from sim.model import GovernanceModel
from sim.scenario import Scenario

#: a tiny city: one county, two townships, one member of staff per department, departments open 7×24,
#: no hand-over delays and no misrouting (each test overrides what it needs)
BASE: dict[str, Any] = {
    "world.population": 200,
    "world.counties": 1,
    "world.townships": 2,
    "run.days": 5,
    "departments.hours": "7x24",
    "departments.target_utilisation": None,
    "departments.staff.prefecture": 1,
    "departments.staff.county": 1,
    "departments.staff.township": 1,
    "platform.handover_delay_h": 0.0,
    "platform.classification_accuracy": 1.0,
}

NEVER = 100.0    # a threshold no score reaches (the noise scales are about 0.1)
ALWAYS = -100.0  # a threshold every score passes

NEGLECT = {"departments.neglect_intercept": -50.0}  # every department neglects (bar compelled cases)


def make(overrides: dict[str, Any] | None = None) -> GovernanceModel:
    return GovernanceModel(Scenario().with_overrides({**BASE, **(overrides or {})}), seed=1)


def add(m: GovernanceModel, status: Status, n: int = 1, cat: int = 0, twp: int = 0, created: float = 0.0,
        due: float = 200.0, service_time: float = 5.0, consultation: bool = False, hops: int = 1,
        **cols: Any) -> np.ndarray:
    """Add ``n`` cases of category ``cat`` in township ``twp``, routed to their handling department."""
    citizen = int(np.flatnonzero(m.population.region == twp)[0])
    columns: dict[str, Any] = dict(
        citizen=np.full(n, citizen), category=np.full(n, cat), region=np.full(n, twp),
        created=np.full(n, created), due=np.full(n, due), service_time=np.full(n, service_time),
        consultation=np.full(n, consultation), status=np.full(n, int(status)),
        dept=np.full(n, m.hierarchy.handler[cat, twp]), hops=np.full(n, hops), measured=np.ones(n, bool))
    for name, value in cols.items():
        columns[name] = np.broadcast_to(np.asarray(value), (n,)).copy()
    return m.cases.add(**columns)


def at(*values: float) -> np.ndarray:
    return np.array(values, dtype=float)


def scheduled(m: GovernanceModel, horizon: int = 3000) -> dict[Event, list[tuple[int, float]]]:
    """Empty the agenda: every scheduled event as ``{Event: [(case, time), ...]}``, sorted."""
    out: dict[Event, list[tuple[int, float]]] = {}
    for hour in range(horizon):
        for event, (ids, times) in m.agenda.pop(hour).items():
            assert (np.floor(times) == hour).all()  # each event sits in the bucket of its hour
            out.setdefault(Event(event), []).extend(zip(ids.tolist(), times.tolist(), strict=True))
    return {e: sorted(v) for e, v in out.items()}


def status(m: GovernanceModel, ids: np.ndarray) -> list[Status]:
    return [Status(s) for s in m.cases.status[ids]]


# ------------------------------------------------------------------------------------ the event table
def test_events_are_declared_in_handling_order_and_each_has_its_handler():
    assert list(Event) == [Event.ACCEPT, Event.ARRIVE, Event.REMIND, Event.REPLY, Event.CALLBACK, Event.PATIENCE]
    assert [int(e) for e in Event] == list(range(6))
    assert set(HANDLERS) == set(Event)
    assert HANDLERS == {
        Event.ACCEPT: lifecycle.accept,
        Event.ARRIVE: lifecycle.arrive,
        Event.REMIND: lifecycle.remind,
        Event.REPLY: lifecycle.reply,
        Event.CALLBACK: lifecycle.call_back,
        Event.PATIENCE: lifecycle.lose_patience,
    }


# ------------------------------------------------------------------------------------------- intake
def test_report_schedules_intake_reminder_and_patience():
    m = make({"platform.instant_intake": True, "policy.tracking": True, "policy.reminder_lead_h": 24.0,
              "citizens.behaviour": True, "citizens.patience_h": 240.0})
    ids = add(m, Status.AWAITING_INTAKE, n=2, created=3.5, due=50.0)  # channel 0: online, taken in at once
    m.cases.due[ids[1]] = 20.0  # a reminder never comes before an hour after creation
    lifecycle.report(m, ids)
    assert scheduled(m) == {
        Event.ACCEPT: [(int(ids[0]), 3.5), (int(ids[1]), 3.5)],
        Event.REMIND: [(int(ids[0]), 26.0), (int(ids[1]), 4.5)],
        Event.PATIENCE: [(int(ids[0]), 243.5), (int(ids[1]), 243.5)],
    }
    assert status(m, ids) == [Status.AWAITING_INTAKE] * 2


def test_report_without_tracking_or_citizen_behaviour_only_takes_the_request_in():
    m = make({"platform.instant_intake": True, "policy.tracking": False, "citizens.behaviour": False})
    lifecycle.report(m, np.zeros(0, dtype=np.int64))
    assert scheduled(m) == {}
    ids = add(m, Status.AWAITING_INTAKE, created=7.25)
    lifecycle.report(m, ids)
    assert scheduled(m) == {Event.ACCEPT: [(int(ids[0]), 7.25)]}


def test_accept_skips_cases_whose_requester_gave_up():
    m = make({"platform.direct_answer_share": 1.0})
    gone = add(m, Status.ABANDONED, n=2, consultation=np.array([True, False]))
    lifecycle.accept(m, gone, at(5.0, 5.0))
    assert status(m, gone) == [Status.ABANDONED] * 2
    assert np.isnan(m.cases.accepted[gone]).all()
    assert np.isnan(m.cases.first_response[gone]).all() and not m.cases.direct_answer[gone].any()
    assert scheduled(m) == {}


def test_accept_answers_consultations_at_intake_and_dispatches_the_rest():
    m = make({"platform.direct_answer_share": 1.0, "platform.dispatch_delay_h": 2.0, "policy.callback": True,
              "platform.callback_delay_h": 24.0, "citizens.behaviour": True})
    consult = add(m, Status.AWAITING_INTAKE, consultation=True)
    order = add(m, Status.AWAITING_INTAKE, consultation=False)
    ids = np.concatenate([consult, order])
    lifecycle.accept(m, ids, at(5.5, 6.0))
    cs = m.cases
    c, o = int(consult[0]), int(order[0])
    assert cs.accepted[c] == 5.5 and cs.accepted[o] == 6.0
    # the direct answer: replied and resolved on the spot, then the call-back
    assert cs.direct_answer[c] and cs.resolved[c]
    assert cs.first_response[c] == 5.5 and cs.replied[c] == 5.5 and cs.closed[c] == 5.5
    assert Status(cs.status[c]) == Status.AWAITING_CALLBACK
    # the order: sent down to its department
    assert not cs.direct_answer[o] and np.isnan(cs.first_response[o]) and np.isnan(cs.replied[o])
    assert Status(cs.status[o]) == Status.IN_TRANSIT and cs.dispatched[o] == 8.0
    assert scheduled(m) == {Event.ARRIVE: [(o, 8.0)], Event.CALLBACK: [(c, 29.5)]}


def test_accept_dispatches_consultations_when_the_platform_answers_none():
    m = make({"platform.direct_answer_share": 0.0})
    ids = add(m, Status.AWAITING_INTAKE, n=3, consultation=True)
    lifecycle.accept(m, ids, at(1.0, 2.0, 3.0))
    assert not m.cases.direct_answer[ids].any() and not m.cases.resolved[ids].any()
    assert status(m, ids) == [Status.IN_TRANSIT] * 3
    assert sorted(scheduled(m)) == [Event.ARRIVE]


def test_dispatch_sets_the_dispatch_time_and_schedules_the_arrival():
    m = make({"platform.dispatch_delay_h": 2.0})
    ids = add(m, Status.AWAITING_INTAKE, n=2, hops=3)  # no hand-over delay set: hops cost nothing
    lifecycle.dispatch(m, ids, at(10.0, 11.5))
    assert m.cases.dispatched[ids].tolist() == [12.0, 13.5]
    assert status(m, ids) == [Status.IN_TRANSIT] * 2
    assert not m.cases.misrouted[ids].any()
    assert scheduled(m) == {Event.ARRIVE: [(int(ids[0]), 12.0), (int(ids[1]), 13.5)]}


def test_dispatch_adds_one_handover_delay_per_hop_after_the_first():
    m = make({"platform.dispatch_delay_h": 2.0, "platform.handover_delay_h": 8.0})
    one = add(m, Status.AWAITING_INTAKE, n=20, hops=1)
    three = add(m, Status.AWAITING_INTAKE, n=20, hops=3)
    ids = np.concatenate([one, three])
    lifecycle.dispatch(m, ids, np.full(len(ids), 10.0))
    assert (m.cases.dispatched[ids] == 12.0).all()  # the dispatch time is the first hop's only
    arrive = dict(scheduled(m)[Event.ARRIVE])
    assert [arrive[int(i)] for i in one] == [12.0] * 20
    late = np.array([arrive[int(i)] for i in three])
    assert (late > 12.0).all()
    assert np.median(late - 12.0) > 8.0  # two lognormal hand-overs of median 8 h each


def test_dispatch_returns_misrouted_orders_before_they_arrive():
    m = make({"platform.classification_accuracy": 0.0, "platform.dispatch_delay_h": 2.0,
              "platform.misroute_return_h": 16.0})
    ids = add(m, Status.AWAITING_INTAKE)
    lifecycle.dispatch(m, ids, at(8.0))
    assert m.cases.misrouted[ids[0]] and m.cases.dispatched[ids[0]] == 10.0
    assert scheduled(m) == {Event.ARRIVE: [(int(ids[0]), 28.0)]}  # 10 + 16 back, + 2 sent again
    # office hours: the wrong department returns it when it next opens (hour 26 is Tuesday 02:00 → 09:00)
    m = make({"platform.classification_accuracy": 0.0, "platform.dispatch_delay_h": 2.0,
              "platform.misroute_return_h": 16.0, "departments.hours": "office", "world.start_date": "2024-01-01"})
    ids = add(m, Status.AWAITING_INTAKE)
    lifecycle.dispatch(m, ids, at(8.0))
    assert scheduled(m) == {Event.ARRIVE: [(int(ids[0]), 35.0)]}


# ------------------------------------------------------------------------------------- departments
def test_arrive_skips_final_cases_and_records_only_the_first_arrival():
    m = make({"departments.effort_choice": False})
    final = add(m, Status.CLOSED)
    gone = add(m, Status.ABANDONED)
    new = add(m, Status.IN_TRANSIT)
    back = add(m, Status.IN_TRANSIT, dept_arrival=5.0, reopened=True)
    ids = np.concatenate([final, gone, new, back])
    lifecycle.arrive(m, ids, np.full(4, 30.0))
    cs = m.cases
    assert status(m, ids) == [Status.CLOSED, Status.ABANDONED, Status.QUEUED, Status.QUEUED]
    assert np.isnan(cs.dept_arrival[final[0]]) and np.isnan(cs.dept_arrival[gone[0]])
    assert cs.dept_arrival[new[0]] == 30.0 and cs.dept_arrival[back[0]] == 5.0
    dept = cs.dept[new[0]]
    assert m.departments.waiting[dept] == 2  # only the two open cases joined the queue
    queued = np.concatenate([a[0] for a in m.departments.arrivals])
    assert sorted(queued.tolist()) == [int(new[0]), int(back[0])]


def test_arrive_leaves_cases_neglected_unless_they_are_compelled():
    m = make(NEGLECT)
    plain = add(m, Status.IN_TRANSIT, n=5)
    ordered = add(m, Status.IN_TRANSIT, supervision_level=2)
    escalated = add(m, Status.IN_TRANSIT, escalated=True)
    reopened = add(m, Status.IN_TRANSIT, reopened=True)
    ids = np.concatenate([plain, ordered, escalated, reopened])
    lifecycle.arrive(m, ids, np.full(len(ids), 12.0))
    assert status(m, plain) == [Status.NEGLECTED] * 5
    assert status(m, ids[5:]) == [Status.QUEUED] * 3
    assert m.departments.waiting.sum() == 3
    assert (m.cases.dept_arrival[ids] == 12.0).all()  # neglected cases did arrive
    assert scheduled(m) == {}


def test_take_up_under_a_mandate_signs_for_every_case_at_once():
    m = make({"policy.response_mandate_hours": 24.0})
    ids = add(m, Status.IN_TRANSIT, n=2)
    m.cases.first_response[ids[1]] = 3.0  # signed for earlier: kept
    lifecycle.take_up(m, ids, at(10.0, 11.0), np.zeros(2, bool))
    assert m.cases.first_response[ids].tolist() == [10.0, 3.0]
    assert status(m, ids) == [Status.QUEUED] * 2
    assert m.departments.waiting[m.cases.dept[ids[0]]] == 2
    (q, t), = m.departments.arrivals
    assert q.tolist() == ids.tolist() and t.tolist() == [10.0, 11.0]
    assert scheduled(m) == {}
    # without a mandate, taking a case up is no response yet
    m = make({"policy.response_mandate_hours": None})
    ids = add(m, Status.NEGLECTED)
    lifecycle.take_up(m, ids, at(10.0), np.zeros(1, bool))
    assert np.isnan(m.cases.first_response[ids[0]]) and status(m, ids) == [Status.QUEUED]


def test_take_up_replies_perfunctorily_without_queueing():
    m = make({"policy.response_mandate_hours": 24.0, "departments.perfunctory_reply_h": 1.5})
    ids = add(m, Status.IN_TRANSIT, n=2)
    lifecycle.take_up(m, ids, at(10.0, 12.0), np.array([True, False]))
    p, q = int(ids[0]), int(ids[1])
    cs = m.cases
    assert cs.perfunctory[p] and not cs.perfunctory[q]
    assert status(m, ids) == [Status.IN_SERVICE, Status.QUEUED]
    assert cs.first_response[p] == 10.0
    assert m.departments.waiting[cs.dept[p]] == 1  # only the diligent case waits
    assert scheduled(m) == {Event.REPLY: [(p, 11.5)]}


def test_take_up_signs_for_cases_at_the_next_office_hour():
    # 2024-01-01 is a Monday: a case taken up at 02:00 is signed for at 09:00
    m = make({"policy.response_mandate_hours": 24.0, "departments.hours": "office",
              "world.start_date": "2024-01-01", "departments.perfunctory_reply_h": 1.0})
    ids = add(m, Status.IN_TRANSIT, n=2)
    lifecycle.take_up(m, ids, at(2.0, 2.0), np.array([True, False]))
    assert m.cases.first_response[ids].tolist() == [9.0, 9.0]
    assert scheduled(m) == {Event.REPLY: [(int(ids[0]), 10.0)]}
    (q, t), = m.departments.arrivals
    assert q.tolist() == [int(ids[1])] and t.tolist() == [2.0]  # it joins the queue when it arrives


def test_start_service_sets_the_first_response_only_if_there_is_none():
    m = make()
    ids = add(m, Status.QUEUED, n=2)
    m.cases.first_response[ids[1]] = 4.0
    lifecycle.start_service(m, ids, at(20.0, 21.0), at(25.0, 30.5))
    assert m.cases.service_start[ids].tolist() == [20.0, 21.0]
    assert m.cases.first_response[ids].tolist() == [20.0, 4.0]
    assert status(m, ids) == [Status.IN_SERVICE] * 2
    assert scheduled(m) == {Event.REPLY: [(int(ids[0]), 25.0), (int(ids[1]), 30.5)]}


def test_reply_ignores_cases_no_longer_in_service():
    m = make()
    ids = np.concatenate([add(m, Status.ABANDONED), add(m, Status.QUEUED), add(m, Status.CLOSED)])
    lifecycle.reply(m, ids, at(40.0, 40.0, 40.0))
    assert status(m, ids) == [Status.ABANDONED, Status.QUEUED, Status.CLOSED]
    assert np.isnan(m.cases.replied[ids]).all() and np.isnan(m.cases.closed[ids]).all()
    assert scheduled(m) == {}


def test_reply_never_resolves_a_perfunctory_case():
    m = make({"departments.resolution_intercept": 50.0, "policy.callback": True,
              "platform.callback_delay_h": 24.0})
    ids = add(m, Status.IN_SERVICE, n=4, perfunctory=np.array([True, True, False, False]))
    lifecycle.reply(m, ids, np.full(4, 40.0))
    assert m.cases.resolved[ids].tolist() == [False, False, True, True]
    assert m.cases.replied[ids].tolist() == [40.0] * 4
    assert status(m, ids) == [Status.AWAITING_CALLBACK] * 4
    assert scheduled(m) == {Event.CALLBACK: [(int(i), 64.0) for i in ids]}
    # and a diligent reply need not resolve either
    m = make({"departments.resolution_intercept": -50.0})
    ids = add(m, Status.IN_SERVICE, n=3)
    lifecycle.reply(m, ids, np.full(3, 40.0))
    assert not m.cases.resolved[ids].any() and (m.cases.replied[ids] == 40.0).all()


def test_after_reply_awaits_the_callback_when_callbacks_are_made():
    m = make({"policy.callback": True, "citizens.behaviour": True, "platform.callback_delay_h": 6.0})
    ids = add(m, Status.IN_SERVICE, n=2)
    lifecycle.after_reply(m, ids, at(40.0, 41.25))
    assert status(m, ids) == [Status.AWAITING_CALLBACK] * 2
    assert m.cases.closed[ids].tolist() == [40.0, 41.25]
    assert (m.cases.satisfied[ids] == -1).all()  # not judged yet
    assert scheduled(m) == {Event.CALLBACK: [(int(ids[0]), 46.0), (int(ids[1]), 47.25)]}


def test_after_reply_without_callbacks_has_the_case_judged_and_closed_at_once():
    m = make({"policy.callback": False, "citizens.satisfaction_threshold": ALWAYS})
    ids = add(m, Status.IN_SERVICE, n=2)
    lifecycle.after_reply(m, ids, at(40.0, 41.0))
    assert status(m, ids) == [Status.CLOSED] * 2
    assert m.cases.closed[ids].tolist() == [40.0, 41.0]
    assert (m.cases.satisfied[ids] == 1).all()
    assert scheduled(m) == {}
    # call-backs on, but citizens without behaviour: nobody to call, closed and counted satisfied
    m = make({"policy.callback": True, "citizens.behaviour": False, "citizens.satisfaction_threshold": NEVER})
    ids = add(m, Status.IN_SERVICE)
    lifecycle.after_reply(m, ids, at(40.0))
    assert status(m, ids) == [Status.CLOSED] and m.cases.satisfied[ids[0]] == 1
    assert scheduled(m) == {}


# ---------------------------------------------------------------------------------------- citizens
def test_call_back_costs_staff_time_after_the_warmup_only_and_may_reopen():
    m = make({"run.warmup_days": 1, "platform.callback_minutes": 6.0, "citizens.satisfaction_threshold": NEVER,
              "citizens.reopen_propensity": 1.0, "citizens.escalation_threshold": NEVER,
              "platform.dispatch_delay_h": 2.0})
    waiting = add(m, Status.AWAITING_CALLBACK, n=2)
    done = add(m, Status.CLOSED)
    ids = np.concatenate([waiting, done])
    m.hour = 0  # in the warm-up
    lifecycle.call_back(m, ids, np.full(3, 10.0))
    assert m.staff_hours == 0.0
    # a call-back may reopen (judge is told the requester was called)
    assert status(m, ids) == [Status.IN_TRANSIT, Status.IN_TRANSIT, Status.CLOSED]
    assert m.cases.reopened[waiting].all() and not m.cases.reopened[done[0]]
    assert m.cases.satisfied[done[0]] == -1  # a case not awaiting its call-back is not judged
    assert scheduled(m) == {Event.ARRIVE: [(int(i), 12.0) for i in waiting]}
    more = add(m, Status.AWAITING_CALLBACK, n=2)
    m.hour = 24  # measured
    lifecycle.call_back(m, np.concatenate([more, done]), np.full(3, 30.0))
    assert m.staff_hours == pytest.approx(2 * 6.0 / 60.0)


def test_judge_reopens_an_unsatisfied_case_after_a_callback():
    m = make({"citizens.satisfaction_threshold": NEVER, "citizens.reopen_propensity": 1.0,
              "policy.reopen_allowed": True, "policy.max_reopens": 1, "citizens.escalation_threshold": NEVER,
              "platform.dispatch_delay_h": 2.0})
    ids = add(m, Status.AWAITING_CALLBACK, n=2, dept_arrival=5.0, first_response=6.0, replied=20.0, closed=20.0,
              resolved=True, perfunctory=np.array([True, False]))
    lifecycle.judge(m, ids, at(44.0, 45.0), callback=True)
    cs = m.cases
    assert status(m, ids) == [Status.IN_TRANSIT] * 2
    assert cs.reopened[ids].all() and cs.reopen_count[ids].tolist() == [1, 1]
    assert cs.boost[ids].tolist() == [2, 2]
    assert np.isnan(cs.closed[ids]).all() and np.isnan(cs.replied[ids]).all()
    assert (cs.satisfied[ids] == -1).all()
    assert not cs.resolved[ids].any() and not cs.perfunctory[ids].any()
    assert cs.first_response[ids].tolist() == [6.0, 6.0]  # the case was answered once: that stands
    assert not cs.escalated[ids].any()
    assert scheduled(m) == {Event.ARRIVE: [(int(ids[0]), 46.0), (int(ids[1]), 47.0)]}


def test_judge_closes_an_unsatisfied_case_that_may_not_reopen():
    m = make({"citizens.satisfaction_threshold": NEVER, "citizens.reopen_propensity": 1.0,
              "policy.max_reopens": 1, "citizens.escalation_threshold": NEVER})
    used = add(m, Status.AWAITING_CALLBACK, reopen_count=1)  # its one reopening is spent
    no_call = add(m, Status.IN_SERVICE)  # judged without a call-back: nobody asks to reopen
    ids = np.concatenate([used, no_call])
    who = int(m.cases.citizen[ids[0]])
    trust = m.population.trust[who]
    lifecycle.judge(m, used, at(50.0), callback=True)
    lifecycle.judge(m, no_call, at(50.0), callback=False)
    assert status(m, ids) == [Status.CLOSED] * 2
    assert m.cases.satisfied[ids].tolist() == [0, 0]
    assert not m.cases.reopened[ids].any() and m.cases.reopen_count[ids].tolist() == [1, 0]
    assert m.population.trust[who] < trust  # a bad experience costs trust
    assert scheduled(m) == {}
    # reopening switched off altogether
    m = make({"citizens.satisfaction_threshold": NEVER, "citizens.reopen_propensity": 1.0,
              "policy.reopen_allowed": False, "citizens.escalation_threshold": NEVER})
    ids = add(m, Status.AWAITING_CALLBACK)
    lifecycle.judge(m, ids, at(50.0), callback=True)
    assert status(m, ids) == [Status.CLOSED] and not m.cases.reopened[ids[0]]


def test_judge_closes_satisfied_cases_and_the_requester_learns():
    m = make({"citizens.satisfaction_threshold": ALWAYS, "citizens.reopen_propensity": 1.0})
    ids = add(m, Status.AWAITING_CALLBACK, resolved=True, channel=1)
    who = int(m.cases.citizen[ids[0]])
    trust, efficacy = m.population.trust[who], m.population.efficacy[who]
    assert m.population.last_good_channel[who] == -1
    lifecycle.judge(m, ids, at(50.0), callback=True)
    assert status(m, ids) == [Status.CLOSED] and m.cases.satisfied[ids[0]] == 1
    assert not m.cases.reopened[ids[0]]
    assert m.population.trust[who] > trust and m.population.efficacy[who] > efficacy
    assert m.population.last_good_channel[who] == 1  # the hotline worked
    assert scheduled(m) == {}


def test_judge_sends_an_escalated_case_back_under_compulsion():
    m = make({"citizens.satisfaction_threshold": NEVER, "citizens.escalation_threshold": ALWAYS,
              "platform.dispatch_delay_h": 2.0, "supervision.escalation_penalty": 0.25})
    ids = add(m, Status.IN_SERVICE, replied=30.0, closed=30.0)
    dept = int(m.cases.dept[ids[0]])
    diligence = m.departments.diligence[dept]
    lifecycle.judge(m, ids, at(30.0), callback=False)
    cs = m.cases
    assert status(m, ids) == [Status.IN_TRANSIT]
    assert cs.escalated[ids[0]] and cs.supervised[ids[0]] and not cs.reopened[ids[0]]
    assert cs.boost[ids[0]] == 2 and cs.satisfied[ids[0]] == -1
    assert np.isnan(cs.closed[ids[0]]) and np.isnan(cs.replied[ids[0]])
    assert m.departments.diligence[dept] == pytest.approx(diligence + 0.25)
    assert scheduled(m) == {Event.ARRIVE: [(int(ids[0]), 32.0)]}
    # a requester escalates only once: the next unsatisfying reply closes the case
    lifecycle.judge(m, ids, at(60.0), callback=False)
    assert status(m, ids) == [Status.CLOSED] and cs.satisfied[ids[0]] == 0
    assert scheduled(m) == {}


def test_judge_without_citizen_behaviour_counts_every_case_satisfied():
    m = make({"citizens.behaviour": False, "citizens.satisfaction_threshold": NEVER})
    ids = add(m, Status.AWAITING_CALLBACK, n=2)
    lifecycle.judge(m, ids, at(10.0, 10.0), callback=True)
    assert status(m, ids) == [Status.CLOSED] * 2 and (m.cases.satisfied[ids] == 1).all()
    assert not m.cases.reopened[ids].any()


def test_lose_patience_abandons_queued_cases_and_withdraws_them():
    m = make({"citizens.escalation_threshold": NEVER})
    deps = m.departments
    busy, waits, fresh = (add(m, Status.IN_TRANSIT, service_time=100.0, dept_arrival=0.0) for _ in range(3))
    dept = int(m.cases.dept[busy[0]])
    lifecycle.take_up(m, np.concatenate([busy, waits]), at(0.0, 0.0), np.zeros(2, bool))
    started = deps.work(1.0, m.cases)  # one member of staff: the first starts, the second waits in line
    assert started is not None and started[0].tolist() == [int(busy[0])]
    pool = deps.agents[dept].pool
    assert len(pool) == 1 and deps.waiting[dept] == 1
    lifecycle.take_up(m, fresh, at(1.5), np.zeros(1, bool))  # still among this step's arrivals
    assert deps.waiting[dept] == 2
    gone = np.concatenate([waits, fresh])
    lifecycle.lose_patience(m, gone, at(240.0, 241.5))
    assert status(m, gone) == [Status.ABANDONED] * 2
    assert m.cases.satisfied[gone].tolist() == [0, 0]
    assert deps.waiting[dept] == 0 and len(pool) == 0
    assert deps.work(2.0, m.cases) is None  # the withdrawn arrival is never started
    assert len(pool) == 0 and not deps.cancelled
    assert scheduled(m) == {}


def test_lose_patience_gives_up_from_any_status_before_a_reply_but_not_after():
    m = make({"citizens.escalation_threshold": NEVER, "policy.response_mandate_hours": 24.0})
    early = np.concatenate([add(m, s) for s in (Status.AWAITING_INTAKE, Status.IN_TRANSIT, Status.NEGLECTED)])
    signed = add(m, Status.QUEUED, first_response=20.0)  # answered (signed for): nothing to lose patience over
    later = np.concatenate([add(m, s, first_response=20.0)
                            for s in (Status.IN_SERVICE, Status.AWAITING_CALLBACK, Status.CLOSED)])
    waiting_before = m.departments.waiting.copy()
    ids = np.concatenate([early, signed, later])
    lifecycle.lose_patience(m, ids, np.full(len(ids), 240.0))
    assert status(m, early) == [Status.ABANDONED] * 3
    assert status(m, signed) == [Status.QUEUED] and m.cases.satisfied[signed[0]] == -1
    assert status(m, later) == [Status.IN_SERVICE, Status.AWAITING_CALLBACK, Status.CLOSED]
    assert (m.departments.waiting == waiting_before).all()  # no queued case was withdrawn
    assert scheduled(m) == {}


def test_lose_patience_escalates_once_and_restarts_patience():
    m = make({"citizens.escalation_threshold": ALWAYS, "citizens.patience_h": 240.0, **NEGLECT})
    neglected = add(m, Status.NEGLECTED)
    in_transit = add(m, Status.IN_TRANSIT)
    again = add(m, Status.IN_TRANSIT, escalated=True)  # escalated before: this time they give up
    ids = np.concatenate([neglected, in_transit, again])
    lifecycle.lose_patience(m, ids, at(240.0, 250.0, 260.0))
    cs = m.cases
    assert cs.escalated[ids].all() and cs.supervised[ids[:2]].all()
    # the province compels the neglected case: taken up now, at the head of the line
    assert status(m, ids) == [Status.QUEUED, Status.IN_TRANSIT, Status.ABANDONED]
    assert cs.boost[ids[:2]].tolist() == [2, 2]
    assert cs.satisfied[ids].tolist() == [-1, -1, 0]
    assert scheduled(m) == {Event.PATIENCE: [(int(neglected[0]), 480.0), (int(in_transit[0]), 490.0)]}


def test_lose_patience_does_nothing_without_citizen_behaviour():
    m = make({"citizens.behaviour": False, "citizens.escalation_threshold": NEVER})
    ids = add(m, Status.QUEUED, n=2)
    lifecycle.lose_patience(m, ids, at(240.0, 240.0))
    assert status(m, ids) == [Status.QUEUED] * 2 and (m.cases.satisfied[ids] == -1).all()


# ---------------------------------------------------------------------------------------- pressure
def test_press_moves_queued_cases_up_their_queue():
    m = make({"departments.queue_discipline": "supervised"})
    deps = m.departments
    first = add(m, Status.IN_TRANSIT, service_time=3.0, dept_arrival=0.0)
    line = [add(m, Status.IN_TRANSIT, dept_arrival=0.0, **cols)
            for cols in ({}, {}, {"supervision_level": 2}, {"escalated": True})]
    ids = np.concatenate([first, *line])
    lifecycle.take_up(m, ids, np.zeros(len(ids)), np.zeros(len(ids), bool))
    deps.work(1.0, m.cases)  # the first case keeps the one member of staff busy until 3.0
    pool = deps.agents[int(m.cases.dept[first[0]])].pool
    plain, pressed, ordered, escalated = (int(c[0]) for c in line)
    assert [pool.live[c][0] for c in (plain, pressed)] == [(0, 0.0), (0, 0.0)]
    lifecycle.press(m, np.array([pressed, ordered, escalated]), 2.0, extra_detection=0.0)
    assert m.cases.boost[[plain, pressed, ordered, escalated]].tolist() == [0, 1, 2, 2]
    assert pool.live[pressed][0] == (-1, 0.0) and pool.live[ordered][0] == (-2, 0.0)
    assert pool.live[plain][0] == (0, 0.0)
    # the compelled cases are served first, then the pressed one, the plain case last
    started = deps.work(100.0, m.cases)
    assert started is not None
    assert started[0].tolist() == [ordered, escalated, pressed, plain]
    assert started[1].tolist() == [3.0, 8.0, 13.0, 18.0]
    # pressure never lowers a boost
    lifecycle.press(m, np.array([ordered]), 50.0, extra_detection=0.0)
    m.cases.escalated[ordered] = False
    m.cases.supervision_level[ordered] = 0
    lifecycle.press(m, np.array([ordered]), 60.0, extra_detection=0.0)
    assert m.cases.boost[ordered] == 2


def test_press_takes_up_a_neglected_case_when_the_department_now_answers():
    m = make({"departments.effort_choice": False, "policy.response_mandate_hours": 24.0})
    ids = add(m, Status.NEGLECTED, n=2, dept_arrival=5.0)
    lifecycle.press(m, ids, 30.0, extra_detection=0.0)
    assert status(m, ids) == [Status.QUEUED] * 2
    assert m.cases.first_response[ids].tolist() == [30.0, 30.0]  # signed for when taken up (mandate)
    assert m.departments.waiting.sum() == 2
    (q, t), = m.departments.arrivals
    assert q.tolist() == ids.tolist() and t.tolist() == [30.0, 30.0]
    # a department that still neglects leaves it neglected, but the case is marked as pressed
    m = make(NEGLECT)
    ids = add(m, Status.NEGLECTED)
    lifecycle.press(m, ids, 30.0, extra_detection=1.0)
    assert status(m, ids) == [Status.NEGLECTED] and m.cases.boost[ids[0]] == 1
    assert m.departments.waiting.sum() == 0
    assert scheduled(m) == {}


def test_remind_presses_only_cases_not_yet_taken_up():
    m = make({"departments.effort_choice": False})
    ids = np.concatenate([add(m, s, dept_arrival=1.0) for s in Status])
    lifecycle.remind(m, ids, np.linspace(10.0, 17.0, len(ids)))
    pressed = {Status.IN_TRANSIT, Status.QUEUED, Status.NEGLECTED}
    assert m.cases.boost[ids].tolist() == [1 if s in pressed else 0 for s in Status]
    expect = [Status.QUEUED if s == Status.NEGLECTED else s for s in Status]
    assert status(m, ids) == expect
    (q, t), = m.departments.arrivals  # the neglected case is taken up at the reminder's (latest) time
    assert q.tolist() == [int(ids[Status.NEGLECTED])] and t.tolist() == [17.0]
    assert scheduled(m) == {}


def test_remind_adds_the_risk_of_detection_to_the_effort_choice():
    # no standing lever detects anything; a reminder's added risk (0.5 × 100) tips the choice
    m = make({"policy.tracking": False, "policy.callback": False, "policy.supervision_intensity": 0.0,
              "policy.public_ranking": False, "policy.response_mandate_hours": None,
              "departments.accountability_weight": 100.0, "departments.neglect_intercept": -25.0})
    ids = add(m, Status.NEGLECTED, n=5)
    lifecycle.press(m, ids, 10.0, extra_detection=0.0)
    assert status(m, ids) == [Status.NEGLECTED] * 5
    lifecycle.remind(m, ids, np.full(5, 11.0))
    assert status(m, ids) == [Status.QUEUED] * 5
