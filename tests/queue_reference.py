"""The readable reference of the queue rules: the pure-Python ``ServerPool`` that sim/queues.py used before
its compiled rewrite, kept verbatim (only its imports changed).

The compiled :class:`sim.queues.QueueBank` must follow exactly these rules; tests/test_sim_queues.py holds
the two equal (the same start and completion times, the same start order, the same waiting counts).

Original description: multi-server queues in continuous time, advanced one step (hour) at a time, and their
disciplines.

Used twice: by the platform's operators (intake, always first come first served) and by every
department (its staff are the servers). A queue knows nothing of cases beyond an id, an arrival time
(hours since the start of the run), a service time (elapsed hours) and a priority key.

Queue order is written once, in :data:`DISCIPLINES`: one small function per discipline that builds the
priority keys of a batch of cases from their arrival times, due times and ``boost`` (0 = not pressed,
1 = reminded, supervised or reopened, 2 = under a supervision order or escalated). Smaller keys are
served first; ties are broken by the order in which cases joined the queue.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from sim.scenario import QueueDiscipline

if TYPE_CHECKING:  # pragma: no cover
    from sim.calendar import WorkCalendar

KeyFunction = Callable[[Sequence[float], Sequence[float], Sequence[int]], list[tuple]]


def fifo_keys(arrival: Sequence[float], due: Sequence[float], boost: Sequence[int]) -> list[tuple]:
    """First come, first served: arrival time only (pressure does not reorder the queue)."""
    return [(0, a) for a in arrival]


def supervised_keys(arrival: Sequence[float], due: Sequence[float], boost: Sequence[int]) -> list[tuple]:
    """Pressed cases first (higher ``boost`` first), then arrival time."""
    return [(-b, a) for b, a in zip(boost, arrival, strict=True)]


def deadline_keys(arrival: Sequence[float], due: Sequence[float], boost: Sequence[int]) -> list[tuple]:
    """Pressed cases first, then the earliest due time, then arrival time."""
    return [(-b, d, a) for b, d, a in zip(boost, due, arrival, strict=True)]


def easy_first_keys(arrival: Sequence[float], boost: Sequence[int], service: Sequence[float]) -> list[tuple]:
    """Cherry-picking: pressed cases first, then the shortest handling time, then arrival time. Not a
    discipline a scenario sets, but an order a department may choose for itself (sim.departments)."""
    return [(-b, s, a) for b, s, a in zip(boost, service, arrival, strict=True)]


#: The queue order of each discipline (the only place it is written).
DISCIPLINES: dict[QueueDiscipline, KeyFunction] = {
    QueueDiscipline.FIFO: fifo_keys,
    QueueDiscipline.SUPERVISED: supervised_keys,
    QueueDiscipline.DEADLINE: deadline_keys,
}


class ServerPool:
    """A multi-server queue in continuous time, advanced one step at a time.

    ``servers`` cases are handled at once. A server free at ``s`` takes the best waiting case that has
    arrived by ``max(s, arrival)``; when the pool keeps office hours (``always_open`` False), a start is
    moved to the next open time of ``calendar``. This is exact for FIFO (the Erlang C check relies on
    it). Priorities can be raised while a case waits (a fresh heap entry; the stale one is skipped).
    """

    __slots__ = ("free", "waiting", "live", "arrivals", "seq", "always_open", "calendar", "discipline",
                 "order", "blocked_until", "easy_first")

    def __init__(self, servers: int, always_open: bool, calendar: WorkCalendar,
                 discipline: QueueDiscipline = QueueDiscipline.FIFO) -> None:
        self.free: list[float] = [0.0] * int(servers)  # a heap of the times each server is next free (h)
        self.waiting: list[tuple] = []  # heap of (key, seq, case, arrival, service)
        self.live: dict[int, tuple] = {}  # case -> its current heap entry
        self.arrivals: list[tuple[np.ndarray, np.ndarray]] = []
        self.seq = 0
        self.always_open = always_open
        self.calendar = calendar
        self.discipline = discipline
        self.order = DISCIPLINES[discipline]
        self.blocked_until = 0.0  # with cases waiting: no start is possible before this time (h)
        self.easy_first = False  # the department serves the shortest cases first (cherry-picking)

    def __len__(self) -> int:
        """Cases waiting (not yet started)."""
        return len(self.live)

    def key(self, arrival: float, due: float, boost: int, service: float = 0.0) -> tuple:
        """The priority key of one case (see :data:`DISCIPLINES`; :func:`easy_first_keys` when cherry-picking,
        which also needs the case's ``service`` time)."""
        return self.keys_of([arrival], [due], [boost], [service])[0]

    def keys(self, arrival: np.ndarray, due: np.ndarray, boost: np.ndarray,
             service: np.ndarray | None = None) -> list[tuple]:
        """The priority keys of a batch of cases (numpy arrays), as Python tuples."""
        svc = service.tolist() if service is not None else [0.0] * len(arrival)
        return self.keys_of(arrival.tolist(), due.tolist(), boost.tolist(), svc)

    def keys_of(self, arrival: Sequence[float], due: Sequence[float], boost: Sequence[int],
                service: Sequence[float]) -> list[tuple]:
        """The priority keys of a batch of cases (Python sequences), in the pool's current order."""
        if self.easy_first:
            return easy_first_keys(arrival, boost, service)
        return self.order(arrival, due, boost)

    def set_easy_first(self, on: bool, due: np.ndarray, boost: np.ndarray) -> None:
        """Switch cherry-picking on or off; the waiting cases are re-keyed (``due``, ``boost`` by case id)."""
        if on == self.easy_first:
            return
        self.easy_first = on
        if not self.live:
            return
        entries = sorted(self.live.values(), key=lambda e: e[1])  # in the order they joined
        cases = [e[2] for e in entries]
        keys = self.keys_of([e[3] for e in entries], due[cases].tolist(), boost[cases].tolist(),
                            [e[4] for e in entries])
        self.waiting = []
        self.live = {}
        for e, k in zip(entries, keys, strict=True):
            self.push(e[2], e[3], k, e[4])

    def arrive(self, cases: np.ndarray, times: np.ndarray) -> None:
        """Cases reach the queue at the given times (during the current step); see :meth:`advance`."""
        self.arrivals.append((np.asarray(cases, dtype=np.int64), np.asarray(times, dtype=float)))

    def push(self, case: int, arrival: float, key: tuple, service: float) -> None:
        """Put one case in the waiting line."""
        self.seq += 1
        entry = (key, self.seq, case, arrival, service)
        self.live[case] = entry
        heapq.heappush(self.waiting, entry)

    def raise_priority(self, case: int, key: tuple) -> None:
        """Move a waiting case forward if ``key`` ranks it higher than it is now (no effect otherwise)."""
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
        """Start every case that can start before ``t_end`` (h), taking this step's :meth:`arrive` calls.

        ``service_time``, ``due`` and ``boost`` are indexed by case id. Appends (cases, start times,
        completion times) to ``starts``.
        """
        if not self.arrivals and not self.live:
            return
        if self.arrivals:
            cases = np.concatenate([a[0] for a in self.arrivals])
            times = np.concatenate([a[1] for a in self.arrivals])
            self.arrivals = []
            order = np.lexsort((cases, times))
            cases, times = cases[order], times[order]
        else:
            cases, times = np.zeros(0, dtype=np.int64), np.zeros(0)
        svc = service_time[cases]
        arr = self.entries(cases, times, due[cases], boost[cases], svc)
        self.run_sorted(t_end, cases, times, svc, arr, starts)

    def entries(self, cases: np.ndarray, times: np.ndarray, due: np.ndarray, boost: np.ndarray,
                svc: np.ndarray) -> list[tuple[float, int, tuple, float]]:
        """Arrivals in the form :meth:`run_sorted` takes: (time, case, key, service) per case."""
        if len(cases) == 0:
            return []
        t = times.tolist()
        s = svc.tolist()
        return list(zip(t, cases.tolist(), self.keys_of(t, due.tolist(), boost.tolist(), s), s, strict=True))

    def run_sorted(self, t_end: float, cases: np.ndarray, times: np.ndarray, svc: np.ndarray,
                   arr: list[tuple[float, int, tuple, float]], starts: list) -> None:
        """Advance to ``t_end`` with this step's arrivals already sorted by (time, case).

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
