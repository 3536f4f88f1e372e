"""Bayesian calibration by ABC-SMC (pyabc): a weighted posterior sample of behavioural parameters, fitted to
the calibration targets only (``analysis.validation``, role ``calibration``).

``python run.py calibrate-abc SPEC [--resume]`` calls :func:`run_abc`. A spec (``experiments/posterior.yaml``)::

    name: behaviour                      # the output folder's name (results/calibration/<name>/)
    parameters:                          # at most six, each with a uniform (or log-uniform) prior
      - {name: departments.duty, low: 0.5, high: 2.5}
      - {name: citizens.patience_h, low: 96, high: 960, log: true}
    targets: [T1, T3 before, T4 before, T6 completion]   # calibration targets (default: all of them)
    scale: {population: 10000, days: 45, warmup_days: 20} # every target scenario is run at this scale
    seed: 2024
    abc:
      population_size: 100               # accepted particles per generation
      max_simulations: 3000              # simulations in all (a simulation = one run of each target scenario)
      max_generations: 12
      minimum_epsilon: 1.0               # stop when the distance threshold reaches this
      max_minutes: 60                    # and start no generation after this much wall time
      prior_predictive: 60               # draws from the prior, simulated first (counted in the budget)
      check_replications: 5              # fresh seeds for the central draw

The method. A particle's **distance** is the root-mean-square standardised miss over the targets,
``sqrt(mean(((simulated − observed) / tolerance)²))`` with observed the centre of the target's band and
tolerance its half-width, so a distance of 1 means the targets are missed by their tolerance on average.
ABC-SMC (Del Moral et al. 2012, as implemented by pyabc; Schälte et al. 2022) draws particles from the prior,
keeps those within a threshold ε, and generation by generation perturbs the accepted particles, lowers ε to
a quantile of the last generation's distances and re-weights (importance weights prior / proposal), until
ε reaches ``minimum_epsilon`` or the budget is spent. The result is a weighted sample from the approximate
posterior p(θ | distance ≤ ε_final). pyabc keeps every generation in a SQLite history
(``history.db``): an interrupted calibration continues from its last generation with ``--resume``.

Before the SMC, ``prior_predictive`` parameter sets are drawn from the prior and simulated: the **prior
predictive check** (where the observed values fall among the simulated ones) and the **sensitivity**
of each target to each parameter (Spearman rank correlation over those draws: which targets pin which
parameters). **Identifiability**: for each parameter, the width of the posterior's weighted 5–95% interval
against the prior's; a ratio near 1 means the targets say little about it. The **central draw** is the
accepted particle nearest the weighted median (each coordinate scaled by its prior range); it is re-run
with ``check_replications`` fresh seeds, and every target's mean is checked against its band.

Outputs in ``results/calibration/<name>/``: ``history.db`` (pyabc), ``posterior.csv`` (particles and
weights of the last generation), ``prior_predictive.csv``, ``posterior.json`` (everything the report says,
for scripts and for experiments that replicate over posterior draws) and ``report.md``.

Simulations use fresh seeds drawn from the spec's seed; with several worker processes the order in which
particles are evaluated varies, so an ABC run is not bit-for-bit repeatable (each simulation is: its seed is
stored with nothing else needed). Every mistake in a spec raises :class:`AbcSpecError` naming the file and key.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field, ValidationError, model_validator

from common.models import StrictModel as _Strict
from sim.yamlfiles import format_validation_error, read_yaml_mapping

from .calibration import ParameterSpec
from .spec import SpecError

DEFAULT_OUT = Path("results") / "calibration"
MAX_PARAMETERS = 6


class AbcSpecError(SpecError):
    """An ABC calibration spec is invalid. The message names the spec file and the key path, for the user."""


# ------------------------------------------------------------------------------------------- the spec
class PriorSpec(ParameterSpec):
    """A parameter to fit: a dotted scenario key and its prior, uniform on [low, high] (log-uniform if ``log``;
    the range is checked as a calibration spec's, :class:`~experiments.calibration.ParameterSpec`)."""

    def sample(self, u: np.ndarray) -> np.ndarray:
        """Values for uniform draws ``u`` in [0, 1)."""
        if self.log:
            return np.exp(np.log(self.low) + u * (np.log(self.high) - np.log(self.low)))
        return self.low + u * (self.high - self.low)


class Scale(_Strict):
    """The scale every target scenario is run at during the calibration (citizens, days after warm-up)."""

    population: int = Field(10_000, ge=1000, le=1_000_000)
    days: float = Field(45.0, gt=0, le=3650)
    warmup_days: float = Field(20.0, ge=0, le=3650)


class AbcSettings(_Strict):
    population_size: int = Field(100, ge=5, le=100_000, description="Accepted particles per generation.")
    max_simulations: int = Field(3000, ge=10, description="Simulations in all, the prior predictive included "
                                 "(checked between generations: the last one may pass it).")
    max_generations: int = Field(12, ge=1, le=100)
    minimum_epsilon: float = Field(1.0, ge=0, description="Stop when the threshold reaches this distance.")
    max_minutes: float = Field(60.0, gt=0, description="Start no generation after this much wall time (minutes; "
                               "the generation under way finishes).")
    prior_predictive: int = Field(60, ge=0, description="Prior draws simulated before the SMC.")
    check_replications: int = Field(5, ge=1, le=100, description="Fresh seeds for the central draw.")


class AbcSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    parameters: list[PriorSpec] = Field(min_length=1)
    targets: list[str] | None = Field(None, description="Calibration target keys (default: all of them).")
    scale: Scale = Field(default_factory=Scale)
    seed: int = 0
    abc: AbcSettings = Field(default_factory=AbcSettings)
    output: str | None = Field(None, description="Output folder (default results/calibration/<name>).")

    @model_validator(mode="after")
    def _parameters(self) -> AbcSpec:
        names = [p.name for p in self.parameters]
        if len(names) > MAX_PARAMETERS:
            raise ValueError(f"at most {MAX_PARAMETERS} parameters can be fitted, got {len(names)}")
        if len(set(names)) != len(names):
            raise ValueError(f"a parameter is listed twice: {names}")
        return self


@dataclass(frozen=True)
class Objective:
    """One calibration target as the ABC sees it: its key, the centre and half-width of its band."""

    key: str
    observed: float
    tolerance: float


def load_abc_spec(path: str | Path) -> tuple[AbcSpec, list[Objective]]:
    """Read and validate a spec; :class:`AbcSpecError` for every mistake (file, key, what is allowed)."""
    from analysis.validation import TARGETS
    from sim.scenario import ScenarioError, load_scenario

    path = Path(path)
    raw = read_yaml_mapping(path, AbcSpecError, "ABC calibration spec", "(name, parameters, targets, ...)")
    try:
        spec = AbcSpec.model_validate(raw)
    except ValidationError as exc:
        raise AbcSpecError(format_validation_error(exc, str(path), AbcSpec)) from None
    calibration = {t.key: t for t in TARGETS if t.role == "calibration"}
    keys = spec.targets if spec.targets is not None else list(calibration)
    objectives = []
    for key in keys:
        t = calibration.get(key)
        if t is None:
            raise AbcSpecError(f"{path}: key 'targets': {key!r} is not a calibration target; allowed: "
                               f"{', '.join(calibration)} (validation targets are never fitted)")
        lo, hi = t.criterion.low, t.criterion.high
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise AbcSpecError(f"{path}: key 'targets': {key!r} has a one-sided band; the ABC needs a band")
        objectives.append(Objective(key, (lo + hi) / 2.0, (hi - lo) / 2.0))
    if not objectives:
        raise AbcSpecError(f"{path}: key 'targets': no target to fit")
    probe = load_scenario(Path(__file__).resolve().parent.parent / "scenarios" / "default.yaml")
    for i, p in enumerate(spec.parameters):
        try:
            probe.with_overrides({p.name: p.low})
            probe.with_overrides({p.name: p.high})
        except ScenarioError as exc:
            raise AbcSpecError(f"{path}: key 'parameters.{i}.name' ({p.name}): {exc}") from None
    return spec, objectives


# ------------------------------------------------------------------------------------- the simulator
class TargetModel:
    """Parameters -> the simulated value of every objective: one run of each target scenario (at the spec's
    scale, the parameters set on top), measured as ``python run.py validate`` measures it."""

    def __init__(self, spec: AbcSpec, objectives: Sequence[Objective]) -> None:
        from analysis.validation import SCENARIO_DIR, TARGETS
        from sim.scenario import load_scenario

        by_key = {t.key: t for t in TARGETS}
        self.targets = [by_key[o.key] for o in objectives]
        scale = {"world.population": spec.scale.population, "run.days": spec.scale.days,
                 "run.warmup_days": spec.scale.warmup_days}
        self.scenarios = {t.scenario: load_scenario(SCENARIO_DIR / f"{t.scenario}.yaml", scale)
                          for t in self.targets}

    def __call__(self, params: Mapping[str, float], seed: int) -> dict[str, float]:
        from analysis.validation import MEASURES, RunData
        from sim import run_scenario

        out: dict[str, float] = {}
        runs: dict[str, RunData] = {}
        for name, scenario in self.scenarios.items():
            res = run_scenario(scenario.with_overrides(dict(params)), seed=seed)
            end_h = (scenario.run.days + scenario.run.warmup_days) * 24.0
            runs[name] = RunData(f"{name}-{seed}", name, 0, res.summary, res.cases, end_h,
                                 scenario.run.warmup_days * 24.0)
        for t in self.targets:
            out[t.key] = float(MEASURES[t.measure].func(runs[t.scenario]))
        return out


def distance(simulated: Mapping[str, float], objectives: Sequence[Objective]) -> float:
    """Root-mean-square standardised miss (NaN or a missing value counts as a miss of 10 tolerances)."""
    misses = []
    for o in objectives:
        v = simulated.get(o.key, math.nan)
        misses.append(10.0 if not math.isfinite(v) else (v - o.observed) / o.tolerance)
    return float(math.sqrt(sum(m * m for m in misses) / len(misses)))


# ------------------------------------------------------------------------------------- the posterior
def weighted_quantile(x: np.ndarray, w: np.ndarray, q: float | Sequence[float]) -> np.ndarray:
    """Quantiles of ``x`` under weights ``w`` (the weighted empirical distribution, linear between points)."""
    order = np.argsort(x)
    x, w = np.asarray(x, float)[order], np.asarray(w, float)[order]
    cum = (np.cumsum(w) - 0.5 * w) / w.sum()
    return np.interp(q, cum, x)


def central_draw(particles: pd.DataFrame, weights: np.ndarray, priors: Sequence[PriorSpec]) -> int:
    """Position of the particle nearest the weighted median, each coordinate scaled by its prior's range
    (log range for a log-uniform prior)."""
    z = np.zeros(len(particles))
    for p in priors:
        x = particles[p.name].to_numpy(float)
        width = math.log(p.high / p.low) if p.log else p.high - p.low
        x = np.log(x) if p.log else x
        z += ((x - weighted_quantile(x, weights, 0.5)) / width) ** 2
    return int(np.argmin(z))


def identifiability(particles: pd.DataFrame, weights: np.ndarray, priors: Sequence[PriorSpec]) -> list[dict]:
    """Per parameter: the prior range, the posterior's weighted median and 5–95% interval, and the interval's
    width as a share of the prior's own 5–95% width (on the log scale for a log-uniform prior)."""
    rows = []
    for p in priors:
        x = particles[p.name].to_numpy(float)
        lo, med, hi = weighted_quantile(x, weights, [0.05, 0.5, 0.95])
        if p.log:
            prior_w = 0.9 * math.log(p.high / p.low)
            ratio = (math.log(hi) - math.log(lo)) / prior_w
        else:
            ratio = (hi - lo) / (0.9 * (p.high - p.low))
        rows.append({"parameter": p.name, "prior_low": p.low, "prior_high": p.high, "log": p.log,
                     "median": float(med), "q05": float(lo), "q95": float(hi), "width_ratio": float(ratio),
                     "pinned": bool(ratio < 0.5)})
    return rows


def sensitivity(draws: pd.DataFrame, priors: Sequence[PriorSpec], keys: Sequence[str]) -> pd.DataFrame:
    """Spearman rank correlation of each target's simulated value with each parameter over prior draws."""
    ranks = draws.rank()
    out = pd.DataFrame(index=[p.name for p in priors], columns=list(keys), dtype=float)
    for p in priors:
        for k in keys:
            out.loc[p.name, k] = float(ranks[p.name].corr(ranks[k])) if draws[k].nunique() > 1 else math.nan
    return out


# ---------------------------------------------------------------------------------------------- SMC
def abc_smc(simulate: Callable[[dict[str, float], int], dict[str, float]], priors: Sequence[PriorSpec],
            objectives: Sequence[Objective], settings: AbcSettings, db: Path, seed: int, resume: bool = False,
            workers: int = 1, budget_used: int = 0) -> Any:
    """Run (or continue) ABC-SMC with pyabc; returns its ``History``. ``simulate(params, seed)`` gives each
    objective's simulated value; ``budget_used`` simulations were already spent (the prior predictive)."""
    import logging

    import pyabc

    for name in ("ABC", "Epsilon", "Distance", "Sampler", "pyabc"):
        logging.getLogger(name if name != "pyabc" else "pyabc").setLevel(logging.WARNING)
    safe = {p.name: p.name.replace(".", "__") for p in priors}
    prior = pyabc.Distribution(**{safe[p.name]: (pyabc.RV("loguniform", p.low, p.high) if p.log
                                                 else pyabc.RV("uniform", p.low, p.high - p.low)) for p in priors})
    seeds = np.random.SeedSequence(seed)

    def model(par: Mapping[str, float]) -> dict[str, float]:
        # a fresh seed per simulation, from the OS entropy mixed with the spec's seed
        s = int(np.random.default_rng([int(seeds.entropy), int.from_bytes(os.urandom(8), "little")])
                .integers(2**31 - 1))
        values = simulate({p.name: float(par[safe[p.name]]) for p in priors}, s)
        return {**values, "seed": float(s)}

    def dist(x: Mapping[str, float], _x0: Mapping[str, float]) -> float:
        return distance(x, objectives)

    sampler = (pyabc.sampler.MulticoreEvalParallelSampler(n_procs=workers) if workers > 1
               else pyabc.sampler.SingleCoreSampler())
    smc = pyabc.ABCSMC(model, prior, dist, population_size=settings.population_size, sampler=sampler,
                       eps=pyabc.QuantileEpsilon(alpha=0.5))
    url = f"sqlite:///{db}"
    if resume and db.exists():
        smc.load(url)
    else:
        if db.exists():
            db.unlink()
        smc.new(url, {o.key: o.observed for o in objectives})
    left = settings.max_simulations - budget_used
    return smc.run(minimum_epsilon=settings.minimum_epsilon, max_nr_populations=settings.max_generations,
                   max_total_nr_simulations=max(left, settings.population_size),
                   max_walltime=_dt.timedelta(minutes=settings.max_minutes))


def posterior_of(history: Any, priors: Sequence[PriorSpec]) -> tuple[pd.DataFrame, np.ndarray]:
    """The last generation's particles (columns named by scenario key) and their normalised weights."""
    df, w = history.get_distribution(m=0, t=history.max_t)
    df = df.rename(columns={p.name.replace(".", "__"): p.name for p in priors})[[p.name for p in priors]]
    w = np.asarray(w, float)
    return df.reset_index(drop=True), w / w.sum()


# ------------------------------------------------------------------------------------------- running
@dataclass
class AbcOutcome:
    """What :func:`run_abc` found: posterior, its summaries, the check of the central draw, the files."""

    name: str
    out: Path
    particles: pd.DataFrame
    weights: np.ndarray
    identifiability: list[dict]
    sensitivity: pd.DataFrame
    prior_predictive: pd.DataFrame
    central: dict[str, float]
    check: dict[str, dict[str, float]]
    epsilons: list[float]
    simulations: int
    wall_s: float
    objectives: list[Objective] = field(default_factory=list)

    def render(self) -> str:
        """The report (Markdown)."""
        lines = [f"# ABC-SMC calibration `{self.name}`", "",
                 f"{self.simulations} simulations ({len(self.prior_predictive)} prior-predictive draws), "
                 f"{len(self.epsilons)} generations, wall time {self.wall_s / 60:.1f} min; thresholds ε = "
                 + ", ".join(f"{e:.2f}" for e in self.epsilons) + ".", "",
                 "## Posterior and identifiability", "",
                 "| parameter | prior | posterior median [5–95%] | width / prior width | pinned |", "|---|---|---|---|---|"]
        for r in self.identifiability:
            prior = f"{'log-' if r['log'] else ''}uniform [{r['prior_low']:g}, {r['prior_high']:g}]"
            lines.append(f"| {r['parameter']} | {prior} | {r['median']:.3g} [{r['q05']:.3g}, {r['q95']:.3g}] | "
                         f"{r['width_ratio']:.2f} | {'yes' if r['pinned'] else 'no'} |")
        lines += ["", "## Which targets pin which parameters (Spearman ρ over prior draws)", "",
                  "| parameter | " + " | ".join(self.sensitivity.columns) + " |",
                  "|---|" + "---|" * len(self.sensitivity.columns)]
        for name, row in self.sensitivity.iterrows():
            lines.append(f"| {name} | " + " | ".join(f"{v:+.2f}" for v in row.to_numpy(float)) + " |")
        lines += ["", "## Prior predictive check", "",
                  "| target | observed [band] | prior predictive 5% / 50% / 95% | observed inside 5–95% |",
                  "|---|---|---|---|"]
        for o in self.objectives:
            col = self.prior_predictive[o.key].dropna() if o.key in self.prior_predictive else pd.Series(dtype=float)
            q = col.quantile([0.05, 0.5, 0.95]).to_numpy() if len(col) else [math.nan] * 3
            inside = bool(len(col)) and q[0] <= o.observed <= q[2]
            lines.append(f"| {o.key} | {o.observed:.3f} [{o.observed - o.tolerance:.3f}, "
                         f"{o.observed + o.tolerance:.3f}] | {q[0]:.3f} / {q[1]:.3f} / {q[2]:.3f} | "
                         f"{'yes' if inside else 'no'} |")
        lines += ["", "## The central draw, on fresh seeds", "",
                  "Parameters: " + ", ".join(f"`{k}` = {v:.4g}" for k, v in self.central.items()), "",
                  "| target | observed [band] | mean over fresh seeds | within band |", "|---|---|---|---|"]
        for o in self.objectives:
            c = self.check.get(o.key, {})
            lines.append(f"| {o.key} | {o.observed:.3f} ± {o.tolerance:.3f} | {c.get('mean', math.nan):.3f} "
                         f"(n = {int(c.get('n', 0))}) | {'yes' if c.get('within') else 'NO'} |")
        return "\n".join(lines) + "\n"


def _fresh_seeds(seed: int, n: int) -> list[int]:
    return [int(s) for s in np.random.default_rng([seed, 7919]).integers(1, 2**31 - 1, n)]


def run_abc(spec_path: str | Path, resume: bool = False, workers: int | None = None,
            simulate: Callable[[dict[str, float], int], dict[str, float]] | None = None,
            log: Callable[[str], None] = print) -> AbcOutcome:
    """Calibrate by ABC-SMC as the spec says; write the outputs; return the outcome. ``simulate`` replaces
    the model (tests)."""
    t0 = time.perf_counter()
    spec, objectives = load_abc_spec(spec_path)
    out = Path(spec.output) if spec.output else DEFAULT_OUT / spec.name
    out.mkdir(parents=True, exist_ok=True)
    workers = max(1, int(workers or min(2, os.cpu_count() or 1)))
    sim = simulate or TargetModel(spec, objectives)
    keys = [o.key for o in objectives]
    # prior predictive (kept on disk: a resumed calibration does not spend it again)
    pp_path = out / "prior_predictive.csv"
    if resume and pp_path.exists():
        pp = pd.read_csv(pp_path)
    else:
        u = np.random.default_rng([spec.seed, 1]).random((spec.abc.prior_predictive, len(spec.parameters)))
        rows = []
        for i, s in enumerate(_fresh_seeds(spec.seed + 1, spec.abc.prior_predictive)):
            params = {p.name: float(p.sample(u[i, j])) for j, p in enumerate(spec.parameters)}
            rows.append({**params, **sim(params, s), "seed": s})
            log(f"prior predictive {i + 1}/{spec.abc.prior_predictive}")
        pp = pd.DataFrame(rows, columns=[*[p.name for p in spec.parameters], *keys, "seed"])
        pp.to_csv(pp_path, index=False)
    history = abc_smc(sim, spec.parameters, objectives, spec.abc, (out / "history.db").resolve(), spec.seed,
                      resume=resume, workers=workers, budget_used=len(pp))
    particles, weights = posterior_of(history, spec.parameters)
    pos = central_draw(particles, weights, spec.parameters)
    central = {p.name: float(particles.loc[pos, p.name]) for p in spec.parameters}
    log("checking the central draw on fresh seeds")
    runs = [sim(central, s) for s in _fresh_seeds(spec.seed + 2, spec.abc.check_replications)]
    check = {}
    for o in objectives:
        vals = np.array([r[o.key] for r in runs], float)
        mean = float(np.nanmean(vals)) if np.isfinite(vals).any() else math.nan
        check[o.key] = {"mean": mean, "n": float(np.isfinite(vals).sum()),
                        "within": bool(abs(mean - o.observed) <= o.tolerance)}
    pops = history.get_all_populations()
    epsilons = [float(e) for e in pops.loc[pops["t"] >= 0, "epsilon"]]
    outcome = AbcOutcome(spec.name, out, particles, weights, identifiability(particles, weights, spec.parameters),
                         sensitivity(pp, spec.parameters, keys), pp, central, check, epsilons,
                         int(history.total_nr_simulations) + len(pp) + len(runs), time.perf_counter() - t0,
                         list(objectives))
    _write(outcome, spec)
    return outcome


def _write(o: AbcOutcome, spec: AbcSpec) -> None:
    post = o.particles.copy()
    post["weight"] = o.weights
    post.to_csv(o.out / "posterior.csv", index=False)
    data = {
        "name": o.name, "spec": spec.model_dump(), "parameters": [p.name for p in spec.parameters],
        "draws": o.particles.to_dict(orient="list"), "weights": o.weights.tolist(), "central": o.central,
        "identifiability": o.identifiability, "sensitivity": o.sensitivity.to_dict(), "check": o.check,
        "epsilons": o.epsilons, "simulations": o.simulations, "wall_s": o.wall_s,
        "objectives": [vars(ob) for ob in o.objectives],
        "written": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    (o.out / "posterior.json").write_text(json.dumps(data, indent=1, default=float) + "\n", encoding="utf-8")
    (o.out / "report.md").write_text(o.render(), encoding="utf-8")
