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
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .cases import CHANNEL_NAMES, STATUS_NAMES, Status
from .hierarchy import LEVELS
from .results import CASE_COLUMNS, KPI_NAMES, RunResult

if TYPE_CHECKING:  # pragma: no cover
    from .model import GovernanceModel


def _rate(num: np.ndarray | float, den: float) -> float:
    return float(np.sum(num) / den) if den > 0 else float("nan")


def _q(x: np.ndarray, *q: float) -> list[float]:
    """The quantiles ``q`` of ``x`` (NaN each when ``x`` is empty), from one partition of ``x``."""
    return np.quantile(x, q).tolist() if len(x) else [float("nan")] * len(q)


class StoreCases:
    """The cases table (measured cases only, columns :data:`sim.results.CASE_COLUMNS`) read from a model's
    case store: whole (:meth:`frame`) or a piece at a time (:meth:`chunks`), with the same categories in
    every piece; the KPIs' columns straight from the store (:meth:`arrays`). The store must not change
    while this is in use (a finished run's store does not).

    Where a case was never dispatched its department and holder are ``platform`` (a category added only
    when such a case exists) and its handling level too (the levels are then the used ones and
    ``platform``, sorted by name; otherwise every level in hierarchy order).
    """

    def __init__(self, model: GovernanceModel) -> None:
        cs = model.cases
        self.cs = cs
        self.categories = model.category_names
        keep = np.flatnonzero(cs.measured[: cs.n])
        self.ids = keep
        # ids follow the creation time, so the measured cases are one run of ids: a slice, cheaper than a gather
        self.contiguous = bool(len(keep) and keep[-1] - keep[0] + 1 == len(keep))
        h = model.hierarchy
        self.county_of = h.township_county
        self.dept_level = h.dept_level
        self.dept_names = [d.node for d in h.departments]
        level_names = [lv.value for lv in LEVELS]
        rows = self.rows(0, len(keep))
        not_sent = np.isnan(cs.dispatched[rows])
        self.platform = bool(not_sent.any())
        if self.platform:
            used = np.unique(h.dept_level[cs.handler[rows][~not_sent]])
            self.level_labels = sorted({*(level_names[i] for i in used.tolist()), "platform"})
            self.level_code = np.array([self.level_labels.index(n) if n in self.level_labels else -1
                                        for n in level_names])
        else:
            self.level_labels = level_names
            self.level_code = np.arange(len(level_names))

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, lo: int, hi: int) -> slice | np.ndarray:
        """Store rows of table rows ``lo:hi``."""
        if self.contiguous:
            first = int(self.ids[0])
            return slice(first + lo, first + hi)
        return self.ids[lo:hi]

    def levels(self, rows: slice | np.ndarray) -> np.ndarray:
        """Handling-level codes (into :attr:`level_labels`) of store ``rows``."""
        code = self.level_code[self.dept_level[self.cs.handler[rows]]]
        if self.platform:
            code = np.where(np.isnan(self.cs.dispatched[rows]), self.level_labels.index("platform"), code)
        return code

    def _piece(self, lo: int, hi: int, copy: bool) -> pd.DataFrame:
        cs = self.cs
        rows = self.rows(lo, hi)
        v = lambda name: getattr(cs, name)[rows]  # noqa: E731
        dept, holder = v("handler"), v("dept")
        depts = list(self.dept_names)
        if self.platform:
            not_sent = np.isnan(v("dispatched"))
            dept = np.where(not_sent, len(depts), dept)
            holder = np.where(not_sent, len(depts), holder)
            depts.append("platform")
        sat = v("satisfied").astype(float)
        sat[sat < 0] = np.nan
        repeat_of = pd.array(v("repeat_of"), dtype="Int64")
        repeat_of[repeat_of < 0] = pd.NA
        df = pd.DataFrame({
            "case_id": self.ids[lo:hi].astype(np.int64),
            "citizen_id": v("citizen").astype(np.int64),
            "requester_kind": pd.Categorical.from_codes(v("enterprise").astype(np.int8), ["citizen", "enterprise"]),
            "category": pd.Categorical.from_codes(v("category"), self.categories),
            "channel": pd.Categorical.from_codes(v("channel"), list(CHANNEL_NAMES)),
            "region": v("region").astype(np.int32),
            "county": self.county_of[v("region")].astype(np.int32),
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
            "hops": v("hops").astype(np.int8), "bounced": v("bounced").astype(np.int8),
            "status": pd.Categorical.from_codes(v("status"), [STATUS_NAMES[s.value] for s in Status]),
            "holder": pd.Categorical.from_codes(holder, depts),
            "repeat_of": repeat_of,
        }, copy=copy)
        return df[list(CASE_COLUMNS)]

    def frame(self, copy: bool = False) -> pd.DataFrame:
        """The whole table; ``copy=False`` lets columns that need no conversion share memory with the store."""
        return self._piece(0, len(self), copy)

    def chunks(self, rows: int) -> Iterator[pd.DataFrame]:
        """The table in pieces of at most ``rows`` rows, in order (one empty piece for an empty table)."""
        for lo in range(0, max(len(self), 1), rows):
            yield self._piece(lo, min(lo + rows, len(self)), copy=False)

    def arrays(self) -> dict[str, np.ndarray]:
        """The columns the KPIs need (as :func:`_arrays` gives them from the table), read from the store."""
        cs = self.cs
        rows = self.rows(0, len(self))
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


