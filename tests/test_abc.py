"""ABC-SMC calibration (experiments/abc.py): the spec's errors, the distance, the posterior summaries, and
pyabc's SMC on synthetic simulators whose posterior is known (an identified and an unidentified parameter).

The real calibration (python run.py calibrate-abc experiments/posterior.yaml, up to an hour) is a command,
not a test; one test runs the real target model once at a tiny scale.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from experiments.abc import (
    AbcSettings,
    AbcSpecError,
    Objective,
    PriorSpec,
    TargetModel,
    abc_smc,
    central_draw,
    distance,
    identifiability,
    load_abc_spec,
    posterior_of,
    run_abc,
    weighted_quantile,
)

SPEC = """
name: {name}
parameters:
{parameters}
targets: {targets}
scale: {{population: 2000, days: 4, warmup_days: 1}}
seed: 3
abc: {{population_size: 30, max_simulations: 400, max_generations: 4, minimum_epsilon: 0.3, max_minutes: 5,
       prior_predictive: 20, check_replications: 3}}
output: {output}
"""
PARAMS = """  - {name: departments.duty, low: 0.0, high: 1.0}
  - {name: departments.choice_noise, low: 0.05, high: 1.0}
  - {name: citizens.patience_h, low: 50, high: 500, log: true}"""


def _spec(tmp_path, name="t", parameters=PARAMS, targets="[T1, T3 before]", output=None) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(SPEC.format(name=name, parameters=parameters, targets=targets,
                                output=output or str(tmp_path / "out")), encoding="utf-8")
    return str(path)


# ---------------------------------------------------------------------------------------------- spec
def test_spec_reads_the_calibration_targets_bands(tmp_path):
    spec, objectives = load_abc_spec(_spec(tmp_path))
    assert [o.key for o in objectives] == ["T1", "T3 before"]
    assert objectives[0].observed == pytest.approx(0.33) and objectives[0].tolerance == pytest.approx(0.08)
    assert len(spec.parameters) == 3 and spec.parameters[2].log


@pytest.mark.parametrize(("kw", "message"), [
    ({"targets": "[T3 after]"}, "'T3 after' is not a calibration target"),
    ({"targets": "[T5]"}, "not a calibration target"),
    ({"parameters": "  - {name: departments.duty, low: 2.0, high: 1.0}"}, "must be below"),
    ({"parameters": "  - {name: citizens.patience_h, low: 0, high: 10, log: true}"}, "needs low > 0"),
    ({"parameters": "  - {name: departments.no_such_knob, low: 0, high: 1}"}, "parameters.0.name"),
    ({"parameters": "\n".join(f"  - {{name: departments.duty, low: {i}, high: {i + 1}}}" for i in range(7))},
     "at most 6 parameters"),
])
def test_spec_errors_name_the_file_and_the_key(tmp_path, kw, message):
    path = _spec(tmp_path, **kw)
    with pytest.raises(AbcSpecError, match=message) as err:
        load_abc_spec(path)
    assert path in str(err.value)


# ------------------------------------------------------------------------------------------ summaries
def test_distance_is_the_rms_standardised_miss():
    objs = [Objective("a", 0.5, 0.1), Objective("b", 10.0, 2.0)]
    assert distance({"a": 0.5, "b": 10.0}, objs) == 0.0
    assert distance({"a": 0.6, "b": 10.0}, objs) == pytest.approx(math.sqrt(0.5))
    assert distance({"a": 0.7, "b": 14.0}, objs) == pytest.approx(2.0)
    assert distance({"a": math.nan, "b": 10.0}, objs) == pytest.approx(math.sqrt(50))  # NaN: 10 tolerances


def test_weighted_quantile_and_central_draw():
    x = np.array([0.0, 1.0, 2.0, 3.0])
    assert weighted_quantile(x, np.ones(4), 0.5) == pytest.approx(1.5)
    assert weighted_quantile(x, np.array([0, 0, 1, 0]), 0.5) == pytest.approx(2.0)
    particles = pd.DataFrame({"p": [0.1, 0.5, 0.9], "q": [10.0, 100.0, 1000.0]})
    priors = [PriorSpec(name="p", low=0, high=1), PriorSpec(name="q", low=1, high=10_000, log=True)]
    assert central_draw(particles, np.array([0.2, 0.6, 0.2]), priors) == 1
    assert central_draw(particles, np.array([0.05, 0.05, 0.9]), priors) == 2


def test_identifiability_compares_posterior_and_prior_widths():
    rng = np.random.default_rng(1)
    n = 4000
    particles = pd.DataFrame({"tight": rng.normal(0.5, 0.02, n), "vague": rng.uniform(0, 1, n)})
    rows = {r["parameter"]: r for r in identifiability(particles, np.full(n, 1 / n),
                                                       [PriorSpec(name="tight", low=0, high=1),
                                                        PriorSpec(name="vague", low=0, high=1)])}
    assert rows["tight"]["pinned"] and rows["tight"]["width_ratio"] < 0.2
    assert rows["tight"]["median"] == pytest.approx(0.5, abs=0.01)
    assert not rows["vague"]["pinned"] and rows["vague"]["width_ratio"] == pytest.approx(1.0, abs=0.05)


# ------------------------------------------------------------------------------------------------ SMC
def _toy(params: dict[str, float], seed: int) -> dict[str, float]:
    """x = a, y = a + b, both with small noise; c does nothing."""
    rng = np.random.default_rng(seed)
    return {"x": params["a"] + rng.normal(0, 0.01), "y": params["a"] + params["b"] + rng.normal(0, 0.01)}


def test_smc_recovers_identified_parameters_and_leaves_the_unidentified_one_vague(tmp_path):
    priors = [PriorSpec(name="a", low=0, high=1), PriorSpec(name="b", low=0, high=1),
              PriorSpec(name="c", low=0, high=1)]
    objectives = [Objective("x", 0.3, 0.05), Objective("y", 0.7, 0.05)]
    settings = AbcSettings(population_size=60, max_simulations=3000, max_generations=6, minimum_epsilon=0.3,
                           max_minutes=3, prior_predictive=0)
    history = abc_smc(_toy, priors, objectives, settings, tmp_path / "toy.db", seed=5)
    particles, w = posterior_of(history, priors)
    assert w.sum() == pytest.approx(1.0) and len(particles) == 60
    rows = {r["parameter"]: r for r in identifiability(particles, w, priors)}
    assert rows["a"]["median"] == pytest.approx(0.3, abs=0.05)
    assert rows["b"]["median"] == pytest.approx(0.4, abs=0.07)
    assert rows["a"]["pinned"] and rows["b"]["pinned"]
    assert not rows["c"]["pinned"]  # the targets say nothing about c
    assert history.total_nr_simulations <= 3000


def test_run_abc_writes_its_outputs_and_resumes(tmp_path):
    def fake(params: dict[str, float], seed: int) -> dict[str, float]:
        rng = np.random.default_rng(seed)
        return {"T1": params["departments.duty"] * 0.6 + rng.normal(0, 0.01),
                "T3 before": 0.3 + params["departments.choice_noise"] * 0.4 + rng.normal(0, 0.01)}

    path = _spec(tmp_path)
    outcome = run_abc(path, workers=1, simulate=fake, log=lambda _m: None)
    out = tmp_path / "out"
    for name in ("posterior.csv", "posterior.json", "prior_predictive.csv", "report.md", "history.db"):
        assert (out / name).is_file(), name
    data = json.loads((out / "posterior.json").read_text())
    assert data["parameters"] == ["departments.duty", "departments.choice_noise", "citizens.patience_h"]
    assert len(data["weights"]) == 30 and math.isclose(sum(data["weights"]), 1.0)
    # T1 = 0.6·duty pins duty near 0.55; T3 before pins choice_noise near 0.575; patience is free
    rows = {r["parameter"]: r for r in outcome.identifiability}
    assert rows["departments.duty"]["median"] == pytest.approx(0.55, abs=0.1)
    assert rows["departments.choice_noise"]["median"] == pytest.approx(0.575, abs=0.12)
    assert not rows["citizens.patience_h"]["pinned"]
    assert outcome.check["T1"]["within"] and outcome.check["T1"]["n"] == 3
    assert len(outcome.prior_predictive) == 20
    sens = outcome.sensitivity
    assert sens.loc["departments.duty", "T1"] > 0.8 and abs(sens.loc["citizens.patience_h", "T1"]) < 0.5
    report = (out / "report.md").read_text()
    assert "Prior predictive check" in report and "departments.duty" in report
    # resuming continues the same history (the prior predictive is not drawn again)
    again = run_abc(path, resume=True, workers=1, simulate=fake, log=lambda _m: None)
    assert len(again.epsilons) >= len(outcome.epsilons)
    assert again.prior_predictive.equals(outcome.prior_predictive)


def test_the_real_target_model_measures_every_objective(tmp_path):
    spec, objectives = load_abc_spec(_spec(tmp_path, targets="[T1, T3 before, T4 before]"))
    values = TargetModel(spec, objectives)({"departments.duty": 1.0}, seed=11)
    assert set(values) == {"T1", "T3 before", "T4 before"}
    assert all(0.0 <= v <= 1.0 for v in values.values())


def test_an_experiment_replicates_over_posterior_draws_and_the_report_splits_the_uncertainty(tmp_path):
    from analysis.report import write_report
    from analysis.store import load_store
    from experiments.runner import run_experiment

    (tmp_path / "posterior.json").write_text(json.dumps({
        "parameters": ["departments.duty", "citizens.patience_h"],
        "draws": {"departments.duty": [0.2, 1.8], "citizens.patience_h": [100.0, 400.0]},
        "weights": [0.5, 0.5]}), encoding="utf-8")
    root = __import__("pathlib").Path(__file__).resolve().parent.parent
    (tmp_path / "spec.yaml").write_text(
        f"name: pdraws\nscenarios: {{a: {root / 'scenarios' / 'default.yaml'}}}\nreplications: 2\ndays: 4\n"
        "warmup_days: 0\nseed: 3\ndesign: {type: posterior, file: posterior.json, n: 4}\n", encoding="utf-8")
    outcome = run_experiment(str(tmp_path / "spec.yaml"), out=str(tmp_path / "store"), workers=1)
    assert outcome.n_ok == 8 and outcome.n_failed == 0
    store = load_store(tmp_path / "store")
    assert store.design_type == "posterior"
    runs = store.ok_runs
    duty = sorted(set(runs["param.departments.duty"]))
    assert set(duty) <= {0.2, 1.8}
    paths = write_report(store)
    text = next(p for p in paths.values() if str(p).endswith(".md")).read_text(encoding="utf-8")
    assert "90% predictive interval" in text and "posterior" in text
