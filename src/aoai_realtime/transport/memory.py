"""An in-process transport pair for tests: what one side sends, the other receives. No sockets.

>>> client_side, server_side = memory_pair()

Both sides are :class:`~aoai_realtime.transport.base.Transport` objects. Queues are bounded (``maxsize``
messages), so a stalled reader pushes back on the writer as a socket would. Closing one side (optionally with a
WebSocket close ``code`` and ``reason``) ends the other side's :meth:`recv` with
:class:`~aoai_realtime.errors.ConnectionClosed` carrying that code, after the messages already queued.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from ..errors import ConnectionClosed
from .base import AudioChannel, Dialect

__all__ = ["MemoryTransport", "memory_pair"]


@dataclass
class _Close:
    code: int
    reason: str


class _Pipe:
    def __init__(self, maxsize: int) -> None:
        self.queue: asyncio.Queue[bytes | _Close] = asyncio.Queue(maxsize)
        self.closed: _Close | None = None


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
        if self._outbox.closed is not None or self._inbox.closed is not None:
            closed = self._outbox.closed or self._inbox.closed
            assert closed is not None
            raise ConnectionClosed(f"connection closed ({closed.code})", code=closed.code, reason=closed.reason)
        self.sent.append(message)
        await self._outbox.queue.put(message)

    async def recv(self) -> bytes:
        if self._inbox.closed is not None and self._inbox.queue.empty():
            c = self._inbox.closed
            raise ConnectionClosed(f"connection closed ({c.code}) {c.reason}".strip(), code=c.code, reason=c.reason)
        item = await self._inbox.queue.get()
        if isinstance(item, _Close):
            # Leave the marker for any other reader, then report the close.
            self._inbox.queue.put_nowait(item)
            raise ConnectionClosed(f"connection closed ({item.code}) {item.reason}".strip(), code=item.code,
                                   reason=item.reason)
        return item

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close both directions; the peer's ``recv`` raises ConnectionClosed(code) after draining."""
        marker = _Close(code, reason)
        for pipe in (self._outbox, self._inbox):
            if pipe.closed is None:
                pipe.closed = marker
                # The marker wakes a reader blocked on an empty queue. A full queue has no such reader, and
                # recv() checks ``closed`` once it has drained: nothing queued is lost either way.
                with contextlib.suppress(asyncio.QueueFull):
                    pipe.queue.put_nowait(marker)


def memory_pair(maxsize: int = 256, *, dialect: Dialect = "ga") -> tuple[MemoryTransport, MemoryTransport]:
    """A connected ``(client_side, server_side)`` pair with bounded queues of ``maxsize`` messages each way."""
    a_to_b, b_to_a = _Pipe(maxsize), _Pipe(maxsize)
    client_side = MemoryTransport(b_to_a, a_to_b, dialect=dialect)
    server_side = MemoryTransport(a_to_b, b_to_a, dialect=dialect)
    client_side.peer, server_side.peer = server_side, client_side
    return client_side, server_side
