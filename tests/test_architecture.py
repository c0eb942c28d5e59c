"""The import rules of docs/architecture.md, enforced: every module has a layer, every import points
to the same layer or a lower one, nothing goes round in a circle, and the emulator stands alone.

The graph comes from the source (ast), not from importing: imports inside functions and under
`TYPE_CHECKING` count as much as those at the top.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Dict, FrozenSet, List, Optional, Set, Tuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = ROOT / "azure_openai_connector"
PACKAGE = "azure_openai_connector"
DOC = ROOT / "docs" / "architecture.md"
EMULATOR = f"{PACKAGE}.emulator"
# Edges exempt from the circle check only, while `connection_from_env` still lives in cli.py (the
# commands, the demo and the playground all need it). Each must still exist: delete it when it goes.
KNOWN_CIRCLE_EDGES: FrozenSet[Tuple[str, str]] = frozenset()

Edge = Tuple[str, str]


def module_files() -> Dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    modules = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def imported_names(module: str, path: Path) -> Set[str]:
    """The dotted names `module` imports anywhere in its source, relative imports resolved."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            names.add(source)
            # `from x import y` imports the module x.y when there is one.
            names.update(f"{source}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> Dict[str, Set[str]]:
    """module -> the package's modules it imports. Importing a.b.c also runs the packages a.b
    and a, except those the importer is inside of (they are running already)."""
    modules = module_files()
    graph: Dict[str, Set[str]] = {}
    for module, path in modules.items():
        targets: Set[str] = set()
        own_packages = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 2)}
        for name in imported_names(module, path):
            parts = name.split(".")
            for length in range(len(parts), 0, -1):
                target = ".".join(parts[:length])
                if target in modules and target not in own_packages:
                    targets.add(target)
        graph[module] = targets
    return graph


def layer_table() -> List[Tuple[int, List[str]]]:
    """(layer number, module patterns) from the table between the layer-table markers of the doc."""
    text = DOC.read_text(encoding="utf-8")
    found = re.search(r"<!-- layer-table:start -->(.*?)<!-- layer-table:end -->", text, re.S)
    assert found, f"{DOC} lacks its layer table markers"
    rows = []
    for line in found.group(1).strip().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].isdigit():
            rows.append((int(cells[0]), re.findall(r"`([^`]+)`", cells[2])))
    return rows


def layer_of(module: str, table: List[Tuple[int, List[str]]]) -> Optional[int]:
    """The layer of one module per the table (`__init__` is the package root, `x.*` x's modules)."""
    relative = "__init__" if module == PACKAGE else module[len(PACKAGE) + 1:]
    matches = [layer for layer, patterns in table for pattern in patterns
               if pattern == relative or (pattern.endswith(".*") and relative.startswith(pattern[:-1]))]
    assert len(matches) <= 1, f"{module} is in more than one row of the layer table: {matches}"
    return matches[0] if matches else None


def is_emulator(module: str) -> bool:
    return module == EMULATOR or module.startswith(EMULATOR + ".")


def client_graph(graph: Dict[str, Set[str]]) -> Dict[str, Set[str]]:
    """The graph of the client side: every module but the emulator's, and edges among those."""
    return {module: {target for target in targets if not is_emulator(target)}
            for module, targets in graph.items() if not is_emulator(module)}


def upward_edges(graph: Dict[str, Set[str]], table: List[Tuple[int, List[str]]]) -> List[str]:
    """Every import that points to a higher layer, as 'importer (layer n) -> imported (layer m)'."""
    found = []
    for module, targets in sorted(client_graph(graph).items()):
        for target in sorted(targets):
            here, there = layer_of(module, table), layer_of(target, table)
            if here is not None and there is not None and there < here:
                found.append(f"{module} (layer {here}) -> {target} (layer {there})")
    return found


