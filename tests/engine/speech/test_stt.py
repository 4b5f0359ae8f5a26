from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from aoai_realtime.engine.speech import SpeechToText, WhisperStt
from aoai_realtime.testing.audio import concat, silence, speak_flite

from .conftest import FIRST, SECOND


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


pytestmark = pytest.mark.integration  # flite runs as a process; the real Whisper model is loaded


def test_whisper_transcribes_flite_speech_exactly(whisper: WhisperStt) -> None:
    assert isinstance(whisper, SpeechToText)
    pcm = concat(silence(300), speak_flite(FIRST), silence(300))
    result = whisper.transcribe(pcm)
    assert words(result.text) == words(FIRST)
    assert result.language == "en"
    assert result.segments
    assert 0.0 <= result.segments[0].start_ms < result.segments[-1].end_ms <= len(pcm) / 48.0 + 1.0


def test_whisper_is_english_only_whatever_the_hint(whisper: WhisperStt) -> None:
    result = whisper.transcribe(speak_flite(SECOND), language="fr", prompt="Weather report.")
    assert words(result.text) == words(SECOND)
    assert result.language == "en"


def test_whisper_returns_nothing_for_too_little_audio(whisper: WhisperStt) -> None:
    assert whisper.transcribe(b"").text == ""
    assert whisper.transcribe(silence(50) + b"\x01").segments == []


def test_whisper_can_be_shared_between_threads(whisper: WhisperStt) -> None:
    clips = [speak_flite(FIRST), speak_flite(SECOND)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(whisper.transcribe, clips))
    assert [words(r.text) for r in results] == [words(FIRST), words(SECOND)]


def test_whisper_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="beam_size"):
        WhisperStt(beam_size=0)
