"""Running an app's post-call pipeline for one call, and writing a call into memory.

:class:`PostCall` records an ended call in the pipeline's SQLite step store and runs its steps with the
pipeline's :class:`~aoai_realtime.pipeline.Worker` until each is settled (generated, or failed for good), waiting
out retries and steps another worker holds. An :class:`~aoai_realtime.pipeline.InProcessRunner` runs beside it
for steps left over by an earlier process (a crash, a restart). Exactly-once is the step store's: a call recorded
twice, or settled by two drivers at once, produces each step's effect once.

:class:`CallIndexer` is the index step's :class:`~aoai_realtime.pipeline.Indexer` for the apps: the call's turns
and summary become the memory session ``<call_id>#call`` of the call's owner, replaced as a whole on every run
(the live call's session ``<call_id>`` holds the insights saved during it and is left alone). With a parser graph
(:data:`~aoai_realtime.pipeline.memory_indexer.ChunkGraphOption`) the turns and the summary carry their entities and
relations (``meta["graph"]``), and :func:`search_memory` reads the query with the same parser.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..memory import (
    ChunkKind,
    EmbeddingProvider,
    HybridRetriever,
    MemoryStore,
    Scope,
    TranscriptTurn,
    text_chunks,
    transcript_chunks,
)
from ..pipeline import CallRecord as PipelineCall
from ..pipeline import InProcessRunner, Pipeline, SQLiteStepStore, StepRow, StepState, StoredEffect, Worker
from ..server.hooks import CallRecord

if TYPE_CHECKING:
    from ..memory.graph import ChunkGraph

__all__ = ["CALL_SESSION_SUFFIX", "CallIndexer", "PostCall", "pipeline_call", "search_memory"]

CALL_SESSION_SUFFIX = "#call"
_MAX_WAIT = 0.5  # seconds between looks at a step another worker holds
_MAX_SUMMARY_CHARS = 20_000


def pipeline_call(call: CallRecord, **extra: str) -> PipelineCall:
    """The pipeline's record of an ended call: its turns, and its owner and times as metadata."""
    from ..llm.types import Turn

    metadata = {
        "owner": call.user_id,
        "persona": call.persona_id,
        "started_at": repr(call.started_at),
        "ended_at": repr(call.ended_at),
        "ended_reason": call.ended_reason,
        **extra,
    }
    turns = tuple(Turn(role=t.role, text=t.text) for t in call.turns if t.text.strip())
    return PipelineCall(call_id=call.call_id, transcript=turns, metadata=metadata)


class PostCall:
    """One app's pipeline over its step store. Build with :meth:`open`; :meth:`close` when done."""

    def __init__(self, pipeline: Pipeline, store: SQLiteStepStore, *, resume: bool = True) -> None:
        self.pipeline = pipeline
        self.store = store
        self.worker = Worker(pipeline, store)
        self._runner: InProcessRunner | None = InProcessRunner(pipeline, store, poll_interval=5.0) if resume else None

    @classmethod
    def at(cls, path: Path, pipeline: Pipeline, *, resume: bool = True) -> PostCall:
        """A driver over the SQLite step store at ``path``; call :meth:`start` before use. With ``resume``, a
        background runner also finishes the steps an earlier process left (and retries due later)."""
        return cls(pipeline, SQLiteStepStore(path), resume=resume)

    async def start(self) -> None:
        """Create the step tables if needed and start the background runner."""
        await self.store.setup(self.pipeline)
        if self._runner is not None:
            await self._runner.__aenter__()

    async def run(self, call: PipelineCall) -> bool:
        """Record ``call`` (idempotently) and return once each of its steps is settled. True if it was new."""
        new = await self.store.end_call(call, self.pipeline, now=self.worker.clock.now())
        await self.settle(call.call_id)
        return new

    async def settle(self, call_id: str) -> list[StepRow]:
        """Run the call's claimable steps until every one is generated or failed; return the final rows."""
        while True:
            await self.worker.process_call(call_id)
            rows = await self.store.steps(call_id)
            waiting = [r for r in rows if r.state in (StepState.PENDING, StepState.GENERATING)]
            if not waiting:
                return rows
            now = self.worker.clock.now()
            due = min(
                (r.next_attempt_at if r.state is StepState.PENDING else (r.lease_expires_at or now)) for r in waiting
            )
            # A step held by another worker, a retry's backoff, or a dependency still running: look again soon.
            await asyncio.sleep(min(max(due - now, 0.0), _MAX_WAIT) or 0.05)

    async def states(self, call_id: str) -> dict[str, str]:
        """``{step: state}`` of one call (empty if the call is unknown)."""
        return {r.step: str(r.state) for r in await self.store.steps(call_id)}

    async def effect(self, call_id: str, step: str) -> StoredEffect | None:
        """The step's effect, or None when it has not been generated."""
        effects = await self.store.effects(call_id, step)
        return effects[0] if effects else None

    async def effects(self, call_id: str, steps: tuple[str, ...]) -> Mapping[str, StoredEffect]:
        out: dict[str, StoredEffect] = {}
        for step in steps:
            if (e := await self.effect(call_id, step)) is not None:
                out[step] = e
        return out

    async def close(self) -> None:
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await self._runner.__aexit__(None, None, None)
            self._runner = None
        await self.store.close()


