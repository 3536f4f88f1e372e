"""Experiment specs: YAML files that say which runs to make, validated into an :class:`ExperimentPlan`.

A spec (see ``experiments/reforms.yaml``)::

    name: reforms
    scenarios:                       # name -> scenario file (relative to this spec), or {file, set}
      baseline: ../scenarios/baseline.yaml
      combined:
        file: ../scenarios/zzic.yaml
        set: {policy.response_mandate_hours: 24, policy.dispatch_mode: direct}
      no_mandate:                    # hold: keys this scenario keeps at its file/set values at every design
        file: ../scenarios/zzic.yaml # point, whatever the design says (each must be a design parameter)
        set: {policy.response_mandate_hours: null}
        hold: [policy.response_mandate_hours]
    baseline: baseline               # paired differences are taken against it (default: the first)
    replications: 20                 # runs per scenario (and design point)
    days: 180                        # simulated days after warm-up (default: the scenarios' run.days)
    warmup_days: 30
    seed: 20240601                   # master seed; replication k uses the same seed in every scenario
    kpis: [response_rate, ...]       # default: all KPIs
    keep_cases: false                # true: cases/<run_id>.parquet for every run
    batch_size: null                 # runs per task; default: adaptive (about 2 s of work)
    design:                          # optional: a design over scenario parameters
      type: grid | lhs | morris | sobol
      parameters:
        - {name: policy.supervision_intensity, low: 0, high: 80, levels: 5}   # grid: levels or values
        - {name: policy.response_mandate_hours, values: [null, 48, 24, 12]}
        - {name: policy.callback, values: [false, true]}                       # grid: true/false settings too
      n: 10                          # lhs: points; morris: trajectories; sobol: base sample (power of 2)
    # or, to replicate over the parameter uncertainty of a Bayesian calibration (calibrate-abc):
    # design: {type: posterior, file: ../data/posterior_behaviour.json, n: 20}
      levels: 4                      # morris grid levels
      second_order: true             # sobol: also second-order indices

``hold`` pairs a scenario with a lever against one without it over the same design: in the example, every
design point runs ``combined`` and ``no_mandate`` with the same seeds, and ``no_mandate`` keeps no mandate while
the design's other parameters vary. A held key is not applied at any point (:meth:`ExperimentPlan.scenario_at`);
``runs.parquet`` still gives the point's design values (the point's coordinates) for every scenario, and the
manifest lists the held keys under ``hold``.

Every mistake — malformed YAML, an unknown key, a wrong type, an out-of-range value, a missing scenario
file, a design value of the wrong type or one the scenario rejects — raises :class:`SpecError` naming the spec file and the key path.

Seeds: :func:`replication_seeds` derives one seed per replication from the master seed with
``numpy.random.SeedSequence(master).spawn(R)``; replication k uses the same seed in every scenario and design
point (common random numbers), and raising R keeps the seeds of the first replications.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from common.formatting import format_setting
from common.models import StrictModel as _Strict
from sim.errors import WenzhengError
from sim.results import KPI_NAMES
from sim.scenario import Scenario, ScenarioError, load_scenario
from sim.yamlfiles import read_yaml_mapping, unwrap_model

from .designs import DesignPoints, build_design, field_kind

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class SpecError(WenzhengError):
    """An experiment spec is invalid. The message names the spec file and the key path, for the user."""


class ScenarioRef(_Strict):
    """One scenario of the experiment: a scenario file plus optional dotted-key overrides."""

    file: str = Field(description="Scenario YAML, relative to the spec file.")
    overrides: dict[str, Any] = Field(
        default_factory=dict, alias="set", description="Dotted keys to override, e.g. policy.tracking: false.")
    hold: list[str] = Field(
        default_factory=list, description="Design parameters (dotted keys) this scenario keeps at the values of its "
        "file and 'set' at every design point, whatever the design says.")
    description: str = ""


class Parameter(_Strict):
    """One design parameter: a dotted scenario key and its range (or, for a grid, its values)."""

    name: str = Field(description="Dotted scenario key, e.g. policy.supervision_intensity.")
    low: float | None = Field(None, description="Lower end of the range (the key's own unit).")
    high: float | None = Field(None, description="Upper end of the range.")
    values: list[bool | float | None] | None = Field(
        None, min_length=1, description="Grid only: the values to try: numbers, or true/false for a true/false "
        "setting (null where the key allows it).")
    levels: Annotated[int, Field(ge=2, le=1000)] | None = Field(
        None, description="Grid only: this many evenly spaced values from low to high.")

    @field_validator("values", mode="before")
    @classmethod
    def _grid_value_types(cls, v: Any) -> Any:
        """Grid values are numbers, true/false or null; anything else (a string, a list) is named here, once."""
        if isinstance(v, list):
            wrong = [x for x in v if x is not None and not isinstance(x, bool | int | float)]
            if wrong:
                raise ValueError("grid values must be numbers, true/false or null; got "
                                 + ", ".join(repr(x) for x in wrong))
        return v


class Design(_Strict):
    """A design over scenario parameters."""

    type: Literal["grid", "lhs", "morris", "sobol", "posterior"]
    parameters: list[Parameter] = Field(default_factory=list)
    n: Annotated[int, Field(ge=1, le=1_000_000)] | None = Field(
        None, description="lhs: points; morris: trajectories (N); sobol: base sample size (N, a power of 2); "
        "posterior: draws.")
    file: str | None = Field(None, description="posterior: a posterior.json written by calibrate-abc, relative "
                             "to the spec.")
    levels: Annotated[int, Field(ge=2, le=100)] = Field(4, description="Morris: grid levels (even).")
    second_order: bool = Field(True, description="Sobol: sample for second-order indices too.")
    seed: Annotated[int, Field(ge=0)] | None = Field(None, description="Sampling seed; default: the master seed.")

    @model_validator(mode="after")
    def _posterior(self) -> Design:
        if self.type == "posterior":
            if self.parameters:
                raise ValueError("a posterior design takes its parameters from its 'file'; give no 'parameters'")
            if not self.file or self.n is None:
                raise ValueError("a posterior design needs 'file' (a posterior.json from calibrate-abc) and 'n' "
                                 "(draws)")
        elif self.file is not None:
            raise ValueError("'file' is for posterior designs only")
        elif not self.parameters:
            raise ValueError(f"a {self.type} design needs at least one entry in 'parameters'")
        return self

    @model_validator(mode="after")
    def _check(self) -> Design:
        if self.type == "posterior":
            return self
        names = [p.name for p in self.parameters]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"parameter names must be unique; repeated: {', '.join(dupes)}")
        for i, p in enumerate(self.parameters):
            where = f"parameters.{i} ({p.name})"
            if self.type == "grid":
                if p.values is None and (p.low is None or p.high is None or p.levels is None):
                    raise ValueError(f"{where}: a grid parameter needs 'values', or 'low', 'high' and 'levels'")
                if p.values is not None and (p.low is not None or p.high is not None or p.levels is not None):
                    raise ValueError(f"{where}: give either 'values' or 'low'/'high'/'levels', not both")
            else:
                if p.values is not None or p.levels is not None:
                    raise ValueError(f"{where}: 'values' and 'levels' are for grid designs only; "
                                     f"a {self.type} design samples between 'low' and 'high'")
                if p.low is None or p.high is None:
                    raise ValueError(f"{where}: a {self.type} design needs 'low' and 'high'")
            if p.low is not None and p.high is not None and not p.low < p.high:
                raise ValueError(f"{where}: 'low' ({p.low}) must be below 'high' ({p.high})")
        if self.type != "grid" and self.n is None:
            raise ValueError(f"a {self.type} design needs 'n' "
                             "(lhs: points; morris: trajectories; sobol: base sample size)")
        if self.type == "grid" and self.n is not None:
            raise ValueError("'n' is not used by a grid design (its size is the product of the value counts)")
        if self.type == "sobol" and self.n is not None and self.n & (self.n - 1):
            raise ValueError(f"'n' must be a power of 2 for a Sobol design (Saltelli sampling), got {self.n}")
        if self.type == "morris" and self.levels % 2:
            raise ValueError(f"'levels' must be even for a Morris design, got {self.levels}")
        return self


class Spec(_Strict):
    """A complete experiment spec, as validated."""

    name: str | None = Field(None, description="Experiment name (default: the spec file's stem).")
    description: str = ""
    scenarios: dict[str, ScenarioRef] = Field(
        description="Scenario name -> file or {file, set}; or a list of files (named by their stems).")
    baseline: str | None = Field(None, description="Scenario that differences are taken against (default: first).")
    replications: Annotated[int, Field(ge=1, le=100_000)] = Field(10, description="Runs per scenario and point.")
    days: Annotated[float, Field(gt=0, le=3650)] | None = Field(
        None, description="Simulated days after warm-up (default: the scenarios' run.days, which must agree).")
    warmup_days: Annotated[float, Field(ge=0, le=3650)] | None = Field(
        None, description="Warm-up days (default: the scenarios' run.warmup_days, which must agree).")
    seed: Annotated[int, Field(ge=0)] = Field(1, description="Master seed of the replication seeds.")
    kpis: list[str] | None = Field(None, min_length=1, description="KPIs to keep (default: all).")
    keep_cases: bool = Field(False, description="Write cases/<run_id>.parquet for every run.")
    batch_size: Annotated[int, Field(ge=1, le=10_000)] | None = Field(
        None, description="Runs per task sent to a worker (default: adaptive).")
    design: Design | None = None

    @field_validator("kpis")
    @classmethod
    def _known_kpis(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        unknown = [k for k in v if k not in KPI_NAMES]
        if unknown:
            raise ValueError(f"unknown KPI(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(KPI_NAMES)}")
        if len(set(v)) != len(v):
            raise ValueError("KPIs must not repeat")
        return v

    @field_validator("scenarios", mode="before")
    @classmethod
    def _scenario_forms(cls, v: Any) -> Any:
        """Accept ``name: file``, ``name: {file, set}``, or a list of files named by their stems."""
        if isinstance(v, list):
            named: dict[str, Any] = {}
            for item in v:
                if not isinstance(item, str):
                    raise ValueError(f"a list of scenarios must hold file paths, got {item!r}")
                stem = Path(item).stem
                if stem in named:
                    raise ValueError(f"two scenarios are named {stem!r}; use the mapping form (name: file)")
                named[stem] = item
            v = named
        if not v:
            raise ValueError("name at least one scenario")
        if isinstance(v, dict):
            v = {k: ({"file": ref} if isinstance(ref, str) else ref) for k, ref in v.items()}
        return v


# ---------------------------------------------------------------------------------------------- plan
@dataclass
class ExperimentPlan:
    """A validated spec, resolved: the scenarios, seeds, design points and the spec hash.

    ``scenarios``: name -> validated :class:`sim.Scenario` with the spec's overrides, ``name``, ``run.days``
    and ``run.warmup_days`` applied (design points are applied on top, per run). ``seeds``: replication
    seeds. ``design``: the design points (one empty point when the spec has no design). ``holds``: scenario
    name -> the design parameters it keeps at its own values (only scenarios that hold any).
    """

    path: Path
    raw: dict[str, Any]
    spec: Spec
    name: str
    scenarios: dict[str, Scenario]
    baseline: str
    replications: int
    days: float
    warmup_days: float
    seeds: list[int]
    kpis: list[str]
    design: DesignPoints
    holds: dict[str, list[str]] = field(default_factory=dict)
    spec_hash: str = ""
    _point_cache: dict[tuple[str, int], Scenario] = field(default_factory=dict, repr=False)

    @property
    def n_runs(self) -> int:
        return len(self.scenarios) * self.design.n_points * self.replications

    def run_id(self, scenario: str, point: int, replication: int) -> str:
        """Stable id of one run, also the file name of its cases: ``<scenario>__p<point>__r<replication>``."""
        return f"{scenario}__p{point:04d}__r{replication:03d}"

    def scenario_at(self, scenario: str, point: int) -> Scenario:
        """The scenario of one design point (the base scenario with the point's values applied, except the
        keys the scenario holds)."""
        key = (scenario, point)
        cached = self._point_cache.get(key)
        if cached is not None:
            return cached
        base = self.scenarios[scenario]
        held = set(self.holds.get(scenario, ()))
        overrides = {k: v for k, v in self.design.overrides(point).items() if k not in held}
        result = base.with_overrides(overrides, source=f"{self.path} (design point {point})") if overrides else base
        if len(self._point_cache) < 4096:
            self._point_cache[key] = result
        return result

    def manifest_design(self) -> dict[str, Any]:
        return self.design.to_manifest()


def replication_seeds(master_seed: int, replications: int) -> list[int]:
    """Seeds of replications 0..R-1: ``SeedSequence(master).spawn(R)``, 63 bits of each child's state.

    The seed of replication k does not depend on R (spawned children are numbered), so adding replications
    keeps the earlier ones. Seeds fit a signed 64-bit integer (Parquet ``int64``).
    """
    children = np.random.SeedSequence(int(master_seed)).spawn(int(replications))
    return [int(child.generate_state(1, np.uint64)[0] >> np.uint64(1)) for child in children]


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "str"))))
        loc = loc or "(top level)"
        kind = err["type"]
        if kind == "extra_forbidden":
            parent = _model_at(err["loc"][:-1])
            allowed = sorted(
                (f.alias or n) for n, f in parent.model_fields.items()) if parent is not None else []
            msg = "unknown key" + (f"; allowed keys here: {', '.join(allowed)}" if allowed else "")
        else:
            msg = err["msg"].removeprefix("Value error, ")
        value = err.get("input")
        shown = "" if kind in ("extra_forbidden", "missing") or isinstance(value, dict | list) else f" (got {value!r})"
        lines.append(f"{source}: key '{loc}': {msg}{shown}")
    # union members (str | ScenarioRef) repeat one mistake several times; keep each line once
    return "\n".join(dict.fromkeys(lines))


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    model: Any = Spec
    for part in loc:
        if isinstance(part, int) or (isinstance(model, type) and not issubclass(model, BaseModel)):
            continue
        if isinstance(model, type) and issubclass(model, BaseModel):
            fields = {(f.alias or n): f for n, f in model.model_fields.items()}
            f = fields.get(str(part))
            if f is None:
                if model is Spec or str(part) in ("ScenarioRef",):
                    return None
                continue
            model = unwrap_model(f.annotation)
        elif str(part) == "ScenarioRef":
            model = ScenarioRef
    if isinstance(model, type) and issubclass(model, BaseModel):
        return model
    return None


def _read_spec_yaml(path: Path) -> dict[str, Any]:
    return read_yaml_mapping(path, SpecError, "experiment spec", "(scenarios, replications, ...)")


def _scenario_refs(spec: Spec, path: Path) -> dict[str, ScenarioRef]:
    for name in spec.scenarios:
        if not _NAME_RE.match(name) or "__" in name:
            raise SpecError(f"{path}: key 'scenarios.{name}': a scenario name may hold letters, digits, "
                            "'_', '-' and '.', must start with a letter or digit and must not contain '__'")
    return dict(spec.scenarios)


def _common_run_setting(scenarios: dict[str, Scenario], attr: str, path: Path) -> float:
    values = {name: float(getattr(s.run, attr)) for name, s in scenarios.items()}
    distinct = sorted(set(values.values()))
    if len(distinct) > 1:
        listing = ", ".join(f"{n}: {v:g}" for n, v in values.items())
        raise SpecError(f"{path}: key '{attr}': the scenarios disagree on run.{attr} ({listing}); "
                        f"set '{attr}' in the spec so that every scenario runs the same horizon")
    return distinct[0]


def load_spec(path: str | Path, replications: int | None = None, days: float | None = None) -> ExperimentPlan:
    """Read, validate and resolve an experiment spec.

    ``replications`` and ``days`` override the spec's values (the command line's ``--replications`` and a
    quick run's ``days``). Raises :class:`SpecError` (or :class:`sim.ScenarioError` wrapped into it) naming
    the file and key for every mistake.
    """
    path = Path(path)
    raw = _read_spec_yaml(path)
    try:
        spec = Spec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(_format_errors(exc, str(path))) from None
    if replications is not None:
        if int(replications) < 1:
            raise SpecError(f"--replications must be at least 1, got {replications}")
        spec = spec.model_copy(update={"replications": int(replications)})
    if days is not None:
        if not 0 < float(days) <= 3650:
            raise SpecError(f"days must be in (0, 3650], got {days}")
        spec = spec.model_copy(update={"days": float(days)})

    refs = _scenario_refs(spec, path)
    loaded: dict[str, Scenario] = {}
    for name, ref in refs.items():
        file = (path.parent / ref.file)
        if not file.exists():
            raise SpecError(f"{path}: key 'scenarios.{name}': scenario file {ref.file!r} not found "
                            f"(looked for {file.resolve()})")
        overrides = {"name": name, **ref.overrides}
        try:
            loaded[name] = load_scenario(file, overrides)
        except ScenarioError as exc:
            raise SpecError(f"{path}: key 'scenarios.{name}': {exc}") from None

    days_value = float(spec.days) if spec.days is not None else _common_run_setting(loaded, "days", path)
    warm = (float(spec.warmup_days) if spec.warmup_days is not None
            else _common_run_setting(loaded, "warmup_days", path))
    scenarios: dict[str, Scenario] = {}
    for name, s in loaded.items():
        try:
            scenarios[name] = s.with_overrides({"run.days": days_value, "run.warmup_days": warm},
                                               source=f"{path} (days/warmup_days)")
        except ScenarioError as exc:
            raise SpecError(str(exc)) from None

    baseline = spec.baseline if spec.baseline is not None else next(iter(scenarios))
    if baseline not in scenarios:
        raise SpecError(f"{path}: key 'baseline': {baseline!r} is not one of the scenarios "
                        f"({', '.join(scenarios)})")

    holds = {name: list(dict.fromkeys(ref.hold)) for name, ref in refs.items() if ref.hold}
    design = _build_checked_design(spec, scenarios, path, holds)
    _check_holds(holds, design, path)
    seeds = replication_seeds(spec.seed, spec.replications)
    kpis = list(spec.kpis) if spec.kpis is not None else list(KPI_NAMES)
    plan = ExperimentPlan(
        path=path, raw=raw, spec=spec, name=spec.name or path.stem, scenarios=scenarios, baseline=baseline,
        replications=spec.replications, days=days_value, warmup_days=warm, seeds=seeds, kpis=kpis,
        design=design, holds=holds)
    plan.spec_hash = spec_hash(plan)
    _check_points(plan)
    return plan


def _check_holds(holds: dict[str, list[str]], design: DesignPoints, path: Path) -> None:
    """Every held key must be one of the design's parameters (a scenario can hold only what the design varies)."""
    for name, keys in holds.items():
        unknown = [k for k in keys if k not in design.names]
        if unknown:
            allowed = (f"the design's parameters: {', '.join(design.names)}" if design.names
                       else "none: the spec has no design, so there is nothing to hold")
            raise SpecError(f"{path}: key 'scenarios.{name}.hold': {', '.join(map(repr, unknown))} "
                            f"{'is not a design parameter' if len(unknown) == 1 else 'are not design parameters'}; "
                            f"allowed: {allowed}")


