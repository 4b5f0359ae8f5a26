"""The Memory Agent: a voice agent that remembers what a user tells it, across calls.

SKELETON: the public API below is final; bodies land in the next commit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..llm.types import LLMProvider
from ..memory.embeddings import EmbeddingProvider
from ..server.hooks import CallRecord, CallStart
from ..server.personas import Persona
from ..server.tools import ServerTool

__all__ = ["MemoryAgent"]


class MemoryAgent:
    """Personas ``capture`` (save_insight, get_session_context) and ``assistant`` (retrieve_knowledge,
    get_session_context). Build with :meth:`open`."""

    name = "memory-agent"

    @classmethod
    async def open(
        cls,
        data_dir: Path | str,
        *,
        embedder: EmbeddingProvider | None = None,
        llm: LLMProvider | None = None,
    ) -> MemoryAgent:
        """Open (creating) the agent's stores under ``data_dir``. ``embedder`` defaults to the offline MiniLM
        (``CachedEmbedder(LocalEmbedder())``), ``llm`` to the offline :class:`~aoai_realtime.llm.LocalLLM`."""
        raise NotImplementedError

    def personas(self) -> list[Persona]:
        raise NotImplementedError

    def tools(self) -> list[ServerTool]:
        raise NotImplementedError

    async def session_context(self, start: CallStart) -> str | None:
        raise NotImplementedError

    async def call_ended(self, record: CallRecord) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    # -- browse (JSON-able, for the demo UI) -------------------------------------------------------------

    async def insights(self, user_id: str, *, limit: int = 50) -> list[dict[str, Any]]:
        """Saved insights, newest first: ``[{"id": int, "text": str, "topic": str, "call_id": str,
        "saved_at": float}]``."""
        raise NotImplementedError

    async def graph(self, user_id: str) -> dict[str, Any]:
        """The user's knowledge graph: ``{"extractor": str, "entities": [{"name": str, "type": str,
        "mentions": int}], "relations": [{"source": str, "relation": str, "target": str, "call_id": str}]}``."""
        raise NotImplementedError

    async def sessions(self, user_id: str) -> list[dict[str, Any]]:
        """Past calls, newest first: ``[{"call_id": str, "persona": str, "started_at": float, "ended_at": float,
        "ended_reason": str, "turns": int, "summary": str | None, "steps": {step: state}}]``."""
        raise NotImplementedError

    async def session(self, user_id: str, call_id: str) -> dict[str, Any] | None:
        """One past call of ``user_id`` as in :meth:`sessions`, plus ``"transcript": [{"role", "text"}]``,
        ``"tool_calls": [{"name", "arguments", "output", "status"}]`` and ``"graph"`` (its entities and
        relations); None if the user has no such call."""
        raise NotImplementedError