class _Rows(Mapping):
    """The KPIs' columns (:meth:`StoreCases.arrays`) of some rows, gathered afresh each time one is read, so
    that a large group of the equity splits is never copied whole (only the columns the KPIs hold at once)."""

    def __init__(self, cols: dict[str, np.ndarray], rows: np.ndarray) -> None:
        self.cols, self.rows = cols, rows

    def __getitem__(self, name: str) -> np.ndarray:
        return self.cols[name][self.rows]

    def __iter__(self) -> Iterator[str]:
        return iter(self.cols)

    def __len__(self) -> int:
        return len(self.cols)


def kpis(df: pd.DataFrame | Mapping[str, np.ndarray], end_h: float, response_target_h: float,
         mask: np.ndarray | None = None) -> dict[str, float]:
    """The service KPIs of a cases table (or of the rows in ``mask``); no population-level or budget ones.

    ``end_h``: end of the run (h); ``response_target_h``: the on-time response yardstick (h). Definitions in
    :data:`sim.results.KPI_DOCS`. Applied per group for the equity splits.
    """
    a = _arrays(df) if isinstance(df, pd.DataFrame) else df
    if mask is not None:
        a = {k: v[mask] for k, v in a.items()}
    created, first, closed, due = a["created_h"], a["first_response_h"], a["closed_h"], a["due_h"]
    n = len(created)
    is_closed = a["is_closed"]
    final = is_closed | a["is_abandoned"]
    responded = ~np.isnan(first)
    resp_t = (first - created)[responded]
    close_t = (closed - created)[is_closed & ~np.isnan(closed)]
    sat = a["satisfied"]
    judged = ~np.isnan(sat)
    # due-time yardstick: cases closed, or whose due time has passed by the end of the run
    assessable = is_closed | (due <= end_h)
    on_time_close = is_closed & (closed <= due)
    not_direct = ~a["direct_answer"]
    replied = ~np.isnan(a["replied_h"])
    accepted = ~np.isnan(a["accepted_h"])
    relayed = (a["hops"] > 1) & ~np.isnan(a["dept_arrival_h"]) & ~np.isnan(a["dispatched_h"])
    resp_q, close_q = _q(resp_t, 0.5, 0.9), _q(close_t, 0.5, 0.9)
    return {
        "response_rate": _rate(responded, n),
        "on_time_response_rate": _rate(responded & (first - created <= response_target_h), n),
        **_resolution(a["recorded_resolved"], a["true_resolved"], final, final & ~np.isnan(a["dispatched_h"])),
        "satisfaction_rate": _rate(sat[judged] == 1, judged.sum()),
        "median_response_h": resp_q[0],
        "p90_response_h": resp_q[1],
        "median_close_h": close_q[0],
        "p90_close_h": close_q[1],
        "on_time_close_rate": _rate(on_time_close[assessable], assessable.sum()),
        "reopen_rate": _rate(a["reopened"], n),
        "escalation_rate": _rate(a["escalated"], n),
        "perfunctory_share": _rate(a["perfunctory"][replied & not_direct], (replied & not_direct).sum()),
        "direct_answer_share": _rate(a["direct_answer"][accepted], accepted.sum()),
        **_repeats(a["repeat"], a["true_resolved"], final, sat, judged),
        "median_relay_h": _q((a["dept_arrival_h"] - a["dispatched_h"])[relayed], 0.5)[0],
    }


