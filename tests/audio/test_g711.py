"""G.711 against CPython's audioop (the ITU reference algorithm; deprecated, still shipped with 3.11)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from aoai_realtime.audio.g711 import (
    WireAudio,
    alaw_decode,
    alaw_encode,
    bytes_per_ms,
    ulaw_decode,
    ulaw_encode,
)
from aoai_realtime.errors import ConfigError

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

ALL_SAMPLES = np.arange(-32768, 32768, dtype="<i2").tobytes()
ALL_CODES = bytes(range(256))


def test_mu_law_is_bit_exact_with_the_reference() -> None:
    assert ulaw_encode(ALL_SAMPLES) == audioop.lin2ulaw(ALL_SAMPLES, 2)
    assert ulaw_decode(ALL_CODES) == audioop.ulaw2lin(ALL_CODES, 2)


def test_a_law_is_bit_exact_with_the_reference() -> None:
    assert alaw_encode(ALL_SAMPLES) == audioop.lin2alaw(ALL_SAMPLES, 2)
    assert alaw_decode(ALL_CODES) == audioop.alaw2lin(ALL_CODES, 2)


def tone(ms: int, rate: int = 24_000, hz: float = 440.0) -> bytes:
    t = np.arange(rate * ms // 1000) / rate
    return (np.sin(2 * math.pi * hz * t) * 12_000).astype("<i2").tobytes()


@pytest.mark.parametrize("fmt", ["audio/pcmu", "audio/pcma", "g711_ulaw", "g711_alaw"])
def test_wire_round_trip_keeps_length_and_sound(fmt: str) -> None:
    pcm = tone(1000)
    down, up = WireAudio(fmt), WireAudio(fmt)
    assert down.bytes_per_ms == 8
    # Streamed in 20 ms frames, as a microphone sends them: every frame converts at once, one byte per 8 kHz
    # sample (a resampler that buffers would add its buffer to the agent's latency).
    pieces = [down.from_pcm(pcm[i : i + 960]) for i in range(0, len(pcm), 960)]
    assert [len(p) for p in pieces] == [160] * 50
    wire = b"".join(pieces)
    assert wire == WireAudio(fmt).from_pcm(pcm)  # the same as converting it in one piece
    back = b"".join(up.to_pcm(wire[i : i + 160]) for i in range(0, len(wire), 160))
    assert len(back) == len(pcm)
    a = np.frombuffer(pcm, "<i2").astype(float)[2000:-2000]
    b = np.frombuffer(back, "<i2").astype(float)[2000:-2000]
    # 440 Hz survives 8 kHz G.711: a high signal-to-noise ratio once the filter delay is aligned.
    lag = int(np.argmax(np.correlate(b[:2000], a[:2000], mode="full"))) - 1999
    aligned = np.roll(b, -lag)[100:-100]
    noise = aligned - a[100:-100]
    assert 10 * math.log10(np.mean(a**2) / np.mean(noise**2)) > 25


def test_pcm_passes_through_and_formats_are_checked() -> None:
    w = WireAudio("audio/pcm")
    assert w.passthrough and w.bytes_per_ms == 48 and w.from_pcm(b"\x01\x02") == b"\x01\x02"
    odd = WireAudio("audio/pcmu")
    assert len(odd.from_pcm(b"\x00\x00" * 4)) + len(odd.from_pcm(b"\x00\x00" * 5)) == 3  # phase kept across chunks
    assert bytes_per_ms("pcm16") == 48 and bytes_per_ms("audio/pcmu") == 8
    with pytest.raises(ConfigError, match="unknown audio format 'audio/opus'"):
        WireAudio("audio/opus")
    both = WireAudio("audio/pcmu")
    both.to_pcm(b"\xff" * 80)
    with pytest.raises(ConfigError, match="one direction"):
        both.from_pcm(b"\x00\x00" * 240)
