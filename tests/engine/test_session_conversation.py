"""The engine's conversation: the service's item rules, with order held in the protocol core's one model.

Replaces the old agreement test (the client's ConversationState mirrored against the engine's own list): the
engine's order now *is* a ConversationState fed the conversation events it emits, so these tests check the
behaviour itself, including what a client rebuilds from the events the engine sends.
"""

from __future__ import annotations

import pytest

from aoai_realtime.engine.conversation import Conversation, Entry
from aoai_realtime.engine.errors import RequestRejected
from aoai_realtime.protocol import events as ev
from aoai_realtime.protocol.state import ConversationState


def message(item_id: str, role: str = "user", audio_ms: int = 0) -> Entry:
    kind = "output_audio" if role == "assistant" else "input_text"
    part = {"type": kind, "transcript": "words"} if role == "assistant" else {"type": kind, "text": item_id}
    entry = Entry(wire={"id": item_id, "object": "realtime.item", "type": "message", "role": role,
                        "status": "completed", "content": [part]})  # fmt: skip
    if audio_ms:
        entry.audio[0] = bytearray(audio_ms * 48)
    return entry


def test_items_go_where_the_client_asked_and_the_events_say_so() -> None:
    conv = Conversation()
    client = ConversationState()  # what a client rebuilds from the events the engine emits

    def add(entry: Entry, previous: str | None = None) -> None:
        before = conv.add(entry, previous)
        client.apply(ev.ConversationItemAdded(item=entry.to_item(), previous_item_id=before))

    add(message("a"))
    add(message("b"))
    add(message("c"))
    add(message("root"), "root")
    add(message("mid"), "a")
    conv.delete("b")
    client.apply(ev.ConversationItemDeletedEvent(item_id="b"))
    add(message("end"))
    assert conv.ids() == ["root", "a", "mid", "c", "end"]
    assert [i.id for i in client.ordered_items()] == conv.ids()
    assert [e.id for e in conv.entries()] == conv.ids()
    assert conv.previous_of("mid") == "a" and conv.previous_of("root") is None
    assert len(conv) == 5 and "b" not in conv


def test_unknown_items_are_refused_with_the_services_codes() -> None:
    conv = Conversation()
    conv.add(message("a"))
    cases = [
        (lambda: conv.add(message("x"), "nope"), "item_not_found", "previous_item_id"),
        (lambda: conv.delete("nope"), "item_delete_invalid_item_id", "item_id"),
        (lambda: conv.retrieve("nope"), "item_retrieve_invalid_item_id", "item_id"),
        (lambda: conv.truncate("nope", 0, 0), "item_truncate_invalid_item_id", "item_id"),
        (lambda: conv.truncate("a", 0, 0), "unsupported_content_type", "item_id"),  # a user item
    ]
    for call, code, param in cases:
        with pytest.raises(RequestRejected) as info:
            call()
        assert (info.value.code, info.value.param) == (code, param)
    assert conv.ids() == ["a"]  # nothing refused changed anything


def test_truncation_cuts_the_audio_drops_the_transcript_and_is_bounded_by_the_audio() -> None:
    conv = Conversation()
    conv.add(message("reply", "assistant", audio_ms=500))
    for index, end_ms, code in ((1, 100, "invalid_value"), (0, -1, "integer_below_min_value"),
                                (0, 501, "invalid_value")):  # fmt: skip
        with pytest.raises(RequestRejected) as info:
            conv.truncate("reply", index, end_ms)
        assert info.value.code == code
    conv.truncate("reply", 0, 200)
    entry = conv.retrieve("reply")
    assert len(entry.audio[0]) == 200 * 48 and entry.audio_ms_played == 200
    assert entry.wire["content"][0]["transcript"] == ""
    state = conv.state.item("reply")
    assert state is not None and state.truncated_at_ms == 200 and state.transcript == ""
