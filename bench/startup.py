"""Start-up: how long a command takes before it does any work, against the imports it cannot avoid.

Each command runs as a fresh process (``sys.executable``, the project folder as the working directory);
the commands are measured in turns (A, B, C, … A, B, C, …) so that a noisy neighbour slows them alike, and
each figure is the median of its wall times (seconds). The checks are the issue's ratios:

* ``python run.py --help`` within 2× of ``python -c "import argparse"`` (the command line imports what a
  command uses, when it uses it);
* a small run (``python run.py run scenarios/default.yaml --days 30``) within 0.5 s of ``python -c "import
  mesa"`` (Mesa's own import is the floor: the model is a Mesa model).

Two more commands show where the small run's margin comes from; they are reported, not checked:

* ``import_mesa_gc_as_run``: Mesa's import with the garbage collector handled as ``run.py`` handles it (off
  during start-up, everything frozen at exit). Part of the small run's gain over ``import mesa`` is that
  handling, which the bare import does not get: ``small_run − import_mesa_gc_as_run`` is the margin with
  that part taken out.
* ``small_run_plain_kernels``: the small run with ``WENZHENG_COMPILE=0`` (plain Python instead of the kernels
  compiled ahead of time, :mod:`sim.aot`).

Before measuring, the project's bytecode cache is written (:func:`warm_bytecode`), as the numba cache is
warmed: installed packages such as Mesa have theirs from pip, and a command should not be timed compiling
the project's sources where the environment forbids Python to cache them (``PYTHONDONTWRITEBYTECODE``).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

#: name -> command (arguments after the interpreter); ``{out}`` is a fresh temporary folder.
COMMANDS: dict[str, list[str]] = {
    "python": ["-c", "pass"],
    "import_argparse": ["-c", "import argparse"],
    "run_help": ["run.py", "--help"],
    "import_mesa": ["-c", "import mesa"],
    "import_sim_model": ["-c", "import sim.model"],
    "small_run": ["run.py", "run", "scenarios/default.yaml", "--days", "30", "--out", "{out}"],
    "import_mesa_gc_as_run": ["-c", "import gc; gc.disable(); import mesa; gc.freeze()"],
    "small_run_plain_kernels": ["run.py", "run", "scenarios/default.yaml", "--days", "30", "--out", "{out}"],
}
#: Environment variables set for a command (on top of this process's).
ENVIRONMENT: dict[str, dict[str, str]] = {"small_run_plain_kernels": {"WENZHENG_COMPILE": "0"}}


def _time(args: list[str], env: dict[str, str] | None = None) -> float:
    with tempfile.TemporaryDirectory(prefix="wz-startup-") as out:
        cmd = [sys.executable, *(a.replace("{out}", out) for a in args)]
        environ = {**os.environ, **(env or {})}
        t0 = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env=environ)
        wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    return wall


#: The project's own Python sources (their bytecode is cached before measuring: :func:`warm_bytecode`).
SOURCES = ("sim", "experiments", "common", "analysis", "bench", "run.py", "app.py")


def warm_bytecode(root: Path = ROOT, sources: tuple[str, ...] = SOURCES) -> None:
    """Write the bytecode cache (``__pycache__``) of the project's sources, as pip does for an installed
    package, so that a measured command loads it instead of compiling every module it imports: where the
    environment sets ``PYTHONDONTWRITEBYTECODE``, imports never write it themselves (about 50 ms of compiling
    in every process). A source changed later makes its cached bytecode stale, and Python then ignores it."""
    paths = [p for p in sources if (root / p).exists()]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *paths], cwd=root, check=True,
                   stdout=subprocess.DEVNULL)


def startup_suite(quick: bool = False, repeats: int | None = None, log=print) -> dict[str, Any]:
    """Median wall times (s) of every command in :data:`COMMANDS`, in turns, and the two checks."""
    n = repeats if repeats is not None else (3 if quick else 7)
    warm_bytecode()
    for name, args in COMMANDS.items():  # warm the file cache and numba's on-disk cache once, unmeasured
        _time(args, ENVIRONMENT.get(name))
    walls: dict[str, list[float]] = {k: [] for k in COMMANDS}
    for i in range(n):
        for name, args in COMMANDS.items():
            walls[name].append(_time(args, ENVIRONMENT.get(name)))
        log(f"startup: round {i + 1}/{n}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in walls.items()))
    med = {k: statistics.median(v) for k, v in walls.items()}
    help_ratio = med["run_help"] / med["import_argparse"]
    run_over_mesa = med["small_run"] - med["import_mesa"]
    from sim import aot, jit

    kinds = ("aot" if aot.built_path() else "python") if jit.setting() == "auto" else f"{jit.ENV}={jit.setting()}"
    return {
        "repeats": n,
        "median_s": med,
        "walls_s": walls,
        "small_run_kernels": kinds,  # what a small run in a fresh process uses
        "small_run_minus_import_mesa_gc_as_run_s": med["small_run"] - med["import_mesa_gc_as_run"],
        "small_run_plain_kernels_minus_small_run_s": med["small_run_plain_kernels"] - med["small_run"],
        "checks": {
            "help_over_argparse": {"value": help_ratio, "target": "≤ 2 (ratio of medians)", "ok": help_ratio <= 2.0},
            "small_run_minus_import_mesa_s": {"value": run_over_mesa, "target": "≤ 0.5 s",
                                              "ok": run_over_mesa <= 0.5},
        },
    }
