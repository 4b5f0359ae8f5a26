"""The session core's semantics (reference 2, 4, 7), driven directly with a fake clock: no sockets."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from aoai_realtime.engine import CallTool, FakeClock, Pause, Say, ScriptedBrain
from aoai_realtime.protocol import events as ev
from aoai_realtime.testing.audio import silence

from .conftest import Probe, make_session, types

TOOL = {"type": "function", "name": "get_weather", "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


def user_text(text: str) -> dict[str, Any]:
    return {"type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}}


def errors(events: list[ev.ServerEvent]) -> list[ev.ErrorDetails]:
    return [e.error for e in events if isinstance(e, ev.RealtimeErrorEvent)]


async def test_session_created_comes_first_with_the_service_defaults(speech: Any, clock: FakeClock) -> None:
    session = make_session(speech, clock)
    async with session:
        first = session.pending_events()[0]
    assert isinstance(first, ev.SessionCreatedEvent)
    s = first.session
    assert s["type"] == "realtime" and s["object"] == "realtime.session" and s["id"].startswith("sess_")
    assert s["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    assert s["audio"]["input"]["transcription"] is None
    assert s["audio"]["output"]["voice"] == "alloy"
    assert s["output_modalities"] == ["audio"]


async def test_session_update_merges_partially(probe: Probe) -> None:
    probe.session.pending_events()
    out = await probe.send({"type": "session.update", "session": {"type": "realtime", "instructions": "Be brief."}})
    out += await probe.send(
        {"type": "session.update",
         "session": {"type": "realtime", "audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}}}
    )
    assert types(out) == ["session.updated", "session.updated"]
    final = out[-1].session  # type: ignore[attr-defined]
    assert final["instructions"] == "Be brief."
    assert final["audio"]["input"]["turn_detection"] == {
        "type": "semantic_vad", "eagerness": "auto", "create_response": True, "interrupt_response": True}
    assert final["audio"]["output"]["voice"] == "alloy"


async def test_a_refused_session_update_is_an_error_event_and_the_session_goes_on(probe: Probe) -> None:
    # Every refusal rule is checked byte-fed in tests/protocol/test_server_session.py; here: the driver's part.
    probe.session.pending_events()
    out = await probe.send({"type": "session.update", "event_id": "evt_1",
                            "session": {"type": "realtime", "audio": {"output": {"voice": "bogus"}}}})
    (error,) = errors(out)
    assert (error.code, error.param, error.event_id) == ("invalid_value", "session.audio.output.voice", "evt_1")
    assert probe.session.session["audio"]["output"]["voice"] == "alloy"
    out = await probe.send({"type": "session.update", "session": {"type": "realtime", "instructions": "Go."}})
    assert types(out) == ["session.updated"]


async def test_voice_is_locked_after_the_first_audio(probe: Probe) -> None:
    await probe.send({"type": "session.update", "session": {"type": "realtime", "audio": {"output": {"voice": "ash"}}}})
    out = await probe.respond()
    assert "response.output_audio.delta" in types(out)
    out = await probe.send({"type": "session.update", "session": {"type": "realtime",
                                                                   "audio": {"output": {"voice": "coral"}}}})
    assert [e.code for e in errors(out)] == ["cannot_update_voice"]
    out = await probe.send({"type": "session.update", "session": {"type": "realtime",
                                                                   "audio": {"output": {"voice": "ash"}}}})
    assert types(out) == ["session.updated"]


async def test_items_insert_after_previous_item_and_delete_and_retrieve(probe: Probe) -> None:
    probe.session.pending_events()
    a = (await probe.send(user_text("first")))[0]
    b = (await probe.send(user_text("second")))[0]
    assert isinstance(a, ev.ConversationItemAdded) and isinstance(b, ev.ConversationItemAdded)
    assert b.previous_item_id == a.item.id
    c = (await probe.send({**user_text("between"), "previous_item_id": a.item.id}))[0]
    root = (await probe.send({**user_text("zero"), "previous_item_id": "root"}))[0]
    order = [e.text() for e in probe.session.conversation.entries()]
    assert order == ["zero", "first", "between", "second"]
    assert c.previous_item_id == a.item.id and root.previous_item_id is None  # type: ignore[attr-defined]
    out = await probe.send({**user_text("x"), "previous_item_id": "item_nope", "event_id": "e9"})
    assert [(e.code, e.event_id) for e in errors(out)] == [("item_not_found", "e9")]
    out = await probe.send({"type": "conversation.item.retrieve", "item_id": a.item.id})
    assert isinstance(out[0], ev.ConversationItemRetrieved) and out[0].item.transcript == "first"
    out = await probe.send({"type": "conversation.item.delete", "item_id": a.item.id})
    assert types(out) == ["conversation.item.deleted"]
    out = await probe.send({"type": "conversation.item.delete", "item_id": a.item.id})
    assert [e.code for e in errors(out)] == ["item_delete_invalid_item_id"]
    out = await probe.send({"type": "conversation.item.retrieve", "item_id": "nope"})
    assert [e.code for e in errors(out)] == ["item_retrieve_invalid_item_id"]


async def test_truncate_cuts_assistant_audio_and_validates(probe: Probe) -> None:
    await probe.send(user_text("hello"))
    probe.session.pending_events()
    out = await probe.respond()
    done = next(e for e in out if isinstance(e, ev.ResponseDoneEvent))
    item_id = done.response.output[0].id  # type: ignore[index]
    entry = probe.session.conversation.get(str(item_id))
    assert entry is not None
    total_ms = len(entry.audio[0]) // 48
    assert total_ms > 100
    out = await probe.send({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0,
                            "audio_end_ms": total_ms + 500})
    assert [e.message for e in errors(out)] == [
        f"Audio content of {total_ms}ms is already shorter than {total_ms + 500}ms"]
    out = await probe.send({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0,
                            "audio_end_ms": 100})
    assert types(out) == ["conversation.item.truncated"]
    assert len(entry.audio[0]) == 100 * 48 and entry.wire["content"][0]["transcript"] == ""
    user_id = probe.session.conversation.entries()[0].id
    out = await probe.send({"type": "conversation.item.truncate", "item_id": user_id, "content_index": 0,
                            "audio_end_ms": 0})
    assert [e.code for e in errors(out)] == ["unsupported_content_type"]


async def test_commit_needs_100ms_and_makes_a_user_item(probe: Probe) -> None:
    await probe.send({"type": "session.update", "session": {"type": "realtime",
                                                            "audio": {"input": {"turn_detection": None}}}})
    await probe.append(silence(50), chunk_ms=50)
    out = await probe.send({"type": "input_audio_buffer.commit", "event_id": "c1"})
    (error,) = errors(out)
    assert error.code == "input_audio_buffer_commit_empty" and error.event_id == "c1"
    assert "buffer only has 50.00ms of audio" in error.message
    await probe.append(silence(100))
    out = await probe.send({"type": "input_audio_buffer.commit"})
    assert types(out) == ["input_audio_buffer.committed", "conversation.item.added", "conversation.item.done"]
    entry = probe.session.conversation.entries()[-1]
    assert len(entry.audio[0]) == 150 * 48
    out = await probe.send({"type": "input_audio_buffer.commit"})
    assert [e.code for e in errors(out)] == ["input_audio_buffer_commit_empty"]
    out = await probe.send({"type": "input_audio_buffer.clear"})
    assert types(out) == ["input_audio_buffer.cleared"]


async def test_one_active_response_cancel_and_its_errors(speech: Any, clock: FakeClock) -> None:
    brain = ScriptedBrain([[Say("Let me think."), Pause(5.0), Say("Done.")]])
    async with make_session(speech, clock, brain) as session:
        p = Probe(session, clock)
        out = await p.send({"type": "response.create"})
        created = out[1]
        assert isinstance(created, ev.ResponseCreatedEvent) and created.response.status == "in_progress"
        out = await p.send({"type": "response.create", "event_id": "r2"})
        (error,) = errors(out)
        assert error.code == "conversation_already_has_active_response" and created.response.id in error.message
        out = await p.send({"type": "response.cancel"})
        done = [e for e in out if isinstance(e, ev.ResponseDoneEvent)]
        assert done[0].response.status == "cancelled"
        assert done[0].response.status_details == {"type": "cancelled", "reason": "client_cancelled"}
        assert done[0].response.output[0].status == "incomplete"  # type: ignore[index]
        out = await p.send({"type": "response.cancel", "event_id": "c"})
        assert [(e.code, e.message) for e in errors(out)] == [
            ("response_cancel_not_active", "Cancellation failed: no active response found")]


async def test_out_of_band_responses_overlap_and_stay_out_of_the_conversation(speech: Any, clock: FakeClock) -> None:
    brain = ScriptedBrain([[Pause(1.0), Say("Main.")], [Say("Side.")]])
    async with make_session(speech, clock, brain) as session:
        p = Probe(session, clock)
        await p.send({"type": "response.create"})
        out = await p.send({"type": "response.create", "response": {
            "conversation": "none", "metadata": {"topic": "summary"}, "output_modalities": ["text"]}})
        oob = [e for e in out if isinstance(e, ev.ResponseDoneEvent)]
        assert oob and oob[0].response.metadata == {"topic": "summary"}
        assert oob[0].response.conversation_id is None
        assert "conversation.item.added" not in types(out) and not errors(out)
        await clock.advance(1.0)
        out = await p.until("response.done")
        main = [e for e in out if isinstance(e, ev.ResponseDoneEvent)]
        assert main[0].response.status == "completed" and main[0].response.conversation_id
        assert [e.text() for e in session.conversation.entries()] == ["Main."]


async def test_function_call_turn_and_tool_output(speech: Any, clock: FakeClock) -> None:
    brain = ScriptedBrain([[CallTool("get_weather", '{"city": "Paris"}')], [Say("It is sunny.")]])
    async with make_session(speech, clock, brain) as session:
        p = Probe(session, clock)
        await p.send({"type": "session.update", "session": {"type": "realtime", "tools": [TOOL]}})
        await p.send(user_text("Weather in Paris?"))
        session.pending_events()
        out = await p.respond()
        args_done = next(e for e in out if isinstance(e, ev.ResponseFunctionCallArgumentsDoneEvent))
        assert args_done.name == "get_weather" and args_done.arguments == '{"city": "Paris"}'
        assert args_done.call_id.startswith("call_")
        assert "response.content_part.added" not in types(out)
        deltas = "".join(e.delta for e in out if isinstance(e, ev.ResponseFunctionCallArgumentsDeltaEvent))
        assert deltas == args_done.arguments
        await p.send({"type": "conversation.item.create", "item": {
            "type": "function_call_output", "call_id": args_done.call_id, "output": '{"sky": "sunny"}'}})
        out = await p.respond()
        assert next(e for e in out if isinstance(e, ev.ResponseAudioTranscriptDoneEvent)).transcript == "It is sunny."
        seen = brain.requests[-1]
        assert [o.output for o in seen.pending_tool_outputs] == ['{"sky": "sunny"}']


async def test_usage_counts_audio_tokens_per_the_service_rates(speech: Any, clock: FakeClock) -> None:
    async with make_session(speech, clock, ScriptedBrain([[Say("Hello there, friend.")]])) as session:
        p = Probe(session, clock)
        await p.send({"type": "session.update", "session": {"type": "realtime",
                                                            "audio": {"input": {"turn_detection": None}}}})
        await p.append(silence(1000))
        await p.send({"type": "input_audio_buffer.commit"})
        out = await p.respond()
        done = next(e for e in out if isinstance(e, ev.ResponseDoneEvent))
        assistant = session.conversation.entries()[-1]
        usage = done.response.usage
        assert usage is not None
        assert usage["input_token_details"]["audio_tokens"] == 10  # 1000 ms of user audio, 1 token / 100 ms
        assert usage["output_token_details"]["audio_tokens"] == (len(assistant.audio[0]) // 48) // 50
        assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
        assert isinstance(out[-1], ev.RateLimitsUpdatedEvent)


async def test_unknown_and_malformed_events_are_errors_not_crashes(probe: Probe) -> None:
    out = await probe.send({"type": "session.bogus", "event_id": "u1"})
    (error,) = errors(out)
    assert (error.code, error.param, error.event_id) == ("invalid_value", "type", "u1")
    out = await probe.send({"type": "conversation.item.delete", "event_id": "m1"})
    (error,) = errors(out)
    assert (error.code, error.param, error.event_id) == ("missing_required_parameter", "item_id", "m1")
    await probe.session.receive(b"not json")
    (error,) = errors(probe.session.pending_events())
    assert error.code == "invalid_json"


async def test_session_expires_with_session_expired_and_1001(speech: Any, clock: FakeClock) -> None:
    async with make_session(speech, clock, max_duration_s=120.0) as session:
        session.pending_events()
        await clock.advance(119.0)
        assert session.close_code is None
        await clock.advance(1.0)
        (error,) = errors(session.pending_events())
        assert error.code == "session_expired"
        assert error.message == "Your session hit the maximum duration of 2 minutes."
        assert (session.close_code, session.closed) == (1001, True)
        assert await session.next_event() is None


def b64(pcm: bytes) -> str:
    return base64.b64encode(pcm).decode()


class _PreparingBrain(ScriptedBrain):
    """A brain that reads the session's prompt ahead (as the llm brain does): records each request."""

    def __init__(self) -> None:
        super().__init__([])
        self.prepared: list[Any] = []

    async def prepare(self, request: Any) -> None:
        self.prepared.append(request)


