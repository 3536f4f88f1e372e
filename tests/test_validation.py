"""Validation machinery: pass bands, intervals, paired targets, measures, verification checks, the report.

The evaluation logic is tested on small synthetic stores with known answers; one quick end-to-end run of
``run_validation`` (tiny replications and days, in this process) checks the pipeline and the report files.
The full validation is a command (``python run.py validate``), not a unit test.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis.store import Store
from analysis.summarize import t_interval
from analysis.validation import (
    CALIBRATED,
    MEASURES,
    ROLE_CHANGES,
    ROLES,
    SCENARIO_DIR,
    TARGETS,
    Criterion,
    RunData,
    Target,
    TargetResult,
    ValidationError,
    ValidationOutcome,
    _close_enough,
    _fresh_store_dir,
    completion_rate,
    conservation_problems,
    county_reply_share,
    dispatched_resolution,
    erlang_c,
    evaluate_target,
    run_validation,
)
from sim import load_scenario


# ------------------------------------------------------------------------------------------- criteria
def test_band_at_least_and_relative_criteria():
    band = Criterion.band(0.33, 0.08)
    assert band.passes(0.25) and band.passes(0.41) and band.passes(0.33)
    assert not band.passes(0.249) and not band.passes(0.411)
    assert not band.passes(math.nan)
    floor = Criterion.at_least(0.9)
    assert floor.passes(0.9) and floor.passes(0.99) and not floor.passes(0.899)
    rel = Criterion.relative(310, 0.15)
    assert rel.low == pytest.approx(263.5) and rel.high == pytest.approx(356.5)
    assert band.describe("share") == "0.250 – 0.410"
    assert floor.describe("share") == "≥ 0.900"
    assert rel.describe("cases") == "264 – 356"


def test_every_target_has_a_known_measure_and_a_unique_key():
    keys = [t.key for t in TARGETS]
    assert len(keys) == len(set(keys))
    assert {t.id for t in TARGETS} == {f"T{i}" for i in range(1, 11)}
    for t in TARGETS:
        assert t.measure in MEASURES
        assert (SCENARIO_DIR / f"{t.scenario}.yaml").is_file()


# ------------------------------------------------------------------------------------------- roles
def test_every_target_has_one_role_and_validation_outnumbers_calibration():
    roles = [t.role for t in TARGETS]
    assert set(roles) <= set(ROLES)
    assert roles.count("validation") >= roles.count("calibration") > 0
    # only calibration targets list fitted parameters, and those are exactly the calibrated ones
    for t in TARGETS:
        assert bool(t.fitted) == (t.role == "calibration"), t.key
    fitted = [p for t in TARGETS for p in t.fitted]
    assert len(fitted) == len(set(fitted)) <= 6  # each parameter is pinned by one target; at most six
    assert {t.key: t.fitted for t in TARGETS if t.fitted} == CALIBRATED
    # an output equal to an input is never counted as evidence
    assert {t.key for t in TARGETS if t.role == "consistency"} == {"T5", "T7 accepted", "T7 assigned"}


def test_a_changed_role_is_only_ever_toward_validation_and_says_why():
    """A role changed after a fit may only make a target count against the model (calibration → validation),
    never excuse a miss; each change names the roles and gives its reason."""
    by_key = {t.key: t for t in TARGETS}
    assert ROLE_CHANGES  # T6 completion's change is recorded
    for key, why in ROLE_CHANGES.items():
        assert by_key[key].role == "validation" and not by_key[key].fitted, key
        assert why.startswith("calibration → validation") and len(why) > 80, key


def test_fitted_parameters_are_real_scenario_keys():
    base = load_scenario(SCENARIO_DIR / "t1_county_control.yaml")
    for name in CALIBRATED.values():
        for key in name:
            section, field = key.split(".")
            value = getattr(getattr(base, section), field)
            moved = base.with_overrides({key: value * 1.1 if value else 0.1})
            assert getattr(getattr(moved, section), field) != value, key


def _result(target: Target, passed: bool) -> TargetResult:
    return TargetResult(target, [0.5], t_interval([0.5]), passed)


def test_consistency_rows_are_shown_but_not_counted(tmp_path):
    cal = _target(key="C", role="calibration", fitted=("departments.duty",))
    val = _target(key="V", role="validation")
    con = _target(key="K", role="consistency")
    outcome = ValidationOutcome([_result(cal, True), _result(val, True), _result(con, False)], [], tmp_path,
                                tmp_path / "r.html", tmp_path / "r.md", 1.0)
    assert outcome.all_passed  # the failing consistency row does not decide the verdict
    assert outcome.role_counts() == {"calibration": (1, 1), "validation": (1, 1), "consistency": (0, 1)}
    assert "validation: 1 of 1 pass" in outcome.render()
    failing = ValidationOutcome([_result(cal, True), _result(val, False)], [], tmp_path, tmp_path / "r.html",
                                tmp_path / "r.md", 1.0)
    assert not failing.all_passed


def _posterior() -> dict:
    return {"parameters": ["departments.duty"], "draws": {"departments.duty": [0.8, 0.9]}, "weights": [0.5, 0.5],
            "central": {"departments.duty": 0.9},
            "identifiability": [{"parameter": "departments.duty", "prior_low": 0.0, "prior_high": 2.5,
                                 "log": False, "median": 0.85, "q05": 0.8, "q95": 0.9, "width_ratio": 0.04,
                                 "pinned": True}],
            "sensitivity": {"T1": {"departments.duty": 0.93}}, "check": {"T1": {"mean": 0.35, "n": 5.0,
                                                                               "within": True}},
            "objectives": [{"key": "T1", "observed": 0.33, "tolerance": 0.08}], "epsilons": [3.0, 1.2],
            "simulations": 400}


def test_the_report_shows_the_calibration_posterior_and_validation_json_keeps_it(tmp_path):
    from analysis.validation import _as_json, build_sections, read_posterior

    path = tmp_path / "posterior.json"
    path.write_text(json.dumps(_posterior()), encoding="utf-8")
    val = _target(key="V", role="validation")
    outcome = ValidationOutcome([_result(val, True)], [], tmp_path, tmp_path / "r.html", tmp_path / "r.md", 1.0,
                                posterior=read_posterior(path), posterior_file="data/p.json")
    from analysis.report import render_markdown

    sections = {s.id: s for s in build_sections(outcome, [], None)}
    text = render_markdown("t", [sections["calibration"]], "now")
    assert "0.85 [0.8, 0.9]" in text and "+0.93" in text and "data/p.json" in text and "ε = 1.2" in text
    assert _as_json(outcome)["calibration"]["central"] == {"departments.duty": 0.9}
    without = ValidationOutcome([_result(val, True)], [], tmp_path, tmp_path / "r.html", tmp_path / "r.md", 1.0)
    assert "calibration" not in {s.id for s in build_sections(without, [], None)}
    assert _as_json(without)["calibration"] is None


def test_a_broken_posterior_file_is_a_clear_error(tmp_path):
    from analysis.validation import read_posterior

    with pytest.raises(ValidationError, match="not found"):
        read_posterior(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(ValidationError, match="bad.json: not a readable posterior"):
        read_posterior(tmp_path / "bad.json")
    d = _posterior()
    del d["central"]
    (tmp_path / "part.json").write_text(json.dumps(d), encoding="utf-8")
    with pytest.raises(ValidationError, match="key 'central' missing"):
        read_posterior(tmp_path / "part.json")


# ------------------------------------------------------------------------------------ synthetic stores
def _store(values: dict[str, list[float]], kpi: str = "on_time_close_rate", failed: set[tuple[str, int]] = frozenset(),
           cases: dict[str, pd.DataFrame] | None = None, days: float = 10, warmup: float = 0) -> Store:
    runs, summary = [], []
    for scenario, vals in values.items():
        for r, v in enumerate(vals):
            run_id = f"{scenario}__p0000__r{r:03d}"
            ok = (scenario, r) not in failed
            runs.append({"run_id": run_id, "scenario": scenario, "point": 0, "replication": r, "seed": 100 + r,
                         "status": "ok" if ok else "failed", "error": "" if ok else "boom"})
            if ok:
                summary.append({"run_id": run_id, "scenario": scenario, "point": 0, "replication": r, "kpi": kpi,
                                "value": v, "group_by": "all", "group": "all"})
    manifest = {"name": "synthetic", "scenarios": {s: {} for s in values}, "days": days, "warmup_days": warmup,
                "kpis": [kpi]}
    summary_columns = ["run_id", "scenario", "point", "replication", "kpi", "value", "group_by", "group"]
    return Store.from_frames(manifest, pd.DataFrame(runs), pd.DataFrame(summary, columns=summary_columns),
                             cases=cases)


def _target(**kw) -> Target:
    base = dict(key="X", id="T8", pattern="p", observed="0.84", tolerance="± 0.04",
                criterion=Criterion.band(0.84, 0.04), experiment="exp", scenario="a", measure="on_time_close_rate",
                source="s", mechanism="m")
    base.update(kw)
    return Target(**base)


def test_target_mean_interval_and_verdict_from_replications():
    store = _store({"a": [0.82, 0.84, 0.86], "b": [0.70, 0.72, 0.74]})
    good = evaluate_target(_target(), {"exp": store})
    assert good.values == pytest.approx([0.82, 0.84, 0.86])
    assert good.mean == pytest.approx(0.84)
    half = 4.302652729911275 * 0.02 / math.sqrt(3)  # t(0.975, 2) · sd / √n
    assert good.interval.low == pytest.approx(0.84 - half) and good.interval.high == pytest.approx(0.84 + half)
    assert good.passed
    bad = evaluate_target(_target(scenario="b"), {"exp": store})
    assert bad.mean == pytest.approx(0.72) and not bad.passed


def test_target_fails_without_runs_or_experiment():
    store = _store({"a": [0.84, 0.84]}, failed={("a", 0), ("a", 1)})
    res = evaluate_target(_target(), {"exp": store})
    assert res.values == [] and not res.passed and "no finished runs" in res.note
    missing = evaluate_target(_target(), {})
    assert not missing.passed and "did not run" in missing.note


def _county_cases(n: int, replied: int) -> pd.DataFrame:
    first = np.full(n, np.nan)
    first[:replied] = 1.0
    return pd.DataFrame({"handling_level": ["county"] * n + ["township"] * 3,
                         "first_response_h": np.concatenate([first, [1.0, 1.0, 1.0]])})


def test_paired_target_uses_per_replication_differences_and_drops_unmatched():
    # base replies 30/100, 32/100, 34/100; treated 38, 41, 40 → gains 0.08, 0.09, 0.06; replication 2 of the
    # base failed, so only replications 0 and 1 are paired
    base = {0: 30, 1: 32, 2: 34}
    treated = {0: 38, 1: 41, 2: 40}
    cases = {f"t1__p0000__r{r:03d}": _county_cases(100, k) for r, k in base.items()}
    cases |= {f"t2__p0000__r{r:03d}": _county_cases(100, k) for r, k in treated.items()}
    store = _store({"t1": [0, 0, 0], "t2": [0, 0, 0]}, failed={("t1", 2)}, cases=cases)
    target = _target(scenario="t2", paired_with="t1", measure="county_reply_share",
                     criterion=Criterion.at_least(0.04), unit="share points")
    res = evaluate_target(target, {"exp": store})
    assert res.values == pytest.approx([0.08, 0.09])
    assert res.interval.n == 2 and res.passed
    assert "paired over 2 run(s)" in res.note


# ------------------------------------------------------------------------------------------- measures
def _run(cases: pd.DataFrame, end_h: float = 100.0) -> RunData:
    return RunData("r", "s", 0, {}, cases, end_h)


def test_county_reply_share_counts_county_cases_only():
    c = _county_cases(10, 3)
    assert county_reply_share(_run(c)) == pytest.approx(0.3)


def test_dispatched_resolution_ignores_direct_answers_and_open_cases():
    c = pd.DataFrame({
        "dispatched_h": [np.nan, 1.0, 1.0, 1.0, 1.0, 1.0],
        "status": ["closed", "closed", "closed", "abandoned", "queued", "closed"],
        "recorded_resolved": [True, True, False, False, False, True],
        "true_resolved": [True, False, False, False, False, False],
    })
    # dispatched and final: rows 1, 2, 3, 5 → 2 of 4 recorded as resolved (what Beijing publishes)
    assert dispatched_resolution(_run(c)) == pytest.approx(0.5)


def test_completion_counts_cases_due_by_the_end():
    c = pd.DataFrame({"due_h": [10.0, 20.0, 90.0, 150.0], "closed_h": [5.0, np.nan, 80.0, np.nan]})
    assert completion_rate(_run(c, end_h=100.0)) == pytest.approx(2 / 3)


def test_weekly_counts_use_the_last_simulated_week():
    end = 30 * 24.0
    c = pd.DataFrame({"accepted_h": [end - 200.0, end - 100.0, end - 1.0, end + 1.0],
                      "dispatched_h": [np.nan, end - 99.0, np.nan, np.nan],
                      "closed_h": [end - 168.0, end - 168.5, np.nan, np.nan]})
    run = _run(c, end_h=end)
    assert MEASURES["week_accepted"].func(run) == 2  # 200 h ago is before the week; after the end does not count
    assert MEASURES["week_assigned"].func(run) == 1
    assert MEASURES["week_closed"].func(run) == 1  # exactly 168 h before the end is inside


def test_case_measures_need_the_cases_table():
    with pytest.raises(ValidationError, match="cases table was not stored"):
        county_reply_share(RunData("r", "s", 0, {}, None, 10.0))


# ----------------------------------------------------------------------------------------- verification
def test_erlang_c_textbook_values():
    p, w = erlang_c(4.0, 1.0, 5)  # a = 4 Erlang on 5 servers
    assert p == pytest.approx(0.5541, abs=1e-4)
    assert w == pytest.approx(0.5541, abs=1e-4)  # P(wait) · S / (c − a) with c − a = 1
    p1, w1 = erlang_c(0.5, 1.0, 1)  # M/M/1: P(wait) = ρ, Wq = ρ/(μ − λ)
    assert p1 == pytest.approx(0.5) and w1 == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unstable"):
        erlang_c(5.0, 1.0, 5)


def test_close_enough_passes_fails_and_is_inconclusive():
    precise = t_interval([1.01, 0.99, 1.00, 1.02, 0.98])
    assert _close_enough(precise, 1.0)[0]
    assert not _close_enough(t_interval([1.31, 1.29, 1.30, 1.32, 1.28]), 1.0)[0]
    ok, text = _close_enough(t_interval([0.2, 1.8]), 1.0)
    assert not ok and "inconclusive" in text


def _clean_cases() -> pd.DataFrame:
    return pd.DataFrame({
        "case_id": [0, 1, 2, 3],
        "status": ["closed", "abandoned", "queued", "awaiting_callback"],
        "created_h": [0.0, 1.0, 2.0, 3.0], "accepted_h": [0.1, 1.1, 2.1, 3.1],
        "dispatched_h": [2.0, np.nan, 4.0, 5.0], "dept_arrival_h": [3.0, np.nan, 5.0, 6.0],
        "first_response_h": [4.0, np.nan, 9.0, 7.0], "service_start_h": [4.0, np.nan, np.nan, 7.0],
        "replied_h": [10.0, np.nan, np.nan, 12.0], "closed_h": [10.0, np.nan, np.nan, 12.0],
        "satisfied": [1.0, 0.0, np.nan, np.nan],
    })


def test_conservation_accepts_a_clean_table():
    assert all(not v for v in conservation_problems(_clean_cases(), arrivals=4).values())


def test_conservation_finds_each_kind_of_error():
    c = _clean_cases()
    c.loc[2, "status"] = "lost"
    c.loc[0, "closed_h"] = 3.0  # closes before its reply and before it was created... after creation but early
    c.loc[1, "satisfied"] = 1.0  # abandoned but satisfied
    found = conservation_problems(c, arrivals=5)
    assert found["states"] and found["consistency"] and found["counted"] and found["time_order"]
    assert any("replied_h > closed_h" in p for p in found["time_order"])


# ------------------------------------------------------------------------------------------- scenarios
ALLOWED_SETTINGS = {
    "world": None, "platform": None, "policy": None, "run": None,  # situation and institutions: any key
    "timeline": None,  # dated policy changes (policy keys only, as the schema allows)
    "demand": {"requests_per_day"},
    "citizens": {"behaviour", "channel_mix", "tattle_share", "collective_threat_share"},
    "departments": {"effort_choice", "staff_by_department"},  # staff are a budget (an input), not behaviour
}


@pytest.mark.parametrize("path", sorted(SCENARIO_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_validation_scenarios_document_themselves_and_set_no_behavioural_value(path):
    text = path.read_text(encoding="utf-8")
    first = text.splitlines()[0]
    assert first.startswith(f"# {path.name} — T"), first  # opens by naming the target it represents
    data = yaml.safe_load(text)
    for section, keys in data.items():
        if section in ("extends", "name", "description"):
            continue
        assert section in ALLOWED_SETTINGS, f"{path.name} sets section {section!r}"
        allowed = ALLOWED_SETTINGS[section]
        if allowed is not None:
            assert set(keys) <= allowed, f"{path.name} sets {section}.{sorted(set(keys) - allowed)}"
    assert load_scenario(path).name == path.stem


# ------------------------------------------------------------------------------------------- end to end
def test_bad_arguments_are_user_errors(tmp_path):
    with pytest.raises(ValidationError, match="replications"):
        run_validation(str(tmp_path / "v"), replications=0)
    with pytest.raises(ValidationError, match="workers"):
        run_validation(str(tmp_path / "v"), workers=0)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ValidationError, match="cannot create"):
        run_validation(str(blocker / "v"), replications=1)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ValidationError, match="not a result store"):
        _fresh_store_dir(foreign)
    assert (foreign / "notes.txt").exists()


def test_quick_end_to_end_writes_a_self_contained_report(tmp_path):
    out = tmp_path / "validation"
    outcome = run_validation(str(out), replications=2, workers=1, days=4, quiet=True, skip=("beijing_timeline",))
    assert [r.target.key for r in outcome.targets] == [t.key for t in TARGETS]
    ran = [r for r in outcome.targets if r.target.experiment != "beijing_timeline"]
    assert all(r.interval.n == 2 for r in ran)
    assert all("did not run" in r.note and not r.passed for r in outcome.targets if r not in ran)
    assert isinstance(outcome.all_passed, bool)
    names = {c.name: c for c in outcome.checks}
    assert names["determinism: same seed, same cases"].passed
    assert names["determinism: another seed, other cases"].passed
    assert all(c.passed for n, c in names.items() if n.startswith("conservation"))
    text = outcome.render()
    for t in TARGETS:
        assert t.key in text
    html = outcome.html.read_text(encoding="utf-8")
    assert "<script" not in html and "src=\"http" not in html and "data:image/png;base64," in html
    for t in TARGETS:
        assert t.key in html
    md = outcome.md.read_text(encoding="utf-8")
    assert "## Targets T1–T10" in md and (out / "figures" / "validation_targets.png").is_file()
    data = json.loads((out / "validation.json").read_text(encoding="utf-8"))
    assert len(data["targets"]) == len(TARGETS) and data["all_passed"] == outcome.all_passed
    assert [t["role"] for t in data["targets"]] == [t.role for t in TARGETS]
    assert {t["key"]: tuple(t["fitted"]) for t in data["targets"] if t["fitted"]} == CALIBRATED
    assert set(data["roles"]) == set(ROLES)
    assert {p.name for p in (out / "specs").glob("*.yaml")} == {"targets.yaml", "zzic_week.yaml", "queue.yaml",
                                                                 "lifecycle.yaml"}
    # a second run into the same folder replaces its own stores instead of refusing them
    again = run_validation(str(out), replications=1, workers=1, days=1, quiet=True, skip=("beijing_timeline",))
    assert all(len(r.values) == 1 for r in again.targets if r.target.experiment != "beijing_timeline")


# ------------------------------------------------------------------------------ predictive intervals
def test_interval_score_hand_values():
    from analysis.validation import interval_score

    assert interval_score(0.4, 0.6, 0.5) == pytest.approx(0.2)  # covers: its width
    assert interval_score(0.4, 0.6, 0.3) == pytest.approx(0.2 + 20 * 0.1)  # misses below by 0.1
    assert interval_score(0.4, 0.6, 0.65) == pytest.approx(0.2 + 20 * 0.05)


def test_a_vague_validation_prediction_does_not_pass_by_straddling_the_band():
    centred_but_vague = list(np.linspace(0.70, 0.98, 21))  # mean 0.84, but spread past 0.80 and 0.88
    tight = list(np.linspace(0.82, 0.86, 21))
    store = _store({"a": centred_but_vague, "b": tight})
    vague = evaluate_target(_target(role="validation"), {"exp": store})
    assert vague.mean == pytest.approx(0.84) and not vague.passed
    assert vague.predictive[0] == pytest.approx(0.714) and vague.predictive[1] == pytest.approx(0.966)
    assert evaluate_target(_target(role="validation", scenario="b"), {"exp": store}).passed
    # the same vague values pass as a calibration row (its rule is the mean), and score worse than tight ones
    as_calibration = evaluate_target(_target(role="calibration", fitted=("departments.duty",)), {"exp": store})
    assert as_calibration.passed
    assert vague.interval_score > evaluate_target(_target(role="validation", scenario="b"), {"exp": store}
                                                  ).interval_score


def test_posterior_draws_go_into_the_target_specs_only(tmp_path):
    from analysis.validation import TARGET_EXPERIMENTS, VERIFICATION_EXPERIMENTS, write_spec

    post = (tmp_path / "posterior.json", 7)
    spec = yaml.safe_load(write_spec(TARGET_EXPERIMENTS[0], tmp_path, 2, None, post).read_text())
    assert spec["design"] == {"type": "posterior", "file": str(post[0].resolve()), "n": 7}
    check = yaml.safe_load(write_spec(VERIFICATION_EXPERIMENTS[0], tmp_path, 2, None, post).read_text())
    assert "design" not in check


def test_validate_refuses_a_missing_posterior(tmp_path):
    with pytest.raises(ValidationError, match="file not found"):
        run_validation(str(tmp_path / "v"), posterior=str(tmp_path / "none.json"), quiet=True)


def test_beijing_timeline_measures_use_their_windows():
    from analysis.validation import MEASURES

    day = 24.0
    end = 1280 * day  # warm-up 62 d + 1218 d
    created = np.concatenate([
        np.linspace(62 * day, 184 * day - 1, 122),       # before the reform: 1 a day for 122 days
        np.linspace(184 * day, 457 * day - 1, 546),      # first nine months: 2 a day
        np.linspace(1219 * day, 1249 * day - 1, 40)])    # created in the window of "2021-11"
    n = len(created)
    status = np.where(np.arange(n) < n - 40, "closed", np.where(np.arange(n) % 2 == 0, "closed", "abandoned"))
    cases = pd.DataFrame({"created_h": created, "dispatched_h": created + 1, "direct_answer": False,
                          "status": pd.Categorical(status), "recorded_resolved": np.arange(n) % 4 != 0,
                          "satisfied": np.where(np.arange(n) % 5 == 0, 0.0, 1.0)})
    run = RunData("r", "beijing_timeline", 0, {}, cases, end, 62 * day)
    assert MEASURES["report_growth_2019"].func(run) == pytest.approx(1.0, abs=0.01)  # 2 a day against 1
    late = cases.iloc[-40:]
    expected = late["recorded_resolved"][late["status"].astype(str).isin(["closed", "abandoned"])].mean()
    assert MEASURES["resolution_2021_11"].func(run) == pytest.approx(expected)
    assert MEASURES["satisfaction_2021_11"].func(run) == pytest.approx((late["satisfied"] == 1).mean())


def test_replied_within_3_days_counts_dispatched_requests_old_enough():
    from analysis.validation import replied_within_3_days

    cases = pd.DataFrame({"created_h": [0.0, 10.0, 20.0, 30.0, 990.0, 5.0],
                          "dispatched_h": [1.0, 11.0, 21.0, 31.0, 991.0, np.nan],  # the last: answered at intake
                          "replied_h": [50.0, 100.0, np.nan, 60.0, 995.0, 5.0]})
    run = RunData("r", "s", 0, {}, cases, 1000.0)
    # created by hour 928 and dispatched: the first four; replied within 72 h: 0 (50 h) and 3 (30 h)
    assert replied_within_3_days(run) == pytest.approx(2 / 4)


def test_the_shipped_defaults_are_the_shipped_posteriors_central_draw():
    """The behavioural defaults in sim/scenario.py are the central draw of data/posterior_behaviour.json (the
    calibration of experiments/posterior.yaml), to the 4 decimals they are written with (within 1e-4); every fitted
    parameter is there, and nothing else was fitted."""
    from analysis.validation import SHIPPED_POSTERIOR, read_posterior
    from sim.scenario import Scenario

    post = read_posterior(SHIPPED_POSTERIOR)
    defaults = Scenario()
    fitted = sorted(p for names in CALIBRATED.values() for p in names)
    assert sorted(post["central"]) == fitted
    for name, value in post["central"].items():
        section, field = name.split(".")
        assert getattr(getattr(defaults, section), field) == pytest.approx(value, abs=1e-4), name
    assert all(post["check"][k]["within"] for k in post["check"]), post["check"]
