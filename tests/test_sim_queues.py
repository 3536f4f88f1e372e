"""Unit tests of sim/queues.py: QueueBank, its disciplines, office hours and the Erlang C limit, held equal
to the readable reference of the queue rules (tests/queue_reference.py, the former pure-Python ServerPool).

Behavioural tests drive one queue by hand (no model), once through the reference and once through a
one-queue QueueBank (:class:`BankPool`, the same test-facing interface). Differential tests then run random
workloads through one QueueBank of several queues and one reference pool per queue and require exactly the
same start and completion times, start order and waiting counts after every step.

Times are hours since the start of the run; the calendar starts on 2024-01-01, a Monday, so hour 0 is Monday
midnight, offices are open [9, 17) on weekdays (Mon 9.0–17.0, Tue 33.0–41.0, ..., Fri 105.0–113.0) and
hour 168 is the next Monday midnight.
"""

from __future__ import annotations

import heapq
import math
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from sim.calendar import WorkCalendar
from sim.jit import kernels
from sim.queues import DEADLINE, EASY_FIRST, FIFO, MODES, SUPERVISED, QueueBank, queue_key
from sim.scenario import QueueDiscipline
from tests.conftest import ROOT
from tests.queue_reference import (
    DISCIPLINES,
    ServerPool,
    deadline_keys,
    easy_first_keys,
    fifo_keys,
    supervised_keys,
)

START = "2024-01-01"  # a Monday
CAL = WorkCalendar(START, [], 60)
NAN = float("nan")
#: WENZHENG_COMPILE=0 runs the tests on the plain-Python kernels (sim.kernels), otherwise on the
#: numba-compiled copy: the differential workloads are cut to fit in plain Python
PURE_PYTHON = os.environ.get("WENZHENG_COMPILE") == "0"
KERNELS = kernels(not PURE_PYTHON)
DIFF_HOURS = 24 * 14 if PURE_PYTHON else 24 * 21


class ReferencePool(ServerPool):
    """The reference pool with the test-facing interface of :class:`BankPool` where the two differ."""

    def raise_priority(self, case: int, arrival: float, due: float, boost: int, work: float = 0.0) -> bool:
        """Raise a waiting case's priority to what ``boost`` gives it; whether it moved."""
        rows = len(self.waiting)
        super().raise_priority(case, self.key(arrival, due, boost, work))
        return len(self.waiting) > rows

    @property
    def rows(self) -> int:
        """Heap entries, stale ones included."""
        return len(self.waiting)


class BankPool:
    """A one-queue :class:`QueueBank` behind the reference pool's test-facing interface.

    ``arrive`` buffers (as the simulator does); ``advance`` hands the buffered arrivals to ``bank.run``. Only
    waiting cases can be removed (the simulator drops cases still among the step's arrivals itself).
    """

    def __init__(self, servers: int, always_open: bool, calendar: WorkCalendar,
                 discipline: QueueDiscipline = QueueDiscipline.FIFO, cases: int = 16) -> None:
        self.bank = QueueBank(np.array([servers]), always_open, calendar, discipline, cases=cases,
                              kernels=KERNELS)
        self.arrivals: list[tuple[np.ndarray, np.ndarray]] = []
        self.q0 = np.zeros(1, dtype=np.int64)

    def arrive(self, cases: np.ndarray, times: np.ndarray) -> None:
        self.arrivals.append((np.asarray(cases, dtype=np.int64), np.asarray(times, dtype=float)))

    def advance(self, t_end: float, service_time: np.ndarray, due: np.ndarray, boost: np.ndarray,
                starts: list) -> None:
        if self.arrivals:
            cases = np.concatenate([a[0] for a in self.arrivals])
            times = np.concatenate([a[1] for a in self.arrivals])
            self.arrivals = []
        else:
            cases, times = np.zeros(0, dtype=np.int64), np.zeros(0)
        c, s, d = self.bank.run(t_end, np.zeros(len(cases), dtype=np.int64), cases, times, service_time[cases],
                                due[cases], boost[cases])
        if len(c):
            starts.append((c, s, d))

    def __len__(self) -> int:
        return int(self.bank.nlive[0])

    def remove(self, case: int) -> bool:
        return bool(self.bank.remove(self.q0, np.array([case]))[0])

    def raise_priority(self, case: int, arrival: float, due: float, boost: int, work: float = 0.0) -> bool:
        return self.bank.raise_priority(self.q0, np.array([case]), np.array([arrival]), np.array([due]),
                                        np.array([boost]), np.array([work])) == 1

    def set_easy_first(self, on: bool, due: np.ndarray, boost: np.ndarray) -> None:
        self.bank.set_easy_first(0, on, due, boost)

    @property
    def free(self) -> list[float]:
        """The servers' next free times (a heap)."""
        b = self.bank
        return b.free[b.foff[0]:b.foff[0] + b.servers[0]].tolist()

    @property
    def rows(self) -> int:
        """Heap rows, stale ones included."""
        return int(self.bank.hlen[0])

    @property
    def pushes(self) -> int:
        """Rows ever pushed onto the waiting line (0: every step took the fast path)."""
        return int(self.bank.seq[0])


#: every behavioural test runs against both implementations
POOLS = pytest.mark.parametrize("make", [pytest.param(ReferencePool, id="reference"),
                                         pytest.param(BankPool, id="bank")])


class HeapOnlyPool(ServerPool):
    """A pool that never takes the vectorised fast path (the reference for it)."""

    def run_sorted(self, t_end, cases, times, svc, arr, starts):
        self._advance_heap(t_end, arr, starts)


