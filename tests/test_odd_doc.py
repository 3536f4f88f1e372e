"""docs/ODD.md must not drift from the scenario schema.

The parameter tables of docs/ODD.md (header ``| Parameter | Default | Unit | Source |``) name scenario keys in
``section.key`` form with their default in YAML syntax inside backticks; the catalogue table (header starting
``| Category |``) lists the default categories field by field. These tests check every documented name
against ``sim.scenario.Scenario`` and ``sim.catalogue``, every default against the schema's default, and that
every schema parameter is documented. The last tests feed the checker altered documents to show it fails.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from sim.scenario import Category, Scenario

ODD = Path(__file__).resolve().parents[1] / "docs" / "ODD.md"
CATEGORY_WILDCARD = "demand.categories.*."
# parameters whose default is a whole structure described elsewhere in the document (not a code literal)
DESCRIBED_ELSEWHERE = {"demand.categories"}
NOT_PARAMETERS = {"name", "description"}


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """Markdown tables as (header cells, body rows of cells); the separator row is dropped."""
    out: list[tuple[list[str], list[list[str]]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].lstrip().startswith("|") and i + 1 < len(lines) and re.match(r"^\s*\|[\s:|-]+\|\s*$",
                                                                                   lines[i + 1]):
            header = _cells(lines[i])
            body = []
            i += 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                body.append(_cells(lines[i]))
                i += 1
            out.append((header, body))
        else:
            i += 1
    return out


def _plain(value: Any) -> Any:
    """Enum -> its value, so schema defaults compare with YAML scalars."""
    return getattr(value, "value", value)


def _same(doc: Any, code: Any) -> bool:
    if isinstance(doc, bool) or isinstance(code, bool):
        return isinstance(doc, bool) and isinstance(code, bool) and doc == code
    if isinstance(doc, list) and isinstance(code, list):
        return len(doc) == len(code) and all(_same(a, b) for a, b in zip(doc, code, strict=True))
    if isinstance(doc, int | float) and isinstance(code, int | float):
        return float(doc) == float(code)
    return doc == code


def schema_defaults() -> dict[str, Any]:
    """Every scenario parameter (dotted name) -> its default; categories' fields as ``demand.categories.*.x``."""
    out: dict[str, Any] = {}

    def walk(model: BaseModel, prefix: str) -> None:
        for name in type(model).model_fields:
            if not prefix and name in NOT_PARAMETERS:
                continue
            value = getattr(model, name)
            dotted = f"{prefix}{name}"
            if isinstance(value, BaseModel):
                walk(value, dotted + ".")
            else:
                out[dotted] = value

    walk(Scenario(), "")
    for name, field in Category.model_fields.items():
        if not field.is_required():
            out[CATEGORY_WILDCARD + name] = _plain(field.get_default(call_default_factory=True))
    return {k: (_plain(v) if not isinstance(v, list | dict) else v) for k, v in out.items()}


def parameter_rows(text: str) -> list[tuple[str, str]]:
    rows = []
    for header, body in _tables(text):
        if len(header) >= 2 and header[0] == "Parameter" and header[1] == "Default":
            for cells in body:
                rows.append((cells[0].strip("`"), cells[1]))
    return rows


def check_parameters(text: str) -> list[str]:
    """Problems with the parameter tables: unknown names, wrong defaults, duplicates, undocumented keys."""
    defaults = schema_defaults()
    errors = []
    seen: set[str] = set()
    for name, cell in parameter_rows(text):
        if name in seen:
            errors.append(f"{name}: listed twice")
        seen.add(name)
        if name not in defaults:
            errors.append(f"{name}: not a parameter of the Scenario schema")
            continue
        if name in DESCRIBED_ELSEWHERE:
            continue
        m = re.fullmatch(r"`(.*)`", cell)
        if not m:
            errors.append(f"{name}: default {cell!r} is not a code literal")
            continue
        doc_value = yaml.safe_load(m.group(1))
        if not _same(doc_value, defaults[name]):
            errors.append(f"{name}: document says {doc_value!r}, the schema has {defaults[name]!r}")
    for name in sorted(set(defaults) - seen):
        errors.append(f"{name}: in the Scenario schema but not in docs/ODD.md's parameter tables")
    return errors


def check_catalogue(text: str) -> list[str]:
    """Problems with the catalogue table against the schema's default categories."""
    cats = Scenario().to_dict()["demand"]["categories"]
    tables = [(h, b) for h, b in _tables(text) if h and h[0] == "Category"]
    if len(tables) != 1:
        return [f"expected one catalogue table, found {len(tables)}"]
    header, body = tables[0]
    errors = []
    fields = header[1:]
    for f in fields:
        if f not in Category.model_fields:
            errors.append(f"catalogue column {f!r} is not a Category field")
    documented = {}
    for cells in body:
        documented[cells[0]] = dict(zip(fields, cells[1:], strict=False))
    if set(documented) != set(cats):
        errors.append(f"catalogue categories differ: document {sorted(documented)}, code {sorted(cats)}")
    for name, values in documented.items():
        if name not in cats:
            continue
        for f, cell in values.items():
            if f not in cats[name]:
                continue
            if not _same(yaml.safe_load(cell), cats[name][f]):
                errors.append(f"catalogue {name}.{f}: document says {cell}, the code has {cats[name][f]!r}")
    return errors


@pytest.fixture(scope="module")
def odd_text() -> str:
    return ODD.read_text(encoding="utf-8")


def test_parameter_tables_match_the_schema(odd_text):
    assert parameter_rows(odd_text), "no parameter tables found in docs/ODD.md"
    errors = check_parameters(odd_text)
    assert not errors, "docs/ODD.md drifted from sim/scenario.py:\n" + "\n".join(errors)


def test_catalogue_table_matches_the_code(odd_text):
    errors = check_catalogue(odd_text)
    assert not errors, "docs/ODD.md drifted from sim/catalogue.py:\n" + "\n".join(errors)


def test_checker_catches_a_wrong_default(odd_text):
    altered = odd_text.replace("| `policy.supervision_intensity` | `20.0` |", "| `policy.supervision_intensity` | `21.5` |")
    assert altered != odd_text
    assert any(e.startswith("policy.supervision_intensity:") for e in check_parameters(altered))


def test_checker_catches_an_unknown_name_and_a_missing_one(odd_text):
    altered = odd_text.replace("`citizens.patience_h`", "`citizens.patience_days`")
    assert altered != odd_text
    errors = check_parameters(altered)
    assert any(e.startswith("citizens.patience_days: not a parameter") for e in errors)
    assert any(e.startswith("citizens.patience_h: in the Scenario schema") for e in errors)


def test_checker_catches_bool_versus_number_and_catalogue_drift(odd_text):
    altered = odd_text.replace("| `policy.tracking` | `true` |", "| `policy.tracking` | `1` |")
    assert any(e.startswith("policy.tracking:") for e in check_parameters(altered))
    altered = odd_text.replace("| utilities | 0.128 |", "| utilities | 0.2 |")
    assert altered != odd_text
    assert any("utilities.share" in e for e in check_catalogue(altered))
