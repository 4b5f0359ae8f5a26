"""Turn detection on audio (reference 4.2, 4.4): server_vad timing in session audio time, interruption,
idle timeout, semantic_vad eagerness, and the preview dialect. Driven directly, fake clock, energy VAD."""

from __future__ import annotations

from typing import Any

from aoai_realtime.engine import FakeClock, Pause, Say, ScriptedBrain
from aoai_realtime.engine.turns import EAGERNESS_SILENCE_MS, TurnDetector
from aoai_realtime.protocol import events as ev
from aoai_realtime.testing.audio import silence, tone

from .conftest import Probe, make_session, types


def vad(**fields: Any) -> dict[str, Any]:
    return {"type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": {"type": "server_vad", **fields}}}}}


def first(events: list[ev.ServerEvent], cls: type[Any]) -> Any:
    return next(e for e in events if isinstance(e, cls))


async def test_server_vad_reports_speech_in_session_audio_time(speech: Any, clock: FakeClock) -> None:
    async with make_session(speech, clock, ScriptedBrain([[Say("Yes.")]])) as session:
        p = Probe(session, clock)
        await p.send(vad(prefix_padding_ms=300, silence_duration_ms=500))
        out = await p.append(silence(990) + tone(600) + silence(700), chunk_ms=30)
        started = first(out, ev.InputAudioBufferSpeechStartedEvent)
        stopped = first(out, ev.InputAudioBufferSpeechStoppedEvent)
        # the tone starts at 990 ms (frame 33 of 30 ms); audio_start_ms goes back prefix_padding_ms
        assert started.audio_start_ms == 990 - 300
        assert stopped.audio_end_ms == 1590  # where the silence began
        assert started.item_id == stopped.item_id
        committed = first(out, ev.InputAudioBufferCommittedEvent)
        assert committed.item_id == started.item_id
        user = session.conversation.get(started.item_id)
        assert user is not None
        # the committed audio runs from audio_start_ms to where the stop was decided
        assert len(user.audio[0]) // 48 == (1590 + 500) - 690
        out = await p.until("response.done", after=out)
        assert first(out, ev.ResponseDoneEvent).response.status == "completed"


async def test_short_pause_under_silence_duration_does_not_end_the_turn(speech: Any, clock: FakeClock) -> None:
    async with make_session(speech, clock) as session:
        p = Probe(session, clock)
        await p.send(vad(silence_duration_ms=500))
        out = await p.append(tone(300) + silence(300) + tone(300) + silence(600), chunk_ms=30)
        assert types(out).count("input_audio_buffer.speech_started") == 1
        assert types(out).count("input_audio_buffer.speech_stopped") == 1


async def test_speech_interrupts_the_active_response(speech: Any, clock: FakeClock) -> None:
    brain = ScriptedBrain([[Say("Part one."), Pause(10.0), Say("Part two.")]])
    async with make_session(speech, clock, brain) as session:
        p = Probe(session, clock)
        await session.receive('{"type": "response.create"}')
        await p.until("response.output_audio.delta")
        out = await p.append(tone(300), chunk_ms=30)
        kinds = types(out)
        assert kinds.index("input_audio_buffer.speech_started") < kinds.index("response.done")
        done = first(out, ev.ResponseDoneEvent)
        assert done.response.status == "cancelled"
        assert done.response.status_details == {"type": "cancelled", "reason": "turn_detected"}


async def test_interrupt_response_false_lets_the_reply_finish(speech: Any, clock: FakeClock) -> None:
    brain = ScriptedBrain([[Say("Part one."), Pause(1.0), Say("Part two.")]])
    async with make_session(speech, clock, brain) as session:
        p = Probe(session, clock)
        await p.send(vad(interrupt_response=False, create_response=False))
        await p.send({"type": "response.create"})
        out = await p.append(tone(300) + silence(400), chunk_ms=30)
        assert "input_audio_buffer.speech_stopped" in types(out) and "response.done" not in types(out)
        await clock.advance(1.0)
        done = first(await p.until("response.done"), ev.ResponseDoneEvent)
        assert done.response.status == "completed"
        assert done.response.output[0].transcript == "Part one. Part two."
        # the user's turn went in after the assistant item that was already in progress
        assert [e.wire["role"] for e in session.conversation.entries()] == ["assistant", "user"]


async def test_idle_timeout_triggers_a_response_after_the_reply_played(speech: Any, clock: FakeClock) -> None:
    async with make_session(speech, clock, ScriptedBrain([[Say("Hi.")], [Say("Are you still there?")]])) as session:
        p = Probe(session, clock)
        await p.send(vad(idle_timeout_ms=6000))
        first_reply = await p.respond()
        audio_ms = sum(len(e.delta) * 3 // 4 for e in first_reply if isinstance(e, ev.ResponseAudioDeltaEvent)) // 48
        await p.append(silence(1000))
        await clock.advance(6.0 + audio_ms / 1000 - 0.05)
        assert "input_audio_buffer.timeout_triggered" not in types(session.pending_events())
        await clock.advance(0.1)
        out = await p.until("response.done")
        trig = first(out, ev.InputAudioBufferTimeoutTriggered)
        assert (trig.audio_start_ms, trig.audio_end_ms) == (0, 1000)
        assert types(out)[:2] == ["input_audio_buffer.timeout_triggered", "input_audio_buffer.committed"]
        assert first(out, ev.ResponseDoneEvent).response.output[0].transcript == "Are you still there?"


def test_semantic_vad_eagerness_sets_the_silence_wait() -> None:
    waits = {e: TurnDetector({"type": "semantic_vad", "eagerness": e}, 30).silence_ms for e in EAGERNESS_SILENCE_MS}
    assert waits["high"] < waits["medium"] == waits["auto"] < waits["low"]
    detector = TurnDetector({"type": "semantic_vad", "eagerness": "high"}, 30)
    assert detector.step(0.9, 0, 0) is not None
    decisions = [detector.step(0.0, 30 + 30 * i, 0) for i in range(20)]
    stop = next(d for d in decisions if d is not None)
    assert stop.kind == "stopped" and stop.ms == 30
    assert decisions.index(stop) == waits["high"] // 30 - 1


async def test_preview_dialect_session_update_takes_the_flat_shape(speech: Any, clock: FakeClock) -> None:
    from aoai_realtime.protocol.dialect import event_to_beta as to_beta

    async with make_session(speech, clock, dialect="beta") as session:
        p = Probe(session, clock)
        out = await p.send({"type": "session.update", "session": {
            "modalities": ["text"], "voice": "verse", "input_audio_format": "g711_ulaw",
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 800}}})
        updated = first(out, ev.SessionUpdatedEvent)
        flat = to_beta(updated)
        assert flat is not None
        assert flat.session["modalities"] == ["text"] and flat.session["voice"] == "verse"  # type: ignore[attr-defined]
        assert flat.session["input_audio_format"] == "g711_ulaw"  # type: ignore[attr-defined]
        assert flat.session["turn_detection"]["silence_duration_ms"] == 800  # type: ignore[attr-defined]
        out = await p.send({"type": "session.update", "session": {"type": "realtime"}})
        assert first(out, ev.RealtimeErrorEvent).error.param == "session.type"
        assert to_beta(ev.ConversationItemDone(item=ev.Item(type="message"))) is None
