from __future__ import annotations

import asyncio
import math
from pathlib import Path

import numpy as np
import pytest

from aoai_realtime.audio import (
    AudioDeviceUnavailable,
    AudioSink,
    Microphone,
    PacedPlayer,
    Speaker,
    duration_ms,
    float32_to_pcm16,
    frames,
    pcm16_to_float32,
    pcm_source,
    read_wav,
    resample,
    to_mono,
    write_wav,
)
from aoai_realtime.errors import ConfigError
from aoai_realtime.testing.virtual_time import run_virtual


def sine(ms: float, rate: int = 24000, freq: float = 440.0) -> bytes:
    t = np.arange(int(rate * ms / 1000)) / rate
    return float32_to_pcm16(0.5 * np.sin(2 * math.pi * freq * t))


def test_conversions_and_framing() -> None:
    pcm = sine(100)
    assert duration_ms(pcm) == 100.0
    back = float32_to_pcm16(pcm16_to_float32(pcm))
    assert np.max(np.abs(np.frombuffer(back, "<i2").astype(int) - np.frombuffer(pcm, "<i2").astype(int))) <= 1
    parts = list(frames(pcm, 20))
    assert [len(p) for p in parts] == [960] * 5 and b"".join(parts) == pcm
    stereo = np.repeat(np.frombuffer(pcm, "<i2"), 2).astype("<i2").tobytes()
    assert to_mono(stereo, 2) == pcm
    with pytest.raises(ConfigError):
        resample(pcm, 0, 24000)


def test_resample_keeps_duration_and_pitch() -> None:
    pcm48 = sine(200, 48000, 1000.0)
    pcm24 = resample(pcm48, 48000, 24000)
    assert abs(duration_ms(pcm24) - 200.0) < 1.0
    spectrum = np.abs(np.fft.rfft(pcm16_to_float32(pcm24)))
    peak_hz = np.argmax(spectrum) * 24000 / len(pcm16_to_float32(pcm24))
    assert abs(peak_hz - 1000.0) < 10.0


def test_wav_round_trip_converts_to_the_wire_format(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    write_wav(path, sine(300, 16000), rate=16000)
    pcm = read_wav(path)
    assert abs(duration_ms(pcm) - 300.0) < 1.0


def test_paced_player_plays_in_real_time_reports_progress_and_cuts_mid_frame() -> None:
    async def scenario() -> tuple[list[tuple[float, int]], PacedPlayer, float]:
        loop = asyncio.get_running_loop()
        player = PacedPlayer(clock=loop.time)
        assert isinstance(player, AudioSink)
        reports: list[tuple[float, int]] = []
        player.set_listener(lambda n: reports.append((loop.time(), n)))
        task = asyncio.create_task(player.run())
        start = loop.time()
        player.write(sine(100))
        await asyncio.sleep(0.05)
        player.clear()  # 10 ms into the third frame
        player.write(sine(40))  # a new answer after the cut
        await asyncio.sleep(0.2)
        task.cancel()
        return reports, player, start

    reports, player, start = run_virtual(scenario())
    # two whole frames, then the cut frame is not reported, then the new audio's two frames
    assert [n for _, n in reports] == [480, 480, 480, 480]
    assert [round(t - start, 3) for t, _ in reports[:2]] == [0.02, 0.04]
    assert player.clears == [1200]  # 50 ms played exactly when cleared
    assert player.played_samples == 1200 + 960
    assert len(player.played) == 2 * (1200 + 960)  # what was heard, in order


def test_pcm_source_paces_like_a_microphone() -> None:
    async def scenario() -> list[float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        return [loop.time() - start async for _ in pcm_source(sine(100), frame_ms=20)]

    times = run_virtual(scenario())
    assert [round(t, 3) for t in times] == [0.02, 0.04, 0.06, 0.08, 0.1]


def test_device_adapter_without_sounddevice_says_what_to_install() -> None:
    try:
        import sounddevice  # noqa: F401
    except (ImportError, OSError):
        pass
    else:
        pytest.skip("sounddevice is installed here")
    with pytest.raises(AudioDeviceUnavailable, match="pip install sounddevice"):
        Speaker()
    with pytest.raises(AudioDeviceUnavailable, match="PacedPlayer"):
        Microphone()
