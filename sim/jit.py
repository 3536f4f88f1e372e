"""Which kernels a run uses: numba-compiled or plain Python (:mod:`sim.kernels`), chosen per run.

Both copies run the same source and give identical results. The compiled one is several times faster per
case, but importing numba and loading the compiled code from its on-disk cache costs about 0.4 s once per
process (and compiling it the first time on a machine, about 10 s). A small run does not earn that back, so
by default (``auto``) a run uses the compiled kernels when they are already loaded in this process, or when
its expected cases, added to those of the runs this process has made with plain Python, reach
:data:`COMPILE_FROM_CASES`; otherwise plain Python. So one small run stays plain, a large run is compiled,
and a process making many small runs (an experiment's worker, a calibration) switches to the compiled
kernels once their start-up has paid for itself.

The environment variable ``WENZHENG_COMPILE`` overrides the choice: ``1`` (always compiled), ``0`` (always
plain Python), ``auto`` (the default). Without numba installed every run uses plain Python, and ``1`` is
an error.
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
    """``WENZHENG_COMPILE`` as given: ``0``, ``1`` or ``auto`` (unset means ``auto``)."""
    value = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if value not in ("0", "1", "auto"):
        raise WenzhengError(f"environment variable {ENV}={value!r}: allowed are 0 (plain Python kernels), "
                            "1 (numba-compiled kernels) and auto (compiled from "
                            f"{COMPILE_FROM_CASES:,} expected cases)")
    if value == "1" and not numba_available():
        raise WenzhengError(f"environment variable {ENV}=1 asks for numba-compiled kernels, but numba is not "
                            "installed (pip install numba, or set it to auto)")
    return value


def compiled_loaded() -> bool:
    """Whether the compiled kernels are already loaded in this process (then they cost nothing more)."""
    return _COMPILED in sys.modules


_plain_cases = 0  # expected cases of the runs this process has made with the plain kernels under auto


def use_compiled(expected_cases: int) -> bool:
    """Whether a run expecting ``expected_cases`` cases uses the compiled kernels (see the module's text);
    a run told False is counted towards the switch."""
    global _plain_cases
    value = setting()
    if value != "auto":
        return value == "1"
    if not numba_available():
        return False
    if compiled_loaded() or _plain_cases + expected_cases >= COMPILE_FROM_CASES:
        return True
    _plain_cases += int(expected_cases)
    return False


def kernels(compiled: bool) -> ModuleType:
    """The kernels module: ``sim._kernels_compiled`` (numba) or ``sim.kernels`` (plain Python)."""
    if not compiled:
        from . import kernels as plain

        return plain
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

