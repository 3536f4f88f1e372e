"""The policy levers planners pull, one small object each, with the hooks the mechanisms call.

This is the only module of the model that reads ``scenario.policy`` (a test reads the sources to keep it
so): the lifecycle, the platform, the departments and the supervisors ask a lever what to do, never
the policy settings themselves. A lever changes outcomes only through what its hooks make happen in a
run: a sign-for recorded, a reminder scheduled, a call-back made, an inspection, a ranking, a fix.

No lever carries a detection constant: whether a department is caught depends on what the observers
(tracking, inspections and audits, call-backs, the ranking, citizens' escalations) actually see in the run,
and departments learn the chance of being caught from their own record (:mod:`sim.departments`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from .scenario import DispatchMode, Hours, Scenario


def always_open(hours: Hours) -> bool:
    """True for 7×24 service, False for office hours (the one place ``Hours`` is told apart)."""
    return hours == Hours.ALWAYS


#: the time (h) given as the sign-for deadline of a case created when no mandate was in force, in a run whose
#: timeline changes the mandate: its sign-for event is parked beyond any run and never handled
NO_DEADLINE = 1e18


@dataclass(frozen=True)
class ResponseMandate:
    """A sign-for deadline (e.g. 24 hours from the request): a department may sign for (签收) a case at once;
    a case not signed for by the deadline is a violation (``UNSIGNED``) that tracking flags and that counts
    as overdue for inspection. Nothing else: without an observer the deadline costs nothing.

    A case keeps the mandate in force when it was created: after a timeline changes the mandate
    (:meth:`then`), ``hours`` applies to cases created from ``since_h`` on and ``earlier`` to those before."""

    hours: float | None
    since_h: float = 0.0
    earlier: ResponseMandate | None = None

    @property
    def active(self) -> bool:
        """A mandate is in force now (for new cases)."""
        return self.hours is not None

    def then(self, hours: float | None, since_h: float) -> ResponseMandate:
        """The mandate after a change at ``since_h`` (h) to ``hours``: cases created before keep this one."""
        if hours == self.hours:
            return self
        return ResponseMandate(hours, since_h, self)

    def hours_for(self, created: np.ndarray) -> np.ndarray:
        """The mandate's hours for each case by its creation time (h); NaN where no mandate applies."""
        out = np.full(len(created), np.nan if self.hours is None else float(self.hours))
        older = created < self.since_h
        if self.earlier is not None and older.any():
            out[older] = self.earlier.hours_for(created[older])
        return out

    def covers(self, created: np.ndarray) -> np.ndarray:
        """Which cases (by creation time, h) have a sign-for deadline."""
        if self.earlier is None:
            return np.full(len(created), self.active)
        return ~np.isnan(self.hours_for(created))

    def deadline(self, created: np.ndarray) -> np.ndarray | None:
        """The sign-for deadline of each case (h), or None when no case has one; after a change of mandate,
        :data:`NO_DEADLINE` for a case created under none."""
        if self.earlier is None:
            if not self.active:
                return None
            return created + self.hours
        hours = self.hours_for(created)
        if np.isnan(hours).all():
            return None
        return np.where(np.isnan(hours), NO_DEADLINE, created + hours)

    def unsigned_past_deadline(self, created: np.ndarray, first_response: np.ndarray, now: float) -> np.ndarray:
        """Cases (by their created and first-response times, h) not signed for within the mandate by ``now``."""
        if self.earlier is None:
            if not self.active:
                return np.zeros(len(created), bool)
            return np.isnan(first_response) & (created + self.hours < now)
        return np.isnan(first_response) & (created + self.hours_for(created) < now)  # NaN: no mandate, False


@dataclass(frozen=True)
class Tracking:
    """Deadline tracking (跟踪): a reminder to the department ``lead_h`` hours before a case is due, and a flag
    against the department for every deadline it lets pass (reply due, sign-for under a mandate) and every
    order it returns without cause. Lateness is visible; a reply's content is not."""

    on: bool
    lead_h: float

    def reminder_times(self, due: np.ndarray, created: np.ndarray) -> np.ndarray | None:
        """When to remind (h; at least an hour after creation), or None without tracking."""
        if not self.on:
            return None
        return np.maximum(due - self.lead_h, created + 1.0)


@dataclass(frozen=True)
class CallBack:
    """The call-back survey after a reply, and whether an unsatisfied requester may have the case reopened."""

    on: bool
    reopen_allowed: bool
    max_reopens: int

    def may_reopen(self, reopen_count: np.ndarray) -> np.ndarray | None:
        """Which cases may still be reopened (None: reopening is not allowed at all)."""
        if not self.reopen_allowed:
            return None
        return reopen_count < self.max_reopens


