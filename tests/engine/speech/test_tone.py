from __future__ import annotations

import itertools

import numpy as np
import pytest

from aoai_realtime.engine.speech import (
    EnergyVad,
    SpeechToText,
    StreamResampler,
    TextToSpeech,
    ToneStt,
    ToneTts,
    WordTiming,
    resample_pcm16,
    speech_segments,
)
from aoai_realtime.engine.speech.resample import mono24k_to_stereo48k
from aoai_realtime.engine.speech.tone import ALPHABET
from aoai_realtime.testing.audio import concat, silence, tone

TEXT = "Hello, Bob. Are you ready? The call is at 3:30 (sharp)!"


def samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2")


def test_timings_match_the_audio_exactly() -> None:
    tts = ToneTts()
    pcm, timings = tts.synthesize_with_timings(TEXT)
    x = samples(pcm)
    assert [t.word for t in timings] == TEXT.split()
    assert len(x) / 24 == timings[-1].end_ms  # the audio ends with the last word
    previous_end = 0.0
    for t in timings:
        assert t.end_ms - t.start_ms == pytest.approx(len(t.word) * tts.char_ms)
        a, b = round(t.start_ms * 24), round(t.end_ms * 24)
        assert not np.any(x[round(previous_end * 24) : a])  # silence between words
        # sound all through the word: every 5 ms of it reaches a tenth of full scale
        peaks = np.abs(x[a:b].astype(np.int32)).reshape(-1, 120).max(axis=1)
        assert peaks.min() > 3276
        gap = t.start_ms - previous_end
        if previous_end:
            assert gap in (tts.word_gap_ms, tts.sentence_gap_ms)
        previous_end = t.end_ms
    gaps = [b.start_ms - a.end_ms for a, b in itertools.pairwise(timings)]
    assert gaps.count(tts.sentence_gap_ms) == 2  # three sentences


def test_chunks_are_sentences_and_add_up_to_the_whole() -> None:
    tts = ToneTts()
    assert isinstance(tts, TextToSpeech)
    chunks = list(tts.synthesize(TEXT))
    assert len(chunks) == 3
    pcm, timings = tts.synthesize_with_timings(TEXT)
    assert b"".join(chunks) == pcm
    sentence_timings = [t for _, ts in tts.synthesize_sentences(TEXT) for t in ts]
    assert sentence_timings == timings


def test_unencodable_text_is_folded_or_dropped() -> None:
    tts = ToneTts()
    _, timings = tts.synthesize_with_timings("Zürich — café ☕ ok")
    assert [t.word for t in timings] == ["Zurich", "cafe", "ok"]
    assert list(tts.synthesize("  ☕ ")) == []
    assert timings[0] == WordTiming("Zurich", 0.0, 180.0)


def test_tone_stt_reads_tone_speech_back() -> None:
    stt = ToneStt()
    assert isinstance(stt, SpeechToText)
    pcm, timings = ToneTts().synthesize_with_timings(TEXT)
    result = stt.transcribe(concat(silence(250), pcm, silence(400)))
    assert result.text == TEXT
    assert [s.text for s in result.segments] == ["Hello, Bob.", "Are you ready?", "The call is at 3:30 (sharp)!"]
    assert result.segments[0].start_ms == pytest.approx(250.0, abs=5.0)
    assert result.segments[-1].end_ms == pytest.approx(250.0 + timings[-1].end_ms, abs=5.0)


def test_tone_stt_survives_resampling_chunking_and_noise() -> None:
    pcm, _ = ToneTts().synthesize_with_timings(ALPHABET)  # every symbol once
    through_16k = resample_pcm16(resample_pcm16(pcm, 24000, 16000), 16000, 24000)
    r = StreamResampler(48000, 24000, channels=2)
    stereo = mono24k_to_stereo48k(pcm)
    through_webrtc_frames = b"".join(r.push_pcm16(stereo[i : i + 3840]) for i in range(0, len(stereo), 3840))
    through_webrtc_frames += r.flush_pcm16()
    noise = np.random.default_rng(3).normal(0, 0.01 * 32768, len(pcm) // 2)
    noisy = np.clip(samples(pcm) + noise, -32768, 32767).astype("<i2").tobytes()
    stt = ToneStt()
    for audio in (through_16k, through_webrtc_frames, noisy):
        assert stt.transcribe(audio).text == ALPHABET


def test_tone_stt_hears_nothing_in_silence_or_plain_tones() -> None:
    stt = ToneStt()
    assert stt.transcribe(b"").text == ""
    assert stt.transcribe(silence(500) + b"\x00").text == ""
    assert stt.transcribe(tone(200, 123.0)).text == ""  # not one of the alphabet's frequencies


def test_energy_vad_sees_tone_speech_where_the_timings_say() -> None:
    tts = ToneTts()
    pcm, timings = tts.synthesize_with_timings("One two. Three four five.")
    vad = EnergyVad()
    spans = speech_segments(vad.process(silence(600) + pcm + silence(600)), vad.frame_ms, min_silence_ms=250)
    assert len(spans) == 2
    assert spans[0][0] == pytest.approx(600, abs=30)
    assert spans[1][1] == pytest.approx(600 + timings[-1].end_ms, abs=30)


def test_tone_tts_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="char_ms"):
        ToneTts(char_ms=10)
    with pytest.raises(ValueError, match="word_gap_ms"):
        ToneTts(word_gap_ms=0.01)
    with pytest.raises(ValueError, match="at least 40"):
        ToneTts(word_gap_ms=20)
    with pytest.raises(ValueError, match="twice"):
        ToneTts(word_gap_ms=100, sentence_gap_ms=150)
    with pytest.raises(ValueError, match="amplitude"):
        ToneTts(amplitude=1.5)
