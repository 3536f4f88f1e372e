"""The Zhengzhou case study: its scenario files and specs load and say what they represent, a quick run of
every scenario of the case-study spec keeps the expected orderings (stages, trinity ablation, relay by level),
and the analysis snippets of docs/case_study.md run on the stores the specs write."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from experiments.runner import run_experiment
from experiments.spec import load_spec
from sim import load_scenario

ROOT = Path(__file__).resolve().parent.parent
ZZ = ROOT / "scenarios" / "zhengzhou"
STAGES = ["before_platform", "zzic_2012", "hotline_2024"]
ABLATIONS = ["ablation_acceptance", "ablation_tracking", "ablation_supervision"]
DOC = ROOT / "docs" / "case_study.md"


# --------------------------------------------------------------------------------------- the files
@pytest.mark.parametrize("name", STAGES + ABLATIONS)
def test_scenario_files_load_and_say_what_they_represent(name):
    path = ZZ / f"{name}.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.startswith(f"# zhengzhou/{name}.yaml — ")
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    assert "What it represents" in header and "Sources" in header
    scenario = load_scenario(path)
    assert scenario.name == name and scenario.description


def test_stages_carry_the_figures_of_the_case():
    before, zzic, hotline = (load_scenario(ZZ / f"{s}.yaml") for s in STAGES)
    # before: fragmented offline channels, office hours, relayed, no tracking or call-back
    assert not before.platform.channels.online and before.policy.platform_hours.value == "office"
    assert not before.policy.tracking and not before.policy.callback and before.policy.dispatch_mode.value == "cascade"
    # ZZIC 2011-12: 7x24 online acceptance, SMS assignment within ~2 h, tracking, supervision, scorecard, fixes
    assert zzic.platform.channels.online and zzic.policy.platform_hours.value == "7x24"
    assert zzic.platform.dispatch_delay_h == 2.0 and zzic.policy.dispatch_mode.value == "cascade"
    assert zzic.policy.tracking and zzic.policy.supervision_intensity > 0 and zzic.policy.public_ranking
    assert zzic.policy.callback and zzic.policy.reopen_allowed and zzic.policy.systemic_fix
    assert zzic.world == before.world.model_copy(update={
        "start_date": zzic.world.start_date, "digital_access_urban": zzic.world.digital_access_urban,
        "digital_access_rural": zzic.world.digital_access_rural})  # the same city
    assert zzic.demand == before.demand
    # 2024: one 7x24 desk, 420-type catalogue, dispatch in 5 minutes, mandate, CNNIC 2024 access, scaled 1:20
    assert hotline.platform.dispatch_delay_h == pytest.approx(5 / 60, abs=0.001)
    assert hotline.platform.classification_accuracy >= 0.97
    assert hotline.policy.response_mandate_hours == 24 and hotline.policy.dispatch_mode.value == "direct"
    assert (hotline.world.digital_access_urban, hotline.world.digital_access_rural) == (0.85, 0.66)
    assert (hotline.world.counties, hotline.world.townships) == (zzic.world.counties, zzic.world.townships)
    assert hotline.world.population > zzic.world.population


def test_ablation_ladder_adds_one_function_at_a_time():
    acc, trk, sup = (load_scenario(ZZ / f"{s}.yaml") for s in ABLATIONS)
    zzic = load_scenario(ZZ / "zzic_2012.yaml")
    p = acc.policy
    assert not (p.tracking or p.callback or p.reopen_allowed or p.public_ranking or p.systemic_fix)
    assert p.supervision_intensity == 0
    assert trk.policy == p.model_copy(update={"tracking": True})
    assert sup.policy == zzic.policy.model_copy(update={"systemic_fix": False})
    assert acc.platform == zzic.platform and acc.world == zzic.world  # only the policies differ


def test_specs_hold_the_comparisons():
    main = load_spec(ROOT / "experiments" / "zzic_case_study.yaml")
    assert list(main.scenarios) == ["before_platform", "acceptance", "acceptance_tracking", "trinity",
                                    "zzic_2012", "zzic_2012_direct", "hotline_2024"]
    assert main.baseline == "before_platform" and main.spec.keep_cases
    assert main.scenarios["zzic_2012_direct"].policy.dispatch_mode.value == "direct"
    assert main.scenarios["zzic_2012"].policy.dispatch_mode.value == "cascade"
    fixes = load_spec(ROOT / "experiments" / "zzic_fixes.yaml")
    assert fixes.days == 730 and fixes.baseline == "without_fixes"
    assert fixes.scenarios["with_fixes"].policy.systemic_fix
    assert not fixes.scenarios["without_fixes"].policy.systemic_fix


# ------------------------------------------------------------------------------------ quick runs
@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Both specs, one replication each and short horizons (the case study's warm-up kept: 30 + 24 days)."""
    base = tmp_path_factory.mktemp("case_study")
    main = run_experiment(str(ROOT / "experiments" / "zzic_case_study.yaml"), out=str(base / "main"),
                          engine="serial", replications=1, days=24, progress=False)
    fixes = run_experiment(str(ROOT / "experiments" / "zzic_fixes.yaml"), out=str(base / "fixes"),
                           engine="serial", replications=1, days=12, progress=False)
    assert main.ok and fixes.ok, (main.failures, fixes.failures)
    return main, fixes


