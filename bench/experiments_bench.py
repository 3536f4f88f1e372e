"""Experiment throughput: runs per minute for ``experiments/reforms.yaml`` with 1 and 2 local workers.

The same runs (the reform spec's six scenarios, fewer replications and days than the spec so that a
measurement takes tens of seconds) are made with ``--workers 1`` and ``--workers 2``, alternating, several
times; the figures are medians. Wall time is the whole ``run_experiment`` call (spec loading, pool start,
store writing included), as a user experiences it. Parallel efficiency = (runs/min with 2 workers) /
(2 × runs/min with 1 worker); the target on 2 cores is at least 0.85. The stores of the two worker counts
are checked to hold identical results. The machine's load average and a control figure are recorded (the
same efficiency for two plain CPU-bound processes, ``machine_parallel_efficiency``), because other processes
on the same cores lower the 2-worker figure; on a shared machine read the engine's efficiency against it.

The sweep figure (:func:`sweep_rate`) is the issue's throughput target: warm runs per minute of the 30-day
default city on 2 workers, measured in turns with the commit before the work on speed (a temporary git
worktree), its target at least twice that commit's.

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


#: The sweep itself, run by :func:`_sweep_walls` as a script in a fresh process whose working folder and
#: ``PYTHONPATH`` are the tree measured: two experiments of n1 and n2 runs of the 30-day default city, no
#: warm-up, seed 1; prints their wall times (s) as JSON. It uses only what every commit since the experiment
#: engine has (``run_experiment`` with workers, engine, replications and progress).
_SWEEP_SCRIPT = """
import json, sys, tempfile, time
from pathlib import Path

import yaml

from experiments.runner import run_experiment


def main():
    small, large, workers = (int(a) for a in sys.argv[1:4])
    default = str(Path("scenarios/default.yaml").resolve())
    walls = []
    with tempfile.TemporaryDirectory(prefix="wenzheng-sweep-") as tmp:
        spec = Path(tmp) / "sweep.yaml"
        spec.write_text(yaml.safe_dump({"name": "sweep", "scenarios": {"default": default}, "replications": large,
                                        "days": 30, "warmup_days": 0, "seed": 1}), encoding="utf-8")
        for n in (small, large):
            t0 = time.perf_counter()
            outcome = run_experiment(str(spec), out=str(Path(tmp) / f"n{n}"), workers=workers, engine="local",
                                     replications=n, progress=False)
            walls.append(time.perf_counter() - t0)
            if outcome.n_ok != n:
                raise SystemExit(f"{outcome.n_ok} of {n} runs ok: {outcome.failures[:1]}")
    print(json.dumps(walls))


if __name__ == "__main__":
    main()
"""


def _sweep_walls(root: Path, small: int, large: int, workers: int) -> tuple[float, float]:
    """Wall times (s) of the sweep's two experiments (n1 = ``small``, n2 = ``large`` runs) on the tree
    ``root``, in a fresh process (:data:`_SWEEP_SCRIPT`)."""
    import json
    import subprocess
    import sys

    with tempfile.TemporaryDirectory(prefix="wenzheng-sweep-script-") as tmp:
        script = Path(tmp) / "sweep.py"
        script.write_text(_SWEEP_SCRIPT, encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        done = subprocess.run([sys.executable, str(script), str(small), str(large), str(workers)], cwd=root,
                              env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"sweep on {root} failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    t_small, t_large = json.loads(done.stdout.strip().splitlines()[-1])
    return float(t_small), float(t_large)


def sweep_rate(quick: bool = False, workers: int = 2, before: str | None = None, log=print) -> dict[str, Any]:
    """Warm sweep throughput: runs per minute of the 30-day default city (``scenarios/default.yaml``, no
    warm-up) through the engine on ``workers`` local workers, with the pool's start-up (interpreters, imports,
    numba's first call) taken out: two experiments of n1 and n2 runs in one fresh process, rate =
    (n2 − n1) / (t2 − t1). With ``before`` (a commit; default :data:`bench.scale.BEFORE_COMMIT`, none with
    ``quick``), the same on that commit in a temporary git worktree, in turns with this tree (now, before, now,
    …, after one unmeasured sweep of each), and their ratio. Medians of the repeats."""
    import contextlib

    from bench.scale import BEFORE_COMMIT, worktree

    if before is None and not quick:
        before = BEFORE_COMMIT
    small, large, repeats = (4, 12, 1) if quick else (10, 40, 3)
    walls: dict[str, list[tuple[float, float]]] = {"now": []}
    with contextlib.ExitStack() as stack:
        trees = {"now": ROOT}
        if before:
            trees["before"] = stack.enter_context(worktree(before))
            walls["before"] = []
        for root in trees.values():  # unmeasured: the file cache, bytecode, numba's on-disk cache
            _sweep_walls(root, 2, 4, workers)
        for rep in range(repeats):
            for name, root in trees.items():
                walls[name].append(_sweep_walls(root, small, large, workers))
                t_small, t_large = walls[name][-1]
                log(f"sweep {name}: round {rep + 1}/{repeats}: {small} runs {t_small:.2f} s, {large} runs "
                    f"{t_large:.2f} s, {60.0 * (large - small) / (t_large - t_small):.0f} runs/min")

    def rate(pairs: list[tuple[float, float]]) -> float:
        return statistics.median(60.0 * (large - small) / (t2 - t1) for t1, t2 in pairs)

    now = walls["now"]
    t_small, t_large = statistics.median(w[0] for w in now), statistics.median(w[1] for w in now)
    out: dict[str, Any] = {
        "scenario": "scenarios/default.yaml", "days": 30, "workers": workers, "runs": [small, large],
        "wall_s": [round(t_small, 3), round(t_large, 3)],
        "warm_runs_per_min": round(rate(now), 2),
        "cold_runs_per_min_large": round(60.0 * large / t_large, 2),
        "samples_wall_s": {str(small): [round(w[0], 3) for w in now], str(large): [round(w[1], 3) for w in now]},
        "note": "each measurement a fresh process making both experiments; rate the median over the rounds",
    }
    if before:
        then = rate(walls["before"])
        ratio = out["warm_runs_per_min"] / then
        out["before"] = {"commit": before, "warm_runs_per_min": round(then, 2),
                         "samples_wall_s": [[round(a, 3), round(b, 3)] for a, b in walls["before"]]}
        out["ratio_to_before"] = round(ratio, 3)
        out["check"] = {"value": round(ratio, 3), "target": ">= 2 (warm runs/min against the commit before the "
                        "work on speed, in turns)", "ok": bool(ratio >= 2.0)}
    return out


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
