"""Budgets that bind (issue 11): the hours ledger, staff as inputs, explicit staff planning, and the KPIs of
recorded against true outcomes.

Quick tests: the ledger's arithmetic; the resolution KPIs and the gaming gap on a hand-made cases table; the
daily cost and work hours; plan_staff against a hand computation; the plan-staff command (round trip and bad
input); unknown department names; every shipped scenario states its budget. One short integration test runs
baseline, zzic and combined and checks that they pay for the same department hours.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

import run as cli
from sim import ScenarioError, load_scenario, run_scenario, validate
from sim.budgets import ROLES, HoursLedger, expected_load, plan_staff
from sim.hierarchy import Hierarchy
from sim.metrics import kpis, timeseries_frame
from sim.results import KPI_DOCS, KPI_NAMES, KPI_UNITS

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"


# ------------------------------------------------------------------------------------------ the ledger
def test_ledger_counts_after_the_warmup_and_adds_up():
    led = HoursLedger(warmup_h=24.0)
    led.paid("departments", 10.0, 23.0)   # warm-up: not counted
    led.work("departments", 4.0, 23.99)
    led.paid("departments", 10.0, 24.0)   # the first measured hour
    led.paid("departments", 10.0, 25.0)
    led.work("departments", 7.5, 24.5)
    for t in (23.0, 24.0, 25.0, 26.0):    # department servers exist every hour, open or not
        led.servers(10.0, t)
    led.paid("operators", 3.0, 30.0)
    led.work("operators", 0.05, 30.0)     # one 3-minute call-back
    k = led.kpis()
    assert k["capacity_hours_departments"] == 20.0 and k["work_hours_departments"] == 7.5
    assert k["capacity_hours_operators"] == 3.0 and k["work_hours_operators"] == pytest.approx(0.05)
    assert k["capacity_hours_supervisors"] == 0.0 and k["work_hours_supervisors"] == 0.0
    assert k["capacity_hours"] == 23.0 and k["cost_hours"] == 23.0
    assert k["work_hours"] == pytest.approx(7.55)
    assert k["utilisation_departments"] == pytest.approx(7.5 / 30.0)  # occupancy over staff × all hours
    assert k["utilisation_operators"] == pytest.approx(0.05 / 3.0)
    assert math.isnan(k["utilisation_supervisors"])  # nothing paid: undefined, not zero
    assert led.day_row() == {"cost_hours_cum": 23.0, "work_hours_cum": pytest.approx(7.55)}


def test_every_budget_kpi_is_a_documented_kpi():
    names = set(HoursLedger(0.0).kpis())
    assert names == {f"{p}_{r}" for p in ("capacity_hours", "work_hours", "utilisation") for r in ROLES} | {
        "capacity_hours", "work_hours", "cost_hours"}
    assert names <= set(KPI_NAMES)
    assert set(KPI_NAMES) == set(KPI_UNITS) == set(KPI_DOCS)
    assert "staff_hours" not in KPI_NAMES


# -------------------------------------------------------------------------- recorded vs true outcomes
def _cases(rows: list[dict]) -> pd.DataFrame:
    base = {"created_h": 0.0, "accepted_h": 0.1, "dispatched_h": 0.2, "first_response_h": 1.0, "replied_h": 2.0,
            "closed_h": 3.0, "due_h": 100.0, "satisfied": np.nan, "direct_answer": False, "true_resolved": False,
            "recorded_resolved": False, "reopened": False, "escalated": False, "perfunctory": False,
            "status": "closed", "channel": "online", "dept_arrival_h": 0.5, "hops": 1}
    return pd.DataFrame([{**base, **r} for r in rows])


def test_recorded_and_true_resolution_and_the_gaming_gap():
    """Six cases: a direct answer (solved at intake), two dispatched cases solved, one perfunctory reply
    recorded as resolved but not solved, one closed unsolved and one abandoned; one still open."""
    nan = np.nan
    df = _cases([
        {"direct_answer": True, "dispatched_h": nan, "true_resolved": True, "recorded_resolved": True},
        {"true_resolved": True, "recorded_resolved": True},
        {"true_resolved": True, "recorded_resolved": True},
        {"perfunctory": True, "recorded_resolved": True},              # gamed: recorded, not solved
        {},                                                             # closed unsolved
        {"status": "abandoned", "closed_h": nan, "replied_h": nan},     # final, unsolved
        {"status": "queued", "closed_h": nan, "replied_h": nan, "first_response_h": nan},  # not final
    ])
    k = kpis(df, end_h=200.0, response_target_h=24.0)
    assert k["resolution_rate"] == pytest.approx(4 / 6)       # recorded, over the 6 final cases
    assert k["true_resolution_rate"] == pytest.approx(3 / 6)
    assert k["gaming_gap"] == pytest.approx(1 / 6)
    assert k["dispatched_resolution_rate"] == pytest.approx(3 / 5)   # the direct answer left out
    assert k["dispatched_true_resolution_rate"] == pytest.approx(2 / 5)
    assert k["direct_answer_share"] == pytest.approx(1 / 7)
    assert k["perfunctory_share"] == pytest.approx(1 / 4)     # of the 4 replied dispatched cases
    # the same definitions per group (the equity splits call kpis with a mask)
    g = kpis(df, 200.0, 24.0, mask=np.array([False, False, False, True, True, True, True]))
    assert g["resolution_rate"] == pytest.approx(1 / 3) and g["true_resolution_rate"] == 0.0
    assert g["gaming_gap"] == pytest.approx(1 / 3)


def test_daily_cost_and_work_hours_come_from_the_cumulative_ledger_rows():
    daily = [{"day": d, "problems": 10, "arrivals": 8, "cost_hours_cum": c, "work_hours_cum": w}
             for d, c, w in ((0, 0.0, 0.0), (1, 100.0, 40.0), (2, 250.0, 90.0), (3, 300.0, 95.0))]
    model = SimpleNamespace(daily=daily, warmup_h=24.0)
    df = _cases([{"created_h": 30.0, "closed_h": 50.0, "true_resolved": True, "recorded_resolved": True},
                 {"created_h": 31.0, "closed_h": 52.0, "recorded_resolved": True}])
    ts = timeseries_frame(model, df)
    assert list(ts["day"]) == [0, 1, 2]
    assert list(ts["cost_hours"]) == [100.0, 150.0, 50.0] and list(ts["work_hours"]) == [40.0, 50.0, 5.0]
    assert not any(c.endswith("_cum") for c in ts.columns)
    day2 = ts.iloc[1]  # both cases closed on day 2 of the run (measured day 1)
    assert day2["resolution_rate"] == 1.0 and day2["true_resolution_rate"] == 0.5


# ----------------------------------------------------------------------------------------- planning
def small_city(**extra) -> dict:
    """One county, two townships, a fixed stream of 2 requests an hour: a prefecture bureau (half the
    requests are enquiries, 40% of them answered at intake; exponential service, mean 3 h) and a township
    office (no enquiries; mean 5 h)."""
    data = {
        "name": "small",
        "world": {"population": 400, "counties": 1, "townships": 2, "urban_township_share": 0.5},
        "demand": {"fixed_rate_per_hour": 2.0, "categories": {
            "water": {"share": 0.75, "jurisdiction": "prefecture", "consultation_share": 0.5,
                      "service_time_dist": "exponential", "service_time_median_h": 3.0},
            "roads": {"share": 0.25, "jurisdiction": "township", "consultation_share": 0.0,
                      "service_time_dist": "exponential", "service_time_median_h": 5.0}}},
        "platform": {"direct_answer_share": 0.4},
        "run": {"days": 2, "warmup_days": 0, "seed": 5},
    }
    for dotted, value in extra.items():
        section, key = dotted.split("__")
        data.setdefault(section, {})[key] = value
    return data


def test_plan_staff_by_hand():
    scenario = validate(small_city(), "small")
    plan = plan_staff(scenario, 0.6)
    assert list(plan) == sorted(plan) == ["dept:roads@county:0", "dept:roads@prefecture", "dept:roads@township:0",
                                          "dept:roads@township:1", "dept:water@prefecture"]
    # water: 2/h × 3/4 of the stream × (1 − 0.5 × 0.4) dispatched × 1.1 × 3 h = 3.96 server-hours per hour
    assert expected_load(scenario)["dept:water@prefecture"] == pytest.approx(3.96)
    assert plan["dept:water@prefecture"] == math.ceil(3.96 / 0.6) == 7
    # roads: 2/h × 1/4 × 1.1 × 5 h = 2.75, split over the townships by their population (the model's draw)
    from sim.model import GovernanceModel

    pop = GovernanceModel(scenario).population
    share = np.bincount(pop.region, minlength=2) / pop.n
    for j in (0, 1):
        assert plan[f"dept:roads@township:{j}"] == max(1, math.ceil(2.75 * share[j] / 0.6))
    assert plan_staff(scenario, 1.0)["dept:water@prefecture"] == 4
    assert all(v >= 1 for v in plan_staff(scenario, 1.0).values())
    # relays (the prefecture's and the county's roads desks): every roads order passes both in a cascade,
    # 2/h × 1/4 × 1.1 × the mean relay handling time (lognormal: median 0.5 h, log-sd 0.8) = 0.3774 h per hour
    # in office hours, divided by the open share of the run's 2 days (working days × 8 of 24 hours)
    open_share = float(GovernanceModel(scenario).calendar.is_workday[:2].mean()) * 8 / 24
    relay_h = 0.5 * math.exp(0.8**2 / 2) / open_share
    assert expected_load(scenario)["dept:roads@prefecture"] == pytest.approx(0.55 * relay_h)
    assert expected_load(scenario)["dept:roads@county:0"] == pytest.approx(0.55 * relay_h)
    assert plan["dept:roads@prefecture"] == math.ceil(0.55 * relay_h / 0.6)


@pytest.mark.parametrize("bad", [0.0, -0.2, 1.5, float("nan")])
def test_plan_staff_rejects_a_utilisation_outside_0_1(bad):
    with pytest.raises(ScenarioError, match="utilisation must be"):
        plan_staff(validate(small_city(), "small"), bad)


@pytest.mark.parametrize("path", ["default.yaml", "zhengzhou/before_platform.yaml", "zhengzhou/hotline_2024.yaml",
                                  "zhengzhou/full_scale.yaml", "validation/t1_county_control.yaml",
                                  "validation/t7_zzic_2012.yaml", "validation/t8_western_311.yaml"])
def test_shipped_plans_are_what_plan_staff_gives(path):
    """The staff written into the shipped files are the plan for their own city at 60% (rerun plan-staff
    after changing their world or demand)."""
    scenario = load_scenario(SCENARIOS / path)
    assert dict(scenario.departments.staff_by_department) == plan_staff(scenario, 0.6)


def _plan_cli(*args: str) -> int:
    return cli.main(["plan-staff", *args])


def test_plan_staff_command_round_trip(tmp_path, capsys):
    src = tmp_path / "cities" / "small.yaml"
    src.parent.mkdir()
    src.write_text(yaml.safe_dump(small_city()))
    out = tmp_path / "planned" / "small_staffed.yaml"
    assert _plan_cli(str(src), "--utilisation", "0.6", "--out", str(out)) == 0
    assert "wrote" in capsys.readouterr().out
    text = out.read_text()
    assert text.startswith("# small_staffed.yaml — small.yaml with its departments staffed for utilisation 0.6.")
    assert "python run.py plan-staff" in text and "Budget:" in text
    assert "extends: ../cities/small.yaml" in text  # relative to the written file
    written = load_scenario(out)
    planned = plan_staff(load_scenario(src), 0.6)
    assert dict(written.departments.staff_by_department) == planned
    keys = re.findall(r"^    '([^']+)':", text, flags=re.M)
    assert keys == sorted(keys) == list(planned)
    # the model staffs its departments as planned
    from sim.model import GovernanceModel

    h = GovernanceModel(written).hierarchy
    assert {d.node: d.staff for d in h.departments} == planned
    assert h.dept_staff.tolist() == [planned[d.node] for d in h.departments]


@pytest.mark.parametrize("args, message", [
    (["--utilisation", "1.5"], "utilisation must be in (0, 1]"),
    (["--utilisation", "0"], "utilisation must be in (0, 1]"),
    (["--utilisation", "0.6", "--set", "platform.direct_answer_share=2"], "platform.direct_answer_share"),
])
def test_plan_staff_command_bad_input_exits_2(tmp_path, capsys, args, message):
    src = tmp_path / "small.yaml"
    src.write_text(yaml.safe_dump(small_city()))
    assert _plan_cli(str(src), *args, "--out", str(tmp_path / "out.yaml")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert not (tmp_path / "out.yaml").exists()


def test_plan_staff_command_refuses_missing_files_and_overwriting_its_input(tmp_path, capsys):
    assert _plan_cli(str(tmp_path / "nope.yaml"), "--utilisation", "0.6", "--out", str(tmp_path / "o.yaml")) == 2
    assert "nope.yaml: scenario file not found" in capsys.readouterr().err
    src = tmp_path / "small.yaml"
    src.write_text(yaml.safe_dump(small_city()))
    assert _plan_cli(str(src), "--utilisation", "0.6", "--out", str(src)) == 2
    assert "--out must differ from the input scenario" in capsys.readouterr().err
    assert _plan_cli(str(src), "--utilisation", "0.6", "--out", str(tmp_path / "o.txt")) == 2
    assert "--out must be a .yaml file" in capsys.readouterr().err


# --------------------------------------------------------------------------- staff by department
def test_staff_by_department_overrides_the_level():
    s = validate(small_city(departments__staff={"prefecture": 2, "county": 1, "township": 1},
                            departments__staff_by_department={"dept:roads@township:1": 9}), "small")
    staff = {d.node: d.staff for d in Hierarchy(s, np.random.default_rng(0)).departments}
    assert staff == {"dept:water@prefecture": 2, "dept:roads@township:0": 1, "dept:roads@township:1": 9,
                     "dept:roads@prefecture": 1, "dept:roads@county:0": 1}  # relays: staff.relay (1)


@pytest.mark.parametrize("name, why", [
    ("dept:roads@township:7", "not a department of this city"),
    ("dept:water@county:0", "not a department of this city"),
    ("township:0", "an administrative unit"),
    ("utilities", "not a department of this city"),
])
def test_unknown_department_names_stop_the_build(name, why):
    from sim.model import GovernanceModel

    s = validate(small_city(departments__staff_by_department={name: 3}), "small")
    with pytest.raises(ScenarioError) as err:
        GovernanceModel(s)
    msg = str(err.value)
    assert "key 'departments.staff_by_department'" in msg and f"'{name}'" in msg and why in msg
    assert "'dept:water@prefecture'" in msg or "'dept:roads@township:0'" in msg  # valid names are shown
    assert "plan-staff" in msg


def test_a_relay_desk_is_staffed_like_a_department():
    s = validate(small_city(**{"demand__categories": {
        "roads": {"share": 1.0, "jurisdiction": "township", "service_time_median_h": 5.0}},
        "departments__staff": {"relay": 3}, "departments__staff_by_department": {"dept:roads@prefecture": 2}}),
        "small")
    staff = {d.node: (d.role, d.staff) for d in Hierarchy(s, np.random.default_rng(0)).departments}
    assert staff["dept:roads@prefecture"] == ("relay", 2) and staff["dept:roads@county:0"] == ("relay", 3)


# ------------------------------------------------------------------------------ shipped scenarios
def _shipped() -> list[Path]:
    return sorted([*SCENARIOS.glob("*.yaml"), *SCENARIOS.glob("*/*.yaml")])


@pytest.mark.parametrize("path", _shipped(), ids=lambda p: str(p.relative_to(SCENARIOS)))
def test_every_shipped_scenario_states_its_department_budget(path):
    """The header's "Budget:" line gives the department staff the scenario really has."""
    header = "".join(line[1:] for line in path.read_text().splitlines() if line.startswith("#"))
    found = re.search(r"Budget: ([\d,]+) department staff", header)
    assert found, f"{path.name}: no 'Budget: N department staff' in the header comment"
    s = load_scenario(path)
    total = sum(d.staff for d in Hierarchy(s, np.random.default_rng(0)).departments)
    assert int(found.group(1).replace(",", "")) == total
    assert "target_utilisation" not in path.read_text()


