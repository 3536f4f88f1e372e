"""common.formatting: the one number formatter with each caller's bands, settings as YAML writes them,
and the dotted-key helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from common.dotted import flatten, get_dotted, nest
from common.formatting import FINE_BANDS, GENERAL_BANDS, TABLE_BANDS, format_number, format_setting


@pytest.mark.parametrize(("x", "text"), [
    (12345.6, "12,346"), (1000.0, "1,000"), (999.96, "1000.0"), (12.34, "12.3"), (10.0, "10.0"),
    (9.9996, "10.000"), (0.12345, "0.123"), (-0.5, "-0.500"), (0.0, "0.000"), (None, "nan"), (math.nan, "nan"),
    (np.float64(42.0), "42.0"),
])
def test_table_bands(x, text):
    assert format_number(x, TABLE_BANDS) == text


@pytest.mark.parametrize(("x", "text"), [
    (2500.0, "2,500"), (123.45, "123.5"), (1.5, "1.500"), (0.12345, "0.1235"), (-0.75, "-0.7500"),
])
def test_fine_bands(x, text):
    assert format_number(x, FINE_BANDS, small=".4f") == text


@pytest.mark.parametrize(("x", "text"), [
    (1234.0, "1,234"), (12.34, "12.3"), (1.23456, "1.23"), (0.00123, "0.00123"), (0.0001234, "1.23e-04"),
    (0.0, "0"),
])
def test_general_bands_with_zero_and_small(x, text):
    assert format_number(x, GENERAL_BANDS, small=".2e", zero=".3g") == text


def test_missing_text_is_the_callers():
    assert format_number(None, missing="–") == "–"
    assert format_number(float("inf")) == "inf"  # infinities are numbers, not missing


@pytest.mark.parametrize(("value", "text"), [
    (None, "null"), (True, "true"), (False, "false"), (0.5, "0.5"), (24.0, "24"), (1e-6, "1e-06"), (3, "3"),
    ("direct", "direct"), ({"online": 0.5, "flag": True}, "{online: 0.5, flag: true}"), (math.nan, "null"),
])
def test_format_setting(value, text):
    assert format_setting(value) == text


def test_format_setting_names_an_unset_design_value():
    assert format_setting(np.float64("nan"), none="none") == "none"
    assert format_setting(np.float64(72.0), none="none") == "72"


def test_dotted_round_trip():
    nested = {"policy": {"tracking": False, "mandate": {"hours": 24}}, "run": {"days": [1, 2]}}
    flat = flatten(nested)
    assert flat == {"policy.tracking": False, "policy.mandate.hours": 24, "run.days": [1, 2]}
    assert nest(flat) == nested
    assert get_dotted(nested, "policy.mandate.hours") == 24
    assert flatten(nested, lists_as_json=True)["run.days"] == "[1, 2]"
    with pytest.raises(KeyError):
        get_dotted(nested, "policy.nothing")
