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
                 "cancelled", "blocked_until")

    def __init__(self, servers: int, always_open: bool, calendar: WorkCalendar,
                 discipline: QueueDiscipline = QueueDiscipline.FIFO) -> None:
        self.free: list[float] = [0.0] * int(servers)
        self.waiting: list[tuple] = []
        self.live: dict[int, tuple] = {}
        self.arrivals: list[tuple[np.ndarray, np.ndarray]] = []
        self.seq = 0
        self.always_open = always_open
        self.calendar = calendar
        self.discipline = discipline
        self.cancelled: set[int] = set()
        self.blocked_until = 0.0  # with cases waiting: no start is possible before this time

    def __len__(self) -> int:
        return len(self.live)

    def key(self, case: int, arrival: float, due: float, boost: int) -> tuple:
        """Queue order. FIFO: arrival time only. Supervised-first: pressed cases (reminded, supervised,
        escalated, reopened: ``boost`` 1–2) first, then arrival. Deadline-first: pressed cases first, then
        the earliest due time."""
        if self.discipline == QueueDiscipline.DEADLINE:
            return (-boost, due, arrival)
        if self.discipline == QueueDiscipline.FIFO:
            return (0, arrival)
        return (-boost, arrival)

    def arrive(self, cases: np.ndarray, times: np.ndarray) -> None:
        """Cases reach the queue at the given times (during the current step)."""
        self.arrivals.append((np.asarray(cases, dtype=np.int64), np.asarray(times, dtype=float)))

    def push(self, case: int, arrival: float, key: tuple, service: float) -> None:
        self.seq += 1
        entry = (key, self.seq, case, arrival, service)
        self.live[case] = entry
        heapq.heappush(self.waiting, entry)

    def raise_priority(self, case: int, key: tuple) -> None:
        entry = self.live.get(case)
        if entry is not None and key < entry[0]:
            self.push(case, entry[3], key, entry[4])

    def remove(self, case: int) -> bool:
        """Withdraw a waiting case (its requester gave up). False if it was not waiting here."""
        return self.live.pop(case, None) is not None

    def _pop(self) -> tuple | None:
        while self.waiting:
            entry = heapq.heappop(self.waiting)
            if self.live.get(entry[2]) is entry:
                del self.live[entry[2]]
                return entry
        return None

    def advance(self, t_end: float, service_time: np.ndarray, due: np.ndarray, boost: np.ndarray,
                starts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        """Start every case that can start before ``t_end``; append (cases, starts, dones) to ``starts``."""
        if not self.arrivals and not self.live:
            return
        if self.arrivals:
            cases = np.concatenate([a[0] for a in self.arrivals])
            times = np.concatenate([a[1] for a in self.arrivals])
            self.arrivals = []
            if self.cancelled:
                gone = np.isin(cases, np.fromiter(self.cancelled, dtype=np.int64, count=len(self.cancelled)))
                if gone.any():
                    self.cancelled.difference_update(cases[gone].tolist())
                    cases, times = cases[~gone], times[~gone]
            order = np.lexsort((cases, times))
            cases, times = cases[order], times[order]
        else:
            cases, times = np.zeros(0, dtype=np.int64), np.zeros(0)
        n = len(cases)
        if n:
            svc = service_time[cases]
            arr = list(zip(times.tolist(), cases.tolist(), self.keys(cases, times, due, boost), svc.tolist(),
                           strict=True))
        else:
            svc, arr = np.zeros(0), []
        self.run_sorted(t_end, cases, times, svc, arr, starts)

    def run_sorted(self, t_end: float, cases: np.ndarray, times: np.ndarray, svc: np.ndarray,
                   arr: list[tuple[float, int, tuple, float]], starts: list) -> None:
        """Advance with this step's arrivals already sorted by (time, case).

        Fast path (vectorised, same result): when nobody is waiting and every arrival of the step finds a
        free server at its arrival time, each case starts on arrival, and the servers' free times become
        the ``c`` largest of the old free times and the new completion times (each start replaced the
        smallest free time, which was already past).
        """
        n = len(arr)
        c = len(self.free)
        if (n >= 16 and not self.live and c
                and (self.always_open or bool(self.calendar.is_open(times).all()))):
            done = times + svc
            old = np.sort(np.asarray(self.free))
            # busy servers met by arrival i: old ones still busy, plus earlier arrivals not yet done.
            # An earlier arrival j is done by a_i iff d_j <= a_i, and d_j <= a_i implies j < i.
            busy = (c - np.searchsorted(old, times, side="right")) + (
                np.arange(n) - np.searchsorted(np.sort(done), times, side="right"))
            if (busy < c).all():
                union = np.concatenate([old, done])
                self.free = np.sort(union)[-c:].tolist()  # a sorted list is a valid heap
                starts.append((cases.astype(np.int64), times, done))
                return
        self._advance_heap(t_end, arr, starts)

    def keys(self, cases: np.ndarray, times: np.ndarray, due: np.ndarray, boost: np.ndarray) -> list[tuple]:
        """Queue keys of arriving cases (vectorised form of :meth:`key`)."""
        b = (-boost[cases].astype(np.int64)).tolist() if self.discipline != QueueDiscipline.FIFO else [0] * len(cases)
        t = times.tolist()
        if self.discipline == QueueDiscipline.DEADLINE:
            return list(zip(b, due[cases].tolist(), t, strict=True))
        return list(zip(b, t, strict=True))

    def _advance_heap(self, t_end: float, arr: list[tuple[float, int, tuple, float]], starts: list) -> None:
        """The general event loop: priorities, waiting queues and office hours."""
        free = self.free
        i = 0
        n_arr = len(arr)
        cal = self.calendar
        out_c: list[int] = []
        out_s: list[float] = []
        out_d: list[float] = []
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
                self.blocked_until = tau
                break
            while i < n_arr and arr[i][0] <= tau:
                a, c, k, sv = arr[i]
                i += 1
                self.push(c, a, k, sv)
            entry = self._pop()
            if entry is None:
                continue
            case, arrival = entry[2], entry[3]
            start = tau if tau >= arrival else arrival
            if not self.always_open and start != tau:
                start = cal.next_open_scalar(start)
                if start >= t_end:  # it arrived after closing: it waits, first in line, for the next opening
                    self.live[case] = entry
                    heapq.heappush(self.waiting, entry)
                    self.blocked_until = start
                    break
            done = start + entry[4]
            heapq.heapreplace(free, done)
            out_c.append(case)
            out_s.append(start)
            out_d.append(done)
        while i < n_arr:
            a, c, k, sv = arr[i]
            i += 1
            self.push(c, a, k, sv)
        if out_c:
            starts.append((np.array(out_c, dtype=np.int64), np.array(out_s), np.array(out_d)))

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

    def detection(self, cases: np.ndarray, extra_detection: float = 0.0) -> np.ndarray:
        """Detection probability a department expects for each case: standing policies, any pressure on
        the case, and the threats in the request (capped at 1)."""
        cs = self.model.cases
        sup = self.model.settings.supervision
        detect = (self.base_detection() + extra_detection
                  + sup.detect_tattle * cs.tattle[cases] + sup.detect_collective * cs.collective[cases])
        return np.minimum(detect, 1.0)

    def respond_probability(self, cases: np.ndarray, extra_detection: float = 0.0) -> np.ndarray:
        m = self.model
        cs = m.cases
        dept = cs.dept[cases]
        detect = self.detection(cases, extra_detection)
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
             + self.s.resolution_accountability_weight * self.detection(cases)
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
