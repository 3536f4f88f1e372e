"""Handling times drawn from a mixture of lognormal phases (service_time_dist: mixture)."""

from __future__ import annotations

import numpy as np
import pytest

from sim import ScenarioError, load_scenario
from sim.model import GovernanceModel

BASE = "scenarios/default.yaml"


def _mixed(**phases_over):
    phases = [{"weight": 1.0, "median_h": 1.0, "sigma": 0.0}, {"weight": 3.0, "median_h": 100.0, "sigma": 0.0}]
    return load_scenario(BASE, {"demand.categories.utilities.service_time_dist": "mixture",
                                "demand.categories.utilities.service_time_phases": phases, **phases_over})


def test_a_mixture_draws_each_case_from_one_phase_by_weight():
    sc = _mixed()
    cat = sc.demand.categories["utilities"]
    assert cat.service_time_mean_h == pytest.approx((1.0 + 3 * 100.0) / 4)
    m = GovernanceModel(sc, seed=3)
    i = list(sc.demand.categories).index("utilities")
    times = m.demand._service_times(np.full(20_000, i))
    assert set(np.unique(times)) == {1.0, 100.0}
    assert (times == 1.0).mean() == pytest.approx(0.25, abs=0.015)
    # other categories keep their lognormal
    other = m.demand._service_times(np.zeros(2000, dtype=np.int64) if i else np.ones(2000, dtype=np.int64))
    assert len(np.unique(other)) > 1000


@pytest.mark.parametrize("over", [
    {"demand.categories.utilities.service_time_dist": "lognormal"},  # phases without mixture
])
def test_phases_and_mixture_go_together(over):
    with pytest.raises(ScenarioError, match="go together"):
        _mixed(**over)
    with pytest.raises(ScenarioError, match="go together"):
        load_scenario(BASE, {"demand.categories.utilities.service_time_dist": "mixture"})


def test_a_bad_phase_is_named():
    with pytest.raises(ScenarioError, match="median_h"):
        load_scenario(BASE, {"demand.categories.utilities.service_time_dist": "mixture",
                             "demand.categories.utilities.service_time_phases": [{"weight": 1, "median_h": -2}]})