class CountingPool(ServerPool):
    """A pool that counts how often the general event loop ran (0 calls: the fast path was taken)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.heap_calls = 0

    def _advance_heap(self, t_end, arr, starts):
        self.heap_calls += 1
        super()._advance_heap(t_end, arr, starts)


def collect(starts: list) -> dict[int, tuple[float, float]]:
    """{case: (start, done)} from the ``starts`` list that ``advance`` appends to."""
    out: dict[int, tuple[float, float]] = {}
    for cases, s, d in starts:
        assert len(cases) == len(s) == len(d)
        for c, a, b in zip(cases.tolist(), s.tolist(), d.tolist(), strict=True):
            assert c not in out, f"case {c} started twice"
            out[c] = (a, b)
    return out


def simulate(pool, times, svc, due=None, boost=None, hours: int | None = None,
             after_step=None) -> tuple[np.ndarray, np.ndarray]:
    """Feed case i at times[i] in hourly steps (arrive, then advance to the end of the hour).

    Returns (start, done) per case id, NaN for cases never started.
    """
    times = np.asarray(times, dtype=float)
    svc = np.asarray(svc, dtype=float)
    n = len(times)
    due = np.full(n, NAN) if due is None else np.asarray(due, dtype=float)
    boost = np.zeros(n, dtype=np.int8) if boost is None else np.asarray(boost, dtype=np.int8)
    hour = np.floor(times).astype(np.int64)
    if hours is None:
        hours = int(hour.max()) + 1 + 24 * 14
    order = np.argsort(hour, kind="stable")
    cuts = np.searchsorted(hour[order], np.arange(hours + 1))
    start, done = np.full(n, NAN), np.full(n, NAN)
    for h in range(hours):
        ids = order[cuts[h]:cuts[h + 1]]
        if len(ids):
            pool.arrive(ids, times[ids])
        starts: list = []
        pool.advance(h + 1.0, svc, due, boost, starts)
        for cases, s, d in starts:
            assert np.isnan(start[cases]).all(), "a case started twice"
            start[cases], done[cases] = s, d
        if after_step is not None:
            after_step(h)
    return start, done


def reference_fifo(times, svc, servers: int, calendar: WorkCalendar | None = None):
    """Textbook FCFS multi-server queue: each case, in (arrival, id) order, takes the earliest free server.

    With a calendar, a start is moved to the next open time (services run on once started).
    """
    times = np.asarray(times, dtype=float)
    free = [0.0] * servers
    start = np.full(len(times), NAN)
    for i in np.lexsort((np.arange(len(times)), times)).tolist():
        s = heapq.heappop(free)
        t = max(s, float(times[i]))
        if calendar is not None:
            t = float(calendar.next_open(t))
        start[i] = t
        heapq.heappush(free, t + float(svc[i]))
    return start, start + np.asarray(svc, dtype=float)


# ------------------------------------------------------------------------------------------------
# key functions: the reference's, and QueueBank's queue_key


def test_key_functions_hand_values():
    arrival, due, boost = [1.0, 2.0, 3.0], [50.0, 30.0, 40.0], [0, 2, 1]
    assert fifo_keys(arrival, due, boost) == [(0, 1.0), (0, 2.0), (0, 3.0)]
    assert supervised_keys(arrival, due, boost) == [(0, 1.0), (-2, 2.0), (-1, 3.0)]
    assert deadline_keys(arrival, due, boost) == [(0, 50.0, 1.0), (-2, 30.0, 2.0), (-1, 40.0, 3.0)]
    assert easy_first_keys(arrival, boost, [0.5, 0.25, 0.75]) == [(0, 0.5, 1.0), (-2, 0.25, 2.0), (-1, 0.75, 3.0)]
    # sorted keys give the service order of each discipline
    idx = [0, 1, 2]
    assert sorted(idx, key=lambda i: fifo_keys(arrival, due, boost)[i]) == [0, 1, 2]
    assert sorted(idx, key=lambda i: supervised_keys(arrival, due, boost)[i]) == [1, 2, 0]
    same_boost = [0, 0, 0]
    assert sorted(idx, key=lambda i: deadline_keys(arrival, due, same_boost)[i]) == [1, 2, 0]


def test_key_functions_reject_mismatched_lengths():
    with pytest.raises(ValueError):
        supervised_keys([1.0, 2.0], [NAN, NAN], [0])
    with pytest.raises(ValueError):
        deadline_keys([1.0], [NAN, NAN], [0])


def test_disciplines_table_covers_every_discipline():
    assert set(DISCIPLINES) == set(QueueDiscipline)
    assert DISCIPLINES[QueueDiscipline.FIFO] is fifo_keys
    assert DISCIPLINES[QueueDiscipline.SUPERVISED] is supervised_keys
    assert DISCIPLINES[QueueDiscipline.DEADLINE] is deadline_keys


@pytest.mark.parametrize(("discipline", "expected"), [
    (QueueDiscipline.FIFO, (0, 1.5)),
    (QueueDiscipline.SUPERVISED, (-2, 1.5)),
    (QueueDiscipline.DEADLINE, (-2, 9.0, 1.5)),
])
def test_pool_key_and_keys_follow_discipline(discipline, expected):
    pool = ServerPool(1, True, CAL, discipline)
    assert pool.key(1.5, 9.0, 2) == expected
    keys = pool.keys(np.array([1.5, 0.5]), np.array([9.0, 3.0]), np.array([2, 0]))
    assert keys[0] == expected
    assert all(isinstance(k, tuple) for k in keys)
    assert all(type(x) in (int, float) for k in keys for x in k)  # plain Python numbers, not numpy scalars


def test_queue_key_hand_values():
    # arrival 1.5, due 9.0, boost 2, work 0.25
    assert queue_key(FIFO, 1.5, 9.0, 2, 0.25) == (0.0, 1.5, 0.0)
    assert queue_key(SUPERVISED, 1.5, 9.0, 2, 0.25) == (-2.0, 1.5, 0.0)
    assert queue_key(DEADLINE, 1.5, 9.0, 2, 0.25) == (-2.0, 9.0, 1.5)
    assert queue_key(EASY_FIRST, 1.5, 9.0, 2, 0.25) == (-2.0, 0.25, 1.5)
    # not pressed: the boost term is 0 (compared as equal to -0.0)
    assert queue_key(SUPERVISED, 3.0, 5.0, 0, 1.0) == (0.0, 3.0, 0.0)
    assert queue_key(DEADLINE, 3.0, 5.0, 1, 1.0) == (-1.0, 5.0, 3.0)
    assert queue_key(EASY_FIRST, 3.0, 5.0, 1, 1.0) == (-1.0, 1.0, 3.0)


@pytest.mark.parametrize("mode", [FIFO, SUPERVISED, DEADLINE, EASY_FIRST])
def test_queue_key_orders_as_the_reference(mode):
    """On random cases (with ties), queue_key sorts exactly as the reference's key functions."""
    rng = np.random.default_rng(5 + mode)
    n = 200
    arrival = rng.integers(0, 10, n) / 4
    due = rng.integers(0, 5, n) * 8.0
    boost = rng.integers(0, 3, n)
    work = rng.integers(1, 5, n) / 8
    if mode == EASY_FIRST:
        ref = easy_first_keys(arrival.tolist(), boost.tolist(), work.tolist())
    else:
        discipline = next(d for d, m in MODES.items() if m == mode)
        ref = DISCIPLINES[discipline](arrival.tolist(), due.tolist(), boost.tolist())
    ours = [queue_key(mode, a, d, b, w) for a, d, b, w in zip(arrival, due, boost, work, strict=True)]
    assert sorted(range(n), key=lambda i: (ref[i], i)) == sorted(range(n), key=lambda i: (ours[i], i))


def test_modes_cover_every_discipline():
    assert set(MODES) == set(QueueDiscipline)
    assert sorted(MODES.values()) == [FIFO, SUPERVISED, DEADLINE]
    assert EASY_FIRST not in MODES.values()


# ------------------------------------------------------------------------------------------------
# (a) hand-computed FIFO cases


@POOLS
def test_one_server_fifo_step_by_step(make):
    pool = make(1, True, CAL)
    svc = np.array([1.0, 1.0, 1.0])
    due, boost = np.full(3, NAN), np.zeros(3, dtype=np.int8)
    pool.arrive(np.array([0, 1, 2]), np.array([0.0, 0.5, 0.6]))
    expected = {1.0: {0: (0.0, 1.0)}, 2.0: {1: (1.0, 2.0)}, 3.0: {2: (2.0, 3.0)}, 4.0: {}}
    waiting_after = {1.0: 2, 2.0: 1, 3.0: 0, 4.0: 0}
    for t_end in (1.0, 2.0, 3.0, 4.0):
        starts: list = []
        pool.advance(t_end, svc, due, boost, starts)
        assert collect(starts) == expected[t_end], t_end
        assert len(pool) == waiting_after[t_end], t_end


