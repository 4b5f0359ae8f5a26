from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aoai_realtime.engine.speech.resample import (
    StreamResampler,
    float32_to_pcm16,
    mono24k_to_stereo48k,
    pcm16_duration_ms,
    pcm16_to_float32,
    resample,
    resample_pcm16,
    stereo48k_to_mono24k,
    stereo_to_mono,
)


def sine(freq: float, rate: int, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)), n=1 << 18))
    return float(np.argmax(spectrum)) * rate / (1 << 18)


def test_pcm16_float32_round_trip_is_exact() -> None:
    pcm = np.array([-32768, -1, 0, 1, 12345, 32767], dtype="<i2").tobytes()
    assert float32_to_pcm16(pcm16_to_float32(pcm)) == pcm


def test_float32_to_pcm16_clips() -> None:
    out = np.frombuffer(float32_to_pcm16(np.array([-2.0, 2.0], dtype=np.float32)), dtype="<i2")
    assert out.tolist() == [-32768, 32767]


def test_odd_byte_count_is_refused() -> None:
    with pytest.raises(ValueError, match="even number of bytes"):
        pcm16_to_float32(b"\x00\x00\x00")


@pytest.mark.parametrize(("in_rate", "out_rate"), [(24000, 16000), (16000, 24000), (22050, 24000), (48000, 24000)])
def test_resample_keeps_duration_and_frequency(in_rate: int, out_rate: int) -> None:
    x = sine(1000.0, in_rate)
    y = resample(x, in_rate, out_rate)
    assert abs(len(y) - out_rate) <= 1  # one second in, one second out
    assert dominant_hz(y, out_rate) == pytest.approx(1000.0, abs=2.0)


def test_resample_pcm16_keeps_duration() -> None:
    pcm = float32_to_pcm16(sine(440.0, 22050, seconds=0.5))
    out = resample_pcm16(pcm, 22050, 24000)
    assert pcm16_duration_ms(out) == pytest.approx(500.0, abs=0.1)


def test_stereo48k_to_mono24k_averages_channels_and_halves_the_rate() -> None:
    left = sine(700.0, 48000, amplitude=0.6)
    right = np.zeros_like(left)
    stereo = float32_to_pcm16(np.column_stack((left, right)).ravel())
    mono = pcm16_to_float32(stereo48k_to_mono24k(stereo))
    assert abs(len(mono) - 24000) <= 1
    assert dominant_hz(mono, 24000) == pytest.approx(700.0, abs=2.0)
    # half of the left channel's amplitude survives the average
    assert float(np.max(np.abs(mono[1000:-1000]))) == pytest.approx(0.3, abs=0.01)


def test_stereo_to_mono_is_exact_average() -> None:
    stereo = np.array([100, 300, -5, 6, 32767, 32767], dtype="<i2").tobytes()
    assert np.frombuffer(stereo_to_mono(stereo), dtype="<i2").tolist() == [200, 0, 32767]
    with pytest.raises(ValueError, match="multiple of 4"):
        stereo_to_mono(b"\x00\x00")


def test_mono24k_to_stereo48k_duplicates_channels() -> None:
    out = np.frombuffer(mono24k_to_stereo48k(float32_to_pcm16(sine(300.0, 24000))), dtype="<i2").reshape(-1, 2)
    assert abs(len(out) - 48000) <= 1
    assert np.array_equal(out[:, 0], out[:, 1])
    assert dominant_hz(out[:, 0].astype(np.float32), 48000) == pytest.approx(300.0, abs=2.0)


def _stream(pcm: bytes, cuts: list[int], in_rate: int, out_rate: int, channels: int = 1) -> bytes:
    r = StreamResampler(in_rate, out_rate, channels=channels)
    out, start = [], 0
    for cut in [*sorted(cuts), len(pcm)]:
        out.append(r.push_pcm16(pcm[start:cut]))
        start = cut
    out.append(r.flush_pcm16())
    return b"".join(out)


@settings(max_examples=25)
@given(cuts=st.lists(st.integers(min_value=0, max_value=9600), max_size=12))
def test_stream_output_does_not_depend_on_chunking(cuts: list[int]) -> None:
    pcm = float32_to_pcm16(sine(440.0, 24000, seconds=0.2) + sine(3000.0, 24000, seconds=0.2, amplitude=0.2))
    assert _stream(pcm, cuts, 24000, 16000) == _stream(pcm, [], 24000, 16000)


def test_stream_of_stereo_frames_matches_one_shot_duration() -> None:
    stereo = float32_to_pcm16(np.repeat(sine(440.0, 48000, seconds=0.5), 2))
    frames = [stereo[i : i + 3840] for i in range(0, len(stereo), 3840)]  # 20 ms aiortc frames
    r = StreamResampler(48000, 24000, channels=2)
    streamed = b"".join(r.push_pcm16(f) for f in frames) + r.flush_pcm16()
    assert len(streamed) == len(stereo48k_to_mono24k(stereo))
    assert dominant_hz(pcm16_to_float32(streamed), 24000) == pytest.approx(440.0, abs=2.0)


def test_stream_holds_back_only_the_filter_delay_and_reset_forgets() -> None:
    r = StreamResampler(24000, 16000)
    pcm = float32_to_pcm16(sine(440.0, 24000, seconds=0.5))
    first = r.push_pcm16(pcm)
    assert 0 < r.pending_ms < 50
    assert len(first) + len(r.flush_pcm16()) == len(resample_pcm16(pcm, 24000, 16000))
    r.reset()
    assert r.push_pcm16(pcm) == first


def test_same_rate_stream_passes_through() -> None:
    r = StreamResampler(24000, 24000)
    assert r.push_pcm16(b"\x01\x00\x02") == b"\x01\x00"
    assert r.push_pcm16(b"\x00") == b"\x02\x00"
    assert r.pending_ms == 0.0
