"""Hybrid retrieval: dense + BM25 + entity graph + recency, fused, with neighbour smoothing and context.

Each signal gives a ranked candidate list from the store; the lists are fused (weighted reciprocal rank fusion
by default, or weighted min-max score fusion), then two optional steps run on the fused list:

- speaker boost: when the query names exactly one of the candidates' speakers ("What did Caroline
  research?"), that speaker's chunks are boosted (on LoCoMo 96% of evidence turns are spoken by the person
  the question names);
- neighbour smoothing: a turn inherits part of the score of the turn before and after it in the same session
  (answers often sit next to the turn that shares the question's words);
- recency: newer chunks get a boost that halves every ``recency_half_life`` seconds, measured from the newest
  candidate (so an old archive is treated like a fresh one).

Every signal can be switched off in :class:`RetrievalConfig`, so its worth can be measured.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from .embeddings import EmbeddingProvider, embed_queries
from .store import MemoryStore, ScoredIds
from .text import extract_entities, query_terms, words
from .types import Chunk, Hit, InvalidChunkError, Scope

if TYPE_CHECKING:
    from .graph import ChunkGraph

__all__ = ["HybridRetriever", "RetrievalConfig"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RetrievalConfig:
    """Switches and weights of hybrid retrieval. The defaults are the ones measured best on the LoCoMo tune split
    (see the ``bench memory`` command); set a signal's flag to ``False`` to drop it."""

    dense: bool = True
    bm25: bool = True
    graph: bool = True
    recency: bool = False
    neighbours: bool = True
    speaker_boost: bool = True
    fusion: Literal["rrf", "weighted"] = "weighted"
    # Weights chosen on the LoCoMo tune split only (bench/tune_memory.py; docs/memory.md has the figures).
    dense_weight: float = 0.8
    bm25_weight: float = 1.0
    graph_weight: float = 0.4
    bm25_speaker_weight: float = 0.5
    bm25_context_weight: float = 0.5
    speaker_boost_weight: float = 2.5
    recency_weight: float = 0.1
    recency_half_life: float = 30 * 86400.0
    neighbour_weight: float = 0.2
    rrf_k: int = 60
    candidates: int = 100
    graph_hops: int = 2
    context_window: int = 0

    def __post_init__(self) -> None:
        if not (self.dense or self.bm25 or self.graph):
            raise InvalidChunkError("RetrievalConfig needs at least one of dense, bm25 or graph")
        if self.candidates < 1 or self.rrf_k < 1 or self.context_window < 0:
            raise InvalidChunkError("RetrievalConfig: candidates and rrf_k must be >= 1, context_window >= 0")

    @classmethod
    def only(cls, signal: Literal["dense", "bm25", "graph"]) -> RetrievalConfig:
        """A single-signal baseline: plain BM25 on the chunk text, plain dense, or the graph alone; no speaker,
        context, neighbour or recency extras."""
        return cls(
            dense=signal == "dense",
            bm25=signal == "bm25",
            graph=signal == "graph",
            recency=False,
            neighbours=False,
            speaker_boost=False,
            bm25_speaker_weight=0.0,
            bm25_context_weight=0.0,
        )


