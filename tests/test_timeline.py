"""A scenario's ``timeline``: dated policy changes inside one run (sim/scenario.py, sim/levers.py,
GovernanceModel.change_policy).

Schema errors name the file, the key and what is allowed; a change takes effect exactly at the start of its day
and only for what comes after (new cases, orders dispatched from then on); cases already in the system keep
what they were given; a timeline that changes nothing changes no result; runs are deterministic."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim import ScenarioError, load_scenario, run_scenario
from sim.levers import NO_DEADLINE, ResponseMandate
from sim.model import GovernanceModel
from sim.scenario import DispatchMode, Scenario, validate

ROOT = Path(__file__).resolve().parents[1]
DAY = 10  # the day of the change in the runs below
H = DAY * 24.0

#: a small, quick city: the default city's hierarchy and staff, fewer requesters, a short run, no warm-up
SMALL = {"world.population": 6000, "run.days": 24, "run.warmup_days": 0}


@cache
def _base() -> Scenario:
    return load_scenario(ROOT / "scenarios/validation/t3_beijing_before.yaml", SMALL)


def _with(timeline: list[dict], base: Scenario | None = None, **policy) -> Scenario:
    d = (base or _base()).to_dict()
    d["policy"].update(policy)
    d["timeline"] = timeline
    return validate(d, "test")


@cache
def _run(sc_json: str, seed: int = 5):
    return run_scenario(Scenario.model_validate_json(sc_json), seed=seed)


def run(sc: Scenario, seed: int = 5):
    return _run(sc.model_dump_json(), seed)


def digest(result) -> str:
    h = hashlib.sha256()
    for df in (result.cases, result.timeseries):
        h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    h.update(repr(sorted((k, round(v, 12)) for k, v in result.summary.items() if v == v)).encode())
    return h.hexdigest()


# ------------------------------------------------------------------------------------------- schema
def _write(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "tl.yaml"
    p.write_text("extends: " + str(ROOT / "scenarios/default.yaml") + "\nrun: {days: 30, warmup_days: 5}\n"
                 + body, encoding="utf-8")
    return p


@pytest.mark.parametrize(("body", "expected"), [
    ("timeline:\n  - {day: 3, set: {bogus: 1}}\n", ["timeline.0.set.bogus", "unknown key", "response_mandate_hours"]),
    ("timeline:\n  - {day: 3, set: {operators: 5}}\n", ["timeline.0.set.operators", "unknown key", "dispatch_mode"]),
    ("timeline:\n  - {day: 3, set: {dispatch_mode: teleport}}\n",
     ["timeline.0.set.dispatch_mode", "'cascade' or 'direct'", "teleport"]),
    ("timeline:\n  - {day: 3, set: {supervision_intensity: -2}}\n",
     ["timeline.0.set.supervision_intensity", "greater than or equal to 0"]),
    ("timeline:\n  - {day: 3, date: 2024-01-04, set: {tracking: false}}\n", ["timeline.0", "exactly one of", "not both"]),
    ("timeline:\n  - {set: {tracking: false}}\n", ["timeline.0", "exactly one of 'date'"]),
    ("timeline:\n  - {day: 3, set: {}}\n", ["timeline.0", "changes nothing", "supervision_intensity"]),
    ("timeline:\n  - {day: 3}\n", ["timeline.0.set", "required"]),
    ("timeline:\n  - {date: 2023-12-31, set: {tracking: false}}\n",
     ["'timeline'", "entry 0", "before the run starts", "from 2024-01-01", "to 2024-02-04", "days 0 to 34"]),
    ("timeline:\n  - {day: 35, set: {tracking: false}}\n", ["'timeline'", "entry 0", "after the run ends", "0 to 34"]),
    ("timeline:\n  - {day: 9, set: {tracking: false}}\n  - {date: 2024-01-05, set: {tracking: true}}\n",
     ["'timeline'", "entry 1", "not later than entry 0", "date order"]),
    ("timeline:\n  - {day: 4, set: {tracking: false}}\n  - {day: 4, set: {callback: false}}\n",
     ["entry 1", "not later than entry 0", "one per day"]),
    ("timeline:\n  - {date: 2024-02-30, set: {tracking: false}}\n", ["malformed YAML", "day is out of range", "YYYY-MM-DD"]),
    ("timeline:\n  - {date: '30 Feb 2024', set: {tracking: false}}\n", ["timeline.0.date", "valid date"]),
    ("timeline:\n  - {day: 2, set: {resolution_deadline_days: {nowhere: 3}}}\n",
     ["timeline.0.set.resolution_deadline_days", "nowhere", "known"]),
    ("timeline: {day: 3}\n", ["'timeline'", "valid list"]),
])
def test_bad_timeline_is_a_scenario_error_naming_file_key_and_allowed(tmp_path, body, expected):
    path = _write(tmp_path, body)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    msg = str(err.value)
    assert str(path) in msg
    for part in expected:
        assert part in msg, msg


def test_a_good_timeline_loads_round_trips_and_resolves_dates(tmp_path):
    path = _write(tmp_path, "timeline:\n  - {date: 2024-01-04, set: {response_mandate_hours: 24, dispatch_mode: direct}}\n"
                            "  - {day: 20, set: {response_mandate_hours: null, supervision_intensity: 40}}\n")
    sc = load_scenario(path)
    assert sc.policy_changes() == [(3, {"response_mandate_hours": 24.0, "dispatch_mode": DispatchMode.DIRECT}),
                                   (20, {"response_mandate_hours": None, "supervision_intensity": 40.0})]
    # only the keys given are written back, so the scenario round-trips (and --set overrides keep the timeline)
    assert sc.to_dict()["timeline"][1] == {"day": 20, "set": {"response_mandate_hours": None,
                                                                "supervision_intensity": 40.0}}
    assert validate(sc.to_dict()).policy_changes() == sc.policy_changes()
    assert sc.with_overrides({"policy.tracking": False}).policy_changes() == sc.policy_changes()


def test_no_timeline_dumps_and_fingerprints_as_before():
    sc = _base()
    assert "timeline" not in sc.to_dict()
    d = sc.to_dict()
    d["timeline"] = []
    assert validate(d).fingerprint() == sc.fingerprint()


def test_the_beijing_timeline_file_loads():
    sc = load_scenario(ROOT / "scenarios/validation/beijing_timeline.yaml")
    [(day, changes)] = sc.policy_changes()
    assert day == 184  # 2019-01-01, from 2018-07-01
    assert sc.policy.dispatch_mode == DispatchMode.CASCADE and sc.policy.response_mandate_hours is None
    assert changes["dispatch_mode"] == DispatchMode.DIRECT and changes["response_mandate_hours"] == 24


# ------------------------------------------------------------------------------------ the mandate lever
def test_a_changed_mandate_keeps_each_case_the_mandate_it_was_created_under():
    m = ResponseMandate(None).then(24.0, since_h=100.0).then(48.0, since_h=200.0)
    created = np.array([5.0, 99.9, 100.0, 150.0, 200.0])
    assert np.array_equal(m.hours_for(created), [np.nan, np.nan, 24.0, 24.0, 48.0], equal_nan=True)
    assert m.deadline(created).tolist() == [NO_DEADLINE, NO_DEADLINE, 124.0, 174.0, 248.0]
    assert m.deadline(created[:2]) is None
    assert m.covers(created).tolist() == [False, False, True, True, True]
    first = np.full(5, np.nan)
    assert m.unsigned_past_deadline(created, first, 240.0).tolist() == [False, False, True, True, False]
    same = ResponseMandate(24.0)
    assert same.then(24.0, since_h=50.0) is same  # no change, no history


# ------------------------------------------------------------------------------------------ in a run
def test_no_timeline_and_an_empty_or_idle_timeline_give_identical_results():
    ref = digest(run(_base()))
    assert digest(run(_with([]))) == ref
    idle = [{"day": DAY, "set": {"response_mandate_hours": None, "dispatch_mode": "cascade", "callback": False,
                                 "supervision_intensity": 10.0, "public_ranking": False, "platform_hours": "7x24"}}]
    r = run(_with(idle))
    assert digest(r) == ref
    assert [c["day"] for c in r.meta["policy_changes"]] == [DAY]


def test_same_seed_same_results_with_a_timeline():
    sc = _with([{"day": DAY, "set": {"dispatch_mode": "direct", "response_mandate_hours": 24, "callback": True}}])
    a = run_scenario(sc, seed=9)
    b = run_scenario(sc, seed=9)
    assert digest(a) == digest(b)
    assert a.meta["policy_changes"] == [{"day": DAY, "date": "2024-01-11", "hour": H,
                                         "keys": ["callback", "dispatch_mode", "response_mandate_hours"],
                                         "set": {"callback": True, "dispatch_mode": "direct",
                                                 "response_mandate_hours": 24.0}}]


def test_the_run_is_the_same_as_without_the_change_until_its_day():
    base = run(_base())
    sc = _with([{"day": DAY, "set": {"supervision_intensity": 60, "response_mandate_hours": 24}}])
    r = run(sc)
    recorded = ["day", "problems", "arrivals", "backlog", "overdue", "neglected", "inspections", "callbacks",
                "mean_trust"]  # the model's own daily rows (the rates by day of creation include later outcomes)
    early = base.timeseries["day"] < DAY
    assert r.timeseries.loc[early, recorded].equals(base.timeseries.loc[early, recorded])
    assert not r.timeseries.loc[~early, recorded].equals(base.timeseries.loc[~early, recorded])


def test_a_mandate_applies_to_cases_created_from_its_day():
    sc = _with([{"day": DAY, "set": {"response_mandate_hours": 24}}])
    m = GovernanceModel(sc, seed=5)
    m.run()
    cs = m.cases
    created = cs.created[: cs.n]
    deadline = m.levers.mandate.deadline(created)
    assert (deadline[created < H] == NO_DEADLINE).all()
    assert np.array_equal(deadline[created >= H], created[created >= H] + 24.0)
    # observed: a sign-for (a first response before work starts, with no perfunctory reply, reopening or
    # escalation in the case's history) happens only to cases that reached their department after the change
    c = m.result().cases
    clean = ~c["reopened"] & ~c["perfunctory"] & ~c["escalated"] & c["service_start_h"].notna()
    signed = clean & (c["first_response_h"] < c["service_start_h"])
    assert not signed[c["dept_arrival_h"] < H].any()
    assert signed[c["created_h"] >= H].sum() > 5


def test_raised_supervision_shows_in_inspections_from_its_day():
    sc = _with([{"day": DAY, "set": {"supervision_intensity": 60}}])
    ts = run(sc).timeseries.set_index("day")["inspections"]
    assert ts.loc[: DAY - 1].max() <= 11  # the city's 10 a day and the province's 1
    assert ts.loc[DAY] > 30  # the jump: overdue cases first, then audits, as many as there are to inspect
    assert ts.loc[DAY:].mean() > 2 * ts.loc[: DAY - 1].mean()


def test_county_offices_open_when_their_budget_becomes_positive():
    sc = _with([{"day": DAY, "set": {"county_supervision_intensity": 3, "upper_supervision_intensity": 0}}])
    m = GovernanceModel(sc, seed=5)
    assert m.county_supervisors == [] and m.upper_supervisor in m.supervisors
    for _ in range(int(H) + 1):
        m.step()
    assert [o.county for o in m.county_supervisors] == list(range(m.hierarchy.n_counties))
    assert m.supervisors == [m.supervisor, *m.county_supervisors]  # the province's office has no budget now
    assert all(o.budget.intensity == 3.0 for o in m.county_supervisors)
    m.run()
    assert sum(o.inspections + o.audits for o in m.county_supervisors) > 0


def test_direct_dispatch_applies_to_orders_dispatched_from_its_day():
    sc = _with([{"day": DAY, "set": {"dispatch_mode": "direct"}}])
    c = run(sc).cases
    m = GovernanceModel(sc, seed=5)
    hier = m.hierarchy
    cat = c["category"].cat.codes.to_numpy()
    twp = c["region"].to_numpy()
    cascade_len = hier.route_len[DispatchMode.CASCADE][cat, twp]
    sent = c["dispatched_h"].notna().to_numpy()
    after = sent & (c["accepted_h"] >= H).to_numpy()  # routed at acceptance; dispatched_h adds the desk's delay
    before = sent & (c["accepted_h"] < H).to_numpy()
    assert after.sum() > 100 and before.sum() > 100
    assert (c["hops"].to_numpy()[after] == 1).all()
    assert (c["hops"].to_numpy()[before] == cascade_len[before]).all()
    assert (cascade_len[before] > 1).sum() > 50
    # orders relayed before the change and still on their way at its day go on through their relays to their
    # handling department
    in_flight = before & (c["dept_arrival_h"] >= H).to_numpy() & (cascade_len > 1)
    assert in_flight.sum() > 5
    done = in_flight & (c["status"].astype(str) == "closed").to_numpy()
    assert (c["holder"].astype(str).to_numpy()[done] == c["department"].astype(str).to_numpy()[done]).all()
    assert (c["dept_arrival_h"].to_numpy()[in_flight] - c["dispatched_h"].to_numpy()[in_flight] > 0).all()


def test_call_backs_and_ranking_start_on_their_day():
    sc = _with([{"day": DAY, "set": {"callback": True, "reopen_allowed": True, "public_ranking": True}}],
               **{"public_ranking": False})
    sc = sc.with_overrides({"run.days": 40})
    m = GovernanceModel(sc, seed=5)
    m.run()
    ts = m.result().timeseries.set_index("day")["callbacks"]
    assert (ts.loc[: DAY - 1] == 0).all() and ts.loc[DAY:].sum() > 100
    assert [d for d, _ in m.rankings] == [29]


def test_platform_hours_and_systemic_fix_window_change_mid_run():
    sc = _with([{"day": DAY, "set": {"platform_hours": "7x24", "systemic_fix_window_days": 7}}],
               platform_hours="office")
    m = GovernanceModel(sc, seed=5)
    assert not m.platform.always_open and m.platform.complaints.shape[0] == 30
    m.run()
    assert m.platform.always_open and m.platform.queue.always_open and m.platform.complaints.shape[0] == 7
    c = m.result().cases
    acc = c["accepted_h"].dropna().to_numpy()
    night = (acc % 24 < 8) | (acc % 24 >= 18)  # hours the office-hours platform is closed on any day
    assert not night[acc < H].any()
    assert night[acc >= H].sum() > 10
