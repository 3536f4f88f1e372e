"""The five-level hierarchy as a ``networkx.DiGraph``, its departments and relays, and the routes of orders.

Nodes are administrative units (``central``, ``province``, ``prefecture``, ``county:<i>``,
``township:<j>``) and bureaus (``dept:<category>@<unit>``). A bureau is a *department* (kind
``department``: it handles the category's cases in its unit) or a *relay* (kind ``relay``: the same bureau
at a level between the prefecture and the one with jurisdiction, which passes orders on). Edges carry
``kind``: ``admin`` (a unit and the unit below it), ``attached`` (a unit and one of its bureaus) and
``counterpart`` (the way an order travels in a cascade: from a bureau to the same bureau one level
further from the prefecture — down to counties and townships, up to the province and the centre). The
default sizes follow Zhengzhou (12 county-level units, about 190 townships and streets; docs/sources.md, S8);
they come from the scenario.

Routing is read from the graph once, at set-up (:meth:`Hierarchy.compute_routes`): the handling department of
(category, township) is the bureau of that category ``attached`` to the township's unit at the category's
level, found by walking the ``admin`` edges up from the township; the *cascade* route is the shortest path
along ``counterpart`` edges from the category's bureau at the prefecture (the platform's first hand-over) to
that department (层层转办: every relay on the way holds the order); the *direct* route is the department alone
(Beijing's 2019 reform; docs/sources.md, S10). The tables are numpy arrays for speed; nothing is routed
beside them.
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
    role: str = "department"  # or "relay": passes orders on in a cascade, never handles them


ROLES = ("department", "relay")


class Hierarchy:
    """Units, departments and relays of one city, and the route tables read from its graph.

    ``departments``: every bureau that holds orders (handling departments and relays), one
    :class:`DepartmentRecord` each, indexed as the model's department agents. ``handler`` (category ×
    township): the handling department's index. ``routes[mode]`` (category × township × hop): the indices of
    the bureaus an order passes, handling department last, −1 after the end; ``route_len[mode]``: hops.
    ``township_county`` and ``township_urban`` (per township) are read from the graph with the routes.
    """

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
        county_of = np.repeat(
            np.arange(w.counties), np.diff(np.linspace(0, w.townships, w.counties + 1).round().astype(int)))
        n_urban = int(round(w.urban_township_share * w.townships))
        urban = np.zeros(w.townships, dtype=bool)
        urban[rng.permutation(w.townships)[:n_urban]] = True
        if w.townships == 1:
            urban[:] = w.urban_population_share >= 0.5
        for i in range(w.counties):
            g.add_node(f"county:{i}", level=Level.COUNTY.value, kind="unit")
            g.add_edge("prefecture", f"county:{i}", kind="admin")
        for j in range(w.townships):
            g.add_node(f"township:{j}", level=Level.TOWNSHIP.value, kind="unit", urban=bool(urban[j]))
            g.add_edge(f"county:{int(county_of[j])}", f"township:{j}", kind="admin")

        staff = scenario.departments.staff
        self._staff_by_level = {Level.CENTRAL: staff.prefecture, Level.PROVINCE: staff.prefecture,
                                Level.PREFECTURE: staff.prefecture, Level.COUNTY: staff.county,
                                Level.TOWNSHIP: staff.township}
        self._relay_staff = staff.relay
        self.departments: list[DepartmentRecord] = []
        self.jurisdiction_index = np.zeros(len(self.categories), dtype=np.int8)
        for c, name in enumerate(self.categories):
            level = scenario.demand.categories[name].jurisdiction
            self.jurisdiction_index[c] = LEVEL_INDEX[level]
            self._add_bureaus(g, name, level)
        self.graph = g
        self._apply_staff_by_department(scenario)
        self._apply_staff_scale(scenario)
        self.dept_category = np.array([self.categories.index(d.category) for d in self.departments], np.int32)
        self.dept_level = np.array([LEVEL_INDEX[d.level] for d in self.departments], dtype=np.int8)
        self.dept_staff = np.array([d.staff for d in self.departments], dtype=np.int64)
        self.dept_county = np.array([self._county_of(d.unit) for d in self.departments], dtype=np.int32)
        self.dept_relay = np.array([d.role == "relay" for d in self.departments], dtype=bool)
        self.compute_routes()

    # ------------------------------------------------------------------------------------ the graph
    def _add_bureaus(self, g: nx.DiGraph, category: str, level: Level) -> None:
        """The category's handling departments at ``level`` and its relays between the prefecture and there,
        linked by ``counterpart`` edges in the direction an order travels."""
        li, pi = LEVEL_INDEX[level], PREFECTURE_INDEX
        chain = range(pi, li + 1) if li >= pi else range(pi, li - 1, -1)  # from the prefecture outward
        previous: dict[str, str] = {}
        for lj in chain:
            role = "department" if lj == li else "relay"
            here: dict[str, str] = {}
            for unit in self._units_at(LEVELS[lj]):
                node = f"dept:{category}@{unit}"
                staff = self._staff_by_level[LEVELS[lj]] if role == "department" else self._relay_staff
                idx = len(self.departments)
                self.departments.append(DepartmentRecord(idx, node, category, LEVELS[lj], unit, int(staff), role))
                g.add_node(node, level=LEVELS[lj].value, kind=role, category=category, index=idx, unit=unit)
                g.add_edge(unit, node, kind="attached")
                here[unit] = node
                # the order comes from the same bureau of the unit next to this one on the prefecture's side
                near = None
                if lj > pi:
                    near = next(u for u in g.predecessors(unit) if g.edges[u, unit]["kind"] == "admin")
                elif lj < pi:
                    near = next(v for v in g.successors(unit) if g.edges[unit, v]["kind"] == "admin")
                if near is not None and near in previous:
                    g.add_edge(previous[near], node, kind="counterpart")
            previous = here

    def compute_routes(self) -> None:
        """Read the handling departments and the cascade and direct routes from :attr:`graph` (call again after
        changing the graph). Raises ``ValueError`` naming the bureau an order cannot reach."""
        g = self.graph
        # the administrative tree and the order edges as graphs of their own (every node, the edges of one kind
        # in the graph's order: the same searches as on filtered views of the graph, without a filter call per
        # edge looked at)
        admin, orders = nx.DiGraph(), nx.DiGraph()
        admin.add_nodes_from(g)
        orders.add_nodes_from(g)
        admin.add_edges_from((u, v) for u, v, k in g.edges(data="kind") if k == "admin")
        orders.add_edges_from((u, v) for u, v, k in g.edges(data="kind") if k == "counterpart")
        attached = {(u, g.nodes[v]["category"]): v for u, v, k in g.edges(data="kind") if k == "attached"}
        n_c, n_t = len(self.categories), self.n_townships
        from_top = nx.single_source_shortest_path(admin, "central")  # a tree: one path to each unit
        chains = [from_top[f"township:{j}"] for j in range(n_t)]
        self.township_county = np.array([int(ch[LEVEL_INDEX[Level.COUNTY]].split(":")[1]) for ch in chains],
                                         dtype=np.int64)
        self.township_urban = np.array([bool(g.nodes[f"township:{j}"].get("urban")) for j in range(n_t)])
        self.handler = np.zeros((n_c, n_t), dtype=np.int32)
        paths: list[list[list[int]]] = []
        for c, name in enumerate(self.categories):
            start = attached[(chains[0][PREFECTURE_INDEX], name)]
            reach = nx.single_source_shortest_path(orders, start)
            row = []
            for j in range(n_t):
                target = attached.get((chains[j][self.jurisdiction_index[c]], name))
                if target is None or g.nodes[target]["kind"] != "department":
                    raise ValueError(f"no department of '{name}' is attached to {chains[j][self.jurisdiction_index[c]]}")
                if target not in reach:
                    raise ValueError(f"an order for '{name}' cannot reach {target} from {start} along counterpart edges")
                self.handler[c, j] = g.nodes[target]["index"]
                row.append([g.nodes[v]["index"] for v in reach[target]])
            paths.append(row)
        longest = max(len(p) for row in paths for p in row)
        cascade = np.full((n_c, n_t, longest), -1, dtype=np.int32)
        for c, row in enumerate(paths):
            for j, p in enumerate(row):
                cascade[c, j, : len(p)] = p
        direct = np.full((n_c, n_t, 1), -1, dtype=np.int32)
        direct[:, :, 0] = self.handler
        self.routes = {DispatchMode.CASCADE: cascade, DispatchMode.DIRECT: direct}
        self.route_len = {mode: (r >= 0).sum(axis=2).astype(np.int8) for mode, r in self.routes.items()}

    def _apply_staff_by_department(self, scenario: Scenario) -> None:
        """``departments.staff_by_department`` overrides the staff (by level, or ``staff.relay``) of the
        departments and relays it names.

        Raises :class:`~sim.scenario.ScenarioError` for a name that is not a department or relay of this city
        (a unit, or a bureau the city does not have), naming a few valid ones.
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

    def _apply_staff_scale(self, scenario: Scenario) -> None:
        """``departments.staff_scale``: each department's staff times its level's multiplier (relays: the
        ``relay`` one), rounded, at least 1 where there was any staff."""
        sc = scenario.departments.staff_scale
        by_level = {Level.CENTRAL: sc.prefecture, Level.PROVINCE: sc.prefecture, Level.PREFECTURE: sc.prefecture,
                    Level.COUNTY: sc.county, Level.TOWNSHIP: sc.township}
        for d in self.departments:
            factor = sc.relay if d.role == "relay" else by_level[d.level]
            if factor != 1.0 and d.staff > 0:
                d.staff = max(1, int(round(d.staff * factor)))

    def _unknown_department_message(self, scenario: Scenario, unknown: list[str]) -> str:
        first = sorted(unknown)[0]
        kind = self.graph.nodes[first].get("kind") if first in self.graph else None
        why = {"unit": "an administrative unit, not a department"}.get(kind, "not a department of this city")
        names = [d.node for d in self.departments]
        examples = ", ".join(f"'{n}'" for n in names[:2] + names[-1:])
        more = f" and {len(unknown) - 1} more" if len(unknown) > 1 else ""
        return (f"scenario '{scenario.name}': key 'departments.staff_by_department': '{first}'{more}: {why}. "
                f"Departments and relays are named 'dept:<category>@<unit>' for the city's {self.n_counties} "
                f"counties and {self.n_townships} townships, e.g. {examples} ({len(names)} in all); "
                f"`python run.py plan-staff` writes the full list")

    # --------------------------------------------------------------------------------------------
    def _units_at(self, level: Level) -> list[str]:
        if level == Level.COUNTY:
            return [f"county:{i}" for i in range(self.n_counties)]
        if level == Level.TOWNSHIP:
            return [f"township:{j}" for j in range(self.n_townships)]
        return [level.value]

    @staticmethod
    def _county_of(unit: str) -> int:
        return int(unit.split(":")[1]) if unit.startswith("county:") else -1

    def route(self, category: str, township: int, mode: DispatchMode) -> list[str]:
        """The nodes an order passes, from the prefecture platform to the handling department (from the
        route table)."""
        c = self.categories.index(category)
        hops = self.routes[mode][c, township, : int(self.route_len[mode][c, township])]
        return ["platform"] + [self.departments[int(i)].node for i in hops]
