"""What the engine needs from speech components, as structural types.

The engine's speech package (``aoai_realtime.engine.speech``) provides real implementations (silero/webrtc/
energy VAD, faster-whisper, piper, a deterministic tone TTS); anything with the same methods works, which
keeps tests free to pass small fakes. :class:`SpeechKit` bundles them: each session gets its own VAD from
``new_vad`` (a VAD holds per-stream state); STT and TTS are shared and must be safe to call from a worker
thread (the engine runs them with ``asyncio.to_thread``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "EndOfTurnPort",
    "SpeechKit",
    "SpeechPort",
    "SpeechToTextPort",
    "TextToSpeechPort",
    "VadPort",
    "YieldingSpeechToTextPort",
]


@runtime_checkable
class VadPort(Protocol):
    """Voice activity detection over pcm16 24 kHz mono: one speech probability per ``frame_ms`` frame.

    ``process`` keeps partial frames between calls, so the frames it reports are contiguous from the last
    ``reset``.
    """

    frame_ms: int

    def process(self, pcm16_24k: bytes) -> list[float]: ...

    def reset(self) -> None: ...


@runtime_checkable
class SpeechToTextPort(Protocol):
    """Blocking speech-to-text; the result has a ``text`` attribute."""

    def transcribe(self, pcm16_24k: bytes, *, language: str | None = None, prompt: str | None = None) -> Any: ...


@runtime_checkable
class YieldingSpeechToTextPort(Protocol):
    """A speech-to-text that can run a pass at lower priority (``yield_cpu=True``) when ``yield_nice`` > 0: the
    engine asks for it while its speech synthesis is busy, so that a listener's next piece gets the cores first."""

    yield_nice: int

    def transcribe(
        self, pcm16_24k: bytes, *, language: str | None = None, prompt: str | None = None, yield_cpu: bool = False
    ) -> Any: ...


@runtime_checkable
class TextToSpeechPort(Protocol):
    """Blocking text-to-speech: pcm16 24 kHz mono chunks."""

    def synthesize(self, text: str) -> Iterator[bytes]: ...


@runtime_checkable
class EndOfTurnPort(Protocol):
    """Blocking end-of-turn scoring for ``semantic_vad``: P(the speaker has finished) of a turn's audio so far
    (pcm16 24 kHz). Optional: a speech bundle may have an ``end_of_turn`` attribute holding one (or None)."""

    def probability(self, pcm16_24k: bytes) -> float: ...


class SpeechPort(Protocol):
    """What a session reads from its speech bundle (``engine.speech.Speech`` and :class:`SpeechKit` fit)."""

    @property
    def new_vad(self) -> Callable[[], VadPort] | None: ...

    @property
    def stt(self) -> SpeechToTextPort | None: ...

    @property
    def tts(self) -> TextToSpeechPort | None: ...


@dataclass(frozen=True)
class SpeechKit:
    """The speech parts one engine uses. ``stt``/``tts`` may be None (then no transcripts / silent audio)."""

    new_vad: Callable[[], VadPort] | None
    stt: SpeechToTextPort | None
    tts: TextToSpeechPort | None
    name: str = "custom"
    end_of_turn: EndOfTurnPort | None = None  # semantic_vad's end-of-turn model; None: silence waits only
