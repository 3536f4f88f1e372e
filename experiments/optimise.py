"""The planner's search: the cheapest package of levers that meets the targets (``python run.py optimise``).

An optimisation spec (see ``experiments/optimise.yaml``) names a base scenario (today's platform), the
levers a planner may pull with their ranges, the objectives (``cost_hours`` minimised, outcomes maximised),
the targets (constraints judged on the pessimistic end of the 95% interval), the demand cases and the
reference packages to beat. The search proposes packages with Optuna's NSGA-II sampler and evaluates each on
the experiment engine with paired replications: replication k of every package (and of every reference)
runs with the same seed, so packages are compared on common random numbers.

Why Optuna's NSGA-II (:class:`optuna.samplers.NSGAIISampler`): it takes mixed search spaces as they are
(categorical levers such as the dispatch mode or a mandate that may be off, integer staff counts, continuous
shares), handles constraints by constrained domination (Deb's rules), is seeded, and its ask-and-tell
interface lets the experiment engine — not the library — run the evaluations. pymoo's NSGA-II needs a
mixed-variable wrapper for the categorical levers and keeps its state in a pickled algorithm object.

Reproducibility, and the store as the checkpoint. Generations are synchronous: generation g is proposed in
full, evaluated, and only then is g + 1 proposed. Each generation's proposals come from a *fresh* sampler
seeded with ``SeedSequence([seed, g])`` and a fresh in-memory study holding the evaluated packages of
generations 0..g−1, read back from the result store. Proposals therefore depend only on the seed and on the
stored results, never on the session: ``--resume`` after a kill replays the stored generations (checking
that each proposal equals the stored one) and goes on, and a Dask cluster gives the same front as a local
pool. Every run is committed to the store as it finishes (the experiment store contract, README).

Phases, each resumable: the reference packages; the search generations; the stress test (the front and the
references in every demand case the search did not use); the re-check of the chosen package and of the
main reference on fresh seeds (the winner's curse: the search's best is selected on its own noise).

Outputs in the store folder, besides the experiment store files (runs, summary, time series, histograms):
``candidates.json`` (every package: id, generation, kind, label, lever values, the scenario keys it sets),
``evaluations.parquet`` (candidate × case × KPI: mean, 95% interval, n), ``objectives.parquet`` (per
candidate: aggregated objectives and constraint bounds, feasibility, front membership) and
``optimisation.json`` (the front, the chosen package, the reference comparison, regret, the re-check).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import signal
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, ValidationError, field_validator, model_validator

from common.formatting import format_setting
from common.models import StrictModel as _Strict
from common.provenance import git_commit, versions
from common.stats import interval_table
from common.store import ResultStore, StoreError, read_manifest, write_json_atomic, write_parquet_atomic
from sim.errors import WenzhengError
from sim.results import KPI_NAMES
from sim.scenario import Scenario, ScenarioError, load_scenario
from sim.yamlfiles import read_yaml_mapping

from .designs import field_kind, to_setting
from .engines import Batch, Batcher, Engine, execute, make_engine
from .runner import RunTask, _sigterm_as_interrupt, run_batch, session_timings
from .spec import _format_errors, read_posterior_file, replication_seeds

DEFAULT_OUT = Path("results") / "optimise"
CANDIDATES_FILE = "candidates.json"
EVALUATIONS_FILE = "evaluations.parquet"
OBJECTIVES_FILE = "objectives.parquet"
RESULT_FILE = "optimisation.json"
#: Objectives: maximise these KPIs, or minimise; anything else is named in the error.
DIRECTIONS = ("minimise", "maximise")


class OptimiseError(WenzhengError):
    """An optimisation spec or store is invalid, or the search cannot go on; the message says where."""


class OptimiseInterrupted(WenzhengError):
    """Stopped (Ctrl-C, SIGTERM); every finished run is stored and ``--resume`` goes on from there."""


# ------------------------------------------------------------------------------------------- the spec
class Lever(_Strict):
    """One lever: a scenario key with a range (``low``/``high``, optional ``step``) or a list of ``values``;
    or named ``options``, each a set of scenario keys (e.g. direct dispatch with its shorter delay)."""

    key: str | None = Field(None, description="Dotted scenario key, e.g. policy.supervision_intensity.")
    low: float | None = None
    high: float | None = None
    step: Annotated[float, Field(gt=0)] | None = Field(None, description="Grid of the range (the key's unit).")
    values: list[Any] | None = Field(None, min_length=2, description="The values to choose from.")
    options: dict[str, dict[str, Any]] | None = Field(
        None, description="Named options, each a mapping of dotted scenario keys to values.")

    @model_validator(mode="after")
    def _one_form(self) -> Lever:
        forms = [self.values is not None, self.options is not None, self.low is not None or self.high is not None]
        if sum(forms) != 1:
            raise ValueError("give exactly one of 'low'/'high' (a range), 'values' (a list) or 'options' "
                             "(named sets of scenario keys)")
        if self.options is not None:
            if self.key is not None:
                raise ValueError("'options' set their own keys; give no 'key'")
            if len(self.options) < 2 or any(not isinstance(v, dict) for v in self.options.values()):
                raise ValueError("'options' needs at least two named options, each a mapping of scenario keys")
            return self
        if self.key is None:
            raise ValueError("a range or a list of values needs 'key' (the dotted scenario key)")
        if self.low is not None or self.high is not None:
            if self.low is None or self.high is None or not self.low < self.high:
                raise ValueError("a range needs 'low' below 'high'")
        elif self.step is not None:
            raise ValueError("'step' is for ranges only")
        return self


class Constraint(_Strict):
    """A target on the pessimistic end of the KPI's 95% interval: ``at_least`` (lower bound ≥ it) or
    ``at_most`` (upper bound ≤ it)."""

    at_least: float | None = None
    at_most: float | None = None

    @model_validator(mode="after")
    def _one(self) -> Constraint:
        if (self.at_least is None) == (self.at_most is None):
            raise ValueError("give exactly one of 'at_least' and 'at_most'")
        return self


class PosteriorDraws(_Strict):
    file: str = Field(description="A posterior.json written by calibrate-abc, relative to the spec.")
    n: Annotated[int, Field(ge=1, le=100)] = Field(description="Parameter draws (weighted, seeded).")


class Robust(_Strict):
    """Search on every demand case (and posterior draw) and aggregate each objective over them."""

    aggregate: Literal["worst", "quantile"] = Field("worst", description="worst case, or a quantile.")
    q: Annotated[float, Field(gt=0, lt=1)] = Field(
        0.1, description="quantile: the q-quantile of a maximised outcome (its 1 − q for a minimised one).")
    posterior: PosteriorDraws | None = None


class OptimiseSpec(_Strict):
    name: str | None = None
    description: str = ""
    base: str = Field(description="Scenario the levers are applied to (today's platform), relative to the spec.")
    references: dict[str, str] = Field(
        description="Packages evaluated on the same seeds for comparison: name -> scenario file. The first is "
        "'today' (the costs are compared with it); 'compare' names the one to beat.")
    compare: str | None = Field(None, description="Reference the search tries to beat (default: the last).")
    levers: dict[str, Lever] = Field(min_length=1)
    objectives: dict[str, Literal["minimise", "maximise"]] = Field(min_length=2)
    constraints: dict[str, Constraint] = Field(default_factory=dict)
    cases: dict[str, dict[str, Any]] = Field(
        default_factory=lambda: {"normal": {}},
        description="Demand cases: name -> scenario keys; the first is the nominal case the search uses.")
    robust: Robust | None = Field(None, description="Search on all cases (and draws), aggregated.")
    stress_front: Annotated[int, Field(ge=0, le=1000)] = Field(
        8, description="Front packages stress-tested in the other cases after the search (spread over cost), "
        "besides the chosen package and the references.")
    population: Annotated[int, Field(ge=2, le=1000)] = 20
    evaluations: Annotated[int, Field(ge=2, le=100_000)] = 200
    replications: Annotated[int, Field(ge=2, le=1000)] = 5
    days: Annotated[float, Field(gt=0, le=3650)] = 60
    warmup_days: Annotated[float, Field(ge=0, le=3650)] = 20
    seed: Annotated[int, Field(ge=0)] = 1

    @field_validator("objectives")
    @classmethod
    def _known_objectives(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = [k for k in v if k not in KPI_NAMES]
        if unknown:
            raise ValueError(f"unknown KPI(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(KPI_NAMES)}")
        if "cost_hours" not in v or v["cost_hours"] != "minimise":
            raise ValueError("the objectives must include cost_hours: minimise (the search looks for the cheapest "
                             "package)")
        return v

    @field_validator("constraints")
    @classmethod
    def _known_constraints(cls, v: dict[str, Constraint]) -> dict[str, Constraint]:
        unknown = [k for k in v if k not in KPI_NAMES]
        if unknown:
            raise ValueError(f"unknown KPI(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(KPI_NAMES)}")
        return v

    @field_validator("cases", "references")
    @classmethod
    def _nonempty(cls, v: dict[str, Any]) -> dict[str, Any]:
        if not v:
            raise ValueError("name at least one")
        bad = [n for n in v if not n.replace("_", "").replace("-", "").isalnum() or "__" in n]
        if bad:
            raise ValueError(f"names may hold letters, digits, '_' and '-' (no '__'); got {', '.join(bad)}")
        return v


# ----------------------------------------------------------------------------------------- the plan
@dataclass
class LeverSpace:
    """A resolved lever: its Optuna distribution and how a value becomes scenario keys."""

    name: str
    kind: str  # "float" | "int" | "categorical" | "options"
    key: str | None
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: list[Any] = field(default_factory=list)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def distribution(self) -> Any:
        import optuna

        if self.kind == "float":
            return optuna.distributions.FloatDistribution(self.low, self.high, step=self.step)
        if self.kind == "int":
            return optuna.distributions.IntDistribution(int(self.low), int(self.high), step=int(self.step or 1))
        if self.kind == "options":
            return optuna.distributions.CategoricalDistribution(list(self.options))
        return optuna.distributions.CategoricalDistribution(self.choices)

    def overrides(self, value: Any) -> dict[str, Any]:
        if self.kind == "options":
            return dict(self.options[value])
        if self.kind == "int":
            return {self.key: int(value)}
        if self.kind == "float":
            return {self.key: float(value)}
        return {self.key: value}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.key is not None:
            out["key"] = self.key
        if self.kind in ("float", "int"):
            out.update(low=self.low, high=self.high, step=self.step)
        elif self.kind == "options":
            out["options"] = self.options
        else:
            out["choices"] = self.choices
        return out


@dataclass
class Candidate:
    """One evaluated package: ``kind`` "reference" | "search"; ``levers`` its lever values (None for a
    reference); ``overrides`` the scenario keys it sets on the base (references: their own file).
    ``same_as``: an earlier package with the same lever values — runs are deterministic, so its runs are not
    repeated: it takes the earlier package's results (it still counts in its generation)."""

    id: int
    generation: int
    kind: str
    label: str
    levers: dict[str, Any] | None
    overrides: dict[str, Any]
    reference: str | None = None
    same_as: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "generation": self.generation, "kind": self.kind, "label": self.label,
                "levers": self.levers, "overrides": self.overrides, "reference": self.reference,
                "same_as": self.same_as}


