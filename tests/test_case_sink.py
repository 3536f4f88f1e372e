"""Long runs hand settled cases on: the case sink, the released store rows, the result's tally, the writer.

A run with a case sink must give exactly the result of the same run without one (the table the pieces make,
the KPIs, the splits, the time series), and must never read a store row it released: in these tests released
rows are overwritten with impossible values (``CaseStore.POISON``), so a stray read would change the result.
"""

from __future__ import annotations

import math
import mmap

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from common.store import CaseHistograms, case_histograms
from experiments.single import CaseWriter, run_to_dir
from sim import CASE_COLUMNS, load_scenario, metrics, run_scenario
from sim.cases import CaseStore
from sim.metrics import SPLITS, CaseTally, StoreCases, _q_runs
from sim.model import GovernanceModel


def _same_summary(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for k in a:
        assert a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])), k


@pytest.fixture(scope="module")
def long_zzic():
    """The ZZIC city for 200 days (past the look-back of the audits), without a sink and with one that takes
    pieces as soon as 300 cases are settled, the released rows poisoned."""
    sc = load_scenario("scenarios/zzic.yaml", {"run.days": 200})
    plain = run_scenario(sc)
    pieces: list[pd.DataFrame] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(CaseStore, "POISON", True)
        mp.setattr(GovernanceModel, "HAND_OFF_ROWS", 300)
        model = GovernanceModel(sc, case_sink=pieces.append)
        model.run()
        released = model.cases.released
        sunk = model.result(final=True)
    return plain, sunk, pieces, released


def test_the_sink_gets_the_whole_table_in_order_and_the_result_is_the_same(long_zzic):
    plain, sunk, pieces, released = long_zzic
    assert released > 5_000  # most of the run's cases were released before its end
    assert len(pieces) > 10
    assert_frame_equal(pd.concat(pieces, ignore_index=True), plain.cases, check_exact=True)
    _same_summary(plain.summary, sunk.summary)
    assert_frame_equal(plain.timeseries, sunk.timeseries, check_exact=True)
    assert_frame_equal(plain.groups, sunk.groups, check_exact=True)
    assert sunk.n_cases == plain.n_cases == sunk.meta["cases"]


def test_a_sunk_result_says_where_its_cases_went(long_zzic):
    _, sunk, _, _ = long_zzic
    with pytest.raises(ValueError, match="case sink"):
        _ = sunk.cases
    with pytest.raises(ValueError, match="case sink"):
        next(sunk.case_chunks())


def test_a_model_with_a_sink_gives_only_its_final_result():
    model = GovernanceModel(load_scenario("scenarios/default.yaml", {"run.days": 2}), case_sink=lambda p: None)
    model.run()
    with pytest.raises(ValueError, match="final"):
        model.result()


def test_a_run_without_cases_hands_one_empty_piece():
    pieces = []
    res = run_scenario(load_scenario("scenarios/default.yaml", {"run.days": 1, "run.warmup_days": 0,
                                                                  "demand.problems_per_citizen_year": 0.0}),
                       case_sink=pieces.append)
    assert len(pieces) == 1 and len(pieces[0]) == 0 and res.n_cases == 0


def test_the_tally_does_not_depend_on_how_the_cases_are_cut():
    model = GovernanceModel(load_scenario("scenarios/zzic.yaml", {"run.days": 30}))
    model.run()
    src = StoreCases(model)
    whole, cut = CaseTally(model.end_h, 24.0), CaseTally(model.end_h, 24.0)
    whole.add(src.arrays(), src.cells())
    for lo in range(0, len(src), 977):
        hi = min(lo + 977, len(src))
        cut.add(src.arrays(lo, hi), src.cells(lo, hi))
    assert (whole.counts == cut.counts).all()
    for split in [None, *range(len(SPLITS))]:
        groups = [None] if split is None else range(len(SPLITS[split][1]))
        for g in groups:
            _same_summary(whole.kpis(split, g), cut.kpis(split, g))
    assert whole.kpis()["cases"] == len(src) == sum(whole.group_sizes(0))
    piece = src.piece(0, 977, copy=True)  # the table's columns in order, none sharing memory with the store
    assert tuple(piece.columns) == CASE_COLUMNS and len(piece) == 977
    for column, store in (("created_h", "created"), ("urban", "urban"), ("reopened", "reopened")):
        assert not np.shares_memory(piece[column].to_numpy(), getattr(model.cases, store))
    for column in ("status", "category", "channel"):
        assert not np.shares_memory(piece[column].cat.codes.to_numpy(), getattr(model.cases, column))
    shared = src.piece(0, 977, copy=False)  # without copy, columns taken as they are share the store's memory
    assert np.shares_memory(shared["created_h"].to_numpy(), model.cases.created)
    assert_frame_equal(piece, shared)


