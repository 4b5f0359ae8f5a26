"""Test audio: speech, silence and tones as pcm16 24 kHz mono bytes (the Realtime API's format), and WAV I/O.

Speech comes from Debian's ``flite`` (voice ``slt``) or ``espeak-ng`` through a subprocess, or from the piper
voice the engine ships. Whisper tiny.en transcribes flite and piper audio exactly (offline-models.md §2), so
use those where a test asserts on the transcript; espeak-ng is robotic and is only good for keywords.
A missing binary raises :class:`MissingTool` saying what to install; tests must not skip on it (CI installs
``flite espeak-ng sox`` with ``scripts/setup.sh --test``).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RealtimeError

__all__ = [
    "MissingTool",
    "concat",
    "read_wav",
    "silence",
    "speak_espeak",
    "speak_flite",
    "speak_piper",
    "tone",
    "write_wav",
]

RATE = 24000


class MissingTool(RealtimeError):
    """A program the test audio needs is not installed."""


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise MissingTool(
            f"{name} is not installed; run: apt-get install -y flite espeak-ng sox (or scripts/setup.sh --test)"
        )
    return path


def silence(ms: float) -> bytes:
    """``ms`` milliseconds of digital silence."""
    return b"\x00\x00" * round(ms * RATE / 1000)


def tone(ms: float, freq: float = 440.0, *, amplitude: float = 0.3) -> bytes:
    """A sine of ``freq`` Hz lasting ``ms`` milliseconds, peak ``amplitude`` (of full scale)."""
    t = np.arange(round(ms * RATE / 1000)) / RATE
    return _to_pcm16(amplitude * np.sin(2 * np.pi * freq * t))


def concat(*parts: bytes) -> bytes:
    """Join pcm16 buffers (a readable alias of ``b"".join``)."""
    return b"".join(parts)


def _to_pcm16(x: Any) -> bytes:
    return np.clip(np.rint(np.asarray(x) * 32768.0), -32768, 32767).astype("<i2").tobytes()


def _to_24k(pcm: bytes, rate: int) -> bytes:
    from ..engine.speech.resample import resample_pcm16

    return resample_pcm16(pcm, rate, RATE)


def write_wav(path: str | Path, pcm: bytes, rate: int = RATE, *, channels: int = 1) -> None:
    """Write pcm16 (interleaved if ``channels`` > 1) as a WAV file."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


def _read(w: wave.Wave_read) -> tuple[bytes, int]:
    if w.getsampwidth() != 2:
        raise ValueError(f"only 16-bit WAV is supported, this one has {8 * w.getsampwidth()}-bit samples")
    pcm = w.readframes(w.getnframes())
    channels = w.getnchannels()
    if channels > 1:
        frames = np.frombuffer(pcm, dtype="<i2").reshape(-1, channels).astype(np.int32)
        pcm = (frames.sum(axis=1) // channels).astype("<i2").tobytes()
    return pcm, w.getframerate()


def read_wav(path: str | Path) -> tuple[bytes, int]:
    """Read a 16-bit WAV file as mono pcm16 (channels averaged) and its sample rate. No resampling."""
    with wave.open(str(path), "rb") as w:
        return _read(w)


def speak_flite(text: str, *, voice: str = "slt") -> bytes:
    """``text`` spoken by flite (16 kHz), resampled to pcm16 24 kHz. ``voice``: one of ``flite -lv``."""
    if voice not in ("slt", "kal", "kal16", "awb", "rms", "awb_time"):
        raise ValueError(f"unknown flite voice {voice!r}")
    flite = _binary("flite")
    with tempfile.TemporaryDirectory(prefix="aoai-flite-") as tmp:
        out = Path(tmp) / "speech.wav"
        subprocess.run([flite, "-voice", voice, "-t", text, "-o", str(out)], check=True, capture_output=True)
        pcm, rate = read_wav(out)
    return _to_24k(pcm, rate)


def speak_espeak(text: str, *, voice: str = "en-us", words_per_minute: int = 130) -> bytes:
    """``text`` spoken by espeak-ng (22,050 Hz), resampled to pcm16 24 kHz. Robotic: assert on keywords."""
    espeak = _binary("espeak-ng")
    result = subprocess.run(
        [espeak, "-v", voice, "-s", str(words_per_minute), "--stdout", "--", text], check=True, capture_output=True
    )
    with wave.open(io.BytesIO(result.stdout), "rb") as w:
        pcm, rate = _read(w)
    return _to_24k(pcm, rate)


def speak_piper(text: str) -> bytes:
    """``text`` spoken by the engine's piper voice, pcm16 24 kHz, without its random variation: the same audio on
    every run, so a test that asserts on what Whisper hears passes or fails the same way each time. Uses the
    process-wide voice that ``load_speech("full")`` shares, so it is loaded once."""
    from ..engine.speech import PiperTts, load_speech

    tts = load_speech("full", preload=False).tts
    if not isinstance(tts, PiperTts):
        raise TypeError(f"the shared full-speech voice is {type(tts).__name__}, not piper")
    return b"".join(tts.synthesize(text, steady=True))
