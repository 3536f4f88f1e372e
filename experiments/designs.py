"""Designs over scenario parameters: full-factorial grid, Latin hypercube, Morris and Sobol.

A design turns the spec's parameter ranges into a table of points (one row per point, one column per dotted
scenario key). Latin hypercube, Morris and Sobol samples come from SALib with the problem taken from the
ranges (``names`` = the dotted keys, ``bounds`` = [low, high]); the samples keep SALib's row order so that
``SALib.analyze.morris`` / ``sobol`` can be applied to the KPI of each point in order.

Sizes: grid = product of the value counts; lhs = n; Morris = (k + 1)·n; Sobol = n·(2k + 2) with second-order
indices, n·(k + 2) without (k = number of parameters). Integer scenario fields get rounded values (the
stored value is the value used); a grid value may be ``null`` where the field allows it (stored as NaN).
A grid may also vary a true/false setting (``values: [false, true]``): the point table and the
``param.<key>`` columns hold it as 0.0/1.0 (NaN for null), so that every design column is numeric, and
:func:`to_setting` gives the scenario ``False``/``True`` again (the manifest records the kind "bool").
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel

from sim.scenario import Scenario

#: One value of a grid parameter: a number, true/false (for a true/false setting), or null (None).
GridValue = bool | float | None


def field_kind(dotted: str) -> str:
    """The type of a dotted scenario key: "int", "float", "bool" or "other"; ValueError if unknown.

    Mapping fields (``demand.categories``) take a key as the next part, e.g.
    ``demand.categories.utilities.service_time_median_h``.
    """
    parts = dotted.split(".")
    model: Any = Scenario
    i = 0
    while i < len(parts):
        part = parts[i]
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise ValueError(f"{dotted!r}: '{'.'.join(parts[:i])}' is a value, not a section")
        f = model.model_fields.get(part)
        if f is None:
            where = ".".join(parts[:i]) or "the top level"
            raise ValueError(f"{dotted!r}: unknown key {part!r} in {where}; "
                             f"allowed: {', '.join(sorted(model.model_fields))}")
        ann = _strip(f.annotation)
        origin = typing.get_origin(ann)
        if origin is dict:
            value_type = _strip(typing.get_args(ann)[1])
            if i + 1 >= len(parts):
                return "other"
            i += 2  # skip the mapping key (e.g. the category name)
            model = value_type
            if i >= len(parts):
                return _scalar_kind(value_type)
            continue
        model = ann
        i += 1
    return _scalar_kind(model)


def _strip(ann: Any) -> Any:
    """Unwrap Annotated[...] and Optional[...] to the underlying type."""
    while True:
        origin = typing.get_origin(ann)
        if origin is typing.Annotated:
            ann = typing.get_args(ann)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(ann) if a is not type(None)]
            if len(args) != 1:
                return ann
            ann = args[0]
        else:
            return ann


def _scalar_kind(t: Any) -> str:
    if t is bool:
        return "bool"
    if t is int:
        return "int"
    if t is float:
        return "float"
    if isinstance(t, type) and issubclass(t, BaseModel):
        return "section"
    return "other"


@dataclass
class DesignPoints:
    """The points of a design: ``values[i, j]`` is parameter j at point i (NaN for a null grid value).

    Without a design there is one point (index 0) with no parameters.
    """

    type: str  # "none" | "grid" | "lhs" | "morris" | "sobol"
    names: list[str]
    kinds: list[str]
    values: np.ndarray
    low: list[float] = field(default_factory=list)
    high: list[float] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    grid_values: list[list[GridValue]] | None = None

    @property
    def parameters(self) -> list[str]:
        return self.names

    @property
    def n_points(self) -> int:
        return int(self.values.shape[0])

    def overrides(self, point: int) -> dict[str, Any]:
        """Dotted-key overrides of one point (ints for integer fields, bools for true/false fields, None for a
        null grid value)."""
        out: dict[str, Any] = {}
        for j, name in enumerate(self.names):
            out[name] = to_setting(self.values[point, j], self.kinds[j])
        return out

    def columns(self, point: int) -> dict[str, float]:
        """``param.<key>`` -> float value of one point (NaN for null, 0.0/1.0 for false/true), as stored in
        runs.parquet."""
        return {f"param.{name}": float(self.values[point, j]) for j, name in enumerate(self.names)}

    def points_for_hash(self) -> list[list[float | None]]:
        return [[None if np.isnan(v) else float(v) for v in row] for row in self.values]

    def to_manifest(self) -> dict[str, Any]:
        params = []
        for j, name in enumerate(self.names):
            entry: dict[str, Any] = {"name": name, "low": self.low[j], "high": self.high[j], "kind": self.kinds[j]}
            if self.grid_values is not None:
                entry["values"] = self.grid_values[j]
            params.append(entry)
        return {"type": self.type, "parameters": params, "n_points": self.n_points, **self.options}


def to_setting(value: float, kind: str) -> Any:
    """A stored float back to the value the scenario gets: None for NaN, int for integer fields, bool for
    true/false fields (stored as 0.0/1.0)."""
    if np.isnan(value):
        return None
    if kind == "int":
        return int(round(float(value)))
    if kind == "bool":
        return bool(round(float(value)))
    return float(value)


def grid_axis(values: list[GridValue] | None, low: float | None, high: float | None, levels: int | None,
              kind: str) -> list[GridValue]:
    """The distinct values of one grid parameter, in the spec's order: ``values`` as given (integers rounded
    for an integer field), or ``levels`` evenly spaced values from ``low`` to ``high``."""
    if values is not None:
        axis = list(values)
    else:
        axis = [float(v) for v in np.linspace(low, high, levels)]
    if kind == "int":
        axis = [None if v is None else float(round(v)) for v in axis]
    elif kind == "float":
        axis = [None if v is None else float(v) for v in axis]
    return list(dict.fromkeys(axis))  # rounding may merge values


def _stored(value: GridValue) -> float:
    """A grid value as the point table holds it: NaN for null, 0.0/1.0 for false/true."""
    return float("nan") if value is None else float(value)


def _round_ints(values: np.ndarray, kinds: list[str]) -> np.ndarray:
    out = values.astype(float).copy()
    for j, kind in enumerate(kinds):
        if kind == "int":
            out[:, j] = np.rint(out[:, j])
    return out


def build_design(design: Any, kinds: dict[str, str], master_seed: int) -> DesignPoints:
    """Points of the spec's ``design`` block (a validated ``spec.Design``), or the single empty point.

    ``kinds``: dotted key -> "int" | "float" | "bool" (true/false: grid designs only). ``master_seed`` seeds the sampler unless the design has its own
    ``seed``. Raises ValueError for a design that cannot be built.
    """
    if design is None:
        return DesignPoints(type="none", names=[], kinds=[], values=np.zeros((1, 0)))
    names = [p.name for p in design.parameters]
    kind_list = [kinds[n] for n in names]
    seed = int(design.seed if design.seed is not None else master_seed) % (2**32)
    if design.type == "grid":
        axes = [grid_axis(p.values, p.low, p.high, p.levels, kind)
                for p, kind in zip(design.parameters, kind_list, strict=True)]
        mesh = np.array(np.meshgrid(*[np.array([_stored(v) for v in a], dtype=float) for a in axes],
                                    indexing="ij"))
        values = mesh.reshape(len(names), -1).T
        finite = [[float(v) for v in a if v is not None] for a in axes]
        low = [min(f) if f else float("nan") for f in finite]
        high = [max(f) if f else float("nan") for f in finite]
        return DesignPoints(type="grid", names=names, kinds=kind_list, values=values, low=low, high=high,
                            options={}, grid_values=axes)

    flags = [n for n, k in zip(names, kind_list, strict=True) if k == "bool"]
    if flags:
        raise ValueError(f"a {design.type} design samples numbers between 'low' and 'high'; "
                         f"{', '.join(flags)} (true/false) can be varied only in a grid design")
    problem = {"num_vars": len(names), "names": names,
               "bounds": [[float(p.low), float(p.high)] for p in design.parameters]}
    if design.type == "lhs":
        from SALib.sample import latin

        raw = latin.sample(problem, int(design.n), seed=seed)
        options = {"n": int(design.n), "seed": seed}
    elif design.type == "morris":
        from SALib.sample import morris

        raw = morris.sample(problem, int(design.n), num_levels=int(design.levels), seed=seed)
        options = {"n": int(design.n), "levels": int(design.levels), "seed": seed}
    elif design.type == "sobol":
        from SALib.sample import sobol

        raw = sobol.sample(problem, int(design.n), calc_second_order=bool(design.second_order), seed=seed)
        options = {"n": int(design.n), "second_order": bool(design.second_order), "seed": seed}
    else:  # pragma: no cover - the spec's Literal forbids it
        raise ValueError(f"unknown design type {design.type!r}")
    values = _round_ints(np.asarray(raw, dtype=float), kind_list)
    return DesignPoints(type=design.type, names=names, kinds=kind_list, values=values,
                        low=[float(p.low) for p in design.parameters],
                        high=[float(p.high) for p in design.parameters], options=options)


def expected_points(design_type: str, k: int, n: int, second_order: bool = True) -> int:
    """Number of points SALib's samplers give: Morris (k+1)·n; Sobol n·(2k+2) or n·(k+2); lhs n."""
    if design_type == "morris":
        return (k + 1) * n
    if design_type == "sobol":
        return n * (2 * k + 2) if second_order else n * (k + 2)
    if design_type == "lhs":
        return n
    raise ValueError(f"no fixed size for design type {design_type!r}")
