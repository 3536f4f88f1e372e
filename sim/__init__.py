"""Wenzheng (问政): the model of one city's online inquiry platform.

Public interface (used by ``experiments``, ``analysis``, ``run.py`` and ``app.py``)::

    from sim import load_scenario, run_scenario
    scenario = load_scenario("scenarios/zzic.yaml", ["policy.response_mandate_hours=24"])
    result = run_scenario(scenario, seed=7)      # RunResult: cases, timeseries, summary, groups, meta

``sim`` never touches files other than scenario YAML, and never plots.
"""

from .errors import WenzhengError

__all__ = [
    "CASE_COLUMNS", "CASE_STATUSES", "KPI_NAMES", "KPI_UNITS", "GovernanceModel", "RunResult", "Scenario",
    "ScenarioError", "WenzhengError", "load_scenario", "parse_overrides", "run_scenario", "validate",
]
__version__ = "0.1.0"

#: Where each public name lives. Everything but the error base class is imported on first use, so that
#: ``import sim`` (and ``python run.py --help``) does not pay for pandas, pydantic or the model.
_LAZY = {
    "CASE_COLUMNS": "results", "CASE_STATUSES": "results", "KPI_NAMES": "results", "KPI_UNITS": "results",
    "RunResult": "results", "Scenario": "scenario", "ScenarioError": "scenario", "load_scenario": "scenario",
    "parse_overrides": "scenario", "validate": "scenario", "GovernanceModel": "model", "run_scenario": "model",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sim' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
