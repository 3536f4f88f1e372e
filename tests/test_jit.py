"""The kernels' three copies (sim.jit, sim.aot): plain Python, numba-compiled just in time and compiled ahead of
time give identical runs; the choice per run; bad settings get a clear error."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from sim import aot, jit
from sim.errors import WenzhengError
from sim.model import GovernanceModel
from sim.scenario import load_scenario
from tests.conftest import ROOT


def _run(name: str, days: float, monkeypatch: pytest.MonkeyPatch, compiled: str, more: dict | None = None):
    monkeypatch.setenv(jit.ENV, compiled)
    sc = load_scenario(ROOT / "scenarios" / name).with_overrides(
        {"run.days": days, "run.warmup_days": 2.0, **(more or {})}, source=f"{name} for the kernel test")
    model = GovernanceModel(sc, seed=5)
    model.run()
    return model, model.result(final=True)


def require_aot() -> None:
    """The kernels compiled ahead of time must be built for this source (``make test`` builds them first);
    skipped only where they cannot be built (no C compiler)."""
    if aot.built_path() is not None:
        return
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler here: the kernels compiled ahead of time cannot be built")
    pytest.fail("no kernels compiled ahead of time for this source of sim/kernels.py: run `make kernels` "
                "(python -m sim.aot build)")


#: A dense city: a thousand requesters with twenty times the default city's problems, so that a day's trust
#: changes reach more contacts than an eighth of the population (Population._distinct then marks flags).
DENSE = {"world.population": 1000, "demand.problems_per_citizen_year": 40.0}


@pytest.mark.parametrize(("name", "more"), [("zzic.yaml", None), ("combined.yaml", None), ("default.yaml", DENSE)],
                         ids=["zzic", "combined", "dense"])
def test_plain_jit_and_ahead_of_time_kernels_give_identical_runs(name, more, monkeypatch):
    require_aot()
    plain_model, plain = _run(name, 25.0, monkeypatch, "0", more)
    assert not plain_model.compiled and plain.meta["kernels"] == "python"
    assert len(plain.cases) > 1000
    for setting, kind in (("1", "numba"), ("aot", "aot")):
        model, other = _run(name, 25.0, monkeypatch, setting, more)
        assert model.compiled and other.meta["kernels"] == kind
        pd.testing.assert_frame_equal(plain.cases, other.cases, check_exact=True)
        pd.testing.assert_frame_equal(plain.timeseries, other.timeseries, check_exact=True)
        assert plain.summary.keys() == other.summary.keys()
        assert all(pd.isna(v) and pd.isna(other.summary[k]) or v == other.summary[k]
                   for k, v in plain.summary.items())
        pd.testing.assert_frame_equal(plain.groups, other.groups, check_exact=True)


def test_a_bad_setting_names_the_variable_and_the_allowed_values(monkeypatch):
    monkeypatch.setenv(jit.ENV, "fast")
    with pytest.raises(WenzhengError, match=r"WENZHENG_COMPILE='fast'.*0 \(plain.*1 \(numba.*aot \(.*auto"):
        jit.use_compiled(10)


def _fresh(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_auto_keeps_small_runs_plain_until_their_cases_pay_for_numba():
    """Without kernels compiled ahead of time, in a fresh process, small runs use the plain kernels (numba never
    imported) until the cases run so far reach COMPILE_FROM_CASES; a large run is compiled at once."""
    code = """
import json, sys
import sim.aot
sim.aot.built_path = lambda: None  # as on a machine where they are not built
from sim.model import GovernanceModel
from sim.scenario import load_scenario
from sim import jit
sc = load_scenario('scenarios/default.yaml').with_overrides({'run.days': 30.0}, source='t')
seen = []
for _ in range(5):
    m = GovernanceModel(sc)
    seen.append([m.compiled, 'numba' in sys.modules, m.cases.capacity])
print(json.dumps({'seen': seen, 'large': jit.use_compiled(jit.COMPILE_FROM_CASES)}))
"""
    done = _fresh(code, {jit.ENV: "auto"})
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    seen = out["seen"]
    total, switched = 0, False
    for compiled, numba_loaded, capacity in seen:
        assert compiled == (switched or total + capacity >= jit.COMPILE_FROM_CASES)
        if compiled:
            switched = True
            assert numba_loaded
        else:
            total += capacity
    assert [s[0] for s in seen] == [False, False, True, True, True]  # 30 days of the default city: ~3,500 each
    assert seen[0] == [False, False, seen[0][2]]  # the first small run never imports numba
    assert out["large"] is True


def test_without_numba_runs_are_plain_and_asking_for_compiled_is_an_error():
    code = """
