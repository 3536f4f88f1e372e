"""Numbers and settings as text, for terminal tables, reports and file headers.

One formatter, :func:`format_number`, picks a format by the number's magnitude from a list of bands; the
callers differ only in the bands they pass (and what a missing value reads as):

- :data:`TABLE_BANDS` — ``experiments.runner``'s end table: 1,234 · 12.3 · 0.123;
- :data:`FINE_BANDS` — ``experiments.calibration``'s fitted values: 1,234 · 123.4 · 1.234 · 0.1234;
- :data:`GENERAL_BANDS` — ``analysis.summarize`` for values without a known unit: 1,234 · 12.3 · 0.123
  (three significant digits below 10, scientific below 0.001).

:func:`format_setting` writes a scenario setting the way YAML would (``true``, ``24``, ``{a: 1}``); it is
used by ``experiments.calibration`` (target settings) and ``analysis.report`` (design points).
Numbers keep their own unit; these functions only choose digits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real
from typing import Any

#: (smallest magnitude, format spec) pairs, largest first; below the last band ``small`` applies.
Bands = Sequence[tuple[float, str]]

TABLE_BANDS: Bands = ((1000.0, ",.0f"), (10.0, ".1f"))
FINE_BANDS: Bands = ((1000.0, ",.0f"), (100.0, ".1f"), (1.0, ".3f"))
GENERAL_BANDS: Bands = ((1000.0, ",.0f"), (10.0, ".1f"), (0.001, ".3g"))


def is_missing(x: Any) -> bool:
    """None or NaN (infinities are numbers here)."""
    return x is None or (isinstance(x, Real) and math.isnan(x))


def format_number(x: float | None, bands: Bands = TABLE_BANDS, small: str = ".3f", missing: str = "nan",
                  zero: str | None = None) -> str:
    """``x`` with the format of the first band whose magnitude it reaches, else ``small``.

    None and NaN give ``missing``; ``zero`` (a format spec), when given, is used for exactly 0.
    Examples with the default (table) bands: 12345.6 → ``12,346``, 12.34 → ``12.3``, 0.1234 → ``0.123``.
    """
    if is_missing(x):
        return missing
    if zero is not None and x == 0:
        return format(x, zero)
    magnitude = abs(x)
    for threshold, spec in bands:
        if magnitude >= threshold:
            return format(x, spec)
    return format(x, small)


def format_setting(v: Any, none: str = "null") -> str:
    """A scenario setting as YAML writes it: ``none`` for None (and NaN, an unset numeric setting),
    ``true``/``false``, numbers in ``g`` format (24, 0.5, 1e-06), mappings as ``{key: value, ...}``."""
    if is_missing(v):
        return none
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {format_setting(x, none)}" for k, x in v.items()) + "}"
    return str(v)
