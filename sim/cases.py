"""Cases as rows of a columnar store, their lifecycle states, and a time-bucketed agenda.

Cases are not agents: a city takes millions of them, so each is a row index into numpy arrays that
grow as needed. Lifecycle: arise → report → accept (受理) → answer directly, or dispatch → sign for
(first response) → handle → reply (resolved, or perfunctory) → call back (satisfied or not) → close, or
reopen / escalate. Supervision (督办) can act at any overdue or unsatisfied point.
"""

from __future__ import annotations

import mmap
from collections import defaultdict
from enum import IntEnum
from types import ModuleType
from typing import Any

import numpy as np


class Status(IntEnum):
    """Where a case is. The last two are final; the others are open."""

    AWAITING_INTAKE = 0
    IN_TRANSIT = 1
    QUEUED = 2
    NEGLECTED = 3
    IN_SERVICE = 4
    AWAITING_CALLBACK = 5
    CLOSED = 6
    ABANDONED = 7


STATUS_NAMES = {s.value: s.name.lower() for s in Status}


class Action(IntEnum):
    """What a department last chose to do with a case (``CaseStore.action``)."""

    NONE = 0         # not decided yet (not dispatched, or answered at intake)
    PROPER = 1       # queue it and handle it
    PERFUNCTORY = 2  # close it as solved without solving it
    SIT = 3          # leave it (signed for or not) until someone presses
    BOUNCE = 4       # return it to the platform as "not our jurisdiction"


class Violation(IntEnum):
    """Kinds of violation an observer can catch and a department keeps beliefs about."""

    LATE = 0         # no reply by the due time
    UNSIGNED = 1     # not signed for within a response mandate
    PERFUNCTORY = 2  # closed as solved without being solved
    BOUNCED = 3      # returned to the platform although the routing was right
    CHERRY = 4       # a day of serving the easiest cases first while others wait (counted per department-day)


class Channel(IntEnum):
    ONLINE = 0
    HOTLINE = 1
    OFFLINE = 2


CHANNEL_NAMES = ("online", "hotline", "offline")

_FLOAT_FIELDS = ("created", "accepted", "dispatched", "dept_arrival", "first_response", "service_start",
                 "replied", "closed", "due", "service_time", "intake_time", "inspected_at", "held_since",
                 "relay_time", "queued_at")
_INT_FIELDS = ("citizen", "dept", "handler", "region")
_ID_FIELDS = ("repeat_of",)  # int32 (a store holds fewer than 2**31 cases), −1 for none
_SMALL_FIELDS = ("category", "channel", "status", "hops", "reopen_count", "supervision_level", "satisfied", "boost",
                 "action", "bounced", "route_pos", "repeat_count")
_BOOL_FIELDS = ("enterprise", "urban", "true_resolved", "recorded_resolved", "perfunctory", "supervised", "escalated",
                "reopened", "tattle", "collective", "direct_answer", "misrouted", "consultation", "measured",
                "surveyed", "audited")


#: Every column of the case store: (name, dtype, default of a new case).
_COLUMNS: tuple[tuple[str, Any, Any], ...] = (
    *((f, np.float64, np.nan) for f in _FLOAT_FIELDS), *((f, np.int32, 0) for f in _INT_FIELDS),
    *((f, np.int8, -1 if f == "satisfied" else 0) for f in _SMALL_FIELDS),
    *((f, np.bool_, False) for f in _BOOL_FIELDS), *((f, np.int32, -1) for f in _ID_FIELDS),
)

#: The columns whose default is not zero, with it: fresh rows of the others need no writing (see CaseStore.add).
_NONZERO_DEFAULTS: tuple[tuple[str, Any], ...] = tuple((f, d) for f, _, d in _COLUMNS if d != 0)  # NaN != 0

#: Most cases a store can hold (ids are int32 in ``repeat_of``).
MAX_CASES = 2**31 - 1


def _column(capacity: int, dtype: Any) -> np.ndarray:
    """A column of ``capacity`` rows in its own anonymous memory map (which reads as zeros until written: the
    store relies on it, :meth:`CaseStore.add`), so that
    :meth:`CaseStore.release` can hand whole pages of it back to the operating system."""
    size = max(capacity * np.dtype(dtype).itemsize, 1)
    if hasattr(mmap, "MAP_PRIVATE") and hasattr(mmap, "MAP_ANONYMOUS"):  # private: released pages are freed
        buf = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    else:
        buf = mmap.mmap(-1, size)
    return np.frombuffer(buf, dtype=dtype, count=capacity)


