"""The memory benchmark behind ``aoai-realtime bench memory`` and ``bench/bench_memory.py``.

Part 1, recall: every LoCoMo-format conversation of a directory is indexed turn by turn (one chunk per turn) and
evidence recall@k is reported for BM25 only, dense only and hybrid (plus, with ``ablations``, hybrid with each
signal switched off). Part 2, latency: p50/p95 of retrieval at growing store sizes on each back end, with and
without embedding the query, and index build time (see :mod:`.latency`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..memory.embeddings import CachedEmbedder, EmbeddingProvider, HashEmbedder, LocalEmbedder
from ..memory.graph import ChunkGraph
from ..memory.graph_llm import LLMChunkGraph
from ..memory.retrieval import HybridRetriever, RetrievalConfig
from ..memory.types import EmbeddingError
from .memory_latency import measure_latency
from .memory_recall import TUNE_CONVERSATIONS, Step, default_methods, evaluate_locomo

__all__ = ["BenchOptions", "ablation_methods", "default_cache_dir", "render_text", "run_memory_bench"]


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/aoai-realtime`` (or ``~/.cache/aoai-realtime``): where embeddings are cached."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "aoai-realtime"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BenchOptions:
    locomo: Path
    ks: tuple[int, ...] = (5, 10)
    recall_backend: str = "sqlite"
    latency_backends: tuple[str, ...] = ("sqlite", "postgres")
    sizes: tuple[int, ...] = (1000, 10_000, 100_000)
    queries: int = 100
    embedder: str = "local"
    cache_dir: Path | None = None
    pg_uri: str | None = None
    ablations: bool = False
    latency: bool = True
    recall: bool = True
    tune: frozenset[str] = TUNE_CONVERSATIONS
    graph: str = "names"  # "names" (the stores' capitalisation rule) or "spacy" (parser entities and relations)


def ablation_methods() -> dict[str, RetrievalConfig]:
    """Hybrid with one signal switched off at a time (and the other fusion), to measure each one's worth."""
    h = RetrievalConfig()
    return {
        "hybrid-no-dense": dataclasses.replace(h, dense=False),
        "hybrid-no-bm25": dataclasses.replace(h, bm25=False),
        "hybrid-no-graph": dataclasses.replace(h, graph=False),
        "hybrid-no-speaker": dataclasses.replace(h, speaker_boost=False),
        "hybrid-no-neighbours": dataclasses.replace(h, neighbours=False),
        "hybrid-no-context": dataclasses.replace(h, bm25_context_weight=0.0),
        "hybrid+recency": dataclasses.replace(h, recency=True),
        "hybrid-rrf": dataclasses.replace(h, fusion="rrf"),
        "hybrid-graph-1hop": dataclasses.replace(h, graph_hops=1),
        "graph": RetrievalConfig.only("graph"),
        # The weights before the tune split was used (dense 0.5, graph 0.2, context 0.3, speaker boost 0.3).
        "hybrid-old-weights": dataclasses.replace(
            h, dense_weight=0.5, graph_weight=0.2, bm25_context_weight=0.3, speaker_boost_weight=0.3
        ),
    }


def bench_embedder(opts: BenchOptions) -> tuple[EmbeddingProvider, CachedEmbedder]:
    """The model ``opts.embedder`` names, and the same wrapped in the on-disk cache (the caller closes it)."""
    inner: EmbeddingProvider
    if opts.embedder == "e5":
        from ..memory.e5 import E5Embedder

        inner = E5Embedder()
    else:
        inner = LocalEmbedder() if opts.embedder == "local" else HashEmbedder(384)
    cache_dir = opts.cache_dir or default_cache_dir()
    cached = CachedEmbedder(inner, max_entries=200_000, path=cache_dir / "embeddings.sqlite")
    return inner, cached


