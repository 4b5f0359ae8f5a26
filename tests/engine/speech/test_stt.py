from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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


def _threads() -> dict[int, int]:
    """This process's threads and their niceness."""
    out = {}
    for tid in os.listdir(f"/proc/{os.getpid()}/task"):
        try:
            stat = Path(f"/proc/{os.getpid()}/task/{tid}/stat").read_text()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        out[int(tid)] = int(stat.rsplit(")", 1)[1].split()[16])
    return out


def test_passes_that_yield_the_cpu_run_at_lower_priority_and_the_caller_keeps_its_own() -> None:
    """The engine runs a pass with ``yield_cpu`` while its speech synthesis is busy, so that a TTS piece a listener
    is waiting for gets the cores first: every thread CTranslate2 starts for the yielding instance runs at the
    raised niceness, the other instance's at the caller's, the caller keeps its own, and both transcribe."""
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    before = _threads()
    whisper = WhisperStt(yield_nice=3)
    whisper.load()
    clip = speak_flite(FIRST)
    normal = whisper.transcribe(clip)
    after_normal = _threads()
    yielding = whisper.transcribe(clip, yield_cpu=True)
    started = {tid: nice for tid, nice in _threads().items() if tid not in before}
    assert sorted(set(started.values())) == [mine, mine + 3]
    assert all(nice == mine + 3 for tid, nice in started.items() if tid not in after_normal)
    assert os.getpriority(os.PRIO_PROCESS, 0) == mine
    assert words(normal.text) == words(yielding.text) == words(FIRST)


def test_whisper_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="beam_size"):
        WhisperStt(beam_size=0)


def test_a_short_turn_is_transcribed_in_a_window_sized_to_it(
    whisper: WhisperStt, monkeypatch: pytest.MonkeyPatch
) -> None:
    whisper.load()

    def thirty_second_path(*args: object, **kwargs: object) -> None:
        raise AssertionError("a 3 s turn must not take faster-whisper's 30 s path")

    monkeypatch.setattr(whisper._model, "transcribe", thirty_second_path)
    pcm = concat(silence(300), speak_flite(FIRST), silence(300))
    result = whisper.transcribe(pcm, prompt="Quarterly review.")
    assert words(result.text) == words(FIRST)
    assert 0.0 <= result.segments[0].start_ms < result.segments[-1].end_ms <= len(pcm) / 48.0 + 1000.0


def test_a_turn_longer_than_one_window_takes_the_30_second_path(
    whisper: WhisperStt, monkeypatch: pytest.MonkeyPatch
) -> None:
    whisper.load()
    calls: list[int] = []
    original = whisper._model.transcribe

    def spy(audio: object, **kwargs: object) -> object:
        calls.append(1)
        return original(audio, **kwargs)

    monkeypatch.setattr(whisper._model, "transcribe", spy)
    # 29 s: too long for one window with its 2 s of trailing silence
    pcm = concat(speak_flite(FIRST), silence(29_000 - len(speak_flite(FIRST)) // 48))
    result = whisper.transcribe(pcm)
    assert calls == [1]
    assert words(result.text)[:4] == words(FIRST)[:4]


class _Tokens:
    """A stand-in for faster-whisper's tokenizer: ids >= 100 are timestamps (20 ms each), 99 ends the text."""

    timestamp_begin = 100
    eot = 99

    def decode(self, ids: list[int]) -> str:
        return " ".join(f"w{i}" for i in ids)


def test_window_output_is_cut_at_timestamps_and_refused_when_it_runs_on_or_starts_in_the_padding() -> None:
    from aoai_realtime.engine.speech.stt import _segments

    ts = _Tokens()
    closed = _segments([100, 1, 2, 150, 150, 3, 200], ts, duration_s=2.0, ended=True)
    assert closed is not None
    assert [(s.start_ms, s.end_ms, s.text) for s in closed] == [(0.0, 1000.0, "w1 w2"), (1000.0, 2000.0, "w3")]
    open_end = _segments([100, 1, 2, 125, 3], ts, duration_s=1.5, ended=True)  # end-of-text after words
    assert open_end is not None
    assert [(s.start_ms, s.end_ms, s.text) for s in open_end] == [(0.0, 500.0, "w1 w2"), (500.0, 1500.0, "w3")]
    assert _segments([100, 1, 2, 3, 1, 2, 3], ts, duration_s=2.0, ended=False) is None  # hit the length limit
    # A closing timestamp past the audio (tiny.en in a short window: a 1.5 s question closed at 7 s) ends with it.
    overshoot = _segments([100, 1, 100 + 350], ts, duration_s=2.0, ended=True)
    assert overshoot is not None and [(s.start_ms, s.end_ms, s.text) for s in overshoot] == [(0.0, 2000.0, "w1")]
    # Text that starts in the padding, more than a second after the audio, is made up: the 30 s path redoes it.
    assert _segments([100, 1, 150, 100 + 175, 3, 100 + 200], ts, duration_s=2.0, ended=True) is None
