"""Which kernels a run uses (:mod:`sim.kernels`), chosen per run: plain Python, numba-compiled just in time
(``numba``), or numba-compiled ahead of time (``aot``, :mod:`sim.aot`).

All three run the same source and give identical results. The compiled ones are several times faster per case.
The just-in-time copy costs about 0.4 s once per process to import numba and load the compiled code from its
on-disk cache (and about 15 s to compile it the first time on a machine); the ahead-of-time copy is a C
extension built once by ``make`` (``python -m sim.aot build``, compiled for this processor where it can say which)
and costs a few milliseconds to load, but its calls cost a little more: numba's copy was 2–5 % quicker on a
30-day default run in a process that has both, and about 4 % on the full-scale year (3 pairs in turns).

So by default (``auto``) a run uses:

- the just-in-time kernels when numba is already loaded in this process, or when the run expects at least
  :data:`COMPILE_FROM_CASES` cases (numba's start-up is then small against the run);
- otherwise the ahead-of-time kernels when they are built for the current source, until the runs this process
  has made with them reach :data:`JIT_AFTER_AOT_CASES` cases (a long sweep's worker then switches to the
  just-in-time copy, which is a little quicker per case);
- otherwise plain Python, switching to the just-in-time kernels once the cases of the runs this process has
  made with plain Python reach :data:`COMPILE_FROM_CASES` (a process making many small runs, such as an
  experiment's worker, then pays numba's start-up once).

The environment variable ``WENZHENG_COMPILE`` overrides the choice: ``0`` (always plain Python), ``1``
(always just in time), ``aot`` (always ahead of time), ``auto`` (the default). Asking for a copy that is not
available (numba not installed; no ahead-of-time module built for this source) is an error.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from .errors import WenzhengError

#: Expected cases from which a run uses the compiled kernels under ``auto``: below it, numba's start-up
#: (about 0.4 s) costs more than the plain kernels (about 30 µs a case more, measured on the default city).
COMPILE_FROM_CASES = 10_000
ENV = "WENZHENG_COMPILE"
_COMPILED = "sim._kernels_compiled"
_SOURCE = Path(__file__).with_name("kernels.py")


def numba_available() -> bool:
    """Whether numba can be imported here."""
    if sys.modules.get("numba") is not None:
        return True
    return importlib.util.find_spec("numba") is not None


def setting() -> str:
    """``WENZHENG_COMPILE`` as given: ``0``, ``1``, ``aot`` or ``auto`` (unset means ``auto``)."""
    value = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if value not in ("0", "1", "aot", "auto"):
        raise WenzhengError(f"environment variable {ENV}={value!r}: allowed are 0 (plain Python kernels), "
                            "1 (numba-compiled kernels, just in time), aot (compiled ahead of time: "
                            "python -m sim.aot build) and auto (chosen per run: see sim/jit.py)")
    if value == "1" and not numba_available():
        raise WenzhengError(f"environment variable {ENV}=1 asks for numba-compiled kernels, but numba is not "
                            "installed (pip install numba, or set it to auto)")
    if value == "aot":
        from . import aot

        if aot.built_path() is None:
            raise WenzhengError(f"environment variable {ENV}=aot asks for the kernels compiled ahead of time, but "
                                "none are built for this source of sim/kernels.py (run: python -m sim.aot build; "
                                "or set it to auto)")
    return value


def compiled_loaded() -> bool:
    """Whether the just-in-time kernels are already loaded in this process (then they cost nothing more)."""
    return _COMPILED in sys.modules


_aot_broken: str | None = None  # why the built ahead-of-time module could not be loaded (auto then skips it)


def aot_available() -> bool:
    """Whether kernels compiled ahead of time are built for the current source (:func:`sim.aot.built_path`)
    and load. A built module that does not load is reported once (a warning) and then left alone."""
    global _aot_broken
    from . import aot

    if aot.built_path() is None or _aot_broken is not None:
        return False
    try:
        aot.load()
    except WenzhengError as exc:
        import warnings

        _aot_broken = str(exc)
        warnings.warn(f"{exc}; runs use the other kernels", RuntimeWarning, stacklevel=2)
        return False
    return True


_plain_cases = 0  # expected cases of the runs this process has made with the plain kernels under auto
_aot_cases = 0  # and with the kernels compiled ahead of time

#: Expected cases of the runs a process has made with the ahead-of-time kernels from which it switches to numba's
#: just-in-time copy under ``auto``: that copy's calls cost less (2–5 % of a 30-day default run, in turns), which
#: pays for its 0.4 s start-up after about 100,000 cases.
JIT_AFTER_AOT_CASES = 100_000

#: The kinds of kernels, as :func:`choose` names them (and a run's ``meta["kernels"]``).
KINDS = ("python", "numba", "aot")


def choose(expected_cases: int) -> str:
    """Which kernels a run expecting ``expected_cases`` cases uses: ``python``, ``numba`` or ``aot`` (see the
    module's text); a run given the plain kernels under ``auto`` is counted towards the switch."""
    global _plain_cases, _aot_cases
    value = setting()
    if value != "auto":
        return {"0": "python", "1": "numba", "aot": "aot"}[value]
    has_numba = numba_available()
    if has_numba and (compiled_loaded() or expected_cases >= COMPILE_FROM_CASES):
        return "numba"
    if aot_available():
        if has_numba and _aot_cases + expected_cases >= JIT_AFTER_AOT_CASES:
            return "numba"
        _aot_cases += int(expected_cases)
        return "aot"
    if has_numba and _plain_cases + expected_cases >= COMPILE_FROM_CASES:
        return "numba"
    _plain_cases += int(expected_cases)
    return "python"


def use_compiled(expected_cases: int) -> bool:
    """Whether a run expecting ``expected_cases`` cases uses compiled kernels (:func:`choose` says which)."""
    return choose(expected_cases) != "python"


def kernels(kind: str | bool) -> ModuleType:
    """The kernels module of ``kind`` (:data:`KINDS`; True means ``numba``, False ``python``):
    ``sim.kernels`` (plain Python), ``sim._kernels_compiled`` (numba, just in time) or the ahead-of-time
    module's wrapper (:func:`sim.aot.load`)."""
    if kind is True:
        kind = "numba"
    elif kind is False:
        kind = "python"
    if kind == "python":
        from . import kernels as plain

        return plain
    if kind == "aot":
        from . import aot

        module = aot.load()
        if module is None:
            raise WenzhengError("the kernels compiled ahead of time are not built for this source of "
                                "sim/kernels.py (run: python -m sim.aot build)")
        return module
    if kind != "numba":
        raise ValueError(f"kernels: unknown kind {kind!r}; allowed: {', '.join(KINDS)}")
    module = sys.modules.get(_COMPILED)
    if module is None:
        spec = importlib.util.spec_from_file_location(_COMPILED, _SOURCE)
        module = importlib.util.module_from_spec(spec)
        sys.modules[_COMPILED] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[_COMPILED]
            raise
    return module