@dataclass
class OptimisationPlan:
    path: Path
    raw: dict[str, Any]
    spec: OptimiseSpec
    name: str
    base: Scenario
    references: dict[str, Scenario]
    levers: list[LeverSpace]
    cases: dict[str, dict[str, Any]]  # case name -> overrides (demand case, posterior draw)
    search_cases: list[str]
    population: int
    generations: int
    evaluations: int
    seeds: list[int]
    fresh_seeds: list[int]
    compare: str
    today: str
    overrides: dict[str, Any] = field(default_factory=dict)  # --evaluations/--replications/--days given
    spec_hash: str = ""

    @property
    def replications(self) -> int:
        return len(self.seeds)

    def generation_seed(self, generation: int) -> int:
        """The sampler seed of one generation: ``SeedSequence([seed, generation])``, 32 bits."""
        return int(np.random.SeedSequence([int(self.spec.seed), int(generation)]).generate_state(1)[0])

    def scenario(self, cand: Candidate, case: str) -> Scenario:
        """The scenario of a package in a case: base (or the reference's file) + its keys + the case's keys."""
        start = self.references[cand.reference] if cand.reference else self.base
        changes = {**cand.overrides, **self.cases[case]}
        return start.with_overrides(changes, source=f"{self.path} (package {cand.label}, case {case})") \
            if changes else start


