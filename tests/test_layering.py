"""The house is layered (issue 12 item 3): read every module under ``src/aoai_realtime`` with :mod:`ast` (nothing is
imported) and check the import graph between areas (``aoai_realtime.<area>``; a top-level module such as
``client.py`` is an area of its own).

- no cycle between areas, nor between modules (a module importing a package counts as importing its
  ``__init__``);
- no area imports ``aoai_realtime.cli`` (the root CLI hands each area the apps it registers on);
- the agents do not import the engine, and no library area imports ``testing`` or ``bench`` (only the app shell,
  the benchmarks and the CLI root may).

Imports under ``if TYPE_CHECKING:`` are ignored (they never run); imports inside functions count.
"""

from __future__ import annotations

import ast
import functools
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "aoai_realtime"

# Areas allowed to import the test kit and the benchmarks: they sit on top of the library.
TOP = {f"{ROOT}.cli", f"{ROOT}.apps", f"{ROOT}.bench", f"{ROOT}.testing"}
FORBIDDEN = {  # area -> areas it must never import
    f"{ROOT}.agents": {f"{ROOT}.engine"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _area(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    return skip


@functools.cache
def imports_of(path: Path) -> list[tuple[str, int]]:
    """``(imported module, line)`` for every import in ``path`` that runs, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    skip = _type_checking_nodes(tree)
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module is None:  # from . import x, y: each name may be a module
                found += [(f"{target}.{alias.name}", node.lineno) for alias in node.names]
            else:
                found.append((target, node.lineno))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "__import__"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.append((node.args[0].value, node.lineno))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "__import__"
              and node.args and isinstance(node.args[0], ast.JoinedStr)):
            prefix = node.args[0].values[0]
            if isinstance(prefix, ast.Constant) and isinstance(prefix.value, str):
                found.append((prefix.value.rstrip("."), node.lineno))
    return [(name, line) for name, line in found if name == ROOT or name.startswith(ROOT + ".")]


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((SRC / ROOT).rglob("*.py"))}


def _resolve(target: str, modules: dict[str, Path]) -> str:
    """The module ``target`` names (``from .x import name``: the module x; ``from . import __version__``: the
    package)."""
    while target and target not in modules:
        target = target.rpartition(".")[0]
    return target


def area_graph() -> dict[str, dict[str, str]]:
    """area -> {imported area: the first ``file:line -> module`` that imports it}."""
    graph: dict[str, dict[str, str]] = defaultdict(dict)
    modules = _modules()
    for name, path in modules.items():
        source = _area(name)
        for target, line in imports_of(path):
            dest = _area(_resolve(target, modules))
            if dest not in (source, ROOT):
                graph[source].setdefault(dest, f"{path.relative_to(SRC)}:{line} -> {target}")
    return graph


def module_graph() -> dict[str, dict[str, str]]:
    """module -> {imported module (or package ``__init__``): where}."""
    modules = _modules()
    graph: dict[str, dict[str, str]] = defaultdict(dict)
    for name, path in modules.items():
        for target, line in imports_of(path):
            target = _resolve(target, modules)
            if target and target != name:
                graph[name].setdefault(target, f"{path.relative_to(SRC)}:{line}")
    return graph


def cycles(graph: dict[str, dict[str, str]]) -> list[list[str]]:
    """The strongly connected components with more than one area (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component: list[str] = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def test_the_checker_sees_a_cycle_and_the_imports_it_must() -> None:
    # The oracle itself can fail: a made-up graph with a cycle is reported, one without is not.
    assert cycles({"a": {"b": ""}, "b": {"c": ""}, "c": {"a": ""}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b": ""}, "b": {"c": ""}}) == []
    graph = area_graph()
    assert f"{ROOT}.protocol" in graph[f"{ROOT}.client"]  # the client is built on the protocol core
    assert f"{ROOT}.engine" in graph[f"{ROOT}.testing"]  # resolved relative and lazy imports are seen


def test_no_import_cycles_between_areas() -> None:
    graph = area_graph()
    report = [
        f"{' <-> '.join(c)}: " + "; ".join(graph[a][b] for a in c for b in graph[a] if b in c) for c in cycles(graph)
    ]
    assert not report, "import cycles between areas:\n" + "\n".join(report)


def test_no_import_cycles_between_modules() -> None:
    graph = module_graph()
    report = [
        f"{' <-> '.join(c)}: " + "; ".join(graph[a][b] for a in c for b in graph[a] if b in c) for c in cycles(graph)
    ]
    assert not report, "import cycles between modules (lazy imports count):\n" + "\n".join(report)


def test_no_area_imports_the_cli_root() -> None:
    offenders = [where for area, edges in area_graph().items() for dest, where in edges.items()
                 if dest == f"{ROOT}.cli" and area != f"{ROOT}.cli"]
    assert not offenders, "register on the app you are given instead:\n" + "\n".join(offenders)


def test_forbidden_imports() -> None:
    offenders = []
    for area, edges in area_graph().items():
        banned = set(FORBIDDEN.get(area, set()))
        if area not in TOP:
            banned |= {f"{ROOT}.testing", f"{ROOT}.bench"}
        offenders += [where for dest, where in edges.items() if dest in banned]
    assert not offenders, "forbidden imports:\n" + "\n".join(sorted(offenders))
