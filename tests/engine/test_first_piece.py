"""Where the engine cuts the text it synthesises: each sentence when complete, and an answer's first piece early
(at a comma, or after its first few complete words), so a slow model's first clause does not hold back the
first audio. Fake clock, fake speech."""

from __future__ import annotations

from typing import Any

import pytest

from aoai_realtime.engine import FakeClock, Pause, Say, ScriptedBrain
from aoai_realtime.engine.responses import split_to_speak
from aoai_realtime.protocol import events as ev

from .conftest import make_session, types


@pytest.mark.parametrize(
    ("pending", "first", "now", "kept"),
    [
        ("The review is on Thursday.", False, "The review is on Thursday.", ""),
        ("The review is on Thursday. ", True, "The review is on Thursday. ", ""),
        ("Sure,", True, "Sure,", ""),
        ("Sure,", False, "", "Sure,"),  # a comma ends only the first piece
        ("Well I think the answer is prob", True, "Well I think the answer is", " prob"),
        ("Well I think the", True, "", "Well I think the"),  # four complete words: not yet
        ("Well I think the answer", True, "", "Well I think the answer"),  # the fifth may still be growing
        ("Well I think the answer is probably", False, "", "Well I think the answer is probably"),
    ],
)
def test_split_to_speak(pending: str, first: bool, now: str, kept: str) -> None:
    assert split_to_speak(pending, first=first) == (now, kept)
    assert now + kept == pending  # nothing is lost or repeated


async def test_the_first_words_are_heard_while_a_slow_clause_goes_on(speech: Any, clock: FakeClock) -> None:
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
