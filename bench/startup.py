"""Start-up: how long a command takes before it does any work, against the imports it cannot avoid.

Each command runs as a fresh process (``sys.executable``, the project folder as the working directory);
the commands are measured in turns (A, B, C, … A, B, C, …) so that a noisy neighbour slows them alike, and
each figure is the median of its wall times (seconds). The checks are the issue's ratios:

* ``python run.py --help`` within 2× of ``python -c "import argparse"`` (the command line imports what a
  command uses, when it uses it);
* a small run (``python run.py run scenarios/default.yaml --days 30``) within 0.5 s of ``python -c "import
  mesa"`` (Mesa's own import is the floor: the model is a Mesa model).

Before measuring, the project's bytecode cache is written (:func:`warm_bytecode`), as the numba cache is
warmed: installed packages such as Mesa have theirs from pip, and a command should not be timed compiling
the project's sources where the environment forbids Python to cache them (``PYTHONDONTWRITEBYTECODE``).
"""

from __future__ import annotations

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
}


def _time(args: list[str]) -> float:
    with tempfile.TemporaryDirectory(prefix="wz-startup-") as out:
        cmd = [sys.executable, *(a.replace("{out}", out) for a in args)]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
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
    for args in COMMANDS.values():  # warm the file cache and numba's on-disk cache once, unmeasured
        _time(args)
    walls: dict[str, list[float]] = {k: [] for k in COMMANDS}
    for i in range(n):
        for name, args in COMMANDS.items():
            walls[name].append(_time(args))
        log(f"startup: round {i + 1}/{n}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in walls.items()))
    med = {k: statistics.median(v) for k, v in walls.items()}
    help_ratio = med["run_help"] / med["import_argparse"]
    run_over_mesa = med["small_run"] - med["import_mesa"]
    return {
        "repeats": n,
        "median_s": med,
        "walls_s": walls,
        "checks": {
            "help_over_argparse": {"value": help_ratio, "target": "≤ 2 (ratio of medians)", "ok": help_ratio <= 2.0},
            "small_run_minus_import_mesa_s": {"value": run_over_mesa, "target": "≤ 0.5 s",
                                              "ok": run_over_mesa <= 0.5},
        },
    }
