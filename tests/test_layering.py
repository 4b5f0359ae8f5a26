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

from collections import defaultdict

from aoai_realtime.testing.imports import ROOT, SRC, cycles, imports_of, module_graph, modules, resolve

# Areas allowed to import the test kit and the benchmarks: they sit on top of the library.
TOP = {f"{ROOT}.cli", f"{ROOT}.apps", f"{ROOT}.bench", f"{ROOT}.testing"}
FORBIDDEN = {  # area -> areas it must never import
    f"{ROOT}.agents": {f"{ROOT}.engine"},
}


def _area(module: str) -> str:
    return ".".join(module.split(".")[:2])


def area_graph() -> dict[str, dict[str, str]]:
    """area -> {imported area: the first ``file:line -> module`` that imports it}."""
    graph: dict[str, dict[str, str]] = defaultdict(dict)
    known = modules()
    for name, path in known.items():
        source = _area(name)
        for target, line in imports_of(path):
            dest = _area(resolve(target, known))
            if dest not in (source, ROOT):
                graph[source].setdefault(dest, f"{path.relative_to(SRC)}:{line} -> {target}")
    return graph


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
