"""Unit tests of sim/cases.py: the columnar CaseStore (ids, defaults, growth, open cases) and the Agenda."""

from __future__ import annotations

from enum import IntEnum, StrEnum

import numpy as np
import pytest

from sim.cases import (
    _BOOL_FIELDS,
    _FLOAT_FIELDS,
    _INT_FIELDS,
    _SMALL_FIELDS,
    Agenda,
    ArrayAgenda,
    CaseStore,
    Status,
)

ALL_FIELDS = _FLOAT_FIELDS + _INT_FIELDS + _SMALL_FIELDS + _BOOL_FIELDS
S = Status


def statuses(*values: Status) -> np.ndarray:
    return np.array([int(v) for v in values], dtype=np.int8)


# ------------------------------------------------------------------------------------------------
# CaseStore: ids, defaults, growth


def test_add_returns_consecutive_ids():
    cs = CaseStore(capacity=64)
    a = cs.add(created=np.array([1.0, 2.0, 3.0]))
    b = cs.add(created=np.array([4.0, 5.0]))
    c = cs.add(created=np.array([6.0]))
    assert a.tolist() == [0, 1, 2] and b.tolist() == [3, 4] and c.tolist() == [5]
    assert a.dtype == np.int64
    assert cs.n == 6
    assert cs.created[:6].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]


def test_add_nothing_returns_no_ids():
    cs = CaseStore()
    cs.add(created=np.array([1.0]))
    ids = cs.add(created=np.zeros(0))
    assert ids.tolist() == [] and cs.n == 1


def test_defaults_of_columns_not_given():
    cs = CaseStore()
    ids = cs.add(created=np.array([1.5, 2.5]), dept=np.array([7, 9]))
    assert cs.created[ids].tolist() == [1.5, 2.5]
    assert cs.dept[ids].tolist() == [7, 9]
    for f in _FLOAT_FIELDS:
        if f != "created":
            assert np.isnan(getattr(cs, f)[ids]).all(), f
    assert cs.satisfied[ids].tolist() == [-1, -1]  # not judged
    for f in _INT_FIELDS + _SMALL_FIELDS:
        if f not in ("dept", "satisfied"):
            assert getattr(cs, f)[ids].tolist() == [0, 0], f
    for f in _BOOL_FIELDS:
        assert not getattr(cs, f)[ids].any(), f
    assert cs.status[0] == Status.AWAITING_INTAKE


def test_column_dtypes():
    cs = CaseStore()
    assert all(getattr(cs, f).dtype == np.float64 for f in _FLOAT_FIELDS)
    assert all(getattr(cs, f).dtype == np.int32 for f in _INT_FIELDS)
    assert all(getattr(cs, f).dtype == np.int8 for f in _SMALL_FIELDS)
    assert all(getattr(cs, f).dtype == np.bool_ for f in _BOOL_FIELDS)
    assert len(set(ALL_FIELDS)) == len(ALL_FIELDS)  # no column listed twice


def test_add_keeps_a_given_satisfied_column():
    """``add``: "Columns not given keep their defaults" — so a column that is given is kept, satisfied too."""
    cs = CaseStore()
    ids = cs.add(created=np.array([1.0, 2.0]), satisfied=np.array([1, 0], dtype=np.int8))
    assert cs.satisfied[ids].tolist() == [1, 0]


def test_minimum_capacity():
    assert CaseStore(capacity=0).capacity == 16
    assert CaseStore(capacity=3).capacity == 16
    assert CaseStore(capacity=100).capacity == 100


