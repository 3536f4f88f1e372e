"""Reading the project's YAML files (scenarios, experiment and calibration specs) with clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from .errors import WenzhengError


def _safe_load(text: str) -> Any:
    """``yaml.safe_load`` with libyaml's parser when PyYAML has it (several times faster; the same safe
    constructor builds the same values). Malformed text is parsed again by the pure-Python parser, so that
    the error (its message and position) is PyYAML's own either way."""
    loader = getattr(yaml, "CSafeLoader", None)
    if loader is not None:
        try:
            return yaml.load(text, Loader=loader)  # noqa: S506 - CSafeLoader is the safe loader
        except yaml.YAMLError:
            pass
    return yaml.safe_load(text)


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
        data = _safe_load(path.read_text(encoding="utf-8"))
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


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model that holds the key at ``loc`` (list indices and mapping keys are stepped over)."""
    model: Any = root
    mapping_key = False
    for part in loc:
        if isinstance(part, int) or mapping_key:
            mapping_key = False
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        fields = {(f.alias or n): f for n, f in model.model_fields.items()}
        field = fields.get(str(part))
        if field is None:
            return None
        mapping_key = getattr(field.annotation, "__origin__", None) is dict
        model = unwrap_model(field.annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def format_validation_error(exc: Any, source: str, root: type[BaseModel]) -> str:
    """One line per problem of a pydantic ``ValidationError``: the file, the dotted key, what is wrong and,
    for an unknown key, the keys allowed there."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        kind = err["type"]
        if kind == "extra_forbidden":
            parent = _model_at(root, err["loc"][:-1])
            allowed = sorted((f.alias or n) for n, f in parent.model_fields.items()) if parent else []
            msg = "unknown key" + (f"; allowed keys here: {', '.join(allowed)}" if allowed else "")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            ctx = err.get("ctx") or {}
            if "expected" in ctx and "Input should be" not in msg:
                msg += f" (allowed: {ctx['expected']})"
        value = err.get("input")
        shown = "" if kind in ("extra_forbidden", "missing") or isinstance(value, dict | list) else f" (got {value!r})"
        lines.append(f"{source}: key '{loc}': {msg}{shown}")
    return "\n".join(dict.fromkeys(lines))
