"""Experiment throughput: runs per minute for ``experiments/reforms.yaml`` with 1 and 2 local workers.

The same runs (the reform spec's six scenarios, fewer replications and days than the spec so that a
measurement takes tens of seconds) are made with ``--workers 1`` and ``--workers 2``, alternating, several
times; the figures are medians. Wall time is the whole ``run_experiment`` call (spec loading, pool start,
store writing included), as a user experiences it. Parallel efficiency = (runs/min with 2 workers) /
(2 × runs/min with 1 worker); the target on 2 cores is at least 0.85. The stores of the two worker counts
are checked to hold identical results. The machine's load average and a control figure are recorded (the
same efficiency for two plain CPU-bound processes, ``machine_parallel_efficiency``), because other processes
on the same cores lower the 2-worker figure; on a shared machine read the engine's efficiency against it.

    python -m bench --suite experiments [--quick]
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "experiments" / "reforms.yaml"
TARGET_EFFICIENCY = 0.85


def _same_results(a: Path, b: Path) -> bool:
    from experiments.store import load_tables

    ta, tb = load_tables(a), load_tables(b)
    sa = ta["summary"].sort_values(["run_id", "group_by", "group", "kpi"]).reset_index(drop=True)
    sb = tb["summary"].sort_values(["run_id", "group_by", "group", "kpi"]).reset_index(drop=True)
    return bool(sa.equals(sb)) and len(sa) > 0


_SPIN = "s = 0\nfor i in range(12_000_000):\n    s += i\n"  # about a second of pure-Python work


def machine_parallelism() -> float:
    """Control measurement: efficiency of two plain CPU-bound processes against one, right now.

    On two idle cores it is about 1.0; other processes on the same cores pull it down. The experiment
    engine cannot do better than the machine, so its efficiency is reported next to this figure.
    """
    import subprocess
    import sys

    def timed(n: int) -> float:
        t0 = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", _SPIN]) for _ in range(n)]
        for proc in procs:
            proc.wait()
        return time.perf_counter() - t0

    one, two = timed(1), timed(2)
    return one / two  # = (2 / two) / (2 × 1 / one)


def sweep_rate(quick: bool = False, workers: int = 2) -> dict[str, Any]:
    """Warm sweep throughput: runs per minute of the 30-day default city (``scenarios/default.yaml``, no
    warm-up) through the engine on ``workers`` local workers, with the pool's start-up (interpreters, imports,
    numba's first call) taken out: two experiments of n1 and n2 runs, rate = (n2 − n1) / (t2 − t1). Medians
    of alternating repeats."""
    from experiments.runner import run_experiment

    small, large, repeats = (4, 12, 1) if quick else (10, 40, 3)
    default = (ROOT / "scenarios" / "default.yaml").resolve()
    walls: dict[int, list[float]] = {small: [], large: []}
    with tempfile.TemporaryDirectory(prefix="wenzheng-sweep-") as tmp:
        spec_path = Path(tmp) / "sweep.yaml"
        spec_path.write_text(yaml.safe_dump({"name": "sweep", "scenarios": {"default": str(default)},
                                             "replications": large, "days": 30, "warmup_days": 0, "seed": 1}),
                             encoding="utf-8")
        for rep in range(repeats):
            for n in (small, large):
                t0 = time.perf_counter()
                run_experiment(str(spec_path), out=str(Path(tmp) / f"n{n}-r{rep}"), workers=workers,
                               engine="local", replications=n, progress=False)
                walls[n].append(time.perf_counter() - t0)
    t_small, t_large = statistics.median(walls[small]), statistics.median(walls[large])
    return {"scenario": "scenarios/default.yaml", "days": 30, "workers": workers, "runs": [small, large],
            "wall_s": [round(t_small, 3), round(t_large, 3)],
            "warm_runs_per_min": round(60.0 * (large - small) / (t_large - t_small), 2),
            "cold_runs_per_min_large": round(60.0 * large / t_large, 2),
            "samples_wall_s": {str(k): [round(w, 3) for w in v] for k, v in walls.items()}}


def run_benchmark(quick: bool = False) -> dict[str, Any]:
    """Measure runs per minute with 1 and 2 workers; return a JSON-able dict (medians, efficiency)."""
    from experiments.runner import run_experiment
    from experiments.spec import load_spec

    days, warmup, replications, repeats = (10.0, 0.0, 2, 1) if quick else (60.0, 10.0, 4, 3)
    with tempfile.TemporaryDirectory(prefix="wenzheng-bench-") as tmp:
        # the reform spec with a shorter warm-up; scenario paths made absolute so the copy can live in tmp
        raw = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
        raw["warmup_days"] = warmup
        raw["scenarios"] = {name: str((SPEC.parent / ref).resolve()) for name, ref in raw["scenarios"].items()}
        spec_path = Path(tmp) / "reforms.yaml"
        spec_path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
        plan = load_spec(spec_path, replications=replications, days=days)
        n_runs = plan.n_runs
        samples: dict[int, list[float]] = {1: [], 2: []}
        main_cpu: dict[int, list[float]] = {1: [], 2: []}
        failed = 0
        load_before = os.getloadavg()
        stores: dict[int, Path] = {}
        control: list[float] = []
        for rep in range(repeats):
            control.append(machine_parallelism())
            for workers in (1, 2):  # alternating, so that a change in the machine's load hits both
                out = Path(tmp) / f"w{workers}-r{rep}"
                t0, c0 = time.perf_counter(), time.process_time()
                outcome = run_experiment(str(spec_path), out=str(out), workers=workers, engine="local",
                                         replications=replications, days=days, progress=False)
                samples[workers].append(time.perf_counter() - t0)
                main_cpu[workers].append(time.process_time() - c0)
                failed += outcome.n_failed
                stores[workers] = out
        control.append(machine_parallelism())
        load_after = os.getloadavg()
        identical = _same_results(stores[1], stores[2])

    def figures(workers: int) -> dict[str, Any]:
        wall = statistics.median(samples[workers])
        return {"wall_s": round(wall, 3), "runs_per_min": round(60.0 * n_runs / wall, 2),
                "main_process_cpu_s": round(statistics.median(main_cpu[workers]), 3),
                "samples_wall_s": [round(w, 3) for w in samples[workers]]}

    one, two = figures(1), figures(2)
    efficiency = two["runs_per_min"] / (2.0 * one["runs_per_min"])
    machine = statistics.median(control)
    sweep = sweep_rate(quick)
    return {
        "sweep_default_30d": sweep,
        "spec": "experiments/reforms.yaml",
        "scenarios": len(plan.scenarios),
        "replications": replications,
        "days": days,
        "warmup_days": warmup,
        "runs_per_measurement": n_runs,
        "repeats": repeats,
        "cores": os.cpu_count(),
        "workers_1": one,
        "workers_2": two,
        "parallel_efficiency": round(efficiency, 3),
        "target_efficiency": TARGET_EFFICIENCY,
        "met": bool(efficiency >= TARGET_EFFICIENCY),
        "machine_parallel_efficiency": round(machine, 3),
        "machine_parallel_efficiency_samples": [round(c, 3) for c in control],
        "efficiency_relative_to_machine": round(efficiency / machine, 3) if machine > 0 else None,
        "identical_results": identical,
        "failed_runs": failed,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "note": "medians of alternating 1- and 2-worker measurements; wall time of the whole run_experiment "
                "call; machine_parallel_efficiency is the same ratio for two plain CPU-bound processes, "
                "measured between the experiments: other processes on the same cores lower both",
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run_benchmark(quick="--quick" in sys.argv), indent=2))
