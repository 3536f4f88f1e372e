"""Reading the project's YAML files (scenarios, experiment and calibration specs) with clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from .errors import WenzhengError


def read_yaml_mapping(path: Path, error: type[WenzhengError], what: str, top_level_hint: str) -> dict[str, Any]:
    """The mapping at the top of a YAML file, or ``error`` naming the file and what is wrong.

    ``what`` names the kind of file ("scenario", "experiment spec", ...); ``top_level_hint`` is shown when the
    top level is not a mapping (e.g. "of sections").
    """
    if not path.exists():
        raise error(f"{path}: {what} file not found" if what == "scenario" else f"{path}: {what} not found")
    if path.is_dir():
        raise error(f"{path}: is a folder, expected a {what} .yaml file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{path}{where}: malformed YAML: {problem}") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not a UTF-8 text file") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise error(f"{path}: top level must be a mapping {top_level_hint}, got {type(data).__name__}")
    return data


def unwrap_model(annotation: Any) -> Any:
    """The pydantic model inside an annotation such as ``Model | None`` or ``dict[str, Model]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = unwrap_model(arg)
        if isinstance(found, type) and issubclass(found, BaseModel):
            return found
    return annotation
