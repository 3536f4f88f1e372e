"""The validation gate: a quick validation that fails when the model drifts from what was recorded.

``python run.py validate --gate`` runs the target scenarios with few replications and fixed seeds (about
two minutes on 2 cores) and compares them with the record in ``tests/validation_gate.json``. It fails when

* a **calibration** target is outside its band (the fit no longer holds), or
* a **validation** target's verdict differs from the recorded one, or
* a calibration or validation target's mean moved by more than its allowed change from the record
  (:data:`ALLOWED_MOVE`: 0.03 for a share, 0.03 for share points, 10% for a count) — in either direction: a
  model change that improves a prediction is re-recorded on purpose, not by accident.

Consistency targets are shown, not gated. ``python run.py validate --gate --record`` writes the record
(with the commit, the settings and each target's mean and verdict); commit it with the change that moved
it and say why in the commit message.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .validation import (
    TARGET_EXPERIMENTS,
    TARGETS,
    ExperimentDef,
    Target,
    TargetResult,
    ValidationError,
    _run_experiments,
    evaluate_targets,
)

ROOT = Path(__file__).resolve().parent.parent
GATE_FILE = ROOT / "tests" / "validation_gate.json"
GATE_REPLICATIONS = 3
#: How far a validation target's mean may move from the record before the gate fails, by unit.
ALLOWED_MOVE: dict[str, tuple[float, str]] = {"share": (0.03, "abs"), "share points": (0.03, "abs"),
                                              "cases": (0.10, "rel")}


@dataclass(frozen=True)
class GateFinding:
    """One reason the gate fails."""

    key: str
    what: str


def allowed_move(target: Target, recorded: float) -> float:
    """The largest change of ``target``'s mean from ``recorded`` that the gate lets pass (target's unit)."""
    size, kind = ALLOWED_MOVE[target.unit]
    return size * abs(recorded) if kind == "rel" else size


def gate_findings(results: Sequence[TargetResult], record: dict[str, Any]) -> list[GateFinding]:
    """Why the results fail the gate against ``record`` (empty: they pass). Targets missing from the record
    are findings too (record them on purpose)."""
    rows = {r["key"]: r for r in record.get("targets", [])}
    out: list[GateFinding] = []
    for res in results:
        t = res.target
        if t.role == "consistency":
            continue
        if t.role == "calibration" and not res.passed:
            out.append(GateFinding(t.key, f"calibration target left its band: mean {res.mean:.4g}, band "
                                          f"{t.criterion.describe(t.unit)}"))
        rec = rows.get(t.key)
        if rec is None:
            out.append(GateFinding(t.key, "not in the record (python run.py validate --gate --record)"))
            continue
        if t.role == "validation" and bool(rec["passed"]) != res.passed:
            out.append(GateFinding(t.key, f"verdict moved: recorded {'pass' if rec['passed'] else 'fail'}, "
                                          f"now {'pass' if res.passed else 'fail'}"))
        old = rec.get("mean")
        if old is None or not math.isfinite(res.mean):
            if (old is None) != (not math.isfinite(res.mean)):
                out.append(GateFinding(t.key, f"value moved: recorded {old}, now {res.mean}"))
            continue
        limit = allowed_move(t, float(old))
        if abs(res.mean - float(old)) > limit:
            out.append(GateFinding(t.key, f"value moved by {res.mean - float(old):+.4g} (recorded {float(old):.4g}, "
                                          f"now {res.mean:.4g}; allowed ±{limit:.3g})"))
    return out


def record_of(results: Sequence[TargetResult], settings: dict[str, Any]) -> dict[str, Any]:
    """The gate record of ``results`` (what --record writes)."""
    from common.provenance import git_commit

    return {"settings": settings, "commit": git_commit(short=True),
            "targets": [{"key": r.target.key, "role": r.target.role,
                         "mean": float(r.mean) if math.isfinite(r.mean) else None, "passed": bool(r.passed)}
                        for r in results]}


def read_record(path: Path = GATE_FILE) -> dict[str, Any]:
    """The recorded gate, or a :class:`ValidationError` naming the file and what is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValidationError(f"{path}: no gate record; write one with python run.py validate --gate --record"
                              ) from None
    except (OSError, ValueError) as exc:
        raise ValidationError(f"{path}: not a readable gate record ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("targets"), list):
        raise ValidationError(f"{path}: key 'targets': a list of recorded targets is needed")
    return data


def quick_results(targets: Sequence[Target] = TARGETS, replications: int = GATE_REPLICATIONS,
                  workers: int | None = None, overrides: dict[str, Any] | None = None,
                  say: Callable[[str], None] = lambda _m: None) -> list[TargetResult]:
    """Run only the scenarios ``targets`` need (their experiments' fixed seeds, ``replications`` each, the
    scenarios' own horizons), with ``overrides`` (dotted keys) set in every scenario, and evaluate them."""
    needed: dict[str, set[str]] = {}
    for t in targets:
        needed.setdefault(t.experiment, set()).add(t.scenario)
        if t.paired_with:
            needed[t.experiment].add(t.paired_with)
    defs: list[ExperimentDef] = []
    for exp in TARGET_EXPERIMENTS:
        if exp.name not in needed:
            continue
        scenarios = {}
        for name, ref in exp.scenarios.items():
            if name in needed[exp.name]:
                file, sets = (ref, {}) if isinstance(ref, str) else ref
                scenarios[name] = (file, {**dict(sets), **(overrides or {})}) if (sets or overrides) else file
        baseline = exp.baseline if exp.baseline in scenarios else None
        defs.append(ExperimentDef(exp.name, exp.description, scenarios, exp.replications, exp.seed,
                                  exp.days, exp.warmup_days, baseline))
    with tempfile.TemporaryDirectory(prefix="wenzheng-gate-") as tmp:
        for sub in ("specs", "stores"):
            (Path(tmp) / sub).mkdir()
        stores, _info, failures = _run_experiments(defs, Path(tmp), replications, workers, None, say)
        if failures:
            raise ValidationError(f"the gate's runs failed: {failures[:3]}")
        return evaluate_targets(stores, targets)


def run_gate(record: bool = False, workers: int | None = None, path: Path = GATE_FILE,
             say: Callable[[str], None] = print) -> tuple[list[TargetResult], list[GateFinding], float]:
    """The gate: quick results, compared with the record (or recorded, with ``record``). Returns the results,
    the findings (empty when the gate passes; always empty when recording) and the wall time (s)."""
    t0 = time.perf_counter()
    recorded = None if record else read_record(path)  # a missing or broken record stops before any run
    results = quick_results(workers=workers, say=say)
    if record:
        data = record_of(results, {"replications": GATE_REPLICATIONS})
        path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        return results, [], time.perf_counter() - t0
    return results, gate_findings(results, recorded), time.perf_counter() - t0
