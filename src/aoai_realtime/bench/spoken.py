"""Voices that know when each word they speak starts: the ground truth of the transcript-sync benchmark.

The benchmark gives the engine one of these as its TTS; the engine asks it for pieces of an answer as it always
does (one ``synthesize`` call per piece, one chunk per sentence) and the voice records, per call, the audio
length and the start of every word in it. The truth is therefore the audio the engine actually sent, cut where
the engine actually cut it, whatever rule the engine follows.

- :class:`ToneVoice`: tone speech; its word timings are exact by construction (``ToneTts``).
- :class:`PiperVoice`: the engine's piper voice (``PiperTts``, the same settings and post-processing), with the
  model's own phoneme durations exposed (piper-tts's ``include_alignments``: the ``Ceil`` tensor of the duration
  predictor, made a graph output with the ``onnx`` package). Each phoneme's duration is exactly the audio the
  decoder made for it, so a word starts where its first phoneme's frames start: exact to one 256-sample hop
  (11.6 ms at 22,050 Hz). Needs ``onnx`` (``pip install "piper-tts[alignment]==1.8.0"``, in the dev extra).

Synthesis is cached per (voice, pace, text) for the whole run: the benchmark speaks each answer more than once.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..engine.speech.resample import float32_to_pcm16, resample
from ..engine.speech.tone import ToneTts
from ..engine.speech.tts import PiperTts

__all__ = ["PiperVoice", "SpokenPiece", "TimedTts", "TimedVoice", "ToneVoice", "alignment_available"]

RATE = 24000


@dataclass(frozen=True, slots=True)
class SpokenPiece:
    """One ``synthesize`` call: the text, its audio (one chunk per sentence) and where each word starts (ms from
    the start of the piece's audio)."""

    text: str
    chunks: tuple[bytes, ...]
    word_starts_ms: tuple[float, ...]
    chunk_words: tuple[list[tuple[int, float]], ...] = ()  # as the engine got them from ``synthesize_timed``

    @property
    def audio_ms(self) -> float:
        return sum(len(c) for c in self.chunks) / 2 * 1000.0 / RATE


class TimedVoice(Protocol):
    """A voice that returns a piece's audio with its word starts."""

    name: str
    pace: float  # the knob that sets its speaking rate (tone: ms per character; piper: length_scale)

    def speak(self, text: str) -> SpokenPiece: ...


class ToneVoice:
    """Tone speech with ``ToneTts``'s default character and gap lengths times ``scale`` (> 1: slower)."""

    name = "tone"

    def __init__(self, scale: float = 1.0) -> None:
        self.pace = scale

        def samples(ms: float) -> float:
            return round(ms * scale * RATE / 1000) * 1000 / RATE

        self._tts = ToneTts(char_ms=samples(30.0), word_gap_ms=samples(90.0), sentence_gap_ms=samples(300.0))

    def speak(self, text: str) -> SpokenPiece:
        chunks: list[bytes] = []
        starts: list[float] = []
        for pcm, timings in self._tts.synthesize_sentences(text):
            chunks.append(pcm)
            starts.extend(t.start_ms for t in timings)
        return SpokenPiece(text, tuple(chunks), tuple(starts))


def alignment_available() -> bool:
    """Whether piper's phoneme alignments can be had (the ``onnx`` package and the engine extra are installed)."""
    try:
        importlib.import_module("onnx")
        importlib.import_module("piper")
    except ImportError:
        return False
    return True


_PATCHED: dict[str, bytes] = {}
_PATCH_LOCK = threading.Lock()


def _patched_model(path: str) -> bytes:
    """The voice model with its phoneme durations as an extra output (patched in memory, once per run)."""
    with _PATCH_LOCK:
        if path not in _PATCHED:
            onnx: Any = importlib.import_module("onnx")
            from piper.patch_voice_with_alignment import add_alignment_output

            model = onnx.load(path)
            add_alignment_output(model)
            _PATCHED[path] = model.SerializeToString()
        return _PATCHED[path]


class PiperVoice(PiperTts):
    """The engine's piper voice at ``length_scale`` that also reports word starts (see the module docstring).

    The audio is made exactly as :meth:`PiperTts.synthesize` makes it (same synthesis settings, resampling to
    24 kHz and sentence silence); only the model session is swapped for the patched one after loading.
    """

    name = "piper"

    def __init__(self, length_scale: float = 1.0, **kwargs: Any) -> None:
        super().__init__(length_scale=length_scale, **kwargs)
        self.pace = length_scale
        self._timed_lock = threading.Lock()
        self._patched = False

    def _ensure_patched(self) -> Any:
        self.load()
        with self._timed_lock:
            voice: Any = self._voice
            if not self._patched:
                onnxruntime: Any = importlib.import_module("onnxruntime")
                from ..engine.speech.integrity import PIPER_VOICE, verify_model_files

                root = verify_model_files(PIPER_VOICE, directory=self._model_dir)
                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = self.cpu_threads
                options.inter_op_num_threads = 1
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                options.log_severity_level = 3
                voice.session = onnxruntime.InferenceSession(
                    _patched_model(str(root / "en_US-joe-medium.onnx")),
                    sess_options=options,
                    providers=["CPUExecutionProvider"],
                )
                self._patched = True
            return voice

    def speak(self, text: str) -> SpokenPiece:
        voice = self._ensure_patched()
        silence = b"\x00\x00" * (self.sample_rate * self.sentence_silence_ms // 1000)
        chunks: list[bytes] = []
        phones: list[tuple[str, float]] = []  # (phoneme, start ms in the piece), words' sounds only
        offset_ms = 0.0
        for index, chunk in enumerate(voice.synthesize(text, syn_config=self._syn_config, include_alignments=True)):
            rate = int(chunk.sample_rate)
            pcm = float32_to_pcm16(resample(chunk.audio_float_array, rate, self.sample_rate))
            if index:
                pcm = silence + pcm
                offset_ms += len(silence) / 2 * 1000.0 / self.sample_rate
            if chunk.phoneme_alignments is None:
                raise RuntimeError(f"piper gave no phoneme alignments for {text!r}")
            phones.extend((p, offset_ms + s * 1000.0 / rate) for p, s in _sounds(chunk.phoneme_alignments))
            chunks.append(pcm)
            offset_ms += len(pcm) / 2 * 1000.0 / self.sample_rate
        words = [[p for sentence in voice.phonemize(w) for p in sentence if _is_sound(p)] for w in text.split()]
        return SpokenPiece(text, tuple(chunks), tuple(_word_starts(words, phones)))


_NOT_SOUNDS = set(" ^$.,:;!?¡¿—…\"«»“”()-")
_STRESS = set("ˈˌ")


def _is_sound(phoneme: str) -> bool:
    return phoneme not in _NOT_SOUNDS and phoneme not in _STRESS


def _sounds(alignments: list[Any]) -> list[tuple[str, int]]:
    """``(phoneme, start sample)`` of each sound (no pauses, punctuation or markers). A stress mark has frames
    of its own before the sound it stresses: the sound starts with it."""
    sounds: list[tuple[str, int]] = []
    position = 0
    stress_at: int | None = None
    for alignment in alignments:
        phoneme = alignment.phoneme
        if phoneme in _STRESS:
            stress_at = position if stress_at is None else stress_at
        elif _is_sound(phoneme):
            sounds.append((phoneme, position if stress_at is None else stress_at))
            stress_at = None
        else:
            stress_at = None
        position += int(alignment.num_samples)
    return sounds


def _word_starts(words: list[list[str]], phones: list[tuple[str, float]]) -> list[float]:
    """Where each word starts in ``phones`` (the piece as spoken), given each word's phonemes said alone.

    espeak runs some words together in context ("from the" is one phoneme word, ``fɹʌmðə``) and says others a
    little differently, so the words' phonemes are aligned to the spoken ones by least edits; a word starts at
    the first spoken phoneme its own phonemes were aligned to (or, if all were dropped, where they would be)."""
    expected = [(p, w) for w, phonemes in enumerate(words) for p in phonemes]
    n, m = len(expected), len(phones)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for j in range(m + 1):
        cost[0][j] = j
    for i in range(1, n + 1):
        cost[i][0] = i
        for j in range(1, m + 1):
            same = 0 if expected[i - 1][0] == phones[j - 1][0] else 1
            cost[i][j] = min(cost[i - 1][j - 1] + same, cost[i - 1][j] + 1, cost[i][j - 1] + 1)
    at = [m] * n  # spoken phoneme each expected one lines up with
    i, j = n, m
    while i > 0:
        if j > 0 and cost[i][j] == cost[i - 1][j - 1] + (0 if expected[i - 1][0] == phones[j - 1][0] else 1):
            at[i - 1] = j - 1
            i, j = i - 1, j - 1
        elif j > 0 and cost[i][j] == cost[i][j - 1] + 1:
            j -= 1
        else:
            at[i - 1] = j  # dropped: where it would have been
            i -= 1
    end = phones[-1][1] if phones else 0.0
    starts: list[float] = []
    for w in range(len(words)):
        first = next((at[k] for k, (_, word) in enumerate(expected) if word == w), m)
        starts.append(phones[first][1] if first < m else end)
    return starts


@dataclass
class TimedTts:
    """The engine's TTS for one benchmark session: speaks with ``voice`` (cached in ``cache``) and records every
    piece the engine asked for, in order, in :attr:`spoken`. Thread-safe enough for the engine's use (one
    piece at a time)."""

    voice: TimedVoice
    cache: dict[tuple[str, float, str], SpokenPiece]
    spoken: list[SpokenPiece] = field(default_factory=list)
    sample_rate: int = RATE
    offer_timings: bool = True  # False: the engine gets no word timings even from a voice that has them

    def synthesize(self, text: str) -> Iterator[bytes]:
        if not text.strip():
            return
        key = (self.voice.name, self.voice.pace, text)
        piece = self.cache.get(key)
        if piece is None:
            piece = self.cache[key] = self.voice.speak(text)
        self.spoken.append(piece)
        yield from piece.chunks

    @property
    def times_words(self) -> bool:
        """Whether the engine may ask for word timings (:meth:`synthesize_timed`): when the voice is the engine's
        piper voice and that knows where its words start (the engine then interleaves each word's transcript
        with its audio)."""
        return self.offer_timings and bool(getattr(self.voice, "times_words", False))

    def synthesize_timed(self, text: str) -> Iterator[tuple[bytes, list[tuple[int, float]]]]:
        """The engine's own ``PiperTts.synthesize_timed``, recorded: the truth is then the word starts the voice
        gave the engine, from the model's phoneme durations (the same as :meth:`PiperVoice.speak` finds)."""
        key = (self.voice.name, self.voice.pace, "timed:" + text)
        piece = self.cache.get(key)
        if piece is None:
            timed: Any = self.voice
            items = list(timed.synthesize_timed(text))
            starts: dict[int, float] = {}
            offset = 0.0
            for pcm, words in items:
                for word, ms in words:
                    starts.setdefault(word, offset + ms)
                offset += len(pcm) / 2 * 1000.0 / RATE
            count = len(text.split())
            if sorted(starts) != list(range(count)):
                raise RuntimeError(f"the voice timed {len(starts)} of the {count} words of {text!r}")
            chunks = tuple(p for p, _ in items)
            piece = SpokenPiece(text, chunks, tuple(starts[k] for k in range(count)), tuple(w for _, w in items))
            self.cache[key] = piece
        self.spoken.append(piece)
        yield from zip(piece.chunks, [list(w) for w in piece.chunk_words], strict=True)

    def word_starts_ms(self) -> list[float]:
        """Every word spoken so far, ms from the start of the first piece (pieces play back to back)."""
        starts: list[float] = []
        offset = 0.0
        for piece in self.spoken:
            starts.extend(offset + s for s in piece.word_starts_ms)
            offset += piece.audio_ms
        return starts

    @property
    def audio_ms(self) -> float:
        return sum(p.audio_ms for p in self.spoken)
