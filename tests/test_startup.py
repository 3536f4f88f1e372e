"""Start-up: the command line and the packages import what a command uses, when it uses it.

Each check runs a fresh interpreter and looks at ``sys.modules`` — what was imported, not how long it took
(timings belong to ``make bench``, suite ``startup``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


HEAVY = ("pandas", "numpy", "pydantic", "mesa", "numba", "scipy", "rich", "matplotlib")


def test_importing_sim_or_its_errors_loads_nothing_heavy():
    loaded = modules_after("import sim; from sim.errors import WenzhengError")
    assert not [m for m in HEAVY if m in loaded]


def test_run_py_help_loads_nothing_heavy():
    code = ("import runpy, sys; sys.argv = ['run.py', '--help']\n"
            "try:\n    runpy.run_path('run.py', run_name='__main__')\nexcept SystemExit:\n    pass")
    loaded = modules_after(code)
    assert "argparse" in loaded
    assert not [m for m in HEAVY if m in loaded]


def test_public_names_still_resolve_on_first_use():
    loaded = modules_after("import sim, experiments\nassert sim.run_scenario and sim.KPI_NAMES and "
                           "sim.load_scenario and experiments.load_spec and experiments.StoreError")
    assert {"sim.model", "sim.results", "experiments.spec", "common.store"} <= loaded
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        import sim

        sim.nothing  # noqa: B018
    import experiments
    from common.store import StoreError

    assert experiments.StoreError is StoreError



def test_the_bench_writes_the_bytecode_cache_even_where_imports_may_not(tmp_path, monkeypatch):
    import importlib.util
    import os

    from bench.startup import warm_bytecode

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "mod.py").write_text("X = 1\n")
    cached = Path(importlib.util.cache_from_source(str(tmp_path / "pkg" / "mod.py")))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")  # as some environments set it
    subprocess.run([sys.executable, "-c", "import pkg.mod"], cwd=tmp_path, check=True, env=dict(os.environ))
    assert not cached.exists()  # the import did not write it
    warm_bytecode(tmp_path, ("pkg", "missing.py"))
    assert cached.exists()
