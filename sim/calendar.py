"""Working calendar: weekdays, office hours and holidays, vectorised over hour values.

Hour 0 is midnight at the start of ``world.start_date``. Offices are open 09:00–17:00 on working days
(a simplification of the common 08:30–12:00 / 14:00–17:30 day); holidays are listed dates.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

OFFICE_OPEN_H = 9.0
OFFICE_CLOSE_H = 17.0


class WorkCalendar:
    """Which hours are working hours, over ``n_days`` days (padded generously beyond the run)."""

    def __init__(self, start_date: str, holidays: list[str], n_days: int) -> None:
        start = dt.date.fromisoformat(start_date)
        self.start_date = start
        pad = int(n_days) + 400  # deadlines and call-backs can fall well after the last simulated day
        self.n_days = pad
        days = np.arange(pad)
        self.weekday = (start.weekday() + days) % 7  # 0 = Monday
        self._weekday_list: list[int] = self.weekday.tolist()
        hol = {(dt.date.fromisoformat(h) - start).days for h in holidays}
        is_hol = np.isin(days, np.fromiter(hol, dtype=np.int64, count=len(hol)))
        self.is_workday = (self.weekday < 5) & ~is_hol
        # index of the first working day strictly after d (pad-1 if none)
        nxt = np.full(pad, pad - 1, dtype=np.int64)
        upcoming = pad - 1
        for d in range(pad - 1, -1, -1):
            nxt[d] = upcoming
            if self.is_workday[d]:
                upcoming = d
        self.next_workday = nxt
        self.workday_rank = np.cumsum(self.is_workday) - 1  # rank of day d among working days (if working)
        self.workdays = np.flatnonzero(self.is_workday)
        # per hour of the padded horizon: is it an office hour, and when do offices next open (as Python
        # lists, for the scalar look-ups in the queue loops; office hours are whole hours)
        hours = np.arange(pad * 24) + 0.5
        open_h = self.is_open(hours)
        next_h = self.next_open(hours - 0.5)
        self._open_hour: list[bool] = open_h.tolist()
        self._next_open_hour: list[float] = next_h.tolist()
        self._open_hour_arr = open_h
        self._next_open_hour_arr = next_h
        self._horizon = pad * 24

    # ----------------------------------------------------------------------------------------------
    def _day(self, t: np.ndarray) -> np.ndarray:
        """The day index of hour ``t``, clipped to the padded horizon (as ``np.clip``, by two cheaper ufuncs)."""
        return np.minimum(np.maximum(np.floor(t / 24.0).astype(np.int64), 0), self.n_days - 1)

    def is_open(self, t: np.ndarray | float) -> np.ndarray:
        """True where hour ``t`` is inside office hours of a working day."""
        t = np.asarray(t, dtype=float)
        d = self._day(t)
        hod = t - d * 24.0
        return self.is_workday[d] & (hod >= OFFICE_OPEN_H) & (hod < OFFICE_CLOSE_H)

    def next_open(self, t: np.ndarray | float) -> np.ndarray:
        """The earliest time >= t at which offices are open (t itself when open)."""
        t = np.asarray(t, dtype=float)
        d = self._day(t)
        hod = t - d * 24.0
        work = self.is_workday[d]
        before = work & (hod < OFFICE_OPEN_H)
        inside = work & (hod >= OFFICE_OPEN_H) & (hod < OFFICE_CLOSE_H)
        out = self.next_workday[d] * 24.0 + OFFICE_OPEN_H
        out = np.where(before, d * 24.0 + OFFICE_OPEN_H, out)
        return np.where(inside, t, out)

    def next_open_fast(self, t: np.ndarray) -> np.ndarray:
        """:meth:`next_open` by table look-up (office hours are whole hours); ``t`` within the horizon, >= 0."""
        h = t.astype(np.int64)
        if len(h) and h.max() >= self._horizon:
            return self.next_open(t)
        return np.where(self._open_hour_arr[h], t, self._next_open_hour_arr[h])

    def next_open_scalar(self, t: float) -> float:
        """Scalar fast path of :meth:`next_open` for the queue loops (a table look-up by whole hour)."""
        h = int(t)
        if h >= self._horizon:
            return t
        if self._open_hour[h]:
            return t
        return self._next_open_hour[h]

    def add_working_days(self, t: np.ndarray, n: np.ndarray) -> np.ndarray:
        """Due time: the close of office on the n-th working day after the day of ``t`` (n rounded up)."""
        t = np.asarray(t, dtype=float)
        d = self._day(t)
        n = np.ceil(np.asarray(n, dtype=float)).astype(np.int64)
        # rank of the last working day on or before d
        base = self.workday_rank[d]
        target = np.clip(base + n, 0, len(self.workdays) - 1)
        return self.workdays[target] * 24.0 + OFFICE_CLOSE_H

    def due_table(self, n: np.ndarray) -> np.ndarray:
        """:meth:`add_working_days` for every day of the horizon and each of the working-day counts ``n`` (one
        per column): ``table[day, j]`` is the due time (h) of something dated on ``day`` given ``n[j]`` working
        days, so ``table[day_index(t), j]`` equals ``add_working_days(t, n[j])``."""
        n = np.ceil(np.asarray(n, dtype=float)).astype(np.int64)
        target = np.clip(self.workday_rank[:, None] + n[None, :], 0, len(self.workdays) - 1)
        return self.workdays[target] * 24.0 + OFFICE_CLOSE_H

    def day_index(self, t: np.ndarray) -> np.ndarray:
        """The day of each hour ``t`` (an array of floats), clipped to the padded horizon: the row of
        :meth:`due_table`."""
        return self._day(t)

    def office_hour(self, hour: int) -> bool:
        """Whether the whole hour [hour, hour+1) is an office hour."""
        return self._open_hour[hour] if hour < self._horizon else False

    def open_hours_between(self, h0: int, h1: int) -> float:
        """Office hours inside whole hours [h0, h1)."""
        hours = np.arange(h0, h1, dtype=float) + 0.5
        return float(self.is_open(hours).sum())

    def hour_of_week(self, hour: int) -> int:
        d = hour // 24
        return self._weekday_list[min(d, self.n_days - 1)] * 24 + hour % 24
