"""What one run hands back: in-memory tables and the KPI contract.

Described for users in README.md ("Outputs of one run") and docs/ODD.md (III.i, III.iv.20).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import pandas as pd

#: KPI names, the same everywhere (summary.json, the experiment store, analysis). Units in KPI_UNITS,
#: definitions in KPI_DOCS and docs/ODD.md (III.iv.20).
KPI_NAMES: tuple[str, ...] = (
    "response_rate", "on_time_response_rate", "resolution_rate", "true_resolution_rate", "gaming_gap",
    "dispatched_resolution_rate", "dispatched_true_resolution_rate", "satisfaction_rate",
    "median_response_h", "p90_response_h", "median_close_h", "p90_close_h", "on_time_close_rate",
    "reopen_rate", "escalation_rate", "perfunctory_share", "backlog_end", "mean_trust",
    "participation_rate", "digital_gap", "direct_answer_share",
    "repeat_share", "repeat_true_resolution_rate", "repeat_satisfaction_rate", "median_relay_h", "relay_wait_h",
    "capacity_hours_departments", "capacity_hours_operators", "capacity_hours_supervisors", "capacity_hours",
    "work_hours_departments", "work_hours_operators", "work_hours_supervisors", "work_hours",
    "utilisation_departments", "utilisation_operators", "utilisation_supervisors", "cost_hours",
)

KPI_UNITS: dict[str, str] = {
    "response_rate": "share of cases", "on_time_response_rate": "share of cases",
    "resolution_rate": "share of final cases", "true_resolution_rate": "share of final cases",
    "gaming_gap": "share points (recorded − true resolution)",
    "dispatched_resolution_rate": "share of final dispatched cases",
    "dispatched_true_resolution_rate": "share of final dispatched cases",
    "satisfaction_rate": "share of judged cases",
    "median_response_h": "hours", "p90_response_h": "hours", "median_close_h": "hours",
    "p90_close_h": "hours", "on_time_close_rate": "share of cases", "reopen_rate": "share of cases",
    "escalation_rate": "share of cases", "perfunctory_share": "share of replied cases",
    "backlog_end": "open cases", "mean_trust": "0–1", "participation_rate": "share of problems",
    "digital_gap": "share points (urban − rural online share)",
    "direct_answer_share": "share of accepted cases",
    "repeat_share": "share of cases", "repeat_true_resolution_rate": "share of final repeat cases",
    "repeat_satisfaction_rate": "share of judged repeat cases", "median_relay_h": "hours", "relay_wait_h": "hours",
    **{f"capacity_hours_{r}": "staff-hours" for r in ("departments", "operators", "supervisors")},
    "capacity_hours": "staff-hours",
    **{f"work_hours_{r}": "staff-hours" for r in ("departments", "operators", "supervisors")},
    "work_hours": "staff-hours",
    "utilisation_departments": "share of server-hours", "utilisation_operators": "share of paid hours",
    "utilisation_supervisors": "share of paid hours",
    "cost_hours": "staff-hours",
}

#: One line per KPI: what it counts. "Final" cases are closed or abandoned; every KPI is over the cases
#: created after the warm-up, and the hour KPIs over the hours after the warm-up.
KPI_DOCS: dict[str, str] = {
    "response_rate": "cases with a first response (sign-for or reply), of all cases",
    "on_time_response_rate": "cases with a first response within kpi.response_target_h, of all cases",
    "resolution_rate": "recorded: final cases the platform records as resolved (what a government reports), "
                       "of final cases",
    "true_resolution_rate": "final cases whose problem was actually solved, of final cases",
    "gaming_gap": "resolution_rate − true_resolution_rate: cases recorded as resolved but not solved",
    "dispatched_resolution_rate": "recorded resolution of the final cases dispatched to departments (cases "
                                  "answered at intake left out, as in Beijing's published rates)",
    "dispatched_true_resolution_rate": "true resolution of the final cases dispatched to departments",
    "satisfaction_rate": "satisfied judgements, of cases the requester judged",
    "median_response_h": "median hours from creation to first response (responded cases)",
    "p90_response_h": "90th percentile of hours from creation to first response",
    "median_close_h": "median hours from creation to closure (closed cases)",
    "p90_close_h": "90th percentile of hours from creation to closure",
    "on_time_close_rate": "cases closed by their due time, of cases closed or past due at the end",
    "reopen_rate": "cases reopened at least once, of all cases",
    "escalation_rate": "cases escalated to an upper level, of all cases",
    "perfunctory_share": "perfunctory replies, of replied cases not answered at intake",
    "backlog_end": "cases still open at the end of the run",
    "mean_trust": "mean trust in government of all requesters at the end",
    "participation_rate": "problems reported, of problems that arose",
    "digital_gap": "urban minus rural share of cases reported online",
    "direct_answer_share": "cases answered at intake, of accepted cases",
    "repeat_share": "repeat reports (a problem reported again after an earlier case left it unsolved), of all "
                    "cases",
    "repeat_true_resolution_rate": "true resolution of the final repeat cases",
    "repeat_satisfaction_rate": "satisfied judgements, of repeat cases the requester judged",
    "median_relay_h": "median hours from dispatch to arrival at the handling department, of cases that passed "
                      "at least one relay (cascade dispatch; NaN when none did)",
    "relay_wait_h": "mean hours an order waited at a relay, from reaching it to the start of its registration "
                    "(NaN when no relay worked)",
    "capacity_hours_departments": "paid hours of department staff: staff × hours the departments are open",
    "capacity_hours_operators": "paid hours of operators: operators × hours the platform is open (7×24: every hour)",
    "capacity_hours_supervisors": "paid hours of supervisors: daily inspection budget × hours per inspection",
    "capacity_hours": "paid hours of all roles",
    "work_hours_departments": "hours departments spent: service time of properly handled cases and perfunctory "
                              "replies",
    "work_hours_operators": "hours operators spent: intake handling and call-backs",
    "work_hours_supervisors": "hours supervisors spent on inspections and audits",
    "work_hours": "hours spent by all roles",
    "utilisation_departments": "work_hours_departments (server occupancy) / (department staff × all hours)",
    "utilisation_operators": "work_hours_operators / capacity_hours_operators",
    "utilisation_supervisors": "work_hours_supervisors / capacity_hours_supervisors",
    "cost_hours": "everything paid: capacity_hours of all roles",
}

#: Columns of cases.parquet (times in hours since the start of the run; NaN where a step did not happen).
CASE_COLUMNS: tuple[str, ...] = (
    "case_id", "citizen_id", "requester_kind", "category", "channel", "region", "county", "urban",
    "handling_level", "department", "created_h", "accepted_h", "dispatched_h", "dept_arrival_h",
    "first_response_h", "service_start_h", "replied_h", "closed_h", "due_h", "true_resolved",
    "recorded_resolved", "perfunctory", "satisfied", "supervised", "escalated", "reopened", "tattle",
    "direct_answer", "misrouted", "hops", "bounced", "status", "holder", "repeat_of",
)

#: Final states of a case; every case is in exactly one of them at the end of a run.
CASE_STATUSES: tuple[str, ...] = (
    "closed", "abandoned", "awaiting_intake", "in_transit", "queued", "neglected", "in_service",
    "awaiting_callback",
)


#: Rows per piece when a cases table is handed out in pieces (:meth:`RunResult.case_chunks`).
CHUNK_ROWS = 250_000


class CaseSource(Protocol):
    """Where a result's cases table comes from when it is not held as one frame (the finished run's case
    store, :mod:`sim.metrics`): the whole table at once, or its rows in order, a piece at a time."""

    def __len__(self) -> int: ...

    def frame(self) -> pd.DataFrame: ...

    def chunks(self, rows: int, copy: bool = False) -> Iterator[pd.DataFrame]: ...


class RunResult:
    """In-memory result of one run.

    ``cases``: one row per reported case (CASE_COLUMNS). ``timeseries``: one row per simulated day.
    ``summary``: KPI name -> value (floats; NaN when undefined). ``groups``: the KPIs split by requester
    kind, channel, urban/rural region and handling level, and the queue waits of departments and relays by
    level, long (columns ``group_by, group, kpi, value``).
    ``meta``: seed, scenario name and fingerprint, versions, timings.

    A finished run's result reads its cases from the case store (``source``): ``cases`` builds the whole
    table on first use, while :meth:`case_chunks` hands it out a piece at a time without ever holding it
    whole (for writers and anything that can work piece by piece: a city-year's table is over 400 MB).
    """

    def __init__(self, cases: pd.DataFrame | None = None, timeseries: pd.DataFrame | None = None,
                 summary: dict[str, float] | None = None, groups: pd.DataFrame | None = None,
                 meta: dict[str, Any] | None = None, source: CaseSource | None = None) -> None:
        if cases is None and source is None:
            raise ValueError("a RunResult needs its cases table or a source of it")
        self._cases = cases
        self._source = source
        self._sink_note = ""  # where the cases went when a case sink took them (take_source)
        self.timeseries = timeseries if timeseries is not None else pd.DataFrame()
        self.summary = dict(summary or {})
        self.groups = groups if groups is not None else pd.DataFrame(columns=["group_by", "group", "kpi", "value"])
        self.meta = dict(meta or {})

    @property
    def cases(self) -> pd.DataFrame:
        """The whole cases table (built from the source on first use, then kept)."""
        if self._cases is None:
            if self._source is None:
                raise ValueError(self._sink_note)
            self._cases = self._source.frame()
        return self._cases

    @cases.setter
    def cases(self, frame: pd.DataFrame) -> None:
        self._cases = frame

    @property
    def n_cases(self) -> int:
        """Rows of the cases table (without building it)."""
        if self._cases is not None:
            return len(self._cases)
        return len(self._source) if self._source is not None else int(self.meta["cases"])

    def take_source(self) -> CaseSource:
        """Remove the source of the cases table from this result and return it (a model with a case sink
        hands the rest of its table to the sink so): from then on the result has no cases table, and asking
        for it is an error that says where the table went."""
        if self._source is None:
            raise ValueError("this result has no case source to take")
        src, self._source = self._source, None
        self._sink_note = ("this run's cases table went to its case sink during the run (run_scenario's "
                           "case_sink, e.g. the cases.parquet writer of run.py run); the result keeps only "
                           "the KPIs, splits and time series")
        return src

    def case_chunks(self, rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
        """The cases table in pieces of at most ``rows`` rows, in order, with the same columns and dtypes
        (categories included) in every piece; an empty table gives one empty piece. Concatenated, the pieces
        are :attr:`cases`."""
        if rows < 1:
            raise ValueError(f"rows must be at least 1, not {rows}")
        if self._cases is None:
            if self._source is None:
                raise ValueError(self._sink_note)
            yield from self._source.chunks(rows)
            return
        n = len(self._cases)
        for lo in range(0, max(n, 1), rows):
            yield self._cases.iloc[lo: lo + rows]

    def __repr__(self) -> str:
        return (f"RunResult({self.n_cases:,} cases, {len(self.timeseries)} days, {len(self.summary)} KPIs, "
                f"meta={sorted(self.meta)})")
