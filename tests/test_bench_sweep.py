"""The benchmark's sweep measurement (bench/experiments_bench.py): the script it runs in a fresh process on a
project tree makes both experiments and reports their wall times; a tree where it cannot run is named."""

from __future__ import annotations

import pytest

from bench.experiments_bench import _sweep_walls
from tests.conftest import ROOT


def test_sweep_script_times_both_experiments_on_a_tree():
    walls = _sweep_walls(ROOT, 1, 2, 1)  # the child exits non-zero unless every run of both experiments is ok
    assert len(walls) == 2 and all(isinstance(w, float) and w > 0.0 for w in walls)


def test_sweep_script_failure_names_the_tree(tmp_path):
    # an empty folder has no scenario files: the sweep fails in the child, and the error says where
    with pytest.raises(RuntimeError, match=str(tmp_path)):
        _sweep_walls(tmp_path, 1, 2, 1)