class _RememberingBrain(ScriptedBrain):
    """A brain that keeps state per conversation (as the llm brain's lanes do): records what it is told."""

    def __init__(self) -> None:
        super().__init__([[Say("Hi.")]])
        self.asked: list[str] = []
        self.ended: list[str] = []

    async def respond(self, request: Any) -> Any:
        self.asked.append(request.conversation)
        async for output in super().respond(request):
            yield output

    def end(self, conversation: str) -> None:
        self.ended.append(conversation)


async def test_the_brain_knows_each_requests_conversation_and_hears_when_it_ends(
    speech: Any, clock: FakeClock
) -> None:
    brain = _RememberingBrain()
    session = make_session(speech, clock, brain)
    async with session:
        await session.receive(json.dumps({"type": "response.create"}))
        while "response.done" not in [e.type for e in session.pending_events()]:
            await clock.advance(0.1)
        assert brain.ended == []
    assert brain.asked == [session.conversation_id] and session.conversation_id
    assert brain.ended == [session.conversation_id]


async def test_the_brain_reads_the_sessions_prompt_at_start_and_after_updates(speech: Any, clock: FakeClock) -> None:
    brain = _PreparingBrain()
    async with make_session(speech, clock, brain) as session:
        await clock.settle()
        assert len(brain.prepared) == 1 and brain.prepared[0].items == ()
        tool = {"type": "function", "name": "lookup", "description": "Look a thing up.", "parameters": {}}
        await session.receive(json.dumps({"type": "session.update", "session": {
            "type": "realtime", "instructions": "Be brief.", "tools": [tool]}}))  # fmt: skip
        await clock.settle()
        latest = brain.prepared[-1]
        assert len(brain.prepared) == 2
        assert latest.instructions == "Be brief." and [t["name"] for t in latest.tools] == ["lookup"]
        assert latest.output_modalities == tuple(session.session["output_modalities"])


class _BrokenEndBrain(ScriptedBrain):
    def end(self, conversation: str) -> None:
        raise RuntimeError("lanes gone")


async def test_a_brain_that_fails_to_forget_a_conversation_does_not_stop_the_session_closing(
    speech: Any, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    session = make_session(speech, clock, _BrokenEndBrain([]))
    async with session:
        pass
    assert session.closed

    async def drain() -> None:
        while await session.next_event() is not None:
            pass

    await asyncio.wait_for(drain(), 5)  # the event stream ended: a reader is not left waiting
    assert "could not forget the ended conversation: lanes gone" in caplog.text
