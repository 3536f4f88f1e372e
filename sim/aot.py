"""The kernels compiled ahead of time: :mod:`sim.kernels` built once into a C extension module by numba's
``pycc``, so that a run gets compiled kernels without importing numba (about 0.4 s a process with the
just-in-time copy, :mod:`sim.jit`).

``python -m sim.aot build`` compiles the kernels named in :data:`EXPORTS`, with the argument types listed
there, into ``sim/_kaot_<digest>.<platform suffix>``; the digest is of ``sim/kernels.py``, of
:data:`EXPORTS` and of the processor (:func:`cpu_identity`), so an edit to either makes the built module stale
(it is then ignored, and the next build replaces it). Where the processor is known (Linux), the module is
compiled for it, as numba's just-in-time copy is (``target_cpu = "host"``: its vector instructions; about 3 %
less time for a 30-day default run than the generic target); a checkout moved to another processor then finds
no module for its own and builds one. Elsewhere the module is compiled for the generic target of the
architecture. ``make`` builds it after installing the environment and again whenever ``sim/kernels.py``
changes. Building needs numba, setuptools and a C compiler; without them it says so and the runs use the
just-in-time or the plain kernels as before.

The built functions read raw memory: an array of another type than the one compiled would be read wrongly.
So each kernel is called through a wrapper (:func:`load`) that checks its arrays' types and dimensions
against the compiled signatures (about 0.1 µs per array argument) and raises :class:`TypeError` on a
mismatch. The code is the same source as the other two copies, compiled by the same compiler, so the
results are the same (the tests run all three).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.machinery
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np

_HERE = Path(__file__).parent
_SOURCE = _HERE / "kernels.py"
PREFIX = "_kaot_"

#: Each kernel called from outside :mod:`sim.kernels`, with the argument types it is compiled for (numba
#: type names; arrays of any layout). A kernel with two lists is compiled twice (citizen ids come as int32
#: from the population's tables and as int64 from the cases').
EXPORTS: dict[str, list[str]] = {
    "action_utilities": [
        "int64[:], int32[:], boolean[:], boolean[:], int8[:], float64[:], int64[:], boolean[:], float64[:, :, :], "
        "float64[:, :, :], float64[:], float64[:], int64, int64, int64, float64, float64, float64, float64, float64, "
        "int64, float64"],
    "advance_all": [
        "float64, boolean[:], int64[:], int64[:], float64[:], float64[:], float64[:, :], int8[:], int64[:], int64[:], "
        "float64[:], float64[:, :], int64[:], int64[:], int64[:], float64[:], int64[:], int8[:], int64[:], boolean, "
        "boolean[:], float64[:]"],
    "agenda_file": [
        "int64, float64[:], int64[:], int64[:, :, :], int64[:, :], float64[:, :], int64[:], int64[:], int64[:]"],
    "agenda_min_id": ["int64, int64[:, :, :], int64[:, :], int64[:], int64[:]"],
    "agenda_take": ["int64, int64[:, :, :], int64[:, :], float64[:, :], int64[:], int64[:], int64[:], int64[:]"],
    "bring_up_args": ["int32[:], float64[:], float64, float64"],
    "channel_choice": [
        "int64[:], boolean[:], int8[:], float64[:, :], float64, float64[:, :]",
        "int32[:], boolean[:], int8[:], float64[:, :], float64, float64[:, :]"],
    "decay_args": ["int64[:], float64[:], float64, float64", "int32[:], float64[:], float64, float64"],
    "escalate_decide": [
        "int64[:], int32[:], float64[:], float64[:], float64[:], int8[:], boolean[:], boolean[:], float64[:], "
        "float64[:], float64, float64, float64"],
    "judge_args": ["int64[:], float64[:], float64[:], float64"],
    "judge_scores": ["int64[:], float64[:], float64[:], boolean[:], boolean[:], float64, float64, float64, float64, "
                     "float64"],
    "learn_distinct": [
        "int32[:], float64[:], float64[:], boolean[:], boolean[:], float64, float64, float64[:], float64[:], "
        "float64[:], float64[:], float64[:], float64[:], int8[:], int8[:]"],
    "overdue_unreplied": ["int64[:], int8[:], float64[:], float64[:], float64, int64, int64"],
    "prepare_arrivals": [
        "int64[:], int64[:], float64[:], float64[:], float64[:], int8[:], int64[:], int64, int64[:], int64[:], "
        "boolean[:]"],
    "raise_all": [
        "int64[:], int64[:], float64[:], float64[:], int8[:], float64[:], int64[:], float64[:, :], int64[:], "
        "int64[:], int64[:], int64[:], int8[:], int64[:]"],
    "rekey": ["int64, int64, float64[:], int8[:], float64[:, :], int64[:], int64[:], int64[:], int64[:], int8[:], "
              "int64[:]"],
    "relax_and_shift": [
        "int32[:], float64[:], float64[:], float64[:], float64[:], float64[:], float64[:], float64[:], int32[:], "
        "float64[:]"],
    "remove_all": ["int64[:], int64[:], int64[:], int64[:]"],
    "report_exponents": [
        "int64[:], float64[:], int8[:], float64[:], float64[:], float64, float64, float64, float64[:], float64[:], "
        "float64[:], float64[:]",
        "int32[:], float64[:], int8[:], float64[:], float64[:], float64, float64, float64, float64[:], float64[:], "
        "float64[:], float64[:]"],
    "run_step": [
        "float64, int64[:], int64[:], float64[:], float64[:], float64[:], int8[:], int64[:], int64, int64[:], "
        "boolean[:], int64[:], int64[:], float64[:], float64[:, :], int64[:], int64[:], int64[:], float64[:], "
        "int64[:], int8[:], int64[:], boolean, boolean[:], float64[:]"],
    "supervision_candidates": [
        "int64[:], float64, int8[:], int8[:], float64[:], boolean[:], float64[:], int32[:], boolean[:], int64, "
        "int64"],
    "unsigned_exponent": [
        "int64[:], int32[:], boolean[:], boolean[:], float64[:, :, :], float64[:, :, :], int64, float64, float64"],
}

_DTYPES = {"int64": np.dtype(np.int64), "int32": np.dtype(np.int32), "int8": np.dtype(np.int8),
           "float64": np.dtype(np.float64), "boolean": np.dtype(np.bool_)}


def _parse(sig: str) -> list[tuple[np.dtype, int] | None]:
    """Argument types of a signature: (dtype, dimensions) for an array, None for a scalar."""
    out: list[tuple[np.dtype, int] | None] = []
    for part in sig.replace(", :", ",:").split(", "):
        name, _, dims = part.partition("[")
        out.append((_DTYPES[name], dims.count(":")) if dims else None)
    return out


#: Where :func:`cpu_identity` reads the processor (Linux).
CPUINFO = Path("/proc/cpuinfo")


def cpu_identity() -> str | None:
    """The processor the kernels are compiled for: the vendor, model name and instruction-set flags of the first
    processor in :data:`CPUINFO` (``None`` where there is none, or it does not say: the module is then compiled
    for the architecture's generic target). Read once per process (about 0.1 ms)."""
    try:
        text = CPUINFO.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    first = text.split("\n\n", 1)[0]
    fields = {}
    for line in first.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    keep = [fields.get(k, "") for k in ("vendor_id", "model name", "flags", "Features", "CPU implementer", "CPU part")]
    return "|".join(keep) if any(keep) else None


@functools.cache
def digest() -> str:
    """The first 16 hex digits of the SHA-256 of ``sim/kernels.py``, :data:`EXPORTS` and the processor
    (:func:`cpu_identity`): the built module's name carries it, so a built module whose source has changed, or
    that was compiled for another processor, is not found."""
    h = hashlib.sha256(_SOURCE.read_bytes())
    h.update(repr(sorted(EXPORTS.items())).encode())
    h.update(repr(cpu_identity()).encode())
    return h.hexdigest()[:16]


def module_name() -> str:
    """The built module's name for the current source (``_kaot_<digest>``)."""
    return PREFIX + digest()


def built_path() -> Path | None:
    """The built module for the current source, if there is one."""
    name = module_name()
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = _HERE / (name + suffix)
        if path.exists():
            return path
    return None


def _wrapper(name: str, fns: list[object], parsed: list[list], ns: dict) -> object:
    """A Python function that checks its array arguments against each compiled signature (``parsed`` by
    :func:`_parse`) in turn and calls the first that fits; :class:`TypeError` naming the kernel when none does."""
    n = len(parsed[0])
    args = ", ".join(f"a{i}" for i in range(n))
    lines = [f"def {name}({args}):"]
    for k, (fn, types) in enumerate(zip(fns, parsed, strict=True)):
        checks = []
        for i, t in enumerate(types):
            if t is not None:
                ns[f"_{name}_d{k}_{i}"] = t[0]
                checks.append(f"type(a{i}) is _nd and a{i}.dtype == _{name}_d{k}_{i} and a{i}.ndim == {t[1]}")
        ns[f"_{name}_f{k}"] = fn
        lines.append(f"    if {' and '.join(checks) or 'True'}:")
        lines.append(f"        return _{name}_f{k}({args})")
    lines.append(f"    return _slow({name!r}, ({args},))")
    exec("\n".join(lines), ns)  # noqa: S102 - code generated above from EXPORTS
    return ns[name]


def _slow_call(table: dict[str, list[tuple[object, list]]]):
    """The wrappers' path when no signature fitted at once: arrays of an ndarray subclass are taken if their type
    fits (native byte order, aligned); anything else is a :class:`TypeError` naming the kernel, the arguments'
    types and the compiled signatures."""
    def slow(name: str, args: tuple) -> object:
        for fn, types in table[name]:
            if all(t is None or (isinstance(a, np.ndarray) and a.dtype == t[0] and a.dtype.isnative
                                 and a.ndim == t[1] and a.flags.aligned)
                   for a, t in zip(args, types, strict=True)):
                return fn(*args)
        got = ", ".join(f"{a.dtype}[{a.ndim}d]" if isinstance(a, np.ndarray) else type(a).__name__ for a in args)
        raise TypeError(f"compiled kernel {name}: no compiled signature takes ({got}); compiled for "
                        + " or ".join(f"({s})" for s in EXPORTS[name]))
    return slow


def load() -> ModuleType | None:
    """The ahead-of-time kernels as a module with the interface of :mod:`sim.kernels` (``COMPILED`` true,
    its constants, each exported kernel behind a checking wrapper), or None when no module is built for the
    current source. A built module that cannot be loaded (built for another numpy, damaged) is a
    :class:`~sim.errors.WenzhengError` naming the file and the way out."""
    name = f"sim.{module_name()}"
    if name + ".kernels" in sys.modules:
        return sys.modules[name + ".kernels"]
    path = built_path()
    if path is None:
        return None
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        ext = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(ext)
        fns = {kernel: [getattr(ext, f"{kernel}__{k}") for k in range(len(sigs))] for kernel, sigs in EXPORTS.items()}
    except (ImportError, OSError, AttributeError) as exc:
        from .errors import WenzhengError

        raise WenzhengError(f"{path}: the kernels compiled ahead of time cannot be loaded ({exc}); delete the file "
                            "and rebuild them (make kernels), or set WENZHENG_COMPILE=1 or 0") from None
    from . import kernels as plain

    mod = ModuleType("sim.kernels_aot", "sim.kernels compiled ahead of time (sim.aot)")
    for key, value in vars(plain).items():  # the constants (ROW, FIFO, BLOCK, NO_ID, ...)
        if key.isupper():
            setattr(mod, key, value)
    mod.COMPILED = True
    ns: dict = {"_nd": np.ndarray}
    table = {}
    for kernel, sigs in EXPORTS.items():
        parsed = [_parse(s) for s in sigs]
        table[kernel] = list(zip(fns[kernel], parsed, strict=True))
        setattr(mod, kernel, _wrapper(kernel, fns[kernel], parsed, ns))
    ns["_slow"] = _slow_call(table)
    sys.modules[name + ".kernels"] = mod
    return mod


def build() -> Path:
    """Compile the kernels of :data:`EXPORTS` into ``sim/_kaot_<digest>`` unless it is built already (removing
    modules built for other sources); returns its path. Needs numba, setuptools and a C compiler; about 35 s."""
    existing = built_path()
    if existing is not None:
        return existing
    from numba.pycc import CC

    from .jit import kernels

    started = time.perf_counter()
    source = kernels("numba")  # the just-in-time copy: its dispatchers give the return types
    name = module_name()
    with tempfile.TemporaryDirectory(dir=_HERE, prefix=".aot-build-") as tmp:  # beside the target: one rename
        cc = CC(name)
        cc.output_dir = tmp
        cc.verbose = False
        if cpu_identity() is not None:  # compiled for this processor (the digest names it), as numba's JIT does
            cc.target_cpu = "host"
        for kernel, sigs in EXPORTS.items():
            dispatcher = getattr(source, kernel)
            for k, sig in enumerate(sigs):
                cc.export(f"{kernel}__{k}", _signature(dispatcher, sig))(dispatcher.py_func)
        cc.compile()
        built = next(Path(tmp).glob(name + "*"))
        target = _HERE / built.name
        os.replace(built, target)
    for old in _HERE.glob(PREFIX + "*"):
        if old != target:
            old.unlink()
    print(f"kernels compiled ahead of time in {time.perf_counter() - started:.1f} s: {target.name}")
    return target


def _signature(dispatcher, sig: str):
    """The full signature of a kernel for arguments ``sig``: the return type as numba infers it (compiling the
    kernel just in time)."""
    from numba.core import sigutils

    args, _ = sigutils.normalize_signature(sig)
    dispatcher.compile(args)
    return dispatcher.overloads[args].signature


def main(argv: list[str] | None = None) -> int:
    """``python -m sim.aot build``: build the module (a notice, exit 0, when numba, setuptools or a C compiler is
    missing, unless ``--strict``); ``python -m sim.aot status``: say whether one is built for the source."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in ("build", "status") or set(argv[1:]) - {"--strict"}:
        print("usage: python -m sim.aot build [--strict] | status", file=sys.stderr)
        return 2
    if argv[0] == "status":
        path = built_path()
        print(f"kernels compiled ahead of time: {path}" if path else
              f"kernels compiled ahead of time: none built for this source ({module_name()})")
        return 0 if path else 1
    try:
        build()
    except Exception as exc:  # noqa: BLE001 - reported, then the runs use the other kernels
        print(f"kernels not compiled ahead of time ({type(exc).__name__}: {exc}); runs use numba's just-in-time "
              "kernels or plain Python", file=sys.stderr)
        return 1 if "--strict" in argv else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
