"""A scripted Realtime server over in-memory transports, for client tests with no sockets.

``Dialer`` is a transport that opens a fresh in-memory pair on every ``connect`` and serves it with a
``FakeServer``, so reconnects can be tested; ``drop(code)`` closes the current connection from the server side.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from aoai_realtime.errors import AuthenticationError, ConnectError
from aoai_realtime.protocol import codec
from aoai_realtime.protocol import events as ev
from aoai_realtime.transport.memory import MemoryTransport, memory_pair


class FakeServer:
    def __init__(self, *, reject_param: str | None = None, greet: bool = True) -> None:
        self.reject_param = reject_param
        self.greet = greet
        self.received: list[ev.ClientEvent | ev.UnknownEvent] = []
        self.sessions_created = 0
        self._n = 0

    def _id(self) -> str:
        self._n += 1
        return f"event_{self._n}"

    async def serve(self, conn: MemoryTransport) -> None:
        session: dict[str, Any] = {"type": "realtime", "id": f"sess_{self.sessions_created}", "model": "m",
                                   "instructions": "default", "audio": {"output": {"voice": "alloy"}}}
        if self.greet:
            self.sessions_created += 1
            await conn.send(codec.encode(ev.SessionCreatedEvent(event_id=self._id(), session=copy.deepcopy(session))))
        while True:
            try:
                event = codec.decode_client_event(await conn.recv())
            except Exception:
                return
            self.received.append(event)
            if isinstance(event, ev.SessionUpdateEvent):
                if self.reject_param:
                    err = ev.ErrorDetails(type="invalid_request_error", code="unknown_parameter",
                                          message=f"Unknown parameter: '{self.reject_param}'.",
                                          param=self.reject_param, event_id=event.event_id or None)
                    await conn.send(codec.encode(ev.RealtimeErrorEvent(event_id=self._id(), error=err)))
                    continue
                _merge(session, event.session)
                await conn.send(codec.encode(ev.SessionUpdatedEvent(event_id=self._id(),
                                                                     session=copy.deepcopy(session))))

    async def push(self, conn: MemoryTransport, event: ev.ServerEvent) -> None:
        await conn.send(codec.encode(event))


def _merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = v


class Dialer:
    """A reconnectable in-memory transport backed by ``FakeServer``."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.dialect: Any = "ga"
        self.connects = 0
        self.closes = 0
        self.fail_next: list[Exception] = []
        self.conn: MemoryTransport | None = None
        self.server_side: MemoryTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def audio(self) -> None:
        return None

    async def connect(self) -> None:
        self.connects += 1
        if self.fail_next:
            raise self.fail_next.pop(0)
        self.conn, self.server_side = memory_pair(64)
        task = asyncio.create_task(self.server.serve(self.server_side))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def send(self, message: bytes) -> None:
        assert self.conn is not None
        await self.conn.send(message)

    async def recv(self) -> bytes:
        assert self.conn is not None
        return await self.conn.recv()

    async def close(self) -> None:
        self.closes += 1
        if self.conn is not None:
            await self.conn.close()

    async def drop(self, code: int = 1006, reason: str = "") -> None:
        assert self.server_side is not None
        await self.server_side.close(code, reason)

    async def push(self, event: ev.ServerEvent | bytes) -> None:
        assert self.server_side is not None
        await self.server_side.send(event if isinstance(event, bytes) else codec.encode(event))


__all__ = ["AuthenticationError", "ConnectError", "Dialer", "FakeServer"]