class CaseStore:
    """Columnar storage of every reported case. ``satisfied`` is -1 (not judged), 0 or 1.

    Outcomes are kept twice: ``true_resolved`` (the problem was solved) and ``recorded_resolved`` (the
    platform records the case closed as resolved: a perfunctory reply claims it). ``action`` is the
    department's last choice (:class:`Action`), ``bounced`` how often the order was returned,
    ``surveyed`` whether a call-back reached the requester, ``audited`` whether an audit looked at it.

    Where a case is in the hierarchy: ``handler`` is the department that must handle it, ``dept`` the bureau
    that holds it now (a relay on the way in a cascade, then the handler), ``route_pos`` its hop on the route
    (0 = the first bureau), ``held_since`` when the holder received it (h) and ``relay_time`` the hours a relay
    needs to pass it on. ``repeat_of`` is the id of the earlier case of the same problem (−1: a first report),
    ``repeat_count`` how many reports of the problem came before.

    A long run hands settled cases on (their table rows and their tally for the result:
    :meth:`sim.model.GovernanceModel.hand_off`) and then releases their rows (168 bytes each): :meth:`release`.
    ``released`` is the row up to which that is done; nothing may read those rows afterwards (their memory
    reads as zeros, or as :attr:`POISON` in tests). Searches by creation time start at ``released``.

    Grows by half its size when full (a good first ``capacity`` avoids copies altogether). Rows are
    allocated but not written (anonymous memory maps, which read as zeros) until shortly before they are
    needed: an ``add`` that reaches past the rows holding their defaults writes the defaults of every column
    whose default is not zero (the zeros are there already) into the next :attr:`DEFAULTS_AHEAD` rows (or
    more, as the ``add`` needs) at once, so most adds write only the columns they are given, and the memory
    of the unused capacity beyond is not touched and costs no resident memory.
    """

    #: Rows ahead of ``n`` that an ``add`` fills with the columns' defaults when it needs fresh rows.
    DEFAULTS_AHEAD = 4096

    #: Tests set this true: :meth:`release` then overwrites the released rows with values no case can have
    #: (times −1e30, numbers −99, flags true) instead of releasing their memory, so that a later read of a
    #: released row changes the run's results and shows.
    POISON = False

    def __init__(self, capacity: int = 1024) -> None:
        self.n = 0
        self.capacity = min(max(16, int(capacity)), MAX_CASES)
        for f, dtype, _ in _COLUMNS:
            setattr(self, f, _column(self.capacity, dtype))
        self.first_open = 0  # every case before this index is final
        self._open = np.zeros(0, dtype=np.intp)  # open_ids: the cases open at its last call
        self._scanned = 0  # open_ids: the rows it has read (before this index)
        self.released = 0  # rows before this index are released (see release)
        self._filled = 0  # rows before this index hold a case or the columns' defaults (>= n)

    def _grow(self, need: int) -> None:
        if need > MAX_CASES:
            raise OverflowError(f"a case store holds at most {MAX_CASES:,} cases; this run needs {need:,}")
        cap = self.capacity
        while cap < need:
            cap = min(int(cap * 1.5) + 16, MAX_CASES)
        filled = self._filled
        for f, dtype, _ in _COLUMNS:
            old = getattr(self, f)
            new = _column(cap, dtype)
            lo = self.released  # released rows are not copied (nor their memory touched)
            new[lo:filled] = old[lo:filled]
            setattr(self, f, new)
        self.capacity = cap

    def release(self, upto: int) -> None:
        """Release rows ``released:upto``: the caller has handed their cases on and no part of the run reads
        those rows again. Whole memory pages inside the rows go
        back to the operating system (where the platform can: Linux, most Unixes); the rest stay as they are.
        """
        lo, hi = self.released, min(int(upto), self.n)
        if hi <= lo:
            return
        for f, _, _ in _COLUMNS:
            col = getattr(self, f)
            if self.POISON:
                col[lo:hi] = True if col.dtype == np.bool_ else (-1e30 if col.dtype.kind == "f" else -99)
                continue
            buf = getattr(col.base, "obj", col.base)  # the memory map under the array's buffer
            if not isinstance(buf, mmap.mmap) or not hasattr(buf, "madvise"):
                continue
            page, size = mmap.PAGESIZE, col.itemsize
            start = -(-lo * size // page) * page  # whole pages inside the rows only
            stop = hi * size // page * page
            if stop > start:
                buf.madvise(mmap.MADV_DONTNEED, start, stop - start)
        self.released = hi

    def add(self, **columns: np.ndarray) -> np.ndarray:
        """Append cases; returns their ids. Columns not given get their defaults (NaN times, −1 for
        ``repeat_of`` and ``satisfied``, 0 or false otherwise)."""
        n = self.n
        k = len(next(iter(columns.values())))
        end = n + k
        if end > self.capacity:
            self._grow(end)
        if end > self._filled:  # fresh rows: the defaults of the columns, for the next rows too
            fresh = slice(self._filled, min(max(end, n + self.DEFAULTS_AHEAD), self.capacity))
            # rows at or past _filled were never written (an anonymous memory map reads as zeros, and _grow
            # copies only rows before _filled), so only the columns whose default is not zero are written
            for name, default in _NONZERO_DEFAULTS:
                getattr(self, name)[fresh] = default
            self._filled = fresh.stop
        new = slice(n, end)
        for name, values in columns.items():
            getattr(self, name)[new] = values
        self.n = end
        return np.arange(n, end, dtype=np.int64)

    def compelled(self, ids: np.ndarray) -> np.ndarray:
        """Cases whose handling is compelled: under a supervision order (ladder level 2 or more) or escalated.

        A compelled case is always answered, never perfunctorily, and goes to the head of its queue.
        """
        return (self.supervision_level[ids] >= 2) | self.escalated[ids]

    def created_since(self, t: float) -> int:
        """The first store row of a case created at ``t`` (h) or later (cases are stored in creation order;
        released rows are not searched: they were created before any time the run still looks back to)."""
        lo = self.released
        return lo + int(np.searchsorted(self.created[lo: self.n], t))

    def open_ids(self) -> np.ndarray:
        """Ids of cases not yet final (closed or abandoned), in order (a new array).

        Only the cases open at the previous call (kept, ``_open``), those made open again since (:meth:`reopen`)
        and the rows added since (from ``_scanned``) are read, rather than every row from the watermark
        ``first_open`` on (which a single old open case holds back). The watermark moves to the first open case
        (or past the last case)."""
        n = self.n
        st = self.status
        kept = self._open
        if len(kept):
            kept = kept[st[kept] < Status.CLOSED]
        lo = self._scanned
        new = np.flatnonzero(st[lo:n] < Status.CLOSED)
        if lo:
            new += lo
        ids = np.concatenate([kept, new]) if len(kept) else new
        self._open = ids
        self._scanned = n
        self.first_open = int(ids[0]) if len(ids) else n
        return ids.copy()

    def reopen(self, ids: np.ndarray) -> None:
        """Final cases ``ids`` are made open again (an audit sends a closed case back): call before their status
        changes, so that :meth:`open_ids` reads them again and the watermark ``first_open`` moves back to them."""
        ids = np.asarray(ids, dtype=np.intp)
        if len(ids) == 0:
            return
        seen = ids[ids < self._scanned]  # rows from _scanned on are read by the next open_ids anyway
        if len(seen):
            self._open = np.union1d(self._open, seen)
        self.first_open = min(self.first_open, int(ids.min()))


class Agenda:
    """Future events by the hour: ``schedule(kind, times, ids)`` and ``pop(hour)``.

    Exact times are kept; the hour bucket only says in which step the event is handled. Scheduling many
    events only stages the arrays (O(1) a call); the next ``pop`` sorts everything staged into hour buckets at
    once, kind by kind, so a step's large calls cost one sort. A call with few events (:attr:`SMALL` at most)
    files them into their buckets at once, as Python lists (for a few events cheaper than numpy calls on tiny
    arrays), unless events of its kind are staged (then it is staged after them). Within an hour and kind,
    events keep the order in which they were scheduled, and ``pop`` returns them sorted by time (ties in that
    order).

    A bucket holds, per kind, its parts in the order they were filed: array parts ``(ids, times)`` (tuples)
    from a sorting pass, and list parts ``[ids, times]`` (Python lists) that calls with few events fill.
    """

    #: Events in one ``schedule`` call up to which they are filed at once, by a Python loop.
    SMALL = 32

    def __init__(self) -> None:
        self._buckets: dict[int, dict[Any, list[Any]]] = defaultdict(lambda: defaultdict(list))
        self._staged: dict[Any, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)

    def schedule(self, kind: Any, times: np.ndarray, ids: np.ndarray) -> None:
        """Stage events ``kind`` for cases ``ids`` at ``times`` (hours, >= 0; the arrays must not be changed
        afterwards: they are kept, not copied, until the next ``pop``). A few events (:attr:`SMALL` at most,
        none of the kind staged) are filed into their buckets at once instead."""
        n = len(ids)
        if n == 0:
            return
        staged = self._staged
        if n <= self.SMALL and kind not in staged:
            tl = times.tolist()
            try:
                hl = [int(t) for t in tl]  # times are >= 0, so truncation is the floor
            except (ValueError, OverflowError):  # a time that is not finite: the array path files it
                staged[kind].append((ids, times))
                return
            h = hl[0]
            if hl.count(h) == n:  # all in one hour (the usual case): the lists join that hour's list part
                parts = self._buckets[h][kind]
                if parts and type(parts[-1]) is list:
                    lp = parts[-1]
                    lp[0] += ids.tolist()
                    lp[1] += tl
                else:
                    parts.append([ids.tolist(), tl])
                return
            self._file(kind, ids.tolist(), tl, hl)
            return
        staged[kind].append((ids, times))

    def _file(self, kind: Any, il: list[int], tl: list[float], hl: list[int]) -> None:
        """File events ``kind`` (ids, times, hours as lists) one by one into list parts of their hours' buckets,
        in the order given."""
        buckets = self._buckets
        last_h = None
        lp: list[list[Any]] = []
        for i, t, h in zip(il, tl, hl, strict=True):
            if h != last_h:
                b = buckets[h][kind]
                if b and type(b[-1]) is list:
                    lp = b[-1]
                else:
                    lp = [[], []]
                    b.append(lp)
                last_h = h
            lp[0].append(i)
            lp[1].append(t)

    def pending(self) -> int:
        """Events scheduled and not yet popped."""
        staged = sum(len(p[0]) for parts in self._staged.values() for p in parts)
        return staged + sum(len(p[0]) for b in self._buckets.values() for parts in b.values() for p in parts)

    def min_id(self, kind: Any) -> int | None:
        """The smallest case id of the events ``kind`` scheduled and not yet popped (``None``: none pending)."""
        parts = [*self._staged.get(kind, ()), *(p for b in self._buckets.values() for p in b.get(kind, ()))]
        low = [min(p[0]) if type(p) is list else int(p[0].min()) for p in parts if len(p[0])]
        return min(low) if low else None

    def _sort_staged(self) -> None:
        buckets = self._buckets
        for kind, parts in self._staged.items():
            if len(parts) == 1:
                ids, times = np.asarray(parts[0][0]), np.asarray(parts[0][1])
            else:
                ids = np.concatenate([p[0] for p in parts])
                times = np.concatenate([p[1] for p in parts])
            hours = times.astype(np.int64)  # times are >= 0, so truncation is the floor
            lo_h, hi_h = hours.min(), hours.max()
            if lo_h == hi_h:
                buckets[int(lo_h)][kind].append((ids, times))
                continue
            order = np.argsort(hours, kind="stable")
            hours, ids, times = hours[order], ids[order], times[order]
            cuts = (np.flatnonzero(np.diff(hours)) + 1).tolist()
            lo = [0, *cuts]
            hi = [*cuts, len(hours)]
            for a, b, h in zip(lo, hi, hours[lo].tolist(), strict=True):
                buckets[h][kind].append((ids[a:b], times[a:b]))
        self._staged.clear()

    def pop(self, hour: int) -> dict[Any, tuple[np.ndarray, np.ndarray]]:
        """All events due in [hour, hour+1), by kind, sorted by time."""
        if self._staged:
            self._sort_staged()
        bucket = self._buckets.pop(hour, None)
        if not bucket:
            return {}
        out = {}
        for kind, parts in bucket.items():
            if len(parts) == 1 and type(parts[0]) is list:
                il, tl = parts[0]
                if len(il) > 1:
                    in_order = sorted(tl)
                    if in_order != tl:
                        order = sorted(range(len(tl)), key=tl.__getitem__)  # stable: ties in scheduling order
                        il = [il[k] for k in order]
                        tl = in_order
                out[kind] = (np.array(il, dtype=np.int64), np.array(tl, dtype=np.float64))
                continue
            if len(parts) == 1:
                ids, times = parts[0]
            else:
                ids = np.concatenate([np.array(p[0], dtype=np.int64) if type(p) is list else p[0] for p in parts])
                times = np.concatenate([np.array(p[1], dtype=np.float64) if type(p) is list else p[1]
                                        for p in parts])
            if len(ids) > 1:
                order = np.argsort(times, kind="stable")
                ids, times = ids[order], times[order]
            else:  # never hand out a caller's own array
                ids, times = ids.copy(), times.copy()
            out[kind] = (ids, times)
        return out


class ArrayAgenda:
    """:class:`Agenda`'s events in arrays, filed and taken by kernels (:mod:`sim.kernels`): the runs that
    use the numba-compiled kernels keep their agenda here, where a call costs a few microseconds whatever
    the number of hours its events span. The same events come out of :meth:`pop` in the same order as from
    :class:`Agenda` (by time within an hour and kind, ties in scheduling order; tests compare the two).

    Kinds are the members of an ``IntEnum`` whose values are 0, 1, … (:class:`sim.lifecycle.Event`); ``pop``
    returns the members as keys. Each (hour, kind) holds a linked list of blocks of
    :data:`sim.kernels.BLOCK` events (a table row per hour from 0 to the hours it has grown to, at most
    :attr:`MAX_HOURS`); a block is reused once popped. Events at hours outside the table (a time of
    :attr:`MAX_HOURS` h or more, -1 h or less, or not a number) are kept aside, as arrays, and popped, counted
    and searched as the others.
    """

    #: Hours the table may grow to (about 30 years: at most ~70 MB of table for 11 kinds).
    MAX_HOURS = 1 << 18
    #: Blocks of a new agenda (grown by doubling; a block holds :data:`sim.kernels.BLOCK` events).
    BLOCKS = 1 << 10

    def __init__(self, kinds: type[IntEnum], kernels: ModuleType, hours: int = 24) -> None:
        from .kernels import A_COUNT, BLOCK

        self._kinds = list(kinds)
        if [int(k) for k in self._kinds] != list(range(len(self._kinds))):
            raise ValueError(f"ArrayAgenda: the kinds' values must be 0, 1, ... (got {self._kinds})")
        self._kern = kernels
        self._count = A_COUNT
        self._block = BLOCK
        self._table = self._new_table(min(max(int(hours), 1), self.MAX_HOURS))
        self._b_id = np.zeros((0, BLOCK), dtype=np.int64)
        self._b_t = np.zeros((0, BLOCK), dtype=np.float64)
        self._b_next = np.zeros(0, dtype=np.int64)
        self._b_fill = np.zeros(0, dtype=np.int64)
        self._state = np.array([-1, 0], dtype=np.int64)  # first free block, free blocks
        self._taken = np.zeros(len(self._kinds), dtype=np.int64)
        self._far: list[tuple[Any, np.ndarray, np.ndarray]] = []  # (kind, ids, times) outside the table
        self._grow_blocks(self.BLOCKS)

    def _new_table(self, hours: int) -> np.ndarray:
        table = np.full((hours, len(self._kinds), 3), -1, dtype=np.int64)
        table[:, :, self._count] = 0
        return table

    def _grow_blocks(self, n: int) -> None:
        """At least ``n`` more free blocks (the blocks at least double)."""
        cap = len(self._b_next)
        new = max(2 * cap, cap + int(n))
        self._b_id = np.concatenate([self._b_id, np.zeros((new - cap, self._block), dtype=np.int64)])
        self._b_t = np.concatenate([self._b_t, np.zeros((new - cap, self._block), dtype=np.float64)])
        self._b_fill = np.concatenate([self._b_fill, np.zeros(new - cap, dtype=np.int64)])
        chain = np.arange(cap + 1, new + 1, dtype=np.int64)
        chain[-1] = self._state[0]  # the new blocks, then the free ones there were
        self._b_next = np.concatenate([self._b_next, chain])
        self._state[0] = cap
        self._state[1] += new - cap

    def _grow_table(self, hours: int) -> None:
        old = self._table
        table = self._new_table(min(max(int(hours), 2 * len(old)), self.MAX_HOURS))
        table[: len(old)] = old
        self._table = table

    def schedule(self, kind: IntEnum, times: np.ndarray, ids: np.ndarray) -> None:
        """Schedule events ``kind`` for cases ``ids`` at ``times`` (h); the arrays are copied."""
        n = len(ids)
        if n == 0:
            return
        times = np.asarray(times, dtype=np.float64)
        ids = np.asarray(ids, dtype=np.int64)
        k = int(kind)
        while True:
            code = self._kern.agenda_file(k, times, ids, self._table, self._b_id, self._b_t, self._b_next,
                                          self._b_fill, self._state)
            if code == 0:
                return
            if code == 2:
                self._grow_blocks(n)
                continue
            inside = (times > -1.0) & (times < self.MAX_HOURS)
            if not inside.all():  # the others are kept aside; the rest is filed in the table
                self._far.append((kind, ids[~inside].copy(), times[~inside].copy()))
                times, ids = times[inside], ids[inside]
                n = len(ids)
                if n == 0:
                    return
            if int(times.max()) >= len(self._table):
                self._grow_table(int(times.max()) + 1)

    def pending(self) -> int:
        """Events scheduled and not yet popped."""
        return int(self._table[:, :, self._count].sum()) + sum(len(p[1]) for p in self._far)

    def min_id(self, kind: IntEnum) -> int | None:
        """The smallest case id of the events ``kind`` scheduled and not yet popped (``None``: none pending)."""
        low = int(self._kern.agenda_min_id(int(kind), self._table, self._b_id, self._b_next, self._b_fill))
        far = [int(p[1].min()) for p in self._far if p[0] == kind and len(p[1])]
        low = min([low, *far])
        return None if low == self._kern.NO_ID else low

    def pop(self, hour: int) -> dict[Any, tuple[np.ndarray, np.ndarray]]:
        """All events due in [hour, hour+1), by kind, sorted by time (ties in scheduling order)."""
        if self._far:
            return self._pop_far(hour)
        if not 0 <= hour < len(self._table):
            return {}
        ids, times = self._kern.agenda_take(hour, self._table, self._b_id, self._b_t, self._b_next,
                                            self._b_fill, self._state, self._taken)
        if len(ids) == 0:
            return {}
        out = {}
        o = 0
        for kind, c in zip(self._kinds, self._taken.tolist(), strict=True):
            if c:
                out[kind] = (ids[o: o + c], times[o: o + c])
                o += c
        return out

    def _pop_far(self, hour: int) -> dict[Any, tuple[np.ndarray, np.ndarray]]:
        """:meth:`pop` when events are kept aside (their hours are never the table's)."""
        far, self._far = self._far, []
        try:
            out = self.pop(hour)
        finally:
            self._far = far
        if 0 <= hour < len(self._table):
            return out
        keep: list[tuple[Any, np.ndarray, np.ndarray]] = []
        due: dict[Any, list[tuple[np.ndarray, np.ndarray]]] = {}
        for kind, ids, times in far:
            with np.errstate(invalid="ignore"):
                now = np.trunc(times) == hour
            if now.any():
                due.setdefault(kind, []).append((ids[now], times[now]))
                if not now.all():
                    keep.append((kind, ids[~now], times[~now]))
            else:
                keep.append((kind, ids, times))
        self._far = keep
        for kind in sorted(due, key=int):
            ids = np.concatenate([p[0] for p in due[kind]])
            times = np.concatenate([p[1] for p in due[kind]])
            order = np.argsort(times, kind="stable")
            out[kind] = (ids[order], times[order])
        return out
