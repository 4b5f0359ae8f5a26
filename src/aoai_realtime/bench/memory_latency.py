"""Retrieval latency at growing store sizes, for ``bench memory``.

The corpus is synthetic: sentences drawn from a fixed vocabulary with names, places and topics (so BM25 and the
graph have realistic posting lists), and random unit vectors in place of embeddings. Embedding 100,000 texts
with MiniLM on two shared cores would take about half an hour, and latency does not depend on what the vectors
mean. "With query embedding" adds a real all-MiniLM-L6-v2 embedding of each (distinct, uncached) query.

99% of the chunks belong to one owner (the worst case: the scope being searched is the whole store) and 1% to
another; the 1% scope is queried too, to check that it returns ``min(k, rows)`` results.
"""

from __future__ import annotations

import dataclasses
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence

import numpy as np
import numpy.typing as npt

from ..memory.embeddings import EmbeddingProvider
from ..memory.graph import ChunkGraph
from ..memory.retrieval import HybridRetriever, RetrievalConfig
from ..memory.store import MemoryStore
from ..memory.types import NewChunk, Scope

__all__ = ["LatencyRow", "measure_latency", "synthetic_chunks"]

_NAMES = (
    "Alice Bruno Carmen Dmitri Elena Farid Greta Hiro Ines Jonas Kofi Lena Marco Nadia Oscar Priya Quentin Rosa "
    "Samir Tanja Umar Vera Wen Ximena Yusuf Zoe"
).split()
_PLACES = "Berlin Lisbon Osaka Denver Nairobi Oslo Lima Austin Porto Krakow Dublin Seville Quebec Hanoi".split()
_TOPICS = (
    "pottery hiking adoption painting camping marathon guitar gardening chess sailing baking photography "
    "volunteering yoga climbing poetry robotics cycling knitting astronomy skiing surfing theatre coding"
).split()
_WORDS = (
    "week weekend trip class project family friends kids dog cat car house garden job interview concert museum "
    "beach mountain lake city park school course book movie recipe team match festival shelter support group "
    "mentor doctor visit birthday wedding holiday plan idea problem goal habit morning evening summer winter"
).split()
_VERBS = "went started finished loved visited joined tried planned found booked missed learned shared".split()


