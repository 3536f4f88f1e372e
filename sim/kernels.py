"""The compiled kernels: the queue loops of :mod:`sim.queues`, the departments' utilities
(:mod:`sim.departments`) and the trust relaxation of :mod:`sim.citizens`.

This file is loaded in two ways (:mod:`sim.jit` chooses, per run): as ``sim.kernels``, the functions are
plain Python; as ``sim._kernels_compiled``, every ``@jit`` function is compiled by numba (``cache=True``:
compiled once per machine, then loaded from ``__pycache__``). Both run the same source, so they give the
same results; the compiled copy is faster on many cases but costs numba's import and first call
(about 0.4 s per process), which a small run does not earn back. Where whole-array numpy calls do the same
operations as a loop, the plain copy uses them instead (:func:`relax_and_shift`,
:func:`prepare_arrivals`, :func:`_queues_to_run`); where a loop over array elements is faster compiled but a
whole-row copy is faster in Python, each copy has its own (:func:`_push_row`, :func:`_pop_row`).

A waiting-line row and the queue disciplines are described in :mod:`sim.queues`.
"""

from __future__ import annotations

import numpy as np

#: Whether this copy of the file is the numba-compiled one (``sim._kernels_compiled``).
COMPILED = __name__.endswith("_compiled")


def _decorator():
    """``numba.njit`` for the compiled copy of this file, the identity for the plain one."""
    if COMPILED:
        import numba

        return numba.njit(cache=True, nogil=True)
    return lambda f: f


jit = _decorator()

#: The key code of each discipline (:func:`queue_key`); EASY_FIRST is a department's own choice.
FIFO, SUPERVISED, DEADLINE, EASY_FIRST = 0, 1, 2, 3
#: Columns of a waiting-line row: the key (3), the join order, the case, its arrival time and work time.
K0, K1, K2, SEQ, CASE, ARRIVAL, WORK = range(7)
ROW = 7


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
    """Push ``row`` onto the heap ``h[off:off + n]``; returns the new length (capacity reserved beforehand).
    Rows are copied element by element (compiled, faster than through array views; the plain copy uses
    :func:`_push_row_slices`)."""
    pos = n
    while pos > 0:
        parent = (pos - 1) >> 1
        p = off + parent
        if _before(row[0], row[1], row[2], row[3], h[p, 0], h[p, 1], h[p, 2], h[p, 3]):
            d = off + pos
            for k in range(ROW):
                h[d, k] = h[p, k]
            pos = parent
        else:
            break
    d = off + pos
    for k in range(ROW):
        h[d, k] = row[k]
    return n + 1


@jit
def _pop_row(h: np.ndarray, off: int, n: int, out: np.ndarray) -> int:
    """Pop the smallest row of the heap ``h[off:off + n]`` into ``out``; returns the new length.

    The last row (``h[off + n - 1]`` before the pop) sifts down from the top; it is read where it lies (the
    sift writes only rows before it), and copied once, to where it ends. Rows are copied element by element
    (the plain copy uses :func:`_pop_row_slices`)."""
    for k in range(ROW):
        out[k] = h[off, k]
    n -= 1
    if n == 0:
        return 0
    e = off + n
    l0, l1, l2, l3 = h[e, 0], h[e, 1], h[e, 2], h[e, 3]
    pos = 0
    while True:
        child = 2 * pos + 1
        if child >= n:
            break
        c = off + child
        if child + 1 < n and _before(h[c + 1, 0], h[c + 1, 1], h[c + 1, 2], h[c + 1, 3], h[c, 0], h[c, 1], h[c, 2],
                                     h[c, 3]):
            child += 1
            c += 1
        if _before(h[c, 0], h[c, 1], h[c, 2], h[c, 3], l0, l1, l2, l3):
            d = off + pos
            for k in range(ROW):
                h[d, k] = h[c, k]
            pos = child
        else:
            break
    d = off + pos
    for k in range(ROW):
        h[d, k] = h[e, k]
    return n


def _push_row_slices(h: np.ndarray, off: int, n: int, row: np.ndarray) -> int:
    """:func:`_push_row` for the plain copy: the same moves, a row at a time (a Python loop over its elements
    costs more)."""
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


