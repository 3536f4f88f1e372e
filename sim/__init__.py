"""Wenzheng (问政): the model of one city's online inquiry platform.

Public interface (used by ``experiments``, ``analysis``, ``run.py`` and ``app.py``)::

    from sim import load_scenario, run_scenario
    scenario = load_scenario("scenarios/zzic.yaml", ["policy.response_mandate_hours=24"])
    result = run_scenario(scenario, seed=7)      # RunResult: cases, timeseries, summary, groups, meta

``sim`` never touches files other than scenario YAML, and never plots.
"""

from .errors import WenzhengError
from .results import CASE_COLUMNS, CASE_STATUSES, KPI_NAMES, KPI_UNITS, RunResult
from .scenario import Scenario, ScenarioError, load_scenario, parse_overrides, validate

__all__ = [
    "CASE_COLUMNS", "CASE_STATUSES", "KPI_NAMES", "KPI_UNITS", "GovernanceModel", "RunResult", "Scenario",
    "ScenarioError", "WenzhengError", "load_scenario", "parse_overrides", "run_scenario", "validate",
]
__version__ = "0.1.0"


def __getattr__(name: str):
    # The model is imported on first use, so that reading a scenario (and reporting its errors) stays quick.
    if name in ("GovernanceModel", "run_scenario"):
        from . import model

        return getattr(model, name)
    raise AttributeError(f"module 'sim' has no attribute {name!r}")
