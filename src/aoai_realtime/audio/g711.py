"""G.711 (``audio/pcmu`` = mu-law, ``audio/pcma`` = A-law, 8 kHz) and the Realtime API's wire formats.

The codec functions are table lookups built once with numpy from the ITU-T G.711 reference algorithm (the one
CPython's ``audioop`` implemented; ``audioop`` is deprecated and gone in Python 3.13). They are bit-exact with it:
the tests compare all 65,536 samples and all 256 codes.

:class:`WireAudio` converts between a session's wire format and pcm16 at 24 kHz (what ``audio/pcm`` carries, and
what the engine and the agents work in), keeping the resampling filter's state across chunks so that a stream
split into deltas sounds the same as one piece. ``audio/pcm`` passes through untouched.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from ..errors import ConfigError
from ..protocol.session import AUDIO_BYTES_PER_MS, ga_audio_format

__all__ = [
    "WireAudio",
    "alaw_decode",
    "alaw_encode",
    "bytes_per_ms",
    "ulaw_decode",
    "ulaw_encode",
]

WireFormat = Literal["audio/pcm", "audio/pcmu", "audio/pcma"]


def _segment(magnitude: npt.NDArray[np.int32], ends: list[int]) -> npt.NDArray[np.int32]:
    return np.searchsorted(np.array(ends), magnitude, side="left").astype(np.int32)


def _ulaw_tables() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int16]]:
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 2  # 14-bit
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(pcm), 8159) + (0x84 >> 2)
    seg = _segment(mag, [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
    code = np.where(seg >= 8, 0x7F, (seg << 4) | ((mag >> (np.minimum(seg, 7) + 1)) & 0xF)) ^ mask
    encode = np.roll(code.astype(np.uint8), -32768)  # index by the sample's uint16 bit pattern
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    decode = np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)
    return encode, decode


def _alaw_tables() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int16]]:
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 3  # 13-bit
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    mag = np.where(pcm >= 0, pcm, -pcm - 1)
    seg = _segment(mag, [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])
    quant = np.where(seg < 2, (mag >> 1) & 0xF, (mag >> np.clip(seg, 2, 7)) & 0xF)
    code = np.where(seg >= 8, 0x7F, (np.minimum(seg, 7) << 4) | quant) ^ mask
    encode = np.roll(code.astype(np.uint8), -32768)
    a = np.arange(256, dtype=np.int32) ^ 0x55
    seg_d = (a & 0x70) >> 4
    t = (a & 0x0F) << 4
    t = np.where(seg_d == 0, t + 8, np.where(seg_d == 1, t + 0x108, (t + 0x108) << np.maximum(seg_d - 1, 0)))
    decode = np.where(a & 0x80, t, -t).astype(np.int16)
    return encode, decode


_ULAW_ENCODE, _ULAW_DECODE = _ulaw_tables()
_ALAW_ENCODE, _ALAW_DECODE = _alaw_tables()


def ulaw_encode(pcm16: bytes) -> bytes:
    """pcm16 (little-endian) -> G.711 mu-law, one byte per sample."""
    out: bytes = _ULAW_ENCODE[np.frombuffer(pcm16, dtype="<u2")].tobytes()
    return out


def ulaw_decode(codes: bytes) -> bytes:
    """G.711 mu-law -> pcm16 (little-endian)."""
    return _ULAW_DECODE[np.frombuffer(codes, dtype=np.uint8)].astype("<i2").tobytes()


def alaw_encode(pcm16: bytes) -> bytes:
    """pcm16 (little-endian) -> G.711 A-law, one byte per sample."""
    out: bytes = _ALAW_ENCODE[np.frombuffer(pcm16, dtype="<u2")].tobytes()
    return out


def alaw_decode(codes: bytes) -> bytes:
    """G.711 A-law -> pcm16 (little-endian)."""
    return _ALAW_DECODE[np.frombuffer(codes, dtype=np.uint8)].astype("<i2").tobytes()


def wire_format(value: str) -> WireFormat:
    """The GA name of a format given by its GA (``audio/pcmu``) or preview (``g711_ulaw``) name."""
    name = ga_audio_format(value)
    if name is None:
        raise ConfigError(
            f"unknown audio format {value!r}: use audio/pcm, audio/pcmu or audio/pcma (preview: pcm16, g711_ulaw, "
            "g711_alaw)",
            field="format",
        )
    return name  # type: ignore[return-value]


def bytes_per_ms(fmt: str) -> int:
    """Bytes of one millisecond of audio in a wire format (48 for audio/pcm, 8 for G.711)."""
    return AUDIO_BYTES_PER_MS[wire_format(fmt)]


def _lowpass(taps: int, cutoff: float) -> npt.NDArray[np.float64]:
    """A windowed-sinc low-pass FIR (``cutoff`` as a fraction of the sample rate), unit gain at 0 Hz."""
    n = np.arange(taps) - (taps - 1) / 2
    h = np.sinc(2 * cutoff * n) * np.hamming(taps)
    return np.asarray(h / h.sum(), dtype=np.float64)


# 24 kHz <-> 8 kHz is an exact factor of three: one FIR at 24 kHz does both the anti-aliasing before dropping
# samples and the anti-imaging after inserting them. 96 taps, pass band to 3.5 kHz (the telephone band ends at
# 3.4), about 2 ms of delay. Why not soxr, which audio.pcm uses for whole buffers: streamed in 20 ms frames its
# HQ resampler holds the output back and releases about 60 ms every third frame, latency a voice agent cannot
# spend; here every frame converts at once, exactly three samples to one.
_TAPS = _lowpass(96, 3500 / 24_000)


class _Fir3:
    """Streaming resampling by three between 24 kHz and 8 kHz; the filter history carries across chunks."""

    def __init__(self, direction: Literal["up", "down"]) -> None:
        self.direction = direction
        self._history = np.zeros(len(_TAPS) - 1)
        self._phase = 0  # down: index in the next chunk of the next sample to keep

    def __call__(self, pcm: bytes) -> bytes:
        x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
        if not len(x):
            return b""
        if self.direction == "up":
            stuffed = np.zeros(3 * len(x))
            stuffed[::3] = 3.0 * x
            x = stuffed
        buffer = np.concatenate([self._history, x])
        y = np.convolve(buffer, _TAPS, mode="valid")  # one output per input sample, history first
        self._history = buffer[len(buffer) - len(self._history) :]
        if self.direction == "down":
            y, self._phase = y[self._phase :: 3], (self._phase - len(x)) % 3
        out: bytes = np.clip(np.rint(y), -32768, 32767).astype("<i2").tobytes()
        return out


class WireAudio:
    """Converts one direction of one stream between a wire format and pcm16 at 24 kHz.

    ``to_pcm(data)`` decodes wire bytes; ``from_pcm(pcm)`` encodes pcm16 24 kHz into wire bytes. Every chunk
    converts at once and exactly (three 24 kHz samples per G.711 byte); the resampling filter keeps its history
    across chunks, so use one object per stream: a stream cut into deltas sounds like one piece, about 2 ms
    late. ``audio/pcm`` passes through unchanged.
    """

    def __init__(self, fmt: str) -> None:
        self.format: WireFormat = wire_format(fmt)
        self.bytes_per_ms = bytes_per_ms(self.format)
        self._fir: _Fir3 | None = None

    @property
    def passthrough(self) -> bool:
        return self.format == "audio/pcm"

    def to_pcm(self, data: bytes) -> bytes:
        """Wire bytes -> pcm16 24 kHz."""
        if self.passthrough:
            return bytes(data)
        pcm8k = ulaw_decode(data) if self.format == "audio/pcmu" else alaw_decode(data)
        return self._resample("up", pcm8k)

    def from_pcm(self, pcm: bytes) -> bytes:
        """pcm16 24 kHz -> wire bytes."""
        if self.passthrough:
            return bytes(pcm)
        pcm8k = self._resample("down", pcm[: len(pcm) - len(pcm) % 2])
        return ulaw_encode(pcm8k) if self.format == "audio/pcmu" else alaw_encode(pcm8k)

    def _resample(self, direction: Literal["up", "down"], pcm: bytes) -> bytes:
        if self._fir is None:
            self._fir = _Fir3(direction)
        elif self._fir.direction != direction:
            raise ConfigError("a WireAudio object converts one direction only: use one per stream", field="format")
        return self._fir(pcm)
