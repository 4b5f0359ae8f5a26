"""The transcript-sync benchmark (``aoai-realtime bench agents``): its ground truth and its comparison.

No sockets, no piper model: the sessions run on tone speech on the virtual clock (piper's word starts, the
truth of its rows, are tested in ``tests/engine/speech``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aoai_realtime.bench.agents import SessionRecord, _drip_errors, _spoken_pieces, measure_sync
from aoai_realtime.bench.spoken import SpokenPiece, TimedTts, ToneVoice
from aoai_realtime.testing.virtual_time import run_virtual


def test_the_drip_shows_chunk_j_after_j_plus_one_intervals_or_when_playback_ends() -> None:
    record = SessionRecord(
        shown=[], spoken=[0.0, 0.2, 0.5, 0.6], chunk_words=[1, 2, 1], start=0.0, end=0.7, audio_ms=700.0
    )
    errors = _drip_errors(record, 285.0)
    # chunk 0 at 0.285, chunk 1 (two words) at 0.570, chunk 2 at 0.855 -> playback ended at 0.7
    assert errors == pytest.approx([285.0, 370.0, 70.0, 100.0])


class _CountingVoice:
    name = "fake"
    pace = 1.0

    def __init__(self) -> None:
        self.calls = 0

    def speak(self, text: str) -> SpokenPiece:
        self.calls += 1
        starts = tuple(100.0 * i for i in range(len(text.split())))
        return SpokenPiece(text, (b"\x01\x00" * 2400, b"\x01\x00" * 2400), starts)


def test_the_voice_records_each_piece_the_engine_asked_for_and_synthesises_it_once_per_run() -> None:
    voice = _CountingVoice()
    cache: dict[tuple[str, float, str], SpokenPiece] = {}
    first, again = TimedTts(voice, cache), TimedTts(voice, cache)
    assert len(b"".join(first.synthesize("one two"))) == 9600
    list(first.synthesize("three"))
    list(again.synthesize("one two"))
    assert voice.calls == 2  # "one two" came from the cache the second time
    # pieces play back to back: the second piece's words count from the end of the first one's audio (200 ms)
    assert first.word_starts_ms() == [0.0, 100.0, 200.0]
    assert first.audio_ms == 400.0 and again.audio_ms == 200.0


class _TimedVoice(_CountingVoice):
    times_words = True

    def __init__(self, timings: list[list[tuple[int, float]]]) -> None:
        super().__init__()
        self.timings = timings

    def synthesize_timed(self, text: str) -> Iterator[tuple[bytes, list[tuple[int, float]]]]:
        for words in self.timings:
            yield b"\x01\x00" * 2400, words


def test_with_engine_word_timings_the_truth_is_what_the_voice_gave_the_engine() -> None:
    tts = TimedTts(_TimedVoice([[(0, 5.0), (1, 60.0)], [(2, 10.0)]]), {})
    assert tts.times_words
    items = list(tts.synthesize_timed("one two three"))
    assert [words for _, words in items] == [[(0, 5.0), (1, 60.0)], [(2, 10.0)]]
    assert tts.word_starts_ms() == [5.0, 60.0, 110.0]  # the second sentence starts after the first one's 100 ms
    assert not TimedTts(_TimedVoice([]), {}, offer_timings=False).times_words  # --no-word-timings
    with pytest.raises(RuntimeError, match="timed 2 of the 3 words"):
        list(TimedTts(_TimedVoice([[(0, 5.0), (1, 60.0)]]), {}).synthesize_timed("one two three"))


def test_the_truth_is_the_audio_the_engine_sent_and_ours_beats_the_drip() -> None:
    texts = ["Sure. I have booked a table for two at seven thirty tonight.", "Yes, that works for me."]
    row = run_virtual(measure_sync(texts, ToneVoice(1.4)))
    assert row.words == sum(len(t.split()) for t in texts)
    assert len(row.ours_ms) == len(row.drip_ms) == len(row.drip_at_pace_ms) == row.words
    # the pace is measured from the audio: slower tone speech (x1.4) is slower per word than the usual one
    usual = run_virtual(measure_sync(texts[1:], ToneVoice(1.0)))
    assert row.pace_ms > usual.pace_ms * 1.3
    assert sum(row.ours_ms) < sum(row.drip_ms) and sum(row.ours_ms) < sum(row.drip_at_pace_ms)


def test_the_engine_cuts_pieces_as_the_benchmark_expects() -> None:
    # measure_sync needs no model of the engine's cuts (the voice records them), but the tests that use
    # _truth() do: the first clause, then each sentence.
    assert _spoken_pieces("Yes, that works for me. Thanks.") == ["Yes,", "that works for me.", "Thanks."]
