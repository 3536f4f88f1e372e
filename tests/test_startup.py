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


def test_run_as_a_script_collects_garbage_during_the_work_but_not_during_start_up(tmp_path):
    """`python run.py run`: no collections while it imports and reads the scenario; then the start-up objects are
    frozen and collections are on while the model runs; the outputs are complete."""
    code = f"""
import gc, json, runpy, sys
import sim.model as model
seen = []
run = model.GovernanceModel.run
def watched(self, *args, **kwargs):
    seen.append([gc.isenabled(), gc.get_freeze_count() > 10_000])
    return run(self, *args, **kwargs)
model.GovernanceModel.run = watched
sys.argv = ['run.py', 'run', 'scenarios/default.yaml', '--days', '3', '--out', {str(tmp_path)!r}]
try:
    runpy.run_path('run.py', run_name='__main__')
except SystemExit as exc:
    print(json.dumps({{'code': exc.code, 'seen': seen, 'frozen_at_exit': gc.get_freeze_count() > 10_000}}))
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out == {"code": 0, "seen": [[True, True]], "frozen_at_exit": True}
    assert {"cases.parquet", "timeseries.parquet", "groups.parquet", "summary.json"} <= {
        p.name for p in tmp_path.iterdir()}


def test_every_other_command_starts_with_collections_on(monkeypatch):
    import gc

    import run

    seen = []
    monkeypatch.setattr(run, "cmd_export", lambda args: seen.append(gc.isenabled()) or 0)
    frozen = gc.get_freeze_count()
    assert run.main(["export", "somewhere"]) == 0 and seen == [True]  # called from Python: nothing changes
    assert gc.get_freeze_count() == frozen
    gc.disable()  # as the script's start-up leaves it
    try:
        assert run.main(["export", "somewhere"]) == 0
        assert seen == [True, True]
    finally:
        gc.enable()
        gc.unfreeze()


def test_the_bench_times_a_command_with_its_own_environment():
    from bench.startup import COMMANDS, ENVIRONMENT, _time

    check = ["-c", "import os, sys; sys.exit(0 if os.environ.get('WZ_BENCH_PROBE') == '1' else 3)"]
    assert _time(check, {"WZ_BENCH_PROBE": "1"}) > 0
    with pytest.raises(RuntimeError, match=r"failed \(3\)"):
        _time(check)
    assert ENVIRONMENT["small_run_plain_kernels"] == {"WENZHENG_COMPILE": "0"}
    assert COMMANDS["small_run_plain_kernels"] == COMMANDS["small_run"]
