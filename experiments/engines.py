"""Where runs execute: in-process, a local process pool, or a Dask cluster — one Executor seam.

Every engine hands out a :class:`concurrent.futures.Executor` (``ProcessPoolExecutor``, Dask's
``Client.get_executor()``, or :class:`SerialExecutor` for debugging and tests). :func:`execute` feeds it
batches of work items (several runs per task, so that short runs do not drown in overhead), keeps a bounded
number of tasks in flight (memory stays bounded), and hands every finished batch to a callback.

Lost work is never dropped silently. When a worker process dies (``BrokenProcessPool`` on the local engine,
``KilledWorker`` after Dask's own retries), the runs of the affected batches are retried one by one, in
isolation; a run that kills its worker again is reported through ``on_lost`` (the runner records it as
failed) and the rest go on. On the local engine an isolated run executes alone in a fresh pool, so an
innocent run is never blamed for a neighbour's crash.
"""

from __future__ import annotations

import abc
import logging
import math
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from sim.errors import WenzhengError

ENGINES = ("local", "dask", "serial")


class EngineError(WenzhengError):
    """An engine cannot be started (Dask missing, scheduler unreachable, bad worker count)."""


class SerialExecutor(Executor):
    """Runs each task at once, in this process (``--engine serial``; for debugging and tests)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
            if isinstance(exc, KeyboardInterrupt):
                raise
            future.set_exception(exc)
        return future


def _worker_init() -> None:
    """Local pool workers leave Ctrl-C to the main process, which stops the experiment cleanly, and end
    themselves when the main process is gone (even after a SIGKILL), so that no orphan keeps computing."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent,), name="exit-with-parent", daemon=True).start()


def _exit_with(parent: Any) -> None:
    parent.join()  # returns when the process that started this worker has ended
    os._exit(1)


class Engine(abc.ABC):
    """Base class: owns an executor and knows how its workers die."""

    name = "engine"
    #: seconds of work a batch should carry once run times are known: it amortises the per-task overhead,
    #: above all the store's commit of each finished batch in the main process (four small Parquet files,
    #: each fsynced); the Batcher still caps a batch at half a worker's share of what is left
    target_batch_s = 2.0
    #: isolated retries must run alone (True where one crash takes every in-flight task down with it)
    isolate_alone = False

    def __init__(self, workers: int = 1) -> None:
        self.workers = max(1, int(workers))
        self._executor: Executor | None = None

    @abc.abstractmethod
    def start(self) -> Executor:
        """Create this engine's executor (called once, on first use)."""

    @property
    def executor(self) -> Executor:
        if self._executor is None:
            self._executor = self.start()
        return self._executor

    def capacity(self) -> int:
        """Tasks that can run at once (workers × threads)."""
        return self.workers

    def is_worker_death(self, exc: BaseException) -> bool:
        return False

    def restart(self) -> Executor:
        """A fresh executor after the old one broke (local pool only)."""
        self.close()
        self._executor = self.start()
        return self._executor

    def abort(self) -> None:
        """Stop at once (Ctrl-C): cancel queued tasks and stop the workers this engine started."""
        self.close(cancel=True)

    def close(self, cancel: bool = False) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=not cancel, cancel_futures=cancel)
            self._executor = None

    def describe(self) -> str:
        return f"{self.name} ({self.workers} worker{'s' if self.workers != 1 else ''})"

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class SerialEngine(Engine):
    name = "serial"

    def __init__(self, workers: int | None = None) -> None:
        super().__init__(1)

    def start(self) -> Executor:
        return SerialExecutor()


class LocalEngine(Engine):
    """A ``ProcessPoolExecutor`` on this machine.

    Workers start from a forkserver that has already imported the model (``preload``), so a pool starts in
    a fraction of a second and inherits no threads or locks from the main process.
    """

    name = "local"
    isolate_alone = True

    def __init__(self, workers: int | None = None,
                 preload: Sequence[str] = ("experiments.runner", "sim.model")) -> None:
        super().__init__(workers or os.cpu_count() or 1)
        self._preload = list(preload)

    def start(self) -> Executor:
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        if ctx.get_start_method() == "forkserver" and self._preload:
            ctx.set_forkserver_preload(self._preload)
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=_worker_init)

    def is_worker_death(self, exc: BaseException) -> bool:
        return isinstance(exc, BrokenProcessPool)

    def close(self, cancel: bool = False) -> None:
        ex = self._executor
        if ex is None:
            return
        if cancel:
            procs = list((getattr(ex, "_processes", None) or {}).values())
            ex.shutdown(wait=False, cancel_futures=True)
            for p in procs:  # the worker processes this pool started
                if p.is_alive():
                    p.terminate()
            for p in procs:
                p.join(timeout=5)
        else:
            ex.shutdown(wait=True)
        self._executor = None


