"""A city's own log → scenario (experiments.logfit): parsing, row accounting, fitting, and the Baltimore check."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from experiments.logfit import (
    FLOOR_H,
    LogError,
    LogFit,
    calibrate_from_log,
    channel_of,
    compare,
    figures,
    holdout_check,
    kaplan_meier,
    ks_distance,
    main,
    observed_distributions,
    parse_columns,
)
from sim import load_scenario, run_scenario
from sim.errors import WenzhengError

ROOT = Path(__file__).resolve().parents[1]
BALTIMORE = ROOT.parent / "shared" / "data" / "baltimore_311_sample.csv"  # the full sample (developers only)
LOS_ANGELES = ROOT.parent / "shared" / "data" / "la_311_sample.csv"  # the full LA sample (developers only)
LA_FIXTURE = ROOT / "tests" / "fixtures" / "la_311_600.csv"  # 600 rows cut from it (see test_la_fixture_rows)
LA_COLUMNS = "created=CreatedDate,closed=ClosedDate,category=RequestType,channel=RequestSource,agency=Owner,status=Status"
LA_FORMAT = "%m/%d/%Y %I:%M:%S %p"
SHIPPED_LOG = ROOT / "data" / "baltimore_311_2000.csv"  # its first 2,000 rows, shipped for the README example
SHIPPED = ROOT / "scenarios" / "baltimore_311.yaml"
BALTIMORE_COLUMNS = ("created=CreatedDate,closed=CloseDate,due=DueDate,category=SRType,"
                     "channel=MethodReceived,agency=Agency")
ISO = "%Y-%m-%d %H:%M:%S"


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _synthetic_log(path: Path, n: int = 3000, seed: int = 5) -> Path:
    """Two kinds of requests with known lognormal closing times and fixed due times; weekday-shaped arrivals."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2023-01-02")  # a Monday
    weekday_w = np.array([2.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5])
    days = np.arange(364)
    p = weekday_w[days % 7] / weekday_w[days % 7].sum()
    day = rng.choice(days, size=n, p=p)
    created = start + pd.to_timedelta(day * 24 + rng.random(n) * 24, unit="h")
    kind = rng.random(n) < 0.6
    med = np.where(kind, 10.0, 100.0)
    sig = np.where(kind, 0.8, 1.2)
    due_h = np.where(kind, 24.0, 240.0)
    hours = med * np.exp(sig * rng.standard_normal(n))
    closed = created + pd.to_timedelta(hours, unit="h")
    due = created + pd.to_timedelta(due_h, unit="h")
    channel = rng.choice(["Phone", "Web portal", "Walk-in", "Mobile App"], size=n, p=[0.5, 0.2, 0.2, 0.1])
    df = pd.DataFrame({
        "Opened": created.strftime(ISO), "Done": closed.strftime(ISO), "Due By": due.strftime(ISO),
        "Type": np.where(kind, "Pothole", "Tree"), "Source": channel,
        "Dept": np.where(kind, "Streets", "Parks"),
    })
    df.to_csv(path, index=False)
    return path


SYNTH_COLUMNS = {"created": "Opened", "closed": "Done", "due": "Due By", "category": "Type",
                 "channel": "Source", "agency": "Dept"}


# ------------------------------------------------------------------------------------------ columns
def test_parse_columns_maps_roles_and_keeps_spaces():
    cols = parse_columns("created=Created Date, closed = CloseDate,category=SR Type")
    assert cols == {"created": "Created Date", "closed": "CloseDate", "category": "SR Type"}


@pytest.mark.parametrize("text, fragment", [
    ("", "empty"),
    ("created=A,closed", "role=column"),
    ("created=A,opened=B", "unknown role 'opened'"),
    ("created=A,created=B", "given twice"),
    ("closed=B", "'created' is required"),
    ("created=", "empty column name"),
])
def test_parse_columns_rejects_bad_text(text, fragment):
    with pytest.raises(LogError, match=fragment):
        parse_columns(text)
    assert issubclass(LogError, WenzhengError)


def test_channel_mapping():
    assert channel_of("Phone") == "hotline"
    assert channel_of("Call Center") == "hotline"
    assert channel_of("Mobile Phone") == "hotline"
    for online in ("API", "Web", "Email", "E-mail", "Mobile App", "Online form", "Twitter", "Mobile"):
        assert channel_of(online) == "online", online
    for offline in ("Internal", "Mail", "Walk-in", "System", "Other", "Counter visit", ""):
        assert channel_of(offline) == "offline", offline


# ------------------------------------------------------------------------------------- bad inputs
def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(LogError, match="nothere.csv: log file not found"):
        calibrate_from_log(str(tmp_path / "nothere.csv"), {"created": "A"}, str(tmp_path / "o.yaml"))


def test_missing_column_names_file_column_and_columns(tmp_path):
    log = _write(tmp_path / "log.csv", [{"CreatedDate": "2020-01-01 10:00:00", "Kind": "x"}])
    with pytest.raises(LogError) as exc:
        calibrate_from_log(str(log), {"created": "CreatedDate", "closed": "ClosedDate"}, str(tmp_path / "o.yaml"))
    msg = str(exc.value)
    assert "log.csv" in msg and "'ClosedDate'" in msg and "closed" in msg
    assert "CreatedDate, Kind" in msg
    assert not (tmp_path / "o.yaml").exists()


