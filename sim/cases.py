"""Cases as rows of a columnar store, their lifecycle states, and a time-bucketed agenda.

Cases are not agents: a city takes millions of them, so each is a row index into numpy arrays that
grow as needed. Lifecycle: arise → report → accept (受理) → answer directly, or dispatch → sign for
(first response) → handle → reply (resolved, or perfunctory) → call back (satisfied or not) → close, or
reopen / escalate. Supervision (督办) can act at any overdue or unsatisfied point.
"""

from __future__ import annotations

from collections import defaultdict
from enum import IntEnum
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
_ID_FIELDS = ("repeat_of",)  # int64, −1 for none
_SMALL_FIELDS = ("category", "channel", "status", "hops", "reopen_count", "supervision_level", "satisfied", "boost",
                 "action", "bounced", "route_pos", "repeat_count")
_BOOL_FIELDS = ("enterprise", "urban", "true_resolved", "recorded_resolved", "perfunctory", "supervised", "escalated",
                "reopened", "tattle", "collective", "direct_answer", "misrouted", "consultation", "measured",
                "surveyed", "audited")


#: Every column of the case store: (name, dtype, default of a new case).
_COLUMNS: tuple[tuple[str, Any, Any], ...] = (
    *((f, np.float64, np.nan) for f in _FLOAT_FIELDS), *((f, np.int32, 0) for f in _INT_FIELDS),
    *((f, np.int8, -1 if f == "satisfied" else 0) for f in _SMALL_FIELDS),
    *((f, np.bool_, False) for f in _BOOL_FIELDS), *((f, np.int64, -1) for f in _ID_FIELDS),
)


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

    Grows by half its size when full (a good first ``capacity`` avoids copies altogether). Rows past ``n`` are
    allocated but never written (``np.empty``): each row gets its defaults when it is added, so the memory
    of the unused capacity is not touched and costs no resident memory.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self.n = 0
        self.capacity = max(16, int(capacity))
        for f, dtype, _ in _COLUMNS:
            setattr(self, f, np.empty(self.capacity, dtype=dtype))
        self.first_open = 0  # every case before this index is final

    def _grow(self, need: int) -> None:
        cap = self.capacity
        while cap < need:
            cap = int(cap * 1.5) + 16
        for f, dtype, _ in _COLUMNS:
            old = getattr(self, f)
            new = np.empty(cap, dtype=dtype)
            new[: self.n] = old[: self.n]
            setattr(self, f, new)
        self.capacity = cap

    def add(self, **columns: np.ndarray) -> np.ndarray:
        """Append cases; returns their ids. Columns not given get their defaults (NaN times, −1 for
        ``repeat_of`` and ``satisfied``, 0 or false otherwise)."""
        k = len(next(iter(columns.values())))
        if self.n + k > self.capacity:
            self._grow(self.n + k)
        new = slice(self.n, self.n + k)
        ids = np.arange(self.n, self.n + k, dtype=np.int64)
        for name, _, default in _COLUMNS:
            if name not in columns:
                getattr(self, name)[new] = default
        for name, values in columns.items():
            getattr(self, name)[new] = values
        self.n += k
        return ids

    def compelled(self, ids: np.ndarray) -> np.ndarray:
        """Cases whose handling is compelled: under a supervision order (ladder level 2 or more) or escalated.

        A compelled case is always answered, never perfunctorily, and goes to the head of its queue.
        """
        return (self.supervision_level[ids] >= 2) | self.escalated[ids]

    def open_ids(self) -> np.ndarray:
        """Ids of cases not yet final (closed or abandoned)."""
        st = self.status[self.first_open: self.n]
        final = st >= Status.CLOSED
        # advance the watermark past the leading run of final cases
        if len(st) and final[0]:
            lead = np.argmin(final) if not final.all() else len(final)
            self.first_open += int(lead)
            st = st[lead:]
            final = final[lead:]
        return np.flatnonzero(~final) + self.first_open


class Agenda:
    """Future events by the hour: ``schedule(kind, times, ids)`` and ``pop(hour)``.

    Exact times are kept; the hour bucket only says in which step the event is handled. Scheduling only
    stages the arrays (O(1) a call); the next ``pop`` sorts everything staged into hour buckets at once,
    kind by kind, so a step's many small calls cost one sort. Within an hour and kind, events keep the
    order in which they were scheduled, and ``pop`` returns them sorted by time (ties in that order).
    """

    def __init__(self) -> None:
        self._buckets: dict[int, dict[str, list[tuple[np.ndarray, np.ndarray]]]] = defaultdict(
            lambda: defaultdict(list))
        self._staged: dict[str, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)

    def schedule(self, kind: str, times: np.ndarray, ids: np.ndarray) -> None:
        """Stage events ``kind`` for cases ``ids`` at ``times`` (hours, >= 0; the arrays must not be changed
        afterwards: they are kept, not copied, until the next ``pop``)."""
        if len(ids):
            self._staged[kind].append((ids, times))

    def pending(self) -> int:
        """Events scheduled and not yet popped."""
        staged = sum(len(p[0]) for parts in self._staged.values() for p in parts)
        return staged + sum(len(p[0]) for b in self._buckets.values() for parts in b.values() for p in parts)

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

    def pop(self, hour: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """All events due in [hour, hour+1), by kind, sorted by time."""
        if self._staged:
            self._sort_staged()
        bucket = self._buckets.pop(hour, None)
        if not bucket:
            return {}
        out = {}
        for kind, parts in bucket.items():
            if len(parts) == 1:
                ids, times = parts[0]
            else:
                ids = np.concatenate([p[0] for p in parts])
                times = np.concatenate([p[1] for p in parts])
            if len(ids) > 1:
                order = np.argsort(times, kind="stable")
                ids, times = ids[order], times[order]
            else:  # never hand out a caller's own array
                ids, times = ids.copy(), times.copy()
            out[kind] = (ids, times)
        return out
