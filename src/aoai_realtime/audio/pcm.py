"""pcm16 helpers: conversions, durations, framing and resampling.

The Realtime API speaks pcm16 little-endian mono at 24 kHz (reference 3.3). Devices often want 44.1 or 48 kHz,
stereo, or float32; these helpers convert at the edges. Resampling uses ``soxr`` (high quality) when it is
installed and a linear interpolation otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

from ..errors import ConfigError

__all__ = [
    "BYTES_PER_SAMPLE",
    "SAMPLE_RATE",
    "duration_ms",
    "float32_to_pcm16",
    "frames",
    "pcm16_to_float32",
    "resample",
    "samples",
    "to_mono",
]

SAMPLE_RATE = 24_000
BYTES_PER_SAMPLE = 2


def samples(pcm: bytes | bytearray | memoryview) -> int:
    """Number of mono pcm16 samples in ``pcm``."""
    return len(pcm) // BYTES_PER_SAMPLE


def duration_ms(pcm: bytes | bytearray | memoryview, rate: int = SAMPLE_RATE) -> float:
    return samples(pcm) * 1000.0 / rate


def pcm16_to_float32(pcm: bytes | bytearray | memoryview) -> npt.NDArray[np.float32]:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def float32_to_pcm16(x: npt.ArrayLike) -> bytes:
    arr = np.clip(np.asarray(x, dtype=np.float32), -1.0, 1.0)
    return (arr * 32767.0).round().astype("<i2").tobytes()


def to_mono(pcm: bytes, channels: int) -> bytes:
    """Average interleaved pcm16 channels into one."""
    if channels == 1:
        return pcm
    if channels < 1:
        raise ConfigError(f"channels must be >= 1, got {channels}", field="channels")
    arr = np.frombuffer(pcm, dtype="<i2")
    arr = arr[: len(arr) - len(arr) % channels].reshape(-1, channels).astype(np.int32)
    return bytes(arr.mean(axis=1).round().astype("<i2").tobytes())


def resample(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """Resample mono pcm16 from ``from_rate`` to ``to_rate`` Hz."""
    if from_rate <= 0 or to_rate <= 0:
        raise ConfigError(f"sample rates must be positive, got {from_rate} -> {to_rate}", field="rate")
    if from_rate == to_rate or not pcm:
        return bytes(pcm)
    x = pcm16_to_float32(pcm)
    try:
        import soxr
    except ImportError:  # optional: fall back to linear interpolation
        n_out = round(len(x) * to_rate / from_rate)
        t_out = np.arange(n_out) * (from_rate / to_rate)
        y = np.interp(t_out, np.arange(len(x)), x)
    else:
        y = soxr.resample(x, from_rate, to_rate)
    return float32_to_pcm16(y)


def frames(pcm: bytes, frame_ms: float = 20.0, rate: int = SAMPLE_RATE) -> Iterator[bytes]:
    """Split ``pcm`` into frames of ``frame_ms`` (the last one may be shorter)."""
    size = int(rate * frame_ms / 1000) * BYTES_PER_SAMPLE
    if size <= 0:
        raise ConfigError(f"frame_ms too small: {frame_ms}", field="frame_ms")
    for start in range(0, len(pcm), size):
        yield pcm[start : start + size]
