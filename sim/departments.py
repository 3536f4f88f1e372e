"""Departments: staffed queues, a working calendar, and the effort choice of a principal–agent game.

A department holds ``staff`` servers (cases handled at once). It takes up a new case only while it
works (office hours, or 7×24), in the order its queue discipline says, and handles it for the case's
service time (elapsed hours). A case under a supervision order or escalation jumps the queue.

The effort choice (vectorised over the cases that reach departments in a step): a department answers
a case with probability ``σ(neglect_intercept + accountability_weight·A + diligence_weight·(d − d₀) −
load_weight·ln(1+L))``, where A is the expected penalty (the detection probability implied by tracking,
call-backs, a monitored mandate, ranking, supervision intensity, and any threat in the request), d the
department's diligence and L its load (waiting cases per staff). Under a response mandate and heavy load,
it may sign for the case at once and reply perfunctorily. Diligence rises after penalties and decays
back to ``base_diligence`` without them.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

import mesa
import numpy as np

from .cases import Status
from .scenario import QueueDiscipline

if TYPE_CHECKING:  # pragma: no cover
    from .calendar import WorkCalendar
    from .model import GovernanceModel


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class ServerPool:
    """A multi-server queue in continuous time, advanced one step at a time.

    Exact for FIFO (the Erlang C check relies on it): a server free at ``s`` takes the best case that
    has arrived by ``max(s, arrival)``; when the pool keeps office hours, a start is moved to the next
    open time. Priorities can be raised while a case waits (a fresh heap entry; stale ones are skipped).
    """

    __slots__ = ("free", "waiting", "live", "arrivals", "seq", "always_open", "calendar", "discipline",
                 "cancelled")

    def __init__(self, servers: int, always_open: bool, calendar: WorkCalendar,
                 discipline: QueueDiscipline = QueueDiscipline.FIFO) -> None:
        self.free: list[float] = [0.0] * int(servers)
        self.waiting: list[tuple] = []
        self.live: dict[int, tuple] = {}
        self.arrivals: list[tuple[float, int]] = []
        self.seq = 0
        self.always_open = always_open
        self.calendar = calendar
        self.discipline = discipline
        self.cancelled: set[int] = set()

    def __len__(self) -> int:
        return len(self.live)

    def key(self, case: int, arrival: float, due: float, boost: int) -> tuple:
        if self.discipline == QueueDiscipline.DEADLINE:
            return (-boost, due, arrival)
        if self.discipline == QueueDiscipline.SUPERVISED:
            return (-boost, arrival)
        return (-boost, arrival) if boost else (0, arrival)

    def arrive(self, case: int, time: float) -> None:
        self.arrivals.append((time, case))

    def push(self, case: int, arrival: float, key: tuple) -> None:
        self.seq += 1
        entry = (key, self.seq, case, arrival)
        self.live[case] = entry
        heapq.heappush(self.waiting, entry)

    def raise_priority(self, case: int, key: tuple) -> None:
        entry = self.live.get(case)
        if entry is not None and key < entry[0]:
            self.push(case, entry[3], key)

    def remove(self, case: int) -> None:
        """Withdraw a case (its requester gave up), whether it waits or is about to arrive."""
        if self.live.pop(case, None) is None:
            self.cancelled.add(case)

    def _pop(self) -> tuple | None:
        while self.waiting:
            entry = heapq.heappop(self.waiting)
            if self.live.get(entry[2]) is entry:
                del self.live[entry[2]]
                return entry
        return None

    def advance(self, t_end: float, service_time: np.ndarray, due: np.ndarray, boost: np.ndarray,
                starts: list[tuple[int, float, float]]) -> None:
        """Start every case that can start before ``t_end``; append (case, start, done) to ``starts``."""
        arr = self.arrivals
        if len(arr) > 1:
            arr.sort()
        self.arrivals = []
        free = self.free
        i = 0
        n_arr = len(arr)
        cal = self.calendar
        while free:
            s = free[0]
            if not self.live:
                if i >= n_arr:
                    break
                tau = s if s > arr[i][0] else arr[i][0]
            else:
                tau = s
            if not self.always_open:
                tau = cal.next_open_scalar(tau)
            if tau >= t_end:
                break
            while i < n_arr and arr[i][0] <= tau:
                a, c = arr[i]
                i += 1
                if self.cancelled and c in self.cancelled:
                    self.cancelled.discard(c)
                    continue
                self.push(c, a, self.key(c, a, due[c], int(boost[c])))
            entry = self._pop()
            if entry is None:
                continue
            case, arrival = entry[2], entry[3]
            start = tau if tau >= arrival else arrival
            if not self.always_open and start != tau:
                start = cal.next_open_scalar(start)
            done = start + service_time[case]
            heapq.heapreplace(free, done)
            starts.append((case, start, done))
        while i < n_arr:
            a, c = arr[i]
            i += 1
            if self.cancelled and c in self.cancelled:
                self.cancelled.discard(c)
                continue
            self.push(c, a, self.key(c, a, due[c], int(boost[c])))

    def next_start_possible(self) -> float:
        return self.free[0] if self.free else np.inf


class Department(mesa.Agent):
    """A functional bureau or township office that handles cases of one category in one unit."""

    def __init__(self, model: GovernanceModel, index: int, node: str, category: str, level: str,
                 staff: int) -> None:
        super().__init__(model)
        self.index = index
        self.node = node
        self.category = category
        self.level = level
        self.staff = staff
        s = model.settings.departments
        self.pool = ServerPool(staff, s.hours.value == "7x24", model.calendar, s.queue_discipline)

    @property
    def diligence(self) -> float:
        return float(self.model.diligence[self.index])

    @property
    def backlog(self) -> int:
        return len(self.pool)

    def sign_for(self, cases: np.ndarray, times: np.ndarray) -> None:
        """Record the first response (签收) where there is none yet."""
        cs = self.model.cases
        first = cs.first_response[cases]
        cs.first_response[cases] = np.where(np.isnan(first), times, first)


class EffortChoice:
    """The departments' behaviour, vectorised over cases (see the module docstring for the rule)."""

    def __init__(self, model: GovernanceModel) -> None:
        self.model = model
        self.s = model.settings.departments

    def base_detection(self) -> float:
        """Detection probability a department expects from the standing policies (0–1)."""
        m = self.model
        sup, pol = m.settings.supervision, m.settings.policy
        p = 0.0
        p += sup.detect_tracking if pol.tracking else 0.0
        p += sup.detect_callback if pol.callback else 0.0
        p += sup.detect_mandate if pol.response_mandate_hours is not None else 0.0
        p += sup.detect_ranking if pol.public_ranking else 0.0
        p += sup.detect_per_inspection * pol.supervision_intensity
        return p

    def respond_probability(self, cases: np.ndarray, extra_detection: float = 0.0) -> np.ndarray:
        m = self.model
        cs = m.cases
        sup = m.settings.supervision
        dept = cs.dept[cases]
        detect = (self.base_detection() + extra_detection
                  + sup.detect_tattle * cs.tattle[cases] + sup.detect_collective * cs.collective[cases])
        detect = np.minimum(detect, 1.0)
        load = m.dept_waiting[dept] / np.maximum(m.hierarchy.dept_staff[dept], 1)
        x = (self.s.neglect_intercept + self.s.accountability_weight * detect
             + self.s.diligence_weight * (m.diligence[dept] - self.s.base_diligence)
             - self.s.load_weight * np.log1p(np.maximum(load, 0.0)))
        return sigmoid(x)

    def decide(self, cases: np.ndarray, rng: np.random.Generator, extra_detection: float = 0.0
               ) -> tuple[np.ndarray, np.ndarray]:
        """Return (respond, perfunctory) flags for cases that reach their department."""
        m = self.model
        cs = m.cases
        n = len(cases)
        if not self.s.effort_choice:
            return np.ones(n, bool), np.zeros(n, bool)
        u = rng.random((2, n))
        forced = (cs.supervision_level[cases] >= 2) | cs.escalated[cases] | cs.reopened[cases]
        respond = forced | (u[0] < self.respond_probability(cases, extra_detection))
        perf = np.zeros(n, bool)
        if m.settings.policy.response_mandate_hours is not None:
            dept = cs.dept[cases]
            load = m.dept_waiting[dept] / np.maximum(m.hierarchy.dept_staff[dept], 1)
            thr = max(self.s.perfunctory_load_threshold, 1e-9)
            share = self.s.perfunctory_max_share * (1.0 - np.exp(-np.maximum(load - thr, 0.0) / thr))
            perf = respond & ~forced & (u[1] < share)
        return respond, perf

    def resolve_probability(self, cases: np.ndarray) -> np.ndarray:
        m = self.model
        cs = m.cases
        diff = m.category_difficulty[cs.category[cases]]
        x = (self.s.resolution_intercept + self.s.resolution_effort_weight * m.diligence[cs.dept[cases]]
             - self.s.resolution_difficulty_weight * diff
             + self.s.supervised_resolution_bonus * (cs.supervised[cases] | cs.escalated[cases]))
        return sigmoid(x)

    def penalise(self, depts: np.ndarray, amount: float) -> None:
        """Raise the diligence of penalised departments (repeated penalties add up, capped at 1)."""
        if len(depts):
            np.add.at(self.model.diligence, depts, amount)
            np.minimum(self.model.diligence, 1.0, out=self.model.diligence)

    def decay(self) -> None:
        d = self.model.diligence
        base = self.s.base_diligence
        d -= (d - base) * self.s.diligence_decay_per_day


NEGLECTED = Status.NEGLECTED
