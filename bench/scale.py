"""City-scale benchmarks of ``sim.run_scenario`` and of the reference implementation.

Every measured run happens in a fresh Python process (``python -m bench.scale --worker SPEC OUT``), so that
its peak resident memory is its own and nothing is warm from an earlier run. Inside the child the clock
covers start-up and work: scenario load + model construction + the run + building the result tables
(``wall_s``); the parent also times the whole process, interpreter start and imports included
(``process_s``). The child runs with one thread for numpy's libraries (one core).

Suites (the issue's targets in brackets):

* ``full_scale``: ``scenarios/zhengzhou/full_scale.yaml`` — 1,000,000 citizens, ~8,000 cases a day,
  365 days [≤ 15 s wall with numba's compile cache warm, ≤ 1 GiB peak RSS], measured in turns with the same
  run on :data:`BEFORE_COMMIT` (the commit before the work on speed, checked out in a temporary git worktree)
  [at most half its time]; and once more with an empty numba cache (``full_scale_cold``: the first run on a
  machine, compiling the kernels; reported, not judged).
* ``population``: 100,000 vs 1,000,000 citizens at the same cases per day [time ratio ≤ 1.2].
* ``cases``: 2,000 / 4,000 / 8,000 cases a day at 1,000,000 citizens [growth at most linear].
* ``reference``: the model vs ``bench/reference.py`` on one scenario both can finish, case lifecycles
  (created → closed) per second [ratio ≥ 20], at 20,000 and 100,000 citizens for 30 days and at 1,000,000
  citizens for one day.

Case volume is set through ``demand.problems_per_citizen_year``, scaled from the full-scale file (whose
value was measured to give ~8,000 reported cases a day at 1,000,000 citizens): the rate per citizen
times the population is what fixes the volume. Every record keeps the cases per day actually measured.
Units: seconds, MiB, cases, citizen-hours.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FULL_SCALE = ROOT / "scenarios" / "zhengzhou" / "full_scale.yaml"
PLAN_UTILISATION = 0.6  # the utilisation full_scale.yaml's department staff were planned for
FULL_POPULATION = 1_000_000
FULL_CASES_PER_DAY = 8_000.0
ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")}

TARGETS = {"full_scale_wall_s": 15.0, "full_scale_peak_rss_mib": 1024.0, "full_scale_vs_before": 0.5,
           "population_time_ratio": 1.2, "case_growth_exponent": 1.0, "reference_speed_ratio": 20.0}
#: The commit before the work on speed and memory (issue 15): the full-scale year is timed against the same
#: run on it, in turns, in one bench run.
BEFORE_COMMIT = "228aba5"
#: Reference sizes: (citizens, days). The per-agent reference steps every citizen every hour, so the largest
#: city is run for one day only.
REFERENCE_SIZES = ((20_000, 30.0), (100_000, 30.0), (1_000_000, 1.0))


@dataclass(frozen=True)
class RunSpec:
    """One benchmark run: which implementation, which scenario, how long (days), which seed."""

    label: str
    kind: str  # "model" or "reference"
    scenario: str = str(FULL_SCALE)
    overrides: tuple[tuple[str, Any], ...] = ()
    days: float | None = None
    warmup_days: float | None = None
    seed: int | None = None
    #: if set, department staff are planned for this utilisation of the variant's own load (sim.budgets.plan_staff,
    #: before the clock starts), as the file itself was planned: a variant with another volume keeps its load
    staff_utilisation: float | None = None

    def key(self) -> str:
        """Identity of the work (the label aside), so that equal runs are measured once per suite call."""
        d = asdict(self)
        d.pop("label")
        return json.dumps(d, sort_keys=True, default=str)


@dataclass
class Measurement:
    """Medians over repeats of one :class:`RunSpec`, and what the run produced."""

    label: str
    kind: str
    population: int
    days: float
    repeats: int
    wall_s: float
    process_s: float
    cpu_s: float
    work_cpu_s: float
    peak_rss_mib: float
    cases: int
    closed: int
    cases_per_day: float
    cases_per_s: float
    closed_per_s: float
    citizen_hours_per_s: float
    walls: list[float] = field(default_factory=list)
    deterministic: bool = True
    fingerprint: str = ""
    load_before: float = float("nan")
    error: str = ""


# ------------------------------------------------------------------------------------------- the child
def _worker(spec: RunSpec) -> dict[str, Any]:
    """Run one spec in this process and report counts, timings and peak memory."""
    import resource

    t_import = time.perf_counter()
    from sim import load_scenario

    if spec.kind == "reference":
        from bench.reference import run_reference
    else:
        from sim import run_scenario
    planned: dict[str, Any] = {}
    if spec.staff_utilisation is not None:
        from sim.budgets import plan_staff

        variant = load_scenario(spec.scenario, dict(spec.overrides))
        planned = {"departments.staff_by_department": plan_staff(variant, spec.staff_utilisation)}
    t0, c0 = time.perf_counter(), time.process_time()
    scenario = load_scenario(spec.scenario, dict(spec.overrides))
    if planned:
        scenario = scenario.with_overrides(planned, source="bench (planned staff)")
    seed = scenario.run.seed if spec.seed is None else spec.seed
    days = scenario.run.days if spec.days is None else spec.days
    warmup = scenario.run.warmup_days if spec.warmup_days is None else spec.warmup_days
    out: dict[str, Any] = {"population": scenario.world.population, "days": days, "seed": seed,
                           "fingerprint": scenario.fingerprint()}
    if spec.kind == "reference":
        res = run_reference(scenario, seed=seed, days=days, warmup_days=warmup)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        out.update(cases=res.reported, closed=res.closed, problems=res.problems)
        digest = ""
    else:
        import pandas as pd

        # the cases table a piece at a time, as a writer takes it: handed on during the run where the model
        # can (a case sink), else from the result (an older tree); the table is never held whole
        tally = {"cases": 0, "closed": 0}
        sha = hashlib.sha256()

        def take(piece: pd.DataFrame) -> None:
            tally["cases"] += len(piece)
            tally["closed"] += int((piece["status"] == "closed").sum())
            sha.update(pd.util.hash_pandas_object(piece, index=False).to_numpy().tobytes())

        import inspect

        if "case_sink" in inspect.signature(run_scenario).parameters:
            result = run_scenario(scenario, seed=seed, days=days, warmup_days=warmup, case_sink=take)
        else:  # a tree from before case sinks
            result = run_scenario(scenario, seed=seed, days=days, warmup_days=warmup)
            for piece in (result.case_chunks() if hasattr(result, "case_chunks") else [result.cases]):
                take(piece)
        n_cases, n_closed = tally["cases"], tally["closed"]
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        digest = sha.hexdigest()
        out.update(cases=n_cases, closed=n_closed, summary={k: float(v) for k, v in result.summary.items()})
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out.update(wall_s=wall, work_cpu_s=cpu, import_s=t0 - t_import, cases_hash=digest[:16],
               peak_rss_mib=ru.ru_maxrss / 1024.0, cpu_s=ru.ru_utime + ru.ru_stime,
               citizen_hours=scenario.world.population * (days + warmup) * 24)
    return out


def run_once(spec: RunSpec, timeout_s: float = 3600.0, root: Path = ROOT,
             env_extra: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``spec`` in a fresh process; returns the child's record plus ``process_s`` (or ``error``).

    ``root``: the project tree whose code runs (another commit's worktree: its own scenario files are used);
    ``env_extra``: more environment variables for the child (``NUMBA_CACHE_DIR`` for a cold run)."""
    if root != ROOT:
        spec = replace(spec, scenario=str(root / Path(spec.scenario).resolve().relative_to(ROOT)))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "record.json"
        env = {**os.environ, **ONE_THREAD, **(env_extra or {}),
               "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        cmd = [sys.executable, "-m", "bench.scale", "--worker", json.dumps(asdict(spec)), str(out)]
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            return {"error": f"timed out after {timeout_s:.0f} s"}
        process_s = time.perf_counter() - t0
        if proc.returncode != 0 or not out.exists():
            tail = (err or "").strip().splitlines()[-3:]
            return {"error": f"exit {proc.returncode}: " + " | ".join(tail)}
        record = json.loads(out.read_text())
    record["process_s"], record["load_before"] = process_s, load
    return record


def measure(spec: RunSpec, repeats: int, timeout_s: float = 3600.0, log=print) -> Measurement:
    """Median wall time (and the rest) over ``repeats`` fresh-process runs of ``spec``."""
    records = []
    for i in range(repeats):
        rec = run_once(spec, timeout_s)
        if "error" in rec:
            return _failed(spec, i, repeats, rec["error"], log)
        _log_run(spec, i, repeats, rec, log)
        records.append(rec)
    return summarise(spec, records)


def _failed(spec: RunSpec, i: int, repeats: int, error: str, log) -> Measurement:
    log(f"  {spec.label}: run {i + 1}/{repeats} failed: {error}")
    return Measurement(spec.label, spec.kind, 0, spec.days or 0, i, *([float("nan")] * 5), 0, 0,
                       *([float("nan")] * 4), error=error)


def _log_run(spec: RunSpec, i: int, repeats: int, rec: dict[str, Any], log) -> None:
    log(f"  {spec.label}: run {i + 1}/{repeats}: {rec['wall_s']:.1f} s, {rec['peak_rss_mib']:.0f} MiB, "
        f"{rec['cases']:,} cases")


def summarise(spec: RunSpec, records: list[dict[str, Any]]) -> Measurement:
    """Medians (wall, process, CPU, peak memory) of ``records`` (each a fresh-process run of ``spec``)."""
    repeats = len(records)
    med = {k: statistics.median(r[k] for r in records)
           for k in ("wall_s", "process_s", "cpu_s", "work_cpu_s", "peak_rss_mib")}
    first = records[0]
    wall = med["wall_s"]
    return Measurement(
        label=spec.label, kind=spec.kind, population=first["population"], days=first["days"], repeats=repeats,
        wall_s=wall, process_s=med["process_s"], cpu_s=med["cpu_s"], work_cpu_s=med["work_cpu_s"],
        peak_rss_mib=med["peak_rss_mib"],
        cases=first["cases"], closed=first["closed"], cases_per_day=first["cases"] / first["days"],
        cases_per_s=first["cases"] / wall, closed_per_s=first["closed"] / wall,
        citizen_hours_per_s=first["citizen_hours"] / wall, walls=[r["wall_s"] for r in records],
        deterministic=len({(r["cases"], r["closed"], r.get("cases_hash")) for r in records}) == 1,
        fingerprint=first.get("cases_hash") or first["fingerprint"],
        load_before=statistics.median(r["load_before"] for r in records))


@contextmanager
def worktree(commit: str) -> Iterator[Path]:
    """A temporary git worktree of this repository at ``commit`` (removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix=f"wenzheng-{commit}-") as tmp:
        where = Path(tmp) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(where), commit], cwd=ROOT, check=True,
                       capture_output=True, text=True)
        try:
            yield where
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(where)], cwd=ROOT, capture_output=True)


def side_by_side(spec: RunSpec, commit: str, repeats: int, timeout_s: float = 3600.0,
                 log=print) -> tuple[Measurement, Measurement]:
    """``spec`` on this tree and on ``commit`` (a temporary worktree), in turns (now, before, now, …) so
    that a noisy neighbour slows both alike; one unmeasured run of each first (numba compiles a tree's
    kernels into its own ``__pycache__`` once). Returns (now, before)."""
    before_spec = replace(spec, label=f"{spec.label}_at_{commit}")
    with worktree(commit) as tree:
        for root in (ROOT, tree):
            rec = run_once(spec, timeout_s, root=root)
            if "error" in rec:
                failed = _failed(spec if root == ROOT else before_spec, 0, repeats, rec["error"], log)
                return failed, failed
        now, before = [], []
        for i in range(repeats):
            for s, root, records in ((spec, ROOT, now), (before_spec, tree, before)):
                rec = run_once(s, timeout_s, root=root)
                if "error" in rec:
                    failed = _failed(s, i, repeats, rec["error"], log)
                    return failed, failed
                _log_run(s, i, repeats, rec, log)
                records.append(rec)
    return summarise(spec, now), summarise(before_spec, before)


def cold(spec: RunSpec, timeout_s: float = 3600.0, log=print) -> Measurement:
    """One run of ``spec`` with an empty numba cache: what the first run on a machine costs (it compiles the
    kernels it uses)."""
    cold_spec = replace(spec, label=f"{spec.label}_cold")
    with tempfile.TemporaryDirectory(prefix="wenzheng-numba-cache-") as cache:
        rec = run_once(spec, timeout_s, env_extra={"NUMBA_CACHE_DIR": cache})
    if "error" in rec:
        return _failed(cold_spec, 0, 1, rec["error"], log)
    _log_run(cold_spec, 0, 1, rec, log)
    return summarise(cold_spec, [rec])


# ------------------------------------------------------------------------------------------ the suites
def full_scale_rate() -> float:
    """``demand.problems_per_citizen_year`` of the full-scale file (gives ~8,000 cases a day at 1 M)."""
    from sim import load_scenario

    return load_scenario(FULL_SCALE).demand.problems_per_citizen_year


def volume(population: int, cases_per_day: float, base_rate: float) -> tuple[tuple[str, Any], ...]:
    """Overrides that give ``cases_per_day`` reported cases at ``population`` citizens."""
    rate = base_rate * (FULL_POPULATION / population) * (cases_per_day / FULL_CASES_PER_DAY)
    return (("world.population", int(population)), ("demand.problems_per_citizen_year", round(rate, 6)))


class Runner:
    """Measures each distinct piece of work once (runs with equal work share one measurement)."""

    def __init__(self, repeats: int, timeout_s: float, log=print) -> None:
        self.repeats, self.timeout_s, self.log = repeats, timeout_s, log
        self.done: dict[str, Measurement] = {}

    def __call__(self, spec: RunSpec) -> Measurement:
        m = self.done.get(spec.key())
        if m is None:
            self.log(f"[{spec.label}] {spec.kind}, {spec.days or 'scenario'} days, {dict(spec.overrides)}")
            m = self.done[spec.key()] = measure(spec, self.repeats, self.timeout_s, self.log)
        elif spec.label not in m.label.split(" = "):
            m.label += f" = {spec.label}"
        return m

    def add(self, spec: RunSpec, m: Measurement) -> Measurement:
        """Keep a measurement made elsewhere (side by side, cold) under ``spec``'s work."""
        self.done[spec.key() + m.label] = m
        return m

    def runs(self) -> list[dict[str, Any]]:
        return [asdict(m) for m in self.done.values()]


def _ratio(a: float, b: float) -> float:
    return a / b if b and b == b and a == a else float("nan")


def _check(value: float, target: float, upper: bool = True, note: str = "") -> dict[str, Any]:
    ok = value <= target if upper else value >= target
    return {"value": value, "target": f"{'<=' if upper else '>='} {target:g}", "ok": bool(ok), "note": note}


CPU_NOTE = "the same on CPU time of the work (less sensitive to other load on a shared machine)"


def scale_suite(quick: bool = False, repeats: int | None = None, timeout_s: float = 3600.0,
                log=print, before: str | None = BEFORE_COMMIT) -> dict[str, Any]:
    """Full scale (side by side with ``before``, and once cold), population scaling and case scaling of the
    real model.

    Population and case scaling run 90 days (``quick``: 14); the full-scale run its scenario's 365 days
    (``quick``: 30, so its targets are not judged). ``before=None`` skips the side-by-side runs.
    """
    run = Runner(repeats or (1 if quick else 3), timeout_s, log)
    base = full_scale_rate()
    days = 14.0 if quick else 90.0
    full_spec = RunSpec("full_scale", "model", days=30.0 if quick else None)
    log(f"[full_scale] this tree{f' and {before}, in turns' if before else ''}")
    if before:
        full, prior = side_by_side(full_spec, before, run.repeats, timeout_s, log)
        run.add(full_spec, full)
        run.add(full_spec, prior)
    else:
        full, prior = run(full_spec), None
    full_cold = run.add(full_spec, cold(full_spec, timeout_s, log))
    pop = {n: run(RunSpec(f"population_{n // 1000}k", "model", overrides=volume(n, FULL_CASES_PER_DAY, base),
                          days=days, warmup_days=0.0, staff_utilisation=PLAN_UTILISATION))
           for n in (100_000, FULL_POPULATION)}
    case = {c: run(RunSpec(f"cases_{c}_per_day", "model", overrides=volume(FULL_POPULATION, c, base),
                           days=days, warmup_days=0.0, staff_utilisation=PLAN_UTILISATION)) for c in (2_000, 4_000, 8_000)}
    volume_ratio = _ratio(case[8_000].cases, case[2_000].cases)
    quick_note = "quick: 30 days only, not judged" if quick else ""
    checks = {
        "full_scale_wall_s": _check(full.wall_s, TARGETS["full_scale_wall_s"], note=quick_note),
        "full_scale_cpu_s": _check(full.work_cpu_s, TARGETS["full_scale_wall_s"], note=quick_note or CPU_NOTE),
        "full_scale_peak_rss_mib": _check(full.peak_rss_mib, TARGETS["full_scale_peak_rss_mib"], note=quick_note),
        "full_scale_cold_wall_s": {"value": full_cold.wall_s, "target": "(information)", "ok": True,
                                   "note": "the first run on a machine: an empty numba cache, the kernels compile"},
        "full_scale_cases_per_day": {"value": full.cases_per_day, "target": f"~ {FULL_CASES_PER_DAY:,.0f}",
                                     "ok": abs(full.cases_per_day / FULL_CASES_PER_DAY - 1) <= 0.1,
                                     "note": "within 10%"},
    }
    if prior is not None:
        same = prior.fingerprint == full.fingerprint
        checks["full_scale_vs_before"] = _check(
            _ratio(full.wall_s, prior.wall_s), TARGETS["full_scale_vs_before"],
            note=quick_note or f"median wall time / the same run's at {before} ({prior.wall_s:.1f} s, "
                               f"{prior.peak_rss_mib:,.0f} MiB), in turns; cases table "
                               f"{'identical' if same else 'DIFFERENT'}")
    if quick:
        for k in ("full_scale_wall_s", "full_scale_cpu_s", "full_scale_peak_rss_mib", "full_scale_vs_before"):
            if k in checks:
                checks[k]["ok"] = False
    for name, attr in (("", "wall_s"), ("_cpu", "work_cpu_s")):
        pop_ratio = _ratio(getattr(pop[FULL_POPULATION], attr), getattr(pop[100_000], attr))
        checks[f"population_time_ratio{name}"] = _check(
            pop_ratio, TARGETS["population_time_ratio"],
            note=CPU_NOTE if name else "1,000,000 vs 100,000 citizens, same cases a day")
    for name, attr in (("", "wall_s"), ("_cpu", "work_cpu_s")):
        growth = _ratio(getattr(case[8_000], attr), getattr(case[2_000], attr))
        exponent = math.log(growth) / math.log(volume_ratio) if growth > 0 and volume_ratio > 1 else float("nan")
        checks[f"case_growth_exponent{name}"] = _check(
            exponent, TARGETS["case_growth_exponent"],
            note=(CPU_NOTE if name else "time ∝ cases^k, 2,000 → 8,000 a day")
            + f" (time ×{growth:.2f} for cases ×{volume_ratio:.2f})")
    return {"runs": run.runs(), "checks": checks, "quick": quick, "repeats": run.repeats, "days": days,
            "before_commit": before}


def reference_suite(quick: bool = False, repeats: int | None = None, timeout_s: float = 3600.0,
                    population: int | None = None, days: float | None = None, log=print) -> dict[str, Any]:
    """The model and the reference on the same scenario (the full-scale file at populations the reference
    can finish): case lifecycles completed (created → closed) per second.

    By default the sizes of :data:`REFERENCE_SIZES`: 20,000 and 100,000 citizens for 30 days, 1,000,000 for
    one day. The model's cost is mostly per event and per simulated hour, the reference's per citizen-hour,
    so the ratio grows with the population; every size is reported.
    """
    run = Runner(repeats or (1 if quick else 3), timeout_s, log)
    if population:
        sizes = [(population, days or (7.0 if quick else 30.0))]
    else:
        sizes = [(5_000, days or 7.0)] if quick else [(p, days or d) for p, d in REFERENCE_SIZES]
    populations = [p for p, _ in sizes]
    checks: dict[str, Any] = {}
    for pop, days in sizes:
        overrides = (("world.population", pop),)
        tag = "" if len(populations) == 1 else f"_{pop // 1000}k"
        ref = run(RunSpec(f"reference{tag}", "reference", overrides=overrides, days=days, warmup_days=0.0,
                          staff_utilisation=PLAN_UTILISATION))
        model = run(RunSpec(f"model_same_work{tag}", "model", overrides=overrides, days=days, warmup_days=0.0,
                            staff_utilisation=PLAN_UTILISATION))
        if model.closed and ref.closed:  # case lifecycles, created → closed
            work_gap = _ratio(abs(model.closed - ref.closed), max(model.closed, ref.closed))
            speed, speed_cpu = (_ratio(model.closed_per_s, ref.closed_per_s),
                                _ratio(model.closed / model.work_cpu_s, ref.closed / ref.work_cpu_s))
            what = (f"closed cases per wall second; closed: model {model.closed:,}, reference {ref.closed:,} "
                    f"(differ by {work_gap:.0%})")
        else:  # a run too short for any case to close (the largest city, one day): the cases created
            work_gap = _ratio(abs(model.cases - ref.cases), max(model.cases, ref.cases, 1))
            speed, speed_cpu = (_ratio(model.cases_per_s, ref.cases_per_s),
                                _ratio(model.cases / model.work_cpu_s, ref.cases / ref.work_cpu_s))
            what = (f"no case closes in so short a run: cases created per wall second; created: model "
                    f"{model.cases:,}, reference {ref.cases:,} (differ by {work_gap:.0%})")
        checks[f"reference_speed_ratio{tag}"] = _check(speed, TARGETS["reference_speed_ratio"], upper=False,
                                                       note=f"{pop:,} citizens, {days:g} days: {what}")
        checks[f"reference_speed_ratio_cpu{tag}"] = _check(speed_cpu, TARGETS["reference_speed_ratio"],
                                                           upper=False, note=CPU_NOTE)
        checks[f"citizen_hours_per_s_ratio{tag}"] = {
            "value": _ratio(model.citizen_hours_per_s, ref.citizen_hours_per_s), "target": "(information)",
            "ok": True, "note": "agent-updates per second, model / reference"}
    return {"runs": run.runs(), "checks": checks, "quick": quick, "repeats": run.repeats,
            "populations": populations, "days": [d for _, d in sizes]}


# ---------------------------------------------------------------------------------------- the machine
def machine_info() -> dict[str, Any]:
    """CPU model, cores, memory, OS, Python and library versions of this machine."""
    from importlib.metadata import PackageNotFoundError, version

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor()
    mem_gib = float("nan")
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gib = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    versions = {}
    for pkg in ("numpy", "pandas", "mesa", "networkx", "pydantic", "pyarrow", "scipy"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = "missing"
    return {"cpu": cpu or "unknown", "cores": os.cpu_count(),
            "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "memory_gib": mem_gib, "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(), "versions": versions}


def code_version() -> dict[str, Any]:
    """The git commit the figures come from, and whether sim/ had uncommitted changes."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"commit": git("rev-parse", "--short", "HEAD") or "unknown",
            "sim_modified": bool(git("status", "--porcelain", "--", "sim", "scenarios"))}


# ------------------------------------------------------------------------------------------ profiling
def profile_run(population: int = 200_000, cases_per_day: float = 2_000.0, days: float = 60.0,
                html: str | None = None, top: int = 25) -> str:
    """Profile one mid-size run of the model with pyinstrument.

    Returns the call tree followed by the ``top`` functions by self time (file:line), as text.
    """
    from pyinstrument import Profiler

    from sim import load_scenario, run_scenario
    from sim.budgets import plan_staff

    scenario = load_scenario(FULL_SCALE, dict(volume(population, cases_per_day, full_scale_rate())))
    scenario = scenario.with_overrides(
        {"departments.staff_by_department": plan_staff(scenario, PLAN_UTILISATION)}, source="bench (planned staff)")
    profiler = Profiler(interval=0.002)
    profiler.start()
    t0 = time.perf_counter()
    run_scenario(scenario, seed=scenario.run.seed, days=days, warmup_days=0.0)
    wall = time.perf_counter() - t0
    profiler.stop()
    if html:
        Path(html).write_text(profiler.output_html())
    tree = profiler.output_text(unicode=True, color=False)
    flat = profiler.output_text(unicode=True, color=False, flat=True, flat_time="self").splitlines()
    head = f"{population:,} citizens, {cases_per_day:,.0f} cases/day, {days:g} days: {wall:.1f} s (profiled)"
    return "\n".join([head, tree, f"top {top} by self time:", *flat[:top + 8]])


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        spec_d = json.loads(sys.argv[2])
        spec_d["overrides"] = tuple(tuple(kv) for kv in spec_d["overrides"])
        record = _worker(RunSpec(**spec_d))
        Path(sys.argv[3]).write_text(json.dumps(record))
    else:
        sys.exit("usage: python -m bench.scale --worker SPEC_JSON OUT_JSON (internal; use python -m bench)")