class _PgServer:
    """A throw-away PostgreSQL from the pgserver wheel (when no ``--pg-uri`` is given)."""

    def __init__(self, root: Path) -> None:
        from pgserver import get_server  # type: ignore[attr-defined]

        self._server = get_server(root / "pg", cleanup_mode="stop")
        # pgserver starts with PostgreSQL's 128 MB of shared buffers; 100k 384-d vectors plus their HNSW graph
        # need several times that to stay in memory, as on any real deployment. Restart with more.
        self._server.psql("ALTER SYSTEM SET shared_buffers = '1GB';")
        self._server.cleanup()
        self._server = get_server(root / "pg", cleanup_mode="delete")
        self.uri: str = self._server.get_uri()

    def database(self, name: str) -> str:
        self._server.psql(f"CREATE DATABASE {name};")
        return self.uri.replace("/postgres?", f"/{name}?")

    def close(self) -> None:
        self._server.cleanup()


async def bench_chunk_graph(kind: str, environ: Mapping[str, str] | None = None) -> ChunkGraph | None:
    """The parser graph for ``--graph spacy`` (None for ``names``; loads spaCy in a worker thread), or for
    ``--graph llm`` the language-model graph over the Azure chat deployment ``environ`` configures (queries read
    by spaCy when installed). The caller closes an :class:`~aoai_realtime.memory.graph_llm.LLMChunkGraph`."""
    if kind == "names":
        return None
    from ..memory.graph import default_chunk_graph

    graph = await asyncio.to_thread(default_chunk_graph)
    if kind == "llm":
        from ..apps.llm import post_call_llm
        from ..memory.graph_llm import ChatModel, LLMChunkGraph

        llm, _ = post_call_llm(os.environ if environ is None else environ)
        if not isinstance(llm, ChatModel):
            raise EmbeddingError(
                "--graph llm needs an Azure OpenAI chat deployment: set AZURE_OPENAI_ENDPOINT and "
                "AZURE_OPENAI_CHAT_DEPLOYMENT (the local 0.5B model takes seconds a turn: see docs/memory.md)"
            )
        return LLMChunkGraph(llm, query_reader=graph, fallback=graph)
    if graph is None:
        raise EmbeddingError("--graph spacy needs the graph extra: pip install 'aoai-realtime[graph]'")
    return graph


async def _open_store(backend: str, root: Path, name: str, pg: _PgServer | None, opts: BenchOptions) -> Any:
    from ..memory.pg_store import PostgresStore
    from ..memory.sqlite_store import SQLiteStore

    if backend == "sqlite":
        return await SQLiteStore.open(root / f"{name}.db", dim=384)
    if backend != "postgres":
        raise ValueError(f"unknown back end {backend!r}: use sqlite or postgres")
    if opts.pg_uri:
        import psycopg

        # A fresh database per run keeps figures independent of earlier runs.
        async with await psycopg.AsyncConnection.connect(opts.pg_uri, autocommit=True) as conn:
            await conn.execute(f"DROP DATABASE IF EXISTS {name}")
            await conn.execute(f"CREATE DATABASE {name}")
        uri = psycopg.conninfo.make_conninfo(opts.pg_uri, dbname=name)
    else:
        assert pg is not None
        uri = pg.database(name)
    return await PostgresStore.open(uri, dim=384)


