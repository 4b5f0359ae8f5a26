"""An in-process transport pair for tests: what one side sends, the other receives. No sockets.

>>> client_side, server_side = memory_pair()

Both sides are :class:`~aoai_realtime.transport.base.Transport` objects. Queues are bounded (``maxsize``
messages), so a stalled reader pushes back on the writer as a socket would. Closing one side (optionally with a
WebSocket close ``code`` and ``reason``) ends the other side's :meth:`recv` with
:class:`~aoai_realtime.errors.ConnectionClosed` carrying that code, after the messages already queued; a writer
waiting for room in a closed pipe gets that error too, instead of waiting for ever.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from ..errors import ConnectionClosed
from .base import AudioChannel, Dialect

__all__ = ["MemoryTransport", "memory_pair"]


@dataclass
class _Close:
    code: int
    reason: str


    def error(self) -> ConnectionClosed:
        return ConnectionClosed(f"connection closed ({self.code}) {self.reason}".strip(), code=self.code,
                                reason=self.reason)


class _Pipe:
    """One direction: up to ``maxsize`` messages; the close is held beside them (it takes no slot)."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.items: deque[bytes] = deque()
        self.closed: _Close | None = None
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()

    async def put(self, message: bytes) -> None:
        while self.closed is None and len(self.items) >= self.maxsize:
            self._writable.clear()
            await self._writable.wait()
        if self.closed is not None:
            raise self.closed.error()
        self.items.append(message)
        self._readable.set()

    async def get(self) -> bytes:
        while not self.items:
            if self.closed is not None:
                raise self.closed.error()
            self._readable.clear()
            await self._readable.wait()
        self._writable.set()
        return self.items.popleft()

    def close(self, marker: _Close) -> None:
        if self.closed is None:
            self.closed = marker
        self._readable.set()  # wakes a reader on an empty pipe and a writer waiting for room
        self._writable.set()


class MemoryTransport:
    """One end of an in-memory pair. ``connect()`` after ``close()`` is refused unless ``reconnectable``."""

    def __init__(self, inbox: _Pipe, outbox: _Pipe, *, dialect: Dialect = "ga") -> None:
        self._inbox = inbox
        self._outbox = outbox
        self.dialect: Dialect = dialect
        self.connects = 0
        self.sent: list[bytes] = []  # everything this side sent, for assertions
        self.peer: MemoryTransport | None = None

    @property
    def audio(self) -> AudioChannel | None:
        return None

    @property
    def closed(self) -> bool:
        return self._outbox.closed is not None or self._inbox.closed is not None

    async def connect(self) -> None:
        if self.closed:
            raise ConnectionClosed("in-memory transport is closed and cannot be reopened", code=1006)
        self.connects += 1

    async def send(self, message: bytes) -> None:
        closed = self._outbox.closed or self._inbox.closed
        if closed is not None:
            raise closed.error()
        await self._outbox.put(message)
        self.sent.append(message)

    async def recv(self) -> bytes:
        return await self._inbox.get()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close both directions; the peer's ``recv`` raises ConnectionClosed(code) after draining."""
        marker = _Close(code, reason)
        for pipe in (self._outbox, self._inbox):
            pipe.close(marker)


def memory_pair(maxsize: int = 256, *, dialect: Dialect = "ga") -> tuple[MemoryTransport, MemoryTransport]:
    """A connected ``(client_side, server_side)`` pair with bounded queues of ``maxsize`` messages each way."""
    a_to_b, b_to_a = _Pipe(maxsize), _Pipe(maxsize)
    client_side = MemoryTransport(b_to_a, a_to_b, dialect=dialect)
    server_side = MemoryTransport(a_to_b, b_to_a, dialect=dialect)
    client_side.peer, server_side.peer = server_side, client_side
    return client_side, server_side