def test_out_must_be_yaml(tmp_path):
    log = _write(tmp_path / "log.csv", [{"c": "2020-01-01"}])
    with pytest.raises(LogError, match=r"must end in \.yaml"):
        calibrate_from_log(str(log), {"created": "c"}, str(tmp_path / "out.txt"))


def test_dates_nobody_can_read_ask_for_a_format(tmp_path):
    log = _write(tmp_path / "log.csv", [{"c": "soon"}, {"c": "later"}, {"c": "2020-13-45"}])
    with pytest.raises(LogError, match="--date-format"):
        calibrate_from_log(str(log), {"created": "c"}, str(tmp_path / "o.yaml"))


def test_wrong_date_format_leaves_no_usable_row(tmp_path):
    log = _write(tmp_path / "log.csv", [{"c": f"2020-01-0{i} 10:00:00"} for i in range(1, 9)])
    with pytest.raises(LogError, match="no row has a usable created date"):
        calibrate_from_log(str(log), {"created": "c"}, str(tmp_path / "o.yaml"), date_format="%d/%m/%Y")


def test_rows_with_missing_or_impossible_dates_are_counted_by_reason(tmp_path):
    base = pd.Timestamp("2021-03-01 08:00:00")
    rows = []
    for i in range(40):  # good rows
        c = base + pd.Timedelta(hours=7 * i)
        rows.append({"created": c.strftime(ISO), "closed": (c + pd.Timedelta(hours=3 + i)).strftime(ISO),
                     "due": (c + pd.Timedelta(hours=48)).strftime(ISO), "type": "a", "via": "Phone"})
    c = base.strftime(ISO)
    later = (base + pd.Timedelta(hours=5)).strftime(ISO)
    earlier = (base - pd.Timedelta(hours=5)).strftime(ISO)
    rows += [
        {"created": "", "closed": later, "due": later, "type": "a", "via": "Phone"},
        {"created": "yesterday", "closed": later, "due": later, "type": "a", "via": "Phone"},
        {"created": "2021-02-30 10:00:00", "closed": later, "due": later, "type": "a", "via": "Phone"},
        {"created": c, "closed": "", "due": later, "type": "a", "via": "Phone"},
        {"created": c, "closed": "", "due": later, "type": "b", "via": ""},
        {"created": c, "closed": "n/a", "due": later, "type": "a", "via": "Phone"},
        {"created": c, "closed": earlier, "due": later, "type": "a", "via": "Web"},
        {"created": c, "closed": earlier, "due": later, "type": "", "via": "Web"},
        {"created": c, "closed": later, "due": earlier, "type": "a", "via": "Web"},
        {"created": c, "closed": later, "due": "", "type": "a", "via": "Web"},
    ]
    log = _write(tmp_path / "log.csv", rows)
    out = tmp_path / "city.yaml"
    fit = calibrate_from_log(str(log), {"created": "created", "closed": "closed", "due": "due",
                                        "category": "type", "channel": "via"}, str(out))
    assert fit.rows_read == 50
    assert fit.rows_used == 47
    assert fit.rejects == {
        "created: missing": 1, "created: unparseable": 2,
        "closed: missing (still open)": 2, "closed: unparseable": 1, "closed: before created": 2,
        "due: missing": 1, "due: before created": 1,
        "category: blank": 1, "channel: blank": 1,
    }
    assert fit.closed_rows == 47 - 5
    assert fit.due_rows == 40  # rows with both a usable close and a usable due date
    assert "created: unparseable" in fit.describe() and "row not used" in fit.describe()
    text = out.read_text()
    assert "created: unparseable 2" in text  # the header reports the rejects too
    load_scenario(out)


def test_date_format_is_inferred_per_column(tmp_path):
    rows = [{"c": f"{d:02d}/03/2022 09:15", "x": f"2022-03-{d:02d}T18:00:00"} for d in range(13, 29)]
    log = _write(tmp_path / "log.csv", rows)
    fit = calibrate_from_log(str(log), {"created": "c", "closed": "x"}, str(tmp_path / "o.yaml"))
    assert fit.date_formats["created"].startswith("%d/%m/%Y %H:%M")
    assert fit.date_formats["closed"].startswith("ISO8601")
    assert fit.rejects == {}
    assert fit.median_close_h == pytest.approx(18 - 9.25)