def test_growth_keeps_earlier_rows():
    cs = CaseStore(capacity=16)
    first = cs.add(created=np.arange(10, dtype=float), dept=np.arange(10) + 100,
                   status=np.full(10, int(S.QUEUED), np.int8), enterprise=np.arange(10) % 2 == 0,
                   due=np.arange(10) * 2.0)
    cs.satisfied[first[:3]] = [1, 0, 1]
    arrays_before = {f: getattr(cs, f) for f in ALL_FIELDS}
    second = cs.add(created=np.arange(10, 30, dtype=float))  # 30 > 16: grows
    assert second.tolist() == list(range(10, 30))
    assert cs.capacity == int(16 * 1.5) + 16  # 40: one growth step suffices
    assert cs.n == 30
    for f in ALL_FIELDS:
        col = getattr(cs, f)
        assert len(col) == cs.capacity, f
        assert col.dtype == arrays_before[f].dtype, f
    # earlier rows kept
    assert cs.created[:30].tolist() == [float(i) for i in range(30)]
    assert cs.dept[:10].tolist() == list(range(100, 110))
    assert cs.status[:10].tolist() == [int(S.QUEUED)] * 10
    assert cs.enterprise[:10].tolist() == [i % 2 == 0 for i in range(10)]
    assert cs.due[:10].tolist() == [i * 2.0 for i in range(10)]
    assert cs.satisfied[:10].tolist() == [1, 0, 1] + [-1] * 7
    # new rows have the defaults (rows past n are unused capacity: never written, so never resident)
    assert np.isnan(cs.due[10:30]).all()
    assert cs.dept[10:30].tolist() == [0] * 20
    assert cs.satisfied[10:30].tolist() == [-1] * 20
    assert not cs.enterprise[10:30].any()
    assert cs.repeat_of[10:30].tolist() == [-1] * 20


def test_growth_by_several_steps_in_one_add():
    cs = CaseStore(capacity=16)
    ids = cs.add(created=np.arange(100, dtype=float))
    # 16 -> 40 -> 76 -> 130
    assert cs.capacity == 130
    assert ids[-1] == 99 and cs.created[99] == 99.0
    ids = cs.add(created=np.arange(30, dtype=float))  # exactly fills 130: no growth
    assert cs.capacity == 130 and cs.n == 130 and ids[-1] == 129
    cs.add(created=np.array([0.5]))
    assert cs.capacity == int(130 * 1.5) + 16
    assert cs.created[:100].tolist() == [float(i) for i in range(100)]


def test_compelled():
    cs = CaseStore()
    ids = cs.add(supervision_level=np.array([0, 1, 2, 3, 0], np.int8),
                 escalated=np.array([False, False, False, False, True]))
    assert cs.compelled(ids).tolist() == [False, False, True, True, True]
    assert cs.compelled(ids[[4, 0]]).tolist() == [True, False]


# ------------------------------------------------------------------------------------------------
# CaseStore: open cases and the watermark


def test_open_ids_empty_store():
    cs = CaseStore()
    assert cs.open_ids().tolist() == []
    assert cs.first_open == 0


def test_a_final_case_made_open_again_is_read_again():
    """An audit sends a closed case back: open_ids (which reads only the cases open at its last call and the
    rows added since) must see it again, and the watermark must move back to it."""
    cs = CaseStore()
    cs.add(status=statuses(S.CLOSED, S.QUEUED, S.CLOSED, S.QUEUED))
    assert cs.open_ids().tolist() == [1, 3]
    cs.status[1] = S.CLOSED
    assert cs.open_ids().tolist() == [3] and cs.first_open == 3
    cs.reopen(np.array([2, 0]))
    cs.status[[0, 2]] = S.IN_TRANSIT
    assert cs.first_open == 0
    assert cs.open_ids().tolist() == [0, 2, 3]
    cs.add(status=statuses(S.CLOSED))
    cs.status[4] = S.CLOSED
    cs.reopen(np.array([4]))  # not yet read by open_ids: read with the new rows, once
    cs.status[4] = S.QUEUED
    assert cs.open_ids().tolist() == [0, 2, 3, 4]