def _read_posterior(path: Path, d: PosteriorDraws, seed: int) -> list[dict[str, float]]:
    """``d.n`` parameter sets drawn by weight (seeded) from a calibrate-abc posterior."""
    try:
        names, draws, weights = read_posterior_file(path.parent / d.file)
    except ValueError as exc:
        raise OptimiseError(f"{path}: key 'robust.posterior.file': {d.file!r}: {exc}") from None
    pick = np.random.default_rng(seed % 2**32).choice(len(weights), size=d.n, p=weights / weights.sum())
    return [{n: float(draws[i, j]) for j, n in enumerate(names)} for i in pick]


def _lever_space(name: str, lever: Lever, base: Scenario, path: Path) -> LeverSpace:
    def where(sub: str = "") -> str:
        return f"{path}: key 'levers.{name}{sub}'"

    if lever.options is not None:
        for label, keys in lever.options.items():
            _probe(base, keys, where(f".options.{label}"))
        return LeverSpace(name, "options", None, options={k: dict(v) for k, v in lever.options.items()})
    try:
        kind = field_kind(lever.key)
    except ValueError as exc:
        raise OptimiseError(f"{where('.key')}: {exc}") from None
    if lever.values is not None:
        for v in lever.values:
            _probe(base, {lever.key: v}, where(".values"))
        return LeverSpace(name, "categorical", lever.key, choices=list(lever.values))
    if kind not in ("int", "float"):
        raise OptimiseError(f"{where()}: {lever.key!r} is a {kind} setting; give 'values' (a list) for it, not a "
                            "range")
    if kind == "int" and lever.step is not None and float(lever.step) != int(lever.step):
        raise OptimiseError(f"{where('.step')}: {lever.key!r} is a whole-number setting; the step must be whole")
    for v in (lever.low, lever.high):
        _probe(base, {lever.key: to_setting(v, kind)}, where())
    return LeverSpace(name, kind, lever.key, low=lever.low, high=lever.high, step=lever.step)


def _probe(base: Scenario, keys: dict[str, Any], where: str) -> None:
    try:
        base.with_overrides(keys, source=where)
    except ScenarioError as exc:
        raise OptimiseError(f"{where}: rejected by the base scenario: {exc}") from None


def _load_scenario(path: Path, file: str, where: str, overrides: dict[str, Any]) -> Scenario:
    target = path.parent / file
    if not target.exists():
        raise OptimiseError(f"{path}: key '{where}': scenario file {file!r} not found (looked for "
                            f"{target.resolve()})")
    try:
        return load_scenario(target, overrides)
    except ScenarioError as exc:
        raise OptimiseError(f"{path}: key '{where}': {exc}") from None


