"""common.progress and common.provenance: the bar counts runs and failures; the commit and versions."""

from __future__ import annotations

from common.progress import RunProgress
from common.provenance import git_commit, versions


def test_progress_counts_runs_and_failures():
    bar = RunProgress(10, "demo")
    bar.advance(3, failed=1)
    bar.advance(2, failed=1)
    task = bar._progress.tasks[0]
    assert task.completed == 5 and task.total == 10 and task.fields["failed"] == 2
    plain = RunProgress(4, "calibrating x", failures=False, remaining=False)
    plain.advance(4)
    assert plain._progress.tasks[0].finished


def test_provenance():
    commit = git_commit()
    assert commit is None or (len(commit) == 40 and git_commit(short=True) == commit[: len(git_commit(short=True))])
    v = versions()
    assert set(v) >= {"python", "numpy", "pandas", "pyarrow", "mesa", "wenzheng"} and v["python"]