# ------------------------------------------------------------------------------------------ fitting
def test_fit_recovers_known_lognormals_mix_and_weekdays(tmp_path):
    log = _synthetic_log(tmp_path / "synthetic.csv")
    out = tmp_path / "synthetic.yaml"
    fit = calibrate_from_log(str(log), SYNTH_COLUMNS, str(out))
    assert isinstance(fit, LogFit)
    assert set(fit.categories) == {"pothole", "tree"}
    pot, tree = fit.categories["pothole"], fit.categories["tree"]
    assert pot.median_h == pytest.approx(10.0, rel=0.1)
    assert pot.sigma == pytest.approx(0.8, rel=0.1)
    assert tree.median_h == pytest.approx(100.0, rel=0.1)
    assert tree.sigma == pytest.approx(1.2, rel=0.1)
    assert pot.deadline_hours == pytest.approx(24.0) and tree.deadline_hours == pytest.approx(240.0)
    assert pot.due_rule == "median"
    assert pot.ks < 0.05 and tree.ks < 0.05
    # the fit keeps each category's on-time share
    assert pot.fitted_on_time_share == pytest.approx(pot.on_time_share, abs=0.005)
    assert fit.implied_on_time_close_share == pytest.approx(fit.on_time_close_share, abs=0.005)
    assert fit.implied_median_close_h == pytest.approx(fit.median_close_h, rel=0.05)
    assert fit.category_share["pothole"] == pytest.approx(0.6, abs=0.03)
    # arrivals: Monday twice a midweek day, weekend half
    w = np.array(fit.weekday_profile)
    assert w.mean() == pytest.approx(1.0)
    assert w[0] / w[1:5].mean() == pytest.approx(2.0, rel=0.12)
    assert w[5:].mean() / w[1:5].mean() == pytest.approx(0.5, rel=0.15)
    assert fit.requests_per_day == pytest.approx(3000 / 364, rel=0.01)
    # channels: Phone → hotline, Web portal and Mobile App → online, Walk-in → offline
    assert fit.channel_mix["hotline"] == pytest.approx(0.5, abs=0.03)
    assert fit.channel_mix["online"] == pytest.approx(0.3, abs=0.03)
    assert fit.channel_mapping["Walk-in"][0] == "offline"
    assert set(fit.agencies) == {"Streets", "Parks"}


def test_written_scenario_switches_behaviour_off(tmp_path):
    log = _synthetic_log(tmp_path / "synthetic.csv", n=600)
    out = tmp_path / "mycity.yaml"
    fit = calibrate_from_log(str(log), SYNTH_COLUMNS, str(out), days=45)
    sc = load_scenario(out)
    assert sc.name == "mycity"
    assert sc.run.days == 45
    assert sc.citizens.behaviour is False
    assert sc.platform.instant_intake is True
    assert sc.platform.dispatch_delay_h == 0 and sc.platform.handover_delay_h == 0
    assert sc.platform.classification_accuracy == 1.0
    assert sc.departments.effort_choice is False
    assert sc.departments.hours.value == "7x24"
    assert sc.policy.callback is False and sc.policy.systemic_fix is False and sc.policy.tracking is False
    assert sc.policy.supervision_intensity == 0
    assert sc.world.counties == 1 and sc.world.townships == 1
    assert sc.demand.requests_per_day == pytest.approx(fit.requests_per_day, rel=1e-4)
    assert sc.demand.hour_weights == [1.0] * 24
    # one model category per log category (not one per phase), its service time a mixture of phases
    assert list(sc.demand.categories) == list(fit.categories) == ["pothole", "tree"]
    for key, f in fit.categories.items():
        cat, ph = sc.demand.categories[key], f.phases
        assert cat.jurisdiction.value == "prefecture"
        assert cat.consultation_share == 0
        assert cat.share == pytest.approx(fit.category_share[key], rel=1e-4)
        assert cat.service_time_dist.value == "mixture" and len(ph.weights) > 1
        assert [p.weight for p in cat.service_time_phases] == pytest.approx(list(ph.weights), rel=1e-4)
        assert [p.median_h for p in cat.service_time_phases] == pytest.approx(list(ph.medians_h), rel=1e-4)
        assert [p.sigma for p in cat.service_time_phases] == pytest.approx(list(ph.sigmas), rel=1e-4)
        assert cat.service_time_mean_h == pytest.approx(f.mean_h, rel=1e-3)
        assert cat.deadline_hours == pytest.approx(f.deadline_hours)
    assert sum(sc.citizens.channel_mix.values()) == pytest.approx(1.0, abs=1e-4)
    head = out.read_text().split("\nname:")[0]
    assert "key__" not in out.read_text() and "2 bureaus, one per category" in head
    assert "synthetic.csv" in head and "600 rows read" in head and "hour_weights flat" in head


def test_hourly_fits_the_clock_and_refuses_dates_only(tmp_path):
    rows = [{"c": f"2022-05-{d:02d} {h:02d}:30:00"} for d in range(1, 29) for h in (9, 10, 10, 14)]
    log = _write(tmp_path / "log.csv", rows)
    fit = calibrate_from_log(str(log), {"created": "c"}, str(tmp_path / "h.yaml"), hourly=True)
    sc = load_scenario(tmp_path / "h.yaml")
    assert sc.demand.hour_weights[10] == pytest.approx(2 * sc.demand.hour_weights[9], rel=1e-3)
    assert sc.demand.hour_weights[3] == 0
    assert fit.notes == [] or all("service times" in n for n in fit.notes)
    dates_only = _write(tmp_path / "d.csv", [{"c": f"2022-05-{d:02d}"} for d in range(1, 29)])
    with pytest.raises(LogError, match="midnight"):
        calibrate_from_log(str(dates_only), {"created": "c"}, str(tmp_path / "d.yaml"), hourly=True)


