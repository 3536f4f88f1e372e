"""Calibration: fit chosen scenario parameters to observed targets, respecting simulation noise.

``python run.py calibrate SPEC`` calls :func:`calibrate`. A calibration spec (see
``experiments/calibration_example.yaml``)::

    name: before_platform_fit            # name of the written scenario (default: <base>_calibrated)
    scenario: ../scenarios/baseline.yaml # the base scenario, relative to this spec
    set: {world.population: 10000}       # optional fixed settings, written into the output too
    parameters:                          # dotted scenario keys and their search ranges
      - {name: departments.duty, low: 0.0, high: 2.0}
      - {name: policy.supervision_intensity, low: 0.5, high: 50, log: true}   # sampled on a log scale
    targets:                             # observed values with tolerances, in the KPI's unit
      - {kpi: resolution_rate, observed: 0.53, tolerance: 0.08, source: "Beijing 12345 before 2019"}
      - {kpi: satisfaction_rate, group_by: channel, group: online, observed: 0.6, tolerance: 0.05}
      - kpi: response_rate               # a target measured in a variant of the scenario
        set: {policy.tracking: false, policy.supervision_intensity: 0}
        observed: 0.33
        tolerance: 0.08
    replications: 3                      # runs per point and target setting (common random numbers)
    days: 60                             # simulated days after warm-up (default: the scenario's run.days)
    warmup_days: 15
    seed: 7
    search:
      budget: 150                        # simulation runs in all, the final check included
      initial_points: 12                 # space-filling stage (default: about half the search budget)
      points_per_round: 6                # refinement points per round
      shrink: 0.5                        # the box halves every round
      sampler: lhs                       # lhs | sobol (scrambled, scipy.stats.qmc)
      check_candidates: 3                # best points re-run with fresh seeds ...
      check_replications: 6              # ... this many replications each
    output: ../scenarios/my_fit.yaml     # where to write (default results/calibration/<name>.yaml)

The method, in three stages, all on replicated means:

1. **Space-filling search.** ``initial_points`` points over the whole box (Latin hypercube or scrambled
   Sobol, ``scipy.stats.qmc``), each run ``replications`` times in every target setting.
2. **Local refinement.** Round after round, a smaller box (half-width ``0.25 × shrink^(round−1)`` of each
   range, clipped to the range) centred on the best point so far is filled with ``points_per_round`` new
   Latin-hypercube points, until the budget for the search is spent. Every point of the search uses the
   *same* replication seeds (common random numbers), so two points differ by their parameters, not by
   their luck, and comparing them is much less noisy than with independent seeds.
3. **Check with fresh seeds.** The ``check_candidates`` best points are run again with
   ``check_replications`` new seeds (independent of the search's), and the one with the smallest loss on
   these fresh runs is the fit. Selecting the best of many noisy points favours points that were lucky
   (the winner's curse); re-measuring them with seeds the search never saw removes that bias from the
   reported fit.

The loss of a point is the weighted mean of squared standardised misses,
``Σ w·((mean − observed)/tolerance)² / Σ w``, so that a loss below 1 means the targets are missed by less
than their tolerance on (root-mean-square) average. The **uncertainty** of the fitted values is the spread
of the *accepted* points: every evaluated point whose replicated means fall within tolerance of every
target (approximate Bayesian computation's rejection rule, with the tolerances as the acceptance region
and the search's points as the proposals; points concentrate near the best one, so the spread is a
conservative summary, not a posterior). If fewer than three points are accepted, the spread of the
nearest-best points (the best tenth, at least three) is reported instead, and the report says so.
The fit per target is the check's mean with its 95% t-interval over the fresh replications.

Output: a scenario YAML that ``extends:`` the base scenario (a path relative to the output file) and sets
the fixed settings and the fitted values, with a header comment saying how it was produced; next to it,
``<stem>.points.csv`` lists every evaluated point (stage, values, loss, per-target means).

Every mistake in a spec raises :class:`CalibrationSpecError` (a :class:`~experiments.spec.SpecError`)
naming the spec file and the key path.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from common.dotted import get_dotted, nest
from common.formatting import FINE_BANDS, format_number, format_setting
from common.models import StrictModel as _Strict
from common.progress import RunProgress
from common.provenance import git_commit
from common.stats import interval_from_moments
from sim.results import KPI_NAMES
from sim.scenario import Scenario, ScenarioError, load_scenario
from sim.yamlfiles import format_validation_error, read_yaml_mapping

from .designs import field_kind
from .engines import Batcher, Engine, execute, make_engine
from .runner import RunTask, run_batch
from .spec import SpecError, replication_seeds

DEFAULT_OUT = Path("results") / "calibration"

#: The splits of ``RunResult.groups`` a target may name, with their groups.
GROUPS: dict[str, tuple[str, ...]] = {
    "requester_kind": ("citizen", "enterprise"),
    "channel": ("online", "hotline", "offline"),
    "area": ("urban", "rural"),
}
#: Indicators the splits carry besides the KPIs (counts and the online share of a group's cases).
GROUP_EXTRAS: tuple[str, ...] = ("cases", "online_share")


class CalibrationSpecError(SpecError):
    """A calibration spec is invalid. The message names the spec file and the key path, for the user."""


class CalibrationError(SpecError):
    """A calibration could not be carried out (e.g. every run of the final check failed)."""


# ------------------------------------------------------------------------------------------- the spec
class ParameterSpec(_Strict):
    """A parameter to fit: a dotted scenario key and the range searched (in the key's own unit)."""

    name: str = Field(description="Dotted scenario key, e.g. departments.duty.")
    low: float = Field(description="Lower end of the search range.")
    high: float = Field(description="Upper end of the search range.")
    log: bool = Field(False, description="Sample on a log scale (needs low > 0).")

    @model_validator(mode="after")
    def _range(self) -> ParameterSpec:
        if not self.low < self.high:
            raise ValueError(f"'low' ({self.low}) must be below 'high' ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log-scale range needs low > 0, got low = {self.low}")
        return self


class TargetSpec(_Strict):
    """An observed value to match: a KPI (overall, or of one group of a split) with its tolerance."""

    kpi: str = Field(description="KPI name (sim.KPI_NAMES); for a group target also 'cases' or 'online_share'.")
    observed: float = Field(description="The observed value, in the KPI's unit.")
    tolerance: Annotated[float, Field(gt=0)] = Field(description="Acceptable miss, in the KPI's unit.")
    group_by: Literal["requester_kind", "channel", "area"] | None = Field(
        None, description="Split the KPI is taken from (with 'group'); overall when omitted.")
    group: str | None = Field(None, description="Group of the split, e.g. online, rural, enterprise.")
    overrides: dict[str, Any] = Field(
        default_factory=dict, alias="set",
        description="Settings of the scenario variant this target is measured in (dotted keys).")
    weight: Annotated[float, Field(gt=0)] = Field(1.0, description="Weight in the loss.")
    name: str | None = Field(None, description="Short name shown in reports, e.g. T1 (default: the KPI).")
    source: str = Field("", description="Where the observed value comes from.")

    @model_validator(mode="after")
    def _kpi_and_group(self) -> TargetSpec:
        if (self.group_by is None) != (self.group is None):
            raise ValueError("give both 'group_by' and 'group' for a group target, or neither")
        allowed = list(KPI_NAMES) + (list(GROUP_EXTRAS) if self.group_by else [])
        if self.kpi not in allowed:
            raise ValueError(f"unknown KPI {self.kpi!r}; allowed: {', '.join(allowed)}")
        if self.group_by is not None and self.group not in GROUPS[self.group_by]:
            raise ValueError(f"group {self.group!r} is not a group of {self.group_by!r}; "
                             f"allowed: {', '.join(GROUPS[self.group_by])}")
        return self

    def label(self) -> str:
        """``name: kpi[group_by=group]`` (the name when given), e.g. ``T1: response_rate``."""
        text = self.kpi + (f"[{self.group_by}={self.group}]" if self.group_by else "")
        return f"{self.name}: {text}" if self.name else text

    def settings_text(self) -> str:
        """The variant's settings, ``key=value, ...`` (empty for the base scenario)."""
        return ", ".join(f"{k}={format_setting(v)}" for k, v in self.overrides.items())


class SearchSpec(_Strict):
    """How the search spends its runs."""

    budget: Annotated[int, Field(ge=1, le=10_000_000)] = Field(
        description="Simulation runs in all: search points × replications × target settings, plus the check.")
    initial_points: Annotated[int, Field(ge=2, le=100_000)] | None = Field(
        None, description="Points of the space-filling stage (default: about half of the search's runs).")
    points_per_round: Annotated[int, Field(ge=1, le=100_000)] | None = Field(
        None, description="Points per refinement round (default: a quarter of the initial points, at least 2).")
    shrink: Annotated[float, Field(gt=0, lt=1)] = Field(0.5, description="Box size factor per round.")
    sampler: Literal["lhs", "sobol"] = Field("lhs", description="Space-filling sampler (scipy.stats.qmc).")
    check_candidates: Annotated[int, Field(ge=1, le=100)] = Field(3, description="Best points re-run at the end.")
    check_replications: Annotated[int, Field(ge=2, le=10_000)] = Field(
        6, description="Fresh replications of each candidate in the check.")


class CalibrationSpec(_Strict):
    """A complete calibration spec, as validated."""

    name: str | None = Field(None, description="Name of the written scenario (default: <base name>_calibrated).")
    description: str = ""
    scenario: str = Field(description="Base scenario file, relative to the spec.")
    overrides: dict[str, Any] = Field(
        default_factory=dict, alias="set", description="Fixed settings (dotted keys), written to the output too.")
    parameters: list[ParameterSpec] = Field(min_length=1)
    targets: list[TargetSpec] = Field(min_length=1)
    replications: Annotated[int, Field(ge=1, le=10_000)] = Field(
        3, description="Runs per point and target setting in the search.")
    days: Annotated[float, Field(gt=0, le=3650)] | None = Field(
        None, description="Simulated days after warm-up (default: the base scenario's run.days).")
    warmup_days: Annotated[float, Field(ge=0, le=3650)] | None = Field(
        None, description="Warm-up days (default: the base scenario's run.warmup_days).")
    seed: Annotated[int, Field(ge=0)] = Field(1, description="Master seed of the sampling and replication seeds.")
    search: SearchSpec
    output: str | None = Field(None, description="Scenario file to write, relative to the spec.")

    @field_validator("parameters")
    @classmethod
    def _unique(cls, v: list[ParameterSpec]) -> list[ParameterSpec]:
        names = [p.name for p in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"parameter names must be unique; repeated: {', '.join(dupes)}")
        return v


# ------------------------------------------------------------------------------------------- the plan
@dataclass
class CalibrationPlan:
    """A validated spec, resolved: scenarios of each target setting, parameter kinds, seeds, run counts.

    ``variants``: one scenario per distinct target ``set`` (the fixed settings, days and warm-up applied);
    ``target_variant[i]``: index of target i's variant. ``runs_per_point``: variants × replications.
    """

    path: Path
    spec: CalibrationSpec
    base_path: Path
    base: Scenario
    name: str
    variants: list[Scenario]
    variant_sets: list[dict[str, Any]]
    target_variant: list[int]
    kinds: list[str]
    days: float
    warmup_days: float
    search_seeds: list[int]
    check_seeds: list[int]
    initial_points: int
    points_per_round: int
    out_path: Path
    kpis: list[str] = field(default_factory=list)

    @property
    def runs_per_point(self) -> int:
        return len(self.variants) * self.spec.replications

    @property
    def check_runs(self) -> int:
        return self.spec.search.check_candidates * len(self.variants) * self.spec.search.check_replications

    @property
    def search_budget(self) -> int:
        """Runs the search (stages 1 and 2) may spend."""
        return self.spec.search.budget - self.check_runs


def _read_yaml(path: Path) -> dict[str, Any]:
    return read_yaml_mapping(path, CalibrationSpecError, "calibration spec", "(scenario, parameters, targets, ...)")


def load_calibration_spec(path: str | Path, out: str | Path | None = None) -> CalibrationPlan:
    """Read, validate and resolve a calibration spec; :class:`CalibrationSpecError` for every mistake."""
    path = Path(path)
    raw = _read_yaml(path)
    try:
        spec = CalibrationSpec.model_validate(raw)
    except ValidationError as exc:
        raise CalibrationSpecError(format_validation_error(exc, str(path), CalibrationSpec)) from None
    base_path, base = _base_scenario(spec, path)
    days = float(spec.days) if spec.days is not None else float(base.run.days)
    warm = float(spec.warmup_days) if spec.warmup_days is not None else float(base.run.warmup_days)
    kinds = _parameter_kinds(spec, path)
    variant_sets, target_variant = _target_settings(spec, path)
    variants = _variant_scenarios(base, variant_sets, target_variant,
                                  {"run.days": days, "run.warmup_days": warm}, path)
    _check_parameter_ranges(spec, kinds, variants, path)
    initial, per_round = _search_sizes(spec, len(variants), path)
    name = spec.name or f"{base.name}_calibrated"
    kpis = sorted({t.kpi for t in spec.targets if t.kpi in KPI_NAMES}, key=list(KPI_NAMES).index)
    seeds = replication_seeds(spec.seed, spec.replications + spec.search.check_replications)
    return CalibrationPlan(
        path=path, spec=spec, base_path=base_path, base=base, name=name, variants=variants,
        variant_sets=variant_sets, target_variant=target_variant, kinds=kinds, days=days, warmup_days=warm,
        search_seeds=seeds[:spec.replications], check_seeds=seeds[spec.replications:], initial_points=initial,
        points_per_round=per_round, out_path=_output_path(spec, path, name, out), kpis=kpis or ["response_rate"])


def _base_scenario(spec: CalibrationSpec, path: Path) -> tuple[Path, Scenario]:
    """The base scenario's file and the scenario itself, with the spec's fixed settings applied."""
    base_path = path.parent / spec.scenario
    if not base_path.exists():
        raise CalibrationSpecError(f"{path}: key 'scenario': scenario file {spec.scenario!r} not found "
                                   f"(looked for {base_path.resolve()})")
    try:
        return base_path, load_scenario(base_path, spec.overrides or None)
    except ScenarioError as exc:
        raise CalibrationSpecError(f"{path}: key 'scenario' (with 'set'): {exc}") from None


def _parameter_kinds(spec: CalibrationSpec, path: Path) -> list[str]:
    """"int" or "float" per fitted parameter; only numeric settings that are not also fixed can be fitted."""
    kinds: list[str] = []
    fixed = set(spec.overrides)
    for i, p in enumerate(spec.parameters):
        where = f"{path}: key 'parameters.{i}' ({p.name})"
        try:
            kind = field_kind(p.name)
        except ValueError as exc:
            raise CalibrationSpecError(f"{where}: {exc}") from None
        if kind not in ("int", "float"):
            raise CalibrationSpecError(f"{where}: {p.name!r} is a {kind} setting; only numbers can be fitted")
        if p.name in fixed:
            raise CalibrationSpecError(f"{where}: {p.name!r} is also fixed in 'set'; fit it or fix it, not both")
        kinds.append(kind)
    return kinds


def _target_settings(spec: CalibrationSpec, path: Path) -> tuple[list[dict[str, Any]], list[int]]:
    """The distinct target settings (``set`` of each target) and, per target, the index of its setting."""
    variant_keys: list[str] = []
    variant_sets: list[dict[str, Any]] = []
    target_variant: list[int] = []
    fitted = {p.name for p in spec.parameters}
    for i, t in enumerate(spec.targets):
        clash = sorted(set(t.overrides) & fitted)
        if clash:
            raise CalibrationSpecError(f"{path}: key 'targets.{i}.set': {', '.join(clash)} is fitted; a target "
                                       "setting must not fix a fitted parameter")
        key = json.dumps(t.overrides, sort_keys=True, default=str)
        if key not in variant_keys:
            variant_keys.append(key)
            variant_sets.append(dict(t.overrides))
        target_variant.append(variant_keys.index(key))
    return variant_sets, target_variant


def _variant_scenarios(base: Scenario, variant_sets: list[dict[str, Any]], target_variant: list[int],
                       horizon: dict[str, float], path: Path) -> list[Scenario]:
    """One scenario per target setting: the base with the setting and the horizon (days, warm-up) applied."""
    variants: list[Scenario] = []
    for v, overrides in enumerate(variant_sets):
        where = next(f"targets.{i}.set" for i, tv in enumerate(target_variant) if tv == v)
        try:
            variants.append(base.with_overrides({**overrides, **horizon}, source=f"{path} ({where})"))
        except ScenarioError as exc:
            raise CalibrationSpecError(f"{path}: key '{where}': {exc}") from None
    return variants


def _check_parameter_ranges(spec: CalibrationSpec, kinds: list[str], variants: list[Scenario],
                            path: Path) -> None:
    """Both ends of every range must be valid settings in every variant; an integer range needs two values."""
    for i, p in enumerate(spec.parameters):
        for value in (p.low, p.high):
            setting = int(round(value)) if kinds[i] == "int" else value
            for v, scenario in enumerate(variants):
                try:
                    scenario.with_overrides({p.name: setting}, source=f"variant {v}")
                except ScenarioError as exc:
                    raise CalibrationSpecError(
                        f"{path}: key 'parameters.{i}' ({p.name}): value {setting!r} is rejected: {exc}") from None
        if kinds[i] == "int" and int(round(p.high)) - int(round(p.low)) < 1:
            raise CalibrationSpecError(f"{path}: key 'parameters.{i}' ({p.name}): an integer range needs at "
                                       f"least two values, got {p.low}..{p.high}")


def _search_sizes(spec: CalibrationSpec, n_variants: int, path: Path) -> tuple[int, int]:
    """Points of the space-filling stage and per refinement round; the budget must pay for stage 1 and the
    check."""
    search = spec.search
    runs_per_point = n_variants * spec.replications
    check_runs = search.check_candidates * n_variants * search.check_replications
    search_budget = search.budget - check_runs
    if search.initial_points is not None:
        initial = search.initial_points
    else:
        initial = max(2, min(64, (search_budget // runs_per_point) // 2))
    need = check_runs + max(initial, search.check_candidates) * runs_per_point
    if search.budget < need:
        raise CalibrationSpecError(
            f"{path}: key 'search.budget': {search.budget} runs cannot pay for the search and the check: "
            f"{max(initial, search.check_candidates)} initial points × {runs_per_point} runs "
            f"({n_variants} target setting(s) × {spec.replications} replications) + the check "
            f"({search.check_candidates} candidates × {n_variants} × {search.check_replications}) "
            f"= {need} runs; raise the budget or lower initial_points, replications or the check")
    return initial, search.points_per_round or max(2, initial // 4)


def _output_path(spec: CalibrationSpec, path: Path, name: str, out: str | Path | None) -> Path:
    """Where the fitted scenario goes: ``out``, else the spec's ``output``, else the default folder."""
    if out is not None:
        out_path = Path(out)
    elif spec.output is not None:
        out_path = path.parent / spec.output
    else:
        out_path = DEFAULT_OUT / f"{name}.yaml"
    if out_path.suffix.lower() not in (".yaml", ".yml"):
        raise CalibrationSpecError(f"{path}: output {str(out_path)!r} must be a .yaml file")
    return out_path


# ------------------------------------------------------------------------------------------ the points
class _Space:
    """Maps the unit cube to parameter values (linear or log), rounded to a readable resolution."""

    def __init__(self, params: list[ParameterSpec], kinds: list[str]) -> None:
        self.params = params
        self.kinds = kinds

    @property
    def dim(self) -> int:
        return len(self.params)

    def values(self, u: np.ndarray) -> tuple[float, ...]:
        out = []
        for j, (p, kind) in enumerate(zip(self.params, self.kinds, strict=True)):
            x = float(np.clip(u[j], 0.0, 1.0))
            if p.log:
                v = math.exp(math.log(p.low) + x * (math.log(p.high) - math.log(p.low)))
            else:
                v = p.low + x * (p.high - p.low)
            out.append(self._round(v, p, kind))
        return tuple(out)

    def unit(self, values: tuple[float, ...]) -> np.ndarray:
        u = []
        for v, p in zip(values, self.params, strict=True):
            if p.log:
                u.append((math.log(v) - math.log(p.low)) / (math.log(p.high) - math.log(p.low)))
            else:
                u.append((v - p.low) / (p.high - p.low))
        return np.clip(np.array(u, dtype=float), 0.0, 1.0)

    @staticmethod
    def _round(v: float, p: ParameterSpec, kind: str) -> float:
        if kind == "int":
            return float(min(max(round(v), math.ceil(p.low)), math.floor(p.high)))
        # about 1/1000 of the range (or of the value, on a log scale), on a decimal grid
        span = abs(v) if p.log else (p.high - p.low)
        step = 10.0 ** math.floor(math.log10(span / 1000.0)) if span > 0 else 1e-6
        digits = max(0, -int(math.floor(math.log10(step))))
        return float(min(max(round(round(v / step) * step, digits), p.low), p.high))

    def setting(self, j: int, v: float) -> Any:
        return int(round(v)) if self.kinds[j] == "int" else float(v)


def _sample(n: int, dim: int, sampler: str, seed: int) -> np.ndarray:
    from scipy.stats import qmc

    rng_seed = np.random.default_rng(seed)
    if sampler == "sobol":
        engine = qmc.Sobol(d=dim, scramble=True, seed=rng_seed)
        with warnings.catch_warnings():  # balance properties hold only for powers of 2; fine here
            warnings.simplefilter("ignore", UserWarning)
            return engine.random(n)
    return qmc.LatinHypercube(d=dim, seed=rng_seed).random(n)


@dataclass
class Evaluation:
    """One evaluated point: its values, the per-target replicated means (and their spread) and its loss."""

    point: int
    stage: str
    values: tuple[float, ...]
    means: list[float]
    sds: list[float]
    n: list[int]
    loss: float
    failed: int = 0


@dataclass
class TargetFit:
    """How the fitted scenario meets one target, from the check's fresh replications."""

    label: str
    observed: float
    tolerance: float
    mean: float
    ci_low: float
    ci_high: float
    n: int
    source: str = ""
    settings: str = ""

    @property
    def within(self) -> bool:
        return bool(np.isfinite(self.mean) and abs(self.mean - self.observed) <= self.tolerance)


@dataclass
class ParameterFit:
    """A fitted value and the spread over the accepted (or nearest-best) points."""

    name: str
    value: float
    low: float
    high: float
    mean: float
    sd: float
    min: float
    max: float


@dataclass
class CalibrationOutcome:
    """What a calibration ended with. ``evaluations``: every search point; ``check``: the re-run candidates."""

    name: str
    spec_path: Path
    base_path: Path
    scenario_path: Path
    points_path: Path
    parameters: list[ParameterFit]
    targets: list[TargetFit]
    evaluations: list[Evaluation]
    check: list[Evaluation]
    spread_basis: str
    n_accepted: int
    runs_search: int
    runs_check: int
    runs_failed: int
    budget: int
    replications: int
    check_replications: int
    days: float
    warmup_days: float
    wall_s: float
    engine: str
    loss: float
    notes: list[str] = field(default_factory=list)

    @property
    def runs(self) -> int:
        return self.runs_search + self.runs_check

    @property
    def fitted(self) -> dict[str, float]:
        return {p.name: p.value for p in self.parameters}

    @property
    def all_within(self) -> bool:
        return all(t.within for t in self.targets)

    def points_frame(self) -> pd.DataFrame:
        return _points_frame(self.evaluations + self.check, [p.name for p in self.parameters],
                             [t.label for t in self.targets])

    def describe(self) -> str:
        """Terminal text: fitted values with their spread, the fit per target, the runs spent."""
        lines = [f"Calibration {self.name!r} ({self.spec_path}): base {self.base_path}",
                 f"  runs: {self.runs} of a budget of {self.budget} (search {self.runs_search}: "
                 f"{len(self.evaluations)} points × {self.replications} replication(s) per target setting; "
                 f"check {self.runs_check}: {len(self.check)} candidate(s) × {self.check_replications} fresh "
                 f"replications){f'; {self.runs_failed} failed' if self.runs_failed else ''}; "
                 f"{self.days:g} days after {self.warmup_days:g} warm-up; {self.wall_s:.0f} s on {self.engine}",
                 "",
                 f"Fitted parameters (spread over {self.spread_basis}):"]
        w = max(len(p.name) for p in self.parameters)
        for p in self.parameters:
            lines.append(f"  {p.name:<{w}}  {_num(p.value):>9}   spread {_num(p.mean)} ± {_num(p.sd)} "
                         f"[{_num(p.min)}, {_num(p.max)}]   searched [{_num(p.low)}, {_num(p.high)}]")
        lines += ["", f"Fit per target (check: mean and 95% interval over {self.check_replications} fresh "
                      f"replications; loss {self.loss:.3f}):"]
        w = max(len(t.label) for t in self.targets)
        for t in self.targets:
            verdict = "within tolerance" if t.within else "MISSED"
            lines.append(f"  {t.label:<{w}}  observed {_num(t.observed)} ± {_num(t.tolerance)}   simulated "
                         f"{_num(t.mean)} [{_num(t.ci_low)}, {_num(t.ci_high)}]   {verdict}")
            if t.settings:
                lines += _wrap(f"  {'':<{w}}  measured with {t.settings}", 110)
        lines += [f"  note: {n}" for n in self.notes]
        lines.append(f"points evaluated: {self.points_path}")
        return "\n".join(lines)


def _num(x: float) -> str:
    """A fitted value or target for people: 1,234 · 123.4 · 1.234 · 0.1234 ("nan" when missing)."""
    return format_number(x, FINE_BANDS, small=".4f")


def _points_frame(evals: list[Evaluation], names: list[str], labels: list[str]) -> pd.DataFrame:
    rows = []
    for e in evals:
        row: dict[str, Any] = {"stage": e.stage, "point": e.point, "loss": e.loss, "failed_runs": e.failed}
        row.update(dict(zip(names, e.values, strict=True)))
        for label, m, s, n in zip(labels, e.means, e.sds, e.n, strict=True):
            row[f"mean:{label}"] = m
            row[f"sd:{label}"] = s
            row[f"n:{label}"] = n
        rows.append(row)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------ running
class _Evaluator:
    """Runs points (each in every target setting, with given seeds) on an engine, and scores them."""

    def __init__(self, plan: CalibrationPlan, engine: Engine, space: _Space, progress: Any = None) -> None:
        self.plan = plan
        self.engine = engine
        self.space = space
        self.progress = progress
        self.runs = 0
        self.failed = 0
        self.errors: list[str] = []

    def evaluate(self, points: list[tuple[int, tuple[float, ...]]], seeds: list[int], stage: str) -> list[Evaluation]:
        plan, space = self.plan, self.space
        targets = plan.spec.targets
        items = [(pid, v, r) for pid, _ in points for v in range(len(plan.variants)) for r in range(len(seeds))]
        by_id = dict(points)
        values: dict[tuple[int, int, int], dict[tuple[str, str, str], float]] = {}

        def prepare(batch: list[tuple[int, int, int]]) -> list[RunTask]:
            tasks = []
            for pid, v, r in batch:
                vals = by_id[pid]
                overrides = {p.name: space.setting(j, vals[j]) for j, p in enumerate(plan.spec.parameters)}
                scenario = plan.variants[v].with_overrides(overrides, source=f"{plan.path} (point {pid})")
                tasks.append(RunTask(run_id=f"{stage}_p{pid:04d}_v{v}_r{r:03d}", scenario_name=f"variant{v}",
                                     point=pid, replication=r, seed=int(seeds[r]), scenario=scenario,
                                     kpis=plan.kpis))
            return tasks

        def on_result(batch: Any, outcomes: list[dict[str, Any]]) -> None:
            for item, o in zip(batch.items, outcomes, strict=True):
                if o["status"] != "ok" or o["summary"] is None:
                    self.failed += 1
                    self.errors.append(f"{o['run_id']}: {o['error']}")
                    continue
                s = o["summary"]
                values[item] = {(str(k), str(gb), str(g)): float(val) for k, val, gb, g in
                                zip(s["kpi"], s["value"], s["group_by"], s["group"], strict=True)}
            self.runs += len(outcomes)
            if self.progress:
                self.progress(len(outcomes))

        def on_lost(batch: Any, reason: str) -> None:
            self.runs += len(batch.items)
            self.failed += len(batch.items)
            self.errors += [f"{stage} point {pid} setting {v} replication {r}: {reason}" for pid, v, r in batch.items]
            if self.progress:
                self.progress(len(batch.items))

        batcher = Batcher(items, self.engine.capacity(), None, self.engine.target_batch_s)
        execute(self.engine, run_batch, batcher, on_result, on_lost, prepare=prepare,
                item_seconds=lambda outs: sum(o["wall_s"] for o in outs))

        evals = []
        for pid, vals in points:
            means, sds, ns = [], [], []
            failed = sum(1 for v in range(len(plan.variants)) for r in range(len(seeds))
                         if (pid, v, r) not in values)
            for i, t in enumerate(targets):
                key = (t.kpi, t.group_by or "all", t.group or "all")
                xs = np.array([values[(pid, plan.target_variant[i], r)].get(key, math.nan)
                               for r in range(len(seeds)) if (pid, plan.target_variant[i], r) in values])
                xs = xs[np.isfinite(xs)]
                means.append(float(xs.mean()) if xs.size else math.nan)
                sds.append(float(xs.std(ddof=1)) if xs.size > 1 else math.nan)
                ns.append(int(xs.size))
            evals.append(Evaluation(point=pid, stage=stage, values=vals, means=means, sds=sds, n=ns,
                                    loss=_loss(means, targets), failed=failed))
        return evals


def _loss(means: list[float], targets: list[TargetSpec]) -> float:
    """Weighted mean of ((mean − observed) / tolerance)²; infinite when a target has no value."""
    total, weights = 0.0, 0.0
    for m, t in zip(means, targets, strict=True):
        if not np.isfinite(m):
            return math.inf
        total += t.weight * ((m - t.observed) / t.tolerance) ** 2
        weights += t.weight
    return total / weights


def _accepted(e: Evaluation, targets: list[TargetSpec]) -> bool:
    return all(np.isfinite(m) and abs(m - t.observed) <= t.tolerance
               for m, t in zip(e.means, targets, strict=True))


def calibrate(spec_path: str, out: str | None = None, workers: int | None = None,
              progress: bool | None = None) -> CalibrationOutcome:
    """Fit the spec's parameters to its targets; write the fitted scenario and the evaluated points.

    ``out``: scenario file to write (default: the spec's ``output``, else
    ``results/calibration/<name>.yaml``). ``workers``: processes (default: CPU count; 1 runs in this
    process). ``progress``: a progress bar on stderr (default: when stderr is a terminal).
    Returns a :class:`CalibrationOutcome` (``describe()`` for the terminal, ``scenario_path``).
    """
    t0 = time.perf_counter()
    plan = load_calibration_spec(spec_path, out)
    spec = plan.spec
    space = _Space(spec.parameters, plan.kinds)
    engine = make_engine("serial" if workers == 1 else "local", workers)
    show = sys.stderr.isatty() if progress is None else progress
    bar = RunProgress(spec.search.budget, f"calibrating {plan.name}", failures=False, remaining=False) if show else None
    search = _Search(plan, space)
    try:
        if bar:
            bar.start()
        ev = _Evaluator(plan, engine, space, bar.advance if bar else None)
        search.explore(ev)
        runs_search = ev.runs
        check = search.check(ev)
        runs_check = ev.runs - runs_search
    except KeyboardInterrupt:
        engine.abort()
        raise
    finally:
        if bar:
            bar.stop()
        engine.close()

    best = _best_checked(plan, check, ev)
    accepted = [e for e in search.evaluations if _accepted(e, spec.targets)]
    basis_set, basis = _spread_basis(search.evaluations, accepted)
    params = _parameter_fits(spec, best, basis_set)
    notes = search.notes + _edge_notes(params)
    if ev.failed:
        notes.append(f"{ev.failed} run(s) failed and were left out of the means; first: {ev.errors[0]}")
    outcome = CalibrationOutcome(
        name=plan.name, spec_path=plan.path, base_path=plan.base_path, scenario_path=plan.out_path,
        points_path=plan.out_path.with_suffix(".points.csv"), parameters=params,
        targets=_target_fits(spec, best), evaluations=search.evaluations, check=check, spread_basis=basis,
        n_accepted=len(accepted), runs_search=runs_search, runs_check=runs_check, runs_failed=ev.failed,
        budget=spec.search.budget, replications=spec.replications,
        check_replications=spec.search.check_replications, days=plan.days, warmup_days=plan.warmup_days,
        wall_s=time.perf_counter() - t0, engine=engine.describe(), loss=best.loss, notes=notes)
    write_outputs(plan, outcome, space)
    return outcome


class _Search:
    """The three stages' points: space-filling, then shrinking boxes around the best, then the check.

    ``evaluations``: every point of stages 1 and 2, in order; ``notes``: what the report should say.
    """

    def __init__(self, plan: CalibrationPlan, space: _Space) -> None:
        self.plan = plan
        self.space = space
        self.evaluations: list[Evaluation] = []
        self.notes: list[str] = []
        self._seen: set[tuple[float, ...]] = set()
        self._rng = np.random.default_rng(np.random.SeedSequence([plan.spec.seed, 1]))

    def _new_points(self, u: np.ndarray, limit: int) -> list[tuple[int, tuple[float, ...]]]:
        """Up to ``limit`` untried points from unit-cube rows ``u``, numbered after the evaluated ones."""
        pts: list[tuple[int, tuple[float, ...]]] = []
        for row in u:
            vals = self.space.values(row)
            if vals in self._seen:
                continue
            self._seen.add(vals)
            pts.append((len(self.evaluations) + len(pts), vals))
            if len(pts) >= limit:
                break
        return pts

    def explore(self, ev: _Evaluator) -> None:
        """Stages 1 and 2, until the search's share of the budget is spent."""
        plan, search, dim = self.plan, self.plan.spec.search, self.space.dim
        first = self._new_points(_sample(plan.initial_points, dim, search.sampler, int(self._rng.integers(2**31))),
                                 plan.initial_points)
        self.evaluations += ev.evaluate(first, plan.search_seeds, "initial")
        rounds = 0
        while True:
            left = (plan.search_budget - ev.runs) // plan.runs_per_point
            if left < 1:
                break
            n = min(plan.points_per_round, left)
            best = min(self.evaluations, key=lambda e: e.loss)
            half = 0.25 * search.shrink ** rounds
            centre = self.space.unit(best.values)
            lo = np.clip(centre - half, 0.0, 1.0)
            hi = np.clip(centre + half, 0.0, 1.0)
            raw = _sample(4 * n, dim, "lhs", int(self._rng.integers(2**31)))
            pts = self._new_points(lo + raw * (hi - lo), n)
            rounds += 1
            if not pts:
                self.notes.append(f"refinement stopped after {rounds - 1} round(s): the box around the best "
                                  "point holds no untried values at the parameters' resolution")
                break
            self.evaluations += ev.evaluate(pts, plan.search_seeds, f"round{rounds}")

    def check(self, ev: _Evaluator) -> list[Evaluation]:
        """Stage 3: the best candidates, re-run with fresh seeds."""
        ranked = sorted(self.evaluations, key=lambda e: (e.loss, e.point))
        candidates = [(e.point, e.values) for e in ranked[:self.plan.spec.search.check_candidates]]
        return ev.evaluate(candidates, self.plan.check_seeds, "check")


def _best_checked(plan: CalibrationPlan, check: list[Evaluation], ev: _Evaluator) -> Evaluation:
    """The checked candidate with the smallest loss on the fresh runs."""
    usable = [c for c in check if np.isfinite(c.loss)]
    if not usable:
        raise CalibrationError(f"{plan.path}: every candidate of the final check failed or gave no value for "
                               f"some target ({ev.failed} failed runs); see the points in the output folder")
    return min(usable, key=lambda e: (e.loss, e.point))


def _target_fits(spec: CalibrationSpec, best: Evaluation) -> list[TargetFit]:
    """How the fit meets each target: the check's mean with its 95% t interval over the fresh replications."""
    fits = []
    for i, t in enumerate(spec.targets):
        iv = interval_from_moments(best.means[i], best.sds[i], best.n[i])
        fits.append(TargetFit(label=t.label(), observed=t.observed, tolerance=t.tolerance, mean=best.means[i],
                              ci_low=iv.low, ci_high=iv.high, n=best.n[i], source=t.source,
                              settings=t.settings_text()))
    return fits


def _spread_basis(evaluations: list[Evaluation], accepted: list[Evaluation]) -> tuple[list[Evaluation], str]:
    """The points the uncertainty is read from (the accepted ones, else the nearest-best), and in words."""
    if len(accepted) >= 3:
        return accepted, f"the {len(accepted)} accepted points, whose replicated means fall within every tolerance"
    k = max(3, math.ceil(0.1 * len(evaluations)))
    basis_set = sorted(evaluations, key=lambda e: (e.loss, e.point))[:k]
    return basis_set, (f"the {len(basis_set)} nearest-best points, as only {len(accepted)} point(s) had every "
                       "target within tolerance")


def _parameter_fits(spec: CalibrationSpec, best: Evaluation, basis_set: list[Evaluation]) -> list[ParameterFit]:
    """Each parameter's fitted value with the spread (mean, sd, min, max) over the basis points."""
    params = []
    for j, p in enumerate(spec.parameters):
        xs = np.array([e.values[j] for e in basis_set], dtype=float)
        params.append(ParameterFit(name=p.name, value=best.values[j], low=p.low, high=p.high,
                                   mean=float(xs.mean()), sd=float(xs.std(ddof=1)) if xs.size > 1 else math.nan,
                                   min=float(xs.min()), max=float(xs.max())))
    return params


def _edge_notes(params: list[ParameterFit]) -> list[str]:
    """A note for every fitted value within 2% of its range's edge (the best value may lie outside)."""
    notes = []
    for p in params:
        width = p.high - p.low
        if width > 0 and min(p.value - p.low, p.high - p.value) <= 0.02 * width:
            notes.append(f"{p.name} = {_num(p.value)} lies at the edge of its range [{_num(p.low)}, "
                         f"{_num(p.high)}]; the best value may lie outside it")
    return notes


# ------------------------------------------------------------------------------------------ output
def _header(plan: CalibrationPlan, outcome: CalibrationOutcome, extends: str) -> list[str]:
    spec = plan.spec
    when = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    commit = git_commit(short=True)
    lines = [
        f"{plan.out_path.name} — calibrated scenario {plan.name!r}.",
        f"Written by `python run.py calibrate {plan.path.as_posix()}` on {when}"
        + (f" (git {commit})" if commit else "") + "; rerun the calibration rather than edit this file.",
        f"It extends {extends} and sets the fixed settings of the spec and the fitted values below.",
        f"Method: {outcome.runs} runs of {outcome.budget} budgeted. Search: {len(outcome.evaluations)} points "
        f"({plan.initial_points} space-filling, {spec.search.sampler}; then shrinking boxes around the best), "
        f"each run {spec.replications}× per target setting with common random numbers; check: the "
        f"{len(outcome.check)} best re-run with {spec.search.check_replications} fresh seeds each. "
        f"Loss = mean of ((simulated − observed)/tolerance)². Horizon {plan.days:g} days after "
        f"{plan.warmup_days:g} warm-up; master seed {spec.seed}.",
        f"Fitted values (spread over {outcome.spread_basis}: mean ± sd [min, max]):",
    ]
    for p in outcome.parameters:
        lines.append(f"  {p.name} = {_num(p.value)}   ({_num(p.mean)} ± {_num(p.sd)} [{_num(p.min)}, "
                     f"{_num(p.max)}]; searched {_num(p.low)}..{_num(p.high)})")
    lines.append(f"Fit (mean [95% interval] over {outcome.check_replications} fresh replications):")
    for t in outcome.targets:
        lines.append(f"  {t.label}: observed {_num(t.observed)} ± {_num(t.tolerance)}, simulated {_num(t.mean)} "
                     f"[{_num(t.ci_low)}, {_num(t.ci_high)}] — "
                     + ("within tolerance" if t.within else "MISSED") + (f" (source: {t.source})" if t.source else "")
                     + (f"; measured with {t.settings}" if t.settings else ""))
    lines += [f"Note: {n}" for n in outcome.notes]
    wrapped: list[str] = []
    for line in lines:
        wrapped += _wrap(line, 108)
    return wrapped


def _wrap(line: str, width: int) -> list[str]:
    import textwrap

    indent = len(line) - len(line.lstrip(" "))
    return textwrap.wrap(line, width=width, subsequent_indent=" " * (indent + 2), break_long_words=False,
                         break_on_hyphens=False) or [""]


def write_outputs(plan: CalibrationPlan, outcome: CalibrationOutcome, space: _Space) -> None:
    """Write the scenario file (header comment + ``extends`` + settings) and the points CSV; check it loads."""
    out = plan.out_path
    out.parent.mkdir(parents=True, exist_ok=True)
    extends = Path(os.path.relpath(plan.base_path.resolve(), out.parent.resolve())).as_posix()
    fitted = {p.name: space.setting(j, p.value) for j, p in enumerate(outcome.parameters)}
    settings = {**plan.spec.overrides, **fitted}
    body: dict[str, Any] = {"extends": extends, "name": plan.name}
    desc = plan.spec.description.strip() or (f"{plan.base.name} with {', '.join(fitted)} fitted to "
                                             f"{', '.join(t.label for t in outcome.targets)}")
    body["description"] = " ".join(desc.split())
    body.update(nest(settings))
    text = "\n".join("# " + line if line else "#" for line in _header(plan, outcome, extends)) + "\n"
    text += yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=110)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
    outcome.points_frame().to_csv(outcome.points_path, index=False)
    # the written file must give exactly the fitted scenario
    written = load_scenario(out)
    expected = plan.base.with_overrides(fitted)
    for key, value in fitted.items():
        got = get_dotted(written.to_dict(), key)
        if got != get_dotted(expected.to_dict(), key):
            raise CalibrationError(f"{out}: key '{key}' reads back as {got!r}, expected {value!r}")
