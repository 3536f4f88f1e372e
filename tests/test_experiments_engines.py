"""Engines: batching, the Executor seam, and work lost to dead workers never being dropped."""

from __future__ import annotations

import os
import sys

import pytest

from experiments.engines import (
    Batcher,
    DaskEngine,
    EngineError,
    LocalEngine,
    SerialEngine,
    execute,
    make_engine,
)


def double_or_die(items: list) -> list:
    """Worker function: doubles numbers; the item "die" kills the worker process outright."""
    out = []
    for x in items:
        if x == "die":
            os._exit(3)
        out.append(2 * x)
    return out


def collect(engine, items, batch_size=None):
    results, lost, batches = {}, [], []

    def on_result(batch, out):
        batches.append(list(batch.items))
        results.update(zip(batch.items, out, strict=True))

    def on_lost(batch, reason):
        lost.append((list(batch.items), reason))

    with engine:
        execute(engine, double_or_die, Batcher(items, engine.capacity(), batch_size), on_result, on_lost)
    return results, lost, batches


def test_batcher_sizes():
    fixed = Batcher(range(10), workers=2, batch_size=4)
    assert [len(fixed.next()) for _ in range(3)] == [4, 4, 2]
    auto = Batcher(range(1000), workers=2, target_s=0.5)
    assert len(auto.next()) == 1  # nothing known yet
    auto.observe(10, 0.1)  # 10 ms a run -> about 50 runs make half a second
    assert len(auto.next()) == 50
    auto.observe(1, 100.0)  # slow runs -> one at a time
    assert auto.size() == 1
    tail = Batcher(range(6), workers=2, target_s=10.0)
    tail.observe(1, 0.001)
    assert tail.size() == 1  # few runs left: spread them over the workers


def test_serial_engine_runs_everything_in_order():
    results, lost, batches = collect(SerialEngine(), list(range(7)), batch_size=3)
    assert results == {i: 2 * i for i in range(7)} and not lost
    assert batches == [[0, 1, 2], [3, 4, 5], [6]]


def test_dead_local_worker_loses_only_its_run():
    """A worker that dies takes its pool down; the innocent runs are retried, the killer is reported."""
    items = [1, 2, "die", 4, 5]
    results, lost, _ = collect(LocalEngine(workers=2, preload=()), items, batch_size=2)
    assert results == {x: 2 * x for x in items if x != "die"}
    assert len(lost) == 1 and lost[0][0] == ["die"]
    assert "worker process died" in lost[0][1]


def test_make_engine_choices():
    assert isinstance(make_engine("serial"), SerialEngine)
    local = make_engine("local", workers=3)
    assert isinstance(local, LocalEngine) and local.workers == 3
    assert make_engine("local").workers == (os.cpu_count() or 1)
    with pytest.raises(EngineError, match="allowed engines"):
        make_engine("slurm")
    with pytest.raises(EngineError, match="at least 1"):
        make_engine("local", workers=0)


def test_dask_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(EngineError, match=r"pip install '\.\[dask\]'"):
        make_engine("dask")
    with pytest.raises(EngineError, match="not installed"):
        make_engine("local", scheduler="tcp://127.0.0.1:8786")  # a scheduler address implies Dask


def test_dask_engine_through_the_same_seam():
    pytest.importorskip("distributed")
    results, lost, _ = collect(DaskEngine(workers=2, processes=False), list(range(9)), batch_size=2)
    assert results == {i: 2 * i for i in range(9)} and not lost
