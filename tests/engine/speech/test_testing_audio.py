"""The test-audio helpers of aoai_realtime.testing.audio."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from aoai_realtime.testing import audio
from aoai_realtime.testing.audio import (
    MissingTool,
    read_wav,
    silence,
    speak_espeak,
    speak_flite,
    tone,
    write_wav,
)


def test_silence_and_tone_have_the_asked_length_and_pitch() -> None:
    assert silence(250) == b"\x00\x00" * 6000
    x = np.frombuffer(tone(500, 1500.0, amplitude=0.5), dtype="<i2").astype(np.float64)
    assert len(x) == 12000
    spectrum = np.abs(np.fft.rfft(x))
    assert float(np.argmax(spectrum)) * 24000 / len(x) == pytest.approx(1500.0, abs=2.0)
    assert np.abs(x).max() == pytest.approx(0.5 * 32768, rel=0.01)


def test_wav_round_trip_and_stereo_downmix(tmp_path: Path) -> None:
    pcm = tone(100, 440.0)
    write_wav(tmp_path / "a.wav", pcm, 16000)
    assert read_wav(tmp_path / "a.wav") == (pcm, 16000)
    stereo = np.array([1000, 3000, -2, -4], dtype="<i2").tobytes()
    write_wav(tmp_path / "b.wav", stereo, 48000, channels=2)
    mono, rate = read_wav(tmp_path / "b.wav")
    assert (np.frombuffer(mono, dtype="<i2").tolist(), rate) == ([2000, -3], 48000)


@pytest.mark.integration  # runs flite and espeak-ng
def test_speech_helpers_make_24k_speech() -> None:
    for pcm in (speak_flite("Hello world."), speak_espeak("Hello world.")):
        x = np.frombuffer(pcm, dtype="<i2")
        assert 0.4 < len(x) / 24000 < 3.0
        assert np.abs(x).max() > 0.1 * 32768


def test_a_missing_program_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audio.shutil, "which", lambda name: None)
    with pytest.raises(MissingTool, match=re.escape("flite is not installed; run: apt-get install")):
        speak_flite("hello")


def test_unknown_flite_voice_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown flite voice"):
        speak_flite("hello", voice="http://example.com/voice.flitevox")
