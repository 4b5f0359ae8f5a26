from __future__ import annotations

from aoai_realtime.agents.transcript import Transcript, word_starts_ms


def texts(t: Transcript) -> list[tuple[str, str]]:
    return [(e.role, e.text) for e in t.entries()]


def test_late_user_transcription_fills_its_own_place_without_duplicates() -> None:
    t = Transcript()
    t.add_item("u1", "user", None)
    t.add_item("a1", "assistant", "u1")
    t.assistant_delta("a1", "Hi there.", audio=False)
    t.assistant_done("a1", "Hi there.", audio=False)
    t.add_item("u1", "user", None)  # conversation.item.done for the same item: no duplicate
    t.user_completed("u1", "hello")  # arrives after the assistant answered
    t.user_completed("u1", "hello")
    assert texts(t) == [("user", "hello"), ("assistant", "Hi there.")]


def test_text_for_an_item_not_yet_announced_is_moved_into_place_when_it_is() -> None:
    t = Transcript()
    t.add_item("a0", "assistant", None)
    t.user_completed("u1", "late")  # parked at the end
    t.add_item("a2", "assistant", None)
    t.add_item("u1", "user", "a0")
    assert [e.item_id for e in t.entries(include_empty=True)] == ["a0", "u1", "a2"]


def test_items_insert_after_previous_item_and_root() -> None:
    t = Transcript()
    t.add_item("b", "user", None)
    t.add_item("c", "user", "b")
    t.add_item("a", "user", "root")
    t.add_item("b2", "user", "b")
    assert [e.item_id for e in t.entries(include_empty=True)] == ["a", "b", "b2", "c"]


def test_assistant_words_are_revealed_with_playback_and_flushed_at_the_end() -> None:
    t = Transcript()
    text = "one two three four"
    t.add_item("a", "assistant")
    t.assistant_delta("a", text, audio=True)
    t.assistant_done("a", text, audio=True)
    t.audio_received("a", 1800.0)
    t.audio_done("a")
    starts = word_starts_ms(text, 1800.0)
    assert texts(t) == []  # nothing heard yet
    t.played("a", starts[1])
    assert texts(t) == [("assistant", "one two")]
    t.played("a", starts[1] + 1)  # no new word: no change
    assert t.entry("a") is not None and not t.entry("a").final  # type: ignore[union-attr]
    t.flush("a")
    assert texts(t) == [("assistant", text)]
    assert t.entry("a").final  # type: ignore[union-attr]


def test_barge_in_keeps_only_heard_words_and_ignores_later_text() -> None:
    t = Transcript()
    t.add_item("a", "assistant")
    t.assistant_delta("a", "alpha beta gamma delta", audio=True)
    t.audio_received("a", 2000.0)
    starts = word_starts_ms("alpha beta gamma delta", 2000.0)
    t.cut("a", starts[2] + 1)
    t.assistant_delta("a", " epsilon", audio=True)
    t.assistant_done("a", "alpha beta gamma delta epsilon", audio=True)
    entry = t.entry("a")
    assert entry is not None and entry.interrupted and entry.final
    assert entry.text == "alpha beta gamma"


def test_cut_at_zero_shows_nothing() -> None:
    t = Transcript()
    t.add_item("a", "assistant")
    t.assistant_delta("a", "never heard", audio=True)
    t.cut("a", 0)
    assert texts(t) == []


def test_word_starts_share_the_audio_by_characters_with_sentence_pauses() -> None:
    starts = word_starts_ms("ab cd", 500.0)
    assert starts == [0.0, 300.0]  # weights: "ab " = 3, "cd" = 2
    starts = word_starts_ms("Hi. Yes", 1000.0)
    assert starts[1] > 3 / 6 * 1000.0  # the sentence end weighs more than its characters
    assert word_starts_ms("", 100.0) == []


def test_before_the_audio_length_is_known_a_speaking_rate_prior_is_used() -> None:
    t = Transcript(ms_per_char=100.0)
    t.add_item("a", "assistant")
    t.assistant_delta("a", "aaaa bbbb", audio=True)
    t.audio_received("a", 100.0)  # only a little audio so far
    t.played("a", 100.0)
    assert texts(t) == [("assistant", "aaaa")]  # "bbbb" starts at 500 ms at the prior rate, not at 55 ms


def test_text_known_ahead_of_its_audio_is_cut_at_the_words_heard() -> None:
    # WebRTC: the whole transcript arrives long before its audio has played. The speaking rate is fitted to the
    # onsets heard so far; a cut keeps exactly the words that started (before the first join of two synthesised
    # pieces, where the tone voice leaves no pause and so no onset).
    from aoai_realtime.bench.agents import _truth
    from aoai_realtime.engine.speech.tone import ToneTts

    text = "The quick brown fox jumps over the lazy dog. Then it runs far away into the deep green forest."
    pcm = ToneTts().synthesize_with_timings("The quick brown fox jumps over the lazy dog.")[0]
    for end_ms in (600, 1120, 1500, 1700):
        t = Transcript()
        t.add_item("a", "assistant")
        t.assistant_delta("a", text, audio=True)
        heard = pcm[: end_ms * 48]
        for i in range(0, len(heard), 960):
            t.audio_received("a", len(heard[i : i + 960]) / 48, heard[i : i + 960])
        t.cut("a", end_ms)
        entry = t.entry("a")
        assert entry is not None
        assert len(entry.text.split()) == sum(1 for s in _truth(text) if s < end_ms)


def test_a_comma_weighs_more_than_its_character_since_voices_pause_there() -> None:
    plain = word_starts_ms("one two three", 1300.0)
    paused = word_starts_ms("one, two three", 1300.0)
    # "two" comes after the pause at the comma: later than its share of characters alone would put it
    assert paused[1] > 5 / 14 * 1300.0 + 1
    # and the rest of the text shares less of the audio, so "three" (after no pause) moves less than "two"
    assert paused[2] - plain[2] < paused[1] - plain[1]