@POOLS
def test_two_servers_fifo_hand_computed(make):
    # case: arrival, service -> start, done
    # 0: 0.0, 1.0 -> 0.0, 1.0   (server A)
    # 1: 0.2, 2.0 -> 0.2, 2.2   (server B)
    # 2: 0.5, 1.0 -> 1.0, 2.0   (A frees at 1.0)
    # 3: 0.7, 1.0 -> 2.0, 3.0   (A frees at 2.0, before B at 2.2)
    # 4: 3.5, 0.5 -> 3.5, 4.0   (both free: starts on arrival)
    times = [0.0, 0.2, 0.5, 0.7, 3.5]
    svc = [1.0, 2.0, 1.0, 1.0, 0.5]
    start, done = simulate(make(2, True, CAL), times, svc, hours=6)
    np.testing.assert_allclose(start, [0.0, 0.2, 1.0, 2.0, 3.5])
    np.testing.assert_allclose(done, [1.0, 2.2, 2.0, 3.0, 4.0])
    # one big step gives the same answer as hourly steps (FIFO does not depend on the step)
    pool = make(2, True, CAL)
    pool.arrive(np.arange(5), np.array(times))
    starts: list = []
    pool.advance(10.0, np.array(svc), np.full(5, NAN), np.zeros(5, np.int8), starts)
    got = collect(starts)
    assert [got[i][0] for i in range(5)] == pytest.approx([0.0, 0.2, 1.0, 2.0, 3.5])


@POOLS
def test_arrival_finding_free_server_starts_on_arrival(make):
    # the server has been idle since hour 0; arrivals at odd times start exactly when they arrive
    times = [2.25, 5.75, 5.9]
    start, done = simulate(make(3, True, CAL), times, [0.1, 10.0, 10.0], hours=8)
    assert start.tolist() == times
    assert done.tolist() == pytest.approx([2.35, 15.75, 15.9])


@POOLS
def test_cases_still_waiting_at_t_end_stay_in_the_pool(make):
    pool = make(1, True, CAL)
    svc = np.array([5.0, 1.0, 1.0, 1.0])
    due, boost = np.full(4, NAN), np.zeros(4, dtype=np.int8)
    pool.arrive(np.arange(4), np.array([0.0, 0.1, 0.2, 0.3]))
    starts: list = []
    pool.advance(1.0, svc, due, boost, starts)
    assert collect(starts) == {0: (0.0, 5.0)}
    assert len(pool) == 3
    starts = []
    pool.advance(5.0, svc, due, boost, starts)  # the server frees exactly at t_end: nothing starts
    assert starts == [] and len(pool) == 3
    starts = []
    pool.advance(7.5, svc, due, boost, starts)
    assert collect(starts) == {1: (5.0, 6.0), 2: (6.0, 7.0), 3: (7.0, 8.0)}
    assert len(pool) == 0


@POOLS
def test_no_servers_everyone_waits(make):
    pool = make(0, True, CAL)
    start, _ = simulate(pool, [0.5, 20.0], [1.0, 1.0], hours=30)
    assert np.isnan(start).all()
    assert len(pool) == 2


@POOLS
def test_advance_with_nothing_to_do_appends_nothing(make):
    pool = make(2, True, CAL)
    starts: list = []
    pool.advance(5.0, np.zeros(0), np.zeros(0), np.zeros(0, np.int8), starts)
    assert starts == [] and len(pool) == 0


# ------------------------------------------------------------------------------------------------
# (b) the vectorised fast path (the reference's, compared with its own event loop; then QueueBank's)


def test_fast_path_taken_and_equal_to_heap_loop():
    rng = np.random.default_rng(1)
    n, c = 40, 30
    times = np.sort(rng.uniform(0.0, 1.0, n))
    svc = rng.uniform(0.1, 0.5, n)  # at most ~20 in service at once < 30 servers: nobody waits
    fast = CountingPool(c, True, CAL)
    f_start, f_done = simulate(fast, times, svc, hours=3)
    assert fast.heap_calls == 0  # the only step with arrivals took the fast path (idle steps return early)
    h_start, h_done = simulate(HeapOnlyPool(c, True, CAL), times, svc, hours=3)
    r_start, r_done = reference_fifo(times, svc, c)
    np.testing.assert_array_equal(f_start, times)  # nobody waited
    np.testing.assert_array_equal(f_start, h_start)
    np.testing.assert_array_equal(f_done, h_done)
    np.testing.assert_allclose(f_start, r_start)
    np.testing.assert_allclose(f_done, r_done)
    # the servers' free times after the step are the same multiset either way
    assert sorted(fast.free) == sorted(np.concatenate([np.zeros(c), f_done]).tolist())[-c:]


def test_fast_path_free_times_match_heap_loop_over_many_steps():
    """Random hourly loads, some steps above capacity: both paths run; every step's state must agree."""
    rng = np.random.default_rng(7)
    c, hours = 20, 200
    counts = rng.choice([0, 5, 18, 25, 40], size=hours, p=[0.3, 0.2, 0.2, 0.2, 0.1])
    times = np.concatenate([h + np.sort(rng.uniform(0, 1, k)) for h, k in enumerate(counts)])
    svc = rng.exponential(0.6, len(times))
    fast, slow = CountingPool(c, True, CAL), HeapOnlyPool(c, True, CAL)
    states: list[tuple[list[float], int]] = []

    def remember(_h):
        states.append((sorted(fast.free), len(fast)))

    f_start, f_done = simulate(fast, times, svc, hours=hours + 24, after_step=remember)
    i = 0

    def compare(_h):
        nonlocal i
        assert sorted(slow.free) == pytest.approx(states[i][0], abs=1e-12, rel=0), f"hour {_h}"
        assert len(slow) == states[i][1]
        i += 1

    s_start, s_done = simulate(slow, times, svc, hours=hours + 24, after_step=compare)
    r_start, r_done = reference_fifo(times, svc, c)
    n_steps_with_arrivals = int((counts > 0).sum())
    assert 0 < fast.heap_calls  # some steps needed the event loop...
    assert fast.heap_calls < n_steps_with_arrivals - 20  # ...and many took the fast path
    np.testing.assert_allclose(f_start, s_start, rtol=0, atol=1e-12)
    np.testing.assert_allclose(f_done, s_done, rtol=0, atol=1e-12)
    np.testing.assert_allclose(f_start, r_start, rtol=0, atol=1e-9)
    np.testing.assert_allclose(f_done, r_done, rtol=0, atol=1e-9)
    assert (f_start > times).any()  # the test really had waiting cases


def test_fast_path_not_taken_when_a_case_would_wait():
    # 16 simultaneous arrivals on 15 servers: the 16th must wait for the first completion
    times = np.full(16, 0.5)
    svc = np.arange(1, 17, dtype=float) / 10  # case i takes (i+1)/10 h; case 0 is done first, at 0.6
    pool = CountingPool(15, True, CAL)
    start, done = simulate(pool, times, svc, hours=3)
    assert pool.heap_calls >= 1
    assert start[:15].tolist() == [0.5] * 15
    assert start[15] == pytest.approx(0.6)
    assert done[15] == pytest.approx(2.2)


def test_fast_path_with_office_hours_only_inside_office_hours():
    rng = np.random.default_rng(3)
    times = 10 + np.sort(rng.uniform(0, 1, 20))  # Monday 10:00-11:00: open
    svc = rng.uniform(0.2, 0.4, 20)
    pool = CountingPool(25, False, CAL)
    start, _ = simulate(pool, times, svc, hours=12)
    assert pool.heap_calls == 0
    np.testing.assert_array_equal(start, times)
    # the same load at night cannot take the fast path and starts at 09:00 Tuesday
    night = times + 10.0  # Monday 20:00-21:00
    pool = CountingPool(25, False, CAL)
    start, _ = simulate(pool, night, svc, hours=40)
    assert pool.heap_calls >= 1
    assert start.tolist() == [33.0] * 20


