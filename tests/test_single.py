"""One run's outputs: the cases table handed out in pieces, written piece by piece, and the four files of
``python run.py run``."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from common.store import case_histograms
from experiments.single import write_cases, write_run
from sim import RunResult, load_scenario, run_scenario
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def run():
    scenario = load_scenario(ROOT / "scenarios" / "zzic.yaml").with_overrides(
        {"run.days": 12.0, "run.warmup_days": 2.0}, source="zzic for the output tests")
    return scenario, run_scenario(scenario, seed=3)


def test_pieces_concatenate_to_the_whole_table(run):
    _, result = run
    pieces = list(result.case_chunks(rows=500))
    assert len(pieces) == -(-result.n_cases // 500) > 2
    assert all(len(p) <= 500 for p in pieces)
    whole = pd.concat(pieces, ignore_index=True)
    pd.testing.assert_frame_equal(whole, result.cases.reset_index(drop=True), check_exact=True)
    for col in ("category", "department", "holder", "handling_level", "status"):
        assert all(list(p[col].cat.categories) == list(result.cases[col].cat.categories) for p in pieces), col


def test_the_cases_file_is_written_piece_by_piece_and_reads_back_exactly(run, tmp_path):
    _, result = run
    path = tmp_path / "cases.parquet"
    assert write_cases(result, path, rows=700) == result.n_cases
    assert pq.ParquetFile(path).num_row_groups == -(-result.n_cases // 700)
    pd.testing.assert_frame_equal(pd.read_parquet(path), result.cases.reset_index(drop=True), check_exact=True)


def test_histograms_from_pieces_equal_those_of_the_whole_table(run):
    _, result = run
    whole = case_histograms(result.cases)
    assert whole["count"].sum() > 0
    pd.testing.assert_frame_equal(case_histograms(result.case_chunks(rows=333)), whole)


def test_write_run_writes_the_four_files(run, tmp_path):
    scenario, result = run
    out = write_run(result, scenario, tmp_path / "run")
    assert sorted(p.name for p in out.iterdir()) == ["cases.parquet", "groups.parquet", "summary.json",
                                                    "timeseries.parquet"]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["kpis"].keys() == result.summary.keys()
    assert all(v is None or v == pytest.approx(result.summary[k]) for k, v in summary["kpis"].items())
    assert len(pd.read_parquet(out / "timeseries.parquet")) == len(result.timeseries)


def test_an_empty_table_still_gives_a_file_with_its_columns(tmp_path):
    empty = pd.DataFrame({"case_id": pd.Series([], dtype="int64"), "created_h": pd.Series([], dtype=float)})
    result = RunResult(cases=empty, timeseries=pd.DataFrame(), summary={})
    assert write_cases(result, tmp_path / "c.parquet") == 0
    assert list(pd.read_parquet(tmp_path / "c.parquet").columns) == ["case_id", "created_h"]


def test_a_result_needs_its_cases_or_a_source():
    with pytest.raises(ValueError, match="cases table or a source"):
        RunResult(timeseries=pd.DataFrame(), summary={})
    with pytest.raises(ValueError, match="at least 1"):
        next(RunResult(cases=pd.DataFrame()).case_chunks(0))
