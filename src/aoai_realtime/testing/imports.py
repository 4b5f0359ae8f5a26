"""The package's import graph, read with :mod:`ast` (nothing is imported), and the cycles in it.

Used by ``tests/test_layering.py`` (the layering rules) and ``scripts/structure_report.py`` (the figures). Imports
inside functions count, and so do ``__import__("aoai_realtime...")`` calls; imports under ``if TYPE_CHECKING:``
count only when asked (``type_checking=True``). A cycle is a strongly connected component of more than one node.
"""

from __future__ import annotations

import ast
import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["ROOT", "SRC", "cycles", "imports_of", "module_graph", "module_name", "modules", "resolve"]

ROOT = "aoai_realtime"
SRC = Path(__file__).resolve().parents[2]  # the directory that holds the package


def module_name(path: Path) -> str:
    """``src/aoai_realtime/engine/app.py`` -> ``aoai_realtime.engine.app`` (a package is its ``__init__``)."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    """Every module of the package, by name."""
    return {module_name(p): p for p in sorted((SRC / ROOT).rglob("*.py"))}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    return skip


@functools.cache
def imports_of(path: Path, *, type_checking: bool = False) -> list[tuple[str, int]]:
    """``(name, line)`` for every import of the package in ``path``, relative ones resolved. A ``from m import n``
    gives both ``m.n`` and ``m`` (``n`` may be a submodule): :func:`resolve` keeps the longest that is a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    skip = set() if type_checking else _type_checking_nodes(tree)
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
            found += [(f"{target}.{alias.name}", node.lineno) for alias in node.names]
            if node.module is not None:
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


def resolve(target: str, known: Mapping[str, Path]) -> str:
    """The module ``target`` names: itself, or the longest known module it starts with (``from .x import name``:
    the module x; ``from . import __version__``: the package)."""
    while target and target not in known:
        target = target.rpartition(".")[0]
    return target


def module_graph(*, type_checking: bool = False) -> dict[str, dict[str, str]]:
    """module -> {imported module (or package ``__init__``): the first ``file:line`` that imports it}."""
    known = modules()
    graph: dict[str, dict[str, str]] = defaultdict(dict)
    for name, path in known.items():
        for target, line in imports_of(path, type_checking=type_checking):
            target = resolve(target, known)
            if target and target != name:
                graph[name].setdefault(target, f"{path.relative_to(SRC)}:{line}")
    return graph


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node, each sorted (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found
