"""Wenzheng (问政): the model of one city's online inquiry platform.

Public interface (used by ``experiments``, ``analysis``, ``run.py`` and ``app.py``)::

    from sim import load_scenario, run_scenario
    scenario = load_scenario("scenarios/zzic.yaml", ["policy.response_mandate_hours=24"])
    result = run_scenario(scenario, seed=7)      # RunResult: cases, timeseries, summary, groups, meta

``sim`` never touches files other than scenario YAML, and never plots.
"""

from .model import GovernanceModel, run_scenario
from .results import CASE_COLUMNS, CASE_STATUSES, KPI_NAMES, KPI_UNITS, RunResult
from .errors import WenzhengError
from .scenario import Scenario, ScenarioError, load_scenario, parse_overrides, validate

__all__ = [
    "CASE_COLUMNS", "CASE_STATUSES", "KPI_NAMES", "KPI_UNITS", "GovernanceModel", "RunResult", "Scenario",
    "ScenarioError", "WenzhengError", "load_scenario", "parse_overrides", "run_scenario", "validate",
]
__version__ = "0.1.0"
