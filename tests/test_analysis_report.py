"""The report: both files, every section, the figures beside it, failed runs, a reading that follows the
numbers, and clean errors for missing or corrupt stores."""

from __future__ import annotations

import re

import pytest
from fixtures.analysis_stores import linear_kpis, sensitivity_points, write_store

from analysis.report import SECTIONS, ReportError, build_report, reading, write_report
from analysis.store import StoreError, load_store
from analysis.summarize import kpi_label, paired_differences


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = write_store(tmp_path_factory.mktemp("rep") / "s", replications=4, days=5, cases_per_run=50,
                       failed=[("mandate_24h", 3)])
    paths = write_report(root, dpi=50)
    return root, paths, paths["html"].read_text(encoding="utf-8"), paths["md"].read_text(encoding="utf-8")


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
    _, _, html, md = report
    kpis = md[md.index("## KPI table"):md.index("## Paired differences")]
    assert "| KPI (unit) | baseline | mandate_24h | supervision_high |" in kpis
    assert "response_rate (share of cases)" in kpis and "cost_hours (staff-hours)" in kpis
    paired = md[md.index("## Paired differences"):md.index("## Equity")]
    assert "mandate_24h − baseline" in paired and "common random numbers" in paired
    assert "<strong>" in html[html.index('id="paired-differences"'):html.index('id="equity"')]


def test_equity_section_shows_groups_and_the_digital_gap(report):
    _, _, _, md = report
    equity = md[md.index("## Equity"):md.index("## Sensitivity")]
    for group in ("requester kind: enterprise", "channel: offline", "area: rural"):
        assert group in equity
    assert "digital gap: urban − rural online share" in equity and "urban − rural: resolution rate" in equity


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