def test_sending_back_a_closed_case_opens_it_again():
    from sim.lifecycle import send_back
    from sim.model import GovernanceModel
    from sim.scenario import Scenario

    m = GovernanceModel(Scenario(), seed=1)
    cs = m.cases
    ids = cs.add(status=statuses(S.QUEUED, S.QUEUED), created=np.zeros(2), due=np.full(2, 48.0))
    assert cs.open_ids().tolist() == ids.tolist()
    cs.status[ids[0]] = S.CLOSED
    assert cs.open_ids().tolist() == [ids[1]]
    send_back(m, ids[:1], np.array([5.0]))
    assert cs.open_ids().tolist() == ids.tolist() and cs.status[ids[0]] == S.IN_TRANSIT


def test_open_ids_skip_final_statuses_and_watermark_moves_past_leading_run():
    cs = CaseStore()
    cs.add(status=statuses(S.CLOSED, S.ABANDONED, S.QUEUED, S.CLOSED, S.IN_SERVICE, S.AWAITING_CALLBACK))
    assert cs.open_ids().tolist() == [2, 4, 5]
    assert cs.first_open == 2  # past the leading CLOSED, ABANDONED only
    assert cs.open_ids().tolist() == [2, 4, 5]  # asking again changes nothing
    assert cs.first_open == 2
    cs.status[2] = S.CLOSED
    assert cs.open_ids().tolist() == [4, 5]
    assert cs.first_open == 4  # past 2 (now closed) and 3 (closed already)
    cs.status[5] = S.CLOSED  # not leading: the watermark stays
    assert cs.open_ids().tolist() == [4]
    assert cs.first_open == 4
    cs.status[4] = S.ABANDONED
    assert cs.open_ids().tolist() == []
    assert cs.first_open == 6
    # new cases after an all-final prefix
    assert cs.add(status=statuses(S.AWAITING_INTAKE, S.IN_TRANSIT, S.NEGLECTED)).tolist() == [6, 7, 8]
    assert cs.open_ids().tolist() == [6, 7, 8]
    assert cs.first_open == 6
    cs.status[7] = S.CLOSED
    assert cs.open_ids().tolist() == [6, 8]
    assert cs.first_open == 6
    cs.status[6] = S.CLOSED
    assert cs.open_ids().tolist() == [8]
    assert cs.first_open == 8


def test_every_open_status_is_open_and_every_final_one_final():
    cs = CaseStore()
    cs.add(status=statuses(*Status))
    expected = [int(s) for s in Status if s not in (S.CLOSED, S.ABANDONED)]
    assert cs.open_ids().tolist() == expected
    assert cs.first_open == 0


def test_open_ids_watermark_across_growth():
    cs = CaseStore(capacity=16)
    cs.add(status=statuses(*[S.CLOSED] * 10, S.QUEUED))
    assert cs.open_ids().tolist() == [10]
    assert cs.first_open == 10
    cs.add(status=np.full(40, int(S.QUEUED), np.int8))  # grows the store
    assert cs.open_ids().tolist() == list(range(10, 51))
    cs.status[10:20] = S.CLOSED
    assert cs.open_ids().tolist() == list(range(20, 51))
    assert cs.first_open == 20


def test_open_ids_match_brute_force_over_random_history():
    """Cases only move forward to a final state (as in the model); the watermark never hides an open case."""
    rng = np.random.default_rng(5)
    cs = CaseStore(capacity=16)
    for _ in range(200):
        k = int(rng.integers(0, 6))
        if k:
            cs.add(status=rng.integers(0, 6, k).astype(np.int8))  # open statuses
        n = cs.n
        if n:
            # close or abandon a few, mostly old ones (a leading run forms now and then)
            pick = np.unique(np.minimum(rng.geometric(0.05, 4) - 1 + cs.first_open, n - 1))
            cs.status[pick] = rng.choice([int(S.CLOSED), int(S.ABANDONED)], len(pick))
            # and move some open ones between open states
            other = rng.integers(0, n, 2)
            other = other[cs.status[other] < S.CLOSED]
            cs.status[other] = rng.integers(0, 6, len(other))
        watermark_before = cs.first_open
        got = cs.open_ids()
        assert got.tolist() == np.flatnonzero(cs.status[:cs.n] < S.CLOSED).tolist()
        assert cs.first_open >= watermark_before
        assert (cs.status[:cs.first_open] >= S.CLOSED).all()
        assert cs.first_open == cs.n or cs.status[cs.first_open] < S.CLOSED  # moved as far as it can
    assert cs.first_open > 0  # the watermark did move


