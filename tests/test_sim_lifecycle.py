"""Each case transition of sim/lifecycle.py on its own, on a tiny model that is never stepped; and the department
side it calls: the beliefs (sim.departments.DepartmentTable) and the choice of action (ActionChoice).

Cases are added straight to the case store in the status a transition moves them from; the random
outcomes are forced through settings (shares of 0 or 1, thresholds far out of reach, utility gaps a hundred
times the choice noise) or beliefs set on ``m.departments``, never by luck.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from sim import lifecycle
from sim.cases import Action, Status, Violation
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
    "departments.staff.prefecture": 1,
    "departments.staff.county": 1,
    "departments.staff.township": 1,
    "platform.handover_delay_h": 0.0,
    "platform.classification_accuracy": 1.0,
    "citizens.max_repeats": 0,  # nobody reports a problem again (the repeat tests turn it on)
}

NEVER = 100.0    # a threshold no score reaches (the noise scales are about 0.1)
ALWAYS = -100.0  # a threshold every score passes

#: a department's choice made deterministic: no prior beliefs, logit noise 0.01 against utility gaps of at
#: least 1 (any other action has a chance below e^-100). As it stands: U(proper) = −1, U(perfunctory) = −100,
#: U(sit) = 0, U(bounce) = −∞ (no returns allowed): the department sits on every case.
SIT = {"departments.prior_strength": 0.0, "departments.choice_noise": 0.01, "departments.duty": 0.0,
       "departments.perfunctory_effort": 100.0, "departments.bounce_effort": 100.0, "platform.max_bounces": 0}
PROPER = {**SIT, "departments.duty": 100.0}                   # U(proper) = 99
PERFUNCTORY = {**SIT, "departments.perfunctory_effort": 0.0}  # U(perfunctory) = 0, with E(late) = 10 (see LATE_10)
BOUNCE = {**SIT, "departments.bounce_effort": 0.0, "platform.max_bounces": 2}  # U(bounce) = 0, with LATE_10
LATE_10 = {Violation.LATE: 10.0}  # U(sit) = −10 (the expected sanction for a late case)


def make(overrides: dict[str, Any] | None = None, beliefs: dict[Violation, float] | None = None) -> GovernanceModel:
    m = GovernanceModel(Scenario().with_overrides({**BASE, **(overrides or {})}), seed=1)
    for kind, e in (beliefs or {}).items():
        believe(m, kind, e)
    return m


def believe(m: GovernanceModel, kind: Violation, e: float) -> None:
    """Every department expects a sanction ``e`` per violation of ``kind`` (one violation on record, caught)."""
    t = m.departments
    t.committed[:, int(kind), :] = 1.0
    t.caught[:, int(kind), :] = 1.0
    t.sanctions[:, int(kind), :] = e


def add(m: GovernanceModel, status: Status, n: int = 1, cat: int = 0, twp: int = 0, created: float = 0.0,
        due: float = 200.0, service_time: float = 5.0, consultation: bool = False, hops: int = 1,
        **cols: Any) -> np.ndarray:
    """Add ``n`` cases of category ``cat`` in township ``twp``, routed to their handling department."""
    citizen = int(np.flatnonzero(m.population.region == twp)[0])
    columns: dict[str, Any] = dict(
        citizen=np.full(n, citizen), category=np.full(n, cat), region=np.full(n, twp),
        created=np.full(n, created), due=np.full(n, due), service_time=np.full(n, service_time),
        intake_time=np.full(n, 0.1), consultation=np.full(n, consultation), status=np.full(n, int(status)),
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


def actions(m: GovernanceModel, ids: np.ndarray) -> list[Action]:
    return [Action(a) for a in m.cases.action[ids]]


def today(m: GovernanceModel, what: str, dept: int, kind: Violation, threat: int = 0) -> float:
    """The day's ``committed``, ``caught`` or ``sanctions`` of one department, kind and request class."""
    return float(getattr(m.departments, f"today_{what}")[dept, int(kind), threat])


def dept_of(m: GovernanceModel, ids: np.ndarray) -> int:
    return int(m.cases.dept[ids[0]])


