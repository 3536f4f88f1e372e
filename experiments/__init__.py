"""Experiments: many runs of the model, paired by common random numbers, stored safely.

An experiment spec (YAML under ``experiments/``) names the scenarios to compare, the replications, the
simulated days and the master seed, and optionally a design over scenario parameters (grid, Latin
hypercube, Morris, Sobol). :func:`experiments.runner.run_experiment` turns it into runs, executes them on a
local process pool or a Dask cluster, and writes a result store (``manifest.json``, ``runs.parquet``,
``summary.parquet``, ``timeseries/part-*.parquet``, optional ``cases/``) that ``analysis`` reads::

    from experiments.runner import run_experiment, rerun
    outcome = run_experiment("experiments/reforms.yaml", workers=2)
    print(outcome.table)                      # KPI means with 95% CIs per scenario
    result = rerun(outcome.store_dir, "zzic__p0000__r002")   # one run again, bit for bit

``experiments`` imports ``sim`` and ``common`` (the store format, statistics, formatting); it never
imports ``analysis``.
"""

__all__ = ["ExperimentPlan", "SpecError", "StoreError", "load_spec", "replication_seeds"]

#: Where each public name lives; imported on first use, so that a command that needs one module of the
#: package (``run.py run`` writes one run with ``experiments.single``) does not load the spec machinery.
#: StoreError is the one StoreError of common.store, also analysis.StoreError.
_LAZY = {"ExperimentPlan": "spec", "SpecError": "spec", "load_spec": "spec", "replication_seeds": "spec",
         "StoreError": "store"}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'experiments' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