def test_bank_fast_path_taken_only_when_nobody_would_wait():
    """QueueBank's fast path (no row ever pushed) on the loads above, with the reference's results."""
    rng = np.random.default_rng(1)
    times = np.sort(rng.uniform(0.0, 1.0, 40))
    svc = rng.uniform(0.1, 0.5, 40)
    bank = BankPool(30, True, CAL)
    start, done = simulate(bank, times, svc, hours=3)
    assert bank.pushes == 0  # the fast path
    np.testing.assert_array_equal(start, times)
    assert sorted(bank.free) == sorted(np.concatenate([np.zeros(30), done]).tolist())[-30:]
    # fewer than 16 arrivals: the event loop, the same result
    bank = BankPool(30, True, CAL)
    s15, _ = simulate(bank, times[:15], svc[:15], hours=3)
    assert bank.pushes == 15
    np.testing.assert_array_equal(s15, times[:15])
    # 16 simultaneous arrivals on 15 servers: the event loop
    bank = BankPool(15, True, CAL)
    start, done = simulate(bank, np.full(16, 0.5), np.arange(1, 17) / 10, hours=3)
    assert bank.pushes == 16
    assert start[15] == pytest.approx(0.6) and done[15] == pytest.approx(2.2)
    # office hours: inside them the fast path, at night the event loop
    times = 10 + np.sort(rng.uniform(0, 1, 20))
    svc = rng.uniform(0.2, 0.4, 20)
    bank = BankPool(25, False, CAL)
    start, _ = simulate(bank, times, svc, hours=12)
    assert bank.pushes == 0
    np.testing.assert_array_equal(start, times)
    bank = BankPool(25, False, CAL)
    start, _ = simulate(bank, times + 10.0, svc, hours=40)
    assert bank.pushes == 20
    assert start.tolist() == [33.0] * 20


def test_bank_fast_path_over_many_steps_equals_reference():
    """The load of test_fast_path_free_times_match_heap_loop_over_many_steps through QueueBank: the same
    free times and waiting counts as the reference after every step, the same times exactly."""
    rng = np.random.default_rng(7)
    c, hours = 20, 200
    counts = rng.choice([0, 5, 18, 25, 40], size=hours, p=[0.3, 0.2, 0.2, 0.2, 0.1])
    times = np.concatenate([h + np.sort(rng.uniform(0, 1, k)) for h, k in enumerate(counts)])
    svc = rng.exponential(0.6, len(times))
    ref, bank = ReferencePool(c, True, CAL), BankPool(c, True, CAL)
    states: list[tuple[list[float], int, int]] = []
    r_start, r_done = simulate(ref, times, svc, hours=hours + 24,
                               after_step=lambda _h: states.append((sorted(ref.free), len(ref), ref.seq)))
    i = 0

    def compare(h):
        nonlocal i
        assert sorted(bank.free) == states[i][0], f"hour {h}"
        assert len(bank) == states[i][1], f"hour {h}"
        assert bank.pushes == states[i][2], f"hour {h}"  # the same steps took the fast path
        i += 1

    b_start, b_done = simulate(bank, times, svc, hours=hours + 24, after_step=compare)
    np.testing.assert_array_equal(b_start, r_start)
    np.testing.assert_array_equal(b_done, r_done)
    assert 0 < bank.pushes < len(times) - 200  # both paths ran


# ------------------------------------------------------------------------------------------------
# (c) disciplines, raise_priority, remove


def _busy_then_three(make, discipline, boost, due, t_arrive=(0.1, 0.2, 0.3)):
    """Case 0 holds the only server for [0, 1); cases 1..3 arrive meanwhile. Returns the start order."""
    times = [0.0, *t_arrive]
    svc = [1.0, 1.0, 1.0, 1.0]
    start, _ = simulate(make(1, True, CAL, discipline), times, svc, due=due, boost=boost, hours=8)
    return [int(i) for i in np.argsort(start, kind="stable")], start


@POOLS
def test_supervised_serves_higher_boost_first_even_if_later(make):
    order, start = _busy_then_three(make, QueueDiscipline.SUPERVISED, boost=[0, 0, 1, 2], due=[NAN] * 4)
    assert order == [0, 3, 2, 1]
    assert start.tolist() == [0.0, 3.0, 2.0, 1.0]


@POOLS
def test_supervised_ties_in_boost_by_arrival(make):
    order, _ = _busy_then_three(make, QueueDiscipline.SUPERVISED, boost=[0, 2, 0, 2], due=[NAN] * 4)
    assert order == [0, 1, 3, 2]


@POOLS
def test_deadline_orders_by_due_among_equal_boost(make):
    order, _ = _busy_then_three(make, QueueDiscipline.DEADLINE, boost=[0, 0, 0, 0], due=[NAN, 50.0, 30.0, 40.0])
    assert order == [0, 2, 3, 1]


@POOLS
def test_deadline_boost_before_due(make):
    order, _ = _busy_then_three(make, QueueDiscipline.DEADLINE, boost=[0, 0, 0, 1], due=[NAN, 50.0, 30.0, 99.0])
    assert order == [0, 3, 2, 1]


@POOLS
def test_fifo_ignores_boost_and_due(make):
    order, start = _busy_then_three(make, QueueDiscipline.FIFO, boost=[0, 0, 1, 2], due=[NAN, 50.0, 30.0, 10.0])
    assert order == [0, 1, 2, 3]
    assert start.tolist() == [0.0, 1.0, 2.0, 3.0]


@POOLS
@pytest.mark.parametrize("discipline", list(QueueDiscipline))
def test_equal_keys_served_in_join_order(make, discipline):
    # cases 1..4 arrive at the same time with the same due time and boost: served by case id (join order)
    times = [0.0, 0.5, 0.5, 0.5, 0.5]
    ids = np.array([0, 3, 1, 4, 2])  # arrival order of the call does not matter: (time, case) does
    pool = make(1, True, CAL, discipline)
    pool.arrive(ids, np.array(times))
    starts: list = []
    pool.advance(10.0, np.ones(5), np.full(5, 20.0), np.ones(5, np.int8), starts)
    got = collect(starts)
    assert sorted(got, key=lambda c: got[c][0]) == [0, 1, 2, 3, 4]
    assert np.concatenate([s[0] for s in starts]).tolist() == [0, 1, 2, 3, 4]


@POOLS
def test_priority_does_not_reach_back_in_time(make):
    # the server frees at 1.0 and takes case 1 (the only one there); case 2, boost 2, arrives at 1.5
    times, svc = [0.0, 0.2, 1.5], [1.0, 1.0, 1.0]
    start, _ = simulate(make(1, True, CAL, QueueDiscipline.SUPERVISED), times, svc, boost=[0, 0, 2], hours=6)
    assert start.tolist() == [0.0, 1.0, 2.0]


def _pool_with_waiting(make, discipline):
    """One server busy with case 0 for [0, 10); cases 1, 2, 3 wait (arrived 0.1, 0.2, 0.3)."""
    pool = make(1, True, CAL, discipline)
    svc = np.array([10.0, 1.0, 1.0, 1.0])
    due, boost = np.full(4, NAN), np.zeros(4, dtype=np.int8)
    pool.arrive(np.arange(4), np.array([0.0, 0.1, 0.2, 0.3]))
    starts: list = []
    pool.advance(1.0, svc, due, boost, starts)
    assert collect(starts) == {0: (0.0, 10.0)}
    assert len(pool) == 3
    return pool, svc, due, boost


def _finish(pool, svc, due, boost) -> list[int]:
    starts: list = []
    pool.advance(100.0, svc, due, boost, starts)
    got = collect(starts)
    return sorted(got, key=lambda c: got[c][0])


