"""Multi-server queues in continuous time, advanced one step (hour) at a time, and their disciplines.

Used twice: by the platform's operators (one intake queue, always first come first served) and by the
departments (one queue per department; its staff are the servers). A queue knows nothing of cases beyond
an id, an arrival time (hours since the start of the run), a work time (elapsed hours) and a priority key.

All queues of one kind live in one :class:`QueueBank`: flat numpy arrays (every queue's servers' free
times as a binary heap, every queue's waiting line as a binary heap of rows) that compiled kernels
(numba, ``cache=True``: compiled once per machine, then loaded from ``__pycache__``) advance together, one
call per step. ``NUMBA_DISABLE_JIT=1`` runs the same functions as plain Python (slowly; the test suite
runs a part of itself that way to show both give the same results).

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

from typing import TYPE_CHECKING

import numba
import numpy as np

from .scenario import QueueDiscipline

if TYPE_CHECKING:  # pragma: no cover
    from .calendar import WorkCalendar

#: The key code of each discipline (:func:`queue_key`); EASY_FIRST is a department's own choice.
FIFO, SUPERVISED, DEADLINE, EASY_FIRST = 0, 1, 2, 3
MODES: dict[QueueDiscipline, int] = {QueueDiscipline.FIFO: FIFO, QueueDiscipline.SUPERVISED: SUPERVISED,
                                     QueueDiscipline.DEADLINE: DEADLINE}
#: Columns of a waiting-line row: the key (3), the join order, the case, its arrival time and work time.
K0, K1, K2, SEQ, CASE, ARRIVAL, WORK = range(7)
ROW = 7

jit = numba.njit(cache=True, nogil=True)


# ------------------------------------------------------------------------------------------ keys
@jit
def queue_key(mode: int, arrival: float, due: float, boost: float, work: float) -> tuple[float, float, float]:
    """The priority key of one case in a queue of ``mode`` (FIFO, SUPERVISED, DEADLINE or EASY_FIRST)."""
    if mode == FIFO:
        return 0.0, arrival, 0.0
    if mode == SUPERVISED:
        return -boost, arrival, 0.0
    if mode == DEADLINE:
        return -boost, due, arrival
    return -boost, work, arrival


@jit
def _before(a0: float, a1: float, a2: float, a3: float, b0: float, b1: float, b2: float, b3: float) -> bool:
    """Whether key+order a comes before b (compared element by element, as Python compares tuples)."""
    if a0 != b0:
        return a0 < b0
    if a1 != b1:
        return a1 < b1
    if a2 != b2:
        return a2 < b2
    return a3 < b3


# ------------------------------------------------------------------------- heaps of waiting rows
@jit
def _row_before(h: np.ndarray, i: int, j: int) -> bool:
    return _before(h[i, 0], h[i, 1], h[i, 2], h[i, 3], h[j, 0], h[j, 1], h[j, 2], h[j, 3])


@jit
def _push_row(h: np.ndarray, off: int, n: int, row: np.ndarray) -> int:
    """Push ``row`` onto the heap ``h[off:off + n]``; returns the new length (capacity reserved beforehand)."""
    pos = n
    while pos > 0:
        parent = (pos - 1) >> 1
        p = off + parent
        if _before(row[0], row[1], row[2], row[3], h[p, 0], h[p, 1], h[p, 2], h[p, 3]):
            h[off + pos, :] = h[p, :]
            pos = parent
        else:
            break
    h[off + pos, :] = row
    return n + 1


@jit
def _pop_row(h: np.ndarray, off: int, n: int, out: np.ndarray) -> int:
    """Pop the smallest row of the heap ``h[off:off + n]`` into ``out``; returns the new length."""
    out[:] = h[off, :]
    n -= 1
    if n == 0:
        return 0
    last = h[off + n, :].copy()
    pos = 0
    while True:
        child = 2 * pos + 1
        if child >= n:
            break
        if child + 1 < n and _row_before(h, off + child + 1, off + child):
            child += 1
        c = off + child
        if _before(h[c, 0], h[c, 1], h[c, 2], h[c, 3], last[0], last[1], last[2], last[3]):
            h[off + pos, :] = h[c, :]
            pos = child
        else:
            break
    h[off + pos, :] = last
    return n


# -------------------------------------------------------------------------- heaps of free times
@jit
def _replace_min(f: np.ndarray, off: int, n: int, value: float) -> None:
    """Replace the smallest of the free times ``f[off:off + n]`` (a heap) by ``value``."""
    pos = 0
    while True:
        child = 2 * pos + 1
        if child >= n:
            break
        if child + 1 < n and f[off + child + 1] < f[off + child]:
            child += 1
        if f[off + child] < value:
            f[off + pos] = f[off + child]
            pos = child
        else:
            break
    f[off + pos] = value


# ------------------------------------------------------------------------------------ calendar
@jit
def _next_open(t: float, always_open: bool, open_hour: np.ndarray, next_open_hour: np.ndarray) -> float:
    """The earliest time >= t at which the queue works (t itself when open; office hours are whole hours)."""
    if always_open:
        return t
    h = int(t)
    if h >= len(open_hour):
        return t
    if open_hour[h]:
        return t
    return next_open_hour[h]


@jit
def _is_open(t: float, open_hour: np.ndarray) -> bool:
    h = int(t)
    return h < len(open_hour) and open_hour[h]


# ---------------------------------------------------------------------------------- the kernels
@jit
def _push_case(h, hoff, hlen, nlive, live_seq, key_boost, seq, q, case, arrival, work, k0, k1, k2, boost,
               row):
    seq[0] += 1
    row[0], row[1], row[2] = k0, k1, k2
    row[3] = seq[0]
    row[4] = case
    row[5] = arrival
    row[6] = work
    if live_seq[case] == 0:
        nlive[q] += 1
    live_seq[case] = seq[0]
    key_boost[case] = boost
    hlen[q] = _push_row(h, hoff[q], hlen[q], row)


@jit
def _start_all_on_arrival(times, work, free, fo, c, always_open, open_hour) -> bool:
    """If every arrival (sorted by time) finds a free server at its arrival time, in an open hour, start
    them all there (the queue's server free times ``free[fo:fo + c]`` updated) and return True; otherwise
    change nothing and return False. Each arrival takes the server free soonest, which must be free by then."""
    if not always_open:
        for i in range(len(times)):
            if not _is_open(times[i], open_hour):
                return False
    trial = free[fo:fo + c].copy()
    for i in range(len(times)):
        if trial[0] > times[i]:
            return False
        _replace_min(trial, 0, c, times[i] + work[i])
    free[fo:fo + c] = trial
    return True


@jit
def _pop_live(h, hoff, hlen, nlive, live_seq, q, top) -> bool:
    """Pop queue ``q``'s best waiting case into ``top`` (stale rows are dropped); False if none waits."""
    while hlen[q] > 0:
        hlen[q] = _pop_row(h, hoff[q], hlen[q], top)
        case = int(top[CASE])
        if live_seq[case] == top[SEQ]:
            live_seq[case] = 0
            nlive[q] -= 1
            return True
    return False


@jit
def _event_loop(q, t_end, lo, na, a_case, a_time, a_work, a_k, a_boost, c, fo, free, h, hoff, hlen, nlive,
                blocked, live_seq, key_boost, seq, always_open, open_hour, next_open_hour, out_case, out_start,
                out_done, n_out, row, top):
    """The general event loop of queue ``q`` (priorities, waiting lines and office hours) until ``t_end``;
    returns the new number of starts in ``out_*``."""
    i = 0
    while c > 0:
        s = free[fo]
        if nlive[q] == 0:
            if i >= na:
                break
            tau = s if s > a_time[lo + i] else a_time[lo + i]
        else:
            tau = s
        tau = _next_open(tau, always_open, open_hour, next_open_hour)
        if tau >= t_end:
            blocked[q] = tau
            break
        while i < na and a_time[lo + i] <= tau:
            j = lo + i
            _push_case(h, hoff, hlen, nlive, live_seq, key_boost, seq, q, a_case[j], a_time[j], a_work[j],
                       a_k[j, 0], a_k[j, 1], a_k[j, 2], a_boost[j], row)
            i += 1
        if not _pop_live(h, hoff, hlen, nlive, live_seq, q, top):
            continue
        case = int(top[CASE])
        arrival = top[ARRIVAL]
        start = tau if tau >= arrival else arrival
        if not always_open and start != tau:
            start = _next_open(start, always_open, open_hour, next_open_hour)
            if start >= t_end:  # it arrived after closing: it waits, first in line, for the next opening
                live_seq[case] = top[SEQ]
                nlive[q] += 1
                hlen[q] = _push_row(h, hoff[q], hlen[q], top)
                blocked[q] = start
                break
        fin = start + top[WORK]
        _replace_min(free, fo, c, fin)
        out_case[n_out] = case
        out_start[n_out] = start
        out_done[n_out] = fin
        n_out += 1
    while i < na:
        j = lo + i
        _push_case(h, hoff, hlen, nlive, live_seq, key_boost, seq, q, a_case[j], a_time[j], a_work[j],
                   a_k[j, 0], a_k[j, 1], a_k[j, 2], a_boost[j], row)
        i += 1
    return n_out


@jit
def advance_all(t_end, active, a_off, a_case, a_time, a_work, a_k, a_boost, servers, foff, free, h, hoff,
                hlen, nlive, blocked, live_seq, key_boost, seq, always_open, open_hour, next_open_hour):
    """Run every active queue until ``t_end`` (h), taking this step's arrivals; returns (cases, start times,
    completion times) of the cases started.

    Arrivals are sorted by (queue, time, case), those of queue q at ``a_off[q]:a_off[q + 1]``, with their
    keys ``a_k`` (n, 3). Starts go to ``out_*`` in queue order, each queue's in start order. A queue stays
    ``active`` while cases wait in it.

    Fast path (same result): when nobody waits and at least 16 cases arrive, all of which find a free server
    at their arrival time, each case starts on arrival, in arrival order (a case that would have to wait
    sends the queue to the general event loop instead, which orders starts by key).
    """
    size = len(a_case)
    for q in range(len(servers)):
        if active[q]:
            size += nlive[q]
    out_case = np.empty(size, dtype=np.int64)
    out_start = np.empty(size)
    out_done = np.empty(size)
    n_out = 0
    row = np.empty(ROW)
    top = np.empty(ROW)
    for q in range(len(servers)):
        if not active[q]:
            continue
        lo = a_off[q]
        na = a_off[q + 1] - lo
        if na == 0 and blocked[q] >= t_end and nlive[q] > 0:
            continue  # every server busy (or the office closed) past this step
        c = servers[q]
        fo = foff[q]
        if na >= 16 and nlive[q] == 0 and c > 0 and _start_all_on_arrival(
                a_time[lo:lo + na], a_work[lo:lo + na], free, fo, c, always_open, open_hour):
            for i in range(na):
                out_case[n_out] = a_case[lo + i]
                out_start[n_out] = a_time[lo + i]
                out_done[n_out] = a_time[lo + i] + a_work[lo + i]
                n_out += 1
        else:
            n_out = _event_loop(q, t_end, lo, na, a_case, a_time, a_work, a_k, a_boost, c, fo, free, h, hoff,
                                hlen, nlive, blocked, live_seq, key_boost, seq, always_open, open_hour,
                                next_open_hour, out_case, out_start, out_done, n_out, row, top)
        active[q] = nlive[q] > 0
    return out_case[:n_out], out_start[:n_out], out_done[:n_out]


@jit
def prepare_arrivals(q, cases, times, work, due, boost, mode, n_queues, hlen, hcap, active):
    """This step's arrivals sorted by (queue, time, case), with their keys (``mode`` by queue) and the
    offsets of each queue's arrivals; their queues become active. Also returns the queues whose heap storage
    lacks room for their arrivals (plus one row)."""
    order = np.argsort(cases, kind="mergesort")
    order = order[np.argsort(times[order], kind="mergesort")]
    order = order[np.argsort(q[order], kind="mergesort")]
    n = len(order)
    s_q = q[order]
    s_case = cases[order]
    s_time = times[order]
    s_work = work[order]
    s_boost = boost[order]
    keys = np.empty((n, 3))
    counts = np.zeros(n_queues, dtype=np.int64)
    for j in range(n):
        k0, k1, k2 = queue_key(mode[s_q[j]], s_time[j], due[order[j]], s_boost[j], s_work[j])
        keys[j, 0], keys[j, 1], keys[j, 2] = k0, k1, k2
        counts[s_q[j]] += 1
    a_off = np.zeros(n_queues + 1, dtype=np.int64)
    n_short = 0
    short = np.empty(n_queues, dtype=np.int64)
    for qq in range(n_queues):
        a_off[qq + 1] = a_off[qq] + counts[qq]
        if counts[qq]:
            active[qq] = True
            if hlen[qq] + counts[qq] + 1 > hcap[qq]:
                short[n_short] = qq
                n_short += 1
    return s_q, s_case, s_time, s_work, s_boost, keys, a_off, counts, short[:n_short]


@jit
def remove_all(q, cases, live_seq, nlive):
    """Withdraw the waiting ``cases`` from their queues ``q``; True where a case was waiting."""
    out = np.zeros(len(cases), dtype=np.bool_)
    for i in range(len(cases)):
        if live_seq[cases[i]] > 0:
            live_seq[cases[i]] = 0
            nlive[q[i]] -= 1
            out[i] = True
    return out


@jit
def raise_all(q, cases, arrival, due, boost, work, mode, h, hoff, hlen, nlive, live_seq, key_boost, seq):
    """Waiting cases move up their queues when ``boost`` gives them a better key than the one they hold;
    returns how many moved."""
    row = np.empty(ROW)
    moved = 0
    for i in range(len(cases)):
        c = cases[i]
        if live_seq[c] == 0:
            continue
        m = mode[q[i]]
        o0, o1, o2 = queue_key(m, arrival[i], due[i], key_boost[c], work[i])
        n0, n1, n2 = queue_key(m, arrival[i], due[i], boost[i], work[i])
        if _before(n0, n1, n2, 0.0, o0, o1, o2, 0.0):
            _push_case(h, hoff, hlen, nlive, live_seq, key_boost, seq, q[i], c, arrival[i], work[i],
                       n0, n1, n2, boost[i], row)
            moved += 1
    return moved


@jit
def rekey(q, m, due, boost, h, hoff, hlen, nlive, live_seq, key_boost, seq):
    """Queue ``q`` takes order ``m``: its waiting cases are keyed afresh (``due``, ``boost`` by case id)
    and keep the order in which they joined among equal keys."""
    off, n = hoff[q], hlen[q]
    rows = np.empty((n, ROW))
    k = 0
    for i in range(n):
        case = int(h[off + i, CASE])
        if live_seq[case] == h[off + i, SEQ]:
            rows[k, :] = h[off + i, :]
            k += 1
    rows = rows[:k]
    order = np.argsort(rows[:, SEQ])
    hlen[q] = 0
    nlive[q] -= k
    row = np.empty(ROW)
    for j in range(k):
        r = rows[order[j]]
        case = int(r[CASE])
        live_seq[case] = 0
        k0, k1, k2 = queue_key(m, r[ARRIVAL], due[case], boost[case], r[WORK])
        _push_case(h, hoff, hlen, nlive, live_seq, key_boost, seq, q, case, r[ARRIVAL], r[WORK], k0, k1, k2,
                   boost[case], row)


# ----------------------------------------------------------------------------------- the bank
class QueueBank:
    """Many multi-server queues, one per index, in flat arrays, advanced together by compiled kernels.

    ``servers[q]``: cases queue ``q`` handles at once. ``always_open``: the queues work 7×24 (otherwise in
    the calendar's office hours). ``discipline``: their order (:data:`MODES`). Attributes: ``nlive`` (cases
    waiting in each queue, not yet started), ``blocked`` (with cases waiting: no start is possible in that
    queue before this time, h), ``easy_first`` (queues serving the shortest cases first).
    """

    def __init__(self, servers: np.ndarray, always_open: bool, calendar: WorkCalendar,
                 discipline: QueueDiscipline = QueueDiscipline.FIFO, cases: int = 1024) -> None:
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
            self._cover(cases)
            q, cases, times, work, boost, keys, a_off, counts, short = prepare_arrivals(
                np.asarray(q, dtype=np.int64), cases, np.asarray(times, dtype=float), np.asarray(work, dtype=float),
                np.asarray(due, dtype=float), np.asarray(boost, dtype=np.int8), self._modes(), self.n, self.hlen,
                self.hcap, self.active)
            if len(short):
                self._reserve(short, counts[short] + 1)
        else:
            q, cases, times, work, boost, keys, a_off = self._no_arrivals
        return advance_all(float(t_end), self.active, a_off, cases, times, work, keys, boost, self.servers,
                           self.foff, self.free, self.heap, self.hoff, self.hlen, self.nlive, self.blocked,
                           self.live_seq, self.key_boost, self.seq, self.always_open, self.open_hour,
                           self.next_open_hour)

    def remove(self, q: np.ndarray, cases: np.ndarray) -> np.ndarray:
        """Withdraw waiting cases (their requesters gave up) from queues ``q``; False where a case was not
        waiting (not yet handed to the queue, already started, never there, or withdrawn earlier in the list)."""
        cases = np.asarray(cases, dtype=np.int64)
        self._cover(cases)
        return remove_all(np.asarray(q, dtype=np.int64), cases, self.live_seq, self.nlive)

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
        return int(raise_all(q, cases, np.asarray(arrival, dtype=float), np.asarray(due, dtype=float),
                             np.asarray(boost, dtype=np.int8), np.asarray(work, dtype=float), self._modes(),
                             self.heap, self.hoff, self.hlen, self.nlive, self.live_seq, self.key_boost, self.seq))

    def set_easy_first(self, q: int, on: bool, due: np.ndarray, boost: np.ndarray) -> None:
        """Queue ``q`` starts or stops serving the shortest cases first; its waiting cases are keyed afresh
        (``due``, ``boost`` by case id)."""
        if bool(self.easy_first[q]) == on:
            return
        self.easy_first[q] = on
        if self.nlive[q] == 0:
            return
        rekey(q, int(self._modes()[q]), np.asarray(due, dtype=float), np.asarray(boost, dtype=np.int8),
              self.heap, self.hoff, self.hlen, self.nlive, self.live_seq, self.key_boost, self.seq)

    def _modes(self) -> np.ndarray:
        return np.where(self.easy_first, EASY_FIRST, self.mode)
