"""The four post-call steps, and the :class:`Indexer` interface the index step writes through.

==============  ===========  ==================================================================
step            depends on   effect (written once, with the ``generated`` mark)
==============  ===========  ==================================================================
summary         -            markdown summary (``text/markdown``)
action_items    -            ``{"action_items": [...]}`` validated against the schema
index           summary      the call's chunks written to memory; effect records what was indexed
review_thread   -            a thread holding the transcript for a person to review
==============  ===========  ==================================================================

The review thread does not wait for the summary on purpose: when the model fails, a person should still
get the transcript to review.

The index step's memory write happens outside the step's transaction, so it must be idempotent by itself:
chunks are keyed by the call (``(call_id, "index")`` in the store's own table; the memory session
``call_id`` with :class:`MemoryIndexer`) and each run *replaces* them. A retry after a crash rewrites the same
chunks (the input is the stored transcript and the stored summary, so the same text); nothing is duplicated.
Right before the write the step renews its lease and stops if its claim was lost, so a zombie does not write.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Final, Protocol

import msgspec

from ..llm.types import LLMProvider, Turn
from .model import CallRecord, ClaimLost, Effect, Pipeline, RetryPolicy, StepContext, StepSpec
from .store import StepStore

__all__ = [
    "ACTION_ITEMS",
    "INDEX",
    "REVIEW_THREAD",
    "SUMMARY",
    "Indexer",
    "StoreIndexer",
    "chunk_call",
    "default_pipeline",
]

SUMMARY: Final = "summary"
ACTION_ITEMS: Final = "action_items"
INDEX: Final = "index"
REVIEW_THREAD: Final = "review_thread"

INDEX_KEY: Final = "index"


class Indexer(Protocol):
    """Writes a call into long-term memory. Must be an overwrite keyed by the call: called again for the
    same call (a retry), it replaces what it wrote before instead of adding to it. ``call.metadata`` may
    say whose memory it is (see :class:`MemoryIndexer`)."""

    async def index_call(self, call: CallRecord, summary: str) -> None: ...


def chunk_call(transcript: Sequence[Turn], summary: str, *, max_chars: int = 1500) -> list[str]:
    """Split a call into retrieval chunks: the summary first, then runs of whole turns up to ``max_chars``.
    Deterministic, so a retry produces the same chunks under the same keys."""
    chunks = [summary.strip()] if summary.strip() else []
    current: list[str] = []
    size = 0
    for turn in transcript:
        line = f"{turn.role}: {turn.text.strip()}"
        if current and size + len(line) + 1 > max_chars:
            chunks.append("\n".join(current))
            current, size = [], 0
        # A single turn longer than max_chars is cut, not dropped.
        while len(line) > max_chars:
            chunks.append(line[:max_chars])
            line = line[max_chars:]
        current.append(line)
        size += len(line) + 1
    if current:
        chunks.append("\n".join(current))
    return chunks


class StoreIndexer:
    """The default :class:`Indexer`: keeps the chunks in the steps store's own ``pipeline_index_chunks``
    table, replacing ``(call_id, "index")`` in one transaction. Use it when no memory store is configured."""

    def __init__(self, store: StepStore, *, max_chars: int = 1500) -> None:
        self._store = store
        self._max_chars = max_chars

    async def index_call(self, call: CallRecord, summary: str) -> None:
        chunks = chunk_call(call.transcript, summary, max_chars=self._max_chars)
        await self._store.replace_index_chunks(call.call_id, INDEX_KEY, chunks)


def default_pipeline(
    *, llm: LLMProvider, indexer: Indexer, retry: RetryPolicy | None = None, lease_seconds: float = 120.0
) -> Pipeline:
    """The four post-call steps over ``llm`` and ``indexer``."""

    async def summary(ctx: StepContext) -> Effect:
        return Effect("text/markdown", await llm.summarize(ctx.call.transcript))

    async def action_items(ctx: StepContext) -> Effect:
        items = await llm.extract_action_items(ctx.call.transcript)  # validated, or LLMError with the reason
        return Effect("application/json", msgspec.json.encode(items).decode())

    async def index(ctx: StepContext) -> Effect:
        summary_text = ctx.dependencies[SUMMARY].body
        # The memory write is outside the step's transaction: a zombie must not make it at all.
        if not await ctx.still_holds():
            raise ClaimLost(f"index of call {ctx.call.call_id!r}: claim lost before the memory write")
        await indexer.index_call(ctx.call, summary_text)
        record = {"key": INDEX_KEY, "turns": len(ctx.call.transcript), "summary_chars": len(summary_text)}
        return Effect("application/json", json.dumps(record))

    async def review_thread(ctx: StepContext) -> Effect:
        thread = {
            "title": f"Review call {ctx.call.call_id}",
            "status": "open",
            "metadata": dict(ctx.call.metadata),
            "messages": [{"author": t.role, "text": t.text} for t in ctx.call.transcript],
        }
        return Effect("application/json", json.dumps(thread))

    return Pipeline(
        steps=(
            StepSpec(SUMMARY, summary, lease_seconds=lease_seconds),
            StepSpec(ACTION_ITEMS, action_items, lease_seconds=lease_seconds),
            StepSpec(INDEX, index, depends_on=(SUMMARY,), lease_seconds=lease_seconds),
            StepSpec(REVIEW_THREAD, review_thread, lease_seconds=lease_seconds),
        ),
        retry=retry or RetryPolicy(),
    )