def _sound(ms: int) -> bytes:
    import numpy as np

    t = np.arange(ms * 24) / 24000.0
    return (np.sin(2 * np.pi * 220.0 * t) * 8000).astype("<i2").tobytes()


def _heard(t: Transcript, item: str, at_ms: float) -> str:
    t.played(item, at_ms)
    entry = t.entry(item)
    return "" if entry is None else entry.text


def test_a_closing_pause_in_the_audio_is_not_shared_among_the_words() -> None:
    # A voice ends a piece's audio with a pause (piper: 100-300 ms after a sentence). The words lie in the sound
    # before it: "bbbb" starts at 5/9 of the 800 ms of sound (444 ms), not at 5/9 of all 1200 ms (667 ms).
    pcm = _sound(800) + bytes(2 * 24 * 400)
    t = Transcript()
    t.add_item("a", "assistant")
    t.assistant_delta("a", "aaaa bbbb", audio=True)
    for i in range(0, len(pcm), 4800):
        t.audio_received("a", len(pcm[i : i + 4800]) / 48, pcm[i : i + 4800])
    t.audio_done("a")
    t.assistant_done("a", "aaaa bbbb", audio=True)
    assert _heard(t, "a", 430.0) == "aaaa"
    assert _heard(t, "a", 460.0) == "aaaa bbbb"


def _first_piece_then_next_text() -> Transcript:
    """WebSocket order: a piece's text ("aaaa bbbb."), its audio (900 ms of sound, then 300 ms of quiet), then the
    next piece's text (" cccc")."""
    t = Transcript()
    t.add_item("a", "assistant")
    t.assistant_delta("a", "aaaa bbbb.", audio=True)
    first = _sound(900) + bytes(2 * 24 * 300)
    t.audio_received("a", len(first) / 48, first)
    t.assistant_delta("a", " cccc", audio=True)
    return t


def test_each_piece_ends_at_its_own_sound_once_the_next_piece_began() -> None:
    # Two pieces, each text then its audio (WebSocket order). The first piece's closing pause is known once the
    # second piece's audio follows it, while the item is still streaming.
    t = _first_piece_then_next_text()
    second = _sound(500)
    t.audio_received("a", len(second) / 48, second)
    # "bbbb." starts at 5/10 of the first piece's 900 ms of sound (450 ms), not of its 1200 ms (600 ms)
    assert _heard(t, "a", 440.0) == "aaaa"
    assert _heard(t, "a", 470.0) == "aaaa bbbb."
    assert _heard(t, "a", 1190.0) == "aaaa bbbb."
    assert _heard(t, "a", 1210.0) == "aaaa bbbb. cccc"  # the second piece starts where its audio does


def test_without_the_audio_itself_the_whole_piece_is_shared() -> None:
    # No pcm (audio_onsets off): nothing tells where the sound ends, so the words share all of the audio.
    t = Transcript()
    t.add_item("a", "assistant")
    t.assistant_delta("a", "aaaa bbbb", audio=True)
    t.audio_received("a", 1200.0)
    t.audio_done("a")
    t.assistant_done("a", "aaaa bbbb", audio=True)
    assert _heard(t, "a", 660.0) == "aaaa"
    assert _heard(t, "a", 670.0) == "aaaa bbbb"


def _stream(t: Transcript, item: str, text: str, pcm: bytes) -> None:
    t.add_item(item, "assistant")
    t.assistant_delta(item, text, audio=True)
    for i in range(0, len(pcm), 4800):
        t.audio_received(item, len(pcm[i : i + 4800]) / 48, pcm[i : i + 4800])
    t.audio_done(item)
    t.assistant_done(item, text, audio=True)


def test_a_voice_that_pauses_at_the_comma_is_timed_with_the_pause() -> None:
    # 100 ms a character; 300 ms of quiet after the comma. "dddd" (no pause before it, so no onset) starts at
    # 1800 ms; shared by characters alone it would be shown at 1760.
    t = Transcript()
    _stream(t, "a", "aaaa bbbb, cccc dddd", _sound(1000) + bytes(2 * 24 * 300) + _sound(900))
    assert _heard(t, "a", 1790.0) == "aaaa bbbb, cccc"
    assert _heard(t, "a", 1820.0) == "aaaa bbbb, cccc dddd"


def test_a_voice_that_does_not_pause_at_the_comma_is_timed_without_a_pause() -> None:
    # Words with short gaps, none longer at the comma (as tone speech): "dddd" runs on from "cccc" at 1400 ms.
    # Timed with a comma pause it would wait until 1487 ms; the onsets heard say there is none.
    gap = bytes(2 * 24 * 100)
    t = Transcript()
    _stream(t, "a", "aaaa bbbb, cccc dddd", _sound(400) + gap + _sound(400) + gap + _sound(800))
    assert _heard(t, "a", 1450.0) == "aaaa bbbb, cccc dddd"


def test_a_piece_is_whole_once_the_next_pieces_text_came_before_its_audio() -> None:
    # WebSocket order: a piece's text, its audio, then the next piece's text while that audio is synthesised.
    # The audio so far speaks exactly the first piece, so its words are timed on it, not on an assumed rate.
    t = _first_piece_then_next_text()  # the next piece's audio has not come yet
    assert _heard(t, "a", 440.0) == "aaaa"
    assert _heard(t, "a", 470.0) == "aaaa bbbb."  # 5/10 of the first piece's 900 ms of sound
    assert _heard(t, "a", 1190.0) == "aaaa bbbb."  # "cccc" is spoken by audio still to come
