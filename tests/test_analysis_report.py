"""The report: both files, every section, the figures beside it, failed runs, a reading that follows the
numbers, and clean errors for missing or corrupt stores."""

from __future__ import annotations

import re

import numpy as np
import pytest
from fixtures.analysis_stores import (
    LEVEL_CASES,
    QUEUES,
    level_cases,
    level_value,
    linear_kpis,
    queue_values,
    sensitivity_points,
    write_store,
)

from analysis.report import SECTIONS, ReportError, Table, build_report, reading, write_report
from analysis.store import StoreError, load_store
from analysis.summarize import format_interval, format_value, kpi_label, level_table, paired_differences
from common.stats import t_interval

SCENARIOS = ("baseline", "mandate_24h", "supervision_high")  # write_store's default, in order
LEVELS = ["central", "province", "prefecture", "county", "township", "platform"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = write_store(tmp_path_factory.mktemp("rep") / "s", replications=4, days=5, cases_per_run=50,
                       failed=[("mandate_24h", 3)])
    paths = write_report(root, dpi=50)
    return root, paths, paths["html"].read_text(encoding="utf-8"), paths["md"].read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def level_section(report):
    root = report[0]
    _, sections = build_report(root, dpi=30)
    return load_store(root), {s.id: s for s in sections}["handling-level"]


def test_writes_html_markdown_and_figures(report):
    root, paths, html, md = report
    assert paths["html"] == root / "report.html" and paths["md"] == root / "report.md"
    pngs = sorted(p.name for p in (root / "figures").glob("*.png"))
    assert pngs == ["equity.png", "rates.png", "time_distributions.png", "timeseries.png", "tradeoff.png"]
    # self-contained: every figure embedded, nothing fetched
    assert html.count('src="data:image/png;base64,') == len(pngs)
    assert not re.search(r'(src|href)="(https?:|//|figures/)', html)
    for name in pngs:
        assert f"](figures/{name})" in md


def test_every_section_is_present_in_order(report):
    _, _, html, md = report
    positions = [html.index(f'<section id="{sid}"><h2>{title}</h2>') for sid, title in SECTIONS]
    assert positions == sorted(positions)
    md_positions = [md.index(f"## {title}\n") for _, title in SECTIONS]
    assert md_positions == sorted(md_positions)


def test_what_was_run_lists_spec_seeds_versions_timings(report):
    root, _, html, md = report
    run = md[md.index("## What was run"):md.index("## Reading")]
    assert "analysis-test" in run and "experiments/test.yaml" in run and "0123abcd" in run
    store = load_store(root)
    for seed in store.manifest["replication_seeds"]:
        assert str(seed) in run
    assert "python 3.12" in run and "Wall time 12.5 s" in run and "git commit deadbeef" in run
    assert "Runs: 12 — 11 finished, 1 failed" in run
    assert "policy.response_mandate_hours: 72 → 24" in run  # how mandate_24h differs from the baseline


def test_kpi_and_paired_tables(report):
    root, _, html, md = report
    kpis = md[md.index("## KPI table"):md.index("## Paired differences")]
    assert "| KPI (unit) | baseline | mandate_24h | supervision_high |" in kpis
    assert "response_rate (share of cases)" in kpis and "cost_hours (staff-hours)" in kpis
    for kpi, unit in (("repeat_share", "share of cases"), ("repeat_true_resolution_rate", "share of final repeat cases"),
                      ("repeat_satisfaction_rate", "share of judged repeat cases"), ("median_relay_h", "hours"),
                      ("relay_wait_h", "hours")):
        assert f"| {kpi} ({unit}) |" in kpis
    # the cost also in full-time equivalents, right below it: paid staff-hours over the 5 measured days at 40 h a week
    from analysis.summarize import kpi_table

    t = kpi_table(root, ["cost_hours"]).set_index("scenario")
    lines = kpis.splitlines()
    row = lines[next(i for i, line in enumerate(lines) if line.startswith("| cost_hours (staff-hours) |")) + 1]
    per_fte = 40.0 * 5 / 7.0
    assert row == "| cost_fte (full-time equivalents) | " + " | ".join(
        f"{t.loc[sc, 'mean'] / per_fte:,.1f} ± {t.loc[sc, 'half_width'] / per_fte:,.1f}" for sc in SCENARIOS) + " |"
    assert "cost_fte: cost_hours in full-time equivalents" in kpis
    paired = md[md.index("## Paired differences"):md.index("## Equity")]
    assert "mandate_24h − baseline" in paired and "common random numbers" in paired
    assert "| repeat_share (share of cases) |" in paired and "| relay_wait_h (hours) |" in paired
    assert "<strong>" in html[html.index('id="paired-differences"'):html.index('id="equity"')]


def test_equity_section_shows_groups_and_the_digital_gap(report):
    _, _, _, md = report
    equity = md[md.index("## Equity"):md.index("## By handling level")]
    for group in ("requester kind: enterprise", "channel: offline", "area: rural"):
        assert group in equity
    assert "digital gap: urban − rural online share" in equity and "urban − rural: resolution rate" in equity
    assert "township" not in equity and "relay@" not in equity  # the split by level has its own section


def _interval(values, kpi):
    iv = t_interval(values)
    return format_interval(iv.mean, iv.low, iv.high, kpi)


def _runs(store, scenario):
    """(replication, overall KPIs) of the scenario's finished runs."""
    ov = store.overall[store.overall["scenario"] == scenario]
    return [(int(k), dict(zip(g["kpi"], g["value"], strict=True))) for k, g in ov.groupby("replication")]


def test_level_section_follows_the_fixture(level_section):
    store, sec = level_section
    tables = [b for b in sec.blocks if isinstance(b, Table)]
    assert len(tables) == len(SCENARIOS) + 1  # one per scenario, then the queue waits
    names = [b.text for b in sec.blocks if type(b).__name__ == "Para" and b.text.startswith("**")]
    assert names == [f"**{s}**" for s in SCENARIOS]
    columns = {"response rate (share of cases)": "response_rate",
               "median time to first response (hours)": "median_response_h",
               "true resolution (share of final cases)": "true_resolution_rate",
               "recorded resolution (share of final cases)": "resolution_rate",
               "cases per run": "cases", "share of the scenario's cases": "case_share"}
    for si, (scenario, table) in enumerate(zip(SCENARIOS, tables, strict=False)):
        assert table.header == ["level", *columns]
        assert [r[0] for r in table.rows] == LEVELS  # top to bottom, platform last, none dropped
        runs = _runs(store, scenario)
        assert len(runs) == (3 if scenario == "mandate_24h" else 4)  # mandate_24h's replication 3 failed
        for row in table.rows:
            level = row[0]
            for cell, kpi in zip(row[1:], columns.values(), strict=True):
                if kpi == "cases":
                    values = [level_cases(level, si, k) for k, _ in runs]
                elif kpi == "case_share":
                    values = [level_cases(level, si, k) / sum(level_cases(lv, si, k) for lv in LEVEL_CASES)
                              for k, _ in runs]
                else:  # a rate or time is defined only in the runs where the level handled cases
                    values = [level_value(kpi, level, ov) for k, ov in runs if level_cases(level, si, k) > 0]
                assert cell == _interval(values, kpi), (scenario, level, kpi)


def test_level_means_count_a_missing_level_as_zero_cases(level_section):
    store, _ = level_section
    t = level_table(store).set_index(["scenario", "group", "kpi"])
    # central handles cases in odd replications only (3 + k): runs without it still count, as 0
    assert t.loc[("baseline", "central", "cases"), "n"] == 4
    assert t.loc[("baseline", "central", "cases"), "mean"] == pytest.approx((0 + 4 + 0 + 6) / 4)
    assert t.loc[("mandate_24h", "central", "cases"), "mean"] == pytest.approx(4 / 3)
    # ... while its rates come from the runs where it handled cases
    assert t.loc[("baseline", "central", "response_rate"), "n"] == 2
    # the platform answers 5 more cases per scenario index; shares sum to one in every scenario
    assert t.loc[("supervision_high", "platform", "cases"), "mean"] == pytest.approx(45 + 10 + 1.5)
    shares = t.xs("case_share", level="kpi")["mean"].groupby(level="scenario").sum()
    assert np.allclose(shares, 1.0)


def test_queue_table_shows_where_the_relay_builds_up(level_section, report):
    store, sec = level_section
    table = [b for b in sec.blocks if isinstance(b, Table)][-1]
    assert table.header == ["bureau (role@level)", *SCENARIOS]
    order = ["relay@central", "relay@province", "relay@prefecture", "relay@county", "department@prefecture",
             "department@county", "department@township"]
    assert [r[0] for r in table.rows] == order and set(order) == set(QUEUES)
    for si, scenario in enumerate(SCENARIOS):
        reps = [k for k, _ in _runs(store, scenario)]
        for row in table.rows:
            vals = [queue_values(row[0], si, k) for k in reps]
            waits = [w for w, _, _ in vals if np.isfinite(w)]
            starts = np.mean([s for _, s, _ in vals])
            staff = np.mean([s for _, _, s in vals])
            wait = _interval(waits, "queue_wait_h") if waits else "–"
            assert row[1 + si] == (f"{wait}\n({format_value(starts, 'queue_starts')} started per run, "
                                   f"{format_value(staff, 'staff')} staff)"), (scenario, row[0])
    # the longest wait in bold: baseline's relays at county; the other scenarios' relays are quicker
    assert table.strong == {(order.index("relay@county"), 1), (order.index("department@county"), 2),
                            (order.index("department@county"), 3)}
    bullets = next(b for b in sec.blocks if type(b).__name__ == "Bullets").items
    assert bullets[0].startswith("In **baseline** orders wait longest at relay@county: 9.8 h")
    assert "among the relays" not in bullets[0]  # the longest wait is a relay's already
    assert bullets[1].startswith("In **mandate_24h** orders wait longest at department@county: 7.5 h")
    assert "; among the relays, at relay@county: " in bullets[1]
    md = report[3]
    part = md[md.index("## By handling level"):md.index("## Sensitivity")]
    assert "| relay@county | **9.8 [" in part and "| relay@central | – (0 started per run, 1 staff) |" in part


def test_a_store_without_levels_or_queues_says_so(tmp_path):
    root = write_store(tmp_path / "s", replications=2, days=2, with_cases=False, with_levels=False)
    assert not load_store(root).groups["group_by"].isin(["handling_level", "queue"]).any()
    paths = write_report(root, dpi=30)
    md = paths["md"].read_text()
    part = md[md.index("## By handling level"):md.index("## Sensitivity")]
    assert "The store has no split by handling level" in part and "outcomes by level are left out" in part
    assert "The store has no queue waits by bureau role and level" in part and "|" not in part
    assert "requester kind: enterprise" in md  # the equity splits are still there


def test_failed_runs_are_reported_and_the_rest_analysed(report):
    _, _, html, md = report
    failed = md[md.index("## Failed runs"):]
    assert "1 of 12 run(s) failed" in failed
    assert "mandate_24h-p0-r3" in failed and "departments ran out of staff" in failed
    assert "1 run(s) failed and are left out" in md


def test_reading_follows_the_numbers(tmp_path):
    root = write_store(tmp_path / "s", replications=5, days=3, with_cases=False)
    store = load_store(root)
    diffs = paired_differences(store)
    lines = reading(store, diffs)
    mandate = next(line for line in lines if "**mandate_24h**" in line)
    # the fixture's mandate raises the response rate by 8 points and shortens the median response by 5 h
    assert "raised the response rate from" in mandate
    assert "shortened the median time to first response" in mandate
    for r in diffs[diffs["scenario"] == "mandate_24h"].itertuples():  # only significant changes are named
        if not r.significant:
            assert f"the {kpi_label(r.kpi)} from" not in mandate, r.kpi
    assert not diffs[(diffs["scenario"] == "mandate_24h") & (diffs["kpi"] == "resolution_rate")]["significant"].any()
    supervision = next(line for line in lines if "**supervision_high**" in line)
    assert "raised the resolution rate" in supervision and "better" in supervision
    assert "raised the cost in paid hours" in supervision and "costlier" in supervision
    sig = diffs[(diffs["scenario"] == "mandate_24h") & (diffs["kpi"] == "response_rate")].iloc[0]
    assert f"+{100 * sig['diff']:.1f} pp" in mandate
    assert any("digital gap" in line for line in lines)
    # costs also in full-time equivalents: cost_hours over the measured days at 40 hours a week
    from analysis.report import fte
    from analysis.summarize import kpi_table

    cost = kpi_table(store, ["cost_hours"]).set_index("scenario")["mean"]
    fte_line = next(line for line in lines if "full-time equivalents" in line)
    for sc in store.scenarios:
        assert f"{sc} {cost[sc] / (40.0 * 3 / 7.0):,.1f}" in fte_line
    assert fte(280.0, 7.0) == pytest.approx(7.0)


def test_reading_says_when_nothing_changed(tmp_path):
    root = write_store(tmp_path / "s", scenarios=("baseline", "same_again"), replications=3, days=2,
                       with_cases=False)
    store = load_store(root)
    lines = reading(store, paired_differences(store))
    assert any("**same_again** changed no KPI significantly" in line for line in lines) or any(
        "**same_again**" in line for line in lines)


def test_all_runs_failed_still_gives_a_report(tmp_path):
    root = write_store(tmp_path / "s", scenarios=("baseline", "mandate_24h"), replications=2, days=2,
                       failed=[("baseline", 0), ("baseline", 1), ("mandate_24h", 0), ("mandate_24h", 1)])
    paths = write_report(root, dpi=40)
    md = paths["md"].read_text()
    assert "No run finished (4 failed)" in md and "4 of 4 run(s) failed" in md
    assert not list((root / "figures").glob("*.png"))


def test_sensitivity_report_for_a_morris_design(tmp_path):
    design, points = sensitivity_points("morris")
    root = write_store(tmp_path / "m", scenarios=("zzic",), replications=2, design=design, points=points,
                       kpi_fn=linear_kpis, with_cases=False, days=2)
    _, sections = build_report(root, dpi=40)
    by_id = {s.id: s for s in sections}
    table = by_id["sensitivity"].blocks[0]
    assert table.header[:3] == ["KPI", "parameter", "μ*"]
    row = next(r for r in table.rows if r[0] == "resolution_rate" and r[1] == "policy.supervision_intensity")
    assert row[2] == "0.4"
    text = " ".join(by_id["reading"].blocks[0].items)
    assert "moved most by **policy.supervision_intensity** (μ* = 0.4)" in text
    assert {b.name for b in by_id["figures"].blocks if hasattr(b, "png")} >= {"morris", "rates"}


def test_grid_report_names_points_and_significant_spreads(tmp_path):
    design, points = sensitivity_points("grid")
    root = write_store(tmp_path / "g", scenarios=("zzic",), replications=3, design=design, points=points,
                       with_cases=False, days=2)
    paths = write_report(root, dpi=40)
    md = paths["md"].read_text()
    assert (root / "figures" / "sweep_heatmap.png").exists()
    assert "| scenario | point | policy.response_mandate_hours | policy.supervision_intensity |" in md
    assert "| cost_hours (staff-hours) | cost_fte (full-time equivalents) |" in md


def test_missing_or_corrupt_store_raises_store_error(tmp_path):
    with pytest.raises(StoreError, match="no such result store"):
        write_report(tmp_path / "absent")
    root = write_store(tmp_path / "s", replications=1, days=1, with_cases=False)
    (root / "manifest.json").write_text("{not json")
    with pytest.raises(StoreError, match="corrupt JSON"):
        write_report(root)
    assert not (root / "report.html").exists()


def test_unwritable_output_is_a_report_error(tmp_path):
    root = write_store(tmp_path / "s", replications=1, days=1, with_cases=False)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ReportError, match="cannot write the report"):
        write_report(root, out_dir=blocker / "sub", dpi=40)