class DaskEngine(Engine):
    """Dask distributed: a ``LocalCluster`` started here, or an existing scheduler (``tcp://host:8786``).

    Tasks are retried by Dask (``retries``) and rescheduled when a worker dies; a task whose workers keep
    dying ends in ``KilledWorker``. Workers need this package installed (``pip install '.[dask]'``).
    """

    name = "dask"

    def __init__(self, workers: int | None = None, scheduler: str | None = None, processes: bool = True,
                 retries: int = 2) -> None:
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise EngineError(
                "--engine dask needs Dask distributed, which is not installed; install the extra with "
                "pip install '.[dask]'  (or pip install 'dask[distributed]')") from None
        super().__init__(workers or os.cpu_count() or 1)
        self.scheduler = scheduler
        self.processes = processes
        self.retries = retries
        self._client: Any = None
        self._cluster: Any = None
        self._capacity_checked = 0.0
        self._capacity = self.workers

    def start(self) -> Executor:
        from distributed import Client, LocalCluster

        if self._client is None:
            if self.scheduler:
                try:
                    self._client = Client(self.scheduler, timeout="30s")
                except (OSError, TimeoutError) as exc:
                    raise EngineError(f"--scheduler {self.scheduler}: cannot reach the Dask scheduler ({exc})") from None
            else:
                self._cluster = LocalCluster(
                    n_workers=self.workers, threads_per_worker=1, processes=self.processes,
                    dashboard_address=None, silence_logs=logging.ERROR)
                self._client = Client(self._cluster)
        return self._client.get_executor(retries=self.retries, pure=False)

    def capacity(self) -> int:
        if self._client is None:
            return self.workers
        now = time.monotonic()
        if now - self._capacity_checked > 5.0:
            self._capacity_checked = now
            try:
                self._capacity = max(1, sum(self._client.nthreads().values()))
            except Exception:  # noqa: BLE001 - keep the last known figure if the scheduler is busy
                pass
        return self._capacity

    def is_worker_death(self, exc: BaseException) -> bool:
        try:
            from distributed.scheduler import KilledWorker
        except ImportError:  # pragma: no cover
            return False
        return isinstance(exc, KilledWorker)

    def restart(self) -> Executor:
        return self.executor

    def close(self, cancel: bool = False) -> None:
        ex, self._executor = self._executor, None
        if ex is not None:
            try:
                ex.shutdown(wait=not cancel)
            except Exception:  # noqa: BLE001
                pass
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def describe(self) -> str:
        if self.scheduler:
            return f"dask ({self.scheduler})"
        return f"dask LocalCluster ({self.workers} worker{'s' if self.workers != 1 else ''})"


def make_engine(engine: str = "local", workers: int | None = None, scheduler: str | None = None) -> Engine:
    """The engine named on the command line. ``--scheduler`` implies Dask."""
    if workers is not None and int(workers) < 1:
        raise EngineError(f"--workers must be at least 1, got {workers}")
    if scheduler and engine == "local":
        engine = "dask"
    if engine == "local":
        return LocalEngine(workers)
    if engine == "dask":
        return DaskEngine(workers, scheduler)
    if engine == "serial":
        if scheduler:
            raise EngineError("--scheduler needs --engine dask")
        return SerialEngine()
    raise EngineError(f"--engine {engine!r}: allowed engines are {', '.join(ENGINES)}")


