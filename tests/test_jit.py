"""The kernels' two copies (sim.jit): plain Python and numba-compiled give identical runs; the choice per run;
bad settings get a clear error."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from sim import jit
from sim.errors import WenzhengError
from sim.model import GovernanceModel
from sim.scenario import load_scenario
from tests.conftest import ROOT


def _run(name: str, days: float, monkeypatch: pytest.MonkeyPatch, compiled: str):
    monkeypatch.setenv(jit.ENV, compiled)
    sc = load_scenario(ROOT / "scenarios" / name).with_overrides({"run.days": days, "run.warmup_days": 2.0},
                                                                  source=f"{name} for the kernel test")
    model = GovernanceModel(sc, seed=5)
    model.run()
    return model, model.result(final=True)


@pytest.mark.parametrize("name", ["zzic.yaml", "combined.yaml"])
def test_plain_and_compiled_kernels_give_identical_runs(name, monkeypatch):
    plain_model, plain = _run(name, 25.0, monkeypatch, "0")
    compiled_model, compiled = _run(name, 25.0, monkeypatch, "1")
    assert (plain_model.compiled, compiled_model.compiled) == (False, True)
    assert (plain.meta["kernels"], compiled.meta["kernels"]) == ("python", "numba")
    assert len(plain.cases) > 1000
    pd.testing.assert_frame_equal(plain.cases, compiled.cases, check_exact=True)
    pd.testing.assert_frame_equal(plain.timeseries, compiled.timeseries, check_exact=True)
    assert plain.summary.keys() == compiled.summary.keys()
    assert all(pd.isna(v) and pd.isna(compiled.summary[k]) or v == compiled.summary[k]
               for k, v in plain.summary.items())
    pd.testing.assert_frame_equal(plain.groups, compiled.groups, check_exact=True)


def test_a_bad_setting_names_the_variable_and_the_allowed_values(monkeypatch):
    monkeypatch.setenv(jit.ENV, "fast")
    with pytest.raises(WenzhengError, match=r"WENZHENG_COMPILE='fast'.*0 \(plain.*1 \(numba.*auto"):
        jit.use_compiled(10)


def _fresh(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_auto_keeps_small_runs_plain_until_their_cases_pay_for_numba():
    """In a fresh process, small runs use the plain kernels (numba never imported) until the cases run so
    far reach COMPILE_FROM_CASES; a large run is compiled at once."""
    code = """
import json, sys
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
from sim import jit
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