def _means(outcome, kpi: str) -> dict[str, float]:
    t = outcome.table
    rows = t[t["kpi"] == kpi]
    return dict(zip(rows["scenario"], rows["mean"], strict=True))


def test_stages_order_the_response_rate(stores):
    main, _ = stores
    r = _means(main, "response_rate")
    assert r["before_platform"] < r["zzic_2012"] <= r["hotline_2024"]
    s = _means(main, "satisfaction_rate")
    assert s["before_platform"] < s["zzic_2012"] <= s["hotline_2024"]
    wait = _means(main, "median_response_h")
    assert wait["before_platform"] > wait["zzic_2012"] > wait["hotline_2024"]


def test_what_each_function_of_the_trinity_does(stores):
    """What the mechanisms guarantee of the ablation (docs/case_study.md, 3.2). Tracking presses the orders
    departments sit on, so more get a reply. Supervision's call-backs reach every reply (ZZIC's ≈50 cases a
    day are well within the 8 operator-hours of call-backs), and on the phone a reply recorded as resolved
    that solved nothing is found and reopened, so no case ends falsely resolved: the recorded resolution
    equals the true one, which rises. Not asserted: that supervision raises the response rate or the
    recorded resolution — in the model it lowers both (the finding of section 3.2) — nor that tracking lowers
    escalations (it flags lateness, not content, so it can shift departments toward quick replies that fail)."""
    main, _ = stores
    resp = _means(main, "response_rate")
    assert resp["acceptance"] < resp["acceptance_tracking"], resp
    gap = _means(main, "gaming_gap")
    assert gap["acceptance_tracking"] > 0.02, gap  # perfunctory replies closed as resolved, unseen
    assert gap["trinity"] == pytest.approx(0.0, abs=1e-12), gap
    assert gap["zzic_2012"] == pytest.approx(0.0, abs=1e-12), gap
    true = _means(main, "true_resolution_rate")
    assert true["acceptance_tracking"] < true["trinity"], true
    # at a call-back an unsatisfied requester may have the case reopened instead of escalating it
    esc = _means(main, "escalation_rate")
    assert esc["acceptance_tracking"] > esc["trinity"], esc


def _doc_snippets() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) >= 4
    return "\n".join(blocks)


def test_doc_snippets_run_and_show_the_relay_by_level(stores):
    main, fixes = stores
    code = _doc_snippets()
    assert '"results/zzic_case_study"' in code and '"results/zzic_fixes"' in code
    code = (code.replace('"results/zzic_case_study"', repr(str(main.store_dir)))
            .replace('"results/zzic_fixes"', repr(str(fixes.store_dir))))
    namespace: dict = {}
    with contextlib.redirect_stdout(io.StringIO()) as out:
        exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 - the documentation's own code
    assert "observed" in out.getvalue()
    # T7 counts come out per week, of the order of ZZIC's scorecard week (359 accepted); repeat reports of
    # unsolved problems now add to what the problem rate fitted before them gave (docs/case_study.md 4.1)
    weekly = namespace["weekly"].mean()
    assert 250 < weekly["accepted"] < 2 * 359 and weekly["assigned"] < weekly["accepted"]
    # the relay: a township's first response comes sooner when orders skip the levels above it
    by_level = namespace["by_level"]
    assert set(by_level.index.get_level_values("level")) == {"central", "province", "prefecture", "county",
                                                             "township"}
    township = by_level.loc["township", "median_response_h"]
    assert township["zzic_2012"] > township["zzic_2012_direct"] + 10
    # the fixes analysis: daily series per scenario and year, and the paired differences
    yearly = namespace["yearly"]
    assert {"arrivals", "fixes_active", "mean_trust"} <= set(yearly.columns)
    assert yearly.loc[("without_fixes", 1), "fixes_active"] == 0
