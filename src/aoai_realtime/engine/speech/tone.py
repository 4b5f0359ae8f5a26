"""Tone speech: a model-free, deterministic stand-in for TTS and STT whose timing is known exactly.

:class:`ToneTts` "speaks" each word as one tone burst whose length is proportional to the word's length:
every character is a ``char_ms`` slice of a sine whose frequency encodes that character (phase-continuous, so
a word is one click-free burst). Words are separated by ``word_gap_ms`` of silence and sentences by
``sentence_gap_ms``. :meth:`ToneTts.synthesize_with_timings` returns the exact ``(word, start_ms, end_ms)`` of
every burst, which is what transcript/audio synchronisation tests need.

:class:`ToneStt` reads such audio back: it finds the bursts by their energy and each character by the peak
frequency of its slice. It survives resampling, chunking, added silence and moderate noise, so "speaking" a
user turn with ``ToneTts`` and transcribing it with ``ToneStt`` gives back the same words, instantly. Audio that
is not tone speech transcribes to ``""`` (bursts that do not decode are skipped).

Only characters in :data:`ALPHABET` are encoded (ASCII letters, digits, common punctuation); others are
folded to ASCII when possible (``é`` -> ``e``) and dropped otherwise. Words are whitespace-separated tokens
and keep their punctuation, so ``"Hi, Bob. Ready?"`` round-trips exactly.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from .resample import Float32Array, float32_to_pcm16, pcm16_to_float32
from .stt import Segment, Transcription

__all__ = ["ALPHABET", "ToneStt", "ToneTts", "WordTiming"]

ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,?!'\"-:;()&%$@/+#*="
_BASE_HZ = 400.0
_STEP_HZ = 75.0  # 76 symbols: 400 Hz .. 6025 Hz, under the 8 kHz Nyquist of 16 kHz audio
_RATE = 24000
_FADE_MS = 4.0
_SENTENCE_END = re.compile(r"[.?!][\"')]*$")


def _frequency(ch: str) -> float:
    return _BASE_HZ + _STEP_HZ * ALPHABET.index(ch)


class WordTiming(NamedTuple):
    """When a word sounds, in milliseconds from the start of the synthesized audio."""

    word: str
    start_ms: float
    end_ms: float


def _encodable(word: str) -> str:
    folded = unicodedata.normalize("NFKD", word)
    return "".join(ch for ch in folded if ch in ALPHABET)


def _sentences(text: str) -> list[list[str]]:
    sentences: list[list[str]] = [[]]
    for token in text.split():
        word = _encodable(token)
        if not word:
            continue
        sentences[-1].append(word)
        if _SENTENCE_END.search(word):
            sentences.append([])
    return [s for s in sentences if s]


class ToneTts:
    """Deterministic, instant text-to-tones (see the module docstring). pcm16, 24 kHz, mono.

    Thread-safe (no state). ``amplitude`` is the peak level (0.3 is about -13 dBFS RMS). A :class:`ToneStt`
    reading the audio must be given the same ``char_ms`` and ``sentence_gap_ms``.
    """

    sample_rate = _RATE

    def __init__(
        self,
        *,
        char_ms: float = 30.0,
        word_gap_ms: float = 90.0,
        sentence_gap_ms: float = 300.0,
        amplitude: float = 0.3,
    ) -> None:
        for name, value in (("char_ms", char_ms), ("word_gap_ms", word_gap_ms), ("sentence_gap_ms", sentence_gap_ms)):
            if value * _RATE / 1000.0 != int(value * _RATE / 1000.0) or value <= 0:
                raise ValueError(f"{name} must be a positive whole number of 24 kHz samples, got {value}")
        if char_ms < 15.0:
            raise ValueError(f"char_ms must be at least 15 ms for the tones to be told apart, got {char_ms}")
        if word_gap_ms < 40.0 or sentence_gap_ms < 2 * word_gap_ms:
            # ToneStt needs these gaps to tell words and sentences apart.
            raise ValueError(
                f"word_gap_ms must be at least 40 and sentence_gap_ms at least twice that, "
                f"got {word_gap_ms} and {sentence_gap_ms}"
            )
        if not 0.0 < amplitude <= 1.0:
            raise ValueError(f"amplitude must be in (0, 1], got {amplitude}")
        self.char_ms = char_ms
        self.word_gap_ms = word_gap_ms
        self.sentence_gap_ms = sentence_gap_ms
        self.amplitude = amplitude
        self._char_samples = int(char_ms * _RATE / 1000)

    def _word(self, word: str) -> Float32Array:
        freqs = np.repeat([_frequency(ch) for ch in word], self._char_samples)
        # Integrate the frequency so the phase is continuous across characters: no clicks inside a word.
        phase = 2.0 * np.pi * np.cumsum(freqs) / _RATE
        burst = self.amplitude * np.sin(phase)
        fade = min(int(_FADE_MS * _RATE / 1000), len(burst) // 2)
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, fade))
        burst[:fade] *= ramp
        burst[len(burst) - fade :] *= ramp[::-1]
        return burst.astype(np.float32)

    def synthesize_sentences(self, text: str) -> Iterator[tuple[bytes, list[WordTiming]]]:
        """Yield ``(pcm16, timings)`` per sentence; timings count from the start of the first sentence.

        Every sentence but the last ends with ``sentence_gap_ms`` of silence, so the chunks concatenate into
        the whole utterance.
        """
        sentences = _sentences(text)
        gap = np.zeros(int(self.word_gap_ms * _RATE / 1000), dtype=np.float32)
        pause = np.zeros(int(self.sentence_gap_ms * _RATE / 1000), dtype=np.float32)
        t = 0  # samples since the start of the utterance
        for index, words in enumerate(sentences):
            parts: list[Float32Array] = []
            timings: list[WordTiming] = []
            for j, word in enumerate(words):
                if j:
                    parts.append(gap)
                    t += len(gap)
                burst = self._word(word)
                timings.append(WordTiming(word, t * 1000.0 / _RATE, (t + len(burst)) * 1000.0 / _RATE))
                parts.append(burst)
                t += len(burst)
            if index < len(sentences) - 1:
                parts.append(pause)
                t += len(pause)
            yield float32_to_pcm16(np.concatenate(parts)), timings

    def synthesize(self, text: str) -> Iterator[bytes]:
        """Yield pcm16 24 kHz chunks, one per sentence (nothing for text with no encodable word)."""
        for pcm, _ in self.synthesize_sentences(text):
            yield pcm

    def synthesize_with_timings(self, text: str) -> tuple[bytes, list[WordTiming]]:
        """The whole utterance as one pcm16 buffer, with the exact timing of every word in it."""
        pcm = bytearray()
        timings: list[WordTiming] = []
        for chunk, words in self.synthesize_sentences(text):
            pcm += chunk
            timings.extend(words)
        return bytes(pcm), timings


class ToneStt:
    """Transcribes :class:`ToneTts` audio back to its words (see the module docstring). Thread-safe.

    ``char_ms`` must match the ``ToneTts`` that made the audio. Bursts closer than ``sentence_gap_ms`` / 2
    belong to one :class:`Segment`.
    """

    def __init__(self, *, char_ms: float = 30.0, sentence_gap_ms: float = 300.0) -> None:
        self.char_ms = char_ms
        self.sentence_gap_ms = sentence_gap_ms

    def transcribe(self, pcm16_24k: bytes, *, language: str | None = None, prompt: str | None = None) -> Transcription:
        """Decode the words; ``language`` and ``prompt`` are accepted for the protocol and ignored."""
        if len(pcm16_24k) % 2:
            pcm16_24k = pcm16_24k[:-1]
        x = pcm16_to_float32(pcm16_24k)
        words: list[tuple[str, float, float]] = []
        for a, b in self._bursts(x):
            word = self._decode(x[a:b])
            if word:
                words.append((word, a * 1000.0 / _RATE, b * 1000.0 / _RATE))
        segments: list[Segment] = []
        for word, start, end in words:
            if segments and start - segments[-1].end_ms < self.sentence_gap_ms / 2:
                last = segments[-1]
                segments[-1] = Segment(last.start_ms, end, f"{last.text} {word}")
            else:
                segments.append(Segment(start, end, word))
        return Transcription(text=" ".join(s.text for s in segments), segments=segments, language="en")

    def _bursts(self, x: Float32Array) -> list[tuple[int, int]]:
        win = 48  # 2 ms
        if len(x) < win:
            return []
        env = np.sqrt(np.convolve(np.square(x, dtype=np.float64), np.ones(win) / win, mode="same"))
        peak = float(env.max())
        if peak < 1e-3:  # -60 dBFS: silence
            return []
        on = env > 0.3 * peak
        edges = np.flatnonzero(np.diff(on.astype(np.int8)))
        bounds = np.concatenate(([0] if on[0] else [], edges + 1, [len(x)] if on[-1] else []))
        spans = [(int(a), int(b)) for a, b in zip(bounds[::2], bounds[1::2], strict=True)]
        # Dips inside a burst are not gaps between words (the shortest real gap is tens of ms).
        merged: list[tuple[int, int]] = []
        for a, b in spans:
            if merged and a - merged[-1][1] < 10 * win:
                merged[-1] = (merged[-1][0], b)
            else:
                merged.append((a, b))
        min_len = self.char_ms * _RATE / 1000 / 2
        return [(a, b) for a, b in merged if b - a >= min_len]

    def _decode(self, burst: Float32Array) -> str:
        slot = self.char_ms * _RATE / 1000
        n = max(1, round(len(burst) / slot))
        size = len(burst) / n
        chars = []
        for k in range(n):
            # The middle of each slice: away from the fades and the neighbouring characters.
            a = int(k * size + 0.2 * size)
            b = int((k + 1) * size - 0.2 * size)
            piece = burst[a:b] * np.hanning(b - a)
            spectrum = np.abs(np.fft.rfft(piece, n=8192))
            freq = float(np.argmax(spectrum)) * _RATE / 8192
            index = round((freq - _BASE_HZ) / _STEP_HZ)
            if not 0 <= index < len(ALPHABET) or abs(freq - _frequency(ALPHABET[index])) > _STEP_HZ / 3:
                return ""  # not one of our tones: not tone speech
            chars.append(ALPHABET[index])
        return "".join(chars)