def test_reforms_compare_at_equal_department_staff():
    spec = yaml.safe_load((ROOT / "experiments" / "reforms.yaml").read_text())
    staffs = []
    for name, entry in spec["scenarios"].items():
        file = entry if isinstance(entry, str) else entry["file"]
        assert isinstance(entry, str) or not any(k.startswith("departments.staff") for k in entry.get("set", {})), name
        s = load_scenario((ROOT / "experiments" / file).resolve())
        staffs.append(({d.node: d.staff for d in Hierarchy(s, np.random.default_rng(0)).departments},
                       s.departments.hours))
    assert all(x == staffs[0] for x in staffs[1:])


def test_baseline_zzic_and_combined_pay_for_the_same_department_hours():
    """Equal budgets: the same department capacity_hours (within 1%) in short runs of the three."""
    caps = {}
    for name in ("baseline", "zzic", "combined"):
        result = run_scenario(load_scenario(SCENARIOS / f"{name}.yaml"), seed=3, days=10, warmup_days=3)
        k = result.summary
        caps[name] = k["capacity_hours_departments"]
        assert k["cost_hours"] == pytest.approx(k["capacity_hours"])
        assert k["capacity_hours"] == pytest.approx(sum(k[f"capacity_hours_{r}"] for r in ROLES))
        assert k["utilisation_departments"] > 0.0
        assert k["gaming_gap"] == pytest.approx(k["resolution_rate"] - k["true_resolution_rate"])
        groups = result.groups
        for split in ("requester_kind", "channel", "area"):
            assert {"gaming_gap", "true_resolution_rate", "resolution_rate"} <= set(
                groups.loc[groups["group_by"] == split, "kpi"])
        assert {"cost_hours", "work_hours"} <= set(result.timeseries.columns)
        assert {"true_resolved", "recorded_resolved", "bounced"} <= set(result.cases.columns)
    base = caps["baseline"]
    assert base > 0
    assert all(abs(v / base - 1) <= 0.01 for v in caps.values()), caps
