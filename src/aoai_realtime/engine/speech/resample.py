"""Sample formats and rates: pcm16 bytes <-> float32, and resampling between the rates the engine meets.

The Realtime API speaks pcm16 (little-endian signed 16-bit), mono, 24 kHz. The models want other things:
silero and webrtc VAD and Whisper take 16 kHz, piper makes 22,050 Hz, and aiortc hands decoded Opus over as
48 kHz stereo, interleaved s16. Everything here is numpy plus soxr (libsoxr, "HQ" quality).

Use the one-shot functions (:func:`resample_pcm16`, :func:`stereo48k_to_mono24k`) on whole buffers, and a
:class:`StreamResampler` on audio that arrives in pieces: it keeps the filter state between pieces, so chunk
boundaries make no clicks and the output does not depend on how the input was cut (the concatenated output is
identical, sample for sample, whatever the chunk sizes). A stream holds back a few milliseconds of output
(the filter delay, :attr:`StreamResampler.pending_ms`) until more input or :meth:`StreamResampler.flush`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "Float32Array",
    "StreamResampler",
    "float32_to_pcm16",
    "mono24k_to_stereo48k",
    "pcm16_duration_ms",
    "pcm16_to_float32",
    "resample",
    "resample_pcm16",
    "stereo48k_to_mono24k",
    "stereo_to_mono",
]

Float32Array = npt.NDArray[np.float32]

_SCALE = 32768.0


def pcm16_to_float32(pcm: bytes | bytearray | memoryview) -> Float32Array:
    """Decode little-endian pcm16 into float32 samples in [-1, 1). ``pcm`` must hold whole samples."""
    if len(pcm) % 2:
        raise ValueError(f"pcm16 needs an even number of bytes, got {len(pcm)}; keep the odd byte for later")
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / np.float32(_SCALE)


def float32_to_pcm16(samples: npt.ArrayLike) -> bytes:
    """Encode float samples (nominally in [-1, 1]) as little-endian pcm16, clipping anything outside."""
    scaled = np.clip(np.rint(np.asarray(samples, dtype=np.float64) * _SCALE), -32768, 32767)
    return scaled.astype("<i2").tobytes()


def pcm16_duration_ms(pcm: bytes | bytearray | memoryview, rate: int = 24000, channels: int = 1) -> float:
    """Duration of a pcm16 buffer in milliseconds."""
    return len(pcm) / (2 * channels) / rate * 1000.0


def resample(samples: Float32Array, in_rate: int, out_rate: int) -> Float32Array:
    """Resample a whole mono float32 signal. The output has ``round(len * out_rate / in_rate)`` samples."""
    if in_rate == out_rate:
        return np.asarray(samples, dtype=np.float32)
    import soxr

    out: Float32Array = soxr.resample(np.asarray(samples, dtype=np.float32), in_rate, out_rate, quality="HQ")
    return out


def resample_pcm16(pcm: bytes, in_rate: int, out_rate: int) -> bytes:
    """Resample a whole mono pcm16 buffer."""
    if in_rate == out_rate:
        return bytes(pcm)
    return float32_to_pcm16(resample(pcm16_to_float32(pcm), in_rate, out_rate))


def stereo_to_mono(pcm: bytes) -> bytes:
    """Average the two channels of interleaved stereo pcm16 (L R L R ...) into mono pcm16."""
    if len(pcm) % 4:
        raise ValueError(f"interleaved stereo pcm16 needs a multiple of 4 bytes, got {len(pcm)}")
    frames = np.frombuffer(pcm, dtype="<i2").reshape(-1, 2).astype(np.int32)
    # Floor division of the sum keeps it exact and within int16.
    return ((frames[:, 0] + frames[:, 1]) // 2).astype("<i2").tobytes()


def stereo48k_to_mono24k(pcm: bytes) -> bytes:
    """Turn a whole buffer of 48 kHz interleaved stereo pcm16 (what aiortc decodes Opus into) into 24 kHz mono.

    For a stream of frames use ``StreamResampler(48000, 24000, channels=2)``, which downmixes too.
    """
    return resample_pcm16(stereo_to_mono(pcm), 48000, 24000)


def mono24k_to_stereo48k(pcm: bytes) -> bytes:
    """Turn a whole buffer of 24 kHz mono pcm16 into 48 kHz interleaved stereo pcm16 (both channels equal)."""
    up = np.frombuffer(resample_pcm16(pcm, 24000, 48000), dtype="<i2")
    return np.repeat(up, 2).astype("<i2").tobytes()


class StreamResampler:
    """A resampler for audio that arrives in pieces of any size (pcm16 bytes or float32 arrays).

    ``channels=2`` takes interleaved stereo input and downmixes it to mono before resampling; the output is
    always mono. Feed pieces in order with :meth:`push` / :meth:`push_pcm16`; call :meth:`flush` once at the
    end of a stream to get the held-back tail, and :meth:`reset` before an unrelated stream. Odd bytes of a
    pcm16 piece that does not end on a sample boundary are kept for the next piece.

    Not thread-safe: one stream, one owner.
    """

    def __init__(self, in_rate: int, out_rate: int, *, channels: int = 1) -> None:
        if channels not in (1, 2):
            raise ValueError(f"channels must be 1 or 2, got {channels}")
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"rates must be positive, got {in_rate} -> {out_rate}")
        self.in_rate = in_rate
        self.out_rate = out_rate
        self.channels = channels
        self._carry = b""
        self._stream: Any = None
        if in_rate != out_rate:
            import soxr

            self._stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality="HQ")

    @property
    def pending_ms(self) -> float:
        """Output held back inside the filter, in milliseconds of output audio."""
        if self._stream is None:
            return 0.0
        return float(self._stream.delay()) / self.out_rate * 1000.0

    def push(self, samples: Float32Array) -> Float32Array:
        """Resample the next piece of float32 input (interleaved if stereo); returns what is ready so far."""
        x = np.asarray(samples, dtype=np.float32)
        if self.channels == 2:
            if len(x) % 2:
                raise ValueError("interleaved stereo input needs an even number of samples")
            x = x.reshape(-1, 2).mean(axis=1, dtype=np.float32)
        if self._stream is None:
            return x
        out: Float32Array = self._stream.resample_chunk(x)
        return out

    def push_pcm16(self, pcm: bytes | bytearray | memoryview) -> bytes:
        """Resample the next piece of pcm16 input; returns the pcm16 output ready so far."""
        data = self._carry + bytes(pcm)
        frame = 2 * self.channels
        whole = len(data) - len(data) % frame
        self._carry = data[whole:]
        if not whole:
            return b""
        return float32_to_pcm16(self.push(pcm16_to_float32(data[:whole])))

    def flush(self) -> Float32Array:
        """End the stream: return the held-back tail. Call :meth:`reset` before pushing a new stream."""
        self._carry = b""
        if self._stream is None:
            return np.zeros(0, dtype=np.float32)
        out: Float32Array = self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        return out

    def flush_pcm16(self) -> bytes:
        """:meth:`flush`, as pcm16."""
        return float32_to_pcm16(self.flush())

    def reset(self) -> None:
        """Forget all state, ready for an unrelated stream with the same rates."""
        self._carry = b""
        if self._stream is not None:
            self._stream.clear()
