"""What one run hands back: in-memory tables and the KPI contract.

Described for users in README.md ("Outputs of one run") and docs/ODD.md (III.i, III.iv.20).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

#: KPI names, the same everywhere (summary.json, the experiment store, analysis). Units in KPI_UNITS.
KPI_NAMES: tuple[str, ...] = (
    "response_rate", "on_time_response_rate", "resolution_rate", "satisfaction_rate",
    "median_response_h", "p90_response_h", "median_close_h", "p90_close_h", "on_time_close_rate",
    "reopen_rate", "escalation_rate", "perfunctory_share", "backlog_end", "mean_trust",
    "participation_rate", "digital_gap", "staff_hours", "direct_answer_share",
)

KPI_UNITS: dict[str, str] = {
    "response_rate": "share of cases", "on_time_response_rate": "share of cases",
    "resolution_rate": "share of cases", "satisfaction_rate": "share of judged cases",
    "median_response_h": "hours", "p90_response_h": "hours", "median_close_h": "hours",
    "p90_close_h": "hours", "on_time_close_rate": "share of cases", "reopen_rate": "share of cases",
    "escalation_rate": "share of cases", "perfunctory_share": "share of replied cases",
    "backlog_end": "open cases", "mean_trust": "0–1", "participation_rate": "share of problems",
    "digital_gap": "share points (urban − rural online share)", "staff_hours": "staff-hours",
    "direct_answer_share": "share of accepted cases",
}

#: Columns of cases.parquet (times in hours since the start of the run; NaN where a step did not happen).
CASE_COLUMNS: tuple[str, ...] = (
    "case_id", "citizen_id", "requester_kind", "category", "channel", "region", "county", "urban",
    "handling_level", "department", "created_h", "accepted_h", "dispatched_h", "dept_arrival_h",
    "first_response_h", "service_start_h", "replied_h", "closed_h", "due_h", "resolved", "perfunctory",
    "satisfied", "supervised", "escalated", "reopened", "tattle", "direct_answer", "misrouted", "hops",
    "status",
)

#: Final states of a case; every case is in exactly one of them at the end of a run.
CASE_STATUSES: tuple[str, ...] = (
    "closed", "abandoned", "awaiting_intake", "in_transit", "queued", "neglected", "in_service",
    "awaiting_callback",
)


@dataclass
class RunResult:
    """In-memory result of one run.

    ``cases``: one row per reported case (CASE_COLUMNS). ``timeseries``: one row per simulated day.
    ``summary``: KPI name -> value (floats; NaN when undefined). ``groups``: the KPIs split by requester
    kind, channel and urban/rural region, long (columns ``group_by, group, kpi, value``).
    ``meta``: seed, scenario name and fingerprint, versions, timings.
    """

    cases: pd.DataFrame
    timeseries: pd.DataFrame
    summary: dict[str, float]
    groups: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["group_by", "group", "kpi", "value"]))
    meta: dict[str, Any] = field(default_factory=dict)
