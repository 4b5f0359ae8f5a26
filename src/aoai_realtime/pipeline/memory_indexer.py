"""The index step's adapter onto :mod:`aoai_realtime.memory`: a call's turns (kind ``turn``) and its summary
(kind ``summary``) become the memory session ``call_id`` in the owner's scope.

Idempotent by replacement: each run embeds the whole session first, then swaps it in with
``store.replace_session`` (delete and insert in one transaction, serialised per session). A retry after a crash at
any point leaves the old copy or the new one, and two writers at the same instant (a worker stalled past its
lease and the one that took over) leave one copy, never two.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError
from .model import CallRecord

if TYPE_CHECKING:
    from ..memory import EmbeddingProvider, MemoryStore

__all__ = ["MemoryIndexer"]

_MAX_SUMMARY_CHARS = 20_000  # memory's MAX_TEXT_CHARS: a longer summary is cut, not refused


class MemoryIndexer:
    """An :class:`~aoai_realtime.pipeline.Indexer` writing into a memory store.

    The owner of the memory is ``call.metadata[owner_key]`` when present, else ``default_owner``; one of
    them must be set (every memory chunk is scoped). ``tenant`` narrows the scope further."""

    def __init__(
        self,
        store: MemoryStore,
        embedder: EmbeddingProvider,
        *,
        default_owner: str = "",
        owner_key: str = "owner",
        tenant: str = "",
    ) -> None:
        self._store = store
        self._embedder = embedder
        self._default_owner = default_owner
        self._owner_key = owner_key
        self._tenant = tenant

    async def index_call(self, call: CallRecord, summary: str) -> None:
        from ..memory import ChunkKind, Scope, TranscriptTurn, text_chunks, transcript_chunks

        owner = call.metadata.get(self._owner_key) or self._default_owner
        if not owner:
            raise ConfigError(
                f"call {call.call_id!r} has no metadata[{self._owner_key!r}] and no default_owner: "
                "memory needs to know whose call it is",
                field="owner",
            )
        turns = [TranscriptTurn(speaker=t.role, text=t.text) for t in call.transcript]
        chunks = await transcript_chunks(
            self._embedder, owner=owner, tenant=self._tenant, session_id=call.call_id, turns=turns
        )
        if summary.strip():
            chunks += await text_chunks(
                self._embedder, [summary[:_MAX_SUMMARY_CHARS]], owner=owner, tenant=self._tenant,
                session_id=call.call_id, kind=ChunkKind.SUMMARY, source="pipeline",
            )  # fmt: skip
        await self._store.replace_session(Scope(owner=owner, tenant=self._tenant), call.call_id, chunks)
