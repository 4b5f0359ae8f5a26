"""Print the structure figures issue 12 asks for: import cycles, the largest classes, lines per layer.

    .venv/bin/python scripts/structure_report.py [--top 10]

Reads ``src/aoai_realtime`` with ``ast`` (nothing is imported). Imports inside functions count; cycles are
listed twice: at run time, and counting ``if TYPE_CHECKING:`` imports too (two modules that name each other's
types still cannot be understood apart). A cycle is a strongly connected component of more than one module.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "aoai_realtime"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_only_nodes(tree: ast.AST) -> set[int]:
    """ids of the import nodes under ``if TYPE_CHECKING:``."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for stmt in node.body:
                out.update(id(n) for n in ast.walk(stmt))
    return out


def imports_of(path: Path, name: str, known: set[str], *, type_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    skip = set() if type_only else _type_only_nodes(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            targets = [f"{prefix}.{alias.name}" for alias in node.names] + [prefix]
        for target in targets:
            # the longest known module that the import names (``from .x import y`` may name module x.y)
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and target.startswith(PACKAGE):
                found.add(target)
    return found


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    sys.setrecursionlimit(10_000)

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=10, help="how many of the largest classes to list")
    args = parser.parse_args()
    files = sorted((ROOT / PACKAGE).rglob("*.py"))
    names = {module_name(p): p for p in files}
    known = set(names)
    for type_only, label in ((False, "at run time (lazy imports included)"),
                             (True, "counting imports under TYPE_CHECKING too")):
        graph = {name: imports_of(path, name, known, type_only=type_only) for name, path in names.items()}
        # a package's __init__ importing its own submodules is not a cycle of meaning: leave parent -> child out
        graph = {n: {t for t in ts if not t.startswith(n + ".")} for n, ts in graph.items()}
        cycles = strongly_connected(graph)
        print(f"import cycles {label}: {len(cycles)}")
        for comp in cycles:
            print("  " + " <-> ".join(m.removeprefix(PACKAGE + ".") for m in comp))
    classes: list[tuple[int, str]] = []
    layers: dict[str, int] = defaultdict(int)
    for name, path in names.items():
        text = path.read_text(encoding="utf-8")
        rel = name.removeprefix(PACKAGE).lstrip(".")
        layer = rel.split(".")[0] if "." in rel or path.name == "__init__.py" else rel
        layers[layer or "(package root)"] += len(text.splitlines())
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                classes.append((node.end_lineno - node.lineno + 1, f"{rel}.{node.name}"))
    print(f"largest classes (lines, top {args.top}):")
    for lines, cls in sorted(classes, reverse=True)[: args.top]:
        print(f"  {lines:5d}  {cls}")
    print("lines per layer:")
    for layer, lines in sorted(layers.items(), key=lambda kv: -kv[1]):
        print(f"  {lines:6d}  {layer}")


if __name__ == "__main__":
    main()
