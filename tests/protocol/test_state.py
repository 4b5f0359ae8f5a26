"""ConversationState: items in order, responses, audio length, late transcripts in their place."""

from __future__ import annotations

import base64

from aoai_realtime.protocol import events as ev
from aoai_realtime.protocol.state import ConversationState


def _msg(item_id: str, role: str, status: str = "completed") -> ev.Item:
    return ev.Item(id=item_id, type="message", role=role, status=status, content=[])


def test_items_are_ordered_by_previous_item_id_and_late_transcripts_land_in_place() -> None:
    s = ConversationState()
    s.apply(ev.InputAudioBufferCommittedEvent(event_id="1", item_id="u1", previous_item_id=None))
    s.apply(ev.ConversationItemAdded(event_id="2", item=_msg("u1", "user"), previous_item_id=None))
    s.apply(ev.ConversationItemAdded(event_id="3", item=_msg("a1", "assistant"), previous_item_id="u1"))
    s.apply(ev.InputAudioBufferCommittedEvent(event_id="4", item_id="u2", previous_item_id="a1"))
    s.apply(ev.ConversationItemAdded(event_id="5", item=_msg("x0", "system"), previous_item_id="root"))
    s.apply(ev.ConversationItemAdded(event_id="5b", item=_msg("x00", "system"), previous_item_id=None))
    s.apply(ev.ConversationItemAdded(event_id="6", item=_msg("a0", "assistant"), previous_item_id="u1"))
    # the first user transcript arrives after everything else
    s.apply(ev.ConversationItemInputAudioTranscriptionCompletedEvent(
        event_id="7", item_id="u1", content_index=0, transcript="hello", usage={}))
    assert [i.id for i in s.ordered_items()] == ["x00", "x0", "u1", "a0", "a1", "u2"]
    assert s.item("u1") is not None
    assert s.item("u1").transcript == "hello"  # type: ignore[union-attr]
    assert len(s.ordered_items()) == 6  # no duplicate entry for the late transcript


def test_responses_audio_and_truncation() -> None:
    s = ConversationState()
    s.apply(ev.ResponseCreatedEvent(event_id="1", response=ev.Response(id="r1", conversation_id="conv")))
    assert s.active_response_id == "r1"
    s.apply(ev.ResponseCreatedEvent(event_id="2", response=ev.Response(id="oob", conversation_id=None)))
    assert s.active_response_id == "r1"  # out-of-band responses do not hold the conversation
    s.apply(ev.ResponseOutputItemAddedEvent(event_id="3", response_id="r1", output_index=0,
                                            item=_msg("a1", "assistant", "in_progress")))
    for _ in range(3):
        chunk = base64.b64encode(b"\0" * 960).decode()  # 20 ms each
        s.apply(ev.ResponseAudioDeltaEvent(event_id="d", response_id="r1", item_id="a1", output_index=0,
                                           content_index=0, delta=chunk))
    s.apply(ev.ResponseAudioTranscriptDeltaEvent(event_id="t", response_id="r1", item_id="a1", output_index=0,
                                                 content_index=0, delta="Hi there"))
    assert s.audio_ms("a1") == 60
    assert s.responses["r1"].output_item_ids == ["a1"]
    s.apply(ev.ConversationItemTruncatedEvent(event_id="x", item_id="a1", content_index=0, audio_end_ms=25))
    assert s.audio_ms("a1") == 25
    assert s.item("a1").transcript == ""  # type: ignore[union-attr]
    s.apply(ev.ResponseDoneEvent(event_id="z", response=ev.Response(
        id="r1", status="cancelled", status_details={"type": "cancelled", "reason": "turn_detected"},
        output=[_msg("a1", "assistant", "incomplete")])))
    assert s.active_response_id is None
    assert s.responses["r1"].status == "cancelled"
    assert s.item("a1").status == "incomplete"  # type: ignore[union-attr]


def test_function_calls_and_deletes() -> None:
    s = ConversationState()
    call = ev.Item(id="f1", type="function_call", call_id="c1", name="lookup", arguments="", status="in_progress")
    s.apply(ev.ResponseOutputItemAddedEvent(event_id="1", response_id="r", output_index=0, item=call))
    s.apply(ev.ResponseFunctionCallArgumentsDoneEvent(event_id="2", response_id="r", item_id="f1", output_index=0,
                                                      call_id="c1", name="lookup", arguments='{"q": 1}'))
    item = s.item("f1")
    assert item is not None
    assert (item.call_id, item.name, item.arguments) == ("c1", "lookup", '{"q": 1}')
    s.apply(ev.ConversationItemDeletedEvent(event_id="3", item_id="f1"))
    assert s.item("f1") is None
    assert s.ordered_items() == []


def test_audio_length_follows_the_sessions_output_format() -> None:
    # G.711 output: 8 bytes on the wire per millisecond, not 48; barge-in truncates against this length.
    s = ConversationState()
    s.apply(ev.SessionUpdatedEvent(event_id="s", session={"audio": {"output": {"format": {"type": "audio/pcmu"}}}}))
    s.apply(ev.ResponseOutputItemAddedEvent(event_id="1", response_id="r", output_index=0,
                                            item=_msg("a1", "assistant", "in_progress")))
    chunk = base64.b64encode(b"\xff" * 160).decode()  # 20 ms of u-law
    for _ in range(10):
        s.apply(ev.ResponseAudioDeltaEvent(event_id="d", response_id="r", item_id="a1", output_index=0,
                                           content_index=0, delta=chunk))
    assert s.audio_ms("a1") == 200
    s.apply(ev.ConversationItemTruncatedEvent(event_id="t", item_id="a1", content_index=0, audio_end_ms=120))
    assert s.audio_ms("a1") == 120
    s.apply(ev.SessionUpdatedEvent(event_id="s2", session={"output_audio_format": "pcm16"}))  # beta shape
    s.apply(ev.ResponseOutputItemAddedEvent(event_id="2", response_id="r2", output_index=0,
                                            item=_msg("a2", "assistant", "in_progress")))
    s.apply(ev.ResponseAudioDeltaEvent(event_id="d", response_id="r2", item_id="a2", output_index=0,
                                       content_index=0, delta=base64.b64encode(bytes(960)).decode()))
    assert s.audio_ms("a2") == 20 and s.audio_ms("a1") == 120  # each item keeps the format it was made in
