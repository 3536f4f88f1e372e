"""Levers that act through time and routing (dispatch hops, intake hours, systemic fixes), over paired seeds.

Accountability levers (mandate, tracking, inspections, call-backs, ranking, threats) have no wired-in
direction any more: tests/test_mechanisms.py tests the mechanisms they act through instead.
"""

from __future__ import annotations

import numpy as np

from sim import GovernanceModel, load_scenario, run_scenario
from sim.metrics import cases_frame

SEEDS = (1, 2, 3, 4)
DAYS = 60


def _paired(root, base: list[str], changed: list[str], kpi: str, scenario: str = "zzic.yaml") -> np.ndarray:
    s0 = load_scenario(root / "scenarios" / scenario, base)
    s1 = load_scenario(root / "scenarios" / scenario, base + changed)
    return np.array([run_scenario(s1, seed=k, days=DAYS).summary[kpi] - run_scenario(s0, seed=k, days=DAYS).summary[kpi]
                     for k in SEEDS])


def _assert_direction(diff: np.ndarray, sign: int) -> None:
    assert np.all(np.isfinite(diff))
    assert sign * diff.mean() > 0, diff
    assert (sign * diff > 0).sum() >= len(diff) - 1, diff  # at most one seed against the direction


def test_direct_dispatch_lowers_median_response(root):
    _assert_direction(_paired(root, [], ["policy.dispatch_mode=direct", "platform.dispatch_delay_h=0.083"],
                              "median_response_h"), -1)


def test_round_the_clock_intake_accepts_night_arrivals_sooner(root):
    def night_wait(hours: str) -> float:
        s = load_scenario(root / "scenarios/zzic.yaml", [f"policy.platform_hours={hours}"])
        waits = []
        for k in SEEDS[:2]:
            c = run_scenario(s, seed=k, days=30).cases
            hod = c["created_h"] % 24
            night = ((hod >= 22) | (hod < 6)) & (c["channel"] != "offline")
            waits.append((c.loc[night, "accepted_h"] - c.loc[night, "created_h"]).dropna().to_numpy())
        return float(np.concatenate(waits).mean())

    assert night_wait("7x24") < 0.5 * night_wait("office")


def test_systemic_fix_lowers_repeat_complaints(root):
    """Where the platform triggers fixes, later complaints in that (category, township) fall."""
    base = ["policy.systemic_fix_threshold=6", "policy.systemic_fix_effect=0.7"]
    fewer = []
    for k in SEEDS[:3]:
        on = GovernanceModel(load_scenario(root / "scenarios/zzic.yaml", base), seed=k)
        on.run()
        off = GovernanceModel(load_scenario(root / "scenarios/zzic.yaml", base + ["policy.systemic_fix=false"]),
                              seed=k)
        off.run()
        assert on.platform.fix_log, "the low threshold must trigger systemic fixes"
        cells = {(c, j): day for day, c, j in on.platform.fix_log}

        def after_fix(model: GovernanceModel, cells: dict = cells) -> int:
            df = cases_frame(model)
            cat = df["category"].cat.codes.to_numpy()
            twp = df["region"].to_numpy()
            day = df["created_h"].to_numpy() / 24
            return sum(int(((cat == c) & (twp == j) & (day > d0)).sum()) for (c, j), d0 in cells.items())

        fewer.append(after_fix(off) - after_fix(on))
    assert all(f > 0 for f in fewer), fewer
