"""The brain: what writes the engine's replies. Pluggable and injected into the engine.

A brain gets a :class:`BrainRequest` (the effective instructions, tools and the conversation the response
sees) and yields outputs in order: :class:`Say` (text to speak or write, streamed in chunks),
:class:`CallTool` (a function call; the session makes the ``function_call`` item and its ``call_id``) and
:class:`Pause` (a delay on the session's clock, so tests drive it with a fake clock). The session turns them
into the service's event sequence (reference 4.2, 4.3); a brain never sees the wire.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias, runtime_checkable

__all__ = ["Brain", "BrainOutput", "BrainRequest", "CallTool", "ContextItem", "Pause", "Say"]


@dataclass(frozen=True, slots=True)
class ContextItem:
    """One conversation item as the brain sees it.

    ``kind`` is ``message``, ``function_call`` or ``function_call_output``; ``role`` is set for messages;
    ``text`` is the message text (typed text, or the transcript of audio when known); ``name``/``arguments``
    /``call_id``/``output`` are set for function calls and their outputs.
    """

    kind: str
    role: str = ""
    text: str = ""
    name: str = ""
    arguments: str = ""
    call_id: str = ""
    output: str = ""


@dataclass(frozen=True, slots=True)
class BrainRequest:
    """Everything a response may depend on, already resolved from the session and ``response.create``."""

    instructions: str
    tools: tuple[dict[str, Any], ...]
    tool_choice: Any
    items: tuple[ContextItem, ...]
    output_modalities: tuple[str, ...] = ("audio",)
    metadata: dict[str, str] = field(default_factory=dict)
    out_of_band: bool = False
    # The conversation asking (the engine session's ``conversation_id``; "" when unknown): a brain that keeps state
    # per conversation (the llm brain's lanes) tells them apart, and drops one's state when it ends (``end``).
    conversation: str = ""

    @property
    def last_user_text(self) -> str:
        """The text of the latest user message ("" if none)."""
        for item in reversed(self.items):
            if item.kind == "message" and item.role == "user":
                return item.text
        return ""

    @property
    def pending_tool_outputs(self) -> tuple[ContextItem, ...]:
        """Function call outputs after the latest user message (what a reply should speak from)."""
        outputs: list[ContextItem] = []
        for item in reversed(self.items):
            if item.kind == "message" and item.role == "user":
                break
            if item.kind == "function_call_output":
                outputs.append(item)
        return tuple(reversed(outputs))


@dataclass(frozen=True, slots=True)
class Say:
    """A chunk of the reply text (spoken in audio mode, written in text mode)."""

    text: str


@dataclass(frozen=True, slots=True)
class CallTool:
    """A function call. ``arguments`` is the JSON text the model would write."""

    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Pause:
    """Wait this long (on the session's clock) before the next output."""

    seconds: float


BrainOutput: TypeAlias = Say | CallTool | Pause


@runtime_checkable
class Brain(Protocol):
    """Writes a reply. ``respond`` may be called for overlapping responses (out-of-band); keep no per-call
    state on the instance unless it is meant to be shared (the scripted brain's turn counter is)."""

    def respond(self, request: BrainRequest) -> AsyncIterator[BrainOutput]: ...
