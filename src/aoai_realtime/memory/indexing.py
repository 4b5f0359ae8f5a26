"""Writing conversations into memory: the entry point the post-call pipeline uses.

``await index_transcript(store, embedder, owner=..., session_id=..., turns=[...])`` embeds and stores every turn
of a call as one chunk (kind ``turn``) in one transaction. Each turn's vector is computed from the turn prefixed
with its speaker and preceded by the previous turn of the same session: short spoken replies ("Yes, last
Tuesday!") mean little alone, and the previous turn says what they answer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .embeddings import EmbeddingProvider
from .store import MemoryStore
from .types import ChunkKind, InvalidChunkError, NewChunk

if TYPE_CHECKING:
    from .graph import ChunkGraph

__all__ = ["TranscriptTurn", "embedding_text", "index_texts", "index_transcript", "text_chunks", "transcript_chunks"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptTurn:
    """One turn to index. ``ts``: when it was said (epoch seconds); ``ref``: the caller's id for the turn."""

    speaker: str
    text: str
    ts: float = 0.0
    ref: str = ""
    meta: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def embedding_text(speaker: str, text: str, previous: tuple[str, str] | None = None) -> str:
    """The text whose vector stands for a turn: ``"Speaker: text"``, after the previous turn when given."""
    line = f"{speaker}: {text}" if speaker else text
    if previous is None:
        return line
    prev_speaker, prev_text = previous
    return f"{prev_speaker}: {prev_text}\n{line}" if prev_speaker else f"{prev_text}\n{line}"


async def index_transcript(
    store: MemoryStore,
    embedder: EmbeddingProvider,
    *,
    owner: str,
    session_id: str,
    turns: Sequence[TranscriptTurn],
    tenant: str = "",
    source: str = "call",
    kind: ChunkKind = ChunkKind.TURN,
    previous_turn_context: bool = True,
    neighbour_search_context: bool = True,
    graph: ChunkGraph | None = None,
) -> list[int]:
    """Embed and store ``turns`` (in spoken order) as chunks of one session; return their ids.

    With ``previous_turn_context`` a turn's vector also covers the turn before it; with
    ``neighbour_search_context`` the previous and next turns are indexed as low-weight search-only context.
    With ``graph`` (e.g. :func:`~aoai_realtime.memory.graph.default_chunk_graph`) each turn's entities and
    relations are read by a parser and indexed for the retriever's graph signal (else the stores' name rule).

    Empty turns are skipped. This adds chunks: indexing the same session twice stores it twice. To (re-)index
    a session idempotently, build its chunks with :func:`transcript_chunks` (and :func:`text_chunks`) and pass
    them to ``store.replace_session``, which swaps the session's rows in one transaction.
    """
    chunks = await transcript_chunks(
        embedder,
        owner=owner,
        session_id=session_id,
        turns=turns,
        tenant=tenant,
        source=source,
        kind=kind,
        previous_turn_context=previous_turn_context,
        neighbour_search_context=neighbour_search_context,
        graph=graph,
    )
    return await store.add_chunks(chunks) if chunks else []


async def transcript_chunks(
    embedder: EmbeddingProvider,
    *,
    owner: str,
    session_id: str,
    turns: Sequence[TranscriptTurn],
    tenant: str = "",
    source: str = "call",
    kind: ChunkKind = ChunkKind.TURN,
    previous_turn_context: bool = True,
    neighbour_search_context: bool = True,
    graph: ChunkGraph | None = None,
) -> list[NewChunk]:
    """The chunks :func:`index_transcript` writes, embedded but not stored (for ``store.replace_session``)."""
    kept = [(i, t) for i, t in enumerate(turns) if t.text and t.text.strip()]
    if not kept:
        return []
    texts: list[str] = []
    prev: tuple[str, str] | None = None
    for _, t in kept:
        texts.append(embedding_text(t.speaker, t.text, prev if previous_turn_context else None))
        prev = (t.speaker, t.text)
    vectors = await embedder.embed(texts)
    metas: list[Mapping[str, Any]] = [t.meta for _, t in kept]
    if graph is not None:
        read = await graph.annotate([(t.speaker, t.text) for _, t in kept])
        metas = [{**m, "graph": g} for m, g in zip(metas, read, strict=True)]
    return [
        NewChunk(
            owner=owner,
            tenant=tenant,
            session_id=session_id,
            speaker=t.speaker,
            text=t.text,
            embedding=vectors[j],
            ts=t.ts,
            seq=i,
            source=source,
            kind=kind,
            ref=t.ref,
            meta=metas[j],
            context=_neighbour_text(kept, j) if neighbour_search_context else "",
        )
        for j, (i, t) in enumerate(kept)
    ]


def _neighbour_text(kept: Sequence[tuple[int, TranscriptTurn]], j: int) -> str:
    parts = [kept[x][1].text for x in (j - 1, j + 1) if 0 <= x < len(kept)]
    return "\n".join(parts)


async def index_texts(
    store: MemoryStore,
    embedder: EmbeddingProvider,
    texts: Sequence[str],
    *,
    owner: str,
    tenant: str = "",
    session_id: str = "",
    kind: ChunkKind = ChunkKind.INSIGHT,
    source: str = "",
    ts: float = 0.0,
    graph: ChunkGraph | None = None,
) -> list[int]:
    """Embed and store free-standing texts (insights, summaries) in one transaction; return their ids.
    ``graph``: as for :func:`index_transcript`."""
    chunks = await text_chunks(
        embedder, texts, owner=owner, tenant=tenant, session_id=session_id, kind=kind, source=source, ts=ts,
        graph=graph,
    )  # fmt: skip
    return await store.add_chunks(chunks)


async def text_chunks(
    embedder: EmbeddingProvider,
    texts: Sequence[str],
    *,
    owner: str,
    tenant: str = "",
    session_id: str = "",
    kind: ChunkKind = ChunkKind.INSIGHT,
    source: str = "",
    ts: float = 0.0,
    graph: ChunkGraph | None = None,
) -> list[NewChunk]:
    """The chunks :func:`index_texts` writes, embedded but not stored. ``graph``: as for :func:`index_transcript`
    (no speaker: "I" in these texts is not resolved)."""
    if any(not t or not t.strip() for t in texts):
        raise InvalidChunkError("cannot index an empty text")
    vectors = await embedder.embed(list(texts))
    metas: list[Mapping[str, Any]] = [{} for _ in texts]
    if graph is not None:
        metas = [{"graph": g} for g in await graph.annotate([("", t) for t in texts])]
    return [
        NewChunk(
            owner=owner,
            tenant=tenant,
            session_id=session_id,
            text=t,
            embedding=v,
            kind=kind,
            source=source,
            ts=ts,
            meta=m,
        )
        for t, v, m in zip(texts, vectors, metas, strict=True)
    ]
