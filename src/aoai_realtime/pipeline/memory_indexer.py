"""The index step's adapter onto :mod:`aoai_realtime.memory`: a call's turns (kind ``turn``) and its summary
(kind ``summary``) become the memory session ``call_id`` in the owner's scope.

Idempotent by replacement: each run embeds the whole session first, then swaps it in with
``store.replace_session`` (delete and insert in one transaction, serialised per session). A retry after a crash at
any point leaves the old copy or the new one, and two writers at the same instant (a worker stalled past its
lease and the one that took over) leave one copy, never two.

Knowledge graph: with the ``graph`` extra installed (spaCy and its pinned English model), each turn's entities and
relations are read by the parser (:class:`~aoai_realtime.memory.graph.SpacyChunkGraph`) into the chunks'
``meta["graph"]``, which the retriever walks for multi-hop questions; :func:`resolve_chunk_graph` picks it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Literal, TypeAlias

from ..errors import ConfigError, get_logger
from .model import CallRecord

if TYPE_CHECKING:
    from ..memory import EmbeddingProvider, MemoryStore
    from ..memory.graph import ChunkGraph

__all__ = ["ChunkGraphOption", "MemoryIndexer", "resolve_chunk_graph"]

log = get_logger(__name__)

ChunkGraphOption: TypeAlias = "ChunkGraph | Literal['auto'] | None"
"""How memory is read into the knowledge graph at indexing time: ``"auto"`` (the spaCy parser when the ``graph``
extra is installed, else the stores' capitalised-name rule), ``None`` (the name rule, no parser), or a
:class:`~aoai_realtime.memory.graph.ChunkGraph` to use (share one across the tools, retriever and indexer that
search the same memory: the query's entities must be read as the indexed ones were)."""


async def resolve_chunk_graph(option: ChunkGraphOption, *, user: str) -> ChunkGraph | None:
    """The chunk graph ``option`` names. ``"auto"`` loads the spaCy graph once per process in a worker thread
    (hashing and loading the model takes a second or two the first time); when the ``graph`` extra is not
    installed it logs one line saying so (``user`` names who falls back) and returns None. Raises
    :class:`ConfigError` for another string and ``ModelIntegrityError`` when the model's files were altered."""
    if option is None or not isinstance(option, str):
        return option
    if option != "auto":
        raise ConfigError(f"graph={option!r} is not an option: use 'auto', None (no parser graph) or a ChunkGraph",
                          field="graph")
    from ..memory.graph import default_chunk_graph

    graph = await asyncio.to_thread(default_chunk_graph)
    if graph is None:
        log.info("%s: the graph extra (spaCy and its English model) is not installed, so memory is indexed and "
                 "searched without the parser's entities and relations (capitalised names only). Fix: pip install "
                 "'aoai-realtime[graph]'", user)
    return graph

_MAX_SUMMARY_CHARS = 20_000  # memory's MAX_TEXT_CHARS: a longer summary is cut, not refused


class MemoryIndexer:
    """An :class:`~aoai_realtime.pipeline.Indexer` writing into a memory store.

    The owner of the memory is ``call.metadata[owner_key]`` when present, else ``default_owner``; one of
    them must be set (every memory chunk is scoped). ``tenant`` narrows the scope further. ``graph`` (see
    :data:`ChunkGraphOption`): ``"auto"`` reads the turns and the summary with the spaCy parser when the ``graph``
    extra is installed (loaded on the first call, in a worker thread); pass the retriever's own graph to share one
    parser, or None for none."""

    def __init__(
        self,
        store: MemoryStore,
        embedder: EmbeddingProvider,
        *,
        default_owner: str = "",
        owner_key: str = "owner",
        tenant: str = "",
        graph: ChunkGraphOption = "auto",
    ) -> None:
        self._store = store
        self._embedder = embedder
        self._default_owner = default_owner
        self._owner_key = owner_key
        self._tenant = tenant
        self._graph_option: ChunkGraphOption = graph
        self._graph: ChunkGraph | None = None
        self._graph_lock = asyncio.Lock()

    async def chunk_graph(self) -> ChunkGraph | None:
        """The parser graph this indexer reads calls with (resolved once, on first use), or None."""
        async with self._graph_lock:
            if self._graph_option is not None:
                self._graph = await resolve_chunk_graph(self._graph_option, user="MemoryIndexer")
                self._graph_option = None
            return self._graph

    async def index_call(self, call: CallRecord, summary: str) -> None:
        from ..memory import ChunkKind, Scope, TranscriptTurn, text_chunks, transcript_chunks

        owner = call.metadata.get(self._owner_key) or self._default_owner
        if not owner:
            raise ConfigError(
                f"call {call.call_id!r} has no metadata[{self._owner_key!r}] and no default_owner: "
                "memory needs to know whose call it is",
                field="owner",
            )
        graph = await self.chunk_graph()
        turns = [TranscriptTurn(speaker=t.role, text=t.text) for t in call.transcript]
        chunks = await transcript_chunks(
            self._embedder, owner=owner, tenant=self._tenant, session_id=call.call_id, turns=turns, graph=graph
        )
        if summary.strip():
            chunks += await text_chunks(
                self._embedder, [summary[:_MAX_SUMMARY_CHARS]], owner=owner, tenant=self._tenant,
                session_id=call.call_id, kind=ChunkKind.SUMMARY, source="pipeline", graph=graph,
            )  # fmt: skip
        await self._store.replace_session(Scope(owner=owner, tenant=self._tenant), call.call_id, chunks)
