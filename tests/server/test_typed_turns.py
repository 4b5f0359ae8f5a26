"""A message the user types in the browser gets its reply from the server's one response arbiter (the sideband),
never from a ``response.create`` of the page: one reply per typed message, never over an active response.

Integration: the fake upstream (HTTP + sideband WebSocket) runs on 127.0.0.1. The sideband handles events in the
order they arrive, so "nothing was sent before X" is shown by X's own answer coming first, not by waiting."""

from __future__ import annotations

from typing import Any

import pytest

from aoai_realtime.testing.fake_upstream import FakeSideband, FakeUpstream

from .support import MakeServer
from .test_calls import connected, response_done, start_call

pytestmark = pytest.mark.integration


def typed(item_id: str, text: str = "What is on my list?", kind: str = "conversation.item.added") -> dict[str, Any]:
    content = [{"type": "input_text", "text": text}]
    item = {"id": item_id, "type": "message", "role": "user", "content": content}
    return {"type": kind, "event_id": f"ev_{item_id}", "previous_item_id": None, "item": item}


def spoken(item_id: str) -> dict[str, Any]:
    item = {"id": item_id, "type": "message", "role": "user", "content": [{"type": "input_audio"}]}
    return {"type": "conversation.item.added", "event_id": "ev_a", "previous_item_id": None, "item": item}


def created(response_id: str) -> dict[str, Any]:
    response = {"id": response_id, "object": "realtime.response", "status": "in_progress"}
    return {"type": "response.created", "event_id": f"ev_{response_id}", "response": response}


async def probe(sb: FakeSideband) -> dict[str, Any]:
    """A changed session: the sideband answers it with a session.update. Returns the next event the server sent,
    which is that update unless something was sent before it."""
    await sb.send({"type": "session.updated", "event_id": "ev_p", "session": {"instructions": "changed by the page"}})
    return await sb.next()


async def test_a_typed_message_gets_exactly_one_response_create(make_server: MakeServer, fake: FakeUpstream) -> None:
    _, client = await make_server()
    await start_call(client)
    sb = await connected(fake)
    await sb.send(typed("item_t1"))
    assert (await sb.next())["type"] == "response.create"
    # The same item seen again (GA .added then .done, beta .created) asks for nothing more.
    await sb.send(typed("item_t1", kind="conversation.item.created"))
    await sb.send(created("resp_1"))
    await sb.send(response_done("resp_1"))
    assert (await probe(sb))["type"] == "session.update"


async def test_a_message_typed_during_a_response_is_answered_after_it(
    make_server: MakeServer, fake: FakeUpstream
) -> None:
    _, client = await make_server()
    await start_call(client)
    sb = await connected(fake)
    await sb.send(created("resp_vad"))  # the assistant is answering something the user said
    await sb.send(typed("item_t1"))
    await sb.send(typed("item_t2", "And one more thing."))
    assert (await probe(sb))["type"] == "session.update"  # no response.create over the active response
    await sb.send(response_done("resp_vad"))
    assert (await sb.next())["type"] == "response.create"  # one reply for both messages, once the first ended
    await sb.send(created("resp_2"))
    await sb.send(response_done("resp_2"))
    assert (await probe(sb))["type"] == "session.update"


async def test_spoken_turns_are_left_to_turn_detection(make_server: MakeServer, fake: FakeUpstream) -> None:
    _, client = await make_server()
    await start_call(client)
    sb = await connected(fake)
    await sb.send(spoken("item_a1"))  # the service's VAD creates the reply to speech itself
    assert (await probe(sb))["type"] == "session.update"
