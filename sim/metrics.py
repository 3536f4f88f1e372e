"""KPIs and tables from the case store (names, units and definitions in :mod:`sim.results`).

Every service KPI is computed over the cases created after the warm-up. Rates over final outcomes
(resolution, satisfaction) use the cases that reached a final state (closed or abandoned); response rates
use every case. Resolution is counted twice: as the platform records it (``recorded_resolved``, what a
government reports: ``resolution_rate``) and as it truly is (``true_resolved``: ``true_resolution_rate``);
their difference is the ``gaming_gap``. The budget KPIs (hours paid and worked per role) come from the
model's :class:`sim.budgets.HoursLedger`.
"""

from __future__ import annotations

import platform as _platform
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .cases import CHANNEL_NAMES, STATUS_NAMES, Status
from .hierarchy import LEVELS
from .results import KPI_NAMES, RunResult

if TYPE_CHECKING:  # pragma: no cover
    from .model import GovernanceModel


def _rate(num: np.ndarray | float, den: float) -> float:
    return float(np.sum(num) / den) if den > 0 else float("nan")


def _ranks(n: int, q: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.quantile``'s (default ``linear`` method) indices into the ``n`` (> 0) sorted values and weights for
    the quantiles ``q``, made with numpy's own steps: virtual index (n − 1)·q, its floor and the next index (both
    −1, the last, where the virtual index reaches n − 1), and the weight of the next value."""
    virtual = (n - 1) * np.asanyarray(q)
    prev = np.floor(virtual)
    nxt = prev + 1
    above = virtual >= n - 1
    prev[above] = -1
    nxt[above] = -1
    below = virtual < 0
    prev[below] = 0
    nxt[below] = 0
    prev = prev.astype(np.intp)
    nxt = nxt.astype(np.intp)
    gamma = np.asanyarray(virtual - prev, dtype=virtual.dtype)  # numpy's gamma, from the indices as adjusted
    return prev, nxt, gamma


def _lerp(a: np.ndarray, b: np.ndarray, gamma: np.ndarray) -> list[float]:
    """numpy's linear interpolation between the values ``a`` and ``b`` (``np.quantile``'s, from either end)."""
    diff = b - a
    out = np.add(a, diff * gamma)
    np.subtract(b, diff * (1 - gamma), out=out, where=gamma >= 0.5, casting="unsafe", dtype=type(out.dtype))
    return out.tolist()


#: Up to this many values in all, :func:`_q_runs` merges the runs and reads the quantiles off the merged values.
MERGE_UP_TO = 32_768


def _q_runs(grid: np.ndarray, runs: list[np.ndarray], *q: float) -> list[float]:
    """The quantiles ``q`` of the values of several sorted ``runs`` together (each ascending, NaN last), bit for
    bit what ``np.quantile`` (default ``linear`` method) gives for them (NaN each when there are none), without
    merging them, with numpy's steps (:func:`_ranks`, :func:`_lerp`).

    ``grid``: sorted values (NaN last) whose last is at least every value of the runs (or NaN), e.g. a sample of
    them with their largest. Each value needed, the k-th smallest, lies between the last grid value with at most
    k values of the runs at or below it and the next (found by bisection over the grid, the values counted with a
    binary search in each run); it is taken from the runs' values between those two, sorted."""
    runs = [r for r in runs if len(r)]
    n = sum(len(r) for r in runs)
    if n == 0:
        return [float("nan")] * len(q)
    for r in runs:
        if np.isnan(r[-1]):
            return [float(r[-1])] * len(q)
    prev, nxt, gamma = _ranks(n, q)
    ranks = np.concatenate([prev, nxt])
    ranks[ranks < 0] += n
    if n <= MERGE_UP_TO:  # few values: merging them is cheaper than the bisection (and finds the same values)
        merged = runs[0] if len(runs) == 1 else np.sort(np.concatenate(runs))
        return _lerp(merged[ranks[: len(prev)]], merged[ranks[len(prev):]], gamma)
    lo = np.zeros(len(ranks), dtype=np.intp)
    hi = np.full(len(ranks), len(grid) - 1, dtype=np.intp)
    while (lo < hi).any():  # lo: the first grid value with more than k values at or below it
        mid = (lo + hi) // 2
        enough = sum(np.searchsorted(r, grid[mid], side="right") for r in runs) > ranks
        hi = np.where(enough, mid, hi)
        lo = np.where(enough, lo, mid + 1)
    top = [np.searchsorted(r, grid[lo], side="right") for r in runs]
    bottom = [np.searchsorted(r, grid[np.maximum(lo - 1, 0)], side="right") * (lo > 0) for r in runs]
    found = np.empty(len(ranks))
    for i, k in enumerate(ranks.tolist()):
        between = np.sort(np.concatenate([r[b[i]: t[i]] for r, b, t in zip(runs, bottom, top, strict=True)]))
        found[i] = between[k - sum(int(b[i]) for b in bottom)]
    return _lerp(found[: len(prev)], found[len(prev):], gamma)


