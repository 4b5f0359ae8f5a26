from __future__ import annotations

import gc
from collections.abc import Callable

import numpy as np
import pytest

from aoai_realtime.engine.speech import (
    EnergyVad,
    SileroVad,
    VoiceActivityDetector,
    WebRtcVad,
    speech_segments,
)
from aoai_realtime.testing.audio import silence, tone

from .conftest import Utterances

DETECTORS: list[Callable[[], VoiceActivityDetector]] = [SileroVad, WebRtcVad, EnergyVad]
IDS = ["silero", "webrtc", "energy"]


def run(vad: VoiceActivityDetector, pcm: bytes, chunk: int | None = None) -> list[float]:
    if chunk is None:
        return vad.process(pcm)
    out: list[float] = []
    for i in range(0, len(pcm), chunk):
        out += vad.process(pcm[i : i + chunk])
    return out


@pytest.mark.integration  # flite runs as a process to make the audio
@pytest.mark.parametrize("make", DETECTORS, ids=IDS)
def test_finds_both_speech_spans(make: Callable[[], VoiceActivityDetector], utterances: Utterances) -> None:
    vad = make()
    assert isinstance(vad, VoiceActivityDetector)
    probs = vad.process(utterances.pcm)
    found = speech_segments(probs, vad.frame_ms, min_silence_ms=400)
    assert len(found) == 2, found
    for (start, end), (true_start, true_end) in zip(found, utterances.spans, strict=True):
        assert true_start - 100 <= start <= true_start + 100
        # detectors keep "speech" on a little after the last loud sample (hangover)
        assert true_end - 100 <= end <= true_end + 300


@pytest.mark.integration
@pytest.mark.parametrize("make", DETECTORS, ids=IDS)
def test_chunking_does_not_change_probabilities(
    make: Callable[[], VoiceActivityDetector], utterances: Utterances
) -> None:
    pcm = utterances.pcm[: 24000 * 2 * 4]  # four seconds are enough
    whole = run(make(), pcm)
    for chunk in (1, 333, 961, 4801):  # odd sizes split samples and frames
        assert run(make(), pcm, chunk) == whole


@pytest.mark.integration
@pytest.mark.parametrize("make", DETECTORS, ids=IDS)
def test_reset_starts_a_fresh_stream(make: Callable[[], VoiceActivityDetector], utterances: Utterances) -> None:
    pcm = utterances.pcm[: 24000 * 2 * 3]
    vad = make()
    first = vad.process(pcm)
    vad.process(b"\x01")  # a dangling half sample, then forgotten
    vad.reset()
    assert vad.process(pcm) == first


@pytest.mark.integration
def test_silero_models_are_recycled_clean(utterances: Utterances) -> None:
    pcm = utterances.pcm[: 24000 * 2 * 3]
    gc.collect()  # detectors of earlier tests go back to the pool now, not in the middle of this test
    vad = SileroVad()
    first = vad.process(pcm)
    model = vad._model
    del vad  # the last reference: CPython finalizes it at once and its model goes back to the pool
    recycled = SileroVad()
    assert recycled._model is model  # taken from the pool, not loaded again
    assert recycled.process(pcm) == first  # and with no state left from the last stream


@pytest.mark.parametrize("make", DETECTORS, ids=IDS)
def test_one_probability_per_completed_frame(make: Callable[[], VoiceActivityDetector]) -> None:
    vad = make()
    probs = vad.process(silence(1000))
    full_frames = int(1000 // vad.frame_ms)
    # the 16 kHz detectors hold back the resampler's few ms, which may delay the last frame
    assert full_frames - 1 <= len(probs) <= full_frames
    assert all(0.0 <= p <= 1.0 for p in probs)
    assert max(probs) < 0.5


@pytest.mark.integration
def test_silero_ignores_moderate_noise(utterances: Utterances) -> None:
    x = np.frombuffer(utterances.pcm, dtype="<i2").astype(np.float64)
    noise = np.random.default_rng(7).normal(0.0, 0.01 * 32768, len(x))  # about -40 dBFS
    noisy = np.clip(x + noise, -32768, 32767).astype("<i2").tobytes()
    vad = SileroVad()
    found = speech_segments(vad.process(noisy), vad.frame_ms, min_silence_ms=400)
    assert len(found) == 2, found


def test_energy_maps_loudness_onto_probability() -> None:
    vad = EnergyVad(frame_ms=20)
    assert vad.process(silence(40)) == [0.0, 0.0]
    assert vad.process(tone(40, 1000, amplitude=0.3)) == [1.0, 1.0]
    # a sine of peak a has RMS a/sqrt(2): -45 dBFS RMS is halfway between -60 and -30
    halfway = 10 ** (-45 / 20) * np.sqrt(2)
    assert vad.process(tone(20, 1200, amplitude=halfway)) == [pytest.approx(0.5, abs=0.01)]


def test_energy_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="frame_ms"):
        EnergyVad(frame_ms=0)
    with pytest.raises(ValueError, match="above"):
        EnergyVad(silence_dbfs=-30, speech_dbfs=-40)


def test_webrtc_rejects_bad_mode() -> None:
    with pytest.raises(ValueError, match="mode"):
        WebRtcVad(mode=4)


def test_speech_segments_joins_short_pauses_and_drops_blips() -> None:
    probs = [0.0] * 5 + [0.9] * 10 + [0.1] * 3 + [0.8] * 5 + [0.0] * 20 + [0.7] * 2 + [0.0] * 20 + [0.6] * 4
    # 30 ms frames: the 90 ms dip is not a pause (< 300 ms); the 60 ms blip is too short (< 90 ms);
    # the last span runs to the end of the input
    assert speech_segments(probs, 30) == [(150.0, 690.0), (1950.0, 2070.0)]


def test_speech_segments_threshold() -> None:
    assert speech_segments([0.4] * 10, 30) == []
    assert speech_segments([0.4] * 10, 30, threshold=0.3) == [(0.0, 300.0)]