def load_optimisation(path: str | Path, evaluations: int | None = None, replications: int | None = None,
                      days: float | None = None) -> OptimisationPlan:
    """Read and check an optimisation spec; the command line's ``--evaluations``, ``--replications`` and
    ``--days`` override the spec. Every mistake raises :class:`OptimiseError` naming the file and key.

    The population is the spec's, but at most half the evaluations (at least 2), so that every budget runs
    two generations or more; the search makes ``ceil(evaluations / population)`` generations.
    """
    path = Path(path)
    raw = read_yaml_mapping(path, OptimiseError, "optimisation spec", "(base, levers, objectives, ...)")
    try:
        spec = OptimiseSpec.model_validate(raw)
    except ValidationError as exc:
        raise OptimiseError(_format_errors(exc, str(path))) from None
    updates: dict[str, Any] = {}
    for flag, value, low, high in (("evaluations", evaluations, 2, 100_000), ("replications", replications, 2, 1000),
                                   ("days", days, 1e-9, 3650)):
        if value is not None:
            if not low <= value <= high:
                raise OptimiseError(f"--{flag} must be in [{format_setting(low)}, {high}], got {value}")
            updates[flag] = value
    spec = spec.model_copy(update=updates)
    run_keys = {"run.days": float(spec.days), "run.warmup_days": float(spec.warmup_days)}
    base = _load_scenario(path, spec.base, "base", run_keys)
    references = {n: _load_scenario(path, f, f"references.{n}", {**run_keys, "name": n})
                  for n, f in spec.references.items()}
    compare = spec.compare if spec.compare is not None else list(references)[-1]
    if compare not in references:
        raise OptimiseError(f"{path}: key 'compare': {compare!r} is not one of the references "
                            f"({', '.join(references)})")
    levers = [_lever_space(n, lv, base, path) for n, lv in spec.levers.items()]
    cases = _cases(spec, base, path)
    search_cases = list(cases) if spec.robust else [next(iter(cases))]
    population = max(2, min(spec.population, spec.evaluations // 2))
    generations = math.ceil(spec.evaluations / population)
    seeds = replication_seeds(spec.seed, 2 * spec.replications)
    plan = OptimisationPlan(
        path=path, raw=raw, spec=spec, name=spec.name or path.stem, base=base, references=references,
        levers=levers, cases=cases, search_cases=search_cases, population=population, generations=generations,
        evaluations=population * generations, seeds=seeds[:spec.replications], fresh_seeds=seeds[spec.replications:],
        compare=compare, today=next(iter(references)), overrides=updates)
    plan.spec_hash = _plan_hash(plan)
    return plan


def _cases(spec: OptimiseSpec, base: Scenario, path: Path) -> dict[str, dict[str, Any]]:
    """Demand cases, and with robust posterior draws every case × draw (named ``<case>.d<k>``)."""
    for name, keys in spec.cases.items():
        _probe(base, keys, f"{path}: key 'cases.{name}'")
    if not spec.robust or spec.robust.posterior is None:
        return {n: dict(k) for n, k in spec.cases.items()}
    draws = _read_posterior(path, spec.robust.posterior, spec.seed)
    out = {}
    for name, keys in spec.cases.items():
        for k, draw in enumerate(draws):
            _probe(base, {**keys, **draw}, f"{path}: key 'robust.posterior' (draw {k})")
            out[f"{name}.d{k}"] = {**keys, **draw}
    return out


def _plan_hash(plan: OptimisationPlan) -> str:
    payload = {"spec": plan.spec.model_dump(mode="json"), "base": plan.base.to_dict(),
               "references": {n: s.to_dict() for n, s in plan.references.items()}, "cases": plan.cases,
               "seeds": plan.seeds, "population": plan.population, "generations": plan.generations}
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# ------------------------------------------------------------------------------------- evaluation
def kpis_of(plan: OptimisationPlan) -> list[str]:
    """The KPIs kept per run: the objectives, the constraints, and the cost split and trust for the report."""
    wanted = [*plan.spec.objectives, *plan.spec.constraints, "cost_hours", "capacity_hours_departments",
              "capacity_hours_operators", "capacity_hours_supervisors", "resolution_rate", "true_resolution_rate",
              "satisfaction_rate", "on_time_response_rate", "gaming_gap", "mean_trust"]
    return list(dict.fromkeys(wanted))


def run_id(cand: int, case: str, replication: int, fresh: bool = False) -> str:
    """``c<candidate>__<case>__r<replication>`` (``f`` for fresh seeds); case names hold no ``__``."""
    return f"c{cand:05d}__{case}__{'f' if fresh else 'r'}{replication:03d}"


class _Evaluator:
    """Runs packages on the engine into the store, skipping the runs the store already holds."""

    def __init__(self, plan: OptimisationPlan, store: ResultStore, engine: Engine, progress: bool) -> None:
        self.plan = plan
        self.store = store
        self.engine = engine
        self.progress = progress
        self.kpis = kpis_of(plan)
        self.counts = {"ok": 0, "failed": 0, "run_wall_s": 0.0}

    def evaluate(self, cands: list[Candidate], cases: list[str], fresh: bool = False, what: str = "") -> None:
        plan, store = self.plan, self.store
        seeds = plan.fresh_seeds if fresh else plan.seeds
        items = []
        done = store.ok_run_ids()
        for r in range(len(seeds)):
            for c in cands:
                for case in cases:
                    rid = run_id(c.id, case, r, fresh)
                    if rid not in store.run_order:
                        store.run_order[rid] = len(store.run_order)
                    if rid not in done:
                        items.append((c, case, r, rid, seeds[r]))
        if not items:
            return
        t0 = time.perf_counter()
        batcher = Batcher(items, self.engine.capacity(), None, self.engine.target_batch_s)
        execute(self.engine, run_batch, batcher, self._on_result, self._on_lost, prepare=self._prepare,
                item_seconds=lambda outs: sum(o["wall_s"] for o in outs), first_batch_id=store.next_batch_id)
        store.consolidate()
        if self.progress:
            print(f"  {what}: {len(items)} runs in {time.perf_counter() - t0:.0f} s", flush=True)

    def _prepare(self, items: list[tuple]) -> list[RunTask]:
        return [RunTask(run_id=rid, scenario_name=case, point=c.id, replication=r, seed=seed,
                        scenario=self.plan.scenario(c, case), kpis=self.kpis)
                for c, case, r, rid, seed in items]

    @staticmethod
    def _row(item: tuple, status: str, error: str, wall_s: float, worker: str) -> dict[str, Any]:
        c, case, r, rid, seed = item
        return {"run_id": rid, "scenario": case, "point": c.id, "replication": r, "seed": int(seed),
                "status": status, "error": error, "wall_s": float(wall_s), "worker": worker}

    def _on_result(self, batch: Batch, outcomes: list[dict[str, Any]]) -> None:
        rows, summaries, series, dists = [], [], [], []
        for item, o in zip(batch.items, outcomes, strict=True):
            c, case, r, rid, _ = item
            rows.append(self._row(item, o["status"], o["error"], o["wall_s"], o["worker"]))
            ids = {"run_id": rid, "scenario": case, "point": c.id, "replication": r}
            if o["summary"] is not None:
                s = o["summary"]
                summaries.append(s[s["group_by"] == "all"].assign(**ids))
            if o["timeseries"] is not None and len(o["timeseries"]):
                series.append(o["timeseries"].assign(**ids))
            if o.get("distributions") is not None:
                dists.append(o["distributions"].assign(**ids))
            self.counts["ok" if o["status"] == "ok" else "failed"] += 1
            self.counts["run_wall_s"] += float(o["wall_s"])
        self.store.commit(batch.batch_id, rows, pd.concat(summaries, ignore_index=True) if summaries else None,
                          pd.concat(series, ignore_index=True) if series else None, None,
                          pd.concat(dists, ignore_index=True) if dists else None)

    def _on_lost(self, batch: Batch, reason: str) -> None:
        self.store.commit(batch.batch_id, [self._row(item, "failed", reason, math.nan, "") for item in batch.items])
        self.counts["failed"] += len(batch.items)


def with_repeats(table: pd.DataFrame, cands: list[Candidate]) -> pd.DataFrame:
    """``table`` plus, for every package that repeats an earlier one (``same_as``), the earlier one's rows."""
    repeats = [(c.id, c.same_as) for c in cands if c.same_as is not None]
    if not repeats or table.empty:
        return table
    extra = [table[table["candidate"] == orig].assign(candidate=cid) for cid, orig in repeats]
    return pd.concat([table, *extra], ignore_index=True)


def seeds_of(run_ids: pd.Series) -> np.ndarray:
    """"fresh" for runs on the re-check's fresh seeds (run id ending ``__f<k>``), else "search"."""
    return np.where(run_ids.str.contains(r"__f\d+$", regex=True), "fresh", "search")


def evaluation_table(store: ResultStore | pd.DataFrame) -> pd.DataFrame:
    """Candidate × case × KPI: mean, 95% t-interval over replications, n — from the store's overall KPI rows.
    Runs on fresh seeds (run ids ``…__f<k>``) are kept apart in ``seeds`` = "fresh" (else "search")."""
    summary = store.summary() if isinstance(store, ResultStore) else store
    if summary is None or summary.empty:
        return pd.DataFrame(columns=["candidate", "case", "seeds", "kpi", "n", "mean", "sd", "ci_low", "ci_high",
                                     "half_width"])
    s = summary[(summary["group_by"] == "all")].copy()
    s["seeds"] = seeds_of(s["run_id"])
    s = s.rename(columns={"point": "candidate", "scenario": "case"})
    return interval_table(s, ["candidate", "case", "seeds", "kpi"])


# --------------------------------------------------------------------------------- aggregation
def aggregate(plan: OptimisationPlan, table: pd.DataFrame, cand: int, cases: list[str],
              seeds: str = "search") -> dict[str, float] | None:
    """A package's objectives (mean per case, aggregated over ``cases``: worst case or the spec's quantile)
    and constraint bounds (the pessimistic end of the 95% interval, the worst over the cases). None when a
    case lacks a value (failed runs)."""
    rows = table[(table["candidate"] == cand) & (table["seeds"] == seeds) & table["case"].isin(cases)]
    out: dict[str, float] = {}
    robust = plan.spec.robust
    for kpi, direction in plan.spec.objectives.items():
        vals = rows[rows["kpi"] == kpi].set_index("case")["mean"].reindex(cases).to_numpy(float)
        if np.isnan(vals).any():
            return None
        if robust is not None and robust.aggregate == "quantile":
            q = robust.q if direction == "maximise" else 1 - robust.q
            out[f"obj.{kpi}"] = float(np.quantile(vals, q))
        else:
            out[f"obj.{kpi}"] = float(vals.min() if direction == "maximise" else vals.max())
    for kpi, con in plan.spec.constraints.items():
        sel = rows[rows["kpi"] == kpi].set_index("case").reindex(cases)
        if con.at_least is not None:
            bound = sel["ci_low"].fillna(sel["mean"]).to_numpy(float)
            out[f"bound.{kpi}"] = float(bound.min())
            out[f"con.{kpi}"] = float(con.at_least - bound.min())
        else:
            bound = sel["ci_high"].fillna(sel["mean"]).to_numpy(float)
            out[f"bound.{kpi}"] = float(bound.max())
            out[f"con.{kpi}"] = float(bound.max() - con.at_most)
        if np.isnan(out[f"con.{kpi}"]):
            return None
    return out


def feasible(values: dict[str, float]) -> bool:
    """All constraints hold at the pessimistic end (violation ≤ 0)."""
    return all(v <= 0 for k, v in values.items() if k.startswith("con."))


def pareto_mask(points: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """Non-dominated rows of ``points`` (candidates × objectives); ``signs`` +1 to minimise, −1 to maximise.
    A row is dominated when another is no worse in every objective and better in one."""
    p = points * signs
    n = len(p)
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        no_worse = (p <= p[i]).all(axis=1)
        better = (p < p[i]).any(axis=1)
        if (no_worse & better).any():
            keep[i] = False
    return keep


# ----------------------------------------------------------------------------------- the sampler
def _optuna() -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message=".*NSGAIISampler.*", category=FutureWarning)
    return optuna


def propose(plan: OptimisationPlan, generation: int, history: list[tuple[Candidate, dict[str, float] | None]]
            ) -> list[dict[str, Any]]:
    """The lever values of generation ``generation``'s packages: a fresh NSGA-II sampler seeded for this
    generation, told every evaluated package of the earlier generations (failed ones as failed trials)."""
    optuna = _optuna()
    from optuna.trial import create_trial

    sampler = optuna.samplers.NSGAIISampler(population_size=plan.population, seed=plan.generation_seed(generation))
    directions = ["minimize" if d == "minimise" else "maximize" for d in plan.spec.objectives.values()]
    study = optuna.create_study(directions=directions, sampler=sampler)
    dists = {lv.name: lv.distribution() for lv in plan.levers}
    gen_key = sampler._get_generation_key()  # the generation a trial belongs to (Optuna's GA samplers)
    trials = []
    worst = {k: math.inf if d == "minimise" else -math.inf for k, d in plan.spec.objectives.items()}
    for cand, values in history:
        attrs = {gen_key: cand.generation}
        if values is None:  # its runs failed: the worst package there is, so the generation stays full
            values = {**{f"obj.{k}": v for k, v in worst.items()},
                      **{f"con.{k}": math.inf for k in plan.spec.constraints}}
        trials.append(create_trial(params=cand.levers, distributions=dists, system_attrs=attrs,
                                   constraints={k: values[f"con.{k}"] for k in plan.spec.constraints} or None,
                                   values=[values[f"obj.{k}"] for k in plan.spec.objectives]))
    study.add_trials(trials)
    proposals = []
    for _ in range(plan.population):
        trial = study.ask(dists)
        proposals.append({lv.name: trial.params[lv.name] for lv in plan.levers})
    return proposals


# ------------------------------------------------------------------------------------ the search
@dataclass
class OptimisationOutcome:
    store_dir: Path
    result: dict[str, Any]
    objectives: pd.DataFrame
    wall_s: float
    n_runs: int
    n_failed: int


class _Search:
    """One ``optimise`` session: the plan, the store, the candidates so far and the evaluator."""

    def __init__(self, plan: OptimisationPlan, store: ResultStore, engine: Engine, progress: bool) -> None:
        self.plan = plan
        self.store = store
        self.eval = _Evaluator(plan, store, engine, progress)
        self.stored = self._read_candidates()
        self.cands: list[Candidate] = []
        self._by_levers: dict[str, int] = {}  # lever values (JSON) -> the first package with them

    # -------------------------------------------------------------- candidates
    def _read_candidates(self) -> list[dict[str, Any]]:
        file = self.store.root / CANDIDATES_FILE
        if not file.exists():
            return []
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
            return list(data["candidates"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"{file}: not a candidates file written by optimise ({exc}); the store is damaged, "
                             "start again with another --out") from None

    def add(self, cand: Candidate) -> Candidate:
        """Register a package; on a resumed store it must equal the stored one with the same id."""
        if cand.id < len(self.stored):
            old = self.stored[cand.id]
            if json.dumps(old, sort_keys=True, default=str) != json.dumps(cand.to_json(), sort_keys=True,
                                                                          default=str):
                raise StoreError(
                    f"{self.store.root / CANDIDATES_FILE}: package {cand.id} was proposed as {old.get('levers')} "
                    f"but is now {cand.levers}: the store was written by another version of the search (or of "
                    "Optuna); resume with that version, or start again with another --out")
        self.cands.append(cand)
        if cand.id >= len(self.stored):
            self.stored.append(cand.to_json())
        return cand

    def save_candidates(self) -> None:
        write_json_atomic({"candidates": self.stored}, self.store.root / CANDIDATES_FILE)

    def _new(self, generation: int, kind: str, label: str, levers: dict[str, Any] | None,
             reference: str | None = None) -> Candidate:
        overrides: dict[str, Any] = {}
        same_as = None
        if levers is not None:
            for lv in self.plan.levers:
                overrides.update(lv.overrides(levers[lv.name]))
            key = json.dumps(levers, sort_keys=True, default=str)
            same_as = self._by_levers.setdefault(key, len(self.cands))
            same_as = None if same_as == len(self.cands) else same_as
        return self.add(Candidate(len(self.cands), generation, kind, label, levers, overrides, reference, same_as))

    def table(self) -> pd.DataFrame:
        """:func:`evaluation_table` of the store, with every repeated package given its original's rows."""
        return with_repeats(evaluation_table(self.store), self.cands)

    # -------------------------------------------------------------- phases
    def run(self) -> dict[str, Any]:
        plan = self.plan
        refs = [self._new(-1, "reference", name, None, reference=name) for name in plan.references]
        self.save_candidates()
        self.eval.evaluate(refs, plan.search_cases, what="reference packages")
        for g in range(plan.generations):
            table = self.table()
            history = [(c, aggregate(plan, table, c.id, plan.search_cases)) for c in self.cands if c.kind == "search"]
            proposals = propose(plan, g, history)
            gen = [self._new(g, "search", f"g{g:02d}.{i:02d}", p) for i, p in enumerate(proposals)]
            self.save_candidates()
            self.eval.evaluate([c for c in gen if c.same_as is None], plan.search_cases,
                               what=f"generation {g + 1}/{plan.generations}")
        table = self.table()
        result = summarise(plan, self.cands, table)
        stress_cases = [c for c in plan.cases if c not in plan.search_cases]
        if stress_cases:
            ids = stressed_ids(result, plan.spec.stress_front)
            self.eval.evaluate([self.cands[i] for i in ids], stress_cases, what="stress test of the front")
        chosen = result["chosen"]
        if chosen is not None:
            pair = [self.cands[chosen], self.cands[result["reference_ids"][plan.compare]]]
            self.eval.evaluate(pair, plan.search_cases, fresh=True, what="re-check on fresh seeds")
        table = self.table()
        result = summarise(plan, self.cands, table)
        result["stressed"] = stressed_ids(result, plan.spec.stress_front)
        result["regret"] = regret(plan, result["stressed"], table)
        result["recheck"] = recheck(plan, result, self.store.summary())
        self.write_outputs(result, table)
        return result

    def write_outputs(self, result: dict[str, Any], table: pd.DataFrame) -> None:
        root = self.store.root
        write_parquet_atomic(table.reset_index(drop=True), root / EVALUATIONS_FILE)
        write_parquet_atomic(pd.DataFrame(result.pop("_rows")), root / OBJECTIVES_FILE)
        write_json_atomic(result, root / RESULT_FILE)


def summarise(plan: OptimisationPlan, cands: list[Candidate], table: pd.DataFrame) -> dict[str, Any]:
    """The front, the feasible packages, the chosen one and the comparison with the reference to beat."""
    objectives = list(plan.spec.objectives)
    signs = np.array([1.0 if plan.spec.objectives[k] == "minimise" else -1.0 for k in objectives])
    rows = []
    for c in cands:
        values = aggregate(plan, table, c.id, plan.search_cases)
        row = {"candidate": c.id, "generation": c.generation, "kind": c.kind, "label": c.label,
               "evaluated": values is not None, "same_as": -1 if c.same_as is None else c.same_as}
        row.update(values or {})
        row["feasible"] = bool(values is not None and feasible(values))
        rows.append(row)
    frame = pd.DataFrame(rows)
    search = frame[(frame["kind"] == "search") & frame["evaluated"] & (frame["same_as"] < 0)]  # each package once
    pool = search[search["feasible"]] if search["feasible"].any() else search
    front: list[int] = []
    if len(pool):
        mask = pareto_mask(pool[[f"obj.{k}" for k in objectives]].to_numpy(float), signs)
        front = [int(i) for i in pool["candidate"][mask]]
    frame["on_front"] = frame["candidate"].isin(front)
    ref_ids = {c.reference: c.id for c in cands if c.kind == "reference"}
    chosen, rule = _choose(frame, search, plan)
    beat = _dominating(frame, search, ref_ids[plan.compare], objectives, signs)
    return {
        "name": plan.name, "spec_path": str(plan.path), "spec_hash": plan.spec_hash, "seed": plan.spec.seed,
        "population": plan.population, "generations": plan.generations, "evaluations": plan.evaluations,
        "replications": plan.replications, "days": plan.spec.days, "warmup_days": plan.spec.warmup_days,
        "levers": [lv.to_json() for lv in plan.levers],
        "objectives": [{"kpi": k, "direction": d} for k, d in plan.spec.objectives.items()],
        "constraints": [{"kpi": k, **c.model_dump(exclude_none=True),
                         "bound": "ci_low" if c.at_least is not None else "ci_high"}
                        for k, c in plan.spec.constraints.items()],
        "cases": [{"name": n, "set": v, "search": n in plan.search_cases} for n, v in plan.cases.items()],
        "aggregate": plan.spec.robust.model_dump(exclude={"posterior"}) if plan.spec.robust else None,
        "reference_ids": ref_ids, "today": plan.today, "compare": plan.compare,
        "front": front, "any_feasible": bool(search["feasible"].any()),
        "chosen": chosen, "chosen_rule": rule, "beats_compare": beat,
        "_rows": frame.to_dict("records"),
    }


def stressed_ids(result: dict[str, Any], n_front: int) -> list[int]:
    """The packages stress-tested after the search: the references, the chosen package, and up to ``n_front``
    packages of the front evenly spread over its cost ranking (cheapest and dearest included)."""
    rows = {r["candidate"]: r for r in result["_rows"]}
    front = sorted(result["front"], key=lambda i: (rows[i]["obj.cost_hours"], i))
    if len(front) > n_front:
        picks = np.unique(np.round(np.linspace(0, len(front) - 1, n_front)).astype(int)) if n_front else []
        front = [front[i] for i in picks]
    ids = [*result["reference_ids"].values(), *([result["chosen"]] if result["chosen"] is not None else []), *front]
    return sorted(dict.fromkeys(ids))


def _choose(frame: pd.DataFrame, search: pd.DataFrame, plan: OptimisationPlan) -> tuple[int | None, str]:
    """The cheapest package of the front when some meet every target at the pessimistic end (the front is then
    drawn from them); when none does, the one with the smallest total relative shortfall (said in the rule)."""
    if search.empty:
        return None, "no package was evaluated"
    ok = frame[frame["feasible"] & frame["on_front"] & (frame["kind"] == "search")]
    if len(ok):  # the cheapest on the front: among equally cheap packages, one that no other dominates
        best = ok.sort_values(["obj.cost_hours", "candidate"]).iloc[0]
        return int(best["candidate"]), "the cheapest package that meets every target at the pessimistic end"
    scale = {k: max(abs(c.at_least if c.at_least is not None else c.at_most), 1e-9)
             for k, c in plan.spec.constraints.items()}
    short = sum(search[f"con.{k}"].clip(lower=0) / scale[k] for k in plan.spec.constraints)
    best = search.assign(short=short).sort_values(["short", "obj.cost_hours", "candidate"]).iloc[0]
    return int(best["candidate"]), ("no package meets every target; the one with the smallest total shortfall "
                                    "(each target's shortfall relative to the target)")


def _dominating(frame: pd.DataFrame, search: pd.DataFrame, ref: int, objectives: list[str],
                signs: np.ndarray) -> list[int]:
    """Search packages no worse than the reference on every objective and cheaper (by the means)."""
    r = frame[frame["candidate"] == ref]
    if r.empty or not bool(r["evaluated"].iloc[0]):
        return []
    cols = [f"obj.{k}" for k in objectives]
    ref_v = r[cols].to_numpy(float)[0] * signs
    vals = search[cols].to_numpy(float) * signs
    cost = objectives.index("cost_hours")
    mask = (vals <= ref_v).all(axis=1) & (vals[:, cost] < ref_v[cost])
    return [int(i) for i in search["candidate"][mask]]


def regret(plan: OptimisationPlan, ids: list[int], table: pd.DataFrame) -> list[dict[str, Any]]:
    """Per package of ``ids`` (the stress-tested ones), case and objective: the package's mean, the best mean
    among them in that case, and the regret (how far it falls short of that best, in the KPI's unit)."""
    rows = table[(table["seeds"] == "search") & table["candidate"].isin(ids)]
    out = []
    for kpi, direction in plan.spec.objectives.items():
        for case in plan.cases:
            sel = rows[(rows["kpi"] == kpi) & (rows["case"] == case)]
            if sel.empty:
                continue
            best = sel["mean"].min() if direction == "minimise" else sel["mean"].max()
            for _, r in sel.iterrows():
                reg = r["mean"] - best if direction == "minimise" else best - r["mean"]
                out.append({"candidate": int(r["candidate"]), "case": case, "kpi": kpi, "mean": float(r["mean"]),
                            "best": float(best), "regret": float(reg)})
    return out


def recheck(plan: OptimisationPlan, result: dict[str, Any], summary: pd.DataFrame) -> dict[str, Any] | None:
    """The winner's curse: the chosen package against the reference to beat, paired by seed, on the search's
    seeds and on fresh ones. Per KPI: both paired mean differences with 95% intervals, and the shrinkage
    ``1 − fresh / search`` of the difference where the chosen package was ahead on the search seeds (0: the lead
    held; 1: it was all noise; None: there was no lead to shrink)."""
    chosen, ref = result["chosen"], result["reference_ids"][plan.compare]
    if chosen is None or summary is None or summary.empty:
        return None
    s = summary[(summary["group_by"] == "all") & summary["point"].isin([chosen, ref])
                & summary["scenario"].isin(plan.search_cases)].copy()
    s["seeds"] = seeds_of(s["run_id"])
    out: dict[str, Any] = {"chosen": chosen, "versus": ref, "kpis": {}}
    kpis = list(dict.fromkeys([*plan.spec.objectives, *plan.spec.constraints]))
    for kpi in kpis:
        entry: dict[str, Any] = {}
        for seeds in ("search", "fresh"):
            k = s[(s["kpi"] == kpi) & (s["seeds"] == seeds)]
            wide = k.pivot_table(index=["scenario", "replication"], columns="point", values="value")
            if chosen not in wide or ref not in wide:
                continue
            d = (wide[chosen] - wide[ref]).dropna()
            ci = interval_table(pd.DataFrame({"g": 0, "value": d.to_numpy()}), ["g"])
            if ci.empty:
                continue
            row = ci.iloc[0]
            entry[seeds] = {"chosen_mean": float(wide[chosen].mean()), "versus_mean": float(wide[ref].mean()),
                            "diff": float(row["mean"]), "ci_low": _nan_none(row["ci_low"]),
                            "ci_high": _nan_none(row["ci_high"]), "n": int(row["n"])}
        if "search" in entry and "fresh" in entry:
            a, b = entry["search"]["diff"], entry["fresh"]["diff"]
            entry["fresh_minus_search"] = b - a
            entry["chosen_fresh_minus_search"] = entry["fresh"]["chosen_mean"] - entry["search"]["chosen_mean"]
            better = _better_sign(plan, kpi)
            # a shrinkage only of a lead: the chosen package ahead of the reference on the search seeds
            entry["shrinkage"] = _nan_none(1 - b / a) if a * better > 0 else None
        out["kpis"][kpi] = entry
    return out


def _better_sign(plan: OptimisationPlan, kpi: str) -> float:
    """+1 when more of the KPI is better (a maximised objective, an at_least target), −1 when less is."""
    if kpi in plan.spec.objectives:
        return 1.0 if plan.spec.objectives[kpi] == "maximise" else -1.0
    return 1.0 if plan.spec.constraints[kpi].at_least is not None else -1.0


def _nan_none(v: float) -> float | None:
    v = float(v)
    return None if math.isnan(v) else v


# -------------------------------------------------------------------------------------- entry point
def build_manifest(plan: OptimisationPlan) -> dict[str, Any]:
    """The store manifest: the experiment store's keys (scenarios are the demand cases applied to the base)
    plus ``optimisation`` (levers, objectives, constraints, cases, references, population, generations)."""
    return {
        "name": plan.name, "spec": plan.raw, "spec_hash": plan.spec_hash, "spec_path": str(plan.path),
        "git_commit": git_commit(), "versions": versions(), "master_seed": int(plan.spec.seed),
        "replications": plan.replications, "replication_seeds": [int(s) for s in plan.seeds],
        "scenarios": {case: plan.base.with_overrides(keys, source=str(plan.path)).to_dict()
                      if keys else plan.base.to_dict() for case, keys in plan.cases.items()},
        "design": {"type": "none", "parameters": []}, "kpis": kpis_of(plan),
        "baseline": next(iter(plan.cases)), "days": float(plan.spec.days),
        "warmup_days": float(plan.spec.warmup_days), "keep_cases": False,
        "optimisation": {"command_line": plan.overrides, "population": plan.population, "generations": plan.generations,
                         "evaluations": plan.evaluations, "fresh_seeds": [int(s) for s in plan.fresh_seeds],
                         "levers": [lv.to_json() for lv in plan.levers],
                         "references": {n: s.to_dict() for n, s in plan.references.items()}},
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def run_optimisation(spec_path: str | Path, out: str | Path | None = None, evaluations: int | None = None,
                     replications: int | None = None, days: float | None = None, workers: int | None = None,
                     engine: str = "local", scheduler: str | None = None, resume: bool = False,
                     progress: bool = True) -> OptimisationOutcome:
    """Run (or resume) an optimisation; see the module docstring. ``out`` defaults to
    ``results/optimise/<spec stem>/``; an occupied folder is refused unless ``resume``."""
    plan = load_optimisation(spec_path, evaluations, replications, days)
    out_dir = Path(out) if out else DEFAULT_OUT / Path(spec_path).stem
    if resume and (out_dir / "manifest.json").exists():
        old = read_manifest(out_dir)
        if "optimisation" not in old:
            raise StoreError(f"{out_dir}: --resume refused: this store was written by `experiment`, not "
                             "`optimise`; choose another --out")
    eng = make_engine(engine, workers, scheduler)
    store = ResultStore.open(out_dir, build_manifest(plan), resume, {}, [])
    search = _Search(plan, store, eng, progress)
    t0 = time.perf_counter()
    interrupted = False
    previous = _sigterm_as_interrupt()
    try:
        eng.executor  # noqa: B018 - start the pool or join the cluster
        if progress:
            print(f"{plan.name}: {plan.generations} generations of {plan.population} packages × "
                  f"{len(plan.search_cases)} case(s) × {plan.replications} replications on {eng.describe()}",
                  flush=True)
        result = search.run()
    except KeyboardInterrupt:
        interrupted = True
        eng.abort()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        eng.close()
        store.finish(session_timings(store, eng, search.eval.counts, t0, interrupted))
    if interrupted:
        raise OptimiseInterrupted(f"interrupted: {len(store.ok_run_ids())} runs are stored in {store.root}; run "
                                  "the same command with --resume to go on")
    objectives = pd.read_parquet(store.root / OBJECTIVES_FILE)
    return OptimisationOutcome(store.root, result, objectives, time.perf_counter() - t0, len(store.ok_run_ids()),
                               len(store.failed_runs()))


def read_result(store_dir: str | Path) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame, list[dict[str, Any]]]:
    """A finished optimisation's result, objectives, evaluations and candidates; StoreError naming the file
    when one is missing or unreadable."""
    root = Path(store_dir)
    try:
        result = json.loads((root / RESULT_FILE).read_text(encoding="utf-8"))
        objectives = pd.read_parquet(root / OBJECTIVES_FILE)
        evaluations = pd.read_parquet(root / EVALUATIONS_FILE)
        cands = json.loads((root / CANDIDATES_FILE).read_text(encoding="utf-8"))["candidates"]
    except FileNotFoundError as exc:
        raise StoreError(f"{root}: {Path(exc.filename).name} is missing: the optimisation has not finished; "
                         "finish it with `python run.py optimise SPEC --out DIR --resume`") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"{root}: the optimisation results cannot be read ({exc})") from None
    return result, objectives, evaluations, cands


def is_optimisation_store(store_dir: str | Path) -> bool:
    """True when the folder's manifest was written by ``optimise``."""
    try:
        return "optimisation" in read_manifest(store_dir)
    except StoreError:
        return False