def test_top_categories_pool_the_rest(tmp_path):
    rows = []
    base = pd.Timestamp("2022-01-03 08:00")
    for i, kind in enumerate(["a"] * 30 + ["b"] * 20 + ["c"] * 12 + ["d"] * 11):
        c = base + pd.Timedelta(hours=5 * i)
        rows.append({"c": c.strftime(ISO), "x": (c + pd.Timedelta(hours=1 + i % 7)).strftime(ISO), "k": kind})
    log = _write(tmp_path / "log.csv", rows)
    fit = calibrate_from_log(str(log), {"created": "c", "closed": "x", "category": "k"}, str(tmp_path / "t.yaml"),
                             top_categories=2)
    assert list(fit.categories) == ["a", "b", "other"]
    assert fit.category_share["other"] == pytest.approx(23 / 73)
    assert sum(fit.category_share.values()) == pytest.approx(1.0)
    assert fit.categories["other"].rows == 23
    assert "2 categories pooled" in fit.categories["other"].label


def test_no_close_column_still_writes_a_scenario(tmp_path):
    rows = [{"c": f"2022-05-{d:02d} 10:00:00", "k": "a" if d % 2 else "b"} for d in range(1, 29)]
    log = _write(tmp_path / "log.csv", rows)
    fit = calibrate_from_log(str(log), {"created": "c", "category": "k"}, str(tmp_path / "n.yaml"))
    assert fit.categories == {} and any("catalogue defaults" in n for n in fit.notes)
    assert set(load_scenario(tmp_path / "n.yaml").demand.categories) == {"a", "b"}


def test_ks_distance_is_small_for_a_true_sample_and_large_for_a_wrong_one():
    rng = np.random.default_rng(1)
    x = 20.0 * np.exp(1.0 * rng.standard_normal(4000))
    assert ks_distance(x, 20.0, 1.0) < 0.03
    assert ks_distance(x, 60.0, 1.0) > 0.3
    # closes at creation count as "at most one minute": a fit that puts that much mass there is not penalised
    inst = np.concatenate([np.zeros(500), 20.0 * np.exp(rng.standard_normal(500))])
    assert math.isfinite(ks_distance(inst, 1.0, 4.0)) and FLOOR_H > 0


# ----------------------------------------------------------------------------------------- Baltimore
needs_baltimore = pytest.mark.skipif(not BALTIMORE.exists(), reason=f"{BALTIMORE} not present")


@pytest.fixture(scope="module")
def baltimore(tmp_path_factory):
    out = tmp_path_factory.mktemp("baltimore") / "baltimore_311.yaml"
    fit = calibrate_from_log(str(BALTIMORE), parse_columns(BALTIMORE_COLUMNS), str(out))
    return fit, out


@needs_baltimore
def test_baltimore_log_figures(baltimore):
    fit, _ = baltimore
    assert fit.rows_read == 10_000 and fit.rows_used == 10_000
    assert fit.rejects == {"closed: missing (still open)": 208, "due: missing": 286}
    assert fit.median_close_h == pytest.approx(32.4, abs=0.1)  # docs/sources.md, S25: ≈ 32 h
    assert fit.p90_close_h / 24 == pytest.approx(27.0, abs=0.1)  # ≈ 27 days
    assert fit.on_time_close_share == pytest.approx(0.836, abs=0.001)  # 83.6% closed by the due date
    assert fit.channel_mix["hotline"] == pytest.approx(0.4995)
    assert fit.channel_mix["online"] == pytest.approx(0.2576)
    assert fit.channel_mix["offline"] == pytest.approx(0.2429)
    assert fit.channel_mapping["Internal"] == ("offline", 2194)
    w = fit.weekday_profile
    assert min(w[:4]) > 1.1 and max(w[5:]) < 0.6  # Mon–Thu high, weekends low
    assert len(fit.categories) == 11 and "other" in fit.categories
    # Kaplan–Meier, the 208 open rows censored at the horizon: the median is higher than the closed rows'
    # (only 1% of requests close between 30 and 40 h, so the median moves a lot with a little mass)
    assert fit.horizon == "2019-02-13 16:18:56" and fit.open_rows == 208
    assert fit.observed["median_h"] == pytest.approx(39.4, abs=0.1)
    assert fit.observed["p90_h"] / 24 == pytest.approx(30.2, abs=0.1)
    assert fit.observed["within_24h"] == pytest.approx(0.433, abs=0.001)
    assert fit.observed["within_7d"] == pytest.approx(0.736, abs=0.001)
    assert fit.implied_median_close_h == pytest.approx(fit.observed["median_h"], rel=0.05)
    assert fit.implied_p90_close_h == pytest.approx(fit.observed["p90_h"], rel=0.05)
    assert fit.implied_on_time_close_share == pytest.approx(fit.on_time_close_share, abs=0.01)
    assert "Solid Waste" in fit.agencies