def synthetic_chunks(
    n: int, dim: int, *, seed: int = 0, owner: str = "bench", small_owner: str = "bench-1pct", start: int = 0
) -> list[NewChunk]:
    """``n`` synthetic turns with random unit vectors; every 100th belongs to ``small_owner``."""
    rng = random.Random(seed + start)
    vecs = np.random.default_rng(seed + start).standard_normal((n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    out = []
    for j in range(n):
        i = start + j
        who, other = rng.sample(_NAMES, 2)
        text = (
            f"{other}, I {rng.choice(_VERBS)} the {rng.choice(_TOPICS)} {rng.choice(_WORDS)} in "
            f"{rng.choice(_PLACES)} with {rng.choice(_NAMES)} last {rng.choice(_WORDS)}; the "
            f"{rng.choice(_WORDS)} and the {rng.choice(_WORDS)} were {rng.choice(_VERBS)} {rng.choice(_TOPICS)}."
        )
        out.append(
            NewChunk(
                owner=small_owner if i % 100 == 99 else owner,
                session_id=f"s{i // 20}",
                speaker=who,
                text=text,
                embedding=vecs[j],
                ts=1.7e9 + i * 60.0,
                seq=i % 20,
            )
        )
    return out


def synthetic_queries(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [
        f"When did {rng.choice(_NAMES)} go to {rng.choice(_TOPICS)} {rng.choice(_WORDS)} in {rng.choice(_PLACES)} #{i}?"
        for i in range(n)
    ]


@dataclasses.dataclass(slots=True)
class LatencyRow:
    backend: str
    size: int
    method: str
    query_embedding: bool
    p50_ms: float
    p95_ms: float
    build_seconds: float
    complete: bool

    def as_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure_latency(
    backend: str,
    store: MemoryStore,
    *,
    sizes: Sequence[int],
    embedder: EmbeddingProvider | None,
    queries: int = 100,
    k: int = 10,
    batch: int = 2000,
    progress: Callable[[str], None] | None = None,
    warmup: Callable[[], Awaitable[None]] | None = None,
    step: Callable[[str, int, int], None] | None = None,
    graph: ChunkGraph | None = None,
) -> list[LatencyRow]:
    """Grow ``store`` (which must be empty) to each size in turn and time bm25, dense and hybrid queries.

    Baselines and hybrid are timed in the same loop, interleaved, so load from other processes hits all alike.
    """
    rows: list[LatencyRow] = []
    have = 0
    build = 0.0
    qtexts = synthetic_queries(queries)
    rng = np.random.default_rng(7)
    qvecs = rng.standard_normal((queries, store.dim)).astype(np.float32)
    qvecs /= np.linalg.norm(qvecs, axis=1, keepdims=True)
    methods = {
        "bm25": RetrievalConfig.only("bm25"),
        "dense": RetrievalConfig.only("dense"),
        "hybrid": RetrievalConfig(),
    }
    for size in sorted(sizes):
        while have < size:
            n = min(batch, size - have)
            chunks = synthetic_chunks(n, store.dim, start=have)
            t0 = time.perf_counter()
            await store.add_chunks(chunks)
            build += time.perf_counter() - t0
            have += n
            if step:
                step(f"build {backend}", have, max(sizes))
            if progress and have % 20000 == 0:
                progress(f"{backend}: {have} chunks indexed ({build:.1f}s)")
        analyze = getattr(store, "analyze", None)
        if analyze is not None:  # PostgreSQL: VACUUM ANALYZE after the bulk load, as autovacuum would
            t0 = time.perf_counter()
            await analyze()
            build += time.perf_counter() - t0
        # ``graph``: the query's entities are read by the parser, as recall was measured (the synthetic chunks'
        # entities come from the name rule; the store walk costs the same).
        retriever = HybridRetriever(store, embedder or _NoEmbedder(store.dim), graph=graph)
        big, small = Scope(owner="bench"), Scope(owner="bench-1pct")
        # Warm-up: first queries load caches (the SQLite in-memory index, PostgreSQL buffers).
        for i in range(3):
            await retriever.retrieve(qtexts[i], big, k, query_vector=qvecs[i])
            if embedder is not None:  # loads the model once, outside the timings
                await retriever.retrieve(f"warm-up {i}", big, k)
        if warmup:
            await warmup()
        times: dict[tuple[str, bool], list[float]] = {}
        complete = True
        n_small = await store.count(small)
        for i in range(queries):
            for name, cfg in methods.items():
                t0 = time.perf_counter()
                await retriever.retrieve(qtexts[i], big, k, query_vector=qvecs[i], config=cfg)
                times.setdefault((name, False), []).append(time.perf_counter() - t0)
            if embedder is not None:
                t0 = time.perf_counter()
                await retriever.retrieve(qtexts[i], big, k, config=methods["hybrid"])
                times.setdefault(("hybrid", True), []).append(time.perf_counter() - t0)
            if step:
                step(f"query {backend} {size}", i + 1, queries)
            if i % 10 == 0:
                got = await store.search_dense(small, qvecs[i], k)
                complete = complete and len(got) == min(k, n_small)
        for (name, emb), ts in times.items():
            rows.append(
                LatencyRow(
                    backend=backend,
                    size=size,
                    method=name,
                    query_embedding=emb,
                    p50_ms=round(statistics.median(ts) * 1000, 2),
                    p95_ms=round(_pct(ts, 0.95) * 1000, 2),
                    build_seconds=round(build, 2),
                    complete=complete,
                )
            )
        if progress:
            hy = [r for r in rows if r.size == size and r.method == "hybrid"]
            progress(
                f"{backend} @ {size}: "
                + ", ".join(f"hybrid{'+emb' if r.query_embedding else ''} p95 {r.p95_ms} ms" for r in hy)
            )
    return rows


class _NoEmbedder:
    """Stands in when no embedder is given: every query passes its vector explicitly."""

    model = "none"

    def __init__(self, dim: int) -> None:
        self.dim = dim

    async def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        raise RuntimeError("no embedder configured: pass query_vector")
