"""Kernels rewritten for speed do what the plainer code they replace did: the arrival order of
:func:`sim.kernels.prepare_arrivals`, and the heap's pop and push (both copies of the kernels)."""

from __future__ import annotations

import numpy as np
import pytest

from sim import jit
from sim.kernels import ROW


def _copies():
    copies = [pytest.param(False, id="plain")]
    if jit.numba_available():
        copies.append(pytest.param(True, id="compiled"))
    return copies


@pytest.mark.parametrize("compiled", _copies())
@pytest.mark.parametrize("seed", range(6))
def test_arrival_order_is_the_three_stable_sorts(compiled, seed):
    """Queue, then time, then case; ties (a case listed twice at one time) in the order given; blocks
    short and long (the long ones sorted by time first), with and without ties in time."""
    k = jit.kernels(compiled)
    rng = np.random.default_rng(seed)
    n_queues = [1, 3, 40][seed % 3]
    for n in (0, 1, 5, 33, 80, 400):
        q = rng.integers(0, n_queues, n).astype(np.int64)
        cases = rng.integers(0, max(n // 2, 1), n).astype(np.int64)  # some listed twice
        times = np.round(rng.uniform(0, 3, n), 1 if seed % 2 else 6)  # ties in time, or hardly any
        counts = np.zeros(n_queues, dtype=np.int64)
        order = k._arrival_order(q, cases, times, n_queues, counts)
        expected = np.lexsort((cases, times, q))  # lexsort is stable: ties in the order given
        np.testing.assert_array_equal(order, expected)
        np.testing.assert_array_equal(counts, np.bincount(q, minlength=n_queues))
    times[3] = np.nan  # not a number: the three sorts, which put it last in its queue
    counts = np.zeros(n_queues, dtype=np.int64)
    order = k._arrival_order(q, cases, times, n_queues, counts)
    o = np.argsort(cases, kind="mergesort")
    o = o[np.argsort(times[o], kind="mergesort")]
    np.testing.assert_array_equal(order, o[np.argsort(q[o], kind="mergesort")])


@pytest.mark.parametrize("compiled", _copies())
def test_heap_pops_rows_in_key_order(compiled):
    """Rows pushed in random order (ties in the key, broken by the join order) pop sorted, the row intact."""
    k = jit.kernels(compiled)
    rng = np.random.default_rng(3)
    n = 300
    rows = np.zeros((n, ROW))
    rows[:, 0] = -rng.integers(0, 3, n)
    rows[:, 1] = rng.integers(0, 20, n)
    rows[:, 2] = rng.uniform(0, 1, n).round(1)
    rows[:, 3] = rng.permutation(n) + 1
    rows[:, 4:] = rng.uniform(0, 9, (n, 3))
    h = np.zeros((n + 5, ROW))
    off, length = 5, 0
    for r in rows:
        length = k._push_row(h, off, length, r.copy())
    out = np.empty(ROW)
    popped = []
    while length:
        length = k._pop_row(h, off, length, out)
        popped.append(out.copy())
    expected = rows[np.lexsort((rows[:, 3], rows[:, 2], rows[:, 1], rows[:, 0]))]
    np.testing.assert_array_equal(np.array(popped), expected)


@pytest.mark.skipif(not jit.numba_available(), reason="numba is not installed")
@pytest.mark.parametrize("name", ["default.yaml", "zzic.yaml"])
def test_compiled_utilities_equal_the_array_ones(name, monkeypatch):
    """The compiled copy's utilities (sim.kernels.action_utilities) and sign-for exponents
    (sim.kernels.unsigned_exponent) are the numpy ones exactly, on the state of a run (loads, beliefs,
    relays, bounces, threats), with pressure and with edge cases (no record, a tiny late record, the last
    bounce)."""
    from sim.model import GovernanceModel
    from sim.scenario import load_scenario
    from tests.conftest import ROOT

    monkeypatch.setenv(jit.ENV, "1")
    sc = load_scenario(ROOT / "scenarios" / name).with_overrides({"run.days": 12.0, "run.warmup_days": 1.0},
                                                                  source="utilities test")
    m = GovernanceModel(sc, seed=3)
    m.run()
    choice, t, cs = m.choice, m.departments, m.cases
    assert choice._kernel_up_to == np.inf
    ids = np.arange(cs.n, dtype=np.int64)
    rng = np.random.default_rng(0)
    cs.bounced[ids[::7]] = m.settings.platform.max_bounces
    t.committed[rng.integers(0, len(t), 5)] = 0.0  # no record
    t.late_den[rng.integers(0, len(t), 5)] = 1e-310  # tiny, positive
    for pressure in (0.0, 0.7):
        fast = choice.utilities(ids, pressure)
        choice._kernel_up_to = -1  # the array code
        try:
            slow = choice.utilities(ids, pressure)
        finally:
            choice._kernel_up_to = np.inf
        np.testing.assert_array_equal(fast, slow)
        # the plain copy's loop (used for a few cases) gives the same values too
        choice._kernel, compiled_kernel = jit.kernels(False).action_utilities, choice._kernel
        try:
            np.testing.assert_array_equal(choice.utilities(ids[:40], pressure), slow[:40])
        finally:
            choice._kernel = compiled_kernel
    assert t.relay[cs.dept[ids]].any() or name == "default.yaml"
    # the exponent of the chance to sign for a case at once (sign_now), as the array code computes it
    from sim.cases import Violation

    s = m.settings.departments
    t.sanctions[rng.integers(0, len(t), 5), int(Violation.UNSIGNED)] = 10.0  # some above the effort of signing
    threat = cs.tattle[ids] | cs.collective[ids]
    e = t.expected_sanction(cs.dept[ids], Violation.UNSIGNED, threat)
    slow = -np.maximum(e - s.sign_effort, 0.0) / s.choice_noise
    fast = m.kernels.unsigned_exponent(ids, cs.dept, cs.tattle, cs.collective, t.committed, t.sanctions,
                                       int(Violation.UNSIGNED), float(s.sign_effort), float(s.choice_noise))
    assert (slow < 0).any()
    np.testing.assert_array_equal(fast, slow)
    plain = jit.kernels(False).unsigned_exponent(ids, cs.dept, cs.tattle, cs.collective, t.committed, t.sanctions,
                                                  int(Violation.UNSIGNED), float(s.sign_effort), float(s.choice_noise))
    np.testing.assert_array_equal(plain, slow)


def _reference_arrivals(q, cases, times, work, due, boost, mode, n_queues, hlen, hcap):
    """prepare_arrivals by its definition: three stable sorts, queue_key per arrival, offsets, short queues."""
    from sim.kernels import queue_key

    order = np.lexsort((cases, times, q))
    keys = np.array([queue_key(int(mode[q[j]]), times[j], due[j], int(boost[j]), work[j]) for j in order],
                    dtype=np.float64).reshape(len(order), 3)
    counts = np.bincount(q, minlength=n_queues).astype(np.int64)
    a_off = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    used = np.flatnonzero(counts)
    short = used[hlen[used] + counts[used] + 1 > hcap[used]]
    return q[order], cases[order], times[order], work[order], boost[order], keys, a_off, counts, short


@pytest.mark.parametrize("compiled", _copies())
@pytest.mark.parametrize("seed", range(8))
def test_prepare_arrivals_few_and_many(compiled, seed):
    """prepare_arrivals (both copies; the plain one's way for a few arrivals, for one queue and the general
    one) against its definition: every discipline, ties in time, a case listed twice, short queues."""
    k = jit.kernels(compiled)
    rng = np.random.default_rng(seed)
    n_queues = [1, 2, 7, 30][seed % 4]
    for n in (1, 2, 3, 5, 8, 9, 20):
        q = rng.integers(0, n_queues, n).astype(np.int64)
        cases = rng.integers(0, max(n - 1, 1), n).astype(np.int64)
        times = np.round(rng.uniform(0, 2, n), 1)
        times[rng.random(n) < 0.2] = -0.0 if seed % 2 else 0.0
        work, due = rng.uniform(0, 5, n), rng.uniform(0, 50, n)
        boost = rng.integers(0, 3, n).astype(np.int8)
        mode = rng.integers(0, 4, n_queues).astype(np.int64)
        hlen = rng.integers(0, 5, n_queues).astype(np.int64)
        hcap = hlen + rng.integers(0, 6, n_queues)
        active = np.zeros(n_queues, dtype=bool)
        got = k.prepare_arrivals(q, cases, times, work, due, boost, mode, n_queues, hlen, hcap, active)
        want = _reference_arrivals(q, cases, times, work, due, boost, mode, n_queues, hlen, hcap)
        for g, w in zip(got, want, strict=True):
            assert g.dtype == w.dtype
            np.testing.assert_array_equal(g, w)
            assert not np.signbit(got[5][:, 0][got[5][:, 0] == 0]).any()  # 0.0 for no boost, never -0.0
        np.testing.assert_array_equal(active, np.bincount(q, minlength=n_queues) > 0)