import sys
sys.modules['numba'] = None  # as if numba were not installed
from sim import aot, jit
aot.built_path = lambda: None  # nor the kernels compiled ahead of time
from sim.errors import WenzhengError
assert not jit.numba_available()
assert jit.use_compiled(10**9) is False
import os
os.environ[jit.ENV] = '1'
try:
    jit.use_compiled(10)
except WenzhengError as exc:
    print('error:', exc)
"""
    done = _fresh(code, {jit.ENV: "auto"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "error: environment variable WENZHENG_COMPILE=1" in done.stdout
    assert "numba is not installed" in done.stdout


def test_auto_uses_the_ahead_of_time_kernels_for_small_runs_and_never_imports_numba():
    """With the kernels compiled ahead of time built, the small runs of a fresh process use them (numba is not
    imported); a run expecting COMPILE_FROM_CASES cases or more uses the just-in-time kernels."""
    require_aot()
    code = """
import json, sys
from sim.model import GovernanceModel
from sim.scenario import load_scenario
from sim import jit
sc = load_scenario('scenarios/default.yaml').with_overrides({'run.days': 30.0}, source='t')
kinds = []
for _ in range(4):
    m = GovernanceModel(sc)
    kinds.append(m.kernel_kind)
numba_before = 'numba' in sys.modules
print(json.dumps({'kinds': kinds, 'numba': numba_before, 'large': jit.choose(jit.COMPILE_FROM_CASES),
                  'small': jit.choose(10)}))
"""
    done = _fresh(code, {jit.ENV: "auto"})
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["kinds"] == ["aot"] * 4
    assert out["numba"] is False
    assert out["large"] == "numba"
    assert out["small"] == "aot"  # choosing numba for a large run does not load it


def test_asking_for_ahead_of_time_kernels_that_are_not_built_is_an_error(monkeypatch):
    monkeypatch.setattr(aot, "module_name", lambda: aot.PREFIX + "0" * 16)  # a source with no module built
    monkeypatch.setenv(jit.ENV, "aot")
    with pytest.raises(WenzhengError, match=r"WENZHENG_COMPILE=aot.*none are built.*python -m sim.aot build"):
        jit.choose(10)
    with pytest.raises(WenzhengError, match=r"not built for this source.*python -m sim.aot build"):
        jit.kernels("aot")


def test_a_built_module_that_does_not_load_is_named_and_auto_leaves_it(tmp_path, monkeypatch):
    import importlib.machinery

    monkeypatch.setattr(aot, "_HERE", tmp_path)
    monkeypatch.setattr(aot, "module_name", lambda: aot.PREFIX + "damaged")
    monkeypatch.setattr(jit, "_aot_broken", None)
    damaged = tmp_path / (aot.PREFIX + "damaged" + importlib.machinery.EXTENSION_SUFFIXES[0])
    damaged.write_bytes(b"not a shared object")
    with pytest.raises(WenzhengError, match=r"_kaot_damaged.*cannot be loaded.*make kernels"):
        jit.kernels("aot")
    monkeypatch.setenv(jit.ENV, "auto")
    monkeypatch.setattr(jit, "compiled_loaded", lambda: False)  # as in a process that has not loaded numba
    with pytest.warns(RuntimeWarning, match="cannot be loaded.*runs use the other kernels"):
        assert jit.choose(10) != "aot"
    assert jit.choose(10) != "aot"  # reported once, then left alone


def test_an_edit_to_the_kernels_makes_the_built_module_stale(tmp_path, monkeypatch):
    """The built module's name carries a digest of sim/kernels.py and the export list: after an edit, no module
    is found for the source (auto then uses the other kernels) until the next build."""
    require_aot()
    name = aot.module_name()
    edited = tmp_path / "kernels.py"
    edited.write_text(aot._SOURCE.read_text() + "\n# an edit\n")
    monkeypatch.setattr(aot, "_SOURCE", edited)
    aot.digest.cache_clear()
    try:
        assert aot.module_name() != name
        assert aot.built_path() is None
        monkeypatch.setenv(jit.ENV, "auto")
        assert jit.choose(10) != "aot"
    finally:
        monkeypatch.undo()
        aot.digest.cache_clear()
    assert aot.module_name() == name and aot.built_path() is not None


def test_the_built_module_is_named_for_the_processor_it_was_compiled_for(tmp_path, monkeypatch):
    """The kernels are compiled for the processor they run on (its vector instructions), so the module's digest
    names the processor: a checkout moved to a processor with other instruction-set flags finds no module for
    itself (and builds its own); without a processor description the identity is None (the generic target)."""
    require_aot()
    name = aot.module_name()
    here = aot.cpu_identity()
    assert here is not None and "|" in here  # this machine (Linux) says what it is
    other = tmp_path / "cpuinfo"
    other.write_text("processor\t: 0\nvendor_id\t: OtherVendor\nmodel name\t: Another CPU\nflags\t\t: fpu sse2\n\n"
                     "processor\t: 1\nvendor_id\t: ignored\n")
    monkeypatch.setattr(aot, "CPUINFO", other)
    aot.digest.cache_clear()
    try:
        assert aot.cpu_identity() == "OtherVendor|Another CPU|fpu sse2|||"
        assert aot.module_name() != name and aot.built_path() is None
        monkeypatch.setattr(aot, "CPUINFO", tmp_path / "absent")
        aot.digest.cache_clear()
        assert aot.cpu_identity() is None and aot.module_name() not in (name, aot.PREFIX)
    finally:
        monkeypatch.undo()
        aot.digest.cache_clear()
    assert aot.module_name() == name and aot.built_path() is not None


def test_a_kernel_given_arrays_of_the_wrong_type_raises_instead_of_reading_memory_wrongly():
    """The compiled functions read raw memory; their wrappers check every array's type and dimensions first
    (in a fresh process: a missed check would crash it)."""
    require_aot()
    code = """