@POOLS
def test_raise_priority_moves_waiting_case_forward(make):
    pool, *arrays = _pool_with_waiting(make, QueueDiscipline.SUPERVISED)
    assert pool.raise_priority(3, 0.3, NAN, 2, 1.0) is True
    assert len(pool) == 3  # still three cases waiting (the stale heap entry does not count)
    assert pool.rows == 4  # ...but it is still in the heap
    assert _finish(pool, *arrays) == [3, 1, 2]
    assert len(pool) == 0


@POOLS
def test_raise_priority_keeps_original_arrival_and_service(make):
    pool, svc, due, boost = _pool_with_waiting(make, QueueDiscipline.SUPERVISED)
    pool.raise_priority(2, 0.2, NAN, 1, 1.0)
    starts: list = []
    pool.advance(100.0, svc, due, boost, starts)
    got = collect(starts)
    assert got == {2: (10.0, 11.0), 1: (11.0, 12.0), 3: (12.0, 13.0)}


@POOLS
def test_raise_priority_no_effect_when_key_not_better(make):
    pool, *arrays = _pool_with_waiting(make, QueueDiscipline.SUPERVISED)
    n_entries = pool.rows
    assert pool.raise_priority(1, 0.1, NAN, 0, 1.0) is False  # the same key
    assert pool.raise_priority(2, 0.2, NAN, -1, 1.0) is False  # a worse key (not a valid boost): ignored
    assert pool.raise_priority(99, 0.0, NAN, 2, 1.0) is False  # not waiting here: ignored
    assert pool.raise_priority(0, 0.0, NAN, 2, 10.0) is False  # in service, not waiting: ignored
    assert pool.rows == n_entries  # no fresh heap entry was pushed
    assert _finish(pool, *arrays) == [1, 2, 3]


@POOLS
def test_raise_priority_twice_and_under_fifo(make):
    pool, *arrays = _pool_with_waiting(make, QueueDiscipline.SUPERVISED)
    assert pool.raise_priority(3, 0.3, NAN, 1, 1.0) is True
    assert pool.raise_priority(2, 0.2, NAN, 2, 1.0) is True
    assert pool.raise_priority(3, 0.3, NAN, 1, 1.0) is False  # the same as its current key: nothing changes
    assert _finish(pool, *arrays) == [2, 3, 1]
    # under FIFO a boost does not change the key, so raise_priority does nothing
    pool, *arrays = _pool_with_waiting(make, QueueDiscipline.FIFO)
    rows = pool.rows
    assert pool.raise_priority(3, 0.3, NAN, 2, 1.0) is False
    assert pool.rows == rows
    assert _finish(pool, *arrays) == [1, 2, 3]


@POOLS
def test_raise_priority_under_deadline(make):
    # case 0 holds the server for [0, 10); cases 1, 2, 3 wait, due at 30, 20, 10: served 3, 2, 1 unless pressed
    pool = make(1, True, CAL, QueueDiscipline.DEADLINE)
    svc, due, boost = np.array([10.0, 1.0, 1.0, 1.0]), np.array([5.0, 30.0, 20.0, 10.0]), np.zeros(4, np.int8)
    pool.arrive(np.arange(4), np.array([0.0, 0.1, 0.2, 0.3]))
    starts: list = []
    pool.advance(1.0, svc, due, boost, starts)
    assert collect(starts) == {0: (0.0, 10.0)}
    assert pool.raise_priority(1, 0.1, 30.0, 1, 1.0) is True  # pressed: before the earlier due times
    assert pool.raise_priority(2, 0.2, 20.0, 0, 1.0) is False
    assert _finish(pool, svc, due, boost) == [1, 3, 2]


@POOLS
def test_remove_withdraws_waiting_case(make):
    pool, *arrays = _pool_with_waiting(make, QueueDiscipline.FIFO)
    assert pool.remove(2) is True
    assert len(pool) == 2
    assert pool.remove(2) is False  # already gone
    assert pool.remove(12345) is False  # never here
    assert pool.remove(0) is False  # in service, not waiting
    starts: list = []
    pool.advance(100.0, *arrays, starts)
    got = collect(starts)
    assert got == {1: (10.0, 11.0), 3: (11.0, 12.0)}  # case 3 moved up into case 2's slot
    assert len(pool) == 0


@POOLS
def test_remove_after_raise_priority(make):
    pool, *arrays = _pool_with_waiting(make, QueueDiscipline.SUPERVISED)
    pool.raise_priority(3, 0.3, NAN, 2, 1.0)
    assert pool.remove(3) is True
    assert _finish(pool, *arrays) == [1, 2]


@POOLS
def test_removed_case_can_join_again(make):
    pool, svc, due, boost = _pool_with_waiting(make, QueueDiscipline.SUPERVISED)
    pool.raise_priority(1, 0.1, NAN, 2, 1.0)  # a stale row of case 1 stays behind
    assert pool.remove(1) is True
    pool.arrive(np.array([1]), np.array([1.5]))  # it comes back (boost 0 now), last in line
    boost[1] = 0
    starts: list = []
    pool.advance(2.0, svc, due, boost, starts)
    assert starts == [] and len(pool) == 3
    assert _finish(pool, svc, due, boost) == [2, 3, 1]


@POOLS
def test_easy_first_serves_shortest_then_switches_back(make):
    # one server busy for [0, 10); cases 1..4 wait with work 3, 1, 2, 1 (h); cases 5, 6 arrive later
    pool = make(1, True, CAL, QueueDiscipline.FIFO)
    svc = np.array([10.0, 3.0, 1.0, 2.0, 1.0, 0.5, 0.5])
    due, boost = np.full(7, 50.0), np.zeros(7, dtype=np.int8)
    pool.arrive(np.arange(5), np.array([0.0, 0.1, 0.2, 0.3, 0.4]))
    starts: list = []
    pool.advance(1.0, svc, due, boost, starts)
    pool.set_easy_first(True, due, boost)
    assert len(pool) == 4
    boost[3] = 1  # pressed: first, whatever its work
    assert pool.raise_priority(3, 0.3, 50.0, 1, 2.0) is True
    starts = []
    pool.advance(14.0, svc, due, boost, starts)  # 3 [10, 12), then the shorter of 2 and 4 (2 joined first)
    assert collect(starts) == {3: (10.0, 12.0), 2: (12.0, 13.0), 4: (13.0, 14.0)}
    assert len(pool) == 1  # case 1 (3 h) still waits
    pool.arrive(np.array([5]), np.array([14.0]))  # 0.5 h: easy first, it would go before case 1 at 14.0...
    pool.set_easy_first(False, due, boost)  # ...but back in FIFO order case 1 goes first
    assert _finish(pool, svc, due, boost) == [1, 5]


# ------------------------------------------------------------------------------------------------
# (d) office hours


@POOLS
@pytest.mark.parametrize(("arrival", "expected_start"), [
    (20.0, 33.0),  # Monday 20:00 -> Tuesday 09:00
    (3.5, 9.0),  # Monday 03:30 -> Monday 09:00
    (10.5, 10.5),  # Monday 10:30: open, starts on arrival
    (16.99, 16.99),  # just before closing
    (17.0, 33.0),  # at closing
    (4 * 24 + 20.0, 7 * 24 + 9.0),  # Friday 20:00 -> Monday 09:00
    (5 * 24 + 12.0, 7 * 24 + 9.0),  # Saturday noon -> Monday 09:00
])
def test_office_hours_start(make, arrival, expected_start):
    start, done = simulate(make(1, False, CAL), [arrival], [2.5])
    assert start[0] == pytest.approx(expected_start)
    assert done[0] == pytest.approx(expected_start + 2.5)  # service runs on in elapsed hours


