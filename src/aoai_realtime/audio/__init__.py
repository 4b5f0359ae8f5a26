"""Audio I/O adapters: pcm16 helpers, WAV files, headless sources and a real-time player, and an optional
microphone/speaker pair (``sounddevice``, imported only when a device is opened)."""

from __future__ import annotations

from .device import AudioDeviceUnavailable, Microphone, Speaker
from .pcm import (
    BYTES_PER_SAMPLE,
    SAMPLE_RATE,
    duration_ms,
    float32_to_pcm16,
    frames,
    pcm16_to_float32,
    resample,
    samples,
    to_mono,
)
from .player import AudioSink, PacedPlayer, PlayedListener
from .source import pcm_source, wav_source
from .wav import read_wav, write_wav

__all__ = [
    "BYTES_PER_SAMPLE",
    "SAMPLE_RATE",
    "AudioDeviceUnavailable",
    "AudioSink",
    "Microphone",
    "PacedPlayer",
    "PlayedListener",
    "Speaker",
    "duration_ms",
    "float32_to_pcm16",
    "frames",
    "pcm16_to_float32",
    "pcm_source",
    "read_wav",
    "resample",
    "samples",
    "to_mono",
    "wav_source",
    "write_wav",
]
