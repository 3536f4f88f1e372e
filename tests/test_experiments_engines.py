"""Engines: batching, the Executor seam, and work lost to dead workers never being dropped."""

from __future__ import annotations

import os
import subprocess
import sys
import time

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


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie has finished
    except (FileNotFoundError, ProcessLookupError):  # reaped before the open, or between the open and the read
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_local_workers_do_not_outlive_a_killed_main_process():
    """SIGKILL of the main process alone (no chance to clean up): its pool workers end by themselves."""
    code = (
        "import os, sys, time\n"
        "from experiments.engines import LocalEngine\n"
        "ex = LocalEngine(workers=2, preload=()).executor\n"
        "futures = [ex.submit(time.sleep, 120) for _ in range(2)]\n"
        "time.sleep(0.5)\n"
        "print(' '.join(str(p) for p in ex._processes), flush=True)\n"
        "time.sleep(120)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) == 2 and not any(_gone(p) for p in pids)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    deadline = time.monotonic() + 20
    while not all(_gone(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(_gone(p) for p in pids), "pool workers kept running after their main process was killed"
