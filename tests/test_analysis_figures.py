"""Every figure function draws a non-empty picture from a small store, and says why when it cannot."""

from __future__ import annotations

import io

import matplotlib.image as mpimg
import numpy as np
import pytest
from fixtures.analysis_stores import linear_kpis, sensitivity_points, write_store
from matplotlib.figure import Figure

from analysis import figures as F
from analysis.store import load_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = write_store(tmp_path_factory.mktemp("fig") / "s", replications=3, days=6, cases_per_run=60,
                       failed=[("supervision_high", 0)])
    return load_store(root)


@pytest.fixture(scope="module")
def bare_store(tmp_path_factory):
    return load_store(write_store(tmp_path_factory.mktemp("bare") / "s", replications=2, days=3, with_cases=False))


def design_store(tmp_path_factory, kind):
    design, points = sensitivity_points(kind)
    if kind == "grid":  # a "no mandate" setting is stored as NaN
        points[0]["policy.response_mandate_hours"] = float("nan")
        points[1]["policy.response_mandate_hours"] = float("nan")
        points[2]["policy.response_mandate_hours"] = float("nan")
    root = write_store(tmp_path_factory.mktemp(kind) / "s", scenarios=("zzic",), replications=2, design=design,
                       points=points, kpi_fn=linear_kpis, with_cases=False, days=2)
    return load_store(root)


def assert_picture(fig: Figure, min_px: int = 200) -> np.ndarray:
    """The figure renders to a PNG of reasonable size that is not a blank canvas."""
    assert isinstance(fig, Figure)
    png = F.to_png(fig, dpi=50)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(io.BytesIO(png), format="png")
    h, w = img.shape[:2]
    assert w >= min_px and h >= min_px // 2
    assert img[..., :3].std() > 0.05, "the picture is blank"
    return img


def axis_texts(fig: Figure) -> list[str]:
    return [t for ax in fig.axes for t in (ax.get_xlabel(), ax.get_ylabel(), ax.get_title())]


@pytest.mark.parametrize("func", [F.rates_figure, F.timeseries_figure, F.time_distributions_figure,
                                  F.cost_tradeoff_figure, F.equity_figure])
def test_scenario_figures_draw(store, func):
    fig = func(store)
    assert_picture(fig)
    labels = [t for t in axis_texts(fig) if t]
    assert labels, "axes must be labelled"


def test_axes_carry_units(store):
    rates = axis_texts(F.rates_figure(store))
    assert "share of cases (%)" in rates and "share of judged cases (%)" in rates
    ts = axis_texts(F.timeseries_figure(store))
    assert "open cases" in ts and "trust (0–1)" in ts and "day after the warm-up" in ts
    dist = axis_texts(F.time_distributions_figure(store))
    assert any("hours from report to first response (log scale)" == t for t in dist)
    assert all(ax.get_xscale() == "log" for ax in F.time_distributions_figure(store).axes[:2])
    trade = axis_texts(F.cost_tradeoff_figure(store))
    assert "cost in paid hours (staff-hours)" in trade
    assert "true resolution rate (share of final cases)" in trade  # true outcomes, not recorded ones


def test_tradeoff_marks_the_efficient_scenarios(store):
    fig = F.cost_tradeoff_figure(store, outcomes=("resolution_rate",))
    names = {t.get_text() for t in fig.axes[0].texts}
    assert names <= set(store.scenarios) and names  # labels name scenarios
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "not beaten on both (Pareto-efficient)" in legend


def test_tradeoff_gives_the_cost_in_full_time_equivalents_on_top(store):
    """The top axis reads the bottom's paid staff-hours as full-time equivalents: hours / (40 h × days / 7)."""
    fig = F.cost_tradeoff_figure(store)
    fig.draw_without_rendering()
    ax = fig.axes[0]
    top = ax.child_axes[0]
    assert top.get_xlabel() == "full-time equivalents (40 h a week over 6 days)"
    per_fte = 40.0 * 6 / 7.0
    np.testing.assert_allclose(top.get_xlim(), np.array(ax.get_xlim()) / per_fte)


def test_no_figure_has_overlapping_labels(store):
    """Checked from the drawn text extents (matplotlib's renderer), for every figure of the report."""
    for func in (F.rates_figure, F.timeseries_figure, F.time_distributions_figure, F.cost_tradeoff_figure,
                 F.equity_figure):
        fig = func(store)
        fig.draw_without_rendering()
        assert F.label_overlaps(fig) == [], func.__name__