@POOLS
def test_office_hours_skip_holiday(make):
    cal = WorkCalendar(START, ["2024-01-02"], 60)  # Tuesday a holiday
    start, _ = simulate(make(1, False, cal), [20.0], [1.0])
    assert start[0] == 2 * 24 + 9.0  # Wednesday 09:00


@POOLS
def test_always_open_ignores_calendar(make):
    start, _ = simulate(make(1, True, CAL), [20.0, 5 * 24 + 12.0], [1.0, 1.0])
    assert start.tolist() == [20.0, 132.0]


@POOLS
def test_office_hours_busy_server_past_closing_and_overnight_queue(make):
    # case 0 starts 16:00 and runs to 18:00; case 1 (16:30) waits overnight to Tuesday 09:00;
    # case 2 arrives Tuesday 09:30 and queues behind case 1 (FIFO), case 3 on Tuesday evening waits to Wed
    times = [16.0, 16.5, 33.5, 24 + 20.0]
    svc = [2.0, 1.0, 1.0, 1.0]
    start, done = simulate(make(1, False, CAL), times, svc)
    assert start.tolist() == [16.0, 33.0, 34.0, 57.0]
    assert done.tolist() == [18.0, 34.0, 35.0, 58.0]


@POOLS
def test_office_hours_overnight_case_waits_first_in_line(make):
    # a supervised queue: the case waiting overnight (boost 0) against an early-morning case with boost 2.
    # At 09:00 both are there, so the boosted one goes first.
    times = [20.0, 24 + 8.5]
    start, _ = simulate(make(1, False, CAL, QueueDiscipline.SUPERVISED), times, [1.0, 1.0], boost=[0, 2])
    assert start.tolist() == [34.0, 33.0]
    # under FIFO the overnight case keeps its place
    start, _ = simulate(make(1, False, CAL), times, [1.0, 1.0], boost=[0, 2])
    assert start.tolist() == [33.0, 34.0]


@POOLS
def test_office_hours_idle_server_waits_for_opening(make):
    # the server has been free since Monday 10:00; a case arriving Monday 20:00 waits to Tuesday 09:00 and a
    # case arriving at 08:30 Tuesday queues behind it; both are held over several closed steps
    times = [9.0, 20.0, 24 + 8.5]
    start, _ = simulate(make(1, False, CAL), times, [1.0, 1.0, 1.0])
    assert start.tolist() == [9.0, 33.0, 34.0]


@POOLS
def test_office_hours_fifo_matches_reference_on_random_load(make):
    rng = np.random.default_rng(11)
    cal = WorkCalendar(START, ["2024-01-10", "2024-01-11"], 60)
    n = 300
    times = np.sort(rng.uniform(0, 24 * 28, n))  # four weeks, about 0.45 arrivals per hour
    svc = rng.exponential(1.5, n)
    start, done = simulate(make(3, False, cal), times, svc, hours=24 * 60)
    r_start, r_done = reference_fifo(times, svc, 3, cal)
    assert not np.isnan(start).any()
    assert cal.is_open(start).all()
    np.testing.assert_allclose(start, r_start, rtol=0, atol=1e-9)
    np.testing.assert_allclose(done, r_done, rtol=0, atol=1e-9)


# ------------------------------------------------------------------------------------------------
# (e) differential tests: one QueueBank of several queues against one reference pool per queue