import numpy as np
from sim import jit
k = jit.kernels('aot')
t_set = np.zeros(10)
ok32 = k.decay_args(np.array([1, 2], np.int32), t_set, 5.0, 2.0)
ok64 = k.decay_args(np.array([1, 2], np.int64), t_set, 5.0, 2.0)
plain = jit.kernels('python').decay_args(np.array([1, 2], np.int64), t_set, 5.0, 2.0)
assert (ok32 == plain).all() and (ok64 == plain).all()
for bad in (np.array([1, 2], np.int16), np.array([[1, 2]], np.int64), [1, 2]):
    try:
        k.decay_args(bad, t_set, 5.0, 2.0)
    except TypeError as exc:
        print('TypeError:', exc)
    else:
        print('accepted', bad)
"""
    done = _fresh(code)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("TypeError: compiled kernel decay_args") for line in lines)
    assert "int16[1d]" in lines[0] and "int64[2d]" in lines[1] and "list" in lines[2]
    assert "compiled for (int64[:], float64[:], float64, float64) or (int32[:]" in lines[0]


def test_the_build_command_reports_its_state():
    require_aot()
    status = subprocess.run([sys.executable, "-m", "sim.aot", "status"], cwd=ROOT, capture_output=True, text=True)
    assert status.returncode == 0 and aot.module_name() in status.stdout
    build = subprocess.run([sys.executable, "-m", "sim.aot", "build"], cwd=ROOT, capture_output=True, text=True)
    assert build.returncode == 0 and build.stdout == ""  # built already: nothing to do
    bad = subprocess.run([sys.executable, "-m", "sim.aot", "build", "--fast"], cwd=ROOT, capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "usage: python -m sim.aot build [--strict] | status" in bad.stderr


def test_a_process_making_many_small_runs_switches_from_ahead_of_time_to_numba():
    """Under auto, once the runs a process made with the ahead-of-time kernels reach JIT_AFTER_AOT_CASES cases,
    the next run uses numba's copy (and every run after it, numba being loaded)."""
    require_aot()
    code = """
import json
from sim import jit
kinds = [jit.choose(9_000) for _ in range(13)]  # each below COMPILE_FROM_CASES
print(json.dumps({'kinds': kinds, 'limit': jit.JIT_AFTER_AOT_CASES}))
"""
    done = _fresh(code, {jit.ENV: "auto"})
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["limit"] == 100_000
    assert out["kinds"] == ["aot"] * 11 + ["numba"] * 2  # 99,000 before the twelfth: 108,000 ≥ 100,000
