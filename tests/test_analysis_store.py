"""Reading a result store: the layout, failed runs, unconsolidated batches, and every kind of broken store."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from fixtures.analysis_stores import write_store

from analysis.store import Store, StoreError, load_store
from sim.errors import WenzhengError


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    return write_store(tmp_path_factory.mktemp("store") / "s", failed=[("mandate_24h", 2)], replications=3, days=4,
                       cases_per_run=20)


def test_reads_a_store_and_sets_failed_runs_aside(store_dir):
    store = load_store(store_dir)
    assert store.scenarios == ["baseline", "mandate_24h", "supervision_high"]
    assert store.baseline == "baseline" and store.design_type == "none"
    assert len(store.runs) == 9 and len(store.ok_runs) == 8
    assert list(store.failed["run_id"]) == ["mandate_24h-p0-r2"]
    assert "ran out of staff" in store.failed["error"].iloc[0]
    assert "mandate_24h-p0-r2" not in set(store.summary["run_id"])
    assert set(store.overall["group"]) == {"all"} and "all" not in set(store.groups["group_by"])
    assert store.wall_s == 12.5
    ts = store.timeseries(["backlog"])
    assert set(ts["metric"]) == {"backlog"} and "mandate_24h-p0-r2" not in set(ts["run_id"])
    assert store.has_cases
    cases = store.cases("baseline-p0-r0", ["created_h", "closed_h"])
    assert list(cases.columns) == ["created_h", "closed_h"] and len(cases) == 20
    assert store.cases("no-such-run") is None


def test_in_memory_store_matches_the_files(store_dir):
    disk = load_store(store_dir)
    mem = Store.from_frames(disk.manifest, pd.read_parquet(store_dir / "runs.parquet"),
                            pd.read_parquet(store_dir / "summary.parquet"))
    assert mem.scenarios == disk.scenarios
    pd.testing.assert_frame_equal(mem.overall, disk.overall)
    assert mem.timeseries().empty and not mem.has_cases


def test_manifest_timings_and_headline_kpis(tmp_path):
    root = write_store(tmp_path / "s", replications=2, days=2, with_cases=False)
    manifest = json.loads((root / "manifest.json").read_text())
    del manifest["wall_s"]
    manifest["timings"] = {"wall_s": 33.0, "sessions": [{"wall_s": 30.0}, {"wall_s": 3.0}]}
    manifest["kpis"] = ["backlog_end", "cost_hours", "response_rate", "reopen_rate", "resolution_rate"]
    (root / "manifest.json").write_text(json.dumps(manifest))
    store = load_store(root)
    assert store.wall_s == 33.0
    assert store.headline_kpis(3) == ["resolution_rate", "response_rate", "cost_hours"]


def test_pending_batches_are_folded_in(tmp_path):
    """An interrupted experiment: runs/summary of a committed batch still in _pending/, and a summary part
    of a batch that never wrote its commit mark (ignored)."""
    root = write_store(tmp_path / "s", scenarios=("baseline", "mandate_24h"), replications=2, days=2,
                       with_cases=False)
    runs = pd.read_parquet(root / "runs.parquet")
    summary = pd.read_parquet(root / "summary.parquet")
    late = runs["replication"] == 1
    (root / "_pending").mkdir()
    runs[late].to_parquet(root / "_pending" / "runs-000003.parquet")
    summary[summary["run_id"].isin(runs.loc[late, "run_id"])].to_parquet(root / "_pending" / "summary-000003.parquet")
    ghost = summary[summary["run_id"] == "baseline-p0-r0"].assign(value=-99.0)
    ghost.to_parquet(root / "_pending" / "summary-000004.parquet")  # no runs-000004: not committed
    runs[~late].to_parquet(root / "runs.parquet")
    summary[~summary["run_id"].isin(runs.loc[late, "run_id"])].to_parquet(root / "summary.parquet")
    store = load_store(root)
    assert len(store.runs) == 4 and len(store.ok_runs) == 4
    assert set(store.summary["run_id"]) == set(runs["run_id"])
    assert (store.summary["value"] != -99.0).all()
    assert any("not yet consolidated" in n for n in store.notes)


def test_a_failed_then_retried_run_counts_once(tmp_path):
    root = write_store(tmp_path / "s", scenarios=("baseline",), replications=2, days=2, with_cases=False)
    runs = pd.read_parquet(root / "runs.parquet")
    first = runs.assign(status="failed", error="killed")
    pd.concat([first, runs]).to_parquet(root / "runs.parquet")
    store = load_store(root)
    assert len(store.runs) == 2 and store.failed.empty


# ---------------------------------------------------------------------------------------------- errors
def test_missing_directory(tmp_path):
    with pytest.raises(StoreError, match="no such result store") as exc:
        load_store(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(exc.value)
    assert isinstance(exc.value, WenzhengError)


def test_a_file_is_not_a_store(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(StoreError, match="is a file"):
        load_store(tmp_path / "f")


def test_missing_manifest(tmp_path):
    root = write_store(tmp_path / "s", replications=1, days=1, with_cases=False)
    (root / "manifest.json").unlink()
    with pytest.raises(StoreError, match=r"manifest\.json: missing"):
        load_store(root)


@pytest.mark.parametrize(("text", "message"), [
    ('{"spec": {"name": "x"', r"manifest\.json: corrupt JSON at line 1"),
    ("[1, 2]", "must be a JSON object, found list"),
    ('{"scenarios": ["a"]}', "key 'scenarios' must be dict, found list"),
    ('{"design": {"type": "fractal"}}', "key 'design.type' is 'fractal', allowed: none, grid"),
    ('{"design": {"type": "grid", "parameters": [{"low": 1}]}}', "design.parameters"),
])
def test_corrupt_manifest(tmp_path, text, message):
    root = write_store(tmp_path / "s", replications=1, days=1, with_cases=False)
    (root / "manifest.json").write_text(text)
    with pytest.raises(StoreError, match=message):
        load_store(root)


def test_unreadable_parquet_names_the_file(tmp_path):
    root = write_store(tmp_path / "s", replications=1, days=1, with_cases=False)
    (root / "runs.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(StoreError, match=r"runs\.parquet: unreadable Parquet"):
        load_store(root)


def test_missing_runs_and_summary(tmp_path):
    root = write_store(tmp_path / "s", replications=1, days=1, with_cases=False)
    (root / "summary.parquet").unlink()
    with pytest.raises(StoreError, match=r"summary\.parquet: missing, but runs\.parquet lists finished runs"):
        load_store(root)
    (root / "runs.parquet").unlink()
    with pytest.raises(StoreError, match=r"runs\.parquet: missing"):
        load_store(root)


def test_missing_column_is_named(tmp_path):
    root = write_store(tmp_path / "s", replications=1, days=1, with_cases=False)
    pd.read_parquet(root / "summary.parquet").drop(columns=["kpi"]).to_parquet(root / "summary.parquet")
    with pytest.raises(StoreError, match=r"summary\.parquet: missing column\(s\) kpi"):
        load_store(root)


def test_corrupt_timeseries_part_is_reported_when_read(tmp_path):
    root = write_store(tmp_path / "s", replications=1, days=1, with_cases=False)
    (root / "timeseries" / "part-0.parquet").write_bytes(b"garbage")
    store = load_store(root)
    with pytest.raises(StoreError, match=r"part-0\.parquet: unreadable Parquet"):
        store.timeseries()
