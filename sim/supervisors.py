"""Supervision (督办): offices with a daily inspection budget, the sanction ladder, audits, the monthly public
ranking, and the upper level's action on escalations.

Each office (the city's centre; one per county when ``policy.county_supervision_intensity`` > 0) is a Mesa
agent whose ``step`` (daily) spends its budget: first on overdue cases of its departments (past their due
time, or past the sign-for deadline of a mandate, or reopened and not yet inspected), most overdue first;
what is left on audits of cases replied to within ``supervision.audit_window_days``, drawn at random. An
inspection moves a case up the ladder (per case, by how often it has been inspected): 1 → reminder, 2 →
supervision order (handling compelled), 3+ → public naming, each with its sanction against the
violation the inspector sees: ``LATE`` past the due time, else ``UNSIGNED`` past a mandate's sign-for deadline
(a reopened case inside its deadline is pressed without a sanction). An audit finds a perfunctory reply with chance ``audit_accuracy``; the case
is reopened under a supervision order and the department sanctioned (``PERFUNCTORY``).

Ranking (monthly): departments scored on the rates the platform measures — response, resolution as
recorded, satisfaction from call-backs — weighted 30/35/35 (a county-level assessment banner;
docs/sources.md, S18); each department in the bottom share is sanctioned, and the part of the sanction it
can trace to a violation — the response rate's share of its weighted shortfall — enters its ``LATE`` record. Escalations: the upper
level compels handling and sanctions the department for the violation it sees (a perfunctory reply, or no
reply past the deadline); nothing else is sanctioned.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

from .cases import Status, Violation
from .hierarchy import PREFECTURE_INDEX
from .levers import Inspection
from .lifecycle import press, send_back

if TYPE_CHECKING:  # pragma: no cover
    from .model import GovernanceModel

RANK_WEIGHTS = (0.30, 0.35, 0.35)
#: audits look at cases created up to this many days before the audit window (older ones are not sampled)
AUDIT_LOOKBACK_DAYS = 60.0

#: the monthly ranking measures the cases created in the last this many days
RANKING_WINDOW_DAYS = 30.0


def first_in_order(key: np.ndarray, limit: int | None = None) -> np.ndarray:
    """``np.argsort(key, kind="stable")[:limit]`` (NaN last, ties in position order) without sorting every key
    when ``limit`` is smaller than their number: the keys below the ``limit``-th smallest are sorted, and that
    key's ties follow in position order."""
    if limit is None or limit >= len(key):
        return np.argsort(key, kind="stable")
    if limit <= 0:
        return np.zeros(0, np.intp)
    v = np.partition(key, limit - 1)[limit - 1]
    if np.isnan(v):
        below, ties = np.flatnonzero(~np.isnan(key)), np.flatnonzero(np.isnan(key))
    else:
        below, ties = np.flatnonzero(key < v), np.flatnonzero(key == v)
    first = below[np.argsort(key[below], kind="stable")]
    return np.concatenate([first, ties[: limit - len(first)]])


