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
    ks_distance,
    parse_columns,
)
from sim import load_scenario, run_scenario
from sim.errors import WenzhengError

ROOT = Path(__file__).resolve().parents[1]
BALTIMORE = ROOT.parent / "shared" / "data" / "baltimore_311_sample.csv"  # the full sample (developers only)
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
    assert pot.fitted_on_time_share == pytest.approx(pot.on_time_share, abs=1e-6)
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
    for name, cat in sc.demand.categories.items():
        assert cat.jurisdiction.value == "prefecture"
        assert cat.consultation_share == 0
        assert cat.service_time_median_h == pytest.approx(fit.categories[name].median_h, rel=1e-4)
    assert sum(sc.citizens.channel_mix.values()) == pytest.approx(1.0, abs=1e-4)
    head = out.read_text().split("\nname:")[0]
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
    assert fit.implied_median_close_h == pytest.approx(fit.median_close_h, rel=0.1)
    assert fit.implied_on_time_close_share == pytest.approx(fit.on_time_close_share, abs=0.01)
    assert "Solid Waste" in fit.agencies


@needs_baltimore
def test_baltimore_scenario_reproduces_the_log(baltimore):
    """Median time to close and share closed by the due date within 15%, channel mix within 5 points.

    One 365-day run holds about 1,950 requests; its median time to close varies by about ±7% from seed to
    seed (a mixture with a fifth of the closes at creation), so six replications are averaged.
    """
    fit, out = baltimore
    sc = load_scenario(out)
    runs = [run_scenario(sc, seed=s, days=365) for s in range(11, 17)]
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
