"""Call-lifecycle hooks: the app's context reaches the session on both routes, and every call with a sideband
ends with exactly one ``call_ended`` carrying its transcript and tool calls; a hook's failure never leaks.

Integration: the fake upstream (HTTP + sideband WebSocket) runs on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest

from aoai_realtime.server import CallRecord, CallStart
from aoai_realtime.testing.fake_upstream import FakeSideband, FakeUpstream

from .support import OFFER, MakeServer, alice
from .test_calls import fn_done, response_done

pytestmark = pytest.mark.integration

SDP = {"Content-Type": "application/sdp"}


class Hooks:
    def __init__(self, context: str | None = "Earlier visits: none.", fail: Exception | None = None) -> None:
        self.context = context
        self.fail = fail
        self.starts: list[CallStart] = []
        self.records: list[CallRecord] = []
        self.ended = asyncio.Event()

    async def session_context(self, start: CallStart) -> str | None:
        self.starts.append(start)
        return self.context

    async def call_ended(self, record: CallRecord) -> None:
        self.records.append(record)
        self.ended.set()
        if self.fail is not None:
            raise self.fail


async def start_call(client: httpx.AsyncClient) -> httpx.Response:
    return await client.post("/api/realtime/calls?persona=assistant", content=OFFER, headers={**alice(), **SDP})


async def connected(fake: FakeUpstream) -> FakeSideband:
    return await asyncio.wait_for(fake.sideband_connected.get(), 5)


BASE = "You help Alice Moreau, a nurse. Context: works nights."


async def test_token_route_appends_the_apps_context(make_server: MakeServer, fake: FakeUpstream) -> None:
    hooks = Hooks()
    _, client = await make_server(hooks=hooks)
    resp = await client.post("/api/realtime/session", json={"persona": "assistant"}, headers=alice())
    assert resp.status_code == 200
    [sent] = fake.secrets_requests
    assert sent["session"]["instructions"] == BASE + "\n\nEarlier visits: none."
    [start] = hooks.starts
    assert (start.call_id, start.user.id, start.persona.id) == ("", "alice", "assistant")
    assert hooks.records == []  # no sideband on the token route: no call_ended


async def test_no_context_leaves_the_instructions_alone(make_server: MakeServer, fake: FakeUpstream) -> None:
    _, client = await make_server(hooks=Hooks(context=None))
    resp = await client.post("/api/realtime/session", json={"persona": "assistant"}, headers=alice())
    assert resp.status_code == 200
    assert fake.secrets_requests[0]["session"]["instructions"] == BASE


async def test_call_gets_context_and_ends_with_one_record(make_server: MakeServer, fake: FakeUpstream) -> None:
    hooks = Hooks()
    server, client = await make_server(hooks=hooks)
    resp = await start_call(client)
    assert resp.status_code == 201
    sb = await connected(fake)
    minted = fake.minted_session(sb.call_id)
    assert minted["instructions"] == BASE + "\n\nEarlier visits: none."
    # The server's own session (with the context) coming back is not tampering: nothing is re-sent.
    await sb.send({"type": "session.updated", "event_id": "e", "session": minted})
    # A spoken turn whose transcription completes after the assistant's answer started: order is the
    # conversation's, not the arrival's.
    await sb.send({"type": "input_audio_buffer.committed", "event_id": "e1", "item_id": "item_u1",
                   "previous_item_id": None})
    await sb.send({"type": "response.created", "event_id": "e2",
                   "response": {"id": "resp_1", "object": "realtime.response", "status": "in_progress"}})
    await sb.send({"type": "response.output_item.added", "event_id": "e3", "response_id": "resp_1",
                   "output_index": 0, "item": {"id": "item_a1", "type": "message", "role": "assistant"}})
    await sb.send({"type": "conversation.item.input_audio_transcription.completed", "event_id": "e4",
                   "item_id": "item_u1", "content_index": 0, "transcript": "What is my dose?", "usage": {}})
    await sb.send(fn_done("call_1", "lookup", '{"q": "dose"}'))
    await sb.send({"type": "response.output_audio_transcript.done", "event_id": "e5", "response_id": "resp_1",
                   "item_id": "item_a1", "output_index": 0, "content_index": 0, "transcript": "Let me check."})
    await sb.send(response_done())
    sent = await until(sb, "response.create")
    assert [e["type"] for e in sent] == ["conversation.item.create", "response.create"]  # no session.update
    resp = await client.delete(f"/api/realtime/calls/{sb.call_id}", headers=alice())
    assert resp.status_code == 204
    await asyncio.wait_for(hooks.ended.wait(), 5)
    live = server.calls.get(sb.call_id)
    assert live is None or live.task is None or live.task.done()
    [record] = hooks.records
    assert (record.call_id, record.user_id, record.persona_id, record.ended_reason) == (
        sb.call_id, "alice", "assistant", "hangup")
    assert record.started_at <= record.ended_at
    assert [(t.role, t.text) for t in record.turns] == [("user", "What is my dose?"), ("assistant", "Let me check.")]
    [tool] = record.tool_calls
    assert (tool.name, tool.arguments, tool.output, tool.status) == (
        "lookup", '{"q": "dose"}', '{"answer": "found dose"}', "ok")
    assert tool.latency_ms >= 0


async def until(sb: FakeSideband, type_: str) -> list[dict[str, Any]]:
    """Every event the server sent, up to and including the next one of ``type_``."""
    out = [await sb.next()]
    while out[-1]["type"] != type_:
        out.append(await sb.next())
    return out


async def test_a_failing_call_ended_is_logged_redacted_and_never_raised(
    make_server: MakeServer, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    hooks = Hooks(fail=RuntimeError("db password=hunter2 down"))
    _, client = await make_server(hooks=hooks)
    await start_call(client)
    sb = await connected(fake)
    with caplog.at_level(logging.ERROR):
        assert (await client.delete(f"/api/realtime/calls/{sb.call_id}", headers=alice())).status_code == 204
        await asyncio.wait_for(hooks.ended.wait(), 5)  # set just before the raise, logged in the same step
    assert "call_ended hook failed" in caplog.text and "RuntimeError" in caplog.text
    assert "hunter2" not in caplog.text
    assert len(hooks.records) == 1
    assert (await start_call(client)).status_code == 201  # the server still serves


async def test_a_failing_session_context_refuses_cleanly(
    make_server: MakeServer, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(Hooks):
        async def session_context(self, start: CallStart) -> str | None:
            raise RuntimeError("token=abc123secret lost")

    server, client = await make_server(hooks=Broken(), max_calls_per_user=1)
    with caplog.at_level(logging.ERROR):
        resp = await start_call(client)
    assert resp.status_code == 503
    assert resp.json()["error"]["code"] == "context_unavailable"
    assert "abc123secret" not in resp.text and "abc123secret" not in caplog.text
    assert fake.calls == {}
    resp = await client.post("/api/realtime/session", json={"persona": "assistant"}, headers=alice())
    assert resp.status_code == 503
    server.hooks = Hooks()  # the app recovers: the call slot was given back, so the user is not locked out
    assert (await start_call(client)).status_code == 201