# ------------------------------------------------------------------------------------------------
# Agenda


def _eq(part, ids, times):
    got_ids, got_times = part
    assert got_ids.tolist() == ids
    assert got_times.tolist() == pytest.approx(times)


def test_agenda_buckets_by_whole_hour_and_sorts_by_time():
    ag = Agenda()
    ag.schedule("reply", np.array([5.5, 5.1, 7.2]), np.array([1, 2, 3]))
    assert ag.pop(6) == {}
    out = ag.pop(5)
    assert list(out) == ["reply"]
    _eq(out["reply"], [2, 1], [5.1, 5.5])
    assert ag.pop(5) == {}  # popped: gone
    out = ag.pop(7)
    _eq(out["reply"], [3], [7.2])
    assert ag.pop(7) == {}


def test_agenda_empty_pop():
    ag = Agenda()
    assert ag.pop(0) == {}
    assert ag.pop(1234) == {}


def test_agenda_scheduling_nothing_is_a_no_op():
    ag = Agenda()
    ag.schedule("reply", np.zeros(0), np.zeros(0, dtype=np.int64))
    assert ag.pending() == 0
    assert ag.pop(0) == {}
    ag.schedule("reply", np.array([2.5]), np.array([4]))
    ag.schedule("reply", np.zeros(0), np.zeros(0, dtype=np.int64))
    out = ag.pop(2)
    _eq(out["reply"], [4], [2.5])


def test_agenda_hour_boundaries():
    ag = Agenda()
    ag.schedule("k", np.array([0.0, 3.999999, 4.0, 4.5]), np.array([10, 11, 12, 13]))
    _eq(ag.pop(0)["k"], [10], [0.0])
    _eq(ag.pop(3)["k"], [11], [3.999999])
    _eq(ag.pop(4)["k"], [12, 13], [4.0, 4.5])


def test_agenda_several_hours_land_in_their_own_buckets():
    ag = Agenda()
    ag.schedule("arrive", np.array([9.7, 8.2, 12.0, 9.1, 8.9]), np.array([1, 2, 3, 4, 5]))
    _eq(ag.pop(8)["arrive"], [2, 5], [8.2, 8.9])
    _eq(ag.pop(9)["arrive"], [4, 1], [9.1, 9.7])
    assert ag.pop(10) == {} and ag.pop(11) == {}
    assert ag.pending() == 1
    _eq(ag.pop(12)["arrive"], [3], [12.0])
    assert ag.pending() == 0


def test_agenda_kinds_and_calls_merge_within_an_hour():
    ag = Agenda()
    ag.schedule("a", np.array([3.5]), np.array([1]))  # the single-event path
    ag.schedule("b", np.array([3.9, 3.2]), np.array([3, 2]))  # the same-hour path
    ag.schedule("a", np.array([4.0, 3.1]), np.array([5, 4]))  # the multi-hour path
    out = ag.pop(3)
    assert set(out) == {"a", "b"}
    _eq(out["a"], [4, 1], [3.1, 3.5])
    _eq(out["b"], [2, 3], [3.2, 3.9])
    out = ag.pop(4)
    assert set(out) == {"a"}
    _eq(out["a"], [5], [4.0])


def test_agenda_equal_times_keep_scheduling_order():
    ag = Agenda()
    ag.schedule("k", np.array([2.5, 2.5]), np.array([7, 3]))
    ag.schedule("k", np.array([2.5, 2.25]), np.array([1, 9]))
    _eq(ag.pop(2)["k"], [9, 7, 3, 1], [2.25, 2.5, 2.5, 2.5])


class StrKind(StrEnum):
    REPLY = "reply"
    CALLBACK = "callback"


