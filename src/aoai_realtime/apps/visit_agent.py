"""The Visit Agent: a structured voice interview from an operator's question script.

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
from .visit_script import VisitScript

__all__ = ["VisitAgent"]


class VisitAgent:
    """Persona ``visit`` (record_answer, end_visit) following ``script``. Build with :meth:`open`.
    The user id of a call is the subject of the visit."""

    name = "visit-agent"

    @classmethod
    async def open(
        cls,
        data_dir: Path | str,
        *,
        script: VisitScript,
        embedder: EmbeddingProvider | None = None,
        llm: LLMProvider | None = None,
    ) -> VisitAgent:
        """Open (creating) the agent's stores under ``data_dir``."""
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

    # -- review and browse (JSON-able, for the demo UI) --------------------------------------------------

    async def threads(self, user_id: str | None = None, *, status: str | None = None) -> list[dict[str, Any]]:
        """Review threads, newest first (of one subject when ``user_id`` is given; ``status`` "open" or
        "reviewed" filters): ``[{"thread_id": str, "call_id": str, "subject_id": str, "title": str,
        "status": "open" | "reviewed", "created_at": float, "visit_status": "completed" | "declined" |
        "incomplete", "reviews": int}]``. ``thread_id`` is the visit's call id."""
        raise NotImplementedError

    async def thread(self, thread_id: str) -> dict[str, Any] | None:
        """One thread as in :meth:`threads`, plus ``"transcript": [{"role", "text"}]``, ``"summary": str | None``
        (markdown), ``"action_items": [{"description", "owner", "due", "priority"}]``, ``"answers":
        [{"question_id", "question", "answer", "status": "answered" | "declined" | "missing", "required"}]``,
        ``"reviews": [{"reviewer", "notes", "at"}]`` and ``"steps": {step: state}``; None if unknown."""
        raise NotImplementedError

    async def mark_reviewed(self, thread_id: str, *, reviewer: str, notes: str = "") -> dict[str, Any]:
        """Record ``reviewer``'s review with ``notes`` and return the thread (as :meth:`thread`). Idempotent per
        reviewer: the same reviewer marking again replaces their own notes (when non-empty); another reviewer's
        mark is added beside, never over, the first. Raises ``KeyError`` for an unknown thread."""
        raise NotImplementedError

    async def visits(self, subject_id: str) -> list[dict[str, Any]]:
        """The subject's visits, newest first: ``[{"call_id", "started_at", "ended_at", "visit_status",
        "summary", "answers": {question_id: answer}, "action_items": [...], "thread_id", "review_status"}]``."""
        raise NotImplementedError
