"""Long runs settle: what departments believe and what citizens trust stop drifting within a year.

One 365-day run each of baseline and zzic (seed 1, the shipped scenarios). The time series' expected
sanction per violation (effort units, weighted by the cases each department received) is compared across
30-day windows. experiments/supervision_sweep.yaml measures after a 300-day warm-up; these tests are what
justifies that length.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim import GovernanceModel, load_scenario
from sim.cases import Violation

DAYS = 365
#: the sweep's warm-up (experiments/supervision_sweep.yaml), days
WARMUP = 300
#: how far a belief may still move after the warm-up, in effort units (1 = one case handled properly)
DRIFT = 0.05


@pytest.fixture(scope="module", params=["baseline", "zzic"])
def year(request, root) -> tuple[str, pd.DataFrame]:
    sc = load_scenario(root / "scenarios" / f"{request.param}.yaml").with_overrides({"run.days": DAYS})
    m = GovernanceModel(sc, seed=1)
    m.run()
    return request.param, pd.DataFrame(m.daily)


def _window(daily: pd.DataFrame, column: str, first: int, last: int) -> float:
    return float(daily.loc[(daily["day"] >= first) & (daily["day"] < last), column].mean())


def test_every_belief_has_settled_by_the_end_of_the_sweeps_warm_up(year):
    name, daily = year
    for kind in Violation:
        col = f"expected_sanction_{kind.name.lower()}"
        after_warmup = _window(daily, col, WARMUP, WARMUP + 30)
        last = _window(daily, col, DAYS - 30, DAYS)
        assert abs(after_warmup - last) <= DRIFT, (name, col, after_warmup, last)


def test_the_belief_about_lateness_settles_within_seven_months(year):
    """Counted per overdue day, the expected sanction for lateness stops moving once the prior has faded
    (counted once per late case it kept rising: a stuck case drew sanctions for days). On ZZIC it settles by
    about day 210 (relays and repeat reports keep the load rising for the first months)."""
    name, daily = year
    col = "expected_sanction_late"
    early = _window(daily, col, 210, 240)
    last = _window(daily, col, DAYS - 30, DAYS)
    assert abs(early - last) <= DRIFT, (name, early, last)
    # and it did move from the prior (0.3) to what the observers of this scenario impose
    assert abs(_window(daily, col, 0, 5) - last) > DRIFT, (name, last)


def test_mean_trust_is_bounded_and_settles_within_a_year(year):
    """Experiences fade toward each requester's disposition (citizens.trust_memory_days), so mean trust
    levels off: over the last quarter of the year it moves by less than half a point (without the fading,
    the baseline's mean trust slid by about 1.5 points a quarter all year)."""
    name, daily = year
    trust = daily["mean_trust"].to_numpy()
    assert ((trust >= 0) & (trust <= 1)).all()
    last = daily["day"].to_numpy() >= DAYS - 91
    slope = np.polyfit(daily.loc[last, "day"].to_numpy(), trust[last], 1)[0]  # per day
    assert abs(slope) * 91 <= 0.005, (name, slope * 91)
