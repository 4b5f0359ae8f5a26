"""Transcription sessions (``?intent=transcription``, ``session.type="transcription"``): speech in, turn
detection, transcripts out, no responses; the session object has input audio only. Fake clock, tone speech."""

from __future__ import annotations

from typing import Any

from aoai_realtime.engine import FakeClock, ScriptedBrain
from aoai_realtime.engine.ids import Ids
from aoai_realtime.engine.session import EngineSession, SessionOptions
from aoai_realtime.engine.speech import ToneTts
from aoai_realtime.protocol import events as ev
from aoai_realtime.testing.audio import silence

from .conftest import Probe, types

TRANSCRIBE = {
    "type": "session.update",
    "session": {"type": "transcription", "audio": {"input": {"transcription": {"model": "whisper-1"}}}},
}


def transcription_session(speech: Any, clock: FakeClock) -> EngineSession:
    return EngineSession(
        SessionOptions(kind="transcription"), brain=ScriptedBrain([]), speech=speech, clock=clock,
        ids=Ids(deterministic=True),
    )  # fmt: skip


async def test_speech_is_committed_and_transcribed_and_nothing_answers(speech: Any, clock: FakeClock) -> None:
    async with transcription_session(speech, clock) as session:
        p = Probe(session, clock)
        created = session.pending_events()[0]
        assert isinstance(created, ev.SessionCreatedEvent)
        assert created.session["type"] == "transcription" and set(created.session["audio"]) == {"input"}
        assert "instructions" not in created.session and "tools" not in created.session
        out = await p.send(TRANSCRIBE)
        assert types(out) == ["session.updated"]
        for words in ("book a table for two", "at seven tonight"):
            pcm, _ = ToneTts().synthesize_with_timings(words)
            out = await p.append(silence(300) + pcm + silence(800), chunk_ms=20)
            out = await p.until("conversation.item.input_audio_transcription.completed", after=out)
            kinds = types(out)
            assert kinds.index("input_audio_buffer.speech_started") < kinds.index("input_audio_buffer.committed")
            done = out[-1]
            assert isinstance(done, ev.ConversationItemInputAudioTranscriptionCompletedEvent)
            assert done.transcript == words
            assert not [k for k in kinds if k.startswith("response.")]  # transcription only: no answer
        users = [e for e in session.conversation.entries() if e.wire.get("role") == "user"]
        assert [e.text() for e in users] == ["book a table for two", "at seven tonight"]


async def test_realtime_only_settings_and_responses_are_refused(speech: Any, clock: FakeClock) -> None:
    async with transcription_session(speech, clock) as session:
        p = Probe(session, clock)
        session.pending_events()  # session.created
        out = await p.send({"type": "session.update", "session": {"type": "transcription", "instructions": "Hi."}})
        [error] = out
        assert isinstance(error, ev.RealtimeErrorEvent) and error.error.param == "session.instructions"
        out = await p.send({"type": "session.update", "session": {"type": "transcription",
                                                                  "audio": {"output": {"voice": "cedar"}}}})
        assert isinstance(out[0], ev.RealtimeErrorEvent) and out[0].error.param == "session.audio.output"
        out = await p.send({"type": "session.update", "session": {"type": "realtime"}})
        assert isinstance(out[0], ev.RealtimeErrorEvent) and out[0].error.param == "session.type"
        out = await p.send({"type": "response.create"})
        assert isinstance(out[0], ev.RealtimeErrorEvent)
        assert "transcription session" in out[0].error.message and out[0].error.code == "response_not_supported"


async def test_a_token_minted_for_transcription_makes_a_transcription_session(speech: Any, clock: FakeClock) -> None:
    minted = {"type": "transcription", "audio": {"input": {"transcription": {"model": "gpt-4o-transcribe"}}}}
    async with EngineSession(SessionOptions(initial=minted), brain=ScriptedBrain([]), speech=speech, clock=clock) as s:
        assert s.transcribing and s.session["audio"]["input"]["transcription"]["model"] == "gpt-4o-transcribe"
