from __future__ import annotations

import re

import numpy as np
import pytest

from aoai_realtime.engine.speech import PiperTts, TextToSpeech, WhisperStt, load_speech
from aoai_realtime.testing.audio import speak_piper


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


pytestmark = pytest.mark.integration  # loads the real piper voice and Whisper model

TEXT = "Good morning. The meeting starts in the blue room."


def test_piper_speaks_sentence_by_sentence_and_whisper_understands_it(piper: PiperTts, whisper: WhisperStt) -> None:
    assert isinstance(piper, TextToSpeech)
    assert piper.sample_rate == 24000
    chunks = list(piper.synthesize(TEXT))
    assert len(chunks) == 2  # one per sentence
    assert all(len(c) % 2 == 0 and len(c) > 0 for c in chunks)
    pcm = b"".join(chunks)
    seconds = len(pcm) / 48000
    assert 1.5 < seconds < 8.0
    level = np.abs(np.frombuffer(pcm, dtype="<i2")).max()
    assert 0.5 * 32768 < level < 32768  # peak-normalised with headroom (volume 0.8)
    assert words(whisper.transcribe(pcm).text) == words(TEXT)


def test_piper_says_nothing_for_blank_text(piper: PiperTts) -> None:
    assert list(piper.synthesize("   ")) == []


def test_speak_piper_uses_the_shared_voice(piper: PiperTts, whisper: WhisperStt) -> None:
    pcm = speak_piper("Open the window.")
    assert load_speech("full", preload=False).tts is piper  # the one speak_piper uses: no second load
    assert words(whisper.transcribe(pcm).text) == ["open", "the", "window"]
