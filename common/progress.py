"""The progress bar of long jobs (experiments, calibrations), drawn with rich on stderr.

Used by ``experiments.runner`` (runs done, failed, elapsed and estimated time left) and
``experiments.calibration`` (runs done of the budget, elapsed). Counts are runs; times are wall-clock.
"""

from __future__ import annotations

from typing import Any


class RunProgress:
    """A rich progress bar on stderr: ``description``, the bar, runs done of ``total``; optionally the
    failed runs so far and the estimated time left."""

    def __init__(self, total: int, description: str, failures: bool = True, remaining: bool = True) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns: list[Any] = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                              TextColumn("runs · [red]{task.fields[failed]} failed" if failures else "runs"),
                              TimeElapsedColumn()]
        if remaining:
            columns += [TextColumn("· left"), TimeRemainingColumn()]
        self._progress = Progress(*columns, console=Console(stderr=True))
        self._task = self._progress.add_task(description, total=total, failed=0)
        self._failed = 0

    def start(self) -> None:
        self._progress.start()

    def stop(self) -> None:
        self._progress.stop()

    def advance(self, n: int, failed: int = 0) -> None:
        """``n`` more runs done, ``failed`` of them failed."""
        self._failed += failed
        self._progress.update(self._task, advance=n, failed=self._failed)
