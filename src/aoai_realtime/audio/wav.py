"""WAV files in and out, converted to and from the wire format (pcm16 mono 24 kHz). Stdlib ``wave`` only."""

from __future__ import annotations

import wave
from pathlib import Path

from ..errors import ConfigError
from .pcm import SAMPLE_RATE, resample, to_mono

__all__ = ["read_wav", "write_wav"]


def read_wav(path: str | Path, *, rate: int = SAMPLE_RATE) -> bytes:
    """Read a 16-bit PCM WAV file as pcm16 mono at ``rate`` (24 kHz by default), converting as needed."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ConfigError(
                f"{path}: {8 * w.getsampwidth()}-bit WAV; convert it to 16-bit PCM first", field="path"
            )
        pcm = w.readframes(w.getnframes())
        return resample(to_mono(pcm, w.getnchannels()), w.getframerate(), rate)


def write_wav(path: str | Path, pcm: bytes, *, rate: int = SAMPLE_RATE) -> None:
    """Write pcm16 mono at ``rate`` as a WAV file."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
