"""Bundles of VAD + STT + TTS, chosen by name: ``load_speech("full" | "light" | "fake")``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

from ...errors import ConfigError
from .endofturn import SmartTurn
from .stt import SpeechToText, WhisperStt
from .tone import ToneStt, ToneTts
from .tts import PiperTts, TextToSpeech
from .vad import EnergyVad, SileroVad, VoiceActivityDetector, WebRtcVad

__all__ = ["Speech", "SpeechKind", "load_speech"]

SpeechKind = Literal["full", "light", "fake"]


@dataclass(frozen=True, slots=True)
class Speech:
    """The speech parts of an engine. ``stt`` and ``tts`` are shared by all sessions (thread-safe);
    VAD is per audio stream, so the bundle holds a factory: call ``speech.new_vad()`` once per session.

    Build one directly to inject other parts: ``Speech(kind="custom", new_vad=EnergyVad, stt=..., tts=...)``.
    The attributes match the engine's ``SpeechKit`` port (``name`` is the kind).
    """

    kind: str
    new_vad: Callable[[], VoiceActivityDetector]
    stt: SpeechToText
    tts: TextToSpeech
    end_of_turn: SmartTurn | None = None  # semantic_vad's end-of-turn model, when pipecat-ai is installed

    @property
    def name(self) -> str:
        return self.kind

    def preload(self) -> None:
        """Load every model now (checking its file hashes) instead of on first use. Blocking: call it from
        a worker thread or at start-up. Raises ``ModelIntegrityError`` on a missing or altered model file."""
        self.new_vad()
        for part in (self.stt, self.tts):  # end_of_turn loads when a semantic_vad session first needs it
            load = getattr(part, "load", None)
            if callable(load):
                load()


_shared: dict[str, Speech] = {}
_shared_lock = threading.Lock()


# A Whisper pass that starts while the engine's speech synthesis is busy runs this much nicer (on a second
# instance of the model whose threads run at that niceness): a TTS piece whose listener is about to run out of
# audio then gets the cores first, and the pass only delays a reply that has not started. 12 rules-brain calls
# whose turns end together held with no underrun (first audio p95 1.27 s) where passes at the engine's priority
# gave 1-3 underruns. Every pass at nice 4 would lose to any other program's work instead (one call beside two
# busy loops: first audio p50 ~500 ms against ~210); passes that start while synthesis is idle keep the
# engine's priority (docs/design.md, "The bench's callers did not listen").
TRANSCRIPTION_NICE = 4


def _build(kind: SpeechKind, whisper: WhisperStt | None = None) -> Speech:
    judge = SmartTurn() if SmartTurn.installed() else None
    if kind in ("full", "light"):
        stt = whisper or WhisperStt(yield_nice=TRANSCRIPTION_NICE)
        if kind == "full":
            return Speech(kind=kind, new_vad=SileroVad, stt=stt, tts=PiperTts(), end_of_turn=judge)
        return Speech(kind=kind, new_vad=WebRtcVad, stt=stt, tts=ToneTts(), end_of_turn=judge)
    return Speech(kind=kind, new_vad=EnergyVad, stt=ToneStt(), tts=ToneTts())


def _shared_speech(kind: SpeechKind) -> Speech:
    with _shared_lock:
        speech = _shared.get(kind)
        if speech is None:
            # "full" and "light" share one Whisper model too.
            whisper = next((s.stt for s in _shared.values() if isinstance(s.stt, WhisperStt)), None)
            speech = _shared[kind] = _build(kind, whisper)
        return speech


def load_speech(kind: SpeechKind, *, preload: bool = True, shared: bool = True) -> Speech:
    """The speech parts for ``kind``:

    ``"full"``
        ``SileroVad`` + ``WhisperStt`` (tiny.en) + ``PiperTts`` (joe): real speech both ways. Loading takes
        about 1.5 s and 300 MB; one utterance costs about 0.4-0.8 s of STT.
    ``"light"``
        ``WebRtcVad`` + ``WhisperStt`` + ``ToneTts``: understands real speech, answers in tones at once; no
        onnxruntime. For tests of what the user said (flite or piper audio in) that do not need a voice out.
    ``"fake"``
        ``EnergyVad`` + ``ToneStt`` + ``ToneTts``: no model, instant and deterministic. Speak a user turn with
        ``ToneTts`` and the engine transcribes exactly those words.

    ``preload`` loads the models now (blocking; hashes are checked), so a broken install fails at start-up
    rather than in the first call. ``shared`` reuses the STT/TTS instances of an earlier call with the same
    kind in this process, so many engines in one test run load each model once.
    """
    if kind not in get_args(SpeechKind):
        raise ConfigError(f"unknown speech kind {kind!r}; use one of {', '.join(get_args(SpeechKind))}", field="speech")
    speech = _shared_speech(kind) if shared else _build(kind)
    if preload:
        speech.preload()
    return speech
