"""Speech-to-text of a session's committed user audio: only what someone waits for, and early when it can be.

A pass runs when somebody reads its result: the session's ``input_audio_transcription`` settings are on (the
client gets transcription events) or the brain reads transcripts (``needs_transcripts``, true unless a brain says
otherwise). Otherwise the audio is kept and transcribed only if :meth:`Transcripts.text_of` asks for it.

Early pass: whisper costs one fixed 30 s window per pass, so the time after the silence wait is mostly that one
pass. When the speaker pauses (``early_after_ms`` of silence inside a turn) the session calls :meth:`pause` and a
pass starts on the turn's audio up to where the pause began. If the turn then ends at that same pause (nothing
was said after it), :meth:`start` reuses that pass instead of starting another: the transcript is ready about a
silence wait sooner. If the speaker goes on, the early pass's result is dropped (its CPU is the price).

Passes of every session queue for Whisper's workers (the engine's transcription :class:`~.workers.WorkQueue`, in
the order their turns ended). An early pass is a guess, worth its CPU only when that CPU is spare: it starts only
while the queue is idle (a worker free, no pass waiting). With many calls on the engine, a guess never waits in
the queue ahead of a committed turn's pass, and its cost is not paid when the cores are short.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import get_logger
from ..protocol import events as ev
from .conversation import Entry, pcm_ms
from .ports import YieldingSpeechToTextPort

if TYPE_CHECKING:
    from .host import SessionHost as EngineSession

__all__ = ["EARLY_PASS_AFTER_MS", "Transcripts"]

log = get_logger(__name__)

# Silence inside a turn before an early pass starts: long enough to skip the gaps between words, short against
# the silence wait (server_vad default 200 ms; semantic_vad asks its model after 200 ms).
EARLY_PASS_AFTER_MS = 60


@dataclass
class _Pass:
    task: asyncio.Task[str] | None  # None: not started (nobody waited) or no STT
    pcm: bytes = b""


@dataclass(frozen=True)
class _Early:
    from_ms: int
    pause_ms: int
    options: tuple[str | None, str | None]
    task: asyncio.Task[str]


class Transcripts:
    """One session's transcription passes (owned by :class:`~.session.EngineSession`)."""

    def __init__(self, session: EngineSession) -> None:
        self.s = session
        self._passes: dict[str, _Pass] = {}
        self._early: _Early | None = None
        self.reused = 0  # turns whose transcript came from an early pass (for tests and benchmarks)
        self.skipped_early = 0  # pauses that started no early pass because the queue was busy (same)
        self.early_after_ms: int | None = EARLY_PASS_AFTER_MS  # None: no early passes (benchmarks compare)

    def _settings(self) -> dict[str, Any] | None:
        settings: dict[str, Any] | None = self.s.session["audio"]["input"]["transcription"]
        return settings

    def _options(self) -> tuple[str | None, str | None]:
        settings = self._settings() or {}
        return settings.get("language"), settings.get("prompt")

    def wanted(self) -> bool:
        """Whether someone reads the transcript of the next turn (the client's settings or the brain)."""
        return self._settings() is not None or bool(getattr(self.s.brain, "needs_transcripts", True))

    def _spawn_pass(self, pcm: bytes) -> asyncio.Task[str] | None:
        stt = self.s.speech.stt
        if stt is None:
            return None
        language, prompt = self._options()
        queued_at = self.s.clock.now()  # passes run in the order their turns ended (or paused)

        synthesis = self.s.synthesis
        yielding = stt if isinstance(stt, YieldingSpeechToTextPort) and stt.yield_nice > 0 else None

        def job() -> Any:
            if yielding is not None:  # decided as the pass starts: a listener's next piece goes first (speech/load.py)
                return yielding.transcribe(pcm, language=language, prompt=prompt, yield_cpu=synthesis.busy)
            return stt.transcribe(pcm, language=language, prompt=prompt)

        async def transcribe() -> str:
            result = await self.s.transcription.run(job, deadline=queued_at)
            return str(getattr(result, "text", "")).strip()

        task: asyncio.Task[str] = self.s.spawn(transcribe())
        return task

    def pause(self, from_ms: int, pause_ms: int) -> None:
        """The speaker paused at session time ``pause_ms`` in a turn that began at ``from_ms``: start an early
        pass on that audio unless one for this very pause exists or nobody would read it."""
        early = self._early
        if early is not None and (early.from_ms, early.pause_ms) == (from_ms, pause_ms):
            return
        self._early = None
        if self.early_after_ms is None or self.s.speech.stt is None or not self.wanted():
            return
        if not self.s.transcription.idle():
            self.skipped_early += 1  # a guess waits for no worker (see the module's docstring)
            return
        task = self._spawn_pass(self.s.buffer.peek(from_ms, pause_ms))
        if task is not None:
            self._early = _Early(from_ms, pause_ms, self._options(), task)

    def start(self, entry: Entry, pcm: bytes, *, from_ms: int | None = None, pause_ms: int | None = None) -> None:
        """A user turn was committed: transcribe it if someone waits (reusing the early pass when the turn ended
        at its pause), and send the transcription events when the settings ask for them."""
        early, self._early = self._early, None
        settings = self._settings()
        if self.s.speech.stt is None:
            self._passes[entry.id] = _Pass(None)
            if settings is not None:
                self.s.spawn(self._emit(entry, settings, None))
            return
        if not self.wanted():
            self._passes[entry.id] = _Pass(None, pcm)  # transcribed only if text_of asks
            return
        if early is not None and (early.from_ms, early.pause_ms, early.options) == (from_ms, pause_ms, self._options()):
            task: asyncio.Task[str] | None = early.task
            self.reused += 1
        else:
            task = self._spawn_pass(pcm)
        self._passes[entry.id] = _Pass(task)
        if settings is not None:
            self.s.spawn(self._emit(entry, settings, task))

    async def text_of(self, entry: Entry) -> str:
        """The user's words in an audio item (waits for the pass; starts one if none ran; "" without STT)."""
        known = entry.text()
        if known:
            return known
        pending = self._passes.get(entry.id)
        if pending is None:
            return ""
        if pending.task is None and pending.pcm:
            pending.task = self._spawn_pass(pending.pcm)
            pending.pcm = b""
        if pending.task is None:
            return ""
        try:
            return await asyncio.shield(pending.task)
        except Exception:  # noqa: BLE001  # the failure was reported by the transcription events
            return ""

    async def _emit(self, entry: Entry, settings: dict[str, Any], task: asyncio.Task[str] | None) -> None:
        s = self.s
        audio_ms = pcm_ms(len(entry.audio.get(0, b"")))
        if task is None:
            await s.emit(
                ev.ConversationItemInputAudioTranscriptionFailedEvent(
                    item_id=entry.id,
                    content_index=0,
                    error={
                        "type": "server_error",
                        "code": "transcription_unavailable",
                        "message": "This engine runs without a speech-to-text model.",
                        "param": None,
                    },
                )
            )
            return
        try:
            text = await asyncio.shield(task)
        except Exception as exc:  # noqa: BLE001  # a broken model must not end the session: report it as the service does
            log.warning("input transcription failed: %s", exc)
            await s.emit(
                ev.ConversationItemInputAudioTranscriptionFailedEvent(
                    item_id=entry.id,
                    content_index=0,
                    error={"type": "server_error", "code": "transcription_failed", "message": str(exc), "param": None},
                )
            )
            return
        model = str(settings.get("model", "whisper-1"))
        chunks = [text] if model == "whisper-1" else _word_chunks(text)
        for chunk in chunks:
            await s.emit(
                ev.ConversationItemInputAudioTranscriptionDeltaEvent(item_id=entry.id, content_index=0, delta=chunk)
            )
        if entry.id in s.conversation:
            entry.wire["content"][0]["transcript"] = text
        audio_tokens = max(1, audio_ms // 100)
        text_tokens = max(1, len(text) // 4) if text else 0
        usage = {
            "type": "tokens",
            "total_tokens": audio_tokens + text_tokens,
            "input_tokens": audio_tokens,
            "input_token_details": {"text_tokens": 0, "audio_tokens": audio_tokens},
            "output_tokens": text_tokens,
        }
        await s.emit(
            ev.ConversationItemInputAudioTranscriptionCompletedEvent(
                item_id=entry.id, content_index=0, transcript=text, usage=usage
            )
        )


def _word_chunks(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words) if w]