def _build_checked_design(spec: Spec, scenarios: dict[str, Scenario], path: Path,
                          holds: dict[str, list[str]]) -> DesignPoints:
    """The design points, each parameter's type and range checked against every scenario that does not hold it."""
    if spec.design is None:
        return build_design(None, {}, 0)
    if spec.design.type == "posterior":
        return _posterior_design(spec, scenarios, path, holds)
    kinds: dict[str, str] = {}
    for i, p in enumerate(spec.design.parameters):
        where = f"{path}: key 'design.parameters.{i}'"
        try:
            kinds[p.name] = field_kind(p.name)
        except ValueError as exc:
            raise SpecError(f"{where}: {exc}") from None
        _check_value_types(p, kinds[p.name], spec.design.type, where)
        probes = p.values if p.values is not None else [p.low, p.high]
        for value in probes:
            if value is not None and kinds[p.name] == "int":
                value = int(round(value))
            for name, s in scenarios.items():
                if p.name in holds.get(name, ()):
                    continue
                try:
                    s.with_overrides({p.name: value}, source=f"scenario {name!r}")
                except ScenarioError as exc:
                    raise SpecError(f"{where}: value {format_setting(value)} of {p.name!r} is rejected: "
                                    f"{exc}") from None
    try:
        return build_design(spec.design, kinds, spec.seed)
    except ValueError as exc:
        raise SpecError(f"{path}: key 'design': {exc}") from None


