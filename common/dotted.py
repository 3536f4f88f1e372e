"""Dotted scenario keys (``policy.supervision_intensity``) to and from nested mappings.

Used by ``experiments.export`` (the settings that differ between scenarios), ``experiments.calibration``
(writing the fitted values into a scenario file) and ``analysis.report`` (what each scenario changes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def flatten(d: Mapping[str, Any], prefix: str = "", lists_as_json: bool = False) -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``; with ``lists_as_json`` lists become JSON text (one cell each)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + ".", lists_as_json))
        elif lists_as_json and isinstance(v, list):
            out[key] = json.dumps(v)
        else:
            out[key] = v
    return out


def nest(dotted: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1, "a.c": 2}`` → ``{"a": {"b": 1, "c": 2}}``."""
    out: dict[str, Any] = {}
    for key, value in dotted.items():
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def get_dotted(data: Mapping[str, Any], dotted: str) -> Any:
    """The value at ``dotted`` in nested ``data`` (KeyError when a part is missing)."""
    node: Any = data
    for part in dotted.split("."):
        node = node[part]
    return node
