"""Print the structure figures issue 12 asks for: import cycles, the largest classes, lines per layer.

    .venv/bin/python scripts/structure_report.py [--top 10]

Reads ``src/aoai_realtime`` with ``ast`` through :mod:`aoai_realtime.testing.imports` (the modules are read, not run). Imports inside functions count; cycles are
listed twice: at run time, and counting ``if TYPE_CHECKING:`` imports too (two modules that name each other's
types still cannot be understood apart). A cycle is a strongly connected component of more than one module.
"""

from __future__ import annotations

import argparse
import ast
from collections import defaultdict

from aoai_realtime.testing.imports import ROOT as PACKAGE
from aoai_realtime.testing.imports import cycles, module_graph, modules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=10, help="how many of the largest classes to list")
    args = parser.parse_args()
    names = modules()
    for type_checking, label in ((False, "at run time (lazy imports included)"),
                                 (True, "counting imports under TYPE_CHECKING too")):
        # a package's __init__ importing its own submodules is not a cycle of meaning: leave parent -> child out
        graph = {n: {t for t in ts if not t.startswith(n + ".")}
                 for n, ts in module_graph(type_checking=type_checking).items()}
        found = cycles(graph)
        print(f"import cycles {label}: {len(found)}")
        for comp in found:
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