def circles(graph: Dict[str, Set[str]], exempt: FrozenSet[Edge] = frozenset()) -> List[List[str]]:
    """One circle per strongly connected group of modules (Tarjan), each as a closed path."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    groups: List[List[str]] = []

    def edges(module: str) -> List[str]:
        return sorted(t for t in graph.get(module, ()) if (module, t) not in exempt and t in graph)

    def visit(module: str) -> None:  # the package has ~60 modules: recursion depth is no concern
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in edges(module):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return [_closed_path(group, edges) for group in groups]


def _closed_path(group: List[str], edges) -> List[str]:
    """A path through `group` from its first module back to it, for a readable failure."""
    start, members = group[0], set(group)
    previous: Dict[str, str] = {}
    frontier = [start]
    while frontier:  # breadth-first, bounded by the group's size
        module = frontier.pop(0)
        for target in edges(module):
            if target == start:
                path = [module]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [start] + path[::-1][1:] + [start] if len(path) > 1 else [start, module, start]
            if target in members and target not in previous and target != start:
                previous[target] = module
                frontier.append(target)
    return group


GRAPH = import_graph()
TABLE = layer_table()


def test_the_graph_sees_imports_at_the_top_in_functions_and_for_type_checkers():
    # A top-level import, a lazy one inside a function, and one under TYPE_CHECKING.
    assert f"{PACKAGE}.runtime" in GRAPH[f"{PACKAGE}.host_hooks"]
    assert f"{PACKAGE}.host_hooks" in GRAPH[f"{PACKAGE}.host_manager"]
    assert {f"{PACKAGE}.connection", f"{PACKAGE}.http"} <= GRAPH[f"{PACKAGE}.hookspecs"]
    # Importing a submodule runs its package: actions importing http.messages would import http.
    assert f"{PACKAGE}.http" in GRAPH[f"{PACKAGE}.actions"]


def test_every_module_has_exactly_one_layer():
    missing = [module for module in sorted(GRAPH) if not is_emulator(module) and layer_of(module, TABLE) is None]
    assert missing == [], f"modules in no row of the layer table of {DOC.name}: {missing}"


def test_every_import_points_down_the_layers():
    found = upward_edges(GRAPH, TABLE)
    assert found == [], "imports pointing up the layers of docs/architecture.md:\n" + "\n".join(found)


def test_no_import_circles():
    found = circles(GRAPH, exempt=KNOWN_CIRCLE_EDGES)
    assert found == [], "import circles:\n" + "\n".join(" -> ".join(circle) for circle in found)


def test_the_known_circle_edges_still_exist():
    # Once an exempt edge is gone, its exemption must go too, or the circle could quietly return.
    stale = sorted(edge for edge in KNOWN_CIRCLE_EDGES if edge[1] not in GRAPH.get(edge[0], ()))
    assert stale == [], f"delete these from KNOWN_CIRCLE_EDGES: {stale}"


def test_the_emulator_imports_nothing_from_the_client_side():
    outside = sorted(f"{module} -> {target}" for module, targets in GRAPH.items() if is_emulator(module)
                     for target in targets if not is_emulator(target))
    assert outside == [], "the emulator imports from the client side:\n" + "\n".join(outside)


def test_only_the_entry_points_for_people_import_the_emulator():
    importers = sorted(f"{module} (layer {layer_of(module, TABLE)})" for module, targets in GRAPH.items()
                       if not is_emulator(module) and any(is_emulator(t) for t in targets)
                       and layer_of(module, TABLE) != 1)
    assert importers == [], f"only layer 1 may import the emulator: {importers}"


# --- the checks themselves can fail ------------------------------------------------------------


def test_an_upward_import_is_reported_with_its_edge():
    graph = {module: set(targets) for module, targets in GRAPH.items()}
    graph[f"{PACKAGE}.http.client"].add(f"{PACKAGE}.cli")
    assert upward_edges(graph, TABLE) == [f"{PACKAGE}.http.client (layer 10) -> {PACKAGE}.cli (layer 1)"]


def test_a_circle_is_reported_as_a_closed_path():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c", "a"]]
    assert circles(graph, exempt=frozenset({("c", "a")})) == []


@pytest.mark.parametrize("source, expected", [
    ("from ..http import HttpClient", {f"{PACKAGE}.http", f"{PACKAGE}.http.HttpClient"}),
    ("from . import Step", {f"{PACKAGE}.actions", f"{PACKAGE}.actions.Step"}),
    ("def lazy():\n    from ..cli import main", {f"{PACKAGE}.cli", f"{PACKAGE}.cli.main"}),
    ("import azure_openai_connector.errors", {f"{PACKAGE}.errors"}),
])
def test_relative_and_lazy_imports_resolve(tmp_path: Path, source: str, expected: Set[str]):
    path = tmp_path / "probe.py"
    path.write_text(source + "\n", encoding="utf-8")
    assert imported_names(f"{PACKAGE}.actions.probe", path) == expected