class TracedPool(ServerPool):
    """The reference, counting the steps whose arrivals took the fast path."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.heap_steps = 0
        self.fast_steps = 0

    def _advance_heap(self, t_end, arr, starts):
        self.heap_steps += 1
        super()._advance_heap(t_end, arr, starts)

    def run_sorted(self, t_end, cases, times, svc, arr, starts):
        before = self.heap_steps
        super().run_sorted(t_end, cases, times, svc, arr, starts)
        self.fast_steps += self.heap_steps == before


DIFF_SERVERS = (0, 1, 3, 20)
DIFF_CAL = WorkCalendar(START, ["2024-01-03", "2024-01-15"], 60)  # a Wednesday and a Monday off
WORKS = np.array([0.125, 0.25, 0.5, 1.0, 2.0])  # common handling times: ties in easy-first keys


def _arrival_counts(rng, servers, hours, always_open, cal) -> np.ndarray:
    """(hours, queues) arrivals per step: bursty, some steps above any queue's capacity, some with >= 16
    arrivals at the 20-server queue; fewer at night with office hours (not none: they wait for the opening)."""
    counts = np.zeros((hours, len(servers)), dtype=np.int64)
    for q, c in enumerate(servers):
        if c == 0:
            counts[:, q] = rng.poisson(0.3, hours)
        elif c < 10:
            base = rng.poisson(0.6 * c, hours)
            counts[:, q] = base + (rng.random(hours) < 0.03) * rng.integers(5, 15, hours)
        else:
            counts[:, q] = rng.choice([0, 5, 18, 25, 40], size=hours, p=[0.3, 0.2, 0.2, 0.2, 0.1])
    if not always_open:
        closed = ~cal.is_open(np.arange(hours) + 0.5)
        thinned = rng.binomial(counts, 0.15)
        big = np.asarray(servers) >= 10
        keep = big & (rng.random((hours, 1)) < 0.1)  # now and then a night burst at a big queue (no fast path)
        counts = np.where(closed[:, None] & ~keep, thinned, counts)
    return counts


def waiting_line(pool, q: int | None = None) -> list[tuple]:
    """The waiting cases of a reference pool, or of queue ``q`` of a QueueBank, in the order they would be
    served, each as (key padded to three numbers, case, arrival, work)."""
    if q is None:
        entries = sorted(pool.live.values())
        return [(*map(float, e[0]), *[0.0] * (3 - len(e[0])), e[2], e[3], e[4]) for e in entries]
    rows = pool.heap[pool.hoff[q]:pool.hoff[q] + pool.hlen[q]]
    rows = rows[pool.live_seq[rows[:, 4].astype(np.int64)] == rows[:, 3]]
    rows = rows[np.lexsort((rows[:, 3], rows[:, 2], rows[:, 1], rows[:, 0]))]
    return [(r[0], r[1], r[2], int(r[4]), r[5], r[6]) for r in rows.tolist()]


class Differential:
    """One random workload run through one QueueBank and through one ``reference`` pool per queue, both fed
    the same events in the same order (see :func:`differential_run`)."""

    def __init__(self, seed: int, discipline: QueueDiscipline, always_open: bool, hours: int,
                 servers: tuple[int, ...], reference: type[ServerPool], cal: WorkCalendar) -> None:
        self.seed, self.servers, self.h = seed, servers, 0
        self.rng = rng = np.random.default_rng(seed)
        self.bank = QueueBank(np.array(servers), always_open, cal, discipline, cases=16, kernels=KERNELS)
        self.refs = [reference(c, always_open, cal, discipline) for c in servers]
        self.counts = _arrival_counts(rng, servers, hours, always_open, cal)
        n = self.n = int(self.counts.sum())
        self.new_ids = rng.permutation(n)  # case ids uncorrelated with arrival order
        self.taken = 0
        self.svc, self.due = np.zeros(n), np.zeros(n)
        self.boost = np.zeros(n, dtype=np.int8)
        self.queued_at = np.full(n, NAN)
        self.queue_of = np.full(n, -1, dtype=np.int64)
        self.left: list[int] = []  # cases that were withdrawn or started: they may come back
        self.stats: Counter = Counter()

    def where(self, q: int) -> str:
        return f"seed {self.seed}, hour {self.h}, queue {q}"

    def arrivals(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """This step's arrivals, handed to the reference pools; returns them (queue, case, time) for the bank."""
        rng, h, stats = self.rng, self.h, self.stats
        arr_q, arr_c, arr_t = [], [], []
        for q, ref in enumerate(self.refs):
            k = int(self.counts[h, q])
            cs = self.new_ids[self.taken:self.taken + k]
            self.taken += k
            self.boost[cs] = rng.choice([0, 1, 2], size=k, p=[0.8, 0.15, 0.05])
            if self.left and rng.random() < 0.2:  # a case that left comes back (keeps its boost)
                cs = np.append(cs, self.left.pop(int(rng.integers(len(self.left)))))
                stats["returned"] += 1
            k = len(cs)
            grid = rng.random(k) < 0.6  # many on a 1/8 h grid: simultaneous arrivals, equal keys
            t = h + np.where(grid, rng.integers(0, 8, k) / 8, rng.uniform(0, 1, k))
            self.svc[cs] = np.where(rng.random(k) < 0.5, rng.choice(WORKS, k), rng.exponential(0.9, k))
            self.due[cs] = h + rng.choice([8.0, 16.0, 24.0, 48.0, 72.0], k)
            self.queued_at[cs] = t
            self.queue_of[cs] = q
            arr_q.append(np.full(k, q))
            arr_c.append(cs)
            arr_t.append(t)
            perm = rng.permutation(k)  # handed to the reference in two calls, in no particular order
            cut = int(rng.integers(0, k + 1))
            if cut > 0:
                ref.arrive(cs[perm[:cut]], t[perm[:cut]])
            if cut < k:
                ref.arrive(cs[perm[cut:]], t[perm[cut:]])
            stats["ties"] += k - len(np.unique(t))
            stats["fast_sized"] += k >= 16
        perm = rng.permutation(sum(len(c) for c in arr_c))  # the bank takes them in any order
        return np.concatenate(arr_q)[perm], np.concatenate(arr_c)[perm], np.concatenate(arr_t)[perm]

    def press(self, q: int, cases: np.ndarray) -> None:
        """Boosts rise by one (to 2 at most); the bank and the reference must move the same cases."""
        boost = self.boost
        boost[cases] = np.minimum(boost[cases] + 1, 2)
        moved = self.bank.raise_priority(np.full(len(cases), q), cases, self.queued_at[cases], self.due[cases],
                                         boost[cases], self.svc[cases])
        ref = self.refs[q]
        ref_moved = 0
        for c in cases.tolist():
            rows = len(ref.waiting)
            ref.raise_priority(c, ref.key(float(self.queued_at[c]), float(self.due[c]), int(boost[c]),
                                          float(self.svc[c])))
            ref_moved += len(ref.waiting) > rows
        assert moved == ref_moved, f"{self.where(q)}: cases moved up"
        self.stats["raised"] += len(cases)
        self.stats["moved"] += moved

    def switch(self, q: int) -> None:
        """Queue ``q`` switches easy first on or off."""
        on = not bool(self.bank.easy_first[q])
        self.bank.set_easy_first(q, on, self.due, self.boost)
        self.refs[q].set_easy_first(on, self.due, self.boost)
        self.stats["switched"] += 1
        self.stats["switched_with_waiting"] += len(self.refs[q]) > 0

    def withdraw(self, q: int, waiting: np.ndarray) -> None:
        """Some waiting cases of queue ``q`` are withdrawn, with a few that are not waiting there."""
        rng = self.rng
        gone = rng.choice(waiting, size=min(len(waiting), int(rng.integers(1, 4))), replace=False)
        others = np.unique(rng.choice(self.n, size=2))  # mostly not waiting (started, elsewhere, never seen)
        gone = np.concatenate([gone, others[~np.isin(others, gone)]])
        gone = gone[(self.queue_of[gone] == q) | (self.queue_of[gone] == -1)]  # (a case is withdrawn from its own queue)
        ok = self.bank.remove(np.full(len(gone), q), gone)
        assert ok.tolist() == [self.refs[q].remove(int(c)) for c in gone], f"{self.where(q)}: withdrawn"
        self.left.extend(gone[ok].tolist())
        self.stats["removed"] += int(ok.sum())
        self.stats["remove_refused"] += int((~ok).sum())

    def compare(self, q: int, out_c: np.ndarray, out_s: np.ndarray, out_d: np.ndarray) -> None:
        """Advance reference ``q`` to the end of the step: the same starts (order, times) and the same state."""
        ref, where = self.refs[q], self.where(q)
        got: list = []
        ref.advance(self.h + 1.0, self.svc, self.due, self.boost, got)
        r_c, r_s, r_d = (np.concatenate([g[i] for g in got]).tolist() if got else [] for i in range(3))
        assert out_c.tolist() == r_c, f"{where}: start order"
        assert out_s.tolist() == r_s, f"{where}: start times"
        assert out_d.tolist() == r_d, f"{where}: completion times"
        bank = self.bank
        assert int(bank.nlive[q]) == len(ref), f"{where}: waiting"
        assert waiting_line(bank, q) == waiting_line(ref), f"{where}: waiting line"
        assert int(bank.hlen[q]) >= len(ref)  # (stale rows may differ: the bank skips blocked queues)
        f0 = bank.foff[q]
        assert sorted(bank.free[f0:f0 + self.servers[q]].tolist()) == sorted(ref.free), f"{where}: free times"
        if len(ref):
            assert bank.blocked[q] == ref.blocked_until, f"{where}: blocked"
        self.stats["over_capacity"] += bool(len(ref)) and self.servers[q] > 0

    def step(self) -> None:
        rng, nq, stats = self.rng, len(self.servers), self.stats
        arr_q, arr_c, arr_t = self.arrivals()
        for q in range(nq):  # some arrivals are pressed (not yet waiting: no move, but a better key on joining)
            mine = arr_c[arr_q == q]
            if len(mine) and rng.random() < 0.2:
                self.press(q, rng.choice(mine, size=min(len(mine), 2), replace=False))
        for q in range(nq):
            if rng.random() < 0.03:
                self.switch(q)
        out_c, out_s, out_d = self.bank.run(self.h + 1.0, arr_q, arr_c, arr_t, self.svc[arr_c], self.due[arr_c],
                                            self.boost[arr_c])
        out_q = self.queue_of[out_c]
        assert (np.diff(out_q) >= 0).all(), f"seed {self.seed}, hour {self.h}: starts not grouped by queue"
        for q in range(nq):
            mine = out_q == q
            self.compare(q, out_c[mine], out_s[mine], out_d[mine])
        waited = out_s > self.queued_at[out_c]
        stats["started"] += len(out_c)
        stats["waited"] += int(waited.sum())
        stats["late_open"] += int(((out_s % 24 == 9.0) & waited).sum())  # held to an opening time
        self.left.extend(out_c.tolist())
        for q, ref in enumerate(self.refs):  # waiting cases are pressed, some withdrawn
            waiting = np.fromiter(ref.live, dtype=np.int64, count=len(ref.live))
            if len(waiting) and rng.random() < 0.4:
                self.press(q, rng.choice(waiting, size=min(len(waiting), int(rng.integers(1, 5))), replace=False))
            if len(waiting) and rng.random() < 0.3:
                self.withdraw(q, waiting)
        self.h += 1