class HybridRetriever:
    """Runs the configured signals against a store and fuses them. Stateless apart from its dependencies."""

    def __init__(
        self,
        store: MemoryStore,
        embedder: EmbeddingProvider | None,
        config: RetrievalConfig | None = None,
        *,
        graph: ChunkGraph | None = None,
    ):
        """``graph``: the parser the chunks were indexed with (see :mod:`.graph`), so the query's entities are
        found the same way; without it the query's entities are its names (the stores' own rule)."""
        self.store = store
        self.embedder = embedder
        self.config = config or RetrievalConfig()
        self.graph = graph
        if self.config.dense and embedder is None:
            raise InvalidChunkError("dense retrieval needs an embedder: pass one or set dense=False")

    async def retrieve(
        self,
        query: str,
        scope: Scope,
        k: int = 10,
        *,
        query_vector: npt.NDArray[np.float32] | None = None,
        config: RetrievalConfig | None = None,
    ) -> list[Hit]:
        """The ``k`` best chunks of ``scope`` for ``query``. ``query_vector`` skips embedding the query (use it
        when the caller already has the vector). Raises :class:`InvalidChunkError` for an empty query."""
        cfg = config or self.config
        if not query or not query.strip():
            raise InvalidChunkError("the query is empty: say what to look for")
        n = max(cfg.candidates, k)
        lists: dict[str, ScoredIds] = {}
        try:
            lists = await self._gather(query, scope, n, query_vector, cfg)
        except BaseExceptionGroup as group:
            # Callers get the first underlying error (e.g. StoreError), not a TaskGroup wrapper.
            first: BaseException = group
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            raise first from group
        weights = {"dense": cfg.dense_weight, "bm25": cfg.bm25_weight, "graph": cfg.graph_weight}
        fused, signals = _fuse(lists, weights, cfg)
        return await self._finish(query, fused, signals, k, cfg)

    async def _gather(
        self,
        query: str,
        scope: Scope,
        n: int,
        query_vector: npt.NDArray[np.float32] | None,
        cfg: RetrievalConfig,
    ) -> dict[str, ScoredIds]:
        async with asyncio.TaskGroup() as tg:
            tasks = {}
            if cfg.dense:
                tasks["dense"] = tg.create_task(self._dense(query, scope, n, query_vector))
            if cfg.bm25:
                tasks["bm25"] = tg.create_task(
                    self.store.search_text(
                        scope,
                        query_terms(query),
                        n,
                        speaker_weight=cfg.bm25_speaker_weight,
                        context_weight=cfg.bm25_context_weight,
                    )
                )
            if cfg.graph:
                tasks["graph"] = tg.create_task(self._graph_signal(query, scope, n, cfg))
        return {name: t.result() for name, t in tasks.items()}

    async def _finish(
        self,
        query: str,
        fused: dict[int, float],
        signals: dict[int, dict[str, float]],
        k: int,
        cfg: RetrievalConfig,
    ) -> list[Hit]:
        if not fused:
            return []
        ranked = sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))
        if cfg.speaker_boost and cfg.speaker_boost_weight > 0:
            fused = await self._speaker_boost(query, fused, [cid for cid, _ in ranked[: max(2 * k, 50)]], signals, cfg)
            ranked = sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))
        if cfg.neighbours or cfg.recency:
            top = [cid for cid, _ in ranked[: max(2 * k, 20)]]
            fused = await self._rescore(fused, top, signals, cfg)
            ranked = sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))
        best = ranked[:k]
        chunks = {c.id: c for c in await self.store.get_chunks([cid for cid, _ in best])}
        context: dict[int, list[Chunk]] = {}
        if cfg.context_window:
            context = await self.store.neighbours(list(chunks), cfg.context_window)
        return [
            Hit(
                chunk=chunks[cid],
                score=score,
                signals=dict(signals.get(cid, {})),
                context=tuple(context.get(cid, ())),
            )
            for cid, score in best
            if cid in chunks
        ]

    async def _graph_signal(self, query: str, scope: Scope, n: int, cfg: RetrievalConfig) -> ScoredIds:
        ents = await self.graph.query_entities(query) if self.graph is not None else extract_entities(query)
        return await self.store.search_entities(scope, ents, n, hops=cfg.graph_hops) if ents else []

    async def _dense(self, query: str, scope: Scope, n: int, query_vector: npt.NDArray[np.float32] | None) -> ScoredIds:
        if query_vector is None:
            assert self.embedder is not None
            query_vector = (await embed_queries(self.embedder, [query]))[0]
        return await self.store.search_dense(scope, query_vector, n)

    async def _speaker_boost(
        self,
        query: str,
        fused: dict[int, float],
        top: list[int],
        signals: dict[int, dict[str, float]],
        cfg: RetrievalConfig,
    ) -> dict[int, float]:
        chunks = await self.store.get_chunks(top)
        qwords = set(words(query))
        named = {c.speaker for c in chunks if c.speaker and _first_name(c.speaker) in qwords}
        if len(named) != 1:
            return fused
        who = named.pop()
        out = dict(fused)
        for c in chunks:
            if c.speaker == who:
                b = cfg.speaker_boost_weight * fused[c.id]
                out[c.id] += b
                signals.setdefault(c.id, {})["speaker"] = b
        return out

    async def _rescore(
        self,
        fused: dict[int, float],
        top: list[int],
        signals: dict[int, dict[str, float]],
        cfg: RetrievalConfig,
    ) -> dict[int, float]:
        out = dict(fused)
        if cfg.neighbours and cfg.neighbour_weight > 0:
            neigh = await self.store.neighbours(top, 1)
            bonus: dict[int, float] = defaultdict(float)
            for cid, chunks in neigh.items():
                for c in chunks:
                    # A neighbour takes a share of this chunk's score; keep the largest share it gets.
                    bonus[c.id] = max(bonus[c.id], cfg.neighbour_weight * fused.get(cid, 0.0))
            for cid, b in bonus.items():
                out[cid] = out.get(cid, 0.0) + b
                signals.setdefault(cid, {})["neighbours"] = b
        if cfg.recency and cfg.recency_weight > 0:
            ids = sorted(out, key=lambda c: -out[c])[: len(top)]
            chunks = await self.store.get_chunks(ids)
            if chunks:
                newest = max(c.ts for c in chunks)
                scale = max(out[ids[0]], 1e-9)
                for c in chunks:
                    decay = 0.5 ** (max(0.0, newest - c.ts) / cfg.recency_half_life)
                    b = cfg.recency_weight * scale * decay
                    out[c.id] += b
                    signals.setdefault(c.id, {})["recency"] = b
        return out


def _fuse(
    lists: dict[str, ScoredIds], weights: dict[str, float], cfg: RetrievalConfig
) -> tuple[dict[int, float], dict[int, dict[str, float]]]:
    fused: dict[int, float] = defaultdict(float)
    signals: dict[int, dict[str, float]] = defaultdict(dict)
    for name, items in lists.items():
        w = weights[name]
        if not items or w == 0:
            continue
        if cfg.fusion == "rrf":
            parts = [(cid, w / (cfg.rrf_k + rank + 1)) for rank, (cid, _) in enumerate(items)]
        else:
            scores = np.array([s for _, s in items], dtype=np.float64)
            lo, hi = float(scores.min()), float(scores.max())
            span = hi - lo if hi > lo else 1.0
            parts = [(cid, w * ((s - lo) / span if hi > lo else 1.0)) for cid, s in items]
        for cid, part in parts:
            fused[cid] += part
            signals[cid][name] = part
    return dict(fused), signals


def _first_name(speaker: str) -> str:
    parts = words(speaker)
    return parts[0] if parts else ""


def fuse_for_test(lists: dict[str, Sequence[tuple[int, float]]], cfg: RetrievalConfig) -> dict[int, float]:
    """The fusion step alone (exposed for unit tests)."""
    weights = {"dense": cfg.dense_weight, "bm25": cfg.bm25_weight, "graph": cfg.graph_weight}
    return _fuse({k: list(v) for k, v in lists.items()}, weights, cfg)[0]
