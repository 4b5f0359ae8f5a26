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
