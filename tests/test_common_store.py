"""common.store: the writer and the reader agree, interrupted stores read back their committed batches,
and a corrupt store gives a StoreError naming the file."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

import analysis
import experiments
from common.store import (
    MANIFEST,
    PENDING,
    ResultStore,
    StoreError,
    committed_run_ids,
    latest_rows,
    load_tables,
    part_id,
    read_tables,
)
from sim.errors import WenzhengError

MANIFEST_DATA = {"spec": {"name": "t"}, "spec_hash": "abc123", "spec_path": "t.yaml", "git_commit": None,
                 "versions": {"python": "3"}, "scenarios": {"a": {}, "b": {}}, "design": {"type": "none",
                 "parameters": []}, "kpis": ["response_rate"], "baseline": "a", "days": 5, "warmup_days": 0,
                 "created": "2024-01-01T00:00:00+00:00"}
ORDER = {f"{s}__p0000__r{r:03d}": i for i, (s, r) in enumerate((s, r) for s in "ab" for r in range(2))}


def _batch(scenario: str, replication: int, status: str = "ok", value: float = 0.5):
    run_id = f"{scenario}__p0000__r{replication:03d}"
    row = {"run_id": run_id, "scenario": scenario, "point": 0, "replication": replication, "seed": 10 + replication,
           "status": status, "error": "" if status == "ok" else "boom", "wall_s": 0.25, "worker": "w:1"}
    ids = {"run_id": run_id, "scenario": scenario, "point": 0, "replication": replication}
    summary = pd.DataFrame({"kpi": ["response_rate"], "value": [value], "group_by": ["all"], "group": ["all"]})
    ts = pd.DataFrame({"day": [0, 1], "metric": ["backlog", "backlog"], "value": [1.0, 2.0]})
    if status != "ok":
        return [row], None, None
    return [row], summary.assign(**ids), ts.assign(**ids)


def _new_store(root) -> ResultStore:
    return ResultStore.open(root, dict(MANIFEST_DATA), False, ORDER, [])


def test_round_trip_writer_to_both_readers(tmp_path):
    store = _new_store(tmp_path / "s")
    for i, (s, r) in enumerate([("b", 1), ("a", 0), ("a", 1), ("b", 0)]):
        store.commit(i, *_batch(s, r, value=0.1 * (i + 1)))
    store.finish({"wall_s": 1.5, "run_wall_s": 1.0})
    assert not (tmp_path / "s" / PENDING).exists()

    tables = load_tables(tmp_path / "s")
    assert list(tables["runs"]["run_id"]) == list(ORDER)  # canonical order, whatever the batch order
    assert tables["manifest"]["timings"]["wall_s"] == 1.5
    assert list(tables["summary"]["run_id"]) == list(ORDER)
    assert tables["summary"].set_index("run_id").loc["b__p0000__r001", "value"] == pytest.approx(0.1)
    assert len(tables["timeseries"]) == 8 and set(tables["timeseries"]["metric"]) == {"backlog"}

    loaded = analysis.load_store(tmp_path / "s")
    assert loaded.scenarios == ["a", "b"] and len(loaded.ok_runs) == 4 and not loaded.notes
    assert loaded.summary["value"].sum() == pytest.approx(tables["summary"]["value"].sum())


def test_pending_batches_are_read_and_uncommitted_ones_ignored(tmp_path):
    root = tmp_path / "s"
    store = _new_store(root)
    store.consolidate_every_s = math.inf  # never consolidate: everything stays pending, as after a kill
    store.commit(0, *_batch("a", 0, value=0.3))
    store.commit(1, *_batch("a", 1, status="failed"))
    # a batch killed before its commit mark: a summary part without its runs part
    orphan = _batch("b", 0)[1]
    orphan.to_parquet(root / PENDING / "summary-000007.parquet", index=False)
    tables = read_tables(root)
    assert tables.pending == 2
    assert set(tables.runs["run_id"]) == {"a__p0000__r000", "a__p0000__r001"}
    assert list(tables.summary["run_id"]) == ["a__p0000__r000"]  # the orphan part does not count
    assert committed_run_ids(root) == {"a__p0000__r000", "a__p0000__r001"}
    loaded = analysis.load_store(root)
    assert len(loaded.failed) == 1 and any("not yet consolidated" in n for n in loaded.notes)

    # resume: the orphan part is removed, the failed run is retried and replaces its first attempt
    again = ResultStore.open(root, dict(MANIFEST_DATA, created="later"), True, ORDER, [])
    assert not (root / PENDING / "summary-000007.parquet").exists()
    assert again.ok_run_ids() == {"a__p0000__r000"} and again.next_batch_id == 2
    again.commit(again.next_batch_id, *_batch("a", 1, value=0.9))
    again.finish({"wall_s": 1.0})
    runs = load_tables(root)["runs"]
    assert len(runs) == 2 and set(runs["status"]) == {"ok"}


def test_resume_with_another_spec_is_refused(tmp_path):
    _new_store(tmp_path / "s").commit(0, *_batch("a", 0))
    with pytest.raises(StoreError, match="different spec"):
        ResultStore.open(tmp_path / "s", dict(MANIFEST_DATA, spec_hash="zzz"), True, ORDER, [])
    with pytest.raises(StoreError, match="--resume"):
        _new_store(tmp_path / "s")


def test_corrupt_manifest_names_the_file(tmp_path):
    store = _new_store(tmp_path / "s")
    store.commit(0, *_batch("a", 0))
    store.finish({})
    (tmp_path / "s" / MANIFEST).write_text('{"spec": ', encoding="utf-8")
    with pytest.raises(StoreError) as exc:
        read_tables(tmp_path / "s")
    assert str(tmp_path / "s" / MANIFEST) in str(exc.value) and "corrupt JSON at line 1" in str(exc.value)
    (tmp_path / "s" / MANIFEST).write_text(json.dumps(dict(MANIFEST_DATA, days="five")), encoding="utf-8")
    with pytest.raises(StoreError, match="key 'days' must be int or float, found str"):
        load_tables(tmp_path / "s")


def test_corrupt_parquet_and_missing_files_name_the_file(tmp_path):
    store = _new_store(tmp_path / "s")
    store.commit(0, *_batch("a", 0))
    store.finish({})
    runs = tmp_path / "s" / "runs.parquet"
    runs.write_bytes(b"PAR1 torn by a kill")
    with pytest.raises(StoreError) as exc:
        read_tables(tmp_path / "s")
    assert str(runs) in str(exc.value) and "unreadable Parquet" in str(exc.value)
    runs.unlink()
    with pytest.raises(StoreError, match=r"runs\.parquet: missing"):
        read_tables(tmp_path / "s")
    assert load_tables(tmp_path / "s")["runs"].empty  # the tolerant reader of experiments: no runs yet
    with pytest.raises(StoreError, match="no such result store"):
        read_tables(tmp_path / "nowhere")
    assert issubclass(StoreError, WenzhengError)


def test_one_store_error_for_both_sides():
    assert experiments.StoreError is analysis.StoreError is StoreError


def test_latest_rows_keeps_the_last_attempt_and_part_ids():
    first = pd.DataFrame({"run_id": ["x", "y"], "value": [1.0, 2.0]})
    retry = pd.DataFrame({"run_id": ["x"], "value": [3.0]})
    out = latest_rows([first, retry], ["run_id", "value"])
    assert sorted(zip(out["run_id"], out["value"], strict=True)) == [("x", 3.0), ("y", 2.0)]
    assert list(latest_rows([], ["run_id", "value"]).columns) == ["run_id", "value"]
    assert [part_id(__import__("pathlib").Path(n)) for n in ("runs-000012.parquet", "part-3.parquet", "x.parquet")] \
        == [12, 3, -1]