class IntKind(IntEnum):
    ACCEPT = 0
    ARRIVE = 1


def test_agenda_kinds_may_be_enum_members():
    ag = Agenda()
    ag.schedule(IntKind.ARRIVE, np.array([1.5, 1.25]), np.array([1, 2]))
    ag.schedule(IntKind.ACCEPT, np.array([1.75, 2.5]), np.array([3, 4]))
    ag.schedule(StrKind.CALLBACK, np.array([1.1]), np.array([5]))
    out = ag.pop(1)
    assert set(out) == {IntKind.ARRIVE, IntKind.ACCEPT, StrKind.CALLBACK}
    assert all(isinstance(k, IntKind | StrKind) for k in out)  # the members themselves are the keys
    _eq(out[IntKind.ARRIVE], [2, 1], [1.25, 1.5])
    _eq(out[IntKind.ACCEPT], [3], [1.75])
    _eq(out[StrKind.CALLBACK], [5], [1.1])
    _eq(ag.pop(2)[IntKind.ACCEPT], [4], [2.5])


def test_agenda_matches_brute_force_on_random_schedule():
    rng = np.random.default_rng(3)
    ag = Agenda()
    log: list[tuple[str, float, int, int]] = []  # (kind, time, id, order of scheduling)
    next_id = 0
    for _ in range(300):
        kind = str(rng.choice(["a", "b", "c"]))
        k = int(rng.integers(0, 8))
        base = float(rng.integers(0, 50))
        spread = float(rng.choice([0.0, 0.9, 6.0]))  # same hour / maybe / several hours
        times = np.round(base + rng.uniform(0, spread, k), 2)  # rounding makes ties
        ids = np.arange(next_id, next_id + k)
        next_id += k
        ag.schedule(kind, times, ids)
        log += [(kind, float(t), int(i), len(log) + j) for j, (t, i) in enumerate(zip(times, ids, strict=True))]
    seen = 0
    for hour in range(60):
        out = ag.pop(hour)
        expected: dict[str, list[tuple[float, int, int]]] = {}
        for kind, t, i, order in log:
            if int(t) == hour:
                expected.setdefault(kind, []).append((t, order, i))
        assert set(out) == set(expected), hour
        for kind, rows in expected.items():
            rows.sort()  # by time, then by the order of scheduling
            assert out[kind][0].tolist() == [i for _, _, i in rows], (hour, kind)
            assert out[kind][1].tolist() == [t for t, _, _ in rows], (hour, kind)
            seen += len(rows)
    assert seen == len(log)


def test_agenda_interleaved_scheduling_and_popping_matches_brute_force():
    """As the model uses it: each hour is popped repeatedly while handlers schedule more events, some into
    the hour being handled (they come out in the next pass), most into later hours."""
    rng = np.random.default_rng(11)
    ag = Agenda()
    pending: list[tuple[str, float, int, int]] = []  # (kind, time, id, order of scheduling)
    order = next_id = 0
    for hour in range(40):
        for _ in range(4):  # passes of one hour
            for _ in range(int(rng.integers(0, 4))):
                kind = str(rng.choice(["a", "b"]))
                k = int(rng.integers(1, 6))
                times = np.round(hour + rng.choice([0.0, 0.5, 3.0, 30.0]) + rng.uniform(0, 0.99, k), 1)
                ids = np.arange(next_id, next_id + k)
                next_id += k
                ag.schedule(kind, times, ids)
                for t, i in zip(times.tolist(), ids.tolist(), strict=True):
                    pending.append((kind, t, i, order))
                    order += 1
            out = ag.pop(hour)
            due = [e for e in pending if int(e[1]) == hour]
            pending = [e for e in pending if int(e[1]) != hour]
            expected: dict[str, list[tuple[float, int, int]]] = {}
            for kind, t, i, o in due:
                expected.setdefault(kind, []).append((t, o, i))
            assert set(out) == set(expected), hour
            for kind, rows in expected.items():
                rows.sort()
                assert out[kind][0].tolist() == [i for _, _, i in rows], (hour, kind)
                assert out[kind][1].tolist() == [t for t, _, _ in rows], (hour, kind)
    assert ag.pending() == len(pending) > 0