class Supervisor(mesa.Agent):
    """A supervision office: the city's 督办中心 (``level`` "prefecture", ``county`` None: every department
    and relay at the prefecture and below), a county's office (``county`` set: that county's bureaus and
    township offices), or the province's (``level`` "province": inspects provincial and central departments
    with its own budget, and acts on every escalation)."""

    def __init__(self, model: GovernanceModel, level: str, budget: Inspection | None = None,
                 county: int | None = None) -> None:
        super().__init__(model)
        self.level = level
        self.budget = budget
        self.county = county
        self.inspections = 0
        self.audits = 0
        self.audit_finds = 0
        self.orders = 0
        self.namings = 0
        self.today = 0  # inspections and audits done in the last step

    def step(self) -> None:
        """The end of a day: spend the day's inspection budget (overdue cases first, then audits)."""
        m = self.model
        self.today = 0
        if self.budget is None:
            return
        n = self.budget.inspections_today(m.rng_supervision)
        if n <= 0:
            return
        now = float(m.hour + 1)
        done = self.inspect(now, n)
        if done < n:
            done += self.audit(now, n - done)
        self.today = done
        m.ledger.work("supervisors", done * m.settings.supervision.hours_per_inspection, now - 1.0)

    def _mine(self, ids: np.ndarray) -> np.ndarray:
        """The cases among ``ids`` whose holder (department or relay) this office supervises."""
        return ids[self._mine_departments()[self.model.cases.dept[ids]]]

    # ------------------------------------------------------------------------------------ inspection
    def candidates(self, now: float, limit: int | None = None) -> np.ndarray:
        """Open cases past their due time or their sign-for deadline, or reopened and not yet inspected;
        not inspected in the last 24 h and not yet publicly named (the top of the ladder); held by a department
        (or relay) this office supervises; most overdue first (ties in id order). ``limit``: only the first
        ``limit`` of them.

        One pass over the open cases (:func:`sim.kernels.supervision_candidates`) keeps those that pass every
        test but the sign-for deadline, and says which are overdue on their own terms; the mandate's test then
        reads the creation and first-response times of the others only."""
        m = self.model
        cs = m.cases
        ids, overdue = m.kernels.supervision_candidates(
            cs.open_ids(), float(now), cs.status, cs.supervision_level, cs.due, cs.reopened, cs.inspected_at,
            cs.dept, self._mine_departments(), int(Status.AWAITING_CALLBACK), int(Status.AWAITING_INTAKE))
        rest = np.flatnonzero(~overdue)
        if len(rest):
            sub = ids[rest]
            overdue[rest] = m.levers.mandate.unsigned_past_deadline(cs.created[sub], cs.first_response[sub], now)
            ids = ids[overdue]
        lateness = now - cs.due[ids]
        return ids[first_in_order(-lateness, limit)]

    def _mine_departments(self) -> np.ndarray:
        """Per department (and relay): whether this office supervises the cases it holds (as :meth:`_mine`)."""
        t = self.model.departments
        if self.county is not None:
            return t.county == self.county
        above = t.level < PREFECTURE_INDEX
        return above if self.level == "province" else ~above

    def inspect(self, now: float, n: int) -> int:
        """Inspect up to ``n`` overdue cases; returns how many were inspected."""
        m = self.model
        ids = self.candidates(now, n)
        if len(ids) == 0:
            return 0
        cs = m.cases
        sup = m.settings.supervision
        cs.supervised[ids] = True
        cs.inspected_at[ids] = now
        level = np.minimum(cs.supervision_level[ids].astype(np.int16) + 1, 3).astype(np.int8)
        cs.supervision_level[ids] = level
        threat = cs.tattle[ids] | cs.collective[ids]
        late = cs.due[ids] < now
        unsigned = ~late & m.levers.mandate.unsigned_past_deadline(cs.created[ids], cs.first_response[ids], now)
        for lv, sanction in ((1, sup.reminder_sanction), (2, sup.order_sanction), (3, sup.naming_sanction)):
            sel = level == lv if lv < 3 else level >= 3
            for kind, seen in ((Violation.LATE, late), (Violation.UNSIGNED, unsigned)):
                hit = sel & seen
                if hit.any():
                    m.departments.catch(cs.dept[ids[hit]], kind, threat[hit], sanction)
        passed_over = ids[(cs.status[ids] == Status.QUEUED) & m.departments.easy_first[cs.dept[ids]]]
        m.departments.catch(cs.dept[passed_over], Violation.CHERRY, np.zeros(len(passed_over), bool),
                            sup.cherry_sanction)
        self.inspections += len(ids)
        self.orders += int((level == 2).sum())
        self.namings += int((level >= 3).sum())
        press(m, ids, now, pressure=sup.order_sanction)
        return len(ids)

    def audit(self, now: float, n: int) -> int:
        """Audit up to ``n`` cases replied to within the audit window (closed or awaiting a call-back, not
        answered at intake, not audited before), drawn at random; returns how many were audited."""
        m = self.model
        cs = m.cases
        sup = m.settings.supervision
        lo = cs.created_since(now - (sup.audit_window_days + AUDIT_LOOKBACK_DAYS) * 24.0)
        ids = np.arange(lo, cs.n)
        st = cs.status[ids]
        ok = (((st == Status.CLOSED) | (st == Status.AWAITING_CALLBACK)) & ~cs.direct_answer[ids]
              & ~cs.audited[ids] & (cs.replied[ids] >= now - sup.audit_window_days * 24.0))
        ids = self._mine(ids[ok])
        if len(ids) == 0:
            return 0
        rng = m.rng_supervision
        pick = ids[rng.permutation(len(ids))[:n]]
        cs.audited[pick] = True
        cs.supervised[pick] = True
        found = pick[cs.perfunctory[pick] & (rng.random(len(pick)) < sup.audit_accuracy)]
        self.audits += len(pick)
        if len(found):
            self.audit_finds += len(found)
            m.departments.catch(cs.dept[found], Violation.PERFUNCTORY, cs.tattle[found] | cs.collective[found],
                                sup.audit_sanction)
            cs.supervision_level[found] = np.maximum(cs.supervision_level[found], 2)
            cs.reopened[found] = True
            send_back(m, found, np.full(len(found), now))
        return len(pick)

    def act_on_escalation(self, ids: np.ndarray, now: float) -> None:
        """The upper level takes up escalated cases and the department must handle them again. It is
        sanctioned only for a violation the upper level sees: a perfunctory reply (``PERFUNCTORY``), or no reply
        past the deadline (``LATE``). A proper reply that did not solve the problem, or a case escalated before
        its deadline, is pressed without a sanction."""
        m = self.model
        if len(ids) == 0:
            return
        cs = m.cases
        cs.escalated[ids] = True
        cs.supervised[ids] = True
        threat = cs.tattle[ids] | cs.collective[ids]
        perf = cs.perfunctory[ids]
        late = ~perf & np.isnan(cs.replied[ids]) & (cs.due[ids] < now)
        sanction = m.settings.supervision.escalation_sanction
        m.departments.catch(cs.dept[ids[perf]], Violation.PERFUNCTORY, threat[perf], sanction)
        m.departments.catch(cs.dept[ids[late]], Violation.LATE, threat[late], sanction)
        self.orders += len(ids)
        press(m, ids, now, pressure=sanction)

    # --------------------------------------------------------------------------------------- ranking
    def rank(self, now: float, window_h: float) -> np.ndarray:
        """Monthly public ranking on the measured rates: the bottom share of departments is sanctioned."""
        m = self.model
        cs = m.cases
        n = cs.n
        lo = cs.created_since(now - window_h)
        ids = np.arange(lo, n)
        ids = ids[~cs.direct_answer[ids] & ~np.isnan(cs.dept_arrival[ids])]
        n_d = len(m.departments)
        if len(ids) == 0:
            return np.zeros(0, dtype=np.int64)
        dept = cs.dept[ids]
        total = np.bincount(dept, minlength=n_d).astype(float)
        resp = np.bincount(dept, ~np.isnan(cs.first_response[ids]), minlength=n_d)
        res = np.bincount(dept, cs.recorded_resolved[ids], minlength=n_d)
        judged = cs.surveyed[ids] & (cs.satisfied[ids] >= 0)
        sat = np.bincount(dept[judged], cs.satisfied[ids][judged] == 1, minlength=n_d)
        n_j = np.bincount(dept[judged], minlength=n_d).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            parts = np.stack([resp / total, res / total, np.where(n_j > 0, sat / np.maximum(n_j, 1), 1.0)])
        short = np.asarray(RANK_WEIGHTS)[:, None] * (1.0 - parts)  # each rate's weighted shortfall
        score = 1.0 - short.sum(axis=0)
        ranked = np.flatnonzero((total > 0) & (m.departments.level >= PREFECTURE_INDEX))  # the city's own
        if len(ranked) == 0:
            return ranked
        sup = m.settings.supervision
        k = max(1, int(round(sup.ranking_bottom_share * len(ranked))))
        bottom = ranked[np.argsort(score[ranked], kind="stable")[:k]]
        # The part of the sanction a department can trace to a violation: its missed responses' share of its
        # shortfall, against its LATE record; the rest (unsolved problems, dissatisfaction) names no choice.
        lost = short[:, bottom].sum(axis=0)
        late_part = np.where(lost > 0, short[0, bottom] / np.where(lost > 0, lost, 1.0), 0.0)
        m.departments.catch(bottom, Violation.LATE, np.zeros(len(bottom), bool),
                            sup.ranking_bottom_sanction * late_part)
        return bottom
