"""A server that sends hostile bytes (issue 13 item 6): the client skips the message with a logged
ProtocolError and goes on; nothing raises RecursionError."""

from __future__ import annotations

import asyncio
import logging

import pytest

from aoai_realtime.client import RealtimeClient
from aoai_realtime.protocol import encode
from aoai_realtime.protocol import events as ev
from aoai_realtime.transport.memory import memory_pair

HOSTILE = [
    b'{"type": "session.updated", "session": {"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
    b"[" * 100_000,
    b'{"type": "response.done", "response": {"usage": {"total_tokens": ' + b"9" * 5000 + b"}}}",
]


async def test_hostile_server_messages_are_skipped_and_the_session_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    client_side, server_side = memory_pair()
    await server_side.send(encode(ev.SessionCreatedEvent(event_id="e0", session={"id": "sess_1", "type": "realtime"})))
    async with RealtimeClient(client_side, reconnect=None) as client:
        with caplog.at_level(logging.WARNING, logger="aoai_realtime.client"):
            waiter = asyncio.ensure_future(client.wait_for("input_audio_buffer.cleared"))
            await asyncio.sleep(0)  # the waiter is registered before anything arrives
            for data in HOSTILE:
                await server_side.send(data)
            await server_side.send(encode(ev.InputAudioBufferClearedEvent(event_id="after")))
            event = await asyncio.wait_for(waiter, 5)
        assert event.event_id == "after"
        skipped = [r for r in caplog.records if "malformed server message" in r.getMessage()]
        assert len(skipped) == len(HOSTILE)
