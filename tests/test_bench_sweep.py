"""The benchmark's sweep measurement (bench/experiments_bench.py): the script it runs in a fresh process on a
project tree makes both experiments and reports their wall times; a tree where it cannot run is named."""

from __future__ import annotations

import pytest

from bench.experiments_bench import _sweep_walls
from tests.conftest import ROOT


def test_sweep_script_times_both_experiments_on_a_tree():
    t_small, t_large = _sweep_walls(ROOT, 1, 2, 1)
    assert 0.0 < t_small and 0.0 < t_large
    assert t_small < 120.0 and t_large < 120.0  # 30 days of the default city, one or two runs


def test_sweep_script_failure_names_the_tree(tmp_path):
    # an empty folder has no scenario files: the sweep fails in the child, and the error says where
    with pytest.raises(RuntimeError, match=str(tmp_path)):
        _sweep_walls(tmp_path, 1, 2, 1)