@pytest.mark.parametrize("merge_up_to", [0, metrics.MERGE_UP_TO], ids=["bisection", "merge"])
def test_the_tally_reads_the_quantiles_numpy_gives_bit_for_bit_and_sorts_again_after_more_cases(monkeypatch,
                                                                                               merge_up_to):
    monkeypatch.setattr(metrics, "MERGE_UP_TO", merge_up_to)  # both ways of finding the values
    rng = np.random.default_rng(7)
    for n in (1, 2, 3, 10, 11, 101, 2_000):
        for x in (rng.exponential(30.0, n), np.round(rng.exponential(30.0, n), 1), rng.integers(0, 4, n) * 1.5,
                  rng.random(n) * 1e6 + 1e9):
            for q in ((0.5, 0.9), (0.5,), (0.0, 1.0), (0.1, 0.25, 0.75, 0.99)):
                want = np.quantile(x, q)
                s = np.sort(x)
                got = np.array(_q_runs(s, [s], *q))
                assert (got.view(np.int64) == want.view(np.int64)).all(), (n, q)
    for _ in range(300):  # several sorted runs (a group's cells) within all values (other groups', NaN and inf)
        runs = [np.sort(rng.choice([rng.exponential(30.0, k), rng.integers(0, 3, k) * 1.0]))
                for k in rng.integers(0, 40, rng.integers(1, 6))]
        others = np.concatenate([rng.exponential(30.0, 20), [np.inf, np.nan][: rng.integers(0, 3)]])
        everything = np.sort(np.concatenate([*runs, others]))
        if rng.random() < 0.5:  # a sparser grid: a sample of the runs with their largest
            everything = np.sort(np.concatenate([*(r[::3] for r in runs), *(r[-1:] for r in runs), others[:2]]))
        values = np.concatenate(runs)
        for q in ((0.5, 0.9), (0.0, 1.0)):
            got = np.array(_q_runs(everything, runs, *q))
            if len(values):
                assert (got.view(np.int64) == np.quantile(values, q).view(np.int64)).all(), q
            else:
                assert np.isnan(got).all()
    x = rng.exponential(30.0, 50)
    x[7] = np.nan
    assert all(math.isnan(v) for v in _q_runs(np.sort(x), [np.sort(x)], 0.5, 0.9))
    assert all(math.isnan(v) for v in _q_runs(np.sort(x), [np.sort(x[:10]), np.sort(x[10:])], 0.5, 0.9))
    assert all(math.isnan(v) for v in _q_runs(np.zeros(0), [np.zeros(0)], 0.5, 0.9))
    # kpis between additions: the spans sorted for the first call take the later cases in
    model = GovernanceModel(load_scenario("scenarios/zzic.yaml", {"run.days": 30}))
    model.run()
    src = StoreCases(model)
    whole, cut = CaseTally(model.end_h, 24.0), CaseTally(model.end_h, 24.0)
    whole.add(src.arrays(), src.cells())
    half = len(src) // 2
    cut.add(src.arrays(0, half), src.cells(0, half))
    with whole.sorted_spans(), cut.sorted_spans():
        cut.kpis(0, 1)
        cut.add(src.arrays(half), src.cells(half))
        for split in [None, *range(len(SPLITS))]:
            for g in [None] if split is None else range(len(SPLITS[split][1])):
                a, b = whole.kpis(split, g), cut.kpis(split, g)
                _same_summary(a, b)
                for k in ("median_response_h", "p90_response_h", "median_close_h", "p90_close_h", "median_relay_h"):
                    assert np.float64(a[k]).view(np.int64) == np.float64(b[k]).view(np.int64), k
                assert a == whole.kpis(split, g) or math.isnan(a["median_relay_h"])  # held: the same again
    assert not whole._by_cell and not cut._by_cell  # released


def test_release_returns_pages_and_the_store_searches_from_released_rows():
    cs = CaseStore(capacity=100_000)
    ids = cs.add(created=np.arange(100_000, dtype=float))
    assert cs.created_since(500.0) == 500
    cs.release(60_000)
    assert cs.released == 60_000
    if hasattr(mmap, "MADV_DONTNEED"):  # pages went back to the system: the old rows read as fresh zeros
        assert cs.created[1_000] == 0.0 and cs.created[59_000] == 0.0
    assert cs.created_since(70_000.5) == 70_001
    assert cs.created_since(10.0) == 60_000  # nothing released is searched
    assert (cs.created[60_000:] == ids[60_000:]).all()  # rows after the released ones are intact
    cs.add(created=np.full(200_000, 1e6))  # growing copies only the rows not released
    assert cs.capacity >= 300_000 and cs.created[99_999] == 99_999.0 and cs.created[cs.n - 1] == 1e6


def test_the_writer_and_run_to_dir_write_the_table_of_a_run_without_a_sink(tmp_path):
    sc = load_scenario("scenarios/default.yaml", {"run.days": 20})
    plain = run_scenario(sc)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(GovernanceModel, "HAND_OFF_ROWS", 50)
        mp.setattr(GovernanceModel, "look_back_h", lambda self: 5 * 24.0)  # hand off within 20 days
        mp.setattr(CaseStore, "POISON", True)
        res = run_to_dir(sc, tmp_path / "run")
    back = pd.read_parquet(tmp_path / "run" / "cases.parquet")
    assert_frame_equal(back, plain.cases, check_exact=True)
    _same_summary(res.summary, plain.summary)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "cases.parquet", "groups.parquet", "summary.json", "timeseries.parquet"]
    with CaseWriter(tmp_path / "two.parquet") as w:
        for piece in plain.case_chunks(1_000):
            w(piece)
    assert w.rows == plain.n_cases
    assert_frame_equal(pd.read_parquet(tmp_path / "two.parquet"), plain.cases, check_exact=True)


def test_histograms_added_piece_by_piece_equal_the_whole_tables():
    res = run_scenario(load_scenario("scenarios/default.yaml", {"run.days": 10}))
    hist = CaseHistograms()
    for piece in res.case_chunks(333):
        hist(piece)
    assert hist.pieces > 1
    assert_frame_equal(hist.frame(), case_histograms(res.cases))
