"""Where the engine cuts the text it synthesises: each sentence when complete, and an answer's first piece early
(at a comma, or once it has its first few words and the next word starts), so a slow model's first clause does
not hold back the first audio. Fake clock, fake speech."""

from __future__ import annotations

from typing import Any

import pytest

from aoai_realtime.engine import FakeClock, Pause, Say, ScriptedBrain
from aoai_realtime.engine.pacing import LOW_WATER_MS, MS_PER_WORD, TtsPace, hurry, latest_start
from aoai_realtime.engine.responses import first_words_ready, ready_to_speak
from aoai_realtime.engine.workers import WorkQueue
from aoai_realtime.protocol import events as ev

from .conftest import make_session, types


@pytest.mark.parametrize(
    ("pending", "first", "ready"),
    [
        ("The review is on Thursday.", False, True),
        ("The review is on Thursday. ", True, True),
        ("Sure,", True, True),
        ("Sure,", False, False),  # a comma ends only the first piece
        ("The review is on", False, False),
    ],
)
def test_ready_to_speak(pending: str, first: bool, ready: bool) -> None:
    assert ready_to_speak(pending, first=first) is ready


@pytest.mark.parametrize(
    ("pending", "following", "ready"),
    [
        ("Well I think the answer", " is", True),  # five words, and the next one starts: speak the five
        ("Well I think the answer", "s", False),  # the fifth word is still growing
        ("Well I think the", " answer", False),  # four words: not yet
        ("Well I think the answer", "\nis", True),
    ],
)
def test_first_words_ready(pending: str, following: str, ready: bool) -> None:
    assert first_words_ready(pending, following) is ready


async def test_the_first_words_are_heard_while_a_slow_clause_goes_on(speech: Any, clock: FakeClock) -> None:
    # The scripted brain streams a Say word by word, as a model streams tokens.
    brain = ScriptedBrain([[Say("Well I think the answer is"), Pause(5.0), Say(" probably yes.")]])
    async with make_session(speech, clock, brain) as session:
        await session.receive('{"type": "response.create"}')
        await clock.settle()  # the brain now waits in its pause; time has not moved
        early = session.pending_events()
        assert "response.output_audio.delta" in types(early) and "response.done" not in types(early)
        await clock.advance(5.0)
        while not any(isinstance(e, ev.ResponseDoneEvent) for e in early):
            event = await session.next_event()
            assert event is not None
            early.append(event)
        done = next(e for e in early if isinstance(e, ev.ResponseDoneEvent))
        assert done.response.status == "completed"
        assert done.response.output[0].transcript == "Well I think the answer is probably yes."


def test_the_pace_follows_measured_synthesis_and_ignores_untimed_chunks() -> None:
    pace = TtsPace(speed=4.0, weight=0.5)
    pace.observe(1000.0, 100.0)  # 10x real time
    assert pace.speed == pytest.approx(7.0)
    pace.observe(1000.0, 0.0)  # a fake clock's chunk: no information
    assert pace.speed == pytest.approx(7.0)
    assert pace.synthesis_ms("one two three four five six seven") == pytest.approx(7 * MS_PER_WORD / 7.0)


@pytest.mark.parametrize(
    ("ahead_ms", "speed", "expected"),
    [
        (5000.0, 10.0, False),  # plenty in hand, a fast voice: wait for the sentence's end
        (LOW_WATER_MS - 1, 100.0, True),  # little in hand: cut at the next word boundary
        (2000.0, 1.0, True),  # in hand, but eight words at real-time speed take 2.8 s to synthesise
        (-500.0, 10.0, True),  # the listener already ran out
    ],
)
def test_hurry(ahead_ms: float, speed: float, expected: bool) -> None:
    pending = "the review moves to Thursday at three in"
    assert hurry(pending, ahead_ms=ahead_ms, pace=TtsPace(speed=speed)) is expected


async def _audio_deltas_while_the_brain_waits(speech: Any, clock: FakeClock, first: str, gap_s: float) -> int:
    """Audio deltas of an answer's second sentence sent while a slow brain is still writing it."""
    brain = ScriptedBrain([[Say(first), Pause(gap_s), Say("The review moves to Thursday at three"), Pause(30.0),
                            Say(" in the big room.")]])  # fmt: skip
    async with make_session(speech, clock, brain) as session:
        await session.receive('{"type": "response.create"}')
        await clock.settle()
        assert "response.output_audio.delta" in types(session.pending_events())  # the first piece (drained)
        await clock.advance(gap_s)  # the listener hears the first piece; the brain writes, then waits 30 s
        return types(session.pending_events()).count("response.output_audio.delta")


async def test_a_sentence_is_cut_early_when_the_audio_in_hand_runs_out(speech: Any, clock: FakeClock) -> None:
    # "Sure." is about half a second of audio; 3 s later the listener has heard it out, so the next sentence's
    # first words are spoken at once instead of after the brain's 30 s pause.
    assert await _audio_deltas_while_the_brain_waits(speech, clock, "Sure.", 3.0) > 0


async def test_a_sentence_is_held_whole_while_enough_audio_is_in_hand(speech: Any, clock: FakeClock) -> None:
    # The first piece is about 3 s of audio and the listener has heard 0.5 s of it: the second sentence waits for
    # its end (it sounds better whole).
    first = "Absolutely wonderful question regarding quarterly planning arrangements."
    assert await _audio_deltas_while_the_brain_waits(speech, clock, first, 0.5) == 0


def test_a_piece_is_due_before_its_listener_runs_out_by_its_synthesis_and_a_margin() -> None:
    short, long = "Paris.", "I am a local engine without knowledge, so I cannot say."
    assert latest_start(10.0, short) < 10.0 - 0.3  # never later than the margin before the listener runs out
    assert latest_start(10.0, long) < latest_start(10.0, short)  # more to synthesise: due earlier
    assert latest_start(9.0, short) < latest_start(10.0, short)  # a listener who runs out sooner goes first
    # Two long sentences' listener with a second more in hand still comes first: what counts is when work must start.
    assert latest_start(11.0, f"{long} {long}") < latest_start(10.0, short)


class _Deadlines(WorkQueue):
    """The engine's synthesis queue, recording each job's deadline."""

    def __init__(self) -> None:
        super().__init__()
        self.deadlines: list[float] = []

    async def run(self, job: Any, *, deadline: float) -> Any:
        self.deadlines.append(deadline)
        return await super().run(job, deadline=deadline)


async def test_an_answers_first_piece_is_due_at_once_and_the_next_at_its_latest_start(
    speech: Any, clock: FakeClock
) -> None:
    session = make_session(speech, clock, ScriptedBrain([[Say("Sure. The meeting is in the blue room.")]]))
    session.synthesis = queue = _Deadlines()
    async with session:
        await clock.settle()
        await session.receive('{"type": "response.create"}')
        await clock.settle()
        while "response.done" not in types(session.pending_events()):
            await clock.advance(0.1)
    assert len(queue.deadlines) >= 2
    assert queue.deadlines[0] == 0.0  # the first piece: at once (the clock has not moved)
    # "Sure." went out at 0 s and lasts about half a second; the next sentence's synthesis at the cautious pace,
    # plus the margin, is longer than that: it was due before the first audio even went out.
    assert queue.deadlines[1] < 0.0