def _pop_row_slices(h: np.ndarray, off: int, n: int, out: np.ndarray) -> int:
    """:func:`_pop_row` for the plain copy: the same moves, a row at a time."""
    out[:] = h[off, :]
    n -= 1
    if n == 0:
        return 0
    e = off + n
    l0, l1, l2, l3 = h[e, 0], h[e, 1], h[e, 2], h[e, 3]
    pos = 0
    while True:
        child = 2 * pos + 1
        if child >= n:
            break
        if child + 1 < n and _row_before(h, off + child + 1, off + child):
            child += 1
        c = off + child
        if _before(h[c, 0], h[c, 1], h[c, 2], h[c, 3], l0, l1, l2, l3):
            h[off + pos, :] = h[c, :]
            pos = child
        else:
            break
    h[off + pos, :] = h[e, :]
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
def _take_best_arrival(q, tau, i, lo, na, a_case, a_time, a_work, a_k, a_boost, h, hoff, hlen, nlive, live_seq,
                       key_boost, seq, row, top) -> bool:
    """With nobody waiting in queue ``q``: what pushing the arrivals ``i, i + 1, …`` that have arrived by ``tau``
    (at least one) and popping the best would do, without the heap round trip for the best one. It gets its
    join order and its ``key_boost`` and goes to ``top`` (not waiting); the others join the line, in order.
    Only when none of these cases is waiting anywhere, none is listed twice and every key is a number (then
    returns True; otherwise changes nothing and returns False: the heap's round trip handles them)."""
    k = i
    b = i
    ok = True
    while k < na and a_time[lo + k] <= tau:
        j = lo + k
        case = a_case[j]
        if live_seq[case] != 0 or not (a_k[j, 0] == a_k[j, 0] and a_k[j, 1] == a_k[j, 1] and a_k[j, 2] == a_k[j, 2]):
            ok = False  # (a key that is not a number is not ordered as the heap would order it)
            break
        live_seq[case] = -1  # seen (a case listed twice finds it)
        if k > b:
            bb = lo + b
            if _before(a_k[j, 0], a_k[j, 1], a_k[j, 2], 0.0, a_k[bb, 0], a_k[bb, 1], a_k[bb, 2], 0.0):
                b = k
        k += 1
    for m in range(i, k):
        live_seq[a_case[lo + m]] = 0
    if not ok:
        return False
    for m in range(i, k):
        j = lo + m
        if m == b:
            seq[0] += 1
            key_boost[a_case[j]] = a_boost[j]
            top[0], top[1], top[2] = a_k[j, 0], a_k[j, 1], a_k[j, 2]
            top[3] = seq[0]
            top[4] = a_case[j]
            top[5] = a_time[j]
            top[6] = a_work[j]
        else:
            _push_case(h, hoff, hlen, nlive, live_seq, key_boost, seq, q, a_case[j], a_time[j], a_work[j],
                       a_k[j, 0], a_k[j, 1], a_k[j, 2], a_boost[j], row)
    return True


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
        if nlive[q] == 0 and _take_best_arrival(q, tau, i, lo, na, a_case, a_time, a_work, a_k, a_boost, h,
                                                 hoff, hlen, nlive, live_seq, key_boost, seq, row, top):
            while i < na and a_time[lo + i] <= tau:
                i += 1
        else:
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
def _queues_to_run(t_end, active, a_off, blocked, nlive, n_arrivals):
    """The queues :func:`advance_all` visits (the active ones: most of a bank's queues are idle), and a bound
    on the cases it can start (the arrivals and the cases waiting in those queues)."""
    busy = np.flatnonzero(active)
    return busy, n_arrivals + nlive[busy].sum()