def read_posterior_file(file: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """A ``posterior.json`` written by ``calibrate-abc``: the parameter names, the draws (draws × parameters)
    and their weights. ValueError saying what is wrong (missing file, wrong layout, bad weights)."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        names = list(data["parameters"])
        draws = np.array([[float(v) for v in data["draws"][n]] for n in names]).T
        weights = np.asarray(data["weights"], dtype=float)
    except FileNotFoundError:
        raise ValueError(f"posterior file not found (looked for {file.resolve()}); write one with "
                         "python run.py calibrate-abc SPEC") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError("not a posterior written by calibrate-abc (needs 'parameters', 'draws' and "
                         f"'weights'): {exc}") from None
    if len(weights) != len(draws) or not len(weights) or (weights < 0).any() or not weights.sum() > 0:
        raise ValueError("the weights must be as many as the draws, non-negative, and not all zero")
    return names, draws, weights


def _posterior_design(spec: Spec, scenarios: dict[str, Scenario], path: Path,
                      holds: dict[str, list[str]]) -> DesignPoints:
    """``n`` parameter sets drawn (with replacement, by weight, seeded by the design's or the master seed)
    from the weighted posterior sample of a ``calibrate-abc`` run: replications over them show parameter
    uncertainty, not only noise."""
    d = spec.design
    where = f"{path}: key 'design.file'"
    try:
        names, draws, weights = read_posterior_file(path.parent / d.file)
    except ValueError as exc:
        raise SpecError(f"{where}: {d.file!r}: {exc}") from None
    kinds: dict[str, str] = {}
    for name in names:
        try:
            kinds[name] = field_kind(name)
        except ValueError as exc:
            raise SpecError(f"{where}: parameter {name!r}: {exc}") from None
        for sname, s in scenarios.items():
            if name in holds.get(sname, ()):
                continue
            try:
                s.with_overrides({name: float(draws[0, names.index(name)])}, source=f"scenario {sname!r}")
            except ScenarioError as exc:
                raise SpecError(f"{where}: parameter {name!r} is rejected: {exc}") from None
    seed = int(d.seed if d.seed is not None else spec.seed) % (2**32)
    pick = np.random.default_rng(seed).choice(len(weights), size=int(d.n), p=weights / weights.sum())
    return DesignPoints(type="posterior", names=names, kinds=[kinds[n] for n in names], values=draws[pick],
                        low=draws.min(axis=0).tolist(), high=draws.max(axis=0).tolist(),
                        options={"file": str(d.file), "draws": pick.tolist()})


def _check_value_types(p: Parameter, kind: str, design_type: str, where: str) -> None:
    """A design varies numbers (int and float settings), and a grid also true/false settings; each value must
    have the setting's type (null is left to the scenario, which says whether the setting may be unset)."""
    if kind not in ("int", "float", "bool"):
        raise SpecError(f"{where}: {p.name!r} is a {kind} setting; a design varies numbers and true/false "
                        "settings only")
    if kind == "bool":
        if design_type != "grid":
            raise SpecError(f"{where}: {p.name!r} is a true/false setting; it can be varied only in a grid "
                            "design, with values: [false, true]")
        if p.values is None:
            raise SpecError(f"{where}: {p.name!r} is a true/false setting; give 'values' (e.g. [false, true]), "
                            "not 'low'/'high'/'levels'")
        wrong = [v for v in p.values if v is not None and not isinstance(v, bool)]
        if wrong:
            raise SpecError(f"{where}: {p.name!r} is a true/false setting; its values must be true, false "
                            f"(or null), got {', '.join(map(format_setting, wrong))}")
    elif p.values is not None:
        wrong = [v for v in p.values if isinstance(v, bool)]
        if wrong:
            raise SpecError(f"{where}: {p.name!r} is a number setting ({kind}); its values must be numbers "
                            f"(or null), got {', '.join(map(format_setting, wrong))}")


def _check_points(plan: ExperimentPlan) -> None:
    """Every design point must give a valid scenario; a bad combination stops before any run."""
    if not plan.design.parameters:
        return
    for point in range(plan.design.n_points):
        for name in plan.scenarios:
            try:
                plan.scenario_at(name, point)
            except ScenarioError as exc:
                raise SpecError(f"{plan.path}: key 'design': point {point} "
                                f"({plan.design.overrides(point)}) makes scenario {name!r} invalid: {exc}") from None


def spec_hash(plan: ExperimentPlan) -> str:
    """sha256 of the normalised spec: the validated spec (with --replications/days applied), the resolved
    scenarios, the replication seeds and the design points. Any change to what the runs would be changes it."""
    spec = plan.spec.model_dump(mode="json", by_alias=True, exclude={"batch_size"})
    for ref in spec["scenarios"].values():
        if not ref["hold"]:
            del ref["hold"]  # specs without holds keep the hash they had before 'hold' existed
    payload = {
        "spec": spec,
        "scenarios": {name: s.to_dict() for name, s in plan.scenarios.items()},
        "seeds": plan.seeds,
        "design": plan.design.points_for_hash(),
        "kpis": plan.kpis,
    }
    text = json.dumps(payload, sort_keys=True, allow_nan=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()

