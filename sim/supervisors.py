"""Supervision (督办): daily inspections of overdue or unsatisfied cases, a ladder of sanctions,
a monthly public ranking on the three rates, and upper-level action on escalated cases.

Ladder (per case, by how often it has been inspected): 1 → reminder (the department is reminded, a
neglected case is looked at again, priority raised); 2 → supervision order (handling is compelled,
top priority, the department is penalised); 3+ → public naming (a larger penalty). Penalties raise
the department's diligence (see :mod:`sim.departments`). Ranking weights: response 30, resolution 35,
satisfaction 35 (a county-level assessment banner; docs/sources.md, S18).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

from .cases import Status
from .lifecycle import press

if TYPE_CHECKING:  # pragma: no cover
    from .model import GovernanceModel

RANK_WEIGHTS = (0.30, 0.35, 0.35)


class Supervisor(mesa.Agent):
    """A supervision centre at one level (the city's 督办中心, or the province for escalations)."""

    def __init__(self, model: GovernanceModel, level: str) -> None:
        super().__init__(model)
        self.level = level
        self.inspections = 0
        self.orders = 0
        self.namings = 0

    # ------------------------------------------------------------------------------------ inspection
    def candidates(self, now: float) -> np.ndarray:
        """Open cases past their due time, or reopened and still open, most overdue first."""
        m = self.model
        cs = m.cases
        ids = cs.open_ids()
        if len(ids) == 0:
            return ids
        st = cs.status[ids]
        waiting = st != Status.AWAITING_CALLBACK
        overdue = (cs.due[ids] < now) | (cs.reopened[ids] & (cs.supervision_level[ids] == 0))
        overdue |= m.levers.mandate.unsigned_past_deadline(cs.created[ids], cs.first_response[ids], now)
        ids = ids[overdue & waiting & (st != Status.AWAITING_INTAKE)]
        lateness = now - cs.due[ids]
        return ids[np.argsort(-lateness, kind="stable")]

    def inspect(self, now: float, rng: np.random.Generator) -> int:
        """Inspect up to the day's intensity (fractional intensities are rounded at random)."""
        m = self.model
        n = m.levers.inspection.inspections_today(rng)
        if n <= 0:
            return 0
        ids = self.candidates(now)[:n]
        if len(ids) == 0:
            return 0
        cs = m.cases
        sup = m.settings.supervision
        cs.supervised[ids] = True
        level = np.minimum(cs.supervision_level[ids].astype(np.int16) + 1, 3).astype(np.int8)
        cs.supervision_level[ids] = level
        depts = cs.dept[ids]
        m.effort.penalise(depts[level == 1], sup.reminder_penalty)
        m.effort.penalise(depts[level == 2], sup.order_penalty)
        m.effort.penalise(depts[level >= 3], sup.naming_penalty)
        self.inspections += len(ids)
        self.orders += int((level == 2).sum())
        self.namings += int((level >= 3).sum())
        press(m, ids, now, extra_detection=0.6)
        return len(ids)

    def act_on_escalation(self, ids: np.ndarray, now: float) -> None:
        """The upper level takes up escalated cases: the department is penalised and must handle them."""
        m = self.model
        if len(ids) == 0:
            return
        m.cases.escalated[ids] = True
        m.cases.supervised[ids] = True
        m.effort.penalise(m.cases.dept[ids], m.settings.supervision.escalation_penalty)
        self.orders += len(ids)
        press(m, ids, now, extra_detection=1.0)

    # --------------------------------------------------------------------------------------- ranking
    def rank(self, now: float, window_h: float) -> np.ndarray:
        """Monthly public ranking: the bottom share of departments (by the weighted three rates) is penalised."""
        m = self.model
        cs = m.cases
        n = cs.n
        lo = np.searchsorted(cs.created[:n], now - window_h)
        ids = np.arange(lo, n)
        ids = ids[~cs.direct_answer[ids] & ~np.isnan(cs.dept_arrival[ids])]
        n_d = len(m.departments)
        if len(ids) == 0:
            return np.zeros(0, dtype=np.int64)
        dept = cs.dept[ids]
        total = np.bincount(dept, minlength=n_d).astype(float)
        resp = np.bincount(dept, ~np.isnan(cs.first_response[ids]), minlength=n_d)
        res = np.bincount(dept, cs.resolved[ids], minlength=n_d)
        judged = cs.satisfied[ids] >= 0
        sat = np.bincount(dept[judged], cs.satisfied[ids][judged] == 1, minlength=n_d)
        n_j = np.bincount(dept[judged], minlength=n_d).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            score = (RANK_WEIGHTS[0] * resp / total + RANK_WEIGHTS[1] * res / total
                     + RANK_WEIGHTS[2] * np.where(n_j > 0, sat / np.maximum(n_j, 1), 1.0))
        ranked = np.flatnonzero(total > 0)
        if len(ranked) == 0:
            return ranked
        k = max(1, int(round(m.settings.supervision.ranking_bottom_share * len(ranked))))
        bottom = ranked[np.argsort(score[ranked], kind="stable")[:k]]
        m.effort.penalise(bottom, m.settings.supervision.ranking_penalty)
        return bottom