@needs_baltimore
def test_baltimore_scenario_reproduces_the_log(baltimore):
    """Median time to close and share closed by the due date within 15%, channel mix within 5 points.

    One 365-day run holds about 1,950 requests; its median time to close varies by about ±7% from seed to
    seed (a mixture with a fifth of the closes at creation), so three replications are averaged (the whole
    distribution is checked by test_baltimore_full_sample_whole_distribution).
    """
    fit, out = baltimore
    sc = load_scenario(out)
    runs = [run_scenario(sc, seed=s, days=365) for s in range(11, 14)]
    median = np.mean([r.summary["median_close_h"] for r in runs])
    on_time = np.mean([r.summary["on_time_close_rate"] for r in runs])
    assert median == pytest.approx(fit.median_close_h, rel=0.15)
    assert on_time == pytest.approx(fit.on_time_close_share, rel=0.15)
    channels = pd.concat([r.cases["channel"].astype(str) for r in runs]).value_counts(normalize=True)
    for ch, share in fit.channel_mix.items():
        assert abs(channels.get(ch, 0.0) - share) < 0.05, ch
    per_day = np.mean([len(r.cases) / 365 for r in runs])
    assert per_day == pytest.approx(fit.requests_per_day, rel=0.05)
    # the departments are staffed so that no order waits: time to close is the service time (plus, for
    # visits, the wait for office hours at intake)
    for r in runs:
        c = r.cases
        assert np.nanmax(c["service_start_h"] - c["dept_arrival_h"]) < 1e-9


@needs_baltimore
def test_shipped_baltimore_scenario_is_up_to_date(baltimore):
    _, out = baltimore
    assert SHIPPED.exists(), "scenarios/baltimore_311.yaml is missing: regenerate it (see README)"
    shipped, fresh = yaml.safe_load(SHIPPED.read_text()), yaml.safe_load(out.read_text())
    assert shipped == fresh
    load_scenario(SHIPPED)


@pytest.fixture(scope="module")
def shipped_log(tmp_path_factory):
    out = tmp_path_factory.mktemp("shipped_log") / "baltimore_311_2000.yaml"
    return calibrate_from_log(str(SHIPPED_LOG), parse_columns(BALTIMORE_COLUMNS), str(out)), out


def test_shipped_log_figures(shipped_log):
    """The README's log example runs on data/baltimore_311_2000.csv; these are the figures it quotes."""
    fit, out = shipped_log
    assert fit.rows_read == 2_000 and fit.rows_used == 2_000
    assert fit.rejects == {"closed: missing (still open)": 45, "due: missing": 66}
    assert fit.median_close_h == pytest.approx(37.6, abs=0.05)
    assert fit.p90_close_h / 24 == pytest.approx(29.3, abs=0.05)
    assert fit.on_time_close_share == pytest.approx(0.834, abs=0.001)
    assert fit.channel_mix == pytest.approx({"hotline": 0.4935, "online": 0.2655, "offline": 0.241})
    assert fit.channel_mapping["Internal"] == ("offline", 430)
    assert len(fit.categories) == 11
    assert load_scenario(out).demand.requests_per_day == pytest.approx(fit.requests_per_day, rel=0.01)


def test_one_model_category_per_log_category_and_kpis_by_it(shipped_log):
    """The scenario has the log's 11 categories (10 request types and ``other``), each one bureau with a
    mixture of phases, not one category per phase; staff is planned on each category's mixture mean, so no
    order waits; the KPIs by category are the request types' own."""
    from experiments.logfit import SATURATION_RISK, _poisson_quantile

    fit, out = shipped_log
    sc = load_scenario(out)
    assert list(sc.demand.categories) == list(fit.categories) and len(fit.categories) == 11
    assert not any("__" in k for k in sc.demand.categories)
    assert sum(c.share for c in sc.demand.categories.values()) == pytest.approx(1.0, abs=1e-4)
    need = max(_poisson_quantile(sc.demand.requests_per_day * c.share / 24 * c.service_time_mean_h,
                                 1 - SATURATION_RISK) + 1 for c in sc.demand.categories.values())
    assert sc.departments.staff.prefecture == need
    text = out.read_text()
    assert "key__" not in text and "11 bureaus, one per category" in text
    r = run_scenario(sc.with_overrides({"demand.requests_per_day": 40.0, "departments.staff.prefecture": 400}),
                     seed=1, days=30)
    c = r.cases
    assert set(c["category"].astype(str)) == set(fit.categories)  # figures by category are per request type
    share = c["category"].astype(str).value_counts(normalize=True)
    assert share["sw_rat_rubout_proactive"] == pytest.approx(fit.category_share["sw_rat_rubout_proactive"], abs=0.03)
    rats = c[c["category"].astype(str) == "sw_rat_rubout_proactive"]
    assert ((rats["closed_h"] - rats["created_h"]) < FLOOR_H).mean() == pytest.approx(
        fit.categories["sw_rat_rubout_proactive"].instant_share, abs=0.05)  # its phases, drawn by weight
    q = r.groups[(r.groups["group_by"] == "queue") & (r.groups["kpi"] == "staff")]["value"]
    assert q.sum() == 11 * 400  # one bureau per category
    assert np.nanmax(c["service_start_h"] - c["dept_arrival_h"]) < 1e-9  # no queue


