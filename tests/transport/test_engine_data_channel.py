"""The engine serves a WebRTC call's data channel as it serves a WebSocket (issue 12 item 2): client events in
order, one at a time; a handler that fails ends the call and is logged (never an unretrieved task exception); a
client too far ahead has its call ended rather than an event skipped. aiortc's channel is a pyee emitter here, the
session a recorder of what it was given: no sockets, no timing."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from pyee.asyncio import AsyncIOEventEmitter

from aoai_realtime.engine.calls import CallHub
from aoai_realtime.errors import ConnectionClosed


class _Channel(AsyncIOEventEmitter):  # type: ignore[misc]
    readyState = "open"

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []
        self.closed = False

    def send(self, data: str) -> None:
        self.sent.append(data)

    def close(self) -> None:
        self.closed = True


class _Session:
    """Records the messages it handles and how many it was handling at once; ``gate`` holds each one."""

    def __init__(self) -> None:
        self.handled: list[bytes] = []
        self.active = 0
        self.most_active = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail_on: bytes | None = None
        self.closed = False

    async def receive(self, data: bytes) -> None:
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            await self.gate.wait()
            if data == self.fail_on:
                raise RuntimeError("handler bug")
            self.handled.append(data)
        finally:
            self.active -= 1

    async def aclose(self) -> None:
        self.closed = True


class _Peer:
    closed = False

    async def close(self) -> None:
        self.closed = True


class _Engine:
    def __init__(self) -> None:
        self.calls: dict[str, Any] = {}


def _hub() -> tuple[CallHub, _Session, _Peer, _Channel]:
    session, peer, engine, channel = _Session(), _Peer(), _Engine(), _Channel()
    hub = CallHub("rtc_test", engine, peer, session, track=None, recorder=None)  # type: ignore[arg-type]
    engine.calls["rtc_test"] = hub
    hub.on_datachannel(channel)
    return hub, session, peer, channel


async def _until(predicate: Any) -> None:
    """Let ready tasks run until ``predicate`` holds: a bounded number of loop turns, no clock involved."""
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("the awaited state was never reached")


async def test_events_are_handled_in_order_one_at_a_time() -> None:
    hub, session, _, channel = _hub()
    session.gate.clear()
    for n in range(5):
        channel.emit("message", f'{{"n":{n}}}')
    await _until(lambda: session.active == 1)
    session.gate.set()
    await _until(lambda: len(session.handled) == 5)
    assert session.handled == [f'{{"n":{n}}}'.encode() for n in range(5)]
    assert session.most_active == 1
    await hub.end()


async def test_a_failing_handler_ends_the_call_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    hub, session, peer, channel = _hub()
    session.fail_on = b"boom"
    with caplog.at_level(logging.ERROR, logger="aoai_realtime"):
        channel.emit("message", "ok")
        channel.emit("message", "boom")
        await _until(lambda: peer.closed)
    assert session.handled == [b"ok"]
    assert session.closed
    assert "rtc_test" not in hub.engine.calls
    assert "handler bug" in caplog.text and "ending the call" in caplog.text


async def test_a_client_too_far_ahead_has_its_call_closed(caplog: pytest.LogCaptureFixture) -> None:
    hub, session, _, channel = _hub()
    assert hub.data is not None
    hub.data.inbox.maxsize = 3
    session.gate.clear()
    channel.emit("message", "first")
    await _until(lambda: session.active == 1)  # "first" is being handled; three more may wait
    with caplog.at_level(logging.ERROR, logger="aoai_realtime"):
        for n in range(4):
            channel.emit("message", str(n))
    assert channel.closed
    assert "waiting unhandled" in caplog.text
    session.gate.set()
    await _until(lambda: session.active == 0 and len(session.handled) == 4)
    assert session.handled == [b"first", b"0", b"1", b"2"]  # what was accepted is handled, in order
    await hub.end()


class _Sideband:
    """An engine Channel for a sideband socket: ``send`` waits while ``stalled``; ``close`` is recorded."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.open = asyncio.Event()
        self.open.set()
        self.closed: tuple[int, str] | None = None
        self._closing = asyncio.Event()

    async def send(self, message: bytes) -> None:
        await self.open.wait()
        self.sent.append(message)

    async def recv(self) -> bytes:
        await self._closing.wait()
        raise ConnectionClosed("closed", code=1000)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = (code, reason)
        self._closing.set()


async def test_a_sideband_gets_every_event_then_the_end_even_from_a_full_queue() -> None:
    hub, _, _, _ = _hub()
    hub.sideband_queue = 2
    sideband = _Sideband()
    sideband.open.clear()  # a slow socket
    attached = asyncio.ensure_future(hub.attach(sideband))
    await _until(lambda: len(hub._subscribers) == 1)
    hub.fan_out(b"1")
    await _until(lambda: len(next(iter(hub._subscribers))) == 0)  # the socket is sending "1"
    hub.fan_out(b"2")
    hub.fan_out(b"3")  # "1" is in send, "2" and "3" fill the queue
    await hub.end()  # the end takes no slot
    sideband.open.set()
    await attached
    assert sideband.sent == [b"1", b"2", b"3"]
    assert sideband.closed == (1000, "call ended")


async def test_a_sideband_too_far_behind_is_closed_not_left_with_a_hole(caplog: pytest.LogCaptureFixture) -> None:
    hub, _, _, _ = _hub()
    hub.sideband_queue = 2
    sideband = _Sideband()
    sideband.open.clear()
    attached = asyncio.ensure_future(hub.attach(sideband))
    await _until(lambda: len(hub._subscribers) == 1)
    hub.fan_out(b"0")
    await _until(lambda: len(next(iter(hub._subscribers))) == 0)  # the socket is sending "0"
    with caplog.at_level(logging.WARNING, logger="aoai_realtime"):
        for n in range(1, 4):
            hub.fan_out(str(n).encode())
    assert "fell 2 events behind" in caplog.text
    hub.fan_out(b"later")  # no longer a subscriber
    sideband.open.set()
    await attached
    assert sideband.closed == (1008, "too slow")
    assert sideband.sent == [b"0", b"1", b"2"]  # what was accepted arrives, in order; then the close says why
    await hub.end()
