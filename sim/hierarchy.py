"""The five-level hierarchy as a ``networkx.DiGraph``, its departments, and routing.

Nodes are administrative units (``central``, ``province``, ``prefecture``, ``county:<i>``,
``township:<j>``) and departments (``dept:<category>@<unit>``). Edges carry ``kind``:
``admin`` (a unit and the unit below it), ``attached`` (a unit and one of its departments) and
``counterpart`` (a bureau and the same bureau one level down). The default sizes follow Zhengzhou
(12 county-level units, about 190 townships and streets; docs/sources.md, S8); they come from the scenario.

Routing: the department that handles (category, township) is the category's bureau at the level
that has jurisdiction, in the unit that contains the township. The order either ``cascade``s from the
prefecture platform down every level in between (one hand-over per hop), or goes ``direct`` to the
handling unit in one hop (Beijing's 2019 reform; docs/sources.md, S10).
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np

from .scenario import DispatchMode, Level, Scenario, ScenarioError

LEVELS: tuple[Level, ...] = (Level.CENTRAL, Level.PROVINCE, Level.PREFECTURE, Level.COUNTY, Level.TOWNSHIP)
LEVEL_INDEX = {lv: i for i, lv in enumerate(LEVELS)}
PREFECTURE_INDEX = LEVEL_INDEX[Level.PREFECTURE]


@dataclass
class DepartmentRecord:
    index: int
    node: str
    category: str
    level: Level
    unit: str
    staff: int


class Hierarchy:
    """Units, departments and the routing table of one city."""

    def __init__(self, scenario: Scenario, rng: np.random.Generator) -> None:
        w = scenario.world
        self.categories: list[str] = list(scenario.demand.categories)
        g = nx.DiGraph()
        g.add_node("central", level=Level.CENTRAL.value, kind="unit")
        g.add_node("province", level=Level.PROVINCE.value, kind="unit")
        g.add_node("prefecture", level=Level.PREFECTURE.value, kind="unit")
        g.add_edge("central", "province", kind="admin")
        g.add_edge("province", "prefecture", kind="admin")
        self.n_counties = w.counties
        self.n_townships = w.townships
        # townships are spread over counties as evenly as possible (the first counties get one more)
        self.township_county = np.repeat(
            np.arange(w.counties), np.diff(np.linspace(0, w.townships, w.counties + 1).round().astype(int)))
        n_urban = int(round(w.urban_township_share * w.townships))
        self.township_urban = np.zeros(w.townships, dtype=bool)
        self.township_urban[rng.permutation(w.townships)[:n_urban]] = True
        if w.townships == 1:
            self.township_urban[:] = w.urban_population_share >= 0.5
        for i in range(w.counties):
            g.add_node(f"county:{i}", level=Level.COUNTY.value, kind="unit")
            g.add_edge("prefecture", f"county:{i}", kind="admin")
        for j in range(w.townships):
            g.add_node(f"township:{j}", level=Level.TOWNSHIP.value, kind="unit",
                       urban=bool(self.township_urban[j]))
            g.add_edge(f"county:{int(self.township_county[j])}", f"township:{j}", kind="admin")

        staff = scenario.departments.staff
        staff_by_level = {Level.CENTRAL: staff.prefecture, Level.PROVINCE: staff.prefecture,
                          Level.PREFECTURE: staff.prefecture, Level.COUNTY: staff.county,
                          Level.TOWNSHIP: staff.township}
        self.departments: list[DepartmentRecord] = []
        self.handler = np.zeros((len(self.categories), w.townships), dtype=np.int32)
        self.jurisdiction_index = np.zeros(len(self.categories), dtype=np.int8)
        for c, name in enumerate(self.categories):
            level = scenario.demand.categories[name].jurisdiction
            self.jurisdiction_index[c] = LEVEL_INDEX[level]
            units = self._units_at(level)
            ids = {}
            for unit in units:
                ids[unit] = self._add_department(g, name, level, unit, staff_by_level[level])
            # counterpart chain: the bureau at every level from the prefecture down to the jurisdiction
            self._add_counterparts(g, name, level)
            for j in range(w.townships):
                self.handler[c, j] = ids[self._unit_of(level, j)]
        self.graph = g
        self._apply_staff_by_department(scenario)
        self.dept_category = np.array([self.categories.index(d.category) for d in self.departments], np.int32)
        self.dept_level = np.array([LEVEL_INDEX[d.level] for d in self.departments], dtype=np.int8)
        self.dept_staff = np.array([d.staff for d in self.departments], dtype=np.int64)
        self.dept_county = np.array([self._county_of(d.unit) for d in self.departments], dtype=np.int32)

    def _apply_staff_by_department(self, scenario: Scenario) -> None:
        """``departments.staff_by_department`` overrides the staff by level of the departments it names.

        Raises :class:`~sim.scenario.ScenarioError` for a name that is not a handling department of this city
        (a relay bureau, a unit, or a department the city does not have), naming a few valid ones.
        """
        given = scenario.departments.staff_by_department
        if not given:
            return
        index = {d.node: d for d in self.departments}
        unknown = [name for name in given if name not in index]
        if unknown:
            raise ScenarioError(self._unknown_department_message(scenario, unknown))
        for name, staff in given.items():
            index[name].staff = int(staff)

    def _unknown_department_message(self, scenario: Scenario, unknown: list[str]) -> str:
        first = sorted(unknown)[0]
        kind = self.graph.nodes[first].get("kind") if first in self.graph else None
        why = {"relay": "a relay bureau (it passes orders on in a cascade, never handles them)",
               "unit": "an administrative unit, not a department"}.get(kind, "not a department of this city")
        names = [d.node for d in self.departments]
        examples = ", ".join(f"'{n}'" for n in names[:2] + names[-1:])
        more = f" and {len(unknown) - 1} more" if len(unknown) > 1 else ""
        return (f"scenario '{scenario.name}': key 'departments.staff_by_department': '{first}'{more}: {why}. "
                f"Handling departments are named 'dept:<category>@<unit>' for the city's {self.n_counties} "
                f"counties and {self.n_townships} townships, e.g. {examples} ({len(names)} in all); "
                f"`python run.py plan-staff` writes the full list")

    # --------------------------------------------------------------------------------------------
    def _units_at(self, level: Level) -> list[str]:
        if level == Level.COUNTY:
            return [f"county:{i}" for i in range(self.n_counties)]
        if level == Level.TOWNSHIP:
            return [f"township:{j}" for j in range(self.n_townships)]
        return [level.value]

    def _unit_of(self, level: Level, township: int) -> str:
        if level == Level.TOWNSHIP:
            return f"township:{township}"
        if level == Level.COUNTY:
            return f"county:{int(self.township_county[township])}"
        return level.value

    @staticmethod
    def _county_of(unit: str) -> int:
        return int(unit.split(":")[1]) if unit.startswith("county:") else -1

    def _add_department(self, g: nx.DiGraph, category: str, level: Level, unit: str, staff: int) -> int:
        node = f"dept:{category}@{unit}"
        idx = len(self.departments)
        self.departments.append(DepartmentRecord(idx, node, category, level, unit, int(staff)))
        g.add_node(node, level=level.value, kind="department", category=category, index=idx, unit=unit)
        g.add_edge(unit, node, kind="attached")
        return idx

    def _add_counterparts(self, g: nx.DiGraph, category: str, level: Level) -> None:
        """Counterpart bureaus above the handling level (they relay orders in a cascade, never handle)."""
        top = min(LEVEL_INDEX[level], PREFECTURE_INDEX)
        chain: list[list[str]] = []
        for li in range(top, LEVEL_INDEX[level] + 1):
            units = self._units_at(LEVELS[li])
            nodes = []
            for unit in units:
                node = f"dept:{category}@{unit}"
                if node not in g:
                    g.add_node(node, level=LEVELS[li].value, kind="relay", category=category, unit=unit)
                    g.add_edge(unit, node, kind="attached")
                nodes.append(node)
            chain.append(nodes)
        for upper, lower in zip(chain, chain[1:], strict=False):
            for lo in lower:
                unit = g.nodes[lo]["unit"]
                parent_unit = next(iter(g.predecessors(unit)))
                up = f"dept:{category}@{parent_unit}"
                if up in upper:
                    g.add_edge(up, lo, kind="counterpart")

    # --------------------------------------------------------------------------------------------
    def hops(self, category_idx: np.ndarray, mode: DispatchMode) -> np.ndarray:
        """Hand-overs an order needs to reach its handling department."""
        if mode == DispatchMode.DIRECT:
            return np.ones(len(category_idx), dtype=np.int8)
        return (np.abs(self.jurisdiction_index[category_idx].astype(np.int16) - PREFECTURE_INDEX) + 1).astype(np.int8)

    def route(self, category: str, township: int, mode: DispatchMode) -> list[str]:
        """The nodes an order passes, from the prefecture platform to the handling department."""
        c = self.categories.index(category)
        target = self.departments[int(self.handler[c, township])]
        if mode == DispatchMode.DIRECT:
            return ["platform", target.node]
        path = ["platform"]
        li_target = LEVEL_INDEX[target.level]
        step = 1 if li_target >= PREFECTURE_INDEX else -1
        for li in range(PREFECTURE_INDEX, li_target + step, step):
            path.append(f"dept:{category}@{self._unit_of(LEVELS[li], township)}")
        return path