def _queues_to_run_arrays(t_end, active, a_off, blocked, nlive, n_arrivals):
    """:func:`_queues_to_run` for the plain copy: of the active queues only those :func:`advance_all` would
    not skip (with arrivals, or a start possible before ``t_end``, or nobody waiting), chosen by whole-array
    calls instead of a Python loop over them, as a list of Python ints. A bank of one queue (the platform's)
    only looks whether it is active."""
    if len(active) == 1:
        busy = [0] if active[0] else []
        return busy, n_arrivals + (int(nlive[0]) if busy else 0)
    busy = np.flatnonzero(active & ((a_off[1:] != a_off[:-1]) | ~(blocked >= t_end) | (nlive <= 0)))
    return busy.tolist(), n_arrivals + int(nlive[busy].sum())


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
    sends the queue to the general event loop instead, which orders starts by key). So also for a single
    arrival before ``t_end`` (the commonest step of a department's queue), which the event loop would push,
    pop and start at its arrival time.
    """
    busy, size = _queues_to_run(t_end, active, a_off, blocked, nlive, len(a_case))
    out_case = np.empty(size, dtype=np.int64)
    out_start = np.empty(size)
    out_done = np.empty(size)
    n_out = 0
    row = np.empty(ROW)
    top = np.empty(ROW)
    for q in busy:
        lo = a_off[q]
        na = a_off[q + 1] - lo
        if na == 0 and blocked[q] >= t_end and nlive[q] > 0:
            continue  # every server busy (or the office closed) past this step
        c = servers[q]
        fo = foff[q]
        fast = False
        if nlive[q] == 0 and c > 0 and na > 0:
            if na >= 16:
                fast = _start_all_on_arrival(a_time[lo:lo + na], a_work[lo:lo + na], free, fo, c, always_open,
                                             open_hour)
            elif na == 1:  # as _start_all_on_arrival, in place (nothing to undo), and before t_end
                t = a_time[lo]
                if t < t_end and free[fo] <= t and (always_open or _is_open(t, open_hour)):
                    _replace_min(free, fo, c, t + a_work[lo])
                    fast = True
        if fast:
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
def _arrival_order(q, cases, times, n_queues, counts):
    """The order of arrivals sorted by (queue, time, case), ties in the order given, as three stable sorts
    (by case, by time, by queue) would give it; ``counts`` gets each queue's number of arrivals.

    Placed by queue (a counting sort, in the order given), then each queue's block sorted by (time, case): an
    insertion sort, after a stable sort by time for a block of more than 32 (the insertion sort then only
    moves cases within runs of equal times). With a time that is not a number, the three sorts themselves."""
    n = len(cases)
    for j in range(n):
        if times[j] != times[j]:
            order = np.argsort(cases, kind="mergesort")
            order = order[np.argsort(times[order], kind="mergesort")]
            order = order[np.argsort(q[order], kind="mergesort")]
            for jj in range(n):
                counts[q[jj]] += 1
            return order
    for j in range(n):
        counts[q[j]] += 1
    nxt = np.empty(n_queues, dtype=np.int64)
    pos = 0
    for qq in range(n_queues):
        nxt[qq] = pos
        pos += counts[qq]
    order = np.empty(n, dtype=np.int64)
    for j in range(n):
        qq = q[j]
        order[nxt[qq]] = j
        nxt[qq] += 1
    lo = 0
    while lo < n:
        hi = nxt[q[order[lo]]]  # the end of this queue's block
        if hi - lo > 32:
            block = order[lo:hi].copy()
            order[lo:hi] = block[np.argsort(times[block], kind="mergesort")]
        for k in range(lo + 1, hi):
            x = order[k]
            tx, cx = times[x], cases[x]
            i = k - 1
            while i >= lo:
                y = order[i]
                if tx < times[y] or (tx == times[y] and cx < cases[y]):
                    order[i + 1] = y
                    i -= 1
                else:
                    break
            order[i + 1] = x
        lo = hi
    return order


@jit
def prepare_arrivals(q, cases, times, work, due, boost, mode, n_queues, hlen, hcap, active):
    """This step's arrivals sorted by (queue, time, case), with their keys (``mode`` by queue) and the
    offsets of each queue's arrivals; their queues become active. Also returns the queues whose heap storage
    lacks room for their arrivals (plus one row)."""
    counts = np.zeros(n_queues, dtype=np.int64)
    order = _arrival_order(q, cases, times, n_queues, counts)
    n = len(order)
    s_q = q[order]
    s_case = cases[order]
    s_time = times[order]
    s_work = work[order]
    s_boost = boost[order]
    keys = np.empty((n, 3))
    for j in range(n):
        k0, k1, k2 = queue_key(mode[s_q[j]], s_time[j], due[order[j]], s_boost[j], s_work[j])
        keys[j, 0], keys[j, 1], keys[j, 2] = k0, k1, k2
    a_off = np.zeros(n_queues + 1, dtype=np.int64)
    a_off[1:] = np.cumsum(counts)
    n_short = 0
    short = np.empty(n_queues, dtype=np.int64)
    for j in range(n):  # the queues with arrivals, in order (s_q is sorted): each at its first arrival
        qq = s_q[j]
        if j > 0 and s_q[j - 1] == qq:
            continue
        active[qq] = True
        if hlen[qq] + counts[qq] + 1 > hcap[qq]:
            short[n_short] = qq
            n_short += 1
    return s_q, s_case, s_time, s_work, s_boost, keys, a_off, counts, short[:n_short]


@jit
def run_step(t_end, q, cases, times, work, due, boost, mode, n_queues, hcap, active, servers, foff, free, h, hoff,
             hlen, nlive, blocked, live_seq, key_boost, seq, always_open, open_hour, next_open_hour):
    """:func:`prepare_arrivals`, then :func:`advance_all`, in one call (the compiled copy's
    :meth:`sim.queues.QueueBank.run`): returns (True, cases, start times, completion times). When a case id
    lies beyond the per-case arrays, or a queue's heap storage lacks room for its arrivals (plus one row),
    returns (False, and three empty arrays) having changed nothing: the caller grows the storage and calls
    the two kernels itself."""
    n = len(cases)
    fits = True
    counts = np.zeros(n_queues, dtype=np.int64)
    for j in range(n):
        if cases[j] >= len(live_seq):
            fits = False
        counts[q[j]] += 1
    for j in range(n):
        qq = q[j]
        if hlen[qq] + counts[qq] + 1 > hcap[qq]:
            fits = False
    if not fits:
        return False, np.empty(0, dtype=np.int64), np.empty(0), np.empty(0)
    s_q, s_case, s_time, s_work, s_boost, keys, a_off, counts, short = prepare_arrivals(
        q, cases, times, work, due, boost, mode, n_queues, hlen, hcap, active)
    out_case, out_start, out_done = advance_all(t_end, active, a_off, s_case, s_time, s_work, keys, s_boost,
                                                servers, foff, free, h, hoff, hlen, nlive, blocked, live_seq,
                                                key_boost, seq, always_open, open_hour, next_open_hour)
    return True, out_case, out_start, out_done


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


# ---------------------------------------------------------------------------- departments' choice
@jit
def action_utilities(cases, dept_of, tattle, collective, bounced, waiting, staff_1, relay, committed, sanctions,
                     late_num, late_den, k_late, k_perf, k_bounced, duty, load_weight, relay_effort,
                     perfunctory_effort, bounce_effort, max_bounces, pressure):
    """(n, 4) utilities of proper, perfunctory, sit and bounce for ``cases``, element by element with the
    operations (and their order) of :meth:`sim.departments.ActionChoice.utilities`, which the compiled copy
    replaces (by case: its department ``dept_of``, request class ``tattle | collective``, ``bounced``; by
    department: ``waiting``, ``staff_1``, ``relay``, the beliefs ``committed`` and ``sanctions`` (department,
    kind, class) and ``late_num`` / ``late_den``; ``k_*`` the kinds of the expected sanctions)."""
    n = len(cases)
    u = np.empty((n, 4))
    for i in range(n):
        cid = cases[i]
        d = dept_of[cid]
        th = 1 if (tattle[cid] or collective[cid]) else 0
        load = waiting[d] / staff_1[d]
        if load < 0.0:
            load = 0.0
        c = 1.0 + load_weight * load
        n_late = committed[d, k_late, th]
        e_late = sanctions[d, k_late, th] / n_late if n_late > 0 else 0.0
        n_perf = committed[d, k_perf, th]
        e_perf = sanctions[d, k_perf, th] / n_perf if n_perf > 0 else 0.0
        n_bounced = committed[d, k_bounced, th]
        e_bounced = sanctions[d, k_bounced, th] / n_bounced if n_bounced > 0 else 0.0
        den = late_den[d]
        share = late_num[d] / (den if den >= 1e-300 else 1e-300) if den > 0 else 0.0
        if relay[d]:
            u[i, 0] = duty - c * relay_effort - share * e_late
            u[i, 1] = -np.inf
        else:
            u[i, 0] = duty - c - share * e_late
            u[i, 1] = -c * perfunctory_effort - e_perf
        u[i, 2] = -e_late - pressure
        u[i, 3] = -c * bounce_effort - e_bounced if bounced[cid] < max_bounces else -np.inf
    return u


@jit
def unsigned_exponent(cases, dept_of, tattle, collective, committed, sanctions, kind, sign_effort, choice_noise):
    """For each of ``cases``: −max(E(unsigned) − ``sign_effort``, 0) / ``choice_noise``, the exponent of the
    chance a department signs for it at once, with the operations of
    :meth:`sim.departments.ActionChoice.sign_now` (which the compiled copy uses it for; E(unsigned), as
    :meth:`sim.departments.DepartmentTable.expected_sanction`, from the beliefs of ``kind``)."""
    n = len(cases)
    out = np.empty(n)
    for i in range(n):
        cid = cases[i]
        d = dept_of[cid]
        th = 1 if (tattle[cid] or collective[cid]) else 0
        m = committed[d, kind, th]
        e = sanctions[d, kind, th] / (m if m >= 1e-300 else 1e-300) if m > 0 else 0.0
        x = e - sign_effort
        if x < 0.0:
            x = 0.0
        out[i] = -x / choice_noise
    return out


# ------------------------------------------------------------------------------ citizens' trust
@jit
def relax_and_shift(rows, t, f, trust, trust0, efficacy, efficacy0, t_set, listeners, shift):
    """Relax the rows ``rows`` (unique) by the factors ``f`` and set their t_set to ``t`` (as
    :meth:`Population._bring_up`), add ``shift`` to the trust of each of ``listeners`` in order (as
    ``np.add.at``), clip the rows' trust to 0–1; returns the rows' trust after the relaxation and at the end."""
    n = len(rows)
    t_old = np.empty(n)
    t_new = np.empty(n)
    for i in range(n):
        r = rows[i]
        b = trust0[r]
        v = b + (trust[r] - b) * f[i]
        trust[r] = v
        t_old[i] = v
        be = efficacy0[r]
        efficacy[r] = be + (efficacy[r] - be) * f[i]
        t_set[r] = t[i]
    for j in range(len(listeners)):
        trust[listeners[j]] += shift[j]
    for i in range(n):
        r = rows[i]
        v = trust[r]
        if v < 0.0:
            v = 0.0
        elif v > 1.0:
            v = 1.0
        trust[r] = v
        t_new[i] = v
    return t_old, t_new


def _relax_and_shift_arrays(rows, t, f, trust, trust0, efficacy, efficacy0, t_set, listeners, shift):
    """:func:`relax_and_shift` in whole-array numpy calls, for the plain copy (a Python loop over the rows
    and listeners costs about a microsecond an element): the same operations on every element in the same
    order (``np.add.at`` adds the shifts one by one, in order; the clip as the loop's comparisons)."""
    b = trust0[rows]
    t_old = b + (trust[rows] - b) * f
    trust[rows] = t_old
    be = efficacy0[rows]
    efficacy[rows] = be + (efficacy[rows] - be) * f
    t_set[rows] = t
    np.add.at(trust, listeners, shift)
    v = trust[rows]
    t_new = np.where(v < 0.0, 0.0, np.where(v > 1.0, 1.0, v))
    trust[rows] = t_new
    return t_old, t_new


def _prepare_few_arrivals(q, cases, times, work, due, boost, mode, n_queues, hlen, hcap, active):
    """:func:`_prepare_arrivals_arrays` for a few arrivals, on Python lists (numpy's calls cost more than their
    work here): the order of a stable sort by (queue, time, case), each key as :func:`queue_key` makes it (its
    first element the negated boost as a float: 0.0, never −0.0), the same offsets and short queues. None (and
    nothing changed) when a time is not a number (the array code orders those)."""
    ql, tl, cl = q.tolist(), times.tolist(), cases.tolist()
    if any(t != t for t in tl):
        return None
    n = len(ql)
    order = sorted(range(n), key=lambda j: (ql[j], tl[j], cl[j]))
    wl, dl, bl = work.tolist(), due.tolist(), boost.tolist()
    keys = []
    counts = {}
    for j in order:
        qq = ql[j]
        counts[qq] = counts.get(qq, 0) + 1
        m = int(mode[qq])
        if m == FIFO:
            keys.append((0.0, tl[j], 0.0))
        elif m == SUPERVISED:
            keys.append((float(-bl[j]), tl[j], 0.0))
        elif m == DEADLINE:
            keys.append((float(-bl[j]), dl[j], tl[j]))
        else:
            keys.append((float(-bl[j]), wl[j], tl[j]))
    o = np.array(order, dtype=np.intp)
    with_arrivals = list(counts)  # in queue order (the arrivals are)
    count = np.zeros(n_queues, dtype=np.int64)
    count[with_arrivals] = list(counts.values())
    a_off = np.zeros(n_queues + 1, dtype=np.int64)
    a_off[1:] = np.cumsum(count)
    active[with_arrivals] = True
    short = np.array([qq for qq, k in counts.items() if int(hlen[qq]) + k + 1 > int(hcap[qq])], dtype=np.int64)
    return (q[o], cases[o], times[o], work[o], boost[o], np.array(keys, dtype=np.float64).reshape(n, 3), a_off,
            count, short)


def _prepare_arrivals_arrays(q, cases, times, work, due, boost, mode, n_queues, hlen, hcap, active):
    """:func:`prepare_arrivals` in whole-array numpy calls, for the plain copy: the same sorted order
    (``np.lexsort`` is stable, as the three stable sorts), the same keys (:func:`queue_key` by mode, as
    ``np.where``), the same offsets and short queues. A few arrivals in a bank of several queues
    (:func:`_prepare_few_arrivals`), a single queue (the platform's) or a single arrival take shorter ways to
    the same arrays (each numpy call costs microseconds on these few elements)."""
    n = len(cases)
    if 1 < n <= 5 and n_queues > 1:
        few = _prepare_few_arrivals(q, cases, times, work, due, boost, mode, n_queues, hlen, hcap, active)
        if few is not None:
            return few
    if n == 1 or n_queues == 1:
        order = np.lexsort((cases, times)) if n > 1 else None
        if order is not None:
            s_q, s_case, s_time, s_work, s_boost, s_due = (q[order], cases[order], times[order], work[order],
                                                           boost[order], due[order])
        else:
            s_q, s_case, s_time, s_work, s_boost, s_due = q, cases, times, work, boost, due
        q0 = int(s_q[0])
        m = mode[q0]
        keys = np.empty((n, 3))
        keys[:, 0] = 0.0 if m == FIFO else (-s_boost).astype(np.float64)
        keys[:, 1] = s_time if m <= SUPERVISED else (s_due if m == DEADLINE else s_work)
        keys[:, 2] = 0.0 if m <= SUPERVISED else s_time
        counts = np.zeros(n_queues, dtype=np.int64)
        counts[q0] = n
        a_off = np.zeros(n_queues + 1, dtype=np.int64)
        a_off[q0 + 1:] = n
        active[q0] = True
        short = np.array([q0] if hlen[q0] + n + 1 > hcap[q0] else [], dtype=np.int64)
        return s_q, s_case, s_time, s_work, s_boost, keys, a_off, counts, short
    order = np.lexsort((cases, times, q))
    s_q = q[order]
    s_case = cases[order]
    s_time = times[order]
    s_work = work[order]
    s_boost = boost[order]
    m = mode[s_q]
    minus_boost = np.where(m == FIFO, 0.0, (-s_boost).astype(np.float64))  # as the int negated, then stored
    keys = np.empty((len(order), 3))
    keys[:, 0] = minus_boost
    keys[:, 1] = np.where(m <= SUPERVISED, s_time, np.where(m == DEADLINE, due[order], s_work))
    keys[:, 2] = np.where(m <= SUPERVISED, 0.0, s_time)
    counts = np.bincount(s_q, minlength=n_queues).astype(np.int64)
    a_off = np.zeros(n_queues + 1, dtype=np.int64)
    a_off[1:] = np.cumsum(counts)
    with_arrivals = np.flatnonzero(counts)
    active[with_arrivals] = True
    short = with_arrivals[hlen[with_arrivals] + counts[with_arrivals] + 1 > hcap[with_arrivals]]
    return s_q, s_case, s_time, s_work, s_boost, keys, a_off, counts, short


if not COMPILED:  # the plain copy's versions of these kernels
    relax_and_shift = _relax_and_shift_arrays  # noqa: F811
    prepare_arrivals = _prepare_arrivals_arrays  # noqa: F811
    _push_row = _push_row_slices  # noqa: F811
    _pop_row = _pop_row_slices  # noqa: F811
    _queues_to_run = _queues_to_run_arrays  # noqa: F811


# ------------------------------------------------------------------------------------- supervision
@jit
def supervision_candidates(open_ids, now, status, level, due, reopened, inspected_at, dept, mine, skip_a, skip_b):
    """The open cases ``open_ids`` an inspection office may take up at ``now`` (h), before the sign-for test
    (:meth:`sim.supervisors.Supervisor.candidates`): in neither status ``skip_a`` nor ``skip_b``, below the top
    of the ladder (``level`` < 3), not inspected in the last 24 h (``inspected_at``; NaN: never), held by a
    department the office supervises (``mine``, per department; a case's ``dept`` −1 reads the last, as numpy
    indexing does). Returns them (in the order of ``open_ids``) and whether each is overdue on its own terms:
    past ``due``, or reopened and not yet inspected."""
    n_dept = len(mine)
    ids = np.empty(len(open_ids), np.int64)
    past = np.empty(len(open_ids), np.bool_)
    k = 0
    for i in open_ids:
        st = status[i]
        if st == skip_a or st == skip_b or level[i] >= 3 or inspected_at[i] >= now - 24.0:
            continue
        d = dept[i]
        if not mine[d + n_dept if d < 0 else d]:
            continue
        ids[k] = i
        past[k] = due[i] < now or (reopened[i] and level[i] == 0)
        k += 1
    return ids[:k], past[:k]


def _supervision_candidates_arrays(open_ids, now, status, level, due, reopened, inspected_at, dept, mine, skip_a,
                                   skip_b):
    st, lv = status[open_ids], level[open_ids]
    ids = open_ids[(st != skip_a) & (st != skip_b) & (lv < 3) & ~(inspected_at[open_ids] >= now - 24.0)
                   & mine[dept[open_ids]]]
    return ids, (due[ids] < now) | (reopened[ids] & (level[ids] == 0))


@jit
def overdue_unreplied(open_ids, status, replied, due, t, lo_status, hi_status):
    """Of the open cases ``open_ids``, those in a status from ``lo_status`` to ``hi_status`` (those that can be
    overdue) with no reply (``replied`` NaN): split into those past ``due`` at ``t`` (h) and the others (each
    in the order of ``open_ids``)."""
    late = np.empty(len(open_ids), np.int64)
    rest = np.empty(len(open_ids), np.int64)
    n_late = 0
    n_rest = 0
    for i in open_ids:
        st = status[i]
        if st < lo_status or st > hi_status or not np.isnan(replied[i]):
            continue
        if due[i] < t:
            late[n_late] = i
            n_late += 1
        else:
            rest[n_rest] = i
            n_rest += 1
    return late[:n_late], rest[:n_rest]


def _overdue_unreplied_arrays(open_ids, status, replied, due, t, lo_status, hi_status):
    st = status[open_ids]
    ids = open_ids[(st >= lo_status) & (st <= hi_status)]
    ids = ids[np.isnan(replied[ids])]
    late = due[ids] < t
    return ids[late], ids[~late]


if not COMPILED:  # the plain copies' versions
    supervision_candidates = _supervision_candidates_arrays  # noqa: F811
    overdue_unreplied = _overdue_unreplied_arrays  # noqa: F811


# ------------------------------------------------------------------------------------------ agenda
#: Fields of the array agenda's table, per (hour, kind): its first block, its last block, and its number of
#: events (:class:`sim.cases.ArrayAgenda`).
A_HEAD, A_TAIL, A_COUNT = 0, 1, 2
#: Entries of the array agenda's state: the first free block, and the number of free blocks.
S_FREE, S_NFREE = 0, 1
#: Events a block of the array agenda holds.
BLOCK = 64
#: What :func:`agenda_min_id` returns when there are no events of the kind.
NO_ID = np.iinfo(np.int64).max


@jit
def agenda_file(kind, times, ids, table, b_id, b_t, b_next, b_fill, state):
    """File events ``kind`` for cases ``ids`` at ``times`` (h) at the end of their (hour, kind) lists of
    blocks, in the order given: an event's hour is its time truncated (times within (-1, table's hours)).
    Returns 0 once filed; otherwise nothing is changed and the return says why: 1, a time outside the
    table's hours (or not a number); 2, fewer free blocks than events (the most a call may need)."""
    n = len(ids)
    n_hours = table.shape[0]
    for i in range(n):
        t = times[i]
        if not (t > -1.0 and t < n_hours):
            return 1
    if state[S_NFREE] < n:
        return 2
    free = state[S_FREE]
    used = 0
    for i in range(n):
        t = times[i]
        h = int(t)
        tail = table[h, kind, A_TAIL]
        if tail < 0 or b_fill[tail] == BLOCK:
            b = free
            free = b_next[b]
            used += 1
            b_next[b] = -1
            b_fill[b] = 0
            if tail < 0:
                table[h, kind, A_HEAD] = b
            else:
                b_next[tail] = b
            table[h, kind, A_TAIL] = b
            tail = b
        j = b_fill[tail]
        b_id[tail, j] = ids[i]
        b_t[tail, j] = t
        b_fill[tail] = j + 1
        table[h, kind, A_COUNT] += 1
    state[S_FREE] = free
    state[S_NFREE] -= used
    return 0


@jit
def agenda_take(hour, table, b_id, b_t, b_next, b_fill, state, counts):
    """Take every event of ``hour`` (a row of the table) off the agenda: returns their case ids and times,
    kind after kind (``counts[k]`` gets kind k's number), each kind's sorted by time with ties in filing
    order (a stable sort); their blocks become free."""
    n_kinds = table.shape[1]
    total = 0
    for k in range(n_kinds):
        counts[k] = table[hour, k, A_COUNT]
        total += counts[k]
    ids = np.empty(total, dtype=np.int64)
    times = np.empty(total, dtype=np.float64)
    free = state[S_FREE]
    freed = 0
    o = 0
    for k in range(n_kinds):
        if table[hour, k, A_COUNT] == 0:
            continue
        b = table[hour, k, A_HEAD]
        start = o
        ordered = True
        while b >= 0:
            for j in range(b_fill[b]):
                ids[o] = b_id[b, j]
                times[o] = b_t[b, j]
                if o > start and times[o] < times[o - 1]:
                    ordered = False
                o += 1
            nxt = b_next[b]
            b_next[b] = free
            free = b
            freed += 1
            b = nxt
        if not ordered:
            order = np.argsort(times[start:o], kind="mergesort")
            ids[start:o] = ids[start:o][order]
            times[start:o] = times[start:o][order]
        table[hour, k, A_COUNT] = 0
        table[hour, k, A_HEAD] = -1
        table[hour, k, A_TAIL] = -1
    state[S_FREE] = free
    state[S_NFREE] += freed
    return ids, times


@jit
def agenda_min_id(kind, table, b_id, b_next, b_fill):
    """The smallest case id of the events ``kind`` in the table (:data:`NO_ID` when there are none)."""
    low = NO_ID
    for h in range(table.shape[0]):
        b = table[h, kind, A_HEAD]
        while b >= 0:
            for j in range(b_fill[b]):
                if b_id[b, j] < low:
                    low = b_id[b, j]
            b = b_next[b]
    return low


# ------------------------------------------------------------------- citizens' learning and reporting
# (sim.citizens uses these through the compiled copy only; the plain copy's runs keep their numpy calls, which
# do the same operations in the same order. np.exp stays a numpy call between them: these kernels prepare its
# arguments and take its values.)
@jit
def _clip01(v: float) -> float:
    """``v`` clipped to 0–1 as ``np.minimum(1, np.maximum(0, v))`` does it (−0.0 and NaN kept)."""
    if v < 0.0:
        return 0.0
    if v > 1.0:
        return 1.0
    return v


@jit
def bring_up_args(who, t_set, now, tau):
    """For the rows ``who``: the hour they are brought up to, max(t_set, ``now``) as ``np.maximum``, and the
    exponent −(that − t_set)/τ of their relaxation factor (:meth:`Population._bring_up`)."""
    n = len(who)
    t = np.empty(n)
    arg = np.empty(n)
    for i in range(n):
        tp = t_set[who[i]]
        v = tp if (tp > now or tp != tp) else now
        t[i] = v
        arg[i] = -(v - tp) / tau
    return t, arg


@jit
def learn_distinct(who, f, t, satisfied, resolved, lr, elr, trust, trust0, efficacy, efficacy0, t_set,
                   trust_change, last_good_channel, channel):
    """:meth:`Population._learn_distinct` after the relaxation factors ``f`` (rows ``who`` distinct; ``t`` the
    hours they are brought up to): relax, learn the outcome (``lr``, ``elr``), clip, store, add the trust
    change to today's, remember a channel that satisfied. Returns the changes of the stored trust and efficacy
    (new − relaxed), for the running sums."""
    n = len(who)
    d_t = np.empty(n)
    d_e = np.empty(n)
    for i in range(n):
        r = who[i]
        b = trust0[r]
        t_old = b + (trust[r] - b) * f[i]
        b = efficacy0[r]
        e_old = b + (efficacy[r] - b) * f[i]
        dt = lr * ((1.0 if satisfied[i] else 0.0) - t_old)
        t_new = _clip01(t_old + dt)
        e_new = _clip01(e_old + elr * ((1.0 if resolved[i] else 0.0) - e_old))
        trust[r] = t_new
        efficacy[r] = e_new
        t_set[r] = t[i]
        trust_change[r] += dt
        d_t[i] = t_new - t_old
        d_e[i] = e_new - e_old
        if satisfied[i]:
            last_good_channel[r] = channel[i]
    return d_t, d_e


@jit
def decay_args(who, t_set, now, tau):
    """For the rows ``who``: the exponent −max(``now`` − t_set, 0)/τ of their relaxation factor
    (:meth:`Population._decay`)."""
    n = len(who)
    arg = np.empty(n)
    for i in range(n):
        d = now - t_set[who[i]]
        if not (d >= 0.0 or d != d):  # np.maximum(d, 0.0)
            d = 0.0
        arg[i] = -d / tau
    return arg


@jit
def report_exponents(who, severity, channel, cost, decay, threshold, trust_weight, noise, efficacy, efficacy0,
                     trust, trust0):
    """:meth:`Population.report`'s exponents z = −u/``noise`` of the rule's utilities u =
    severity × efficacy − cost[channel] − ``threshold`` (+ ``trust_weight`` × (trust − 0.5) when it is not 0),
    trust and efficacy relaxed by ``decay``."""
    n = len(who)
    z = np.empty(n)
    for i in range(n):
        r = who[i]
        b = efficacy0[r]
        u = severity[i] * (b + (efficacy[r] - b) * decay[i]) - cost[channel[i]] - threshold
        if trust_weight != 0.0:
            b = trust0[r]
            u = u + trust_weight * ((b + (trust[r] - b) * decay[i]) - 0.5)
        z[i] = -u / noise
    return z


@jit
def channel_choice(who, digital, last_good_channel, table, scale, gumbel):
    """:meth:`Population.choose_channel`'s logit choice: for each requester ``who``, of the utilities in its row
    ``4 × digital + last_good_channel + 1`` of ``table``, the channel (int8) with the largest
    utility / ``scale`` + ``gumbel`` (the first of equals, or the first NaN, as ``argmax``)."""
    n = len(who)
    out = np.empty(n, dtype=np.int8)
    k = table.shape[1]
    for i in range(n):
        w = who[i]
        r = (4 if digital[w] else 0) + last_good_channel[w] + 1
        best = 0
        bv = table[r, 0] / scale + gumbel[i, 0]
        if bv == bv:
            for j in range(1, k):
                v = table[r, j] / scale + gumbel[i, j]
                if v != v:
                    best = j
                    break
                if v > bv:
                    best = j
                    bv = v
        out[i] = best
    return out


@jit
def judge_args(cases, now, created, scale):
    """For :meth:`Population.judge`: the exponents −max(``now`` − created, 0)/``scale`` of the cases' timeliness."""
    n = len(cases)
    arg = np.empty(n)
    for i in range(n):
        d = now[i] - created[cases[i]]
        if not (d >= 0.0 or d != d):  # np.maximum(d, 0.0)
            d = 0.0
        arg[i] = -d / scale
    return arg


@jit
def judge_scores(cases, timely, noise, true_resolved, perfunctory, w_resolved, w_reply, w_timely, w_perf,
                 threshold):
    """:meth:`Population.judge`'s satisfaction: the score of each case (solved, answered, timely, perfunctory,
    plus ``noise``) above ``threshold``."""
    n = len(cases)
    out = np.empty(n, dtype=np.bool_)
    for i in range(n):
        c = cases[i]
        solved = true_resolved[c]
        perf = perfunctory[c]
        score = (w_resolved * (1.0 if solved else 0.0) + w_reply * (1.0 if (not perf and not solved) else 0.0)
                 + w_timely * timely[i] - w_perf * (1.0 if perf else 0.0) + noise[i])
        out[i] = score > threshold
    return out


@jit
def escalate_decide(cases, who, decay, noise, severity, category, tattle, collective, trust, trust0, threshold,
                    shift, cost):
    """:meth:`Population.escalate`'s rule: grievance = severity × (1 − trust relaxed by ``decay``), less
    ``cost``, plus ``noise``, above ``threshold`` (less ``shift`` after a threat)."""
    n = len(cases)
    out = np.empty(n, dtype=np.bool_)
    for i in range(n):
        c = cases[i]
        w = who[i]
        b = trust0[w]
        g = severity[category[c]] * (1.0 - (b + (trust[w] - b) * decay[i]))
        th = threshold - shift * (1.0 if (tattle[c] or collective[c]) else 0.0)
        out[i] = g - cost + noise[i] > th
    return out