def _repeats(repeat: np.ndarray, true: np.ndarray, final: np.ndarray, sat: np.ndarray, judged: np.ndarray
             ) -> dict[str, float]:
    """Share of cases that are repeat reports, and the true resolution and satisfaction of the repeats."""
    return {
        "repeat_share": _rate(repeat, len(repeat)),
        "repeat_true_resolution_rate": _rate(true[final & repeat], (final & repeat).sum()),
        "repeat_satisfaction_rate": _rate(sat[judged & repeat] == 1, (judged & repeat).sum()),
    }


def _resolution(recorded: np.ndarray, true: np.ndarray, final: np.ndarray, dispatched: np.ndarray
                ) -> dict[str, float]:
    """Recorded and true resolution over the final cases and over the final dispatched cases (shares), and
    the gaming gap (recorded − true, share points)."""
    rec, tru = _rate(recorded[final], final.sum()), _rate(true[final], final.sum())
    return {
        "resolution_rate": rec, "true_resolution_rate": tru, "gaming_gap": rec - tru,
        "dispatched_resolution_rate": _rate(recorded[dispatched], dispatched.sum()),
        "dispatched_true_resolution_rate": _rate(true[dispatched], dispatched.sum()),
    }


def build_result(model: GovernanceModel, final: bool = False) -> RunResult:
    """Assemble the run's tables and KPIs. The KPIs are computed from the case store's columns; the cases
    table is not built here. ``final``: the run is over and the model will not step again, so the result
    reads its cases table from the store when asked (:class:`StoreCases`, whole or in pieces); otherwise
    the table is copied now (the store goes on changing)."""
    import mesa

    sc = model.settings
    src = StoreCases(model)
    rows = src.rows(0, len(src))
    end_h = model.end_h
    cols = src.arrays()
    k = kpis(cols, end_h, sc.kpi.response_target_h)
    open_all = model.cases.open_ids()
    urban = model.cases.urban[rows]
    online = cols["online"]
    k["backlog_end"] = float(len(open_all))
    k["mean_trust"] = model.population.mean_trust(float(model.hour))
    problems = model.problems.sum()
    k["participation_rate"] = _rate(model.reported.sum(), problems)
    k["digital_gap"] = (_rate(online[urban], urban.sum()) - _rate(online[~urban], (~urban).sum())
                        if urban.any() and (~urban).any() else float("nan"))
    t = model.departments
    k["relay_wait_h"] = _rate(t.wait_h[t.relay], t.starts[t.relay].sum())
    k.update(model.ledger.kpis())
    summary = {name: float(k[name]) for name in KPI_NAMES}

    # splits for equity analysis
    cs = model.cases
    splits = {
        "requester_kind": (cs.enterprise[rows].astype(np.int8), ["citizen", "enterprise"]),
        "channel": (cs.channel[rows], list(CHANNEL_NAMES)),
        "area": (urban.astype(np.int8), ["rural", "urban"]),
        "handling_level": (src.levels(rows), list(src.level_labels)),
    }
    rows = []
    for by, (codes, labels) in splits.items():
        # the rows sorted by group, each group's in their order: a group's rows are then one slice
        order = np.argsort(codes, kind="stable")
        ends = np.cumsum(np.bincount(codes, minlength=len(labels))).tolist()
        for g in sorted(labels[c] for c in np.unique(codes).tolist()):
            i = labels.index(g)
            rows_of_g = order[ends[i - 1] if i else 0: ends[i]]  # the group's rows, in their order
            group = _Rows(cols, rows_of_g)  # each column gathered when the KPIs read it, not kept
            gk = kpis(group, end_h, sc.kpi.response_target_h)
            size = len(rows_of_g)
            gk["cases"] = float(size)
            gk["online_share"] = _rate(group["online"], size)
            for name, val in gk.items():
                rows.append((by, g, name, float(val)))
    # participation by area and kind (problems met vs reported)
    for ai, area in enumerate(("rural", "urban")):
        rows.append(("area", area, "participation_rate", _rate(model.reported[ai].sum(), model.problems[ai].sum())))
    for ki, kind in enumerate(("citizen", "enterprise")):
        rows.append(("requester_kind", kind, "participation_rate",
                     _rate(model.reported[:, ki].sum(), model.problems[:, ki].sum())))
    rows += _queue_rows(model)
    groups = pd.DataFrame(rows, columns=["group_by", "group", "kpi", "value"])

    ts = timeseries_frame(model, cols)
    meta = {
        "seed": int(model.seed), "scenario": sc.name, "fingerprint": sc.fingerprint(),
        "cases": len(src), "problems": int(problems), "systemic_fixes": int(model.platform.fixes_started),
        "versions": {"python": _platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__,
                     "mesa": mesa.__version__},
    }
    if final:
        return RunResult(source=src, timeseries=ts, summary=summary, groups=groups, meta=meta)
    return RunResult(cases=src.frame(copy=True), timeseries=ts, summary=summary, groups=groups, meta=meta)


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


