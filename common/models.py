"""The strict pydantic base of the YAML specs: unknown keys are errors, fields may be given by alias.

Used by ``experiments.spec`` (experiment specs) and ``experiments.calibration`` (calibration specs).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A spec section: ``extra="forbid"`` (a misspelt key is reported, not ignored) and
    ``populate_by_name`` (``set:`` in YAML fills the field ``overrides``, and so does ``overrides``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