@needs_baltimore
def test_shipped_log_is_the_head_of_the_full_sample():
    head = BALTIMORE.read_bytes().splitlines(keepends=True)[:2_001]
    assert SHIPPED_LOG.read_bytes() == b"".join(head)


def test_category_keys_keep_non_ascii_letters(tmp_path):
    rows = [{"c": f"2022-05-{d:02d} 10:00:00", "x": f"2022-05-{d:02d} 12:00:00",
             "k": ["城市管理", "Café", "Café!"][d % 3]} for d in range(1, 29)]
    log = _write(tmp_path / "log.csv", rows)
    fit = calibrate_from_log(str(log), {"created": "c", "closed": "x", "category": "k"}, str(tmp_path / "u.yaml"))
    assert set(fit.categories) == {"城市管理", "café", "café_2"}
    assert set(load_scenario(tmp_path / "u.yaml").demand.categories) == {"城市管理", "café", "café_2"}


# ------------------------------------------------------------- the whole distribution of the time to close
def _lognormal_log(path: Path, groups: dict[str, tuple[float, float]], n: int, seed: int) -> Path:
    """``n`` rows per category with lognormal times to close (median h, sigma), spread over 200 days."""
    rng = np.random.default_rng(seed)
    rows = []
    start = pd.Timestamp("2022-01-03")
    for name, (med, sig) in groups.items():
        created = start + pd.to_timedelta(rng.random(n) * 200 * 24, unit="h")
        closed = created + pd.to_timedelta(med * np.exp(sig * rng.standard_normal(n)), unit="h")
        rows += [{"c": a.strftime(ISO), "x": b.strftime(ISO), "k": name} for a, b in zip(created, closed, strict=True)]
    return _write(path, rows)


def test_recovers_lognormal_parameters_at_200_rows_per_category(tmp_path):
    """Known lognormals, 200 rows each: mu within ±0.15, sigma within ±15%, and the scenario's phase mixture
    within 0.08 of the true CDF (the sampling error of 200 rows is ≈ 0.06 at the 90% level)."""
    truth = {"quick": (2.0, 0.5), "pothole": (10.0, 0.8), "tree": (100.0, 1.2), "sewer": (400.0, 1.6)}
    log = _lognormal_log(tmp_path / "ln.csv", truth, 200, seed=11)
    fit = calibrate_from_log(str(log), {"created": "c", "closed": "x", "category": "k"}, str(tmp_path / "ln.yaml"))
    grid = np.exp(np.linspace(math.log(0.05), math.log(1e5), 400))
    for name, (med, sig) in truth.items():
        f = fit.categories[name]
        assert abs(f.mu - math.log(med)) <= 0.15, name
        assert f.sigma == pytest.approx(sig, rel=0.15), name
        true_cdf = 0.5 * (1 + np.vectorize(math.erf)((np.log(grid) - math.log(med)) / (sig * math.sqrt(2))))
        assert np.abs(f.phases.cdf(grid) - true_cdf).max() < 0.08, name
        assert f.ks < 0.08 and f.own_weight == pytest.approx(200 / 205)


def test_heavy_tail_and_closes_at_creation_are_kept(tmp_path):
    """A fifth closed on creation, a lognormal body and a Pareto tail (index 1.1): one lognormal misses the
    tail (what the issue reported); the phase mixture keeps median, p90 and the 24 h / 7 day shares."""
    rng = np.random.default_rng(3)
    n = 1500
    kind = rng.choice(3, size=n, p=[0.2, 0.55, 0.25])
    hours = np.where(kind == 0, 0.0, np.where(kind == 1, 30 * np.exp(0.7 * rng.standard_normal(n)),
                                               150 * rng.random(n) ** (-1 / 1.1)))
    created = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.random(n) * 300 * 24, unit="h")
    closed = created + pd.to_timedelta(hours, unit="h")
    log = _write(tmp_path / "tail.csv", [{"c": a.strftime(ISO), "x": b.strftime(ISO)}
                                         for a, b in zip(created, closed, strict=True)])
    fit = calibrate_from_log(str(log), {"created": "c", "closed": "x"}, str(tmp_path / "tail.yaml"))
    obs, fitted = fit.observed, fit.fitted
    assert fitted["median_h"] == pytest.approx(obs["median_h"], rel=0.1)
    assert fitted["p90_h"] == pytest.approx(obs["p90_h"], rel=0.1)
    assert abs(fitted["within_24h"] - obs["within_24h"]) < 0.02
    assert abs(fitted["within_7d"] - obs["within_7d"]) < 0.02
    one = fit.categories["all"]
    assert one.lognormal_p90_h < 0.8 * obs["p90_h"] or one.ks_lognormal > 2 * one.ks  # one lognormal is worse