def test_crowded_points_keep_only_names_that_fit():
    """Twelve long names on points almost on top of each other: the names kept never overlap, some are kept,
    and the ones that fit nowhere are left out (the legend names every marker)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    x = 100 + np.arange(12) * 0.01
    y = 0.5 + np.arange(12) * 0.0001
    ax.plot(x, y, "o")
    ax.set_xlim(90, 110)
    ax.set_ylim(0, 1)
    fig.draw_without_rendering()
    F._place_labels(ax, x, y, [f"a rather long scenario name {i}" for i in range(12)])
    kept = [t for t in ax.texts if t.get_text()]
    assert 0 < len(kept) < 12
    assert F.label_overlaps(fig) == []
    # the check itself finds overlaps when there are some
    ax.annotate("overlapping", (100, 0.5))
    ax.annotate("overlapping too", (100, 0.5))
    assert ("overlapping", "overlapping too") in F.label_overlaps(fig)
    plt.close(fig)


def test_series_styles_differ_beyond_colour():
    styles = F.scenario_styles([f"s{i}" for i in range(6)])
    for attr in ("marker", "linestyle", "hatch"):
        values = [repr(getattr(s, attr)) for s in styles.values()]
        assert len(set(values)) == 6, attr
    lightness = [0.2126 * s.color[0] + 0.7152 * s.color[1] + 0.0722 * s.color[2] for s in styles.values()]
    assert lightness == sorted(lightness)  # grey-scale order follows the scenario order


def test_interval_clipping_bounds():
    assert F.bounds("response_rate") == (0.0, 1.0)
    assert F.bounds("digital_gap") == (-1.0, 1.0)
    assert F.bounds("median_close_h") == (0.0, np.inf)
    err = F._err([0.9], [0.7], [1.3], "response_rate")
    assert err[1, 0] == pytest.approx(0.1)  # the upper whisker stops at 100%


def test_skips_say_why(bare_store, store):
    with pytest.raises(F.FigureSkipped, match="per-case tables"):
        F.time_distributions_figure(bare_store)
    with pytest.raises(F.FigureSkipped, match="not a grid sweep"):
        F.sweep_heatmap_figure(store)
    with pytest.raises(F.FigureSkipped, match="not 'morris'"):
        F.morris_figure(store)
    with pytest.raises(F.FigureSkipped, match="not 'sobol'"):
        F.sobol_figure(store)
    with pytest.raises(F.FigureSkipped, match="no 'cost_units' KPI"):
        F.cost_tradeoff_figure(store, cost="cost_units")


def test_grid_heatmap(tmp_path_factory):
    grid = design_store(tmp_path_factory, "grid")
    fig = F.sweep_heatmap_figure(grid, ["resolution_rate", "median_response_h"])
    assert_picture(fig)
    heat = fig.axes[0]
    assert heat.get_xlabel() == "policy.response_mandate_hours"
    assert heat.get_ylabel() == "policy.supervision_intensity"
    assert [t.get_text() for t in heat.get_xticklabels()] == ["none", "24", "72"]
    cells = sorted(float(t.get_text()) for t in heat.texts)
    assert cells[0] == pytest.approx(50.0) and cells[-1] == pytest.approx(90.0)  # resolution 0.5 + 0.04 × s, in %


def test_morris_and_sobol_bars(tmp_path_factory):
    morris = design_store(tmp_path_factory, "morris")
    fig = F.morris_figure(morris, ["resolution_rate", "median_response_h"])
    assert_picture(fig)
    assert "effect over the parameter's range (share of final cases)" in axis_texts(fig)
    sobol = design_store(tmp_path_factory, "sobol")
    fig = F.sobol_figure(sobol, ["resolution_rate"])
    assert_picture(fig)
    assert "share of the KPI's variance (0–1)" in axis_texts(fig)


def test_all_figures_for_each_design(store, tmp_path_factory):
    names = {f.name: f for f in F.all_figures(store)}
    assert set(names) == {"rates", "timeseries", "time_distributions", "tradeoff", "equity"}
    assert all(f.figure is not None for f in names.values())
    morris = {f.name for f in F.all_figures(design_store(tmp_path_factory, "morris"))}
    assert "morris" in morris and "sobol" not in morris and "sweep_heatmap" not in morris
