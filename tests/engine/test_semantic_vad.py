"""semantic_vad with an end-of-turn model (reference 2.1): after a short silence the model is asked; a finished
phrase ends the turn at once, an unfinished one keeps it open across a pause (where server_vad cuts it in
two), and the eagerness' longest wait still ends it. A scripted model, energy VAD, fake clock: no sockets."""

from __future__ import annotations

from typing import Any

import pytest

from aoai_realtime.engine import FakeClock, ScriptedBrain, SpeechKit
from aoai_realtime.engine.turns import CHECK_SILENCE_MS, EAGERNESS_MAX_SILENCE_MS
from aoai_realtime.protocol import events as ev
from aoai_realtime.testing.audio import silence, tone

from .conftest import Probe, make_session


class Judge:
    """An end-of-turn model that answers from a script and keeps what it was asked."""

    def __init__(self, *scores: float) -> None:
        self.scores = list(scores)
        self.heard: list[int] = []  # ms of audio per question

    def probability(self, pcm16_24k: bytes) -> float:
        self.heard.append(len(pcm16_24k) // 48)
        if not self.scores:
            raise RuntimeError("the model is broken")
        return self.scores.pop(0)


def kit(speech: Any, judge: Judge | None) -> SpeechKit:
    return SpeechKit(new_vad=speech.new_vad, stt=speech.stt, tts=speech.tts, end_of_turn=judge)


def vad(kind: str, **fields: Any) -> dict[str, Any]:
    td = {"type": kind, "create_response": False, **fields}
    return {"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"turn_detection": td}}}}


def turns(events: list[ev.ServerEvent]) -> list[tuple[int, int]]:
    starts = [e.audio_start_ms for e in events if isinstance(e, ev.InputAudioBufferSpeechStartedEvent)]
    stops = [e.audio_end_ms for e in events if isinstance(e, ev.InputAudioBufferSpeechStoppedEvent)]
    return list(zip(starts, stops, strict=True))


async def run(speech: Any, clock: FakeClock, judge: Judge | None, update: dict[str, Any],
              audio: bytes) -> tuple[list[ev.ServerEvent], Any]:  # fmt: skip
    async with make_session(kit(speech, judge), clock, ScriptedBrain([])) as session:
        probe = Probe(session, clock)
        await probe.send(update)
        events = await probe.append(audio, chunk_ms=30)
        return events, session


PAUSED = silence(990) + tone(600) + silence(600) + tone(600) + silence(5000)  # one sentence, a 600 ms pause


async def test_a_finished_phrase_ends_the_turn_after_the_short_check(speech: Any, clock: FakeClock) -> None:
    judge = Judge(0.9)
    events, _ = await run(speech, clock, judge, vad("semantic_vad"), silence(990) + tone(600) + silence(3000))
    ((start, end),) = turns(events)
    assert abs(end - 1590) <= 30 and len(judge.heard) == 1
    assert judge.heard[0] == pytest.approx(end + CHECK_SILENCE_MS - start, abs=40)  # the turn so far, and no more
    committed = next(e for e in events if isinstance(e, ev.InputAudioBufferCommittedEvent))
    assert committed.item_id


async def test_an_unfinished_phrase_stays_open_across_a_pause_that_server_vad_cuts(
    speech: Any, clock: FakeClock
) -> None:
    events, session = await run(speech, clock, Judge(0.1, 0.9), vad("semantic_vad"), PAUSED)
    assert len(turns(events)) == 1  # one turn: the pause did not end it
    (item,) = session.conversation.entries()
    assert len(item.audio[0]) // 48 >= 600 + 600 + 600  # both halves in one user item
    server_events, _ = await run(speech, clock, None, vad("server_vad", silence_duration_ms=500), PAUSED)
    assert len(turns(server_events)) == 2  # server_vad: a false end at the pause


@pytest.mark.parametrize("eagerness", ["high", "auto", "low"])
async def test_the_eagerness_longest_wait_ends_a_turn_the_model_never_calls_finished(
    speech: Any, clock: FakeClock, eagerness: str
) -> None:
    wait = EAGERNESS_MAX_SILENCE_MS[eagerness]
    judge = Judge(0.2)
    audio = silence(990) + tone(600) + silence(wait + 1000)
    events, session = await run(speech, clock, judge, vad("semantic_vad", eagerness=eagerness), audio)
    ((_, end),) = turns(events)
    (item,) = session.conversation.entries()
    assert abs(end - 1590) <= 30
    assert abs(len(item.audio[0]) // 48 - (end + wait - (990 - 300))) <= 40  # committed when the wait ran out


async def test_a_broken_model_falls_back_to_the_wait(
    speech: Any, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    audio = silence(990) + tone(600) + silence(EAGERNESS_MAX_SILENCE_MS["high"] + 500)
    events, _ = await run(speech, clock, Judge(), vad("semantic_vad", eagerness="high"), audio)
    assert len(turns(events)) == 1
    assert "end-of-turn model failed" in caplog.text


async def test_a_finished_score_at_the_pause_cuts_the_sentence(speech: Any, clock: FakeClock) -> None:
    events, _ = await run(speech, clock, Judge(0.9, 0.9), vad("semantic_vad"), PAUSED)
    assert len(turns(events)) == 2  # the model decides: here it heard the first half as finished


async def test_without_a_model_semantic_vad_waits_by_eagerness(speech: Any, clock: FakeClock) -> None:
    events, _ = await run(speech, clock, None, vad("semantic_vad", eagerness="high"), PAUSED)
    assert len(turns(events)) == 2  # 300 ms of silence (high) ends a turn when nothing scores it
