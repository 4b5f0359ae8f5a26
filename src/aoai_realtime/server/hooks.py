"""Call-lifecycle hooks: what an application (an agent app) adds to a call, and what it gets back after it.

A :class:`RealtimeServer` given ``hooks=`` calls them at two moments:

- :meth:`CallHooks.session_context` before the session of a call (SDP path) or of a token (token route) is built:
  its text is appended to the persona's rendered instructions (e.g. the history of earlier visits). The upstream
  assigns a call's id only when it answers the SDP offer, and the offer needs the session, so
  :attr:`CallStart.call_id` is ``""`` here on both paths; the id arrives with :meth:`CallHooks.call_ended`.
- :meth:`CallHooks.call_ended` once per call that had a sideband (the SDP path), after the sideband ended, with
  the transcript turns and tool calls it saw. An exception there is logged (redacted) and never propagates.

:func:`safe_session_context` and :func:`safe_call_ended` are the server's guarded calls of the hooks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from ..errors import get_logger, redact
from .personas import Persona, User

__all__ = [
    "CallHooks",
    "CallRecord",
    "CallStart",
    "ToolCallRecord",
    "TranscriptTurn",
    "safe_call_ended",
    "safe_session_context",
]

logger = get_logger(__name__)


@dataclass(frozen=True, kw_only=True)
class CallStart:
    """A call (or a token) about to be set up for ``user`` on ``persona``."""

    call_id: str  # "" when not yet known (always, today: see the module docstring)
    user: User
    persona: Persona


@dataclass(frozen=True, kw_only=True)
class TranscriptTurn:
    """One turn of the conversation: what the user said (or typed) or what the assistant said."""

    role: Literal["user", "assistant"]
    text: str
    item_id: str = ""


@dataclass(frozen=True, kw_only=True)
class ToolCallRecord:
    """One tool call the sideband ran: ``status`` is ``"ok"`` or an error kind of
    :func:`~aoai_realtime.protocol.arbiter.tool_error_output`."""

    name: str
    arguments: str
    output: str
    status: str
    latency_ms: float


@dataclass(frozen=True, kw_only=True)
class CallRecord:
    """What happened on one call. ``started_at``/``ended_at`` are wall-clock seconds (for display and storage)."""

    call_id: str
    user_id: str
    persona_id: str
    started_at: float
    ended_at: float
    ended_reason: str
    turns: tuple[TranscriptTurn, ...]
    tool_calls: tuple[ToolCallRecord, ...]


class CallHooks(Protocol):
    """Implement both methods; pass the object as ``RealtimeServer(..., hooks=...)``."""

    async def session_context(self, start: CallStart) -> str | None:
        """Text appended to the persona's rendered instructions for this call; ``None``/``""`` for nothing.
        Called server-side before the session is built; keep it fast (it delays the call's set-up)."""
        ...

    async def call_ended(self, record: CallRecord) -> None:
        """Called exactly once per call that had a sideband, after it ended. Start long work in the background
        (the server awaits this before it forgets the call); exceptions are logged and never propagate."""
        ...


async def safe_session_context(hooks: CallHooks | None, start: CallStart) -> str:
    """The hook's text for ``start`` (``""`` without hooks). An exception in the hook propagates: a call whose
    context could not be built is refused rather than started without it."""
    if hooks is None:
        return ""
    text = await hooks.session_context(start)
    if text is not None and not isinstance(text, str):
        raise TypeError(f"session_context must return str or None, not {type(text).__name__}")
    return (text or "").strip()


async def safe_call_ended(hooks: CallHooks | None, record: CallRecord) -> None:
    """Call ``hooks.call_ended(record)``; log any exception (type and redacted text, no traceback)."""
    if hooks is None:
        return
    try:
        await hooks.call_ended(record)
    except Exception as exc:  # noqa: BLE001 - the hook's failure must not take the server down
        logger.error("call_ended hook failed for call %s: %s: %s", record.call_id, type(exc).__name__, redact(str(exc)))