@dataclass(frozen=True)
class Inspection:
    """Supervision (督办): one office's daily inspection budget, in cases per day (may be fractional)."""

    intensity: float

    def inspections_today(self, rng: np.random.Generator) -> int:
        """Today's inspections: the intensity, with its fraction rounded at random (one draw every day)."""
        k = self.intensity
        return int(k) + int(rng.random() < k - int(k))


@dataclass(frozen=True)
class PublicRanking:
    """A public ranking of departments on the three rates every ``period_days`` days."""

    on: bool
    period_days: int = 30

    def due(self, day: int) -> bool:
        """Whether the ranking is published at the end of simulated ``day`` (counted from 0)."""
        return self.on and (day + 1) % self.period_days == 0


@dataclass(frozen=True)
class SystemicFix:
    """Aggregation of repeated complaints: ``threshold`` complaints of one (category, township) within
    ``window_days`` start a fix that lowers that problem's rate by ``effect`` for ``duration_days``."""

    on: bool
    threshold: int
    window_days: int
    effect: float
    duration_days: int

    def triggered(self, window_counts: np.ndarray, fix_until: np.ndarray, day: int) -> np.ndarray | None:
        """(category, township) cells where a fix starts today, or None when fixes are off."""
        if not self.on:
            return None
        return (window_counts >= self.threshold) & (fix_until < day)

    def rate_factor(self, fix_until: np.ndarray, day: float) -> np.ndarray:
        """Factor on each cell's problem rate from the fixes in force on ``day``."""
        return np.where(fix_until >= day, 1.0 - self.effect, 1.0)


@dataclass(frozen=True)
class Levers:
    """All levers of one scenario."""

    mandate: ResponseMandate
    tracking: Tracking
    callback: CallBack
    inspection: Inspection
    county_inspection: Inspection
    upper_inspection: Inspection
    ranking: PublicRanking
    systemic_fix: SystemicFix
    dispatch_mode: DispatchMode
    platform_always_open: bool

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> Levers:
        pol = scenario.policy
        return cls(
            mandate=ResponseMandate(pol.response_mandate_hours),
            tracking=Tracking(pol.tracking, pol.reminder_lead_h),
            callback=CallBack(pol.callback, pol.reopen_allowed, pol.max_reopens),
            inspection=Inspection(pol.supervision_intensity),
            county_inspection=Inspection(pol.county_supervision_intensity),
            upper_inspection=Inspection(pol.upper_supervision_intensity),
            ranking=PublicRanking(pol.public_ranking),
            systemic_fix=SystemicFix(pol.systemic_fix, pol.systemic_fix_threshold, pol.systemic_fix_window_days,
                                     pol.systemic_fix_effect, pol.systemic_fix_duration_days),
            dispatch_mode=pol.dispatch_mode,
            platform_always_open=always_open(pol.platform_hours),
        )

    def then(self, new: Levers, since_h: float) -> Levers:
        """The levers after a policy change at ``since_h`` (h) to ``new``: every lever is the new one, except
        that the mandate keeps, for cases created before ``since_h``, the mandate they were created under."""
        return dataclasses.replace(new, mandate=self.mandate.then(new.mandate.hours, since_h))


@dataclass(frozen=True)
class PolicyChange:
    """One entry of a scenario's ``timeline``, resolved: from hour ``24 × day`` (before that hour's new cases)
    the policy is ``scenario.policy`` (the policy in force with ``changes`` applied), whose levers are
    ``levers`` (built as at set-up, :meth:`Levers.from_scenario`)."""

    day: int
    changes: dict[str, Any]
    scenario: Scenario
    levers: Levers

    @property
    def hour(self) -> float:
        return self.day * 24.0

    def record(self, start_date: str) -> dict[str, Any]:
        """A plain record of the change for the run's meta: day, date, hour, keys and values."""
        date = dt.date.fromisoformat(start_date) + dt.timedelta(days=self.day)
        values = {k: (v.value if isinstance(v, Enum) else v) for k, v in sorted(self.changes.items())}
        return {"day": self.day, "date": date.isoformat(), "hour": self.hour, "keys": sorted(self.changes),
                "set": values}


def policy_timeline(scenario: Scenario) -> list[PolicyChange]:
    """The scenario's ``timeline`` as changes in date order, each with the whole policy in force from its day
    (changes accumulate: a key keeps the value last set)."""
    out = []
    current = scenario
    for day, changes in scenario.policy_changes():
        current = current.with_policy(changes)
        out.append(PolicyChange(day, changes, current, Levers.from_scenario(current)))
    return out
