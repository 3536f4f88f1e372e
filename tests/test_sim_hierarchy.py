"""The hierarchy carries work both ways: routes read from the networkx graph, relays that are staffed queues
with the departments' behaviour, five levels that hold cases, and problems that come back when unsolved."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sim import lifecycle
from sim.cases import Action, Status
from sim.hierarchy import LEVEL_INDEX, Hierarchy
from sim.lifecycle import Event
from sim.model import GovernanceModel
from sim.scenario import DispatchMode, Level, Scenario

SMALL: dict[str, Any] = {"world.population": 400, "world.counties": 2, "world.townships": 4, "run.days": 5,
                         "departments.hours": "7x24", "platform.classification_accuracy": 1.0,
                         "platform.handover_delay_h": 0.0, "citizens.max_repeats": 0}
#: every department and relay handles every case properly (no prior, a duty far above any cost)
PROPER = {"departments.prior_strength": 0.0, "departments.choice_noise": 0.01, "departments.duty": 100.0,
          "platform.max_bounces": 0}


def make(overrides: dict[str, Any] | None = None) -> GovernanceModel:
    return GovernanceModel(Scenario().with_overrides({**SMALL, **(overrides or {})}), seed=1)


def scheduled(m: GovernanceModel, horizon: int = 3000) -> dict[Event, list[tuple[int, float]]]:
    out: dict[Event, list[tuple[int, float]]] = {}
    for hour in range(horizon):
        for event, (ids, times) in m.agenda.pop(hour).items():
            out.setdefault(Event(event), []).extend(zip(ids.tolist(), times.tolist(), strict=True))
    return {e: sorted(v) for e, v in out.items()}


def new_case(m: GovernanceModel, category: str, township: int, created: float = 0.0) -> np.ndarray:
    c = m.category_names.index(category)
    citizen = int(np.flatnonzero(m.population.region == township)[0])
    return m.demand.open_cases(citizen=np.array([citizen]), category=np.array([c], np.int8),
                               region=np.array([township], np.int32), channel=np.zeros(1, np.int8),
                               created=np.array([created]))


# ------------------------------------------------------------------------------------------ routes
def test_routes_are_read_from_the_graph_and_follow_it_when_it_changes():
    h = Hierarchy(Scenario().with_overrides(SMALL), np.random.default_rng(0))
    c = h.categories.index("city_management")
    assert h.route("city_management", 3, DispatchMode.CASCADE) == [
        "platform", "dept:city_management@prefecture", "dept:city_management@county:1",
        "dept:city_management@township:3"]
    assert h.route("city_management", 3, DispatchMode.DIRECT) == ["platform", "dept:city_management@township:3"]
    housing = h.categories.index("housing")
    assert h.departments[int(h.handler[housing, 3])].node == "dept:housing@county:1"
    # move township 3 from county 1 to county 0 and give the new county's bureau the counterpart edge
    g = h.graph
    g.remove_edge("county:1", "township:3")
    g.add_edge("county:0", "township:3", kind="admin")
    g.remove_edge("dept:city_management@county:1", "dept:city_management@township:3")
    g.add_edge("dept:city_management@county:0", "dept:city_management@township:3", kind="counterpart")
    h.compute_routes()
    assert h.township_county[3] == 0
    assert h.departments[int(h.handler[housing, 3])].node == "dept:housing@county:0"
    assert h.route("city_management", 3, DispatchMode.CASCADE)[2] == "dept:city_management@county:0"
    assert int(h.handler[c, 3]) == g.nodes["dept:city_management@township:3"]["index"]
    # a broken chain is an error naming what cannot be reached
    g.remove_edge("dept:city_management@county:0", "dept:city_management@township:3")
    with pytest.raises(ValueError, match="cannot reach dept:city_management@township:3"):
        h.compute_routes()


def test_five_levels_have_departments_and_upper_matters_are_forwarded_up():
    h = Hierarchy(Scenario().with_overrides(SMALL), np.random.default_rng(0))
    handling = {d.level for d in h.departments if d.role == "department"}
    assert handling == set(Level)
    assert h.route("telecom_post", 0, DispatchMode.CASCADE) == [
        "platform", "dept:telecom_post@prefecture", "dept:telecom_post@province", "dept:telecom_post@central"]
    assert [h.departments[i].role for i in h.routes[DispatchMode.CASCADE][h.categories.index("telecom_post"), 0]
            ] == ["relay", "relay", "department"]
    assert h.route("provincial_affairs", 2, DispatchMode.DIRECT) == ["platform", "dept:provincial_affairs@province"]
    # every relay is staffed from the department budget
    relays = [d for d in h.departments if d.role == "relay"]
    assert relays and all(d.staff == 1 for d in relays)
    assert h.dept_relay.sum() == len(relays)


# ------------------------------------------------------------------------------------------ relays
def test_a_relay_queues_the_order_works_it_and_passes_it_down_without_replying():
    m = make({**PROPER, "departments.relay_handling_h": 2.0, "departments.relay_handling_sigma": 0.0,
              "platform.dispatch_delay_h": 1.0, "policy.response_mandate_hours": 24.0})
    ids = new_case(m, "city_management", 3)
    cs = m.cases
    route = m.demand.routes[cs.category[ids[0]], 3]
    assert cs.hops[ids[0]] == 3 and cs.dept[ids[0]] == route[0] and m.departments.relay[route[0]]
    lifecycle.dispatch(m, ids, np.array([1.0]))
    assert scheduled(m)[Event.ARRIVE] == [(int(ids[0]), 2.0)]
    for hop in (0, 1):  # the prefecture's relay, then the county's
        lifecycle.arrive(m, ids, np.array([2.0 + 2 * hop]))
        assert cs.dept[ids[0]] == route[hop] and cs.status[ids[0]] == Status.QUEUED
        assert cs.action[ids[0]] == Action.PROPER and np.isnan(cs.first_response[ids[0]])  # no sign-for
        assert cs.relay_time[ids[0]] == pytest.approx(2.0)
        started = m.departments.work(3.0 + 2 * hop, cs)
        assert started is not None
        lifecycle.start_service(m, *started)
        assert np.isnan(cs.first_response[ids[0]]) and np.isnan(cs.service_start[ids[0]])  # not a response
        assert scheduled(m) == {Event.FORWARD: [(int(ids[0]), 4.0 + 2 * hop)]}
        lifecycle.forward(m, ids, np.array([4.0 + 2 * hop]))
        assert cs.route_pos[ids[0]] == hop + 1 and cs.status[ids[0]] == Status.IN_TRANSIT
        assert scheduled(m) == {Event.ARRIVE: [(int(ids[0]), 4.0 + 2 * hop)]}
    lifecycle.arrive(m, ids, np.array([6.0]))
    assert cs.dept[ids[0]] == cs.handler[ids[0]] == route[2]
    assert cs.dept_arrival[ids[0]] == 6.0
    t = m.departments  # each relay started it at once: one start, no wait
    assert t.starts[route[0]] == t.starts[route[1]] == 1 and t.wait_h[route[0]] == t.wait_h[route[1]] == 0.0
    lifecycle.start_service(m, *m.departments.work(7.0, cs))  # the township office's start is the first response
    assert cs.first_response[ids[0]] == cs.service_start[ids[0]] == 6.0
    assert Event.REPLY in scheduled(m)


def test_relays_cannot_reply_perfunctorily_but_can_sit_or_bounce():
    m = make({"departments.prior_strength": 0.0, "departments.perfunctory_effort": 0.0})
    ids = np.concatenate([new_case(m, "city_management", 0), new_case(m, "utilities", 0)])
    u = m.choice.utilities(ids)
    assert m.departments.relay[m.cases.dept[ids]].tolist() == [True, False]
    assert u[0, 1] == -np.inf and np.isfinite(u[1, 1])
    assert np.isfinite(u[0, 2]) and np.isfinite(u[0, 3])  # sit and bounce stay open


def test_an_overdue_order_stuck_at_a_relay_is_the_relays_violation():
    m = make({"policy.tracking": True, "supervision.tracking_flag_sanction": 0.5})
    ids = new_case(m, "city_management", 0)
    relay = int(m.cases.dept[ids[0]])
    m.cases.status[ids] = Status.NEGLECTED
    lifecycle.pass_due(m, ids, np.array([float(m.cases.due[ids[0]])]))
    assert m.departments.today_committed[relay].sum() == 1.0
    assert m.departments.today_sanctions[relay].sum() == pytest.approx(0.5)
    assert m.departments.today_committed[int(m.cases.handler[ids[0]])].sum() == 0.0


def test_the_city_cannot_sanction_a_department_above_it_in_full():
    m = make({"policy.tracking": True, "supervision.tracking_flag_sanction": 1.0,
              "supervision.upper_level_weight": 0.25})
    up = new_case(m, "provincial_affairs", 0)
    city = new_case(m, "utilities", 0)
    for ids in (up, city):
        m.cases.dept[ids] = m.cases.handler[ids]
    ids = np.concatenate([up, city])
    m.cases.status[ids] = Status.NEGLECTED
    lifecycle.pass_due(m, ids, m.cases.due[ids])
    t = m.departments
    assert t.today_sanctions[int(m.cases.handler[up[0]])].sum() == pytest.approx(0.25)
    assert t.today_sanctions[int(m.cases.handler[city[0]])].sum() == pytest.approx(1.0)
    # the city's office inspects only its own; the province's office only what is above the prefecture
    assert m.supervisor._mine(ids).tolist() == city.tolist()
    assert m.upper_supervisor._mine(ids).tolist() == up.tolist()
    assert m.upper_supervisor in m.supervisors


# ------------------------------------------------------------------------------------------ repeats
def _final(m: GovernanceModel, solved: bool) -> np.ndarray:
    ids = new_case(m, "city_management", 0)
    cs = m.cases
    cs.replied[ids] = cs.closed[ids] = 50.0
    cs.true_resolved[ids] = cs.recorded_resolved[ids] = solved
    cs.status[ids] = Status.AWAITING_CALLBACK
    return ids


def test_an_unsolved_problem_is_reported_again_and_a_solved_one_is_not():
    m = make({"citizens.max_repeats": 2, "citizens.repeat_delay_days": 3.0, "citizens.report_threshold": -100.0,
              "citizens.satisfaction_threshold": 100.0, "citizens.escalation_threshold": 100.0,
              "policy.callback": False})
    unsolved, solved = _final(m, False), _final(m, True)
    ids = np.concatenate([unsolved, solved])
    lifecycle.judge(m, ids, np.array([50.0, 50.0]), callback=False)
    assert (m.cases.status[ids] == Status.CLOSED).all()
    later = scheduled(m)
    assert [i for i, _ in later[Event.RECONSIDER]] == [int(unsolved[0])]  # only the unsolved one comes back
    when = later[Event.RECONSIDER][0][1]
    assert when > 50.0
    n = m.cases.n
    lifecycle.reconsider(m, unsolved, np.array([when]))
    assert m.cases.n == n + 1
    repeat = n
    cs = m.cases
    assert cs.repeat_of[repeat] == unsolved[0] and cs.repeat_count[repeat] == 1
    assert cs.citizen[repeat] == cs.citizen[unsolved[0]] and cs.category[repeat] == cs.category[unsolved[0]]
    assert cs.status[repeat] == Status.AWAITING_INTAKE and cs.created[repeat] == np.floor(when) + 1  # next hour
    assert cs.repeat_of[unsolved[0]] == -1 and cs.repeat_of[solved[0]] == -1


def test_nobody_reports_a_problem_more_often_than_allowed_or_without_reason_to():
    m = make({"citizens.max_repeats": 1, "citizens.report_threshold": -100.0,
              "citizens.satisfaction_threshold": 100.0, "citizens.escalation_threshold": 100.0})
    ids = _final(m, False)
    m.cases.repeat_count[ids] = 1  # already the first repeat
    lifecycle.judge(m, ids, np.array([50.0]), callback=False)
    assert Event.RECONSIDER not in scheduled(m)
    # a requester who sees no point (reporting threshold far above any propensity) does not report again
    m = make({"citizens.max_repeats": 3, "citizens.report_threshold": 100.0})
    ids = _final(m, False)
    n = m.cases.n
    lifecycle.reconsider(m, ids, np.array([80.0]))
    assert m.cases.n == n


def test_repeat_reports_happen_in_a_run_and_are_measured_separately(root):
    from sim import load_scenario, run_scenario

    sc = load_scenario(root / "scenarios" / "default.yaml").with_overrides({"run.days": 45, "run.warmup_days": 15})
    result = run_scenario(sc, seed=3)
    cases = result.cases
    rep = cases["repeat_of"].to_numpy() >= 0
    assert 0 < rep.mean() < 0.5
    assert result.summary["repeat_share"] == pytest.approx(rep.mean())
    assert 0 <= result.summary["repeat_true_resolution_rate"] <= 1
    # every repeat points at an earlier case of the same requester and category
    earlier = cases.set_index("case_id")
    ref = cases[rep]
    known = ref["repeat_of"].isin(earlier.index)
    assert (ref.loc[known, "repeat_of"].to_numpy() < ref.loc[known, "case_id"].to_numpy()).all()
    assert (earlier.loc[ref.loc[known, "repeat_of"], "citizen_id"].to_numpy()
            == ref.loc[known, "citizen_id"].to_numpy()).all()


def test_every_level_holds_work_in_a_run(root):
    from sim import load_scenario, run_scenario

    sc = load_scenario(root / "scenarios" / "default.yaml").with_overrides({"run.days": 30, "run.warmup_days": 5})
    cases = run_scenario(sc, seed=2).cases
    held = set(cases["handling_level"].astype(str))
    assert {lv.value for lv in Level} <= held
    assert LEVEL_INDEX[Level.CENTRAL] == 0
    # each level's share of the cases is its declared share: the problem rates of its categories (± noise)
    m = GovernanceModel(sc, seed=2)
    rate = m.demand.base_rate.sum(axis=1)
    level_of = {name: int(m.hierarchy.jurisdiction_index[c]) for c, name in enumerate(m.category_names)}
    observed = cases["category"].astype(str).map(level_of).value_counts(normalize=True)
    for li in range(5):
        declared = rate[m.hierarchy.jurisdiction_index == li].sum() / rate.sum()
        n = len(cases)
        assert abs(observed.get(li, 0.0) - declared) <= 4 * np.sqrt(declared * (1 - declared) / n) + 0.01, (
            li, observed.get(li, 0.0), declared)


def test_a_fixed_stream_of_reports_gets_no_repeats_on_top():
    """An observed stream of requests (demand.requests_per_day) already holds its repeat reports."""
    for stream, expected in ((None, True), (200.0, False)):
        m = make({"citizens.max_repeats": 3, "demand.requests_per_day": stream})
        ids = _final(m, False)
        lifecycle.persist(m, ids, np.array([50.0]))
        assert (Event.RECONSIDER in scheduled(m)) is expected, stream