def test_censoring_at_the_horizon_keeps_the_tail(tmp_path):
    """A five-day window followed for 20 more days (LA-like): requests still open at the horizon are
    right-censored, so the Kaplan–Meier figures recover the true ones where closed rows alone do not, and the
    simulation, censored at its end the same way, agrees."""
    rng = np.random.default_rng(8)
    n = 3000
    created = pd.Timestamp("2017-12-27") + pd.to_timedelta(rng.random(n) * 5 * 24, unit="h")
    hours = 80.0 * np.exp(1.0 * rng.standard_normal(n))
    horizon = pd.Timestamp("2018-01-21")
    closed = created + pd.to_timedelta(hours, unit="h")
    rows = [{"c": a.strftime(ISO), "x": b.strftime(ISO) if b <= horizon else ""}
            for a, b in zip(created, closed, strict=True)]
    log = _write(tmp_path / "window.csv", rows)
    fit = calibrate_from_log(str(log), {"created": "c", "closed": "x"}, str(tmp_path / "window.yaml"))
    true_p90 = 80.0 * math.exp(1.2815515655446004)
    assert fit.open_rows == fit.rejects["closed: missing (still open)"] > 50
    assert fit.p90_close_h < 0.9 * true_p90  # closed rows only: the tail is lost
    assert fit.observed["p90_h"] == pytest.approx(true_p90, rel=0.1)
    assert fit.observed["median_h"] == pytest.approx(80.0, rel=0.08)
    assert fit.fitted["p90_h"] == pytest.approx(true_p90, rel=0.15)
    cmp = compare(fit, seeds=(1,), days=60, cases_per_run=8000)
    assert cmp.simulated["p90_h"] == pytest.approx(true_p90, rel=0.15)
    assert cmp.simulated["median_h"] == pytest.approx(80.0, rel=0.1)


def test_kaplan_meier_by_hand():
    d = kaplan_meier(np.array([1.0, 2.0, 2.0, 3.0, 5.0]), np.array([True, True, False, True, False]))
    # S(1) = 4/5; S(2) = 4/5 · 3/4 = 3/5; censored at 2; S(3) = 3/5 · 1/2 = 3/10; open after 5 h
    assert d.cdf([1.0, 2.0, 3.0, 4.9]) == pytest.approx([0.2, 0.4, 0.7, 0.7])
    assert d.rest == pytest.approx(0.3) and d.follow_h == 5.0
    assert d.quantile(0.5) == 3.0 and math.isnan(d.quantile(0.8))


def test_cancelled_rows_and_date_only_closes(tmp_path):
    base = pd.Timestamp("2021-03-01 09:30:00")
    rows = []
    for i in range(40):
        c = base + pd.Timedelta(hours=5 * i)
        rows.append({"c": c.strftime(ISO), "x": (c + pd.Timedelta(hours=10 + i)).strftime(ISO), "s": "Closed"})
    rows += [
        {"c": base.strftime(ISO), "x": base.normalize().strftime(ISO), "s": "Closed"},  # date-only close, same day
        {"c": base.strftime(ISO), "x": (base - pd.Timedelta(seconds=20)).strftime(ISO), "s": "Closed"},  # skew
        {"c": base.strftime(ISO), "x": (base - pd.Timedelta(hours=30)).strftime(ISO), "s": "Closed"},  # impossible
        {"c": base.strftime(ISO), "x": (base + pd.Timedelta(hours=2)).strftime(ISO), "s": "Cancelled"},
        {"c": base.strftime(ISO), "x": (base + pd.Timedelta(hours=2)).strftime(ISO), "s": "Duplicate"},
        {"c": base.strftime(ISO), "x": "", "s": "Open"},
    ]
    log = _write(tmp_path / "log.csv", rows)
    fit = calibrate_from_log(str(log), {"created": "c", "closed": "x", "status": "s"}, str(tmp_path / "o.yaml"))
    assert fit.rejects == {"closed: missing (still open)": 1, "closed: date only, same day": 1,
                           "closed: seconds before created": 1, "closed: before created": 1, "status: cancelled": 2}
    assert fit.rows_used == 46 and fit.closed_rows == 42 and fit.open_rows == 1
    assert fit.categories["all"].instant_share == pytest.approx(2 / 42)
    # the horizon is the log's latest timestamp: the last close
    assert fit.horizon == (base + pd.Timedelta(hours=5 * 39 + 49)).isoformat(sep=" ")
    assert "'Cancelled', 'Duplicate'" in fit.reject_effects["status: cancelled"]


def test_la_fixture_rows():
    """tests/fixtures/la_311_600.csv: 600 rows of ../shared/data/la_311_sample.csv (every row closed before it
    was created, every open row, 30 cancelled ones and 553 random others, 12 of them cancelled too; seed 20171231), its mapped columns."""
    fx = pd.read_csv(LA_FIXTURE, dtype=str, keep_default_na=False)
    assert len(fx) == 600 and fx["SRNumber"].is_unique
    if LOS_ANGELES.exists():
        full = pd.read_csv(LOS_ANGELES, dtype=str, keep_default_na=False).set_index("SRNumber")
        assert (full.loc[fx["SRNumber"], fx.columns[1:]].to_numpy() == fx[fx.columns[1:]].to_numpy()).all()


@pytest.fixture(scope="module")
def la_small(tmp_path_factory):
    out = tmp_path_factory.mktemp("la") / "la_small.yaml"
    return calibrate_from_log(str(LA_FIXTURE), parse_columns(LA_COLUMNS), str(out), date_format=LA_FORMAT)