# ------------------------------------------------------------------------------------------ batching
class Batcher:
    """Hands out work items in batches.

    A fixed ``batch_size`` is used as is. Otherwise batches start with one item; once item costs are known
    (:meth:`observe`), a batch carries about ``target_s`` seconds of work, never more than half a worker's
    share of what is left (so the last batches still spread over the workers), and at most 256 items.
    """

    def __init__(self, items: Iterable[Any], workers: int, batch_size: int | None = None,
                 target_s: float = 0.5) -> None:
        self._items = deque(items)
        self.workers = max(1, workers)
        self.fixed = batch_size
        self.target_s = target_s
        self._seconds = 0.0
        self._observed = 0

    def __len__(self) -> int:
        return len(self._items)

    def observe(self, n_items: int, seconds: float) -> None:
        if n_items > 0 and seconds >= 0 and math.isfinite(seconds):
            self._seconds += seconds
            self._observed += n_items

    def size(self) -> int:
        if self.fixed:
            return self.fixed
        if not self._observed:
            return 1
        per_item = max(self._seconds / self._observed, 1e-6)
        wanted = max(1, int(self.target_s / per_item))
        share = max(1, len(self._items) // (2 * self.workers))
        return max(1, min(wanted, share, 256))

    def next(self) -> list[Any]:
        n = min(self.size(), len(self._items))
        return [self._items.popleft() for _ in range(n)]


@dataclass
class Batch:
    """One task's work: ``items`` run in order in one worker. ``isolated``: a retry after a worker death."""

    batch_id: int
    items: list[Any]
    isolated: bool = False
    submitted: float = field(default_factory=time.monotonic)


def execute(
    engine: Engine,
    fn: Callable[[list[Any]], Any],
    batcher: Batcher,
    on_result: Callable[[Batch, Any], None],
    on_lost: Callable[[Batch, str], None],
    prepare: Callable[[list[Any]], Any] | None = None,
    item_seconds: Callable[[Any], float] | None = None,
    first_batch_id: int = 0,
) -> int:
    """Run every item of ``batcher`` through ``fn`` on ``engine``; return the next unused batch id.

    ``fn(prepare(items))`` runs in a worker and returns the batch's result, passed to ``on_result`` in the
    main process as batches finish (in completion order). ``on_lost(batch, reason)`` receives work that
    could not run (its worker died in isolation, or the engine failed the task). ``item_seconds(result)``
    gives the work time of a result (seconds) for adaptive batching. ``prepare`` builds the payload just
    before submission, so that the full list of payloads is never held in memory.
    """
    dispatch = _Dispatch(engine, fn, batcher, on_result, on_lost, prepare or (lambda items: items), item_seconds,
                         first_batch_id)
    return dispatch.run()


class _Dispatch:
    """The state of one :func:`execute` call: the tasks in flight, the quarantine (items of a batch whose
    worker died, retried one at a time) and the next batch id."""

    def __init__(self, engine: Engine, fn: Callable[[list[Any]], Any], batcher: Batcher,
                 on_result: Callable[[Batch, Any], None], on_lost: Callable[[Batch, str], None],
                 prepare: Callable[[list[Any]], Any], item_seconds: Callable[[Any], float] | None,
                 first_batch_id: int) -> None:
        self.engine = engine
        self.fn = fn
        self.batcher = batcher
        self.on_result = on_result
        self.on_lost = on_lost
        self.prepare = prepare
        self.item_seconds = item_seconds
        self.executor = engine.executor
        self.inflight: dict[Future, Batch] = {}
        self.quarantine: deque[Batch] = deque()
        self.next_id = first_batch_id

    def run(self) -> int:
        while True:
            self._fill()
            if not self.inflight:
                if self.quarantine or len(self.batcher):
                    continue
                break
            done, _ = wait(list(self.inflight), return_when=FIRST_COMPLETED)
            broken = False
            for future in sorted(done, key=lambda f: self.inflight[f].batch_id):  # oldest first
                broken = self._settle(future) or broken
            if broken:
                # one dead process breaks the whole pool: every other in-flight task fails with it
                while self.inflight:
                    for future in sorted(wait(list(self.inflight)).done, key=lambda f: self.inflight[f].batch_id):
                        self._settle(future)
                self.executor = self.engine.restart()
        return self.next_id

    def _fill(self) -> None:
        """Submit work: quarantined items alone when the engine isolates them, else up to the window."""
        if self.quarantine and self.engine.isolate_alone:
            if not self.inflight:
                self._submit(self.quarantine.popleft())
            return
        window = max(2, 2 * self.engine.capacity())
        while self.quarantine and len(self.inflight) < window:
            self._submit(self.quarantine.popleft())
        while len(self.inflight) < window and len(self.batcher):
            self._submit(Batch(self.next_id, self.batcher.next()))
            self.next_id += 1

    def _submit(self, batch: Batch) -> None:
        batch.submitted = time.monotonic()
        self.inflight[self.executor.submit(self.fn, self.prepare(batch.items))] = batch

    def _settle(self, future: Future) -> bool:
        """Hand a finished future on; True if it shows a dead worker that broke the executor."""
        batch = self.inflight.pop(future)
        try:
            result = future.result()
        except BaseException as exc:  # noqa: BLE001 - every failure is recorded, none is dropped
            if isinstance(exc, KeyboardInterrupt):
                raise
            return self._failed(batch, exc)
        if self.item_seconds is not None:
            try:
                self.batcher.observe(len(batch.items), float(self.item_seconds(result)))
            except (TypeError, ValueError):
                pass
        self.on_result(batch, result)
        return False

    def _failed(self, batch: Batch, exc: BaseException) -> bool:
        """Record a batch that raised: lost, or (a worker death not yet pinned on one item) quarantined."""
        if not self.engine.is_worker_death(exc):
            self.on_lost(batch, f"{type(exc).__name__}: {exc}")
            return False
        proven = len(batch.items) == 1 and (batch.isolated or not self.engine.isolate_alone)
        if proven:
            self.on_lost(batch, f"worker process died while running this run ({type(exc).__name__})")
        else:
            for item in batch.items:
                self.quarantine.append(Batch(self.next_id, [item], isolated=True))
                self.next_id += 1
        return isinstance(exc, BrokenProcessPool)