class StoreCases:
    """The cases table (measured cases only, columns :data:`sim.results.CASE_COLUMNS`) read from a model's
    case store: whole (:meth:`frame`) or a piece at a time (:meth:`chunks`), with the same categories in
    every piece; the KPIs' columns straight from the store (:meth:`arrays`, :meth:`cells`). ``start``/``stop``:
    only the cases of store rows ``start:stop`` (a piece handed on during the run). The store rows read must
    not change while this is in use (a finished run's do not; nor do a settled case's).

    The categories do not depend on the cases: a department and holder are one of the city's departments, or
    ``platform`` where a case was never dispatched, and the handling level one of the levels in hierarchy
    order, then ``platform``. So pieces handed on during a run and the rest at its end make one table.
    """

    def __init__(self, model: GovernanceModel, start: int = 0, stop: int | None = None) -> None:
        cs = model.cases
        self.cs = cs
        self.categories = model.category_names
        start = max(int(start), 0)
        stop = cs.n if stop is None else min(int(stop), cs.n)
        measured = cs.measured[start:stop]
        # ids follow the creation time, so the measured cases are usually one run of ids: a slice, no id array
        count = int(np.count_nonzero(measured))
        first = int(np.argmax(measured)) if count else 0
        self.contiguous = bool(count and measured[first: first + count].all())
        self.first = start + first
        self.n = count
        self.ids = None if self.contiguous else np.flatnonzero(measured) + start
        h = model.hierarchy
        self.county_of = h.township_county
        self.dept_level = h.dept_level.astype(np.int8)
        self.dept_names = [d.node for d in h.departments]
        self.level_labels = [lv.value for lv in LEVELS] + ["platform"]

    def __len__(self) -> int:
        return self.n

    def rows(self, lo: int, hi: int) -> slice | np.ndarray:
        """Store rows of table rows ``lo:hi``."""
        if self.contiguous:
            return slice(self.first + lo, self.first + hi)
        return self.ids[lo:hi] if self.ids is not None else np.zeros(0, dtype=np.int64)

    def levels(self, rows: slice | np.ndarray) -> np.ndarray:
        """Handling-level codes (int8, into :attr:`level_labels`) of store ``rows``."""
        code = self.dept_level[self.cs.handler[rows]]
        return np.where(np.isnan(self.cs.dispatched[rows]), np.int8(len(LEVELS)), code)

    def piece(self, lo: int, hi: int, copy: bool = False) -> pd.DataFrame:
        """Table rows ``lo:hi`` (``copy``: as in :meth:`chunks`)."""
        cs = self.cs
        rows = self.rows(lo, hi)
        take = lambda name: getattr(cs, name)[rows]  # noqa: E731 (a view for a slice of rows, else a copy)
        if copy and isinstance(rows, slice):  # columns taken as they are are copied here (pandas need not copy
            v = lambda name: take(name).copy()  # noqa: E731 (every column again, when it forms its blocks)
        else:
            v = take
        depts = [*self.dept_names, "platform"]
        not_sent = np.isnan(take("dispatched"))
        dept = np.where(not_sent, len(self.dept_names), take("handler"))
        holder = np.where(not_sent, len(self.dept_names), take("dept"))
        sat = take("satisfied").astype(float)
        sat[sat < 0] = np.nan
        repeat_of = pd.array(take("repeat_of").astype(np.int64), dtype="Int64")
        repeat_of[repeat_of < 0] = pd.NA
        case_id = np.arange(self.first + lo, self.first + hi) if self.contiguous else rows.astype(np.int64)
        region = take("region")
        df = pd.DataFrame({
            "case_id": case_id,
            "citizen_id": take("citizen").astype(np.int64),
            "requester_kind": pd.Categorical.from_codes(take("enterprise").astype(np.int8), ["citizen", "enterprise"]),
            "category": pd.Categorical.from_codes(v("category"), self.categories),
            "channel": pd.Categorical.from_codes(v("channel"), list(CHANNEL_NAMES)),
            "region": region.astype(np.int32),
            "county": self.county_of[region].astype(np.int32),
            "urban": v("urban"),
            "handling_level": pd.Categorical.from_codes(self.levels(rows), list(self.level_labels)),
            "department": pd.Categorical.from_codes(dept, depts),
            "created_h": v("created"), "accepted_h": v("accepted"), "dispatched_h": v("dispatched"),
            "dept_arrival_h": v("dept_arrival"), "first_response_h": v("first_response"),
            "service_start_h": v("service_start"), "replied_h": v("replied"), "closed_h": v("closed"),
            "due_h": v("due"),
            "true_resolved": v("true_resolved"), "recorded_resolved": v("recorded_resolved"),
            "perfunctory": v("perfunctory"), "satisfied": sat,
            "supervised": v("supervised"), "escalated": v("escalated"), "reopened": v("reopened"),
            "tattle": v("tattle"), "direct_answer": v("direct_answer"), "misrouted": v("misrouted"),
            "hops": take("hops").astype(np.int8), "bounced": take("bounced").astype(np.int8),
            "status": pd.Categorical.from_codes(v("status"), [STATUS_NAMES[s.value] for s in Status]),
            "holder": pd.Categorical.from_codes(holder, depts),
            "repeat_of": repeat_of,
        }, copy=False)  # in the order of CASE_COLUMNS (selecting them again would copy every column)
        return df

    def frame(self, copy: bool = False) -> pd.DataFrame:
        """The whole table; ``copy=False`` lets columns that need no conversion share memory with the store."""
        return self.piece(0, len(self), copy)

    def chunks(self, rows: int, copy: bool = False) -> Iterator[pd.DataFrame]:
        """The table in pieces of at most ``rows`` rows, in order (one empty piece for an empty table);
        ``copy``: pieces own their memory (else columns that need no conversion share it with the store)."""
        for lo in range(0, max(len(self), 1), rows):
            yield self.piece(lo, min(lo + rows, len(self)), copy=copy)

    def arrays(self, lo: int = 0, hi: int | None = None) -> dict[str, np.ndarray]:
        """The columns the KPIs need (as :func:`_arrays` gives them from the table) of table rows ``lo:hi``
        (all by default), read from the store (views where no conversion is needed)."""
        cs = self.cs
        rows = self.rows(lo, len(self) if hi is None else hi)
        store = {"created_h": "created", "first_response_h": "first_response", "closed_h": "closed",
                 "due_h": "due", "replied_h": "replied", "accepted_h": "accepted", "dispatched_h": "dispatched",
                 "dept_arrival_h": "dept_arrival"}
        out = {name: getattr(cs, store.get(name, name))[rows] for name in _ARRAY_COLUMNS if name != "satisfied"}
        sat = cs.satisfied[rows].astype(float)
        sat[sat < 0] = np.nan
        out["satisfied"] = sat
        out = {name: out[name] for name in _ARRAY_COLUMNS}  # the order of _arrays
        status = cs.status[rows]
        out["is_closed"] = status == Status.CLOSED
        out["is_abandoned"] = status == Status.ABANDONED
        out["repeat"] = cs.repeat_of[rows] >= 0
        out["online"] = cs.channel[rows] == CHANNEL_NAMES.index("online")
        return out

    def cells(self, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """The equity cell (:data:`SPLITS`, :func:`cell_codes`) of each case of table rows ``lo:hi``."""
        cs = self.cs
        rows = self.rows(lo, len(self) if hi is None else hi)
        return cell_codes(cs.enterprise[rows], cs.channel[rows], cs.urban[rows], self.levels(rows))


def cases_frame(model: GovernanceModel, copy: bool = True) -> pd.DataFrame:
    """The cases table (measured cases only), columns :data:`sim.results.CASE_COLUMNS`.

    ``copy=False`` (for a run that is over) lets columns that need no conversion share memory with the case
    store instead of copying it; the store must then not change while the table is in use.
    """
    return StoreCases(model).frame(copy=copy)


_ARRAY_COLUMNS = ("created_h", "first_response_h", "closed_h", "due_h", "satisfied", "direct_answer",
                  "replied_h", "true_resolved", "recorded_resolved", "reopened", "escalated", "perfunctory",
                  "accepted_h", "dispatched_h", "dept_arrival_h", "hops")


def _arrays(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """The columns the KPIs need, as numpy arrays (status and channel as plain strings' codes)."""
    out = {name: df[name].to_numpy() for name in _ARRAY_COLUMNS}
    status = df["status"]
    if isinstance(status.dtype, pd.CategoricalDtype):
        cats = list(status.cat.categories)
        codes = status.cat.codes.to_numpy()
        out["is_closed"] = codes == cats.index("closed") if "closed" in cats else np.zeros(len(df), bool)
        out["is_abandoned"] = codes == cats.index("abandoned") if "abandoned" in cats else np.zeros(len(df), bool)
    else:
        st = status.astype(str).to_numpy()
        out["is_closed"], out["is_abandoned"] = st == "closed", st == "abandoned"
    out["repeat"] = df["repeat_of"].notna().to_numpy() if "repeat_of" in df else np.zeros(len(df), bool)
    out["online"] = (df["channel"].astype(str).to_numpy() == "online") if not isinstance(
        df["channel"].dtype, pd.CategoricalDtype) else (df["channel"].cat.codes.to_numpy()
                                                        == list(df["channel"].cat.categories).index("online"))
    return out


#: The equity splits of a run's ``groups`` table: (name, group labels). A case falls in one group of each;
#: its *cell* (:func:`cell_codes`) is the combination, so counts by cell add up to counts by any group.
SPLITS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("requester_kind", ("citizen", "enterprise")),
    ("channel", CHANNEL_NAMES),
    ("area", ("rural", "urban")),
    ("handling_level", (*(lv.value for lv in LEVELS), "platform")),
)
_SIZES = tuple(len(labels) for _, labels in SPLITS)
N_CELLS = int(np.prod(_SIZES))


def cell_codes(enterprise: np.ndarray, channel: np.ndarray, urban: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Each case's equity cell (int16): its group in every split of :data:`SPLITS`, as one number."""
    code = enterprise.astype(np.int16)
    for codes, size in zip((channel, urban, level), _SIZES[1:], strict=True):
        code = code * size + codes
    return code


#: Per split of :data:`SPLITS`, the group of every cell.
_CELL_GROUPS: tuple[np.ndarray, ...] = tuple(
    np.arange(N_CELLS) // int(np.prod(_SIZES[k + 1:])) % _SIZES[k] for k in range(len(SPLITS)))


#: What the KPIs count: per case, whether each holds (:func:`_indicators`); ``n`` is every case.
_COUNTS = ("n", "responded", "on_time_response", "final", "recorded_final", "true_final", "dispatched_final",
           "recorded_dispatched_final", "true_dispatched_final", "judged", "satisfied", "assessable",
           "on_time_close", "reopened", "escalated", "replied_by_department", "perfunctory_reply", "accepted",
           "direct_accepted", "repeat", "final_repeat", "true_final_repeat", "judged_repeat", "satisfied_repeat",
           "online")
#: The spans (h) the KPIs take quantiles of: hours to first response, to closure, of the relays.
_SPANS = ("response", "close", "relay")
#: The daily counts of the time series (:meth:`CaseTally._add_daily` says by which day and of which cases).
_DAILY = ("accepted", "first_responses", "closed", "recorded_resolved", "true_resolved", "satisfied", "judged",
          "responded_of_created", "created")


def _indicators(a: Mapping[str, np.ndarray], response_target_h: float, end_h: float
                ) -> tuple[list[np.ndarray], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The per-case booleans of :data:`_COUNTS`, and the spans of :data:`_SPANS` as (which cases, hours)."""
    created, first, closed, due = a["created_h"], a["first_response_h"], a["closed_h"], a["due_h"]
    is_closed = a["is_closed"]
    final = is_closed | a["is_abandoned"]
    responded = ~np.isnan(first)
    sat = a["satisfied"]
    judged = ~np.isnan(sat)
    satisfied = sat == 1
    dispatched_final = final & ~np.isnan(a["dispatched_h"])
    recorded, true = a["recorded_resolved"], a["true_resolved"]
    # due-time yardstick: cases closed, or whose due time has passed by the end of the run
    assessable = is_closed | (due <= end_h)
    by_department = ~np.isnan(a["replied_h"]) & ~a["direct_answer"]
    accepted = ~np.isnan(a["accepted_h"])
    repeat = a["repeat"]
    final_repeat = final & repeat
    judged_repeat = judged & repeat
    counts = [
        np.ones(len(created), bool), responded, responded & (first - created <= response_target_h),
        final, recorded & final, true & final, dispatched_final, recorded & dispatched_final,
        true & dispatched_final, judged, satisfied, assessable,
        assessable & is_closed & (closed <= due), a["reopened"], a["escalated"], by_department,
        a["perfunctory"] & by_department, accepted, a["direct_answer"] & accepted,
        repeat, final_repeat, true & final_repeat, judged_repeat, satisfied & judged_repeat, a["online"],
    ]
    relayed = (a["hops"] > 1) & ~np.isnan(a["dept_arrival_h"]) & ~np.isnan(a["dispatched_h"])
    closed_ok = is_closed & ~np.isnan(closed)
    spans = {"response": (responded, (first - created)[responded]),
             "close": (closed_ok, (closed - created)[closed_ok]),
             "relay": (relayed, (a["dept_arrival_h"] - a["dispatched_h"])[relayed])}
    return counts, spans


class CaseTally:
    """The case-level part of a run's result, added up a piece of the cases at a time: the counts behind
    the service KPIs, per equity cell (:data:`SPLITS`), the spans the KPIs take quantiles of (kept, with
    their cells), and the daily counts of the time series. Counts are whole numbers and quantiles are of
    the same values, so the result does not depend on how the cases were cut into pieces.

    ``end_h``: end of the run (h); ``response_target_h``: the on-time response yardstick (h).
    """

    def __init__(self, end_h: float, response_target_h: float) -> None:
        self.end_h = float(end_h)
        self.response_target_h = float(response_target_h)
        self.counts = np.zeros((len(_COUNTS), N_CELLS), dtype=np.int64)
        self.spans: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {name: [] for name in _SPANS}
        self._by_cell: dict[str, tuple] = {}  # per span, sorted_span's arrays, held within sorted_spans
        self._hold = False
        self.daily = {name: np.zeros(0, dtype=np.int64) for name in _DAILY}

    def add(self, a: Mapping[str, np.ndarray], cells: np.ndarray | None = None) -> None:
        """Count the cases of the KPIs' columns ``a`` (:meth:`StoreCases.arrays`), in equity ``cells`` (all in
        cell 0 when not given)."""
        n = len(a["created_h"])
        if n == 0:
            return
        if cells is None:
            cells = np.zeros(n, dtype=np.int16)
        counts, spans = _indicators(a, self.response_target_h, self.end_h)
        for k, ind in enumerate(counts):
            self.counts[k] += np.bincount(cells[ind], minlength=N_CELLS)
        for name, (which, hours) in spans.items():
            self.spans[name].append((hours, cells[which]))
            self._by_cell.pop(name, None)
        self._add_daily(a)

    def _add_daily(self, a: Mapping[str, np.ndarray]) -> None:
        sat = np.asarray(a["satisfied"])
        closed_day = np.floor(np.asarray(a["closed_h"]) / 24.0)
        created_day = np.floor(np.asarray(a["created_h"]) / 24.0)
        for name, days, mask in (
            ("accepted", np.floor(np.asarray(a["accepted_h"]) / 24.0), None),
            ("first_responses", np.floor(np.asarray(a["first_response_h"]) / 24.0), None),
            ("closed", closed_day, None),
            ("recorded_resolved", closed_day, np.asarray(a["recorded_resolved"])),
            ("true_resolved", closed_day, np.asarray(a["true_resolved"])),
            ("satisfied", closed_day, sat == 1), ("judged", closed_day, ~np.isnan(sat)),
            ("responded_of_created", created_day, ~np.isnan(np.asarray(a["first_response_h"]))),
            ("created", created_day, None),
        ):
            ok = ~np.isnan(days)
            if mask is not None:
                ok &= mask
            d = days[ok]
            d = d[d >= 0].astype(np.int64)
            add = np.bincount(d)
            have = self.daily[name]
            if len(add) > len(have):
                have = np.concatenate([have, np.zeros(len(add) - len(have), dtype=np.int64)])
            have[: len(add)] += add
            self.daily[name] = have

    def daily_counts(self, n_days: int) -> dict[str, np.ndarray]:
        """The daily counts of days ``0:n_days`` (days counted from the start of the run, warm-up included)."""
        out = {}
        for name, have in self.daily.items():
            c = np.zeros(n_days, dtype=np.int64)
            m = min(n_days, len(have))
            c[:m] = have[:m]
            out[name] = c
        return out

    def group_sizes(self, split: int) -> np.ndarray:
        """Cases in each group of split ``split`` (an index into :data:`SPLITS`)."""
        return np.bincount(_CELL_GROUPS[split], weights=self.counts[0], minlength=_SIZES[split]).astype(np.int64)

    #: :meth:`sorted_span` keeps every SPAN_GRID-th hour of each cell's sorted hours (and the last) as the grid over
    #: which :func:`_q_runs` looks for a quantile's values (a finer grid: more bisection steps, fewer values between).
    SPAN_GRID = 64

    def sorted_span(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The span ``name`` (:data:`_SPANS`) of every case counted, by equity cell: its hours cell after cell,
        each cell's in ascending order (NaN last); the offsets at which each cell's hours begin (``N_CELLS + 1``,
        the last the end); and a sorted sample of the hours, :func:`_q_runs`'s grid. Made afresh for each call,
        except within :meth:`sorted_spans` (then once, until cases are added)."""
        got = self._by_cell.get(name)
        if got is not None:
            return got
        parts = self.spans[name]
        size = np.zeros(N_CELLS, dtype=np.int64)
        for _, cells in parts:
            size += np.bincount(cells, minlength=N_CELLS)
        bounds = np.concatenate([[0], np.cumsum(size)])
        by_cell = np.empty(int(bounds[-1]))
        at = bounds[:-1].copy()  # where each cell's next hours go
        for hours, cells in parts:  # a part at a time, so that no copy of the whole span is made but this one
            count = np.bincount(cells, minlength=N_CELLS)
            start = np.concatenate([[0], np.cumsum(count)]).tolist()
            hours = hours[np.argsort(cells, kind="stable")]  # a counting sort of the part's cells
            for c in np.flatnonzero(count).tolist():
                by_cell[at[c]: at[c] + count[c]] = hours[start[c]: start[c + 1]]
            at += count
        sample = []
        for c in np.flatnonzero(size).tolist():
            run = by_cell[bounds[c]: bounds[c + 1]]
            run.sort()
            sample += [run[:: self.SPAN_GRID], run[-1:]]
        grid = np.sort(np.concatenate(sample)) if sample else np.zeros(0)
        got = (by_cell, bounds, grid)
        if self._hold:
            self._by_cell[name] = got
        return got

    @contextmanager
    def sorted_spans(self) -> Iterator[CaseTally]:
        """Within this context each span is sorted by cell (:meth:`sorted_span`) once, for all :meth:`kpis` calls,
        and released at its end: the sorted copy (8 bytes a span's case) is held only while the KPIs are read."""
        self._hold = True
        try:
            yield self
        finally:
            self._hold = False
            self._by_cell.clear()

    def kpis(self, split: int | None = None, group: int | None = None) -> dict[str, float]:
        """The service KPIs of every case counted (``split`` None) or of group ``group`` of split ``split``;
        definitions in :data:`sim.results.KPI_DOCS`. The spans' quantiles are numpy's (``np.quantile``,
        ``linear``), read from the spans sorted by cell (:meth:`sorted_span`, :func:`_q_runs`; sorted once for
        many calls within :meth:`sorted_spans`)."""
        if split is None:
            c = self.counts.sum(axis=1)
            in_group = None
        else:
            in_group = _CELL_GROUPS[split] == group
            c = self.counts[:, in_group].sum(axis=1)
        n = dict(zip(_COUNTS, c.tolist(), strict=True))

        def span(name: str, *q: float) -> list[float]:
            by_cell, bounds, grid = self.sorted_span(name)
            cells = range(N_CELLS) if in_group is None else np.flatnonzero(in_group).tolist()
            return _q_runs(grid, [by_cell[bounds[c]: bounds[c + 1]] for c in cells], *q)

        resp_q, close_q = span("response", 0.5, 0.9), span("close", 0.5, 0.9)
        rec, tru = _rate(n["recorded_final"], n["final"]), _rate(n["true_final"], n["final"])
        return {
            "response_rate": _rate(n["responded"], n["n"]),
            "on_time_response_rate": _rate(n["on_time_response"], n["n"]),
            "resolution_rate": rec, "true_resolution_rate": tru, "gaming_gap": rec - tru,
            "dispatched_resolution_rate": _rate(n["recorded_dispatched_final"], n["dispatched_final"]),
            "dispatched_true_resolution_rate": _rate(n["true_dispatched_final"], n["dispatched_final"]),
            "satisfaction_rate": _rate(n["satisfied"], n["judged"]),
            "median_response_h": resp_q[0],
            "p90_response_h": resp_q[1],
            "median_close_h": close_q[0],
            "p90_close_h": close_q[1],
            "on_time_close_rate": _rate(n["on_time_close"], n["assessable"]),
            "reopen_rate": _rate(n["reopened"], n["n"]),
            "escalation_rate": _rate(n["escalated"], n["n"]),
            "perfunctory_share": _rate(n["perfunctory_reply"], n["replied_by_department"]),
            "direct_answer_share": _rate(n["direct_accepted"], n["accepted"]),
            "repeat_share": _rate(n["repeat"], n["n"]),
            "repeat_true_resolution_rate": _rate(n["true_final_repeat"], n["final_repeat"]),
            "repeat_satisfaction_rate": _rate(n["satisfied_repeat"], n["judged_repeat"]),
            "median_relay_h": span("relay", 0.5)[0],
            "cases": float(n["n"]), "online_share": _rate(n["online"], n["n"]),
        }


def kpis(df: pd.DataFrame | Mapping[str, np.ndarray], end_h: float, response_target_h: float,
         mask: np.ndarray | None = None) -> dict[str, float]:
    """The service KPIs of a cases table (or of the rows in ``mask``); no population-level or budget ones.

    ``end_h``: end of the run (h); ``response_target_h``: the on-time response yardstick (h). Definitions in
    :data:`sim.results.KPI_DOCS` (:class:`CaseTally` counts them; the runs' equity splits use its cells).
    """
    a = _arrays(df) if isinstance(df, pd.DataFrame) else df
    if mask is not None:
        a = {k: v[mask] for k, v in a.items()}
    tally = CaseTally(end_h, response_target_h)
    tally.add(a)
    out = tally.kpis()
    del out["cases"], out["online_share"]
    return out


def build_result(model: GovernanceModel, final: bool = False, start: int = 0,
                 tally: CaseTally | None = None) -> RunResult:
    """Assemble the run's tables and KPIs. The case-level KPIs, equity splits and daily rates come from a
    :class:`CaseTally` of the measured cases: ``tally`` holds those of store rows before ``start`` (handed on
    during the run, :meth:`sim.model.GovernanceModel.hand_off`; the tally is then completed here), the rest
    are read from the case store. The cases table is not built here. ``final``: the run is over and the model
    will not step again, so the result reads its cases table (of the cases from ``start`` on) from the store
    when asked (:class:`StoreCases`, whole or in pieces); otherwise the table is copied now (the store goes
    on changing)."""
    import mesa

    sc = model.settings
    end_h = model.end_h
    table = StoreCases(model, start)
    if tally is None:
        if start:
            raise ValueError("build_result: the cases before start need their tally")
        tally = CaseTally(end_h, sc.kpi.response_target_h)
    for lo in range(0, len(table), TALLY_ROWS):  # a piece at a time: the KPIs' columns are never copied whole
        hi = min(lo + TALLY_ROWS, len(table))
        tally.add(table.arrays(lo, hi), table.cells(lo, hi))
    with tally.sorted_spans():  # the spans sorted once for every KPI call below, released after them
        k = tally.kpis()
        k["backlog_end"] = float(len(model.cases.open_ids()))
        k["mean_trust"] = model.population.mean_trust(float(model.hour))
        problems = model.problems.sum()
        k["participation_rate"] = _rate(model.reported.sum(), problems)
        area = [name for name, _ in SPLITS].index("area")
        by_area = tally.group_sizes(area)
        k["digital_gap"] = (tally.kpis(area, 1)["online_share"] - tally.kpis(area, 0)["online_share"]
                            if (by_area > 0).all() else float("nan"))
        t = model.departments
        k["relay_wait_h"] = _rate(t.wait_h[t.relay], t.starts[t.relay].sum())
        k.update(model.ledger.kpis())
        summary = {name: float(k[name]) for name in KPI_NAMES}

        # splits for equity analysis: the groups with cases, in the order of their names
        rows = []
        for i, (by, labels) in enumerate(SPLITS):
            sizes = tally.group_sizes(i)
            for g in sorted(labels[c] for c in np.flatnonzero(sizes).tolist()):
                gk = tally.kpis(i, labels.index(g))
                for name, val in gk.items():
                    rows.append((by, g, name, float(val)))
    # participation by area and kind (problems met vs reported)
    for ai, area_name in enumerate(("rural", "urban")):
        rows.append(("area", area_name, "participation_rate",
                     _rate(model.reported[ai].sum(), model.problems[ai].sum())))
    for ki, kind in enumerate(("citizen", "enterprise")):
        rows.append(("requester_kind", kind, "participation_rate",
                     _rate(model.reported[:, ki].sum(), model.problems[:, ki].sum())))
    rows += _queue_rows(model)
    groups = pd.DataFrame(rows, columns=["group_by", "group", "kpi", "value"])

    ts = _timeseries(model, tally)
    meta = {
        "seed": int(model.seed), "scenario": sc.name, "fingerprint": sc.fingerprint(),
        "cases": int(tally.counts[0].sum()), "problems": int(problems),
        "systemic_fixes": int(model.platform.fixes_started),
        "versions": {"python": _platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__,
                     "mesa": mesa.__version__},
    }
    if final:
        return RunResult(source=table, timeseries=ts, summary=summary, groups=groups, meta=meta)
    return RunResult(cases=table.frame(copy=True), timeseries=ts, summary=summary, groups=groups, meta=meta)


#: Cases a :class:`CaseTally` takes at a time when a result reads them from the store.
TALLY_ROWS = 262_144


def _queue_rows(model: GovernanceModel) -> list[tuple[str, str, str, float]]:
    """Queue waits of measured cases by bureau role and level (group ``<role>@<level>``, e.g. ``relay@county``):
    ``queue_wait_h`` (mean hours from reaching the bureau to the start of work; sitting on a case counts),
    ``queue_starts`` (cases started) and ``staff`` (members of staff of that kind)."""
    t = model.departments
    rows = []
    for relay, role in ((False, "department"), (True, "relay")):
        for li, lv in enumerate(LEVELS):
            sel = (t.relay == relay) & (t.level == li)
            if not sel.any():
                continue
            group = f"{role}@{lv.value}"
            n = float(t.starts[sel].sum())
            rows += [("queue", group, "queue_wait_h", _rate(t.wait_h[sel], n)),
                     ("queue", group, "queue_starts", n), ("queue", group, "staff", float(t.staff[sel].sum()))]
    return rows


def timeseries_frame(model: GovernanceModel, df: pd.DataFrame | Mapping[str, np.ndarray]) -> pd.DataFrame:
    """One row per measured day: live counts from the model plus daily rates from the cases table (or the
    KPIs' columns of it, :meth:`StoreCases.arrays`); see :func:`_timeseries`."""
    tally = CaseTally(float("inf"), 0.0)
    a = _arrays(df) if isinstance(df, pd.DataFrame) else df
    if len(a["created_h"]):
        tally._add_daily(a)
    return _timeseries(model, tally)


def _timeseries(model: GovernanceModel, tally: CaseTally) -> pd.DataFrame:
    """One row per measured day: live counts from the model plus daily rates from the tally of the cases.

    Daily rates are over the cases closed that day (``resolution_rate`` recorded, ``true_resolution_rate``
    true); ``day`` counts from the end of warm-up. Columns ``*_cum`` of the model's rows (cumulative since the
    warm-up, e.g. :meth:`sim.budgets.HoursLedger.day_row`'s ``cost_hours_cum`` and ``work_hours_cum``,
    staff-hours) become daily values without the suffix (``cost_hours``, ``work_hours``).
    """
    live = pd.DataFrame(model.daily)
    if live.empty:
        return live
    warm_day = int(model.warmup_h // 24)
    keep = live["day"].to_numpy() >= warm_day
    out: dict[str, np.ndarray] = {}
    daily: dict[str, np.ndarray] = {}
    for name in live.columns:
        v = live[name].to_numpy()[keep]
        if name.endswith("_cum"):  # cumulative since warm-up -> per day (the first day's as it is)
            per_day = v.astype(np.float64)
            per_day[1:] = v[1:] - v[:-1]
            daily[name.removesuffix("_cum")] = per_day
        else:
            out[name] = v
    out.update(daily)
    day = out["day"]
    c = tally.daily_counts(int(day.max()) + 1 if len(day) else 0)
    out.update({name: c[name][day] for name in _DAILY})
    with np.errstate(invalid="ignore", divide="ignore"):
        out["response_rate"] = out.pop("responded_of_created") / out.pop("created")
        out["resolution_rate"] = out["recorded_resolved"] / out["closed"]
        out["true_resolution_rate"] = out["true_resolved"] / out["closed"]
        out["satisfaction_rate"] = out["satisfied"] / out["judged"]
        out["participation"] = out["arrivals"] / out["problems"]
    out["day"] = day - warm_day
    return pd.DataFrame(out)
