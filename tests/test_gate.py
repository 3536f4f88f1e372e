"""The validation gate (analysis/gate.py): its rules on synthetic results, its record file's errors, and once
for real: a parameter that pins a cheap target is moved and only that target is re-run."""

from __future__ import annotations

import json
import math

import pytest

from analysis.gate import GateFinding, allowed_move, gate_findings, quick_results, read_record, record_of
from analysis.summarize import t_interval
from analysis.validation import TARGETS, Criterion, Target, TargetResult, ValidationError


def _t(key: str, role: str, unit: str = "share", **kw) -> Target:
    base = dict(key=key, id="T9", pattern="p", observed="0.5", tolerance="± 0.1", criterion=Criterion.band(0.5, 0.1),
                experiment="exp", scenario="s", measure="completion_rate", source="src", mechanism="m", unit=unit,
                role=role, fitted=("departments.duty",) if role == "calibration" else ())
    base.update(kw)
    return Target(**base)


def _r(target: Target, mean: float) -> TargetResult:
    iv = t_interval([mean, mean])
    return TargetResult(target, [mean, mean], iv, target.criterion.passes(mean))


def _record(*rows) -> dict:
    return {"targets": [{"key": k, "mean": m, "passed": p} for k, m, p in rows]}


def test_a_result_equal_to_the_record_passes():
    cal, val = _t("C", "calibration"), _t("V", "validation")
    assert gate_findings([_r(cal, 0.5), _r(val, 0.7)], _record(("C", 0.5, True), ("V", 0.7, False))) == []


def test_a_calibration_target_outside_its_band_fails_even_if_recorded_so():
    cal = _t("C", "calibration")
    found = gate_findings([_r(cal, 0.75)], _record(("C", 0.75, False)))
    assert [f.key for f in found] == ["C"] and "left its band" in found[0].what


def test_a_validation_verdict_or_value_that_moves_fails_in_either_direction():
    val = _t("V", "validation")
    worse = gate_findings([_r(val, 0.45)], _record(("V", 0.5, True)))  # still in band, moved 0.05 > 0.03
    assert len(worse) == 1 and "value moved by -0.05" in worse[0].what
    better = gate_findings([_r(val, 0.55)], _record(("V", 0.7, False)))  # now passes: verdict and value moved
    assert {f.what.split(":")[0] for f in better} == {"verdict moved", "value moved by -0.15 (recorded 0.7, now 0.55; allowed ±0.03)"}
    assert gate_findings([_r(val, 0.52)], _record(("V", 0.5, True))) == []  # within the allowed move


def test_counts_move_relatively_and_consistency_is_not_gated():
    count = _t("K", "validation", unit="cases", criterion=Criterion.relative(300, 0.15))
    assert allowed_move(count, 300) == pytest.approx(30)
    assert gate_findings([_r(count, 325)], _record(("K", 300, True))) == []
    assert len(gate_findings([_r(count, 340)], _record(("K", 300, True)))) == 1
    con = _t("X", "consistency")
    assert gate_findings([_r(con, 0.9)], _record()) == []


def test_a_target_missing_from_the_record_is_a_finding():
    found = gate_findings([_r(_t("V", "validation"), 0.5)], _record())
    assert found == [GateFinding("V", "not in the record (python run.py validate --gate --record)")]


def test_record_round_trip_and_bad_records(tmp_path):
    val = _t("V", "validation")
    path = tmp_path / "gate.json"
    path.write_text(json.dumps(record_of([_r(val, 0.6)], {"replications": 3})))
    rec = read_record(path)
    assert rec["targets"] == [{"key": "V", "role": "validation", "mean": 0.6, "passed": True}]
    assert gate_findings([_r(val, 0.6)], rec) == []
    with pytest.raises(ValidationError, match="no gate record"):
        read_record(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValidationError, match="not a readable gate record"):
        read_record(tmp_path / "bad.json")
    (tmp_path / "empty.json").write_text("{}")
    with pytest.raises(ValidationError, match="key 'targets'"):
        read_record(tmp_path / "empty.json")


def test_the_gate_catches_a_moved_parameter_for_real():
    """T1 (unwatched county departments' reply share) is pinned by departments.duty: record it, then move
    duty far down and re-run only T1's scenario: the gate must see the value move."""
    t1 = next(t for t in TARGETS if t.key == "T1")
    recorded = quick_results([t1], replications=2, workers=1)
    rec = record_of(recorded, {"replications": 2})
    again = quick_results([t1], replications=2, workers=1)
    assert [f.what for f in gate_findings(again, rec) if "moved" in f.what] == []  # same seeds: same value
    moved = quick_results([t1], replications=2, workers=1, overrides={"departments.duty": 0.0})
    assert math.isfinite(moved[0].mean) and moved[0].mean < recorded[0].mean - 0.05
    assert any(f.key == "T1" and "value moved" in f.what for f in gate_findings(moved, rec))


def test_the_shipped_model_passes_its_recorded_gate():
    """The gate itself, as `make test` runs it: every target scenario at the record's replications and fixed
    seeds against tests/validation_gate.json. Fails when a calibration target leaves its band or a validation
    target's verdict or value moves (re-record on purpose: python run.py validate --gate --record)."""
    from analysis.gate import GATE_REPLICATIONS, run_gate

    record = read_record()
    assert record["settings"]["replications"] == GATE_REPLICATIONS
    results, findings, _wall = run_gate(workers=2, say=lambda _m: None)
    assert {r.target.key for r in results} == {t.key for t in TARGETS}
    assert findings == [], "\n".join(f"{f.key}: {f.what}" for f in findings)
