"""The policy levers planners pull, one small object each, with the hooks the mechanisms call.

This is the only module of the model that reads ``scenario.policy`` (a test reads the sources to keep it
so): the lifecycle, the platform, the departments and the supervisors ask a lever what to do, never
the policy settings themselves. A lever changes outcomes only through what its hooks make happen in a
run: a sign-for recorded, a reminder scheduled, a call-back made, an inspection, a ranking, a fix.

``expected_detection`` of a lever is the chance a department expects that a violation is noticed while
that lever is in force (a probability, 0–1); the departments' effort choice adds them up
(:meth:`Levers.expected_detection`). The sizes are the ``supervision.detect_*`` settings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scenario import DispatchMode, Hours, Scenario


def always_open(hours: Hours) -> bool:
    """True for 7×24 service, False for office hours (the one place ``Hours`` is told apart)."""
    return hours == Hours.ALWAYS


@dataclass(frozen=True)
class ResponseMandate:
    """A sign-for deadline (e.g. 24 hours): departments sign for (签收) a case as soon as they take it up,
    an unsigned case past the deadline counts as overdue for inspection, and under load the pressure to
    sign quickly allows perfunctory replies."""

    hours: float | None
    detect: float

    @property
    def active(self) -> bool:
        return self.hours is not None

    def expected_detection(self) -> float:
        return self.detect if self.active else 0.0

    def unsigned_past_deadline(self, created: np.ndarray, first_response: np.ndarray, now: float) -> np.ndarray:
        """Cases (by their created and first-response times, h) not signed for within the mandate by ``now``."""
        if not self.active:
            return np.zeros(len(created), bool)
        return np.isnan(first_response) & (created + self.hours < now)


@dataclass(frozen=True)
class Tracking:
    """Deadline tracking (跟踪): a reminder to the department ``lead_h`` hours before a case is due."""

    on: bool
    lead_h: float
    detect: float

    def expected_detection(self) -> float:
        return self.detect if self.on else 0.0

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
    detect: float

    def expected_detection(self) -> float:
        return self.detect if self.on else 0.0

    def may_reopen(self, reopen_count: np.ndarray) -> np.ndarray | None:
        """Which cases may still be reopened (None: reopening is not allowed at all)."""
        if not self.reopen_allowed:
            return None
        return reopen_count < self.max_reopens


@dataclass(frozen=True)
class Inspection:
    """Supervision (督办): the number of open, overdue cases the centre inspects per day (may be fractional)."""

    intensity: float
    detect_per_inspection: float

    def expected_detection(self) -> float:
        return self.detect_per_inspection * self.intensity

    def inspections_today(self, rng: np.random.Generator) -> int:
        """Today's inspections: the intensity, with its fraction rounded at random (one draw every day)."""
        k = self.intensity
        return int(k) + int(rng.random() < k - int(k))


@dataclass(frozen=True)
class PublicRanking:
    """A public ranking of departments on the three rates every ``period_days`` days."""

    on: bool
    detect: float
    period_days: int = 30

    def expected_detection(self) -> float:
        return self.detect if self.on else 0.0

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
    ranking: PublicRanking
    systemic_fix: SystemicFix
    dispatch_mode: DispatchMode
    platform_always_open: bool

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> Levers:
        pol, sup = scenario.policy, scenario.supervision
        return cls(
            mandate=ResponseMandate(pol.response_mandate_hours, sup.detect_mandate),
            tracking=Tracking(pol.tracking, pol.reminder_lead_h, sup.detect_tracking),
            callback=CallBack(pol.callback, pol.reopen_allowed, pol.max_reopens, sup.detect_callback),
            inspection=Inspection(pol.supervision_intensity, sup.detect_per_inspection),
            ranking=PublicRanking(pol.public_ranking, sup.detect_ranking),
            systemic_fix=SystemicFix(pol.systemic_fix, pol.systemic_fix_threshold, pol.systemic_fix_window_days,
                                     pol.systemic_fix_effect, pol.systemic_fix_duration_days),
            dispatch_mode=pol.dispatch_mode,
            platform_always_open=always_open(pol.platform_hours),
        )

    def expected_detection(self) -> float:
        """The detection probability a department expects from the standing levers (summed; 0–1 in use)."""
        p = 0.0
        p += self.tracking.expected_detection()
        p += self.callback.expected_detection()
        p += self.mandate.expected_detection()
        p += self.ranking.expected_detection()
        p += self.inspection.expected_detection()
        return p