def differential_run(seed: int, discipline: QueueDiscipline, always_open: bool, hours: int = DIFF_HOURS,
                     servers: tuple[int, ...] = DIFF_SERVERS, reference: type[ServerPool] = TracedPool,
                     cal: WorkCalendar = DIFF_CAL) -> Counter:
    """Run one random workload through one QueueBank and through one ``reference`` pool per queue, feeding both
    the same events in the same order; assert after every step that both started the same cases, in the same
    order, at exactly the same times, and hold the same waiting lines. Returns counts of what was exercised.

    Per step: arrivals (new cases with ids uncorrelated with time, times often on a 1/8 h grid so that
    several cases arrive together and keys tie; now and then a case that left comes back); boosts raised on
    some of the step's arrivals; easy first switched on or off at some queues; the run; then boosts raised
    0 → 1 → 2 on random waiting cases, and random waiting cases withdrawn (with some cases not waiting).
    """
    run = Differential(seed, discipline, always_open, hours, servers, reference, cal)
    for _ in range(hours):
        run.step()
    for q, ref in enumerate(run.refs):
        run.stats[f"fast_{q}"] = getattr(ref, "fast_steps", 0)
    return run.stats


@pytest.mark.parametrize("always_open", [True, False], ids=["7x24", "office"])
@pytest.mark.parametrize("discipline", list(QueueDiscipline))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bank_equals_reference_on_random_workloads(seed, discipline, always_open):
    stats = differential_run(seed, discipline, always_open)
    # the workload exercised what it is meant to
    assert stats["fast_3"] >= (10 if always_open else 1), stats  # the 20-server queue took the fast path
    assert stats["fast_sized"] > stats["fast_3"], stats  # ...but not always with >= 16 arrivals
    assert stats["over_capacity"] > 10 and stats["waited"] > 100, stats
    assert stats["ties"] > 100, stats
    assert stats["moved"] > 5 and stats["raised"] > stats["moved"], stats
    assert stats["removed"] > 5 and stats["remove_refused"] > 5, stats
    assert stats["switched_with_waiting"] > 0 and stats["returned"] > 5, stats
    if not always_open:
        assert stats["late_open"] > 10, stats  # starts held to an opening time


@pytest.mark.skipif(PURE_PYTHON, reason="already running the kernels as plain Python")
def test_bank_equals_reference_with_the_kernels_as_plain_python():
    """The same differential tests with WENZHENG_COMPILE=0 (the plain-Python kernels, on a shorter workload,
    in a process that never imports numba): the compiled and the plain-Python kernels follow the same rules."""
    env = {**os.environ, "WENZHENG_COMPILE": "0"}
    done = subprocess.run([sys.executable, "-m", "pytest", __file__, "-q", "-p", "no:cacheprovider",
                           "-k", "random_workloads"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "18 passed" in done.stdout, done.stdout[-3000:]


class LastJoinedFirstPool(TracedPool):
    """Broken on purpose: among equal keys, the case that joined last goes first."""

    def push(self, case, arrival, key, service):
        self.seq -= 1
        entry = (key, self.seq, case, arrival, service)
        self.live[case] = entry
        heapq.heappush(self.waiting, entry)


class CaseOrderFastPathPool(TracedPool):
    """Broken on purpose: the fast path reports its starts by case id instead of (time, case)."""

    def run_sorted(self, t_end, cases, times, svc, arr, starts):
        mine: list = []
        before = self.heap_steps
        super().run_sorted(t_end, cases, times, svc, arr, mine)
        if self.heap_steps == before and mine:
            c, s, d = mine[0]
            o = np.argsort(c, kind="stable")
            mine = [(c[o], s[o], d[o])]
        starts.extend(mine)


@pytest.mark.parametrize(("reference", "discipline"), [
    (LastJoinedFirstPool, QueueDiscipline.FIFO),
    (LastJoinedFirstPool, QueueDiscipline.DEADLINE),
    (CaseOrderFastPathPool, QueueDiscipline.FIFO),
    # without a fast path, simultaneous arrivals start in key order rather than (time, case) order
    (HeapOnlyPool, QueueDiscipline.SUPERVISED),
])
def test_differential_run_detects_a_different_order(reference, discipline):
    """The differential test is sharp: a reference that breaks ties differently, or whose fast path reports
    another order (same times), fails it."""
    with pytest.raises(AssertionError):
        differential_run(3, discipline, True, hours=24 * 3, reference=reference)


# ------------------------------------------------------------------------------------------------
# (f) Erlang C


def erlang_c_wait(c: int, lam: float, mu: float) -> tuple[float, float]:
    """(P(wait), Wq) of M/M/c: C(c, a) = [a^c/c! · c/(c−a)] / [Σ_{k<c} a^k/k! + a^c/c! · c/(c−a)]."""
    a = lam / mu
    top = a**c / math.factorial(c) * c / (c - a)
    p = top / (sum(a**k / math.factorial(k) for k in range(c)) + top)
    return p, p / (c * mu - lam)


def test_erlang_c_formula_hand_value():
    # c = 3, a = 2.4: top = 2.4^3/6 · 3/0.6 = 11.52; Σ = 1 + 2.4 + 2.88 = 6.28; C = 11.52/17.8
    p, wq = erlang_c_wait(3, 2.4, 1.0)
    assert p == pytest.approx(11.52 / 17.8)
    assert wq == pytest.approx(11.52 / 17.8 / 0.6)  # 1.0787 h


def test_mm3_fifo_mean_wait_matches_erlang_c():
    """M/M/3 through QueueBank, λ = 2.4/h, μ = 1/h (ρ = 0.8), 200,000 h (~480,000 arrivals), fed hour by hour.

    Tolerance from the run length: at ρ = 0.8 waits are strongly autocorrelated, and over independent seeds
    the relative error of the mean wait had a standard deviation of 5.5% at 25,000 h (60,000 arrivals, the
    reason for the longer run), 3.0% at 100,000 h and 1.5% at 250,000 h (∝ 1/√length): about 1.7% here.
    We allow 6% (> 3.5 standard deviations). Measured against Erlang C at the run's own λ̂ and μ̂ (which
    removes the run's chance load) the spread is about 1.0%: we allow 4% there. A systematic error of a few
    percent (a wrong server picked, lost or double-started cases) fails; noise does not. Seeded: deterministic.
    """
    c, lam, mu, hours = 3, 2.4, 1.0, 200_000
    rng = np.random.default_rng(20240101)
    counts = rng.poisson(lam, hours)
    times = np.repeat(np.arange(hours), counts) + rng.uniform(0, 1, counts.sum())
    svc = rng.exponential(1 / mu, len(times))
    start, done = simulate(BankPool(c, True, CAL, cases=len(times)), times, svc, hours=hours)
    started = ~np.isnan(start)
    assert started.mean() > 0.9999  # only the last hours' arrivals may still wait
    wait = (start - times)[started]
    assert (wait >= 0).all()
    # never more than c in service: at every start, fewer than c earlier starts are still running
    s_sorted, d_sorted = np.sort(start[started]), np.sort(done[started])
    in_service = np.arange(len(s_sorted)) - np.searchsorted(d_sorted, s_sorted, side="right")
    assert in_service.max() <= c - 1
    p_expected, wq_expected = erlang_c_wait(c, lam, mu)
    assert wait.mean() == pytest.approx(wq_expected, rel=0.06)
    _, wq_plugin = erlang_c_wait(c, len(times) / hours, 1 / svc.mean())
    assert wait.mean() == pytest.approx(wq_plugin, rel=0.04)
    # the probability of waiting at all is C(c, a) = 0.647
    assert (wait > 0).mean() == pytest.approx(p_expected, abs=0.015)
