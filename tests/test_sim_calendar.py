"""Unit tests of sim/calendar.py: WorkCalendar's office hours, next openings, due dates and hour look-ups.

The calendars start on 2024-01-01, a Monday, so hour 0 is Monday midnight and day d covers hours
[24d, 24d + 24): Mon 0, Tue 1, Wed 2, Thu 3, Fri 4, Sat 5, Sun 6, Mon 7, ... Offices are open [9, 17) on
working days: Monday 9.0–17.0, Tuesday 33.0–41.0, ..., Friday 105.0–113.0, the next Monday 177.0–185.0.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim.calendar import OFFICE_CLOSE_H, OFFICE_OPEN_H, WorkCalendar

START = "2024-01-01"  # a Monday
WED_HOLIDAY = ["2024-01-03"]  # Wednesday of the first week (day 2)


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    return WorkCalendar(START, [], 30)


@pytest.fixture(scope="module")
def hol() -> WorkCalendar:
    return WorkCalendar(START, WED_HOLIDAY, 30)


def test_office_hours_constants():
    assert (OFFICE_OPEN_H, OFFICE_CLOSE_H) == (9.0, 17.0)


def test_weekdays_and_padding(cal, hol):
    assert cal.start_date.weekday() == 0  # Monday
    assert cal.weekday[:8].tolist() == [0, 1, 2, 3, 4, 5, 6, 0]
    assert cal.n_days == 30 + 400
    assert cal.is_workday[:8].tolist() == [True, True, True, True, True, False, False, True]
    assert hol.is_workday[:8].tolist() == [True, True, False, True, True, False, False, True]
    assert hol.workdays[:6].tolist() == [0, 1, 3, 4, 7, 8]


@pytest.mark.parametrize(("t", "expected"), [
    (0.0, False),  # Monday midnight
    (8.999, False),
    (9.0, True),  # opening is inside
    (12.5, True),
    (16.999, True),
    (17.0, False),  # closing is outside
    (23.5, False),
    (24 + 10.0, True),  # Tuesday 10:00
    (4 * 24 + 16.5, True),  # Friday 16:30
    (5 * 24 + 10.0, False),  # Saturday 10:00
    (6 * 24 + 10.0, False),  # Sunday 10:00
    (7 * 24 + 9.0, True),  # next Monday 09:00
])
def test_is_open_scalar(cal, t, expected):
    assert bool(cal.is_open(t)) is expected


def test_is_open_vectorised_and_holiday(cal, hol):
    t = np.array([10.0, 24 + 10.0, 2 * 24 + 10.0, 3 * 24 + 10.0])  # Mon..Thu 10:00
    assert cal.is_open(t).tolist() == [True, True, True, True]
    assert hol.is_open(t).tolist() == [True, True, False, True]  # Wednesday is a holiday


@pytest.mark.parametrize(("t", "expected"), [
    (0.0, 9.0),  # before opening: today 09:00
    (3.25, 9.0),
    (9.0, 9.0),  # at opening: itself
    (10.25, 10.25),  # inside: itself
    (16.75, 16.75),
    (17.0, 33.0),  # at closing: tomorrow 09:00
    (18.0, 33.0),  # after closing
    (23.99, 33.0),
    (24.0, 33.0),  # Tuesday midnight
    (4 * 24 + 17.5, 7 * 24 + 9.0),  # Friday evening -> Monday 09:00
    (5 * 24 + 12.0, 7 * 24 + 9.0),  # Saturday noon -> Monday 09:00
    (6 * 24 + 23.5, 7 * 24 + 9.0),  # Sunday night -> Monday 09:00
    (7 * 24 + 8.0, 7 * 24 + 9.0),  # Monday morning -> same day
])
def test_next_open(cal, t, expected):
    assert float(cal.next_open(t)) == pytest.approx(expected)
    assert cal.next_open_scalar(t) == pytest.approx(expected)
    assert float(cal.next_open_fast(np.array([t]))[0]) == pytest.approx(expected)


@pytest.mark.parametrize(("t", "expected"), [
    (24 + 18.0, 3 * 24 + 9.0),  # Tuesday evening -> Thursday 09:00 (Wednesday is a holiday)
    (2 * 24 + 10.0, 3 * 24 + 9.0),  # on the holiday itself, at what would be office time
    (2 * 24 + 3.0, 3 * 24 + 9.0),  # holiday early morning
    (24 + 16.0, 24 + 16.0),  # Tuesday afternoon: open
])
def test_next_open_skips_holiday(hol, t, expected):
    assert float(hol.next_open(t)) == pytest.approx(expected)
    assert hol.next_open_scalar(t) == pytest.approx(expected)


def test_next_open_skips_long_holiday_and_weekend():
    # Thursday and Friday holidays: Wednesday evening -> the next Monday 09:00
    cal = WorkCalendar(START, ["2024-01-04", "2024-01-05"], 30)
    assert float(cal.next_open(2 * 24 + 18.0)) == 7 * 24 + 9.0


def test_next_open_vectorised_matches_scalar_calls(cal):
    t = np.array([0.0, 10.25, 18.0, 4 * 24 + 17.5, 9.0])
    np.testing.assert_allclose(cal.next_open(t), [9.0, 10.25, 33.0, 177.0, 9.0])


def test_next_open_fast_and_scalar_equal_next_open_on_random_times(hol):
    rng = np.random.default_rng(0)
    horizon = hol.n_days * 24
    t = np.concatenate([
        # anywhere in the padded horizon but its last day (past the horizon's last opening next_open has
        # no later opening to give and returns that last one, earlier than t)
        rng.uniform(0, horizon - 24, 20_000),
        rng.integers(0, 24 * 60, 2_000).astype(float),  # whole hours (the table's edges)
        rng.integers(0, 24 * 60, 2_000) + 1 - 1e-9,  # just before a whole hour
    ])
    expected = hol.next_open(t)
    np.testing.assert_array_equal(hol.next_open_fast(t), expected)
    scalar = np.array([hol.next_open_scalar(float(x)) for x in t])
    np.testing.assert_array_equal(scalar, expected)
    # and the answer is an open time, not earlier than t, with no open time strictly in between
    assert (expected >= t).all()
    assert hol.is_open(expected).all()
    closed = expected > t
    assert not hol.is_open((t[closed] + expected[closed]) / 2).any()


def test_next_open_scalar_returns_python_float(cal):
    assert type(cal.next_open_scalar(18.0)) is float
    assert type(cal.next_open_scalar(10.5)) is float


@pytest.mark.parametrize(("t", "n", "expected"), [
    (10.0, 1, 24 + 17.0),  # Monday, 1 working day -> Tuesday 17:00
    (20.0, 1, 24 + 17.0),  # the time of day does not matter, only the day
    (10.0, 0.5, 24 + 17.0),  # fractional n rounded up
    (10.0, 1.2, 3 * 24 + 17.0),  # -> 2 working days: Tuesday, (Wednesday holiday), Thursday
    (10.0, 2.0, 3 * 24 + 17.0),  # a whole float is not rounded up further
    (24 + 10.0, 1, 3 * 24 + 17.0),  # Tuesday + 1 skips the Wednesday holiday
    (2 * 24 + 10.0, 1, 3 * 24 + 17.0),  # from the holiday itself: counted from the Tuesday before
    (4 * 24 + 10.0, 1, 7 * 24 + 17.0),  # Friday + 1 -> Monday
    (5 * 24 + 12.0, 1, 7 * 24 + 17.0),  # Saturday + 1 -> Monday
    (10.0, 5, 8 * 24 + 17.0),  # Mon + 5: Tue, Thu, Fri, Mon, Tue
    (10.0, 10, 15 * 24 + 17.0),  # Mon + 10: ..., Tue(8), Wed(9), Thu(10), Fri(11), Mon(14), Tue(15)
])
def test_add_working_days(hol, t, n, expected):
    assert float(hol.add_working_days(t, n)) == expected


def test_add_working_days_vectorised(hol, cal):
    t = np.array([10.0, 10.0, 24 + 10.0, 5 * 24 + 12.0])
    n = np.array([1, 3, 1, 1])
    np.testing.assert_array_equal(hol.add_working_days(t, n), [41.0, 4 * 24 + 17.0, 89.0, 185.0])
    np.testing.assert_array_equal(cal.add_working_days(t, n), [41.0, 3 * 24 + 17.0, 65.0, 185.0])


def test_add_working_days_from_a_weekend_start():
    sat = WorkCalendar("2024-01-06", [], 30)  # 2024-01-06 is a Saturday: day 2 is Monday
    assert sat.weekday[0] == 5
    assert float(sat.add_working_days(10.0, 1)) == 2 * 24 + 17.0
    assert float(sat.add_working_days(10.0, 2)) == 3 * 24 + 17.0


def test_office_hour(cal, hol):
    assert [cal.office_hour(h) for h in (8, 9, 16, 17, 24 + 9, 5 * 24 + 10)] == [
        False, True, True, False, True, False]
    assert hol.office_hour(2 * 24 + 10) is False
    assert cal.office_hour(cal.n_days * 24 + 10) is False  # beyond the padded horizon
    hours = np.arange(24 * 21)
    assert [hol.office_hour(int(h)) for h in hours] == hol.is_open(hours + 0.5).tolist()


@pytest.mark.parametrize(("h0", "h1", "expected_cal", "expected_hol"), [
    (0, 24 * 7, 40.0, 32.0),  # a week: 5 days x 8 h (32 with the Wednesday holiday)
    (0, 24, 8.0, 8.0),
    (10, 12, 2.0, 2.0),
    (16, 34, 2.0, 2.0),  # Monday 16-17 and Tuesday 9-10
    (17, 33, 0.0, 0.0),  # overnight
    (5 * 24, 7 * 24, 0.0, 0.0),  # the weekend
    (12, 12, 0.0, 0.0),  # empty
    (0, 24 * 14, 80.0, 72.0),
])
def test_open_hours_between(cal, hol, h0, h1, expected_cal, expected_hol):
    assert cal.open_hours_between(h0, h1) == expected_cal
    assert hol.open_hours_between(h0, h1) == expected_hol


def test_hour_of_week(cal):
    assert cal.hour_of_week(0) == 0
    assert cal.hour_of_week(13) == 13
    assert cal.hour_of_week(24 + 9) == 33  # Tuesday 09:00
    assert cal.hour_of_week(5 * 24 + 3) == 123  # Saturday 03:00
    assert cal.hour_of_week(7 * 24 + 5) == 5  # the next Monday 05:00
    assert cal.hour_of_week(13 * 24 + 23) == 167  # the second Sunday's last hour
    wed = WorkCalendar("2024-01-03", [], 30)  # starts on a Wednesday
    assert wed.hour_of_week(0) == 48
    assert wed.hour_of_week(5 * 24 + 1) == 1  # five days later: Monday 01:00
    assert type(wed.hour_of_week(5)) is int


def test_holidays_outside_the_horizon_are_harmless():
    cal = WorkCalendar(START, ["2023-12-25", "2030-01-01"], 30)
    assert cal.is_workday[:5].all()
    assert cal.open_hours_between(0, 24 * 7) == 40.0
