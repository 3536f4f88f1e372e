"""Departments: staffed queues, their columnar state, and the effort choice of a principal–agent game.

A department holds ``staff`` servers (cases handled at once). It takes up a new case only while it
works (office hours, or 7×24), in the order its queue discipline says (:mod:`sim.queues`), and handles
it for the case's service time (elapsed hours). A case under a supervision order or escalation jumps
the queue.

The effort choice (vectorised over the cases that reach departments in a step): a department answers
a case with probability ``σ(neglect_intercept + accountability_weight·A + diligence_weight·(d − d₀) −
load_weight·ln(1+L))``, where A is the expected penalty (the detection probability the standing levers
imply, :meth:`sim.levers.Levers.expected_detection`, plus any pressure on the case and any threat in the
request), d the department's diligence and L its load (waiting cases per staff). Under a response
mandate and heavy load, it may sign for the case at once and reply perfunctorily. Diligence rises after
penalties and decays back to ``base_diligence`` without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

from .cases import CaseStore
from .queues import DISCIPLINES, ServerPool

if TYPE_CHECKING:  # pragma: no cover
    from .model import GovernanceModel

#: (case ids, start times, completion times) of the cases a step started, in hours
Starts = tuple[np.ndarray, np.ndarray, np.ndarray]


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class Department(mesa.Agent):
    """A functional bureau or township office that handles cases of one category in one unit.

    Its staff serve its queue (``pool``); its diligence and load live in :class:`DepartmentTable`.
    """

    def __init__(self, model: GovernanceModel, index: int, node: str, category: str, level: str,
                 staff: int, pool: ServerPool) -> None:
        super().__init__(model)
        self.index = index
        self.node = node
        self.category = category
        self.level = level
        self.staff = staff
        self.pool = pool


class DepartmentTable:
    """The state of every department, one entry per department index (the department side's store).

    ``agents``: the :class:`Department` agents; ``staff`` (servers); ``diligence`` (0–1); ``waiting``
    (cases queued and not yet started); ``active`` (departments with queued or arriving work);
    ``arrivals`` (this step's new queue entries, not yet handed to the queues); ``cancelled`` (cases
    withdrawn while still among this step's arrivals).
    """

    def __init__(self, model: GovernanceModel, always_open: bool) -> None:
        s = model.settings.departments
        h = model.hierarchy
        self.discipline = s.queue_discipline
        self.order = DISCIPLINES[s.queue_discipline]
        self.agents = [Department(model, r.index, r.node, r.category, r.level.value, r.staff,
                                  ServerPool(r.staff, always_open, model.calendar, s.queue_discipline))
                       for r in h.departments]
        n = len(self.agents)
        self.staff = h.dept_staff
        self.diligence = np.full(n, s.base_diligence)
        self.waiting = np.zeros(n)
        self.active: set[int] = set()
        self.arrivals: list[tuple[np.ndarray, np.ndarray]] = []
        self.cancelled: set[int] = set()

    def __len__(self) -> int:
        return len(self.agents)

    def load(self, depts: np.ndarray) -> np.ndarray:
        """Waiting cases per member of staff of each listed department."""
        return self.waiting[depts] / np.maximum(self.staff[depts], 1)

    # ----------------------------------------------------------------------------------- queues
    def enqueue(self, ids: np.ndarray, times: np.ndarray, cases: CaseStore) -> None:
        """Cases join their departments' queues at ``times`` (handed to the queues by :meth:`work`)."""
        np.add.at(self.waiting, cases.dept[ids], 1)
        self.arrivals.append((ids, times))

    def withdraw(self, ids: np.ndarray, cases: CaseStore) -> None:
        """Queued cases leave their queues (their requesters gave up)."""
        for c in ids.tolist():
            if not self.agents[int(cases.dept[c])].pool.remove(c):
                self.cancelled.add(c)  # still among this step's arrivals
        if len(ids):
            np.add.at(self.waiting, cases.dept[ids], -1)

    def raise_priority(self, ids: np.ndarray, cases: CaseStore) -> None:
        """Queued cases move up their queues as their ``boost`` now says."""
        for c in ids.tolist():
            pool = self.agents[int(cases.dept[c])].pool
            pool.raise_priority(c, pool.key(float(cases.dept_arrival[c]), float(cases.due[c]), int(cases.boost[c])))

    def _take_arrivals(self, cases: CaseStore) -> dict[int, tuple]:
        """This step's arrivals grouped by department, each sorted by (time, case), with queue keys."""
        ids = np.concatenate([a[0] for a in self.arrivals])
        t = np.concatenate([a[1] for a in self.arrivals])
        self.arrivals = []
        if self.cancelled:
            gone = np.isin(ids, np.fromiter(self.cancelled, dtype=np.int64, count=len(self.cancelled)))
            if gone.any():
                self.cancelled.difference_update(ids[gone].tolist())
                ids, t = ids[~gone], t[~gone]
        if len(ids) == 0:
            return {}
        dept = cases.dept[ids]
        order = np.lexsort((ids, t, dept))
        ids, t, dept = ids[order], t[order], dept[order]
        svc = cases.service_time[ids]
        t_list = t.tolist()
        keys = self.order(t_list, cases.due[ids].tolist(), cases.boost[ids].tolist())
        arr = list(zip(t_list, ids.tolist(), keys, svc.tolist(), strict=True))
        cuts = (np.flatnonzero(np.diff(dept)) + 1).tolist()
        lo, hi = [0, *cuts], [*cuts, len(ids)]
        return {dp: (ids[a:b], t[a:b], svc[a:b], arr[a:b]) for a, b, dp in zip(lo, hi, dept[lo].tolist(), strict=True)}

    def work(self, t_end: float, cases: CaseStore) -> Starts | None:
        """Departments with work take up cases until ``t_end`` (h); returns the cases started, or None.

        This step's arrivals are prepared for all departments at once (sorted by department, time, case;
        keys and service times looked up in one pass), then each department's queue runs.
        """
        starts: list[Starts] = []
        groups = self._take_arrivals(cases) if self.arrivals else {}
        self.active.update(groups)
        empty = (np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0), [])
        still = set()
        for dp in sorted(self.active):
            pool = self.agents[dp].pool
            g = groups.get(dp)
            if g is None:
                if pool.blocked_until >= t_end and pool.live:
                    still.add(dp)  # every server busy (or the office closed) past this step
                    continue
                g = empty
            pool.run_sorted(t_end, g[0], g[1], g[2], g[3], starts)
            if len(pool):
                still.add(dp)
        self.active = still
        if not starts:
            return None
        ids = np.concatenate([x[0] for x in starts])
        np.add.at(self.waiting, cases.dept[ids], -1)
        return ids, np.concatenate([x[1] for x in starts]), np.concatenate([x[2] for x in starts])

    # ----------------------------------------------------------------------------------- diligence
    def penalise(self, depts: np.ndarray, amount: float) -> None:
        """Raise the diligence of penalised departments (repeated penalties add up, capped at 1)."""
        if len(depts):
            np.add.at(self.diligence, depts, amount)
            np.minimum(self.diligence, 1.0, out=self.diligence)

    def decay(self, base: float, rate_per_day: float) -> None:
        """One day of diligence returning toward ``base`` (a share ``rate_per_day`` of the gap)."""
        d = self.diligence
        d -= (d - base) * rate_per_day


def size_staff(model: GovernanceModel) -> None:
    """With ``departments.target_utilisation``: staff each department for its expected load.

    Expected orders per hour to a department: the problem rate of the (category, township) cells it
    handles, times a reporting share of 0.85, times the share not answered at intake, plus 10% for
    reopened and escalated cases. Office-hours departments only take up work 40 of 168 hours a week,
    but a case once started runs on, so the load is not scaled by opening hours. Sets the staff of the
    hierarchy's department records (servers, at least 1).
    """
    target = model.settings.departments.target_utilisation
    if target is None:
        return
    dm = model.demand
    h = model.hierarchy
    rate, reporting = dm.expected_rate()
    dispatched = 1.0 - dm.category_consult * model.settings.platform.direct_answer_share
    load = rate * reporting * 1.1 * (dispatched * dm.category_service_mean_h)[:, None]  # server-hours per hour
    per_dept = np.zeros(len(h.departments))
    np.add.at(per_dept, h.handler.ravel(), load.ravel())
    staff = np.maximum(1, np.ceil(per_dept / target)).astype(np.int64)
    h.dept_staff = staff
    for rec, k in zip(h.departments, staff.tolist(), strict=True):
        rec.staff = int(k)


class EffortChoice:
    """The departments' behaviour, vectorised over cases (see the module docstring for the rule)."""

    def __init__(self, model: GovernanceModel) -> None:
        self.model = model
        self.s = model.settings.departments

    def detection(self, cases: np.ndarray, extra_detection: float = 0.0) -> np.ndarray:
        """Detection probability a department expects for each case: the standing levers, any pressure on
        the case, and the threats in the request (capped at 1)."""
        cs = self.model.cases
        sup = self.model.settings.supervision
        detect = (self.model.levers.expected_detection() + extra_detection
                  + sup.detect_tattle * cs.tattle[cases] + sup.detect_collective * cs.collective[cases])
        return np.minimum(detect, 1.0)

    def respond_probability(self, cases: np.ndarray, extra_detection: float = 0.0) -> np.ndarray:
        m = self.model
        dept = m.cases.dept[cases]
        detect = self.detection(cases, extra_detection)
        load = m.departments.load(dept)
        x = (self.s.neglect_intercept + self.s.accountability_weight * detect
             + self.s.diligence_weight * (m.departments.diligence[dept] - self.s.base_diligence)
             - self.s.load_weight * np.log1p(np.maximum(load, 0.0)))
        return sigmoid(x)

    def decide(self, cases: np.ndarray, rng: np.random.Generator, extra_detection: float = 0.0
               ) -> tuple[np.ndarray, np.ndarray]:
        """Return (respond, perfunctory) flags for cases that reach their department.

        A compelled case (:meth:`sim.cases.CaseStore.compelled`) or a reopened one is always answered and
        never perfunctorily.
        """
        m = self.model
        cs = m.cases
        n = len(cases)
        if not self.s.effort_choice:
            return np.ones(n, bool), np.zeros(n, bool)
        u = rng.random((2, n))
        must = cs.compelled(cases) | cs.reopened[cases]
        respond = must | (u[0] < self.respond_probability(cases, extra_detection))
        perf = np.zeros(n, bool)
        if m.levers.mandate.active:
            load = m.departments.load(cs.dept[cases])
            thr = max(self.s.perfunctory_load_threshold, 1e-9)
            share = self.s.perfunctory_max_share * (1.0 - np.exp(-np.maximum(load - thr, 0.0) / thr))
            perf = respond & ~must & (u[1] < share)
        return respond, perf

    def resolve_probability(self, cases: np.ndarray) -> np.ndarray:
        m = self.model
        cs = m.cases
        diff = m.demand.category_difficulty[cs.category[cases]]
        x = (self.s.resolution_intercept + self.s.resolution_effort_weight * m.departments.diligence[cs.dept[cases]]
             + self.s.resolution_accountability_weight * self.detection(cases)
             - self.s.resolution_difficulty_weight * diff
             + self.s.supervised_resolution_bonus * (cs.supervised[cases] | cs.escalated[cases]))
        return sigmoid(x)

    def penalise(self, depts: np.ndarray, amount: float) -> None:
        """Sanction departments: their diligence rises by ``amount`` (see :meth:`DepartmentTable.penalise`)."""
        self.model.departments.penalise(depts, amount)

    def decay(self) -> None:
        """One day without penalties: diligence returns a share toward ``base_diligence``."""
        self.model.departments.decay(self.s.base_diligence, self.s.diligence_decay_per_day)