async def run_memory_bench(
    opts: BenchOptions, progress: Callable[[str], None] | None = None, step: Step | None = None
) -> dict[str, Any]:
    """Run the benchmark and return the report (the ``--json`` object). ``progress`` gets a line per stage of the
    latency part; ``step(phase, done, total)`` counts indexed turns and asked questions of the recall part."""
    inner, cached = bench_embedder(opts)
    notes = [
        f"recall: {opts.recall_backend} back end, embedder {cached.model}, one chunk per turn "
        "(photo captions included), each conversation in its own scope",
    ]
    methods = default_methods()
    if opts.ablations:
        methods |= ablation_methods()
    report: dict[str, Any] = {}
    pg: _PgServer | None = None
    chunk_graph: ChunkGraph | None = None
    with tempfile.TemporaryDirectory(prefix="aoai-memory-bench-") as tmp:
        root = Path(tmp)
        try:
            used = {*((opts.recall_backend,) if opts.recall else ()), *(opts.latency_backends if opts.latency else ())}
            if "postgres" in used and not opts.pg_uri:
                pg = _PgServer(root)
            chunk_graph = await bench_chunk_graph(opts.graph)
            notes.append(f"graph: entities and relations by {chunk_graph.name if chunk_graph else 'the name rule'}")
            if opts.recall:
                store = await _open_store(opts.recall_backend, root, "recall", pg, opts)
                try:
                    recall = await evaluate_locomo(
                        opts.locomo,
                        store=store,
                        embedder=cached,
                        methods=methods,
                        ks=opts.ks,
                        tune=opts.tune,
                        step=step,
                        retriever=HybridRetriever(store, cached, graph=chunk_graph),
                        index_options={"graph": chunk_graph},
                    )
                finally:
                    await store.close()
                report = recall.as_json()
                main = {name: recall.methods[name] for name in default_methods()}
                report["ablations"] = {n: v for n, v in recall.methods.items() if n not in main}
                report["methods"] = main
                splits: dict[str, dict[str, Any]] = report["splits"]  # type: ignore[assignment]
                for split in splits.values():
                    split["ablations"] = {n: v for n, v in split["methods"].items() if n not in main}
                    split["methods"] = {n: v for n, v in split["methods"].items() if n in main}
            if opts.latency:
                notes.append(
                    "latency: synthetic corpus with random unit vectors (embedding 100k texts with MiniLM on 2 shared "
                    "cores would take about half an hour); 99% of chunks in the queried scope; the query embedding, "
                    f"when included, is a real {inner.model} forward pass; baselines and hybrid timed interleaved"
                )
                rows = []
                for backend in opts.latency_backends:
                    store = await _open_store(backend, root, f"latency_{backend}", pg, opts)
                    try:
                        rows += await measure_latency(
                            backend,
                            store,
                            sizes=opts.sizes,
                            embedder=inner if opts.embedder != "hash" else None,
                            queries=opts.queries,
                            progress=progress,
                            step=step,
                            graph=chunk_graph,
                        )
                    finally:
                        await store.close()
                report["latency"] = [r.as_json() for r in rows]
                if "postgres" in opts.latency_backends and not opts.pg_uri:
                    notes.append(
                        "postgres: pgserver's PostgreSQL 16 with its bundled pgvector 0.6.2 (no iterative scans: "
                        "scoped HNSW scans widen ef_search by selectivity and fall back to an exact scan), "
                        "shared_buffers 1 GB, VACUUM ANALYZE after each load step (counted in build time)"
                    )
        finally:
            cached.close()
            if isinstance(chunk_graph, LLMChunkGraph):
                await chunk_graph.close()
            if pg is not None:
                pg.close()
    report["notes"] = notes
    return report


def render_text(report: dict[str, Any], ks: Sequence[int]) -> str:
    """A plain-text rendering of the report (tables), for terminals and notes: the report split first, then the
    tune split, then all conversations."""
    lines: list[str] = []
    cats = ["overall", "1", "2", "3", "4"]
    header = f"{'method':<24}" + "".join(f"{f'R@{k} ' + c:>13}" for k in ks for c in cats)
    splits = report.get("splits", {})
    tables = [(f"{name} split ({', '.join(splits[name]['conversations']) or 'none'})", splits[name])
              for name in ("report", "tune") if splits.get(name, {}).get("questions")]  # fmt: skip
    if "methods" in report:
        tables.append(("all conversations", report))
    for title, part in tables:
        lines.append(f"LoCoMo evidence recall, {title}: {part['questions']} questions, categories 1-4 "
                     "(1 multi-hop, 2 temporal, 3 open-domain, 4 single-hop)")  # fmt: skip
        lines.append(header)
        for name, res in [*part["methods"].items(), *part.get("ablations", {}).items()]:
            lines.append(f"{name:<24}" + "".join(f"{res[f'recall@{k}'][c]:>13.3f}" for k in ks for c in cats))
        lines.append("")
    if report.get("latency"):
        lines.append("")
        lines.append(f"{'backend':<10}{'size':>8}  {'method':<14}{'p50 ms':>9}{'p95 ms':>9}{'build s':>9}  complete")
        for r in report["latency"]:
            method = r["method"] + ("+embed" if r["query_embedding"] else "")
            lines.append(
                f"{r['backend']:<10}{r['size']:>8}  {method:<14}{r['p50_ms']:>9.2f}{r['p95_ms']:>9.2f}"
                f"{r['build_seconds']:>9.1f}  {r['complete']}"
            )
    for note in report.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)
