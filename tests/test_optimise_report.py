"""The optimisation report (analysis/optimise_report.py) on small optimisation stores built in seconds.

The stores come from the real search (``experiments.optimise.run_optimisation``, engine "serial") with
``sim.run_scenario`` replaced by a fake model whose KPIs follow the levers (more operators: higher
satisfaction and on-time response; inspections and a response mandate: more on time; +40% demand: lower
both; cost = paid staff-hours of the operators and inspectors), so that some packages meet the targets and
some do not, and the report's numbers can be checked against the store.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import sim
from analysis.figures import label_overlaps
from analysis.optimise_report import (
    SECTIONS,
    _evaluations_flag,
    _shock_note,
    build_optimisation_report,
    check_targets,
    optimisation_figures,
    read_optimisation_store,
    write_optimisation_report,
)
from analysis.report import Bullets, Picture, Table, fte
from common.store import StoreError
from experiments.optimise import is_optimisation_store, run_optimisation
from sim.results import RunResult

ROOT = Path(__file__).resolve().parents[1]
EMPTY_CASES = pd.DataFrame({c: pd.Series(dtype="float64") for c in ("created_h", "first_response_h", "closed_h")})


def fake_run(scenario, seed, **_kw) -> RunResult:
    """KPIs from the levers plus a little seeded noise (about ±0.5 pp); cost is deterministic."""
    ops = scenario.platform.operators
    insp = float(scenario.policy.supervision_intensity)
    mandate = scenario.policy.response_mandate_hours is not None
    load = scenario.demand.problems_per_citizen_year / 2.0 - 1.0  # 0 normal, 0.4 under +40% demand
    noise = np.random.default_rng(seed % 2**32).normal(0.0, 0.005, 3)
    sat = min(0.99, 0.58 + 0.045 * ops - 0.10 * load + noise[0])
    on_time = min(0.99, 0.45 + 0.05 * ops + 0.0025 * insp + (0.06 if mandate else 0.0) - 0.15 * load + noise[1])
    true_res = 0.70 + 0.002 * insp + noise[2]
    cost = 4000.0 + 900.0 * ops + 25.0 * insp
    summary = {"cost_hours": cost, "capacity_hours_departments": 4000.0, "capacity_hours_operators": 900.0 * ops,
               "capacity_hours_supervisors": 25.0 * insp, "resolution_rate": true_res + 0.01,
               "true_resolution_rate": true_res, "satisfaction_rate": sat, "on_time_response_rate": on_time,
               "gaming_gap": 0.01, "mean_trust": 0.5}
    return RunResult(cases=EMPTY_CASES.copy(), timeseries=pd.DataFrame(), summary=summary)


def write_spec(folder: Path, **changes) -> Path:
    spec = {
        "name": "fake_opt",
        "base": str(ROOT / "scenarios" / "zzic.yaml"),
        "references": {"today": str(ROOT / "scenarios" / "zzic.yaml"),
                       "combined": str(ROOT / "scenarios" / "combined.yaml")},
        "compare": "combined",
        "levers": {"operators": {"key": "platform.operators", "low": 1, "high": 8},
                   "inspections": {"key": "policy.supervision_intensity", "low": 0, "high": 80, "step": 5},
                   "mandate_hours": {"key": "policy.response_mandate_hours", "values": [None, 48, 24]}},
        "objectives": {"cost_hours": "minimise", "satisfaction_rate": "maximise",
                       "on_time_response_rate": "maximise"},
        "constraints": {"satisfaction_rate": {"at_least": 0.80}, "on_time_response_rate": {"at_least": 0.85}},
        "cases": {"normal": {}, "growth_40": {"demand.problems_per_citizen_year": 2.8}},
        "stress_front": 3, "population": 6, "evaluations": 12, "replications": 3, "days": 14, "warmup_days": 2,
        "seed": 7,
    }
    spec.update(changes)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def build_store(folder: Path, **changes) -> Path:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sim, "run_scenario", fake_run)
        spec = write_spec(folder, **changes)
        run_optimisation(spec, out=folder / "store", engine="serial", progress=False)
    return folder / "store"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """Some packages meet the targets; the second case (+40% demand) is a stress case."""
    return build_store(tmp_path_factory.mktemp("opt"))


@pytest.fixture(scope="module")
def infeasible_store(tmp_path_factory) -> Path:
    """No package can reach 99% satisfaction: the report names the smallest shortfall."""
    return build_store(tmp_path_factory.mktemp("opt_inf"),
                       constraints={"satisfaction_rate": {"at_least": 0.99}, "on_time_response_rate": {"at_least": 0.5}})


@pytest.fixture(scope="module")
def robust_store(tmp_path_factory) -> Path:
    """Robust search: the objectives are the worst case over both cases."""
    return build_store(tmp_path_factory.mktemp("opt_rob"), robust={"aggregate": "worst"})


@pytest.fixture(scope="module")
def report(store):
    """The report of ``store`` built once: (title, sections)."""
    return build_optimisation_report(store, dpi=40)


def _reading(sections) -> list[str]:
    sec = next(s for s in sections if s.id == "reading")
    return next(b for b in sec.blocks if isinstance(b, Bullets)).items


def _pictures(sections) -> list[Picture]:
    return [b for s in sections for b in s.blocks if isinstance(b, Picture)]


# ------------------------------------------------------------------------------------------ content
def test_every_section_in_order_and_the_reading_names_the_chosen_package(store, report):
    title, sections = report
    assert "fake_opt" in title
    assert [(s.id, s.title) for s in sections] == list(SECTIONS)
    assert all(s.blocks for s in sections)
    opt = read_optimisation_store(store)
    o = opt.objectives
    feasible = o[(o["kind"] == "search") & o["feasible"]]
    assert len(feasible) and not o[o["kind"] == "search"]["feasible"].all()  # the fake splits the packages
    cheapest = int(feasible.sort_values(["obj.cost_hours", "candidate"]).iloc[0]["candidate"])
    assert opt.chosen == cheapest
    text = " ".join(_reading(sections))
    label = opt.label(cheapest)
    assert "The cheapest package that meets the targets (" in text and f"is **{label}** (#{cheapest})" in text
    for lever, value in opt.levers(cheapest).items():
        shown = "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
        assert f"{lever} = {shown}" in text
    cost, today = opt.cost(cheapest), opt.cost(opt.today_id)
    assert f"{cost:,.0f} staff-hours" in text and f"{fte(cost, 14):,.1f} FTE" in text
    assert f"{abs(cost - today):,.0f} staff-hours" in text
    assert ("more than today" if cost > today else "less than today") in text
    assert "Under **growth_40**" in text
    growth = check_targets(opt, cheapest, "growth_40")
    assert growth is not None and len(growth) == 2
    if all(c.met for c in growth):
        assert "it meets every target" in text
    else:
        assert "misses" in text.split("Under **growth_40**")[1]
    assert "95% CI" in text


def test_check_targets_uses_the_pessimistic_end(store):
    opt = read_optimisation_store(store)
    ev = opt.evaluations
    for cand in opt.result["stressed"]:
        for case in ("normal", "growth_40"):
            checks = check_targets(opt, cand, case)
            assert checks is not None
            for c in checks:
                row = ev[(ev["candidate"] == cand) & (ev["case"] == case) & (ev["seeds"] == "search")
                         & (ev["kpi"] == c.kpi)].iloc[0]
                assert c.bound == pytest.approx(row["ci_low"])
                assert c.met == (row["ci_low"] >= c.con["at_least"])
    # in the search case the check agrees with the search's own feasibility
    for cand, row in opt.objectives.set_index("candidate").iterrows():
        if row["evaluated"]:
            assert all(c.met for c in check_targets(opt, int(cand), "normal")) == bool(row["feasible"])


def test_front_table_lists_the_front_by_cost_with_the_chosen_in_bold(store, report):
    _, sections = report
    opt = read_optimisation_store(store)
    table = next(b for b in next(s for s in sections if s.id == "front").blocks if isinstance(b, Table))
    front = sorted(opt.result["front"], key=lambda i: (opt.cost(i), i))
    labels = [r[0].split("\n")[0] for r in table.rows]
    assert labels[:len(front)] == [opt.label(i) for i in front]
    assert labels[-2:] == ["today", "combined"]
    costs = [float(r[table.header.index("cost (staff-hours)")].split("\n")[0].replace(",", "")) for r in table.rows]
    assert costs[:len(front)] == sorted(costs[:len(front)])
    chosen_row = labels.index(opt.label(opt.chosen))
    assert {(chosen_row, j) for j in range(len(table.header))} <= table.strong
    assert all(i == chosen_row for i, _ in table.strong)
    assert table.rows[chosen_row][-1] == "yes"


def test_robustness_and_winners_curse_sections_show_the_stored_numbers(store, report):
    _, sections = report
    opt = read_optimisation_store(store)
    rob = next(s for s in sections if s.id == "robustness")
    regret, targets = [b for b in rob.blocks if isinstance(b, Table)]
    assert len(regret.rows) == len(opt.result["stressed"])
    reg = pd.DataFrame(opt.result["regret"])
    mine = reg[(reg["candidate"] == opt.chosen) & (reg["kpi"] == "on_time_response_rate")].set_index("case")
    cell = next(r for r in regret.rows if r[0] == opt.label(opt.chosen))[
        regret.header.index("on-time response: worst regret")]
    case = re.match(r"[\d.]+ pp \((\w+)\)\n", cell).group(1)
    assert mine.loc[case, "regret"] == mine["regret"].max()
    assert cell.startswith(f"{100 * mine['regret'].max():.1f} pp ({case})")
    for c in ("normal", "growth_40"):
        assert f"{c} {100 * mine.loc[c, 'mean']:.1f}%" in cell
    assert targets.header[2:] == ["normal", "growth_40"]
    wc = next(s for s in sections if s.id == "winners-curse")
    table = next(b for b in wc.blocks if isinstance(b, Table))
    assert [r[0] for r in table.rows] == list(opt.result["recheck"]["kpis"])
    sat = opt.result["recheck"]["kpis"]["satisfaction_rate"]
    row = next(r for r in table.rows if r[0] == "satisfaction_rate")
    d = sat["search"]["diff"]
    assert row[1].startswith(("+" if d >= 0 else "−") + f"{100 * abs(d):.1f} pp")
    conv = next(s for s in sections if s.id == "convergence")
    ctab = next(b for b in conv.blocks if isinstance(b, Table))
    assert [r[0] for r in ctab.rows] == ["1", "2"]
    assert ctab.rows[-1][4].startswith(f"{opt.cost(opt.chosen):,.0f}")  # the cheapest feasible cost at the end


def test_no_feasible_package_is_said_plainly(infeasible_store):
    _, sections = build_optimisation_report(infeasible_store, dpi=40)
    opt = read_optimisation_store(infeasible_store)
    assert not opt.result["any_feasible"]
    text = " ".join(_reading(sections))
    assert "**No package meets every target**" in text
    assert f"smallest total shortfall is **{opt.label(opt.chosen)}**" in text
    bound = check_targets(opt, opt.chosen, "normal")[0].bound
    assert f"misses satisfaction ≥ 99.0% by {100 * (0.99 - bound):.1f} pp" in text
    assert "cheapest package that meets" not in text


def test_robust_search_is_said_and_shown_per_case(robust_store):
    _, sections = build_optimisation_report(robust_store, dpi=40)
    opt = read_optimisation_store(robust_store)
    assert opt.robust and opt.stress_cases == []
    text = " ".join(_reading(sections))
    assert "The search was robust" in text and "worst case" in text
    front = next(s for s in sections if s.id == "front")
    tables = [b for b in front.blocks if isinstance(b, Table)]
    assert len(tables) == 2 and tables[1].header[:2] == ["package", "case"]
    assert {r[1] for r in tables[1].rows} == {"normal", "growth_40"}


# ------------------------------------------------------------------------------------------ figures
def test_figures_are_drawn_without_overlapping_labels(store):
    opt = read_optimisation_store(store)
    figs = optimisation_figures(opt)
    drawn = [f for group in figs.values() for f in group]
    assert [f.name for f in drawn] == ["front_satisfaction_rate", "front_on_time_response_rate", "robustness",
                                       "convergence"]
    assert all(f.figure is not None for f in drawn), [f.skipped for f in drawn]
    for f in drawn:
        assert label_overlaps(f.figure) == [], f.name
    ax = figs["front"][0].figure.axes[0]
    names = {t.get_text() for t in ax.texts}
    assert f"chosen {opt.label(opt.chosen)}" in names and {"today", "combined"} <= names
    paths = write_optimisation_report(store, dpi=40)
    pngs = sorted(p.name for p in paths["figures"].glob("*.png"))
    assert pngs == sorted(f"{f.name}.png" for f in drawn)
    md = paths["md"].read_text(encoding="utf-8")
    for sid, title in SECTIONS:
        assert f'<a id="{sid}"></a>' in md and f"## {title}" in md
    assert len(re.findall(r"!\[[^]]*\]\(figures/[a-z_]+\.png\)", md)) == len(pngs)


def test_labels_stay_apart_when_the_packages_crowd(store, tmp_path):
    """Put the references and the chosen package on one point: their names must still not overlap."""
    opt = read_optimisation_store(store)
    same = opt.row(opt.chosen)
    for rid in opt.reference_ids.values():
        for k in ("obj.cost_hours", "obj.satisfaction_rate", "obj.on_time_response_rate"):
            opt.row(rid)[k] = same[k]
    for f in optimisation_figures(opt)["front"]:
        assert label_overlaps(f.figure) == []
        assert len(f.figure.axes[0].texts) == 3


# ------------------------------------------------------------------------------------------ plumbing
def test_run_report_dispatches_to_the_optimisation_report(store, capsys):
    import run

    assert is_optimisation_store(store)
    for old in ("report.html", "report.md"):
        (store / old).unlink(missing_ok=True)
    assert run.main(["report", str(store)]) == 0
    html = (store / "report.html").read_text(encoding="utf-8")
    assert "Wenzheng optimisation report: fake_opt" in html
    for sid, _ in SECTIONS:
        assert f'<section id="{sid}">' in html
    assert "report.html" in capsys.readouterr().out


def test_an_experiment_store_is_refused(tmp_path):
    (tmp_path / "manifest.json").write_text('{"name": "x", "design": {"type": "none"}}', encoding="utf-8")
    assert not is_optimisation_store(tmp_path)
    with pytest.raises(StoreError, match="not an optimisation store"):
        read_optimisation_store(tmp_path)


@pytest.mark.parametrize("spec_population", [2, 7, 20])
@pytest.mark.parametrize("evaluations", [4, 5, 15, 16, 41, 200])
def test_the_reproduce_command_gives_the_same_population_and_generations(spec_population, evaluations):
    pop = max(2, min(spec_population, evaluations // 2))  # as experiments.optimise.load_optimisation
    gens = math.ceil(evaluations / pop)
    e = _evaluations_flag(pop, gens, spec_population)
    p = max(2, min(spec_population, e // 2))
    assert (p, math.ceil(e / p)) == (pop, gens)


def test_a_shock_past_the_end_of_the_run_is_flagged():
    storm = {"demand.shocks": [{"start_day": 45, "days": 7, "multiplier": 1.55}]}
    assert _shock_note(storm, 80) == ""
    assert "cut to 5 of its 7 days" in _shock_note(storm, 50)
    assert "no effect" in _shock_note(storm, 40)
    assert _shock_note({}, 40) == ""


def test_the_what_was_run_section_gives_the_command(report):
    _, sections = report
    text = " ".join(getattr(b, "text", "") for b in sections[0].blocks)
    assert re.search(r"python run\.py optimise \S+spec\.yaml --evaluations 12 --replications 3 --days 14", text)


# ------------------------------------------------------------------------------------------ browser
@pytest.mark.browser
def test_report_renders_in_a_browser(store, browser):
    paths = write_optimisation_report(store, dpi=40)
    n_pngs = len(list(paths["figures"].glob("*.png")))
    assert n_pngs == 4
    page = browser.new_page()
    page.goto(paths["html"].as_uri(), wait_until="load")
    images = page.evaluate("Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete, "
                           "w: i.naturalWidth, h: i.naturalHeight}))")
    assert len(images) == n_pngs
    for img in images:
        assert img["complete"] and img["w"] > 0 and img["h"] > 0, f"broken image: {img['alt']}"
    for sid, title in SECTIONS:
        heading = page.evaluate(
            "id => { const s = document.getElementById(id); return s ? s.querySelector('h2').textContent : null; }",
            sid)
        assert heading == title, f"section {sid} missing or mislabelled: {heading!r}"
    opt = read_optimisation_store(store)
    assert opt.label(opt.chosen) in page.inner_text("#reading")
    page.close()
