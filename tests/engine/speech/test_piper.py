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
    chunks = list(piper.synthesize(TEXT, steady=True))  # the same audio every run: a verdict that can be reproduced
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


def test_steady_speech_is_the_same_every_time_and_the_voice_otherwise_varies(piper: PiperTts) -> None:
    steady = [b"".join(piper.synthesize("Open the window.", steady=True)) for _ in range(2)]
    assert steady[0] == steady[1] == speak_piper("Open the window.")
    varied = [b"".join(piper.synthesize("Open the window.")) for _ in range(2)]
    assert varied[0] != varied[1]  # piper's random noise: what a caller hears from the engine


def test_piper_says_where_each_word_starts(whisper: WhisperStt) -> None:
    # The model's own phoneme durations, mapped to words; espeak runs "from the" together (one phoneme word), and
    # each still gets its own start; "-" has no sound and goes with the word after it. Without piper's random
    # noise, so the audio is the same on every run, and the same as synthesize's.
    text = "The weather is cold and clear, with a light wind from the north. Bring a coat - and gloves."
    piper = PiperTts(noise_scale=0.0, noise_w_scale=0.0)
    assert piper.times_words
    items = list(piper.synthesize_timed(text))
    assert [pcm for pcm, _ in items] == list(piper.synthesize(text))  # one chunk per sentence, the same audio
    starts: list[float] = []
    offset = 0.0
    for pcm, timed in items:
        assert [w for w, _ in timed] == list(range(len(starts), len(starts) + len(timed)))
        assert all(0.0 <= ms < len(pcm) / 48.0 for _, ms in timed)
        starts.extend(offset + ms for _, ms in timed)
        offset += len(pcm) / 48.0
    assert len(starts) == len(text.split()) and starts == sorted(starts)
    dash = text.split().index("-")
    assert starts[dash] == starts[dash + 1] and len(set(starts)) == len(starts) - 1
    # the audio before a word's start holds exactly the words before it
    pcm = b"".join(p for p, _ in items)
    said = words(text)
    for index in (5, 8, 10):  # cut where "clear,", "light" and "from" start (whisper may guess a sound's start)
        heard = words(whisper.transcribe(pcm[: round(starts[index] * 48) & ~1]).text)
        assert heard[:index] == said[:index] and said[index] not in heard[index:], (index, heard)


def test_piper_without_word_timings_loads_the_model_as_shipped() -> None:
    piper = PiperTts(noise_scale=0.0, noise_w_scale=0.0, word_timings=False)
    items = list(piper.synthesize_timed("Open the window."))
    assert len(items) == 1 and items[0][1] == []  # the same audio, no word starts: the engine sends text first
    assert items[0][0] == b"".join(piper.synthesize("Open the window."))
