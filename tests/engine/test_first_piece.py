"""Where the engine cuts the text it synthesises: each sentence when complete, and an answer's first piece early
(at a comma, or once it has its first few words and the next word starts), so a slow model's first clause does
not hold back the first audio. Fake clock, fake speech."""

from __future__ import annotations

from typing import Any

import pytest

from aoai_realtime.engine import FakeClock, Pause, Say, ScriptedBrain
from aoai_realtime.engine.responses import first_words_ready, ready_to_speak
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
