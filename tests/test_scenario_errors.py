"""Bad input through the command line: exit code 2, one clear message naming file, key and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest


def _write(tmp_path: Path, text: str, name: str = "bad.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("world:\n  population: [1, 2\n", ["malformed YAML", "line"]),
        ("world:\n  populaton: 10\n", ["world.populaton", "unknown key", "population"]),
        ("world:\n  population: lots\n", ["world.population", "integer"]),
        ("world:\n  digital_access_urban: 1.5\n", ["world.digital_access_urban", "less than or equal to 1"]),
        ("policy:\n  dispatch_mode: teleport\n", ["policy.dispatch_mode", "'cascade' or 'direct'"]),
        ("timeline:\n  - {day: 0, set: {dispatch_mode: teleport}}\n",
         ["timeline.0.set.dispatch_mode", "'cascade' or 'direct'"]),
        ("timeline:\n  - {date: 1999-01-01, set: {tracking: false}}\n",
         ["timeline", "entry 0", "before the run starts", "from 2024-01-01"]),
        ("extends: missing_parent.yaml\n", ["extends", "missing_parent.yaml", "not found"]),
        ("- just\n- a list\n", ["top level must be a mapping"]),
    ],
)
def test_bad_scenario_file_exits_2_with_message(cli, tmp_path, text, expected):
    path = _write(tmp_path, text)
    proc = cli("run", str(path), "--days", "1", "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert str(path) in proc.stderr
    for part in expected:
        assert part in proc.stderr, proc.stderr


def test_unknown_scenario_path(cli, tmp_path):
    proc = cli("run", str(tmp_path / "nowhere.yaml"))
    assert proc.returncode == 2
    assert "not found" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("policy.supervision_intensity=-3", "policy.supervision_intensity"),
        ("policy.nonsense=1", "unknown key"),
        ("novalue", "must look like section.key=value"),
        ("world.population.size=3", "is a value, not a section"),
    ],
)
def test_bad_override(cli, root, override, expected):
    proc = cli("run", str(root / "scenarios/default.yaml"), "--days", "1", "--set", override)
    assert proc.returncode == 2
    assert expected in proc.stderr and "Traceback" not in proc.stderr


def test_extends_and_override_merge(root):
    from sim import load_scenario

    s = load_scenario(root / "scenarios/mandate_24h.yaml", ["policy.supervision_intensity=33"])
    assert s.policy.response_mandate_hours == 24  # from mandate_24h.yaml
    assert s.policy.tracking is True  # from zzic.yaml
    assert s.world.townships == 24  # from default.yaml
    assert s.policy.supervision_intensity == 33  # from --set
    assert s.name == "mandate_24h"


def test_circular_extends(tmp_path):
    from sim import ScenarioError, load_scenario

    _write(tmp_path, "extends: b.yaml\n", "a.yaml")
    _write(tmp_path, "extends: a.yaml\n", "b.yaml")
    with pytest.raises(ScenarioError, match="circular"):
        load_scenario(tmp_path / "a.yaml")


def test_every_shipped_scenario_loads_and_starts_with_a_comment(root):
    from sim import load_scenario

    files = sorted((root / "scenarios").rglob("*.yaml"))
    assert len(files) >= 7
    for f in files:
        assert f.read_text(encoding="utf-8").lstrip().startswith("#"), f"{f} must start with a comment"
        load_scenario(f)
