"""Agent tools over memory: ``retrieve_knowledge``, ``save_insight``, ``get_session_context``.

``memory_tools(store, embedder, scope)`` returns plain async functions with type hints and docstrings, ready for
the agents layer's ``@tool`` decorator (it builds JSON schemas from them). Each call runs inside a latency
budget and never raises: failures and timeouts come back as ``{"ok": False, "error": "..."}``, text the model can
read and act on, so a slow or broken memory never breaks the conversation.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..errors import get_logger, redact
from .embeddings import EmbeddingProvider
from .indexing import index_texts
from .retrieval import HybridRetriever, RetrievalConfig
from .store import MemoryStore
from .types import Chunk, ChunkKind, MemoryError_, Scope

if TYPE_CHECKING:
    from .graph import ChunkGraph

__all__ = ["MemoryToolkit", "memory_tools"]

_log = get_logger(__name__)

ToolResult = dict[str, Any]
MAX_INSIGHT_CHARS = 2000


def _chunk_view(c: Chunk) -> dict[str, Any]:
    view: dict[str, Any] = {"text": c.text, "kind": str(c.kind)}
    if c.speaker:
        view["speaker"] = c.speaker
    if c.ts:
        view["time"] = time.strftime("%Y-%m-%d %H:%M", time.gmtime(c.ts))
    if c.meta.get("topic"):
        view["topic"] = c.meta["topic"]
    return view


@dataclasses.dataclass(slots=True, kw_only=True)
class MemoryToolkit:
    """The state behind the memory tools: where to look (``scope``) and how long a call may take (``budget``).

    ``scope.session_id`` names the current call: ``get_session_context`` reads it and ``save_insight`` tags
    insights with it.
    """

    store: MemoryStore
    embedder: EmbeddingProvider
    scope: Scope
    budget: float = 1.5
    k: int = 5
    config: RetrievalConfig = dataclasses.field(default_factory=RetrievalConfig)
    clock: Callable[[], float] = time.time
    graph: ChunkGraph | None = None
    """The parser that reads saved insights into the graph and the queries' entities (the one the calls were
    indexed with, e.g. :func:`~aoai_realtime.memory.graph.default_chunk_graph`); None: the stores' name rule."""

    async def _guard(self, name: str, work: Callable[[], Awaitable[ToolResult]]) -> ToolResult:
        try:
            async with asyncio.timeout(self.budget):
                return await work()
        except TimeoutError:
            _log.warning("%s exceeded its %.2fs budget", name, self.budget)
            return {"ok": False, "error": f"memory did not answer within {self.budget:.1f}s; go on without it"}
        except MemoryError_ as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - tool boundary: the model gets an error result, never a raise
            # No traceback: exception texts may carry connection strings; the redacted text is enough here.
            _log.error("%s failed: %s: %s", name, type(exc).__name__, redact(str(exc)))
            return {"ok": False, "error": f"memory is unavailable ({type(exc).__name__}); go on without it"}

    async def retrieve_knowledge(self, query: str) -> ToolResult:
        """Search what is remembered from earlier conversations and saved insights; use it for every question
        about what the user said, decided or asked for before.

        Args:
            query: What to look for, in a few words or a question (names, places, topics).
        """

        async def work() -> ToolResult:
            if not query or not query.strip():
                return {"ok": False, "error": "query is empty: say what to look for"}
            scope = dataclasses.replace(self.scope, session_id=None)
            hits = await HybridRetriever(self.store, self.embedder, self.config, graph=self.graph).retrieve(
                query, scope, self.k
            )
            return {"ok": True, "results": [_chunk_view(h.chunk) | {"score": round(h.score, 3)} for h in hits]}

        return await self._guard("retrieve_knowledge", work)

    async def save_insight(self, text: str, topic: str = "") -> ToolResult:
        """Remember a fact, preference or decision for future conversations.

        Args:
            text: The insight as one self-contained sentence (who, what, when).
            topic: Optional short label, e.g. "preferences" or "family".
        """

        async def work() -> ToolResult:
            clean = (text or "").strip()
            if not clean:
                return {"ok": False, "error": "text is empty: nothing to save"}
            if len(clean) > MAX_INSIGHT_CHARS:
                return {"ok": False, "error": f"text is longer than {MAX_INSIGHT_CHARS} characters: shorten it"}
            ids = await index_texts(
                self.store,
                self.embedder,
                [clean],
                owner=self.scope.owner,
                tenant=self.scope.tenant,
                session_id=self.scope.session_id or "",
                kind=ChunkKind.INSIGHT,
                source=f"insight:{topic}" if topic else "insight",
                ts=self.clock(),
                graph=self.graph,
            )
            return {"ok": True, "saved": clean, "id": ids[0]}

        return await self._guard("save_insight", work)

    async def get_session_context(self) -> ToolResult:
        """Get the latest turns of the current conversation and the most recent saved insights."""

        async def work() -> ToolResult:
            out: ToolResult = {"ok": True, "session": [], "recent_insights": []}
            if self.scope.session_id is not None:
                recent = await self.store.recent(self.scope, 10)
                chunks = await self.store.get_chunks([cid for cid, _ in recent])
                out["session"] = [_chunk_view(c) for c in sorted(chunks, key=lambda c: (c.ts, c.seq))]
            owner_scope = dataclasses.replace(self.scope, session_id=None)
            recent = await self.store.recent(owner_scope, 50)
            chunks = await self.store.get_chunks([cid for cid, _ in recent])
            out["recent_insights"] = [_chunk_view(c) for c in chunks if c.kind is not ChunkKind.TURN][:5]
            return out

        return await self._guard("get_session_context", work)


def memory_tools(
    store: MemoryStore,
    embedder: EmbeddingProvider,
    scope: Scope,
    *,
    budget: float = 1.5,
    k: int = 5,
    config: RetrievalConfig | None = None,
    clock: Callable[[], float] = time.time,
    graph: ChunkGraph | None = None,
) -> list[Callable[..., Awaitable[ToolResult]]]:
    """The three memory tools bound to ``scope``, as plain async callables (bound methods with type hints and
    docstrings): ``[retrieve_knowledge, save_insight, get_session_context]``. ``graph``: see
    :attr:`MemoryToolkit.graph`."""
    kit = MemoryToolkit(
        store=store,
        embedder=embedder,
        scope=scope,
        budget=budget,
        k=k,
        config=config or RetrievalConfig(),
        clock=clock,
        graph=graph,
    )
    return [kit.retrieve_knowledge, kit.save_insight, kit.get_session_context]
