"""Session rollover: carry a conversation into a fresh session before the old one hits its time limit.

A Realtime session lasts at most 60 minutes and cannot be renewed (reference 4.7); the conversation lives
server-side and dies with it. The assistant therefore opens the next session *before* the limit, seeds it
with a summary of the older turns (in the instructions) and the last turns verbatim (as items), and switches
to it at a silence boundary (listening, no response, no tools running), so nobody hears dead air. If the
session ends early (``session_expired``) the switch happens at once.

This module holds the policy and the pure seeding step; the switch itself is done by
:class:`~aoai_realtime.agents.voice.VoiceAssistant`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from ..errors import ConfigError
from ..protocol import events as ev
from .transcript import TranscriptEntry

__all__ = ["RolloverPolicy", "Seed", "build_seed", "extractive_summary"]

Summarizer = Callable[[Sequence[TranscriptEntry]], Awaitable[str]]


@dataclass(frozen=True, kw_only=True)
class RolloverPolicy:
    """When and how to roll over.

    ``max_session_s``: the service's limit (60 min) when the session does not say (``expires_at``).
    ``margin_s``: start preparing this long before the limit. ``keep_turns``: transcript entries copied
    verbatim into the new session. ``summarize``: turns older than those -> a summary (default: extractive,
    no model call). ``boundary_timeout_s``: if no silence boundary comes within this time, switch anyway.
    ``use_expires_at``: also honour the session's own ``expires_at`` when it is earlier than ``max_session_s``.
    A session is never rolled over before half its life, however large ``margin_s`` is.
    """

    max_session_s: float = 3600.0
    margin_s: float = 120.0
    keep_turns: int = 8
    summarize: Summarizer | None = None
    boundary_timeout_s: float = 90.0
    use_expires_at: bool = True

    def __post_init__(self) -> None:
        if self.margin_s <= 0 or self.margin_s >= self.max_session_s:
            raise ConfigError("margin_s must be > 0 and smaller than max_session_s", field="margin_s")
        if self.keep_turns < 0:
            raise ConfigError("keep_turns must be >= 0", field="keep_turns")


@dataclass(frozen=True, slots=True)
class Seed:
    """What the next session starts with."""

    instructions: str
    items: tuple[ev.Item, ...]


async def extractive_summary(entries: Sequence[TranscriptEntry], *, max_chars: int = 2000) -> str:
    """A summary without a model: the older turns, most recent kept when over ``max_chars``."""
    lines = [f"{e.role}: {e.text}" for e in entries if e.text]
    text = "\n".join(lines)
    return text if len(text) <= max_chars else "..." + text[-max_chars:]


async def build_seed(
    entries: Sequence[TranscriptEntry], *, instructions: str, policy: RolloverPolicy
) -> Seed:
    """Split the transcript into summary (older) and verbatim (last ``keep_turns``) parts."""
    spoken = [e for e in entries if e.text and e.role in ("user", "assistant")]
    keep = spoken[len(spoken) - policy.keep_turns :] if policy.keep_turns else []
    older = spoken[: len(spoken) - len(keep)]
    summarize = policy.summarize or extractive_summary
    summary = await summarize(older) if older else ""
    text = instructions
    if summary:
        text = (
            f"{instructions}\n\nThis conversation continues from an earlier session. "
            f"Summary of what was said before:\n{summary}"
        ).strip()
    items = tuple(
        ev.Item(
            type="message",
            role=e.role,
            content=[ev.ContentPart(type="input_text" if e.role == "user" else "output_text", text=e.text)],
        )
        for e in keep
    )
    return Seed(text, items)