# ------------------------------------------------------------------------------------ the event table
def test_events_are_declared_in_handling_order_and_each_has_its_handler():
    assert list(Event) == [Event.ACCEPT, Event.ARRIVE, Event.REMIND, Event.REPLY, Event.FORWARD, Event.CALLBACK,
                           Event.PATIENCE, Event.RETURN, Event.DUE, Event.SIGN_DUE, Event.RECONSIDER]
    assert [int(e) for e in Event] == list(range(11))
    assert HANDLERS == {
        Event.ACCEPT: lifecycle.accept,
        Event.ARRIVE: lifecycle.arrive,
        Event.REMIND: lifecycle.remind,
        Event.REPLY: lifecycle.reply,
        Event.FORWARD: lifecycle.forward,
        Event.CALLBACK: lifecycle.call_back,
        Event.PATIENCE: lifecycle.lose_patience,
        Event.RETURN: lifecycle.come_back,
        Event.DUE: lifecycle.pass_due,
        Event.SIGN_DUE: lifecycle.pass_sign_due,
        Event.RECONSIDER: lifecycle.reconsider,
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
    assert m.ledger.work_hours["operators"] == 0.0
    assert scheduled(m) == {}


def test_accept_answers_consultations_at_intake_and_dispatches_the_rest():
    m = make({"platform.direct_answer_share": 1.0, "platform.dispatch_delay_h": 2.0, "policy.callback": True,
              "platform.callback_share": 1.0, "platform.callback_delay_h": 24.0, "citizens.behaviour": True})
    consult = add(m, Status.AWAITING_INTAKE, consultation=True, intake_time=0.25)
    order = add(m, Status.AWAITING_INTAKE, consultation=False, intake_time=0.5, due=100.0)
    ids = np.concatenate([consult, order])
    lifecycle.accept(m, ids, at(5.5, 6.0))
    cs = m.cases
    c, o = int(consult[0]), int(order[0])
    assert cs.accepted[c] == 5.5 and cs.accepted[o] == 6.0
    # the direct answer: replied, truly solved and recorded so, on the spot; then the call-back
    assert cs.direct_answer[c] and cs.true_resolved[c] and cs.recorded_resolved[c]
    assert cs.first_response[c] == 5.5 and cs.replied[c] == 5.5 and cs.closed[c] == 5.5
    assert Status(cs.status[c]) == Status.AWAITING_CALLBACK
    # the order: sent down to its department, with its reply deadline watched
    assert not cs.direct_answer[o] and np.isnan(cs.first_response[o]) and np.isnan(cs.replied[o])
    assert not cs.true_resolved[o] and not cs.recorded_resolved[o]
    assert Status(cs.status[o]) == Status.IN_TRANSIT and cs.dispatched[o] == 8.0
    assert scheduled(m) == {Event.ARRIVE: [(o, 8.0)], Event.CALLBACK: [(c, 29.5)], Event.DUE: [(o, 100.0)]}
    assert m.ledger.work_hours["operators"] == pytest.approx(0.75)  # both intakes' handling time


def test_accept_dispatches_consultations_when_the_platform_answers_none():
    m = make({"platform.direct_answer_share": 0.0})
    ids = add(m, Status.AWAITING_INTAKE, n=3, consultation=True)
    lifecycle.accept(m, ids, at(1.0, 2.0, 3.0))
    assert not m.cases.direct_answer[ids].any() and not m.cases.recorded_resolved[ids].any()
    assert status(m, ids) == [Status.IN_TRANSIT] * 3
    assert sorted(scheduled(m)) == [Event.ARRIVE, Event.DUE]


def test_dispatch_sets_the_dispatch_time_and_schedules_arrival_and_due_time():
    m = make({"platform.dispatch_delay_h": 2.0, "policy.response_mandate_hours": None})
    ids = add(m, Status.AWAITING_INTAKE, n=2, hops=3)  # no hand-over delay set: hops cost nothing
    m.cases.due[ids[1]] = 5.0  # due before it is even dispatched: checked from the next hour on
    lifecycle.dispatch(m, ids, at(10.0, 11.5))
    assert m.cases.dispatched[ids].tolist() == [12.0, 13.5]
    assert status(m, ids) == [Status.IN_TRANSIT] * 2
    assert not m.cases.misrouted[ids].any()
    assert scheduled(m) == {Event.ARRIVE: [(int(ids[0]), 12.0), (int(ids[1]), 13.5)],
                            Event.DUE: [(int(ids[0]), 200.0), (int(ids[1]), 12.0)]}


def test_dispatch_under_a_mandate_also_watches_the_sign_for_deadline():
    m = make({"platform.dispatch_delay_h": 2.0, "policy.response_mandate_hours": 24.0})
    ids = add(m, Status.AWAITING_INTAKE, n=2, created=np.array([3.0, 0.0]))
    lifecycle.dispatch(m, ids, at(10.0, 30.0))  # the second is accepted after its sign-for deadline (24 h)
    assert scheduled(m)[Event.SIGN_DUE] == [(int(ids[0]), 27.0), (int(ids[1]), 31.0)]  # checked the next hour


def test_dispatch_returns_misrouted_orders_before_they_arrive():
    m = make({"platform.classification_accuracy": 0.0, "platform.dispatch_delay_h": 2.0,
              "platform.misroute_return_h": 16.0})
    ids = add(m, Status.AWAITING_INTAKE)
    lifecycle.dispatch(m, ids, at(8.0))
    assert m.cases.misrouted[ids[0]] and m.cases.dispatched[ids[0]] == 10.0
    assert scheduled(m)[Event.ARRIVE] == [(int(ids[0]), 28.0)]  # 10 + 16 back, + 2 sent again
    # office hours: the wrong department returns it when it next opens (hour 26 is Tuesday 02:00 → 09:00)
    m = make({"platform.classification_accuracy": 0.0, "platform.dispatch_delay_h": 2.0,
              "platform.misroute_return_h": 16.0, "departments.hours": "office", "world.start_date": "2024-01-01"})
    ids = add(m, Status.AWAITING_INTAKE)
    lifecycle.dispatch(m, ids, at(8.0))
    assert scheduled(m)[Event.ARRIVE] == [(int(ids[0]), 35.0)]


# ------------------------------------------------------------------------------- departments: choose
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
    assert actions(m, ids) == [Action.NONE, Action.NONE, Action.PROPER, Action.PROPER]
    assert np.isnan(cs.dept_arrival[final[0]]) and np.isnan(cs.dept_arrival[gone[0]])
    assert cs.dept_arrival[new[0]] == 30.0 and cs.dept_arrival[back[0]] == 5.0
    dept = cs.dept[new[0]]
    assert m.departments.waiting[dept] == 2  # only the two open cases joined the queue
    queued = np.concatenate([a[0] for a in m.departments.arrivals])
    assert sorted(queued.tolist()) == [int(new[0]), int(back[0])]


def test_choose_proper_queues_the_case():
    m = make(PROPER)
    ids = add(m, Status.IN_TRANSIT, n=3)
    lifecycle.choose(m, ids, at(10.0, 11.0, 12.0))
    assert actions(m, ids) == [Action.PROPER] * 3 and status(m, ids) == [Status.QUEUED] * 3
    assert not m.cases.perfunctory[ids].any() and np.isnan(m.cases.first_response[ids]).all()
    assert m.departments.waiting[dept_of(m, ids)] == 3
    (q, t), = m.departments.arrivals
    assert q.tolist() == ids.tolist() and t.tolist() == [10.0, 11.0, 12.0]
    assert m.departments.today_committed.sum() == 0.0  # handling a case properly is no violation
    assert scheduled(m) == {}


def test_choose_perfunctory_replies_at_once_without_a_server():
    m = make({**PERFUNCTORY, "departments.perfunctory_reply_h": 1.5}, beliefs=LATE_10)
    ids = add(m, Status.IN_TRANSIT, n=2)
    lifecycle.choose(m, ids, at(10.0, 12.0))
    assert actions(m, ids) == [Action.PERFUNCTORY] * 2 and status(m, ids) == [Status.IN_SERVICE] * 2
    assert m.cases.perfunctory[ids].all()
    assert m.cases.first_response[ids].tolist() == [10.0, 12.0]  # the reply under way is a response
    assert m.departments.waiting.sum() == 0 and not m.departments.arrivals
    assert m.ledger.work_hours["departments"] == pytest.approx(3.0)  # 1.5 h of work each
    assert scheduled(m) == {Event.REPLY: [(int(ids[0]), 11.5), (int(ids[1]), 13.5)]}


def test_choose_sit_leaves_the_case_neglected():
    m = make(SIT)
    ids = add(m, Status.IN_TRANSIT, n=4)
    lifecycle.choose(m, ids, np.full(4, 10.0))
    assert actions(m, ids) == [Action.SIT] * 4 and status(m, ids) == [Status.NEGLECTED] * 4
    assert np.isnan(m.cases.first_response[ids]).all()  # no mandate: nobody signs for it
    assert m.departments.waiting.sum() == 0 and m.departments.today_committed.sum() == 0.0
    assert scheduled(m) == {}


def test_choose_bounce_returns_the_order_and_commits_a_violation():
    m = make({**BOUNCE, "platform.misroute_return_h": 16.0}, beliefs=LATE_10)
    ids = add(m, Status.IN_TRANSIT, n=3, tattle=np.array([False, False, True]))
    lifecycle.choose(m, ids, np.full(3, 10.0))
    d = dept_of(m, ids)
    assert actions(m, ids) == [Action.BOUNCE] * 3 and status(m, ids) == [Status.IN_TRANSIT] * 3
    assert m.cases.bounced[ids].tolist() == [1, 1, 1]
    assert today(m, "committed", d, Violation.BOUNCED, 0) == 2.0
    assert today(m, "committed", d, Violation.BOUNCED, 1) == 1.0  # the threatening request in its own class
    assert today(m, "caught", d, Violation.BOUNCED) == 0.0  # returning is not yet being caught
    assert m.departments.waiting.sum() == 0
    assert scheduled(m) == {Event.RETURN: [(int(i), 26.0) for i in ids]}


def test_choose_handles_compelled_and_reopened_cases_properly():
    for forced, beliefs, free in ((SIT, None, Action.SIT), (PERFUNCTORY, LATE_10, Action.PERFUNCTORY),
                                  (BOUNCE, LATE_10, Action.BOUNCE)):
        m = make(forced, beliefs=beliefs)
        plain = add(m, Status.IN_TRANSIT, n=3)
        reminded = add(m, Status.IN_TRANSIT, supervision_level=1)  # a reminder compels nothing
        ordered = add(m, Status.IN_TRANSIT, supervision_level=2)
        named = add(m, Status.IN_TRANSIT, supervision_level=3)
        escalated = add(m, Status.IN_TRANSIT, escalated=True)
        reopened = add(m, Status.IN_TRANSIT, reopened=True)
        ids = np.concatenate([plain, reminded, ordered, named, escalated, reopened])
        lifecycle.choose(m, ids, np.full(len(ids), 12.0))
        assert actions(m, ids) == [free] * 4 + [Action.PROPER] * 4
        assert status(m, ids[4:]) == [Status.QUEUED] * 4
        assert m.departments.waiting.sum() == 4


def test_choose_after_max_bounces_the_department_can_no_longer_bounce():
    m = make(BOUNCE, beliefs=LATE_10)  # max_bounces 2
    ids = add(m, Status.IN_TRANSIT, n=3, bounced=np.array([0, 1, 2]))
    lifecycle.choose(m, ids, np.full(3, 10.0))
    # bouncing was best; once returned twice the next best is to handle it (U = −1 against sitting's −10)
    assert actions(m, ids) == [Action.BOUNCE, Action.BOUNCE, Action.PROPER]
    assert m.cases.bounced[ids].tolist() == [1, 2, 2]


def test_choose_under_a_mandate_signs_for_the_case_when_an_unsigned_case_is_expected_to_cost():
    m = make({**SIT, "policy.response_mandate_hours": 24.0}, beliefs={Violation.UNSIGNED: 100.0})
    ids = add(m, Status.IN_TRANSIT, n=5)
    lifecycle.choose(m, ids, at(10.0, 11.0, 12.0, 13.0, 14.0))
    assert m.cases.first_response[ids].tolist() == [10.0, 11.0, 12.0, 13.0, 14.0]
    assert status(m, ids) == [Status.NEGLECTED] * 5  # signed for, and still sat on
    # signed for earlier: the first sign-for stands
    m.cases.status[ids] = Status.NEGLECTED
    lifecycle.choose(m, ids, np.full(5, 40.0))
    assert m.cases.first_response[ids].tolist() == [10.0, 11.0, 12.0, 13.0, 14.0]
    # office hours: signed for when the office opens (2024-01-01 is a Monday: 02:00 → 09:00)
    m = make({**SIT, "policy.response_mandate_hours": 24.0, "departments.hours": "office",
              "world.start_date": "2024-01-01"}, beliefs={Violation.UNSIGNED: 100.0})
    ids = add(m, Status.IN_TRANSIT, n=2)
    lifecycle.choose(m, ids, at(2.0, 10.5))
    assert m.cases.first_response[ids].tolist() == [9.0, 10.5]


def test_choose_under_a_mandate_does_not_sign_when_nothing_is_expected_beyond_the_effort():
    # no record and no prior: nothing to fear
    m = make({**SIT, "policy.response_mandate_hours": 24.0})
    ids = add(m, Status.IN_TRANSIT, n=50)
    lifecycle.choose(m, ids, np.full(50, 10.0))
    assert np.isnan(m.cases.first_response[ids]).all()
    # an expected sanction exactly the effort of signing: still not worth it
    m = make({**SIT, "policy.response_mandate_hours": 24.0, "departments.sign_effort": 0.05},
             beliefs={Violation.UNSIGNED: 0.05})
    ids = add(m, Status.IN_TRANSIT, n=50)
    lifecycle.choose(m, ids, np.full(50, 10.0))
    assert np.isnan(m.cases.first_response[ids]).all()
    # without a mandate there is nothing to sign for, whatever the department expects
    m = make({**SIT, "policy.response_mandate_hours": None}, beliefs={Violation.UNSIGNED: 100.0})
    ids = add(m, Status.IN_TRANSIT, n=50)
    lifecycle.choose(m, ids, np.full(50, 10.0))
    assert np.isnan(m.cases.first_response[ids]).all()
    # a bounced order is not signed for
    m = make({**BOUNCE, "policy.response_mandate_hours": 24.0},
             beliefs={**LATE_10, Violation.UNSIGNED: 100.0})
    ids = add(m, Status.IN_TRANSIT, n=5)
    lifecycle.choose(m, ids, np.full(5, 10.0))
    assert actions(m, ids) == [Action.BOUNCE] * 5 and np.isnan(m.cases.first_response[ids]).all()


def test_sign_for_draws_from_its_own_stream_and_leaves_the_actions_alone():
    """The actions drawn are the same with and without a mandate: sign-for uses ``rng_mandate`` only."""
    drawn = []
    for mandate in (None, 24.0):
        # no load effect: the first batch's queue must not decide the second batch for the department
        m = make({"policy.response_mandate_hours": mandate, "departments.load_weight": 0.0,
                  "departments.choice_noise": 0.5}, beliefs={Violation.UNSIGNED: 0.5})
        ids = add(m, Status.IN_TRANSIT, n=400)
        lifecycle.choose(m, ids[:200], np.full(200, 10.0))  # two batches: the second follows any draws of the first
        lifecycle.choose(m, ids[200:], np.full(200, 11.0))
        drawn.append(m.cases.action[ids].copy())
        act = m.cases.action[ids]
        signed = ~np.isnan(m.cases.first_response[ids])
        assert signed[act == Action.PERFUNCTORY].all()  # a perfunctory reply is a response anyway
        kept = (act == Action.PROPER) | (act == Action.SIT)
        if mandate is None:
            assert not signed[kept].any()
        else:  # P(sign) = 1 − exp(−(0.5 − 0.05) / 0.5) ≈ 0.59
            assert signed[kept].mean() == pytest.approx(-math.expm1(-0.9), abs=0.08)
    assert len(set(drawn[0][200:].tolist())) > 1  # the choice is a real lottery, in both batches
    assert drawn[0].tolist() == drawn[1].tolist()


def test_take_up_queues_proper_cases_without_signing_for_them():
    m = make({"policy.response_mandate_hours": 24.0})
    ids = add(m, Status.IN_TRANSIT, n=2)
    m.cases.first_response[ids[1]] = 3.0  # signed for earlier: kept
    lifecycle.take_up(m, ids, at(10.0, 11.0), np.zeros(2, bool))
    assert np.isnan(m.cases.first_response[ids[0]]) and m.cases.first_response[ids[1]] == 3.0
    assert status(m, ids) == [Status.QUEUED] * 2
    assert m.departments.waiting[dept_of(m, ids)] == 2
    (q, t), = m.departments.arrivals
    assert q.tolist() == ids.tolist() and t.tolist() == [10.0, 11.0]
    assert scheduled(m) == {}


def test_take_up_replies_perfunctorily_at_the_next_office_hour():
    # 2024-01-01 is a Monday: a perfunctory reply to a case taken up at 02:00 starts at 09:00
    m = make({"departments.hours": "office", "world.start_date": "2024-01-01", "departments.perfunctory_reply_h": 1.0})
    ids = add(m, Status.IN_TRANSIT, n=2)
    lifecycle.take_up(m, ids, at(2.0, 2.0), np.array([True, False]))
    assert m.cases.first_response[ids[0]] == 9.0 and np.isnan(m.cases.first_response[ids[1]])
    assert m.cases.perfunctory[ids].tolist() == [True, False]
    assert status(m, ids) == [Status.IN_SERVICE, Status.QUEUED]
    assert scheduled(m) == {Event.REPLY: [(int(ids[0]), 10.0)]}
    (q, t), = m.departments.arrivals
    assert q.tolist() == [int(ids[1])] and t.tolist() == [2.0]  # it joins the queue when it arrives


# ------------------------------------------------------------------------------- bounce and return
def test_come_back_sends_the_order_back_and_tracking_flags_the_bounce():
    m = make({**BOUNCE, "platform.misroute_return_h": 16.0, "platform.dispatch_delay_h": 2.0,
              "policy.tracking": True, "supervision.tracking_flag_sanction": 0.3}, beliefs=LATE_10)
    ids = add(m, Status.IN_TRANSIT, n=3, tattle=np.array([False, True, False]))
    gone = add(m, Status.ABANDONED)
    lifecycle.choose(m, ids, np.full(3, 10.0))
    assert scheduled(m) == {Event.RETURN: [(int(i), 26.0) for i in ids]}
    lifecycle.come_back(m, np.concatenate([ids, gone]), np.full(4, 26.0))  # the abandoned case is ignored
    d = dept_of(m, ids)
    assert today(m, "caught", d, Violation.BOUNCED, 0) == 2.0
    assert today(m, "caught", d, Violation.BOUNCED, 1) == 1.0
    assert today(m, "sanctions", d, Violation.BOUNCED, 0) == pytest.approx(0.6)
    assert status(m, ids) == [Status.IN_TRANSIT] * 3 and status(m, gone) == [Status.ABANDONED]
    assert scheduled(m) == {Event.ARRIVE: [(int(i), 28.0) for i in ids]}
    # back at the department: it bounces again (a second return), then, at max_bounces, handles it
    lifecycle.arrive(m, ids, np.full(3, 28.0))
    assert m.cases.bounced[ids].tolist() == [2, 2, 2] and actions(m, ids) == [Action.BOUNCE] * 3
    lifecycle.arrive(m, ids, np.full(3, 60.0))
    assert actions(m, ids) == [Action.PROPER] * 3 and status(m, ids) == [Status.QUEUED] * 3
    assert m.cases.dept_arrival[ids].tolist() == [28.0] * 3  # the first arrival stands


def test_come_back_flags_nothing_without_tracking_or_when_the_platform_misjudges_the_routing():
    for settings in ({"policy.tracking": False, "platform.classification_accuracy": 1.0},
                     {"policy.tracking": True, "platform.classification_accuracy": 0.0}):
        m = make({"platform.dispatch_delay_h": 2.0, **settings})
        ids = add(m, Status.IN_TRANSIT, n=3, bounced=1)
        lifecycle.come_back(m, ids, np.full(3, 26.0))
        assert m.departments.today_caught.sum() == 0.0 and m.departments.today_sanctions.sum() == 0.0
        assert scheduled(m) == {Event.ARRIVE: [(int(i), 28.0) for i in ids]}


def test_bounce_comes_back_at_the_next_office_hour():
    # returned at 20:00 on Monday 2024-01-01 + 16 h = Tuesday 12:00 (open): 36.0; at 02:00 + 16 = 18:00 → Tue 09:00
    m = make({"platform.misroute_return_h": 16.0, "departments.hours": "office", "world.start_date": "2024-01-01"})
    ids = add(m, Status.IN_TRANSIT, n=2)
    lifecycle.bounce(m, ids, at(20.0, 2.0))
    assert m.cases.bounced[ids].tolist() == [1, 1]
    assert today(m, "committed", dept_of(m, ids), Violation.BOUNCED) == 2.0
    assert scheduled(m) == {Event.RETURN: [(int(ids[0]), 36.0), (int(ids[1]), 33.0)]}


# --------------------------------------------------------------------------------- service, reply
def test_start_service_sets_the_first_response_only_if_there_is_none():
    m = make()
    ids = add(m, Status.QUEUED, n=2)
    m.cases.first_response[ids[1]] = 4.0
    lifecycle.start_service(m, ids, at(20.0, 21.0), at(25.0, 30.5))
    assert m.cases.service_start[ids].tolist() == [20.0, 21.0]
    assert m.cases.first_response[ids].tolist() == [20.0, 4.0]
    assert status(m, ids) == [Status.IN_SERVICE] * 2
    assert m.ledger.work_hours["departments"] == pytest.approx(5.0 + 9.5)
    assert scheduled(m) == {Event.REPLY: [(int(ids[0]), 25.0), (int(ids[1]), 30.5)]}


def test_reply_ignores_cases_no_longer_in_service():
    m = make()
    ids = np.concatenate([add(m, Status.ABANDONED), add(m, Status.QUEUED), add(m, Status.CLOSED)])
    lifecycle.reply(m, ids, at(40.0, 40.0, 40.0))
    assert status(m, ids) == [Status.ABANDONED, Status.QUEUED, Status.CLOSED]
    assert np.isnan(m.cases.replied[ids]).all() and np.isnan(m.cases.closed[ids]).all()
    assert m.departments.today_committed.sum() == 0.0 and m.departments.today_late_den.sum() == 0.0
    assert scheduled(m) == {}


def test_reply_records_the_truth_of_a_proper_reply_and_a_claim_for_a_perfunctory_one():
    m = make({"departments.resolution_intercept": 50.0, "policy.callback": True, "platform.callback_share": 1.0,
              "platform.callback_delay_h": 24.0})
    ids = add(m, Status.IN_SERVICE, n=4, perfunctory=np.array([True, True, False, False]),
              tattle=np.array([False, True, False, False]))
    lifecycle.reply(m, ids, np.full(4, 40.0))
    cs = m.cases
    d = dept_of(m, ids)
    assert cs.true_resolved[ids].tolist() == [False, False, True, True]
    assert cs.recorded_resolved[ids].tolist() == [True, True, True, True]
    assert cs.replied[ids].tolist() == [40.0] * 4
    # each perfunctory reply is a violation on the department's record (by request class); proper ones are not
    assert today(m, "committed", d, Violation.PERFUNCTORY, 0) == 1.0
    assert today(m, "committed", d, Violation.PERFUNCTORY, 1) == 1.0
    assert m.departments.today_committed.sum() == 2.0 and m.departments.today_caught.sum() == 0.0
    assert status(m, ids) == [Status.AWAITING_CALLBACK] * 4
    assert scheduled(m) == {Event.CALLBACK: [(int(i), 64.0) for i in ids]}
    # a proper reply need not solve the problem, and then it is recorded as unsolved
    m = make({"departments.resolution_intercept": -50.0})
    ids = add(m, Status.IN_SERVICE, n=3)
    lifecycle.reply(m, ids, np.full(3, 40.0))
    assert not m.cases.true_resolved[ids].any() and not m.cases.recorded_resolved[ids].any()
    assert (m.cases.replied[ids] == 40.0).all() and m.departments.today_committed.sum() == 0.0


def test_reply_counts_proper_replies_after_the_due_time_for_q_late():
    m = make()
    ids = add(m, Status.IN_SERVICE, n=4, due=np.array([30.0, 50.0, 60.0, 10.0]),
              perfunctory=np.array([False, False, False, True]))
    lifecycle.reply(m, ids, np.full(4, 40.0))
    d = dept_of(m, ids)
    assert m.departments.today_late_den[d] == 3.0  # the perfunctory reply is not proper handling
    assert m.departments.today_late_num[d] == 1.0


def test_after_reply_awaits_the_callback_when_callbacks_are_made():
    m = make({"policy.callback": True, "citizens.behaviour": True, "platform.callback_share": 1.0,
              "platform.callback_delay_h": 6.0})
    ids = add(m, Status.IN_SERVICE, n=2)
    lifecycle.after_reply(m, ids, at(40.0, 41.25))
    assert status(m, ids) == [Status.AWAITING_CALLBACK] * 2
    assert m.cases.closed[ids].tolist() == [40.0, 41.25]
    assert (m.cases.satisfied[ids] == -1).all()  # not judged yet
    assert scheduled(m) == {Event.CALLBACK: [(int(ids[0]), 46.0), (int(ids[1]), 47.25)]}


def test_after_reply_calls_back_only_the_sampled_share():
    m = make({"policy.callback": True, "citizens.behaviour": True, "platform.callback_share": 0.0,
              "citizens.satisfaction_threshold": ALWAYS})
    ids = add(m, Status.IN_SERVICE, n=3)
    lifecycle.after_reply(m, ids, np.full(3, 40.0))
    assert status(m, ids) == [Status.CLOSED] * 3 and (m.cases.satisfied[ids] == 1).all()
    assert not m.cases.surveyed[ids].any()
    assert scheduled(m) == {}
    m = make({"policy.callback": True, "citizens.behaviour": True, "platform.callback_share": 0.5,
              "citizens.satisfaction_threshold": ALWAYS})
    ids = add(m, Status.IN_SERVICE, n=2000)
    lifecycle.after_reply(m, ids, np.full(2000, 40.0))
    waiting = np.array(status(m, ids)) == Status.AWAITING_CALLBACK
    assert waiting.mean() == pytest.approx(0.5, abs=0.05)
    assert (np.array(status(m, ids))[~waiting] == Status.CLOSED).all()
    assert len(scheduled(m)[Event.CALLBACK]) == waiting.sum()


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
def test_call_back_costs_operator_time_after_the_warmup_only_and_may_reopen():
    m = make({"run.warmup_days": 1, "platform.callback_minutes": 6.0, "citizens.satisfaction_threshold": NEVER,
              "citizens.reopen_propensity": 1.0, "citizens.escalation_threshold": NEVER,
              "platform.dispatch_delay_h": 2.0, "policy.reopen_allowed": True})
    waiting = add(m, Status.AWAITING_CALLBACK, n=2, replied=5.0)
    done = add(m, Status.CLOSED)
    ids = np.concatenate([waiting, done])
    lifecycle.call_back(m, ids, np.full(3, 10.0))  # in the warm-up
    assert m.ledger.work_hours["operators"] == 0.0
    # a call-back may reopen (judge is told the requester was called)
    assert status(m, ids) == [Status.IN_TRANSIT, Status.IN_TRANSIT, Status.CLOSED]
    assert m.cases.surveyed[ids].tolist() == [True, True, False]
    assert m.cases.reopened[waiting].all() and not m.cases.reopened[done[0]]
    assert m.cases.satisfied[done[0]] == -1  # a case not awaiting its call-back is not judged
    assert scheduled(m) == {Event.ARRIVE: [(int(i), 12.0) for i in waiting]}
    more = add(m, Status.AWAITING_CALLBACK, n=2, replied=25.0)
    lifecycle.call_back(m, np.concatenate([more, done]), np.full(3, 30.0))  # measured
    assert m.ledger.work_hours["operators"] == pytest.approx(2 * 6.0 / 60.0)


def test_call_back_makes_only_the_calls_the_days_budget_allows():
    # 0.1 h a day at 3 minutes a call: two calls a day; the rest are judged without a call (and cannot reopen)
    m = make({"platform.callback_hours_per_day": 0.1, "platform.callback_minutes": 3.0,
              "policy.supervision_intensity": 0.0, "citizens.satisfaction_threshold": NEVER,
              "citizens.reopen_propensity": 1.0, "citizens.escalation_threshold": NEVER,
              "policy.reopen_allowed": True, "policy.max_reopens": 5})
    ids = add(m, Status.AWAITING_CALLBACK, n=5, replied=1.0, closed=1.0)
    lifecycle.call_back(m, ids, np.full(5, 10.0))
    assert m.cases.surveyed[ids].tolist() == [True, True, False, False, False]
    assert status(m, ids) == [Status.IN_TRANSIT] * 2 + [Status.CLOSED] * 3
    assert m.platform.callback_minutes_today == pytest.approx(6.0)
    assert m.ledger.work_hours["operators"] == pytest.approx(0.1)
    # the day's budget is spent: later call-backs that day are not made
    later = add(m, Status.AWAITING_CALLBACK, n=2, replied=1.0, closed=1.0)
    lifecycle.call_back(m, later, np.full(2, 20.0))
    assert not m.cases.surveyed[later].any() and status(m, later) == [Status.CLOSED] * 2
    assert m.ledger.work_hours["operators"] == pytest.approx(0.1)
    # a new day, a new budget
    m.end_of_day(0)
    assert m.platform.callback_minutes_today == 0.0
    nxt = add(m, Status.AWAITING_CALLBACK, n=3, replied=1.0, closed=1.0)
    lifecycle.call_back(m, nxt, np.full(3, 30.0))
    assert m.cases.surveyed[nxt].tolist() == [True, True, False]


def test_call_back_catches_a_false_resolved_and_the_platform_reopens_it():
    # every requester is satisfied and nobody may reopen: only the platform's finding sends a case back
    m = make({"citizens.satisfaction_threshold": ALWAYS, "policy.reopen_allowed": False,
              "supervision.callback_sanction": 1.5, "platform.dispatch_delay_h": 2.0})
    false = add(m, Status.AWAITING_CALLBACK, n=2, replied=20.0, closed=20.0, perfunctory=True,
                recorded_resolved=True, tattle=np.array([False, True]))
    true = add(m, Status.AWAITING_CALLBACK, replied=20.0, closed=20.0, true_resolved=True, recorded_resolved=True)
    honest = add(m, Status.AWAITING_CALLBACK, replied=20.0, closed=20.0)  # unsolved, and recorded so
    ids = np.concatenate([false, true, honest])
    lifecycle.call_back(m, ids, np.full(4, 44.0))
    cs = m.cases
    d = dept_of(m, ids)
    assert today(m, "caught", d, Violation.PERFUNCTORY, 0) == 1.0
    assert today(m, "caught", d, Violation.PERFUNCTORY, 1) == 1.0
    assert today(m, "sanctions", d, Violation.PERFUNCTORY, 0) == pytest.approx(1.5)
    assert m.departments.today_caught.sum() == 2.0
    assert status(m, ids) == [Status.IN_TRANSIT] * 2 + [Status.CLOSED] * 2
    assert cs.reopened[false].all() and cs.reopen_count[false].tolist() == [1, 1]
    assert not cs.recorded_resolved[false].any() and not cs.perfunctory[false].any()
    assert (cs.satisfied[false] == -1).all() and cs.satisfied[ids[2:]].tolist() == [1, 1]
    assert cs.surveyed[ids].all()
    assert scheduled(m) == {Event.ARRIVE: [(int(i), 46.0) for i in false]}
    # a false "resolved" judged without a call is not found out
    m = make({"citizens.satisfaction_threshold": ALWAYS, "policy.callback": False})
    ids = add(m, Status.IN_SERVICE, replied=20.0, perfunctory=True, recorded_resolved=True)
    lifecycle.after_reply(m, ids, at(20.0))
    assert status(m, ids) == [Status.CLOSED] and m.departments.today_caught.sum() == 0.0


def test_judge_reopens_an_unsatisfied_case_after_a_callback():
    m = make({"citizens.satisfaction_threshold": NEVER, "citizens.reopen_propensity": 1.0,
              "policy.reopen_allowed": True, "policy.max_reopens": 1, "citizens.escalation_threshold": NEVER,
              "platform.dispatch_delay_h": 2.0})
    ids = add(m, Status.AWAITING_CALLBACK, n=2, dept_arrival=5.0, first_response=6.0, replied=20.0, closed=20.0,
              true_resolved=np.array([False, True]), recorded_resolved=True, perfunctory=np.array([True, False]))
    lifecycle.judge(m, ids, at(44.0, 45.0), callback=True)
    cs = m.cases
    assert status(m, ids) == [Status.IN_TRANSIT] * 2
    assert cs.reopened[ids].all() and cs.reopen_count[ids].tolist() == [1, 1]
    assert cs.boost[ids].tolist() == [2, 2]
    assert np.isnan(cs.closed[ids]).all() and np.isnan(cs.replied[ids]).all()
    assert (cs.satisfied[ids] == -1).all()
    assert not cs.true_resolved[ids].any() and not cs.recorded_resolved[ids].any()
    assert not cs.perfunctory[ids].any()
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


def test_judge_closes_satisfied_cases_and_the_requester_learns_from_the_truth():
    m = make({"citizens.satisfaction_threshold": ALWAYS, "citizens.reopen_propensity": 1.0})
    ids = add(m, Status.AWAITING_CALLBACK, true_resolved=True, recorded_resolved=True, channel=1)
    who = int(m.cases.citizen[ids[0]])
    trust, efficacy = m.population.trust[who], m.population.efficacy[who]
    assert m.population.last_good_channel[who] == -1
    lifecycle.judge(m, ids, at(50.0), callback=True)
    assert status(m, ids) == [Status.CLOSED] and m.cases.satisfied[ids[0]] == 1
    assert not m.cases.reopened[ids[0]]
    assert m.population.trust[who] > trust and m.population.efficacy[who] > efficacy
    assert m.population.last_good_channel[who] == 1  # the hotline worked
    # a problem only recorded as solved teaches the requester that reporting does not help
    m = make({"citizens.satisfaction_threshold": ALWAYS})
    ids = add(m, Status.AWAITING_CALLBACK, true_resolved=False, recorded_resolved=True)
    who = int(m.cases.citizen[ids[0]])
    efficacy = m.population.efficacy[who]
    lifecycle.judge(m, ids, at(50.0), callback=False)
    assert m.population.efficacy[who] < efficacy
    assert scheduled(m) == {}


def test_judge_sends_an_escalated_case_back_under_compulsion_and_sanctions_the_department():
    m = make({"citizens.satisfaction_threshold": NEVER, "citizens.escalation_threshold": ALWAYS,
              "platform.dispatch_delay_h": 2.0, "supervision.escalation_sanction": 0.25})
    ids = add(m, Status.IN_SERVICE, n=2, replied=30.0, closed=30.0, perfunctory=np.array([False, True]))
    d = dept_of(m, ids)
    lifecycle.judge(m, ids, at(30.0, 30.0), callback=False)
    cs = m.cases
    assert status(m, ids) == [Status.IN_TRANSIT] * 2
    assert cs.escalated[ids].all() and cs.supervised[ids].all() and not cs.reopened[ids].any()
    assert cs.boost[ids].tolist() == [2, 2] and (cs.satisfied[ids] == -1).all()
    assert np.isnan(cs.closed[ids]).all() and np.isnan(cs.replied[ids]).all()
    # sanctioned only for a violation the upper level sees: the perfunctory reply; the proper reply that did not
    # satisfy is pressed back but is no violation
    assert today(m, "caught", d, Violation.LATE) == 0.0
    assert m.departments.today_caught.sum() == 1.0
    assert today(m, "caught", d, Violation.PERFUNCTORY) == 1.0
    assert today(m, "sanctions", d, Violation.PERFUNCTORY) == pytest.approx(0.25)
    assert scheduled(m) == {Event.ARRIVE: [(int(i), 32.0) for i in ids]}
    # a requester escalates only once: the next unsatisfying reply closes the case
    lifecycle.judge(m, ids, at(60.0, 60.0), callback=False)
    assert status(m, ids) == [Status.CLOSED] * 2 and cs.satisfied[ids].tolist() == [0, 0]
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
    dept = dept_of(m, busy)
    lifecycle.take_up(m, np.concatenate([busy, waits]), at(0.0, 0.0), np.zeros(2, bool))
    started = deps.work(1.0, m.cases)  # one member of staff: the first starts, the second waits in line
    assert started is not None and started[0].tolist() == [int(busy[0])]
    queues = deps.queues
    assert queues.nlive[dept] == 1 and deps.waiting[dept] == 1
    lifecycle.take_up(m, fresh, at(1.5), np.zeros(1, bool))  # still among this step's arrivals
    assert deps.waiting[dept] == 2
    gone = np.concatenate([waits, fresh])
    lifecycle.lose_patience(m, gone, at(240.0, 241.5))
    assert status(m, gone) == [Status.ABANDONED] * 2
    assert m.cases.satisfied[gone].tolist() == [0, 0]
    assert deps.waiting[dept] == 0 and queues.nlive[dept] == 0
    assert deps.work(2.0, m.cases) is None  # the withdrawn arrival is never started
    assert queues.nlive[dept] == 0 and not deps.cancelled
    assert scheduled(m) == {}


def test_lose_patience_gives_up_without_a_reply_even_when_signed_for():
    m = make({"citizens.escalation_threshold": NEVER, "policy.response_mandate_hours": 24.0})
    early = np.concatenate([add(m, s) for s in (Status.AWAITING_INTAKE, Status.IN_TRANSIT, Status.NEGLECTED)])
    sat_on = add(m, Status.NEGLECTED, first_response=20.0)  # signed for and sat on: a sign-for is no reply
    signed = add(m, Status.IN_TRANSIT, first_response=20.0)
    lifecycle.take_up(m, signed, at(20.0), np.zeros(1, bool))  # signed for and waiting in the queue
    working = add(m, Status.IN_SERVICE, first_response=20.0)  # under way, not yet replied
    later = np.concatenate([add(m, s, first_response=20.0, replied=30.0)
                            for s in (Status.AWAITING_CALLBACK, Status.CLOSED)])
    ids = np.concatenate([early, sat_on, signed, working, later])
    lifecycle.lose_patience(m, ids, np.full(len(ids), 240.0))
    assert status(m, np.concatenate([early, sat_on, signed, working])) == [Status.ABANDONED] * 6
    assert status(m, later) == [Status.AWAITING_CALLBACK, Status.CLOSED]
    assert (m.cases.satisfied[later] == -1).all()
    assert m.departments.waiting.sum() == 0  # the queued case was withdrawn
    assert m.departments.work(300.0, m.cases) is None
    assert scheduled(m) == {}


def test_lose_patience_escalates_once_and_restarts_patience():
    m = make({"citizens.escalation_threshold": ALWAYS, "citizens.patience_h": 240.0,
              "supervision.escalation_sanction": 2.0, **SIT})
    neglected = add(m, Status.NEGLECTED)
    in_transit = add(m, Status.IN_TRANSIT)
    again = add(m, Status.IN_TRANSIT, escalated=True)  # escalated before: this time they give up
    ids = np.concatenate([neglected, in_transit, again])
    lifecycle.lose_patience(m, ids, at(240.0, 250.0, 260.0))
    cs = m.cases
    assert cs.escalated[ids].all() and cs.supervised[ids[:2]].all()
    # the province compels the neglected case: taken up now, at the head of the line
    assert status(m, ids) == [Status.QUEUED, Status.IN_TRANSIT, Status.ABANDONED]
    assert actions(m, neglected) == [Action.PROPER]
    assert cs.boost[ids[:2]].tolist() == [2, 2]
    assert cs.satisfied[ids].tolist() == [-1, -1, 0]
    assert today(m, "caught", dept_of(m, ids), Violation.LATE) == 2.0  # no reply: the department is sanctioned
    assert scheduled(m) == {Event.PATIENCE: [(int(neglected[0]), 480.0), (int(in_transit[0]), 490.0)]}


def test_an_escalation_before_the_due_time_presses_the_case_without_a_sanction():
    m = make({"citizens.escalation_threshold": ALWAYS, "citizens.patience_h": 100.0,
              "supervision.escalation_sanction": 2.0, **SIT})
    early = add(m, Status.NEGLECTED, due=300.0)
    overdue = add(m, Status.NEGLECTED, due=50.0)
    lifecycle.lose_patience(m, np.concatenate([early, overdue]), at(100.0, 100.0))
    assert m.cases.escalated[early].all() and m.cases.boost[early].tolist() == [2]
    assert today(m, "caught", dept_of(m, early), Violation.LATE) == 1.0  # only the overdue one
    assert today(m, "sanctions", dept_of(m, early), Violation.LATE) == pytest.approx(2.0)


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
    queues = deps.queues
    dept = int(dept_of(m, first))
    plain, pressed, ordered, escalated = (int(c[0]) for c in line)
    rows = queues.hlen[dept]
    assert queues.key_boost[[plain, pressed]].tolist() == [0, 0]
    lifecycle.press(m, np.array([pressed, ordered, escalated]), 2.0, pressure=0.0)
    assert m.cases.boost[[plain, pressed, ordered, escalated]].tolist() == [0, 1, 2, 2]
    # the pressed, ordered and escalated cases hold fresh, better keys (one new heap row each); the plain
    # one does not, and the stale rows do not count as waiting cases
    assert queues.key_boost[[pressed, ordered, escalated, plain]].tolist() == [1, 2, 2, 0]
    assert queues.hlen[dept] == rows + 3 and queues.nlive[dept] == 4
    # the compelled cases are served first, then the pressed one, the plain case last
    started = deps.work(100.0, m.cases)
    assert started is not None
    assert started[0].tolist() == [ordered, escalated, pressed, plain]
    assert started[1].tolist() == [3.0, 8.0, 13.0, 18.0]
    # pressure never lowers a boost
    lifecycle.press(m, np.array([ordered]), 50.0, pressure=0.0)
    m.cases.escalated[ordered] = False
    m.cases.supervision_level[ordered] = 0
    lifecycle.press(m, np.array([ordered]), 60.0, pressure=0.0)
    assert m.cases.boost[ordered] == 2


def test_press_has_the_department_choose_again_for_a_neglected_case():
    m = make({"departments.effort_choice": False, "policy.response_mandate_hours": 24.0,
              "departments.prior_strength": 0.0})
    ids = add(m, Status.NEGLECTED, n=2, dept_arrival=5.0)
    lifecycle.press(m, ids, 30.0, pressure=0.0)
    assert status(m, ids) == [Status.QUEUED] * 2 and actions(m, ids) == [Action.PROPER] * 2
    assert np.isnan(m.cases.first_response[ids]).all()  # nothing to fear from not signing: not signed for
    assert m.departments.waiting.sum() == 2
    (q, t), = m.departments.arrivals
    assert q.tolist() == ids.tolist() and t.tolist() == [30.0, 30.0]
    assert scheduled(m) == {}


def test_press_adds_the_pressure_to_the_cost_of_sitting():
    m = make(SIT)
    ids = add(m, Status.NEGLECTED, n=5)
    lifecycle.press(m, ids, 10.0, pressure=0.5)  # U(sit) = −0.5 still beats U(proper) = −1
    assert status(m, ids) == [Status.NEGLECTED] * 5 and m.cases.boost[ids].tolist() == [1] * 5
    assert m.departments.waiting.sum() == 0
    lifecycle.press(m, ids, 11.0, pressure=1.5)  # U(sit) = −1.5: now handling it is the lesser evil
    assert status(m, ids) == [Status.QUEUED] * 5 and actions(m, ids) == [Action.PROPER] * 5
    assert m.departments.waiting.sum() == 5
    # cases neither queued nor neglected are only marked as pressed
    other = np.concatenate([add(m, s) for s in (Status.IN_TRANSIT, Status.IN_SERVICE)])
    lifecycle.press(m, other, 12.0, pressure=100.0)
    assert status(m, other) == [Status.IN_TRANSIT, Status.IN_SERVICE] and actions(m, other) == [Action.NONE] * 2


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


def test_remind_presses_with_the_sanction_tracking_would_flag():
    # no standing observer; leaving the case would cost nothing, but the reminder signals a flag's sanction
    m = make({**SIT, "supervision.tracking_flag_sanction": 0.5})
    ids = add(m, Status.NEGLECTED, n=5)
    lifecycle.remind(m, ids, np.full(5, 11.0))
    assert status(m, ids) == [Status.NEGLECTED] * 5  # −0.5 for sitting still beats −1 for handling it
    m = make({**SIT, "supervision.tracking_flag_sanction": 1.5})
    ids = add(m, Status.NEGLECTED, n=5)
    lifecycle.remind(m, ids, np.full(5, 11.0))
    assert status(m, ids) == [Status.QUEUED] * 5


# ------------------------------------------------------------------------------------- deadlines
def test_pass_due_commits_a_late_violation_for_every_unreplied_case_and_tracking_flags_it():
    for tracking in (True, False):
        m = make({"policy.tracking": tracking, "supervision.tracking_flag_sanction": 0.3})
        unreplied = np.concatenate([add(m, s) for s in (Status.IN_TRANSIT, Status.QUEUED, Status.NEGLECTED,
                                                         Status.IN_SERVICE)])
        threat = add(m, Status.NEGLECTED, collective=True)
        other = np.concatenate([add(m, Status.AWAITING_INTAKE), add(m, Status.ABANDONED),
                                add(m, Status.AWAITING_CALLBACK, replied=50.0), add(m, Status.CLOSED, replied=50.0)])
        ids = np.concatenate([unreplied, threat, other])
        before = status(m, ids)
        lifecycle.pass_due(m, ids, np.full(len(ids), 200.0))
        d = dept_of(m, ids)
        assert status(m, ids) == before
        assert today(m, "committed", d, Violation.LATE, 0) == 4.0
        assert today(m, "committed", d, Violation.LATE, 1) == 1.0
        assert m.departments.today_committed.sum() == 5.0
        assert today(m, "caught", d, Violation.LATE, 0) == (4.0 if tracking else 0.0)
        assert today(m, "caught", d, Violation.LATE, 1) == (1.0 if tracking else 0.0)
        assert today(m, "sanctions", d, Violation.LATE, 0) == pytest.approx(1.2 if tracking else 0.0)
        assert scheduled(m) == {}


def test_pass_sign_due_commits_an_unsigned_violation_for_cases_without_a_first_response():
    for tracking in (True, False):
        m = make({"policy.tracking": tracking, "policy.response_mandate_hours": 24.0,
                  "supervision.tracking_flag_sanction": 0.4})
        unsigned = np.concatenate([add(m, s) for s in (Status.IN_TRANSIT, Status.QUEUED, Status.NEGLECTED)])
        signed = np.concatenate([add(m, s, first_response=10.0) for s in (Status.NEGLECTED, Status.IN_SERVICE)])
        replied = add(m, Status.CLOSED, first_response=10.0, replied=12.0)
        ids = np.concatenate([unsigned, signed, replied])
        lifecycle.pass_sign_due(m, ids, np.full(len(ids), 24.0))
        d = dept_of(m, ids)
        assert today(m, "committed", d, Violation.UNSIGNED) == 3.0
        assert m.departments.today_committed.sum() == 3.0  # and nothing else
        assert today(m, "caught", d, Violation.UNSIGNED) == (3.0 if tracking else 0.0)
        assert today(m, "sanctions", d, Violation.UNSIGNED) == pytest.approx(1.2 if tracking else 0.0)
        assert status(m, unsigned) == [Status.IN_TRANSIT, Status.QUEUED, Status.NEGLECTED]


def test_every_day_a_case_stays_overdue_is_another_violation_flagged_by_tracking():
    for tracking in (True, False):
        m = make({"policy.tracking": tracking, "policy.response_mandate_hours": 24.0,
                  "supervision.tracking_flag_sanction": 0.3})
        overdue = np.concatenate([add(m, Status.QUEUED, due=40.0), add(m, Status.NEGLECTED, due=10.0,
                                                                         first_response=5.0)])
        due_today = add(m, Status.QUEUED, due=60.0, first_response=5.0)  # passes its due time during day 2
        unsigned = add(m, Status.NEGLECTED, due=200.0)                 # past the 24-h sign-for deadline
        signed = add(m, Status.NEGLECTED, due=200.0, first_response=5.0)
        replied = add(m, Status.AWAITING_CALLBACK, due=10.0, replied=30.0)
        ids = np.concatenate([overdue, due_today, unsigned, signed, replied])
        before = status(m, ids)
        lifecycle.stay_overdue(m, 48.0)  # the end of day 2 (it began at hour 48)
        d = dept_of(m, ids)
        assert status(m, ids) == before
        assert today(m, "committed", d, Violation.LATE) == 2.0
        assert today(m, "committed", d, Violation.UNSIGNED) == 1.0
        assert m.departments.today_committed.sum() == 3.0
        assert today(m, "sanctions", d, Violation.LATE) == pytest.approx(0.6 if tracking else 0.0)
        assert today(m, "sanctions", d, Violation.UNSIGNED) == pytest.approx(0.3 if tracking else 0.0)


def test_a_flag_of_sanction_zero_is_no_catch():
    m = make({"policy.tracking": True, "supervision.tracking_flag_sanction": 0.0})
    ids = add(m, Status.NEGLECTED, n=3)
    lifecycle.pass_due(m, ids, np.full(3, 200.0))
    assert today(m, "committed", dept_of(m, ids), Violation.LATE) == 3.0
    assert m.departments.today_caught.sum() == 0.0 and m.departments.today_sanctions.sum() == 0.0


def test_the_ranking_sanctions_the_bottom_and_traces_only_missed_responses_to_lateness():
    m = make({"supervision.ranking_bottom_sanction": 2.0, "supervision.ranking_bottom_share": 0.67})
    unsolved = add(m, Status.CLOSED, n=2, cat=0, created=10.0, dept_arrival=11.0, first_response=12.0)
    unanswered = np.concatenate([add(m, Status.CLOSED, cat=1, created=10.0, dept_arrival=11.0, first_response=12.0,
                                     recorded_resolved=True),
                                 add(m, Status.ABANDONED, cat=1, created=10.0, dept_arrival=11.0,
                                     recorded_resolved=True)])
    good = add(m, Status.CLOSED, n=2, cat=2, created=10.0, dept_arrival=11.0, first_response=12.0,
               recorded_resolved=True)
    d_unsolved, d_unanswered, d_good = dept_of(m, unsolved), dept_of(m, unanswered), dept_of(m, good)
    assert len({d_unsolved, d_unanswered, d_good}) == 3
    bottom = m.supervisor.rank(100.0, 720.0)
    assert sorted(bottom.tolist()) == sorted([d_unsolved, d_unanswered])
    # unsolved problems name no choice: nothing enters the first department's record
    assert m.departments.today_caught[d_unsolved].sum() == 0.0
    # the second department's whole shortfall is its missed response: the full sanction, as one caught LATE
    assert today(m, "caught", d_unanswered, Violation.LATE) == 1.0
    assert today(m, "sanctions", d_unanswered, Violation.LATE) == pytest.approx(2.0)
    assert m.departments.today_caught[d_good].sum() == 0.0


# --------------------------------------------------------------------------- departments' beliefs
def test_beliefs_start_from_the_prior_whatever_the_policies():
    for policy in ({}, {"policy.tracking": False, "policy.supervision_intensity": 0.0, "policy.callback": False},
                   {"policy.response_mandate_hours": 24.0, "policy.public_ranking": True}):
        m = make({"departments.prior_strength": 10.0, "departments.prior_catch": 0.4,
                  "departments.prior_sanction": 2.5, **policy})
        t = m.departments
        every = np.arange(len(t))
        assert (t.committed == 10.0).all() and t.caught == pytest.approx(4.0) and t.sanctions == pytest.approx(10.0)
        for kind in Violation:
            for threat in (False, True):
                assert t.expected_sanction(every, kind, np.full(len(t), threat)) == pytest.approx(1.0)
            assert t.catch_rate(kind) == pytest.approx(0.4)


def test_learn_forgets_one_day_and_folds_in_the_days_record():
    m = make({"departments.prior_strength": 10.0, "departments.prior_catch": 0.5,
              "departments.prior_sanction": 1.0, "departments.belief_memory_days": 2.0})
    t = m.departments
    f = math.exp(-0.5)
    plain, threat = np.zeros(3, bool), np.ones(1, bool)
    t.commit(np.array([0, 0, 1]), Violation.LATE, plain)  # two for department 0 (repeated indices add up)
    t.commit(np.array([0]), Violation.LATE, threat)
    t.catch(np.array([0]), Violation.LATE, np.zeros(1, bool), 3.0)
    e0 = t.expected_sanction(np.array([0]), Violation.LATE, np.zeros(1, bool))
    assert e0 == pytest.approx(0.5)  # nothing counts before the department's step
    t.learn(0)
    assert t.committed[0, Violation.LATE, 0] == pytest.approx(10 * f + 2)
    assert t.caught[0, Violation.LATE, 0] == pytest.approx(5 * f + 1)
    assert t.sanctions[0, Violation.LATE, 0] == pytest.approx(5 * f + 3)
    assert t.committed[0, Violation.LATE, 1] == pytest.approx(10 * f + 1)
    assert t.committed[0, Violation.PERFUNCTORY, 0] == pytest.approx(10 * f)  # forgetting alone
    assert t.expected_sanction(np.array([0]), Violation.LATE, np.zeros(1, bool)) == pytest.approx(
        (5 * f + 3) / (10 * f + 2))
    assert t.expected_sanction(np.array([0]), Violation.LATE, np.ones(1, bool)) == pytest.approx(
        5 * f / (10 * f + 1))
    assert t.catch_rate(Violation.LATE)[0] == pytest.approx((5 * f + 1) / (10 * f + 2))
    # forgetting alone keeps the ratio
    assert t.expected_sanction(np.array([0]), Violation.BOUNCED, np.zeros(1, bool)) == pytest.approx(0.5)
    # the day's counts are used up; department 1 has not learnt yet
    assert t.today_committed[0].sum() == 0.0 and t.today_caught[0].sum() == 0.0
    assert t.today_sanctions[0].sum() == 0.0
    assert t.today_committed[1, Violation.LATE, 0] == 1.0 and t.committed[1, Violation.LATE, 0] == 10.0
    # the end of the day: every department learns at once
    m.departments.learn_all()
    assert t.committed[1, Violation.LATE, 0] == pytest.approx(10 * f + 1)
    assert t.committed[0, Violation.LATE, 0] == pytest.approx((10 * f + 2) * f)  # department 0: forgetting alone


def test_learn_of_a_quiet_record_lets_the_prior_fade_away():
    m = make({"departments.prior_strength": 20.0, "departments.belief_memory_days": 1.0})
    t = m.departments
    for _ in range(3):
        t.learn(0)
    assert t.committed[0, 0, 0] == pytest.approx(20.0 * math.exp(-3.0))
    assert t.committed[1, 0, 0] == 20.0  # only the department that learnt


def test_expected_sanction_is_zero_without_a_prior_or_a_record():
    m = make({"departments.prior_strength": 0.0})
    t = m.departments
    every, plain = np.arange(len(t)), np.zeros(len(t), bool)
    for kind in Violation:
        e = t.expected_sanction(every, kind, plain)
        assert (e == 0.0).all() and not np.isnan(e).any()
        assert (t.catch_rate(kind) == 0.0).all()
    assert (t.late_share(every) == 0.0).all()
    # committed but never caught: expects nothing
    t.commit(np.array([0, 0]), Violation.PERFUNCTORY, np.zeros(2, bool))
    t.learn(0)
    assert t.expected_sanction(np.array([0]), Violation.PERFUNCTORY, np.zeros(1, bool)) == 0.0
    # one of two caught at 3 units: 1.5 expected per violation
    t.commit(np.array([1, 1]), Violation.PERFUNCTORY, np.zeros(2, bool))
    t.catch(np.array([1]), Violation.PERFUNCTORY, np.zeros(1, bool), 3.0)
    t.learn(1)
    assert t.expected_sanction(np.array([1]), Violation.PERFUNCTORY, np.zeros(1, bool)) == pytest.approx(1.5)
    assert t.catch_rate(Violation.PERFUNCTORY)[1] == pytest.approx(0.5)


def test_a_catch_with_sanction_zero_records_nothing():
    m = make({"departments.prior_strength": 0.0})
    t = m.departments
    t.catch(np.array([0, 1]), Violation.LATE, np.zeros(2, bool), 0.0)
    t.catch(np.zeros(0, np.int64), Violation.LATE, np.zeros(0, bool), 5.0)
    assert t.today_caught.sum() == 0.0 and t.today_sanctions.sum() == 0.0
    t.catch(np.array([0]), Violation.LATE, np.zeros(1, bool), 0.5)
    assert t.today_caught.sum() == 1.0 and t.today_sanctions.sum() == pytest.approx(0.5)


def test_late_share_is_the_departments_own_record_of_late_proper_replies():
    m = make({"departments.belief_memory_days": 1e9})
    t = m.departments
    t.record_proper(np.array([0, 0, 0, 0, 1]), np.array([True, False, False, False, True]))
    assert (t.late_share(np.array([0, 1])) == 0.0).all()  # not learnt yet
    t.learn(0)
    t.learn(1)
    assert t.late_share(np.array([0, 1, 2])).tolist() == pytest.approx([0.25, 1.0, 0.0])


# ------------------------------------------------------------------------------- the action choice
def test_utilities_follow_the_rule():
    m = make({"departments.duty": 1.25, "departments.load_weight": 0.5, "departments.perfunctory_effort": 0.3,
              "departments.bounce_effort": 0.4, "departments.prior_strength": 0.0, "platform.max_bounces": 2})
    ids = add(m, Status.IN_TRANSIT, n=2, bounced=np.array([0, 2]))
    believe(m, Violation.LATE, 0.8)
    believe(m, Violation.PERFUNCTORY, 0.6)
    believe(m, Violation.BOUNCED, 0.2)
    d = dept_of(m, ids)
    m.departments.late_num[d], m.departments.late_den[d] = 1.0, 4.0  # q_late = 0.25
    u = m.choice.utilities(ids, pressure=0.7)
    assert u[0].tolist() == pytest.approx([1.25 - 1 - 0.25 * 0.8, -0.3 - 0.6, -0.8 - 0.7, -0.4 - 0.2])
    assert u[1, :3].tolist() == pytest.approx(u[0, :3].tolist()) and u[1, 3] == -np.inf  # returned twice


def test_a_higher_expected_perfunctory_sanction_lowers_only_that_utility_by_as_much():
    m = make()
    ids = add(m, Status.IN_TRANSIT, n=3, tattle=np.array([False, True, False]),
              collective=np.array([False, False, True]))
    base = m.choice.utilities(ids)
    believe(m, Violation.PERFUNCTORY, 0.0)
    m.departments.sanctions[:, Violation.PERFUNCTORY, 1] = 2.5  # only requests with a threat (either kind)
    u = m.choice.utilities(ids)
    assert u[0, 1] == pytest.approx(base[0, 1] + 0.3)  # the prior's 0.3 is gone for plain requests
    assert u[1:, 1].tolist() == pytest.approx((base[1:, 1] + 0.3 - 2.5).tolist())
    assert np.delete(u, 1, axis=1) == pytest.approx(np.delete(base, 1, axis=1))


def test_load_raises_the_effort_of_every_action_but_sitting():
    m = make({"departments.load_weight": 0.5, "departments.perfunctory_effort": 0.3,
              "departments.bounce_effort": 0.4})
    ids = add(m, Status.IN_TRANSIT)
    d = dept_of(m, ids)
    idle = m.choice.utilities(ids)[0]
    m.departments.waiting[d] = 2 * m.departments.staff[d]  # two waiting cases per member of staff: c = 2
    busy = m.choice.utilities(ids)[0]
    assert (busy - idle).tolist() == pytest.approx([-1.0, -0.3, 0.0, -0.4])


def test_decide_is_a_logit_over_the_utilities():
    m = make({"departments.choice_noise": 0.5})
    ids = add(m, Status.IN_TRANSIT, n=6000)
    u = m.choice.utilities(ids[:1])[0]
    p = np.exp(u / 0.5) / np.exp(u / 0.5).sum()
    picked = m.choice.decide(ids, m.rng_departments)
    share = [(picked == a).mean() for a in (Action.PROPER, Action.PERFUNCTORY, Action.SIT, Action.BOUNCE)]
    assert min(p) > 0.02  # a real lottery over all four
    assert share == pytest.approx(p.tolist(), abs=0.025)
    # without the effort choice every case is handled properly
    m = make({"departments.effort_choice": False})
    ids = add(m, Status.IN_TRANSIT, n=50)
    assert (m.choice.decide(ids, m.rng_departments) == Action.PROPER).all()


def test_sign_now_chance_rises_with_the_excess_expected_sanction():
    m = make({"policy.response_mandate_hours": 24.0, "departments.sign_effort": 0.05,
              "departments.choice_noise": 0.5})
    ids = add(m, Status.IN_TRANSIT, n=6000)
    believe(m, Violation.UNSIGNED, 0.05 + 0.5 * math.log(2.0))  # P(sign) = 1 − exp(−ln 2) = 1/2
    assert m.choice.sign_now(ids, m.rng_mandate).mean() == pytest.approx(0.5, abs=0.025)
    believe(m, Violation.UNSIGNED, 0.05 + 0.5 * math.log(10.0))  # P(sign) = 0.9
    assert m.choice.sign_now(ids, m.rng_mandate).mean() == pytest.approx(0.9, abs=0.02)


def test_resolve_probability_rises_under_supervision_or_escalation():
    m = make({"departments.resolution_intercept": 0.6, "departments.resolution_difficulty_weight": 3.0,
              "departments.supervised_resolution_bonus": 1.0})
    ids = add(m, Status.IN_SERVICE, n=3, supervised=np.array([False, True, False]),
              escalated=np.array([False, False, True]))
    diff = m.demand.category_difficulty[0]
    p = m.choice.resolve_probability(ids)
    x = 0.6 - 3.0 * diff
    assert p.tolist() == pytest.approx([1 / (1 + math.exp(-x)), 1 / (1 + math.exp(-x - 1)), 1 / (1 + math.exp(-x - 1))])