class CallIndexer:
    """Writes a call's turns (kind ``turn``) and summary (kind ``summary``) into ``store`` as the memory session
    ``<call_id>#call`` of ``call.metadata["owner"]``, replacing whatever an earlier run wrote. A
    ``call.metadata["record"]`` text (e.g. a visit's answers) is indexed beside the summary, also as kind
    ``summary`` with source ``<source>:record``. ``graph``: the parser that reads each chunk's entities and
    relations (the one the app's retriever uses), or None for the stores' name rule."""

    def __init__(self, store: MemoryStore, embedder: EmbeddingProvider, *, source: str,
                 graph: ChunkGraph | None = None) -> None:
        self._store = store
        self._embedder = embedder
        self._source = source
        self._graph = graph

    async def index_call(self, call: PipelineCall, summary: str) -> None:
        owner = call.metadata["owner"]
        started = float(call.metadata.get("started_at", "0"))
        ended = float(call.metadata.get("ended_at", "0"))
        session = call.call_id + CALL_SESSION_SUFFIX
        turns = [TranscriptTurn(speaker=t.role, text=t.text, ts=started) for t in call.transcript]
        chunks = await transcript_chunks(self._embedder, owner=owner, session_id=session, turns=turns,
                                         source=self._source, graph=self._graph)
        if summary.strip():
            chunks += await text_chunks(self._embedder, [summary[:_MAX_SUMMARY_CHARS]], owner=owner,
                                        session_id=session, kind=ChunkKind.SUMMARY, source=self._source, ts=ended,
                                        graph=self._graph)
        record = call.metadata.get("record", "")
        if record.strip():
            chunks += await text_chunks(self._embedder, [record[:_MAX_SUMMARY_CHARS]], owner=owner,
                                        session_id=session, kind=ChunkKind.SUMMARY, source=f"{self._source}:record",
                                        ts=ended, graph=self._graph)
        await self._store.replace_session(Scope(owner=owner), session, chunks)


async def search_memory(store: MemoryStore, embedder: EmbeddingProvider, owner: str, query: str,
                        k: int = 5, *, graph: ChunkGraph | None = None) -> list[dict[str, Any]]:
    """Hybrid search of ``owner``'s memory: ``[{"text", "kind", "speaker", "call_id", "ts", "score"}]``, best
    first (``call_id`` without the memory session's suffix). An empty query finds nothing. ``graph``: the parser
    the memory was indexed with (it reads the query's entities), or None."""
    if not query.strip():
        return []
    hits = await HybridRetriever(store, embedder, graph=graph).retrieve(query, Scope(owner=owner), k)
    return [
        {"text": h.chunk.text, "kind": str(h.chunk.kind), "speaker": h.chunk.speaker,
         "call_id": h.chunk.session_id.split("#", 1)[0], "ts": h.chunk.ts, "score": round(h.score, 4)}
        for h in hits
    ]
