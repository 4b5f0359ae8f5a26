"""Fixtures shared by the speech tests. Models load once per test session (each load costs ~0.5-1 s)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from aoai_realtime.engine.speech import PiperTts, WhisperStt, load_speech
from aoai_realtime.testing.audio import concat, silence, speak_flite

FIRST = "Please remember that the quarterly review moves to Thursday."
SECOND = "The weather is nice and sunny today."


@dataclass(frozen=True)
class Utterances:
    """speech / silence / speech, with the true speech spans in ms (from the clips' own sample levels)."""

    pcm: bytes
    spans: list[tuple[float, float]]


def _voiced_span(pcm: bytes) -> tuple[float, float]:
    x = np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.float64)) / 32768.0
    loud = np.flatnonzero(x > 0.02)
    return loud[0] / 24.0, (loud[-1] + 1) / 24.0


@pytest.fixture(scope="session")
def utterances() -> Utterances:
    first, second = speak_flite(FIRST), speak_flite(SECOND)
    lead, middle = silence(1000), silence(1500)
    a0, a1 = _voiced_span(first)
    b0, b1 = _voiced_span(second)
    offset_first = len(lead) / 48.0
    offset_second = (len(lead) + len(first) + len(middle)) / 48.0
    return Utterances(
        pcm=concat(lead, first, middle, second, silence(1000)),
        spans=[(offset_first + a0, offset_first + a1), (offset_second + b0, offset_second + b1)],
    )


# The process-wide instances load_speech shares (speak_piper uses the same voice): each model loads once.
@pytest.fixture(scope="session")
def whisper() -> WhisperStt:
    stt = load_speech("full", preload=False).stt
    assert isinstance(stt, WhisperStt)
    stt.load()
    return stt


@pytest.fixture(scope="session")
def piper() -> PiperTts:
    tts = load_speech("full", preload=False).tts
    assert isinstance(tts, PiperTts)
    tts.load()
    return tts
