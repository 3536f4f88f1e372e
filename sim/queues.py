"""Multi-server queues in continuous time, advanced one step (hour) at a time, and their disciplines.

Used twice: by the platform's operators (one intake queue, always first come first served) and by the
departments (one queue per department; its staff are the servers). A queue knows nothing of cases beyond
an id, an arrival time (hours since the start of the run), a work time (elapsed hours) and a priority key.

All queues of one kind live in one :class:`QueueBank`: flat numpy arrays (every queue's servers' free
times as a binary heap, every queue's waiting line as a binary heap of rows) that the kernels of
:mod:`sim.kernels` advance together, one call per step. The kernels are numba-compiled or plain Python,
as :mod:`sim.jit` chooses for the run; both give the same results (the test suite runs both).

Queue order is written once, in :func:`queue_key`: the priority key of a case is three numbers, compared
in order (smaller first), from its arrival time, due time, work time and ``boost`` (0 = not pressed, 1 =
reminded, supervised or reopened, 2 = under a supervision order or escalated):

* ``fifo`` — (0, arrival, 0): arrival order only (pressure does not reorder the queue);
* ``supervised`` — (−boost, arrival, 0): pressed cases first, then arrival;
* ``deadline`` — (−boost, due, arrival): pressed cases first, then the earliest due time;
* easy first (cherry-picking; not a discipline a scenario sets, but an order a department may choose
  for itself, sim.departments) — (−boost, work, arrival).

Ties are broken by the order in which cases joined the queue. A server free at ``s`` takes the best waiting
case that has arrived by ``max(s, arrival)``; when the queues keep office hours (``always_open`` False),
a start is moved to the next open time of the calendar. This is exact for FIFO (the Erlang C check relies
on it). Priorities can be raised while a case waits (a fresh heap row; the stale one is skipped when it
comes to the top), and a waiting case can be withdrawn.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from .kernels import (
    ARRIVAL,
    CASE,
    DEADLINE,
    EASY_FIRST,
    FIFO,
    K0,
    K1,
    K2,
    ROW,
    SEQ,
    SUPERVISED,
    WORK,
    queue_key,
)
from .scenario import QueueDiscipline

if TYPE_CHECKING:  # pragma: no cover
    from .calendar import WorkCalendar

__all__ = ["ARRIVAL", "CASE", "DEADLINE", "EASY_FIRST", "FIFO", "K0", "K1", "K2", "MODES", "ROW", "SEQ",
           "SUPERVISED", "WORK", "QueueBank", "queue_key"]

#: The key code of each discipline (:func:`sim.kernels.queue_key`).
MODES: dict[QueueDiscipline, int] = {QueueDiscipline.FIFO: FIFO, QueueDiscipline.SUPERVISED: SUPERVISED,
                                     QueueDiscipline.DEADLINE: DEADLINE}


# ----------------------------------------------------------------------------------- the bank
class QueueBank:
    """Many multi-server queues, one per index, in flat arrays, advanced together by the kernels.

    ``servers[q]``: cases queue ``q`` handles at once. ``always_open``: the queues work 7×24 (otherwise in
    the calendar's office hours). ``discipline``: their order (:data:`MODES`). ``kernels``: the kernels
    module (:func:`sim.jit.kernels`; by default as :func:`sim.jit.choose` chooses for ``cases``). Attributes: ``nlive`` (cases
    waiting in each queue, not yet started), ``blocked`` (with cases waiting: no start is possible in that
    queue before this time, h), ``easy_first`` (queues serving the shortest cases first).
    """

    def __init__(self, servers: np.ndarray, always_open: bool, calendar: WorkCalendar,
                 discipline: QueueDiscipline = QueueDiscipline.FIFO, cases: int = 1024,
                 kernels: ModuleType | None = None) -> None:
        if kernels is None:
            from .jit import choose
            from .jit import kernels as load

            kernels = load(choose(cases))
        self.k = kernels
        self.servers = np.asarray(servers, dtype=np.int64).copy()
        n = len(self.servers)
        self.n = n
        self.always_open = bool(always_open)
        self.calendar = calendar
        self.discipline = discipline
        self.mode = np.full(n, MODES[discipline], dtype=np.int64)
        self.foff = np.concatenate([[0], np.cumsum(self.servers)[:-1]]).astype(np.int64)
        self.free = np.zeros(int(self.servers.sum()))  # per queue, a heap of the times each server is next free
        self.hoff = np.zeros(n, dtype=np.int64)
        self.hcap = np.zeros(n, dtype=np.int64)
        self.hlen = np.zeros(n, dtype=np.int64)  # heap rows, stale ones included
        self.heap = np.zeros((0, ROW))
        self.nlive = np.zeros(n, dtype=np.int64)
        self.blocked = np.zeros(n)
        self.active = np.zeros(n, dtype=bool)
        self.easy_first = np.zeros(n, dtype=bool)
        self._mode_now = self.mode.copy()  # each queue's key code today (_modes), kept by set_easy_first
        self.seq = np.zeros(1, dtype=np.int64)
        self.live_seq = np.zeros(max(16, cases), dtype=np.int64)  # per case: its live row's order (0: not waiting)
        self.key_boost = np.zeros(max(16, cases), dtype=np.int8)  # per case: the boost its live key was made with
        self.open_hour = np.asarray(calendar._open_hour_arr, dtype=np.bool_)
        self.next_open_hour = np.asarray(calendar._next_open_hour_arr, dtype=float)
        none = np.zeros(0, dtype=np.int64)
        self._no_arrivals = (none, none, np.zeros(0), np.zeros(0), np.zeros(0, np.int8), np.zeros((0, 3)),
                             np.zeros(n + 1, dtype=np.int64))

    def __len__(self) -> int:
        """Cases waiting in all queues."""
        return int(self.nlive.sum())

    # ------------------------------------------------------------------------------------ storage
    def _cover(self, cases: np.ndarray) -> None:
        """Grow the per-case arrays to hold the ids ``cases``."""
        if len(cases) == 0:
            return
        need = int(cases.max()) + 1
        if need > len(self.live_seq):
            size = max(need, int(len(self.live_seq) * 1.5) + 16)
            self.live_seq = np.concatenate([self.live_seq, np.zeros(size - len(self.live_seq), np.int64)])
            self.key_boost = np.concatenate([self.key_boost, np.zeros(size - len(self.key_boost), np.int8)])

    def _reserve(self, q: np.ndarray, extra: np.ndarray) -> None:
        """Make room for ``extra`` more rows in each queue ``q`` (unique). A queue that outgrows its block
        moves to a new block at least twice as large at the end of the storage; as blocks double, those a
        queue left behind hold fewer rows than its current one, so the storage stays under twice the rows
        the queues can hold."""
        short = self.hlen[q] + extra > self.hcap[q]
        if not short.any():
            return
        grow, extra = q[short], extra[short]
        new_cap = np.maximum(2 * self.hcap[grow], self.hlen[grow] + extra + 16)
        end = len(self.heap)
        start = end + np.concatenate([[0], np.cumsum(new_cap)[:-1]]).astype(np.int64)
        heap = np.zeros((end + int(new_cap.sum()), ROW))
        heap[:end] = self.heap
        for k, s in zip(grow.tolist(), start.tolist(), strict=True):
            heap[s:s + self.hlen[k]] = self.heap[self.hoff[k]:self.hoff[k] + self.hlen[k]]
        self.heap = heap
        self.hoff[grow] = start
        self.hcap[grow] = new_cap

    # ------------------------------------------------------------------------------------ running
    def run(self, t_end: float, q: np.ndarray, cases: np.ndarray, times: np.ndarray, work: np.ndarray,
            due: np.ndarray, boost: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cases join queues ``q`` at ``times`` (h; this step's arrivals, any order) with their ``work``
        (elapsed hours), ``due`` times and ``boost``; then every queue with work starts all it can before
        ``t_end`` (h). Returns (cases, start times, completion times) of the cases started, queue by queue."""
        if len(cases):
            cases = np.asarray(cases, dtype=np.int64)
            q, times, work = np.asarray(q, dtype=np.int64), np.asarray(times, dtype=float), np.asarray(work, dtype=float)
            due, boost = np.asarray(due, dtype=float), np.asarray(boost, dtype=np.int8)
            if self.k.COMPILED:  # both kernels in one call, unless the storage must grow first
                done, started, begun, fin = self.k.run_step(
                    float(t_end), q, cases, times, work, due, boost, self._mode_now, self.n, self.hcap, self.active,
                    self.servers, self.foff, self.free, self.heap, self.hoff, self.hlen, self.nlive, self.blocked,
                    self.live_seq, self.key_boost, self.seq, self.always_open, self.open_hour, self.next_open_hour)
                if done:
                    return started, begun, fin
            self._cover(cases)
            q, cases, times, work, boost, keys, a_off, counts, short = self.k.prepare_arrivals(
                q, cases, times, work, due, boost, self._modes(), self.n, self.hlen, self.hcap, self.active)
            if len(short):
                self._reserve(short, counts[short] + 1)
        else:
            q, cases, times, work, boost, keys, a_off = self._no_arrivals
        return self.k.advance_all(float(t_end), self.active, a_off, cases, times, work, keys, boost, self.servers,
                           self.foff, self.free, self.heap, self.hoff, self.hlen, self.nlive, self.blocked,
                           self.live_seq, self.key_boost, self.seq, self.always_open, self.open_hour,
                           self.next_open_hour)

    def remove(self, q: np.ndarray, cases: np.ndarray) -> np.ndarray:
        """Withdraw waiting cases (their requesters gave up) from queues ``q``; False where a case was not
        waiting (not yet handed to the queue, already started, never there, or withdrawn earlier in the list)."""
        cases = np.asarray(cases, dtype=np.int64)
        self._cover(cases)
        return self.k.remove_all(np.asarray(q, dtype=np.int64), cases, self.live_seq, self.nlive)

    def raise_priority(self, q: np.ndarray, cases: np.ndarray, arrival: np.ndarray, due: np.ndarray,
                       boost: np.ndarray, work: np.ndarray) -> int:
        """Waiting cases move up their queues ``q`` if their ``boost`` now gives them a better key (no effect
        otherwise; ``arrival``, ``work`` as when they joined). Returns how many moved."""
        q = np.asarray(q, dtype=np.int64)
        cases = np.asarray(cases, dtype=np.int64)
        if len(cases) == 0:
            return 0
        self._cover(cases)
        uq, cnt = np.unique(q, return_counts=True)
        self._reserve(uq, cnt)
        return int(self.k.raise_all(q, cases, np.asarray(arrival, dtype=float), np.asarray(due, dtype=float),
                             np.asarray(boost, dtype=np.int8), np.asarray(work, dtype=float), self._modes(),
                             self.heap, self.hoff, self.hlen, self.nlive, self.live_seq, self.key_boost, self.seq))

    def set_easy_first(self, q: int, on: bool, due: np.ndarray, boost: np.ndarray) -> None:
        """Queue ``q`` starts or stops serving the shortest cases first; its waiting cases are keyed afresh
        (``due``, ``boost`` by case id)."""
        if bool(self.easy_first[q]) == on:
            return
        self.easy_first[q] = on
        mode = EASY_FIRST if on else int(self.mode[q])  # the queue's entry of _modes()
        self._mode_now[q] = mode
        if self.nlive[q] == 0:
            return
        self.k.rekey(q, mode, np.asarray(due, dtype=float), np.asarray(boost, dtype=np.int8),
              self.heap, self.hoff, self.hlen, self.nlive, self.live_seq, self.key_boost, self.seq)

    def _modes(self) -> np.ndarray:
        """Each queue's key code: EASY_FIRST where it serves the shortest cases first, else its discipline's
        (``easy_first`` changes only through :meth:`set_easy_first`, which keeps this array)."""
        return self._mode_now
