"""What a session's parts (a response run, the transcription passes, the input audio) may use of their session.

:class:`SessionHost` is the face :class:`~.session.EngineSession` shows them. They import this module, never
``session.py``, so the session and its parts form no import cycle: the session is built from them, they know it
only by this protocol.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Protocol

from ..protocol import events as ev
from ..protocol.schema import RealtimeSession
from .brain.base import Brain
from .clock import Clock
from .conversation import Conversation, Entry
from .ids import Ids
from .pacing import TtsPace
from .ports import SpeechPort
from .turns import InputBuffer
from .workers import WorkQueue

__all__ = ["AudioOut", "SessionHost"]


class AudioOut(Protocol):
    """Where assistant audio goes on WebRTC (a paced media track) instead of ``output_audio.delta`` events.

    ``write`` queues audio (may wait when the queue is full); ``clear`` drops what is unplayed and returns
    ``(response_id, item_id, played_ms_of_that_item)`` or None; ``wait_drained`` returns once everything
    queued so far has been played.
    """

    async def write(self, response_id: str, item_id: str, pcm: bytes) -> None: ...

    def clear(self) -> tuple[str, str, int] | None: ...

    async def wait_drained(self) -> None: ...


class SessionHost(Protocol):
    """One engine session, as its parts see it."""

    brain: Brain
    speech: SpeechPort
    clock: Clock
    ids: Ids
    audio_out: AudioOut | None
    tts_pace: TtsPace  # how fast this session's answers have been synthesised (see :mod:`.pacing`)
    synthesis: WorkQueue  # the engine's TTS queue, shared by its sessions
    transcription: WorkQueue  # the engine's transcription queue, shared by its sessions
    conversation: Conversation
    conversation_id: str

    @property
    def session(self) -> RealtimeSession:
        """The effective session (typed GA shape)."""

    @property
    def buffer(self) -> InputBuffer:
        """The uncommitted input audio."""

    @property
    def closed(self) -> bool: ...

    @property
    def voice_locked(self) -> bool:
        """True once the session has produced assistant audio (the voice can no longer change)."""

    @voice_locked.setter
    def voice_locked(self, value: bool) -> None: ...

    async def emit(self, event: ev.ServerEvent) -> None:
        """Queue a server event (a fresh ``event_id``); waits while the outbox is full."""

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` as a task the session owns (cancelled when it closes)."""

    async def transcript_of(self, entry: Entry) -> str:
        """The user's words in an audio item ("" without speech-to-text)."""

    async def clear_output_audio(self) -> None:
        """WebRTC: drop unplayed assistant audio and truncate its item to what was heard."""