def _assert_close(cmp, median_rel, share_pts, p90_rel):
    o, s = cmp.observed, cmp.simulated
    assert s["median_h"] == pytest.approx(o["median_h"], rel=median_rel), cmp.describe()
    assert s["p90_h"] == pytest.approx(o["p90_h"], rel=p90_rel), cmp.describe()
    assert abs(s["within_24h"] - o["within_24h"]) <= share_pts / 100, cmp.describe()
    assert abs(s["within_7d"] - o["within_7d"]) <= share_pts / 100, cmp.describe()


def test_la_fixture_simulated_matches_the_log(la_small):
    fit = la_small
    assert fit.rejects == {"closed: missing (still open)": 5, "closed: date only, same day": 12,
                           "status: cancelled": 42}
    assert fit.horizon.startswith("2018-")  # closures run months past the five-day window
    obs, per, _ = observed_distributions(str(LA_FIXTURE), parse_columns(LA_COLUMNS), LA_FORMAT, fit.category_keys)
    assert figures(obs) == pytest.approx(fit.observed)
    cmp = compare(fit, obs, per, seeds=(1,), days=60, cases_per_run=10000)
    _assert_close(cmp, 0.15, 5, 0.2)
    assert set(cmp.ks) == set(fit.categories)
    big = [k for k, f in fit.categories.items() if f.rows >= 30]
    assert len(big) >= 4 and all(cmp.ks[k] < 0.15 for k in big), cmp.ks
    assert "KS per category" in cmp.describe()
    assert "KS" in fit.describe() and "phases" in fit.describe()


def test_shipped_baltimore_log_simulated_matches(shipped_log):
    fit, _ = shipped_log
    cmp = compare(fit, seeds=(1,), days=120, cases_per_run=10000)
    _assert_close(cmp, 0.15, 5, 0.2)


def test_check_command_reports_and_rejects_bad_input(capsys, tmp_path):
    code = main(["check", str(tmp_path / "none.csv"), "--columns", "created=A"])
    assert code == 2 and "log file not found" in capsys.readouterr().err
    code = main(["check", str(LA_FIXTURE), "--columns", "created=CreatedDate,status=State"])
    assert code == 2 and "'State'" in capsys.readouterr().err


# ------------------------------------------------------------------------- the full samples (developers)
needs_la = pytest.mark.skipif(not LOS_ANGELES.exists(), reason=f"{LOS_ANGELES} not present")


@needs_baltimore
def test_baltimore_full_sample_whole_distribution(baltimore):
    """Issue acceptance: median within 15%, shares within 5 points, p90 within 20%; KS per category."""
    fit, _ = baltimore
    cmp = compare(fit, seeds=(1,), days=90, cases_per_run=30000)
    _assert_close(cmp, 0.15, 5, 0.2)
    assert set(cmp.ks) == set(fit.categories) and max(cmp.ks.values()) < 0.1, cmp.ks
    assert max(f.ks for f in fit.categories.values()) < 0.1


@needs_la
def test_los_angeles_full_sample_whole_distribution(tmp_path):
    fit = calibrate_from_log(str(LOS_ANGELES), parse_columns(LA_COLUMNS), str(tmp_path / "la.yaml"),
                             date_format=LA_FORMAT)
    assert fit.rejects == {"closed: missing (still open)": 5, "closed: date only, same day": 12,
                           "status: cancelled": 246}
    obs, per, _ = observed_distributions(str(LOS_ANGELES), parse_columns(LA_COLUMNS), LA_FORMAT, fit.category_keys)
    cmp = compare(fit, obs, per, seeds=(1,), days=90, cases_per_run=30000)
    _assert_close(cmp, 0.15, 5, 0.2)
    assert max(cmp.ks.values()) < 0.15, cmp.ks


@needs_baltimore
def test_baltimore_1000_row_subsample_judged_on_held_out_rows(tmp_path):
    """Fit on 1,000 random rows (seed 2; 130-odd request types, most under 30 rows), judge on the other 9,000:
    median within 25%, shares within 7 points, p90 within 35%.

    One subsample of ten. Over subsample seeds 1–10 (``python -m experiments.logfit holdout … --seed N``)
    the p90 and both shares pass in all ten, but the median misses 25% in 3 of 10 (seeds 1, 4 and 6:
    −26.7%, −29.6%, −28.7%), and seed 2 itself is at −21%: the median lies where the CDF is flat (only 1%
    of requests close between 30 and 40 h), so a 1,000-row subsample's own median lands near 30 h (seeds
    1–6 and 9: 29.6–31.8 h) or near 40 h against 40.4–40.8 h in the held-out rows; the fit follows the
    subsample it is given."""
    fit, cmp = holdout_check(str(BALTIMORE), parse_columns(BALTIMORE_COLUMNS), rows=1000, seed=2,
                             sim_seeds=(1,), days=90, cases_per_run=30000, workdir=str(tmp_path))
    assert fit.rows_used == 1000 and cmp.observed_rows == 9000
    _assert_close(cmp, 0.25, 7, 0.35)