# ------------------------------------------------------------------------------ the array agenda
class Kind3(IntEnum):
    A = 0
    B = 1
    C = 2


def _kernel_copies():
    from sim import kernels as plain
    from sim.jit import kernels

    return [pytest.param(plain, id="plain"), pytest.param(kernels(True), id="compiled")]


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast")  # Agenda's hour of inf / NaN
@pytest.mark.parametrize("kern", _kernel_copies())
def test_array_agenda_gives_what_the_agenda_gives(kern, monkeypatch):
    """Interleaved scheduling and popping, as the model does it, with ties, events into the hour being
    popped, hours beyond the table (it grows), more events than slots (they grow), times far beyond any
    table and not a number (kept aside): the same events come out in the same order as from Agenda, and
    both count and search the same pending events."""
    rng = np.random.default_rng(7)
    monkeypatch.setattr(ArrayAgenda, "BLOCKS", 2)
    a, b = Agenda(), ArrayAgenda(Kind3, kern, hours=3)
    start_blocks = len(b._b_next)
    next_id = 0
    for hour in range(120):
        for _ in range(3):
            for _ in range(int(rng.integers(0, 5))):
                kind = Kind3(int(rng.integers(0, 3)))
                n = int(rng.choice([1, 3, 40, 300]))
                times = np.round(hour + rng.choice([0.0, 0.5, 3.0, 30.0, 150.0]) + rng.uniform(0, 5, n), 1)
                if rng.random() < 0.05:
                    times[0] = rng.choice([1e9, np.inf, np.nan])
                ids = np.arange(next_id, next_id + n)
                next_id += n
                a.schedule(kind, times, ids)
                b.schedule(kind, times.copy(), ids.copy())
            assert a.min_id(Kind3.C) == b.min_id(Kind3.C)
            got, want = b.pop(hour), a.pop(hour)
            assert set(got) == set(want), hour
            assert all(type(k) is Kind3 for k in got)
            for k in want:
                assert got[k][0].tolist() == want[k][0].tolist(), (hour, k)
                assert got[k][1].tolist() == want[k][1].tolist(), (hour, k)
            assert a.pending() == b.pending()
    assert b.pending() > 0 and b._far  # events were left for later hours and kept aside
    assert len(b._table) > 3 and len(b._b_next) > start_blocks  # the table and the blocks grew
    far = b._far[0]
    hour = int(far[2][0]) if np.isfinite(far[2][0]) and far[2][0] < 2**62 else None
    if hour is not None:  # an hour beyond the table pops its events kept aside
        got, want = b.pop(hour), a.pop(hour)
        assert {k: v[0].tolist() for k, v in got.items()} == {k: v[0].tolist() for k, v in want.items()}


def test_array_agenda_blocks_are_reused_once_popped():
    from sim import kernels as plain

    ag = ArrayAgenda(Kind3, plain, hours=10)
    blocks = len(ag._b_next)
    n = blocks // 2  # one block per event at most is asked of the free ones: half of them never run short
    for hour in range(10):
        ag.schedule(Kind3.B, np.full(n, hour + 0.5), np.arange(n) + 5)
        assert ag.pending() == n
        assert ag.min_id(Kind3.B) == 5 and ag.min_id(Kind3.A) is None
        out = ag.pop(hour)
        assert list(out) == [Kind3.B] and out[Kind3.B][0].tolist() == list(range(5, n + 5))
        assert ag._state[1] == blocks  # every block is free again
    assert len(ag._b_next) == blocks and ag.pending() == 0


def test_array_agenda_kinds_must_count_from_zero():
    from sim import kernels as plain

    class Gappy(IntEnum):
        A = 0
        B = 2

    with pytest.raises(ValueError, match="0, 1"):
        ArrayAgenda(Gappy, plain)