def timeseries_frame(model: GovernanceModel, df: pd.DataFrame | dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per measured day: live counts from the model plus daily rates from the cases table (or the
    KPIs' columns of it, :meth:`StoreCases.arrays`).

    Daily rates are over the cases closed that day (``resolution_rate`` recorded, ``true_resolution_rate``
    true); ``day`` counts from the end of warm-up. Columns ``*_cum`` of the model's rows (cumulative since the
    warm-up, e.g. :meth:`sim.budgets.HoursLedger.day_row`'s ``cost_hours_cum`` and ``work_hours_cum``,
    staff-hours) become daily values without the suffix (``cost_hours``, ``work_hours``).
    """
    live = pd.DataFrame(model.daily)
    if live.empty:
        return live
    warm_day = int(model.warmup_h // 24)
    live = live[live["day"] >= warm_day].copy()
    for cum in [c for c in live.columns if c.endswith("_cum")]:  # cumulative since warm-up -> per day
        live[cum.removesuffix("_cum")] = live[cum].diff().fillna(live[cum])
        live = live.drop(columns=[cum])
    n_days = int(live["day"].max()) + 1 if len(live) else 0
    closed_day = np.floor(np.asarray(df["closed_h"]) / 24.0)
    fr_day = np.floor(np.asarray(df["first_response_h"]) / 24.0)
    acc_day = np.floor(np.asarray(df["accepted_h"]) / 24.0)

    def count(days: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        ok = ~np.isnan(days)
        if mask is not None:
            ok &= mask
        d = days[ok].astype(np.int64)
        d = d[(d >= 0) & (d < n_days)]
        return np.bincount(d, minlength=n_days)

    closed_n = count(closed_day)
    sat = np.asarray(df["satisfied"])
    created_day = np.floor(np.asarray(df["created_h"]) / 24.0)
    created_n = count(created_day)
    responded_by_created = count(created_day, ~np.isnan(np.asarray(df["first_response_h"])))
    extra = pd.DataFrame({
        "day": np.arange(n_days),
        "accepted": count(acc_day), "first_responses": count(fr_day), "closed": closed_n,
        "recorded_resolved": count(closed_day, np.asarray(df["recorded_resolved"])),
        "true_resolved": count(closed_day, np.asarray(df["true_resolved"])),
        "satisfied": count(closed_day, sat == 1), "judged": count(closed_day, ~np.isnan(sat)),
        "responded_of_created": responded_by_created, "created": created_n,
    })
    out = live.merge(extra, on="day", how="left")
    with np.errstate(invalid="ignore", divide="ignore"):
        out["response_rate"] = out["responded_of_created"] / out["created"]
        out["resolution_rate"] = out["recorded_resolved"] / out["closed"]
        out["true_resolution_rate"] = out["true_resolved"] / out["closed"]
        out["satisfaction_rate"] = out["satisfied"] / out["judged"]
        out["participation"] = out["arrivals"] / out["problems"]
    out = out.drop(columns=["responded_of_created", "created"])
    out["day"] = out["day"] - warm_day
    return out.reset_index(drop=True)
