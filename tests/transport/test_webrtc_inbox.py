"""WebRTC events are never dropped silently (issue 12 item 2): a full event queue fails the call loudly, and the end
of the call is delivered after the queued events even when the queue is full. No sockets, no peer connection, no
timing: aiortc's data channel and peer connection are stood in for by pyee emitters, which is how aiortc delivers
them."""

from __future__ import annotations

import asyncio
import logging

import pytest
from pyee.asyncio import AsyncIOEventEmitter

from aoai_realtime.auth import ApiKey
from aoai_realtime.endpoints import Endpoint
from aoai_realtime.errors import ConnectionClosed
from aoai_realtime.transport._inbox import Inbox
from aoai_realtime.transport.webrtc import WebRTCTransport


class _Channel(AsyncIOEventEmitter):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.closed = False

    def close(self) -> None:
        self.closed = True


class _Peer(AsyncIOEventEmitter):  # type: ignore[misc]
    connectionState = "connected"


def _wired(queue_size: int) -> tuple[WebRTCTransport, _Channel]:
    transport = WebRTCTransport(Endpoint.local(), ApiKey("k" * 32), queue_size=queue_size)
    channel = _Channel()
    opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    transport._wire(_Peer(), channel, opened)
    return transport, channel


async def test_the_end_of_the_call_follows_a_full_queue_and_nothing_is_lost() -> None:
    transport, channel = _wired(queue_size=2)
    channel.emit("message", '{"type":"response.output_text.done"}')
    channel.emit("message", '{"type":"response.done"}')  # the queue is now full
    channel.emit("close")
    assert await transport.recv() == b'{"type":"response.output_text.done"}'
    assert await transport.recv() == b'{"type":"response.done"}'
    for _ in range(2):  # and it stays ended for every later reader
        with pytest.raises(ConnectionClosed) as closed:
            await transport.recv()
        assert closed.value.code == 1006


async def test_a_reader_too_far_behind_fails_the_call_loudly(caplog: pytest.LogCaptureFixture) -> None:
    transport, channel = _wired(queue_size=2)
    with caplog.at_level(logging.ERROR, logger="aoai_realtime"):
        for n in range(3):
            channel.emit("message", f'{{"n":{n}}}')
    assert channel.closed  # the call is ended, not left running with a hole in it
    assert "waiting unread" in caplog.text
    assert [await transport.recv(), await transport.recv()] == [b'{"n":0}', b'{"n":1}']
    with pytest.raises(ConnectionClosed) as failed:
        await transport.recv()
    assert failed.value.code == 1008
    assert "queue_size" in str(failed.value)  # names the fix


async def test_a_reader_blocked_on_an_empty_queue_wakes_on_the_end() -> None:
    transport, channel = _wired(queue_size=4)
    reader = asyncio.ensure_future(transport.recv())
    await asyncio.sleep(0)
    assert not reader.done()
    channel.emit("close")
    with pytest.raises(ConnectionClosed):
        await reader


async def test_a_failed_peer_connection_ends_the_events() -> None:
    transport = WebRTCTransport(Endpoint.local(), ApiKey("k" * 32), queue_size=4)
    peer, channel = _Peer(), _Channel()
    transport._wire(peer, channel, asyncio.get_running_loop().create_future())
    channel.emit("message", "last")
    peer.connectionState = "failed"
    peer.emit("connectionstatechange")  # aiortc runs the async handler as a task
    assert await transport.recv() == b"last"
    with pytest.raises(ConnectionClosed, match="failed"):
        await transport.recv()


async def test_inbox_refuses_after_the_end_and_counts_it() -> None:
    inbox = Inbox(1)
    assert inbox.put(b"a")
    assert not inbox.put(b"b")  # full: the caller must fail the connection
    inbox.end(ConnectionClosed("gone", code=1000))
    inbox.end(ConnectionClosed("later", code=1006))  # the first end wins
    assert not inbox.put(b"c")
    assert inbox.refused == 1
    assert await inbox.get() == b"a"
    with pytest.raises(ConnectionClosed, match="gone"):
        await inbox.get()
    with pytest.raises(ValueError, match="at least one"):
        Inbox(0)


class _BrokenTrack:
    kind = "audio"

    async def recv(self) -> None:
        raise RuntimeError("decoder fault")


async def test_a_failure_reading_the_incoming_audio_ends_the_call_loudly(caplog: pytest.LogCaptureFixture) -> None:
    transport = WebRTCTransport(Endpoint.local(), ApiKey("k" * 32), queue_size=4)
    peer, channel = _Peer(), _Channel()
    transport._wire(peer, channel, asyncio.get_running_loop().create_future())
    channel.emit("message", "before")
    with caplog.at_level(logging.ERROR, logger="aoai_realtime"):
        peer.emit("track", _BrokenTrack())
        assert await transport.recv() == b"before"
        with pytest.raises(ConnectionClosed, match="decoder fault") as failed:
            await transport.recv()
    assert failed.value.code == 1011
    assert channel.closed and "incoming audio failed" in caplog.text
