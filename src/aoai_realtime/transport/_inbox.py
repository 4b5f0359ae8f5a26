"""A bounded inbox for messages pushed by a callback (aiortc's data-channel ``message`` event) and pulled by
``await recv()``, whose end can never be lost.

aiortc hands each data-channel message to a synchronous callback: there is no way to make the far side wait, so
the inbox cannot push back. When it is full it does not drop the message: it *fails* (:meth:`Inbox.put` returns
``False`` and the inbox ends with the error the caller gives), so the reader learns that the connection is broken
instead of missing an event (a ``response.done``, say) and waiting for ever. The end of the stream is held beside
the queue, not in it, so it takes no slot: a full inbox still ends, after the reader has drained what it holds.
"""

from __future__ import annotations

import asyncio
from collections import deque

from ..errors import ConnectionClosed

__all__ = ["Inbox"]


class Inbox:
    """Up to ``maxsize`` messages, then the end (a :class:`ConnectionClosed`) once :meth:`end` is called."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("an inbox holds at least one message")
        self.maxsize = maxsize
        self._items: deque[bytes] = deque()
        self._end: ConnectionClosed | None = None
        self._ready = asyncio.Event()
        self.refused = 0  # messages that arrived after the end (the reader never sees them)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def ended(self) -> ConnectionClosed | None:
        """The error :meth:`get` raises once the queued messages are read, or ``None`` while open."""
        return self._end

    def put(self, message: bytes) -> bool:
        """Queue ``message``. ``False`` when the inbox has ended or is full: the caller must then fail the
        connection (call :meth:`end` with the reason); the message was not queued."""
        if self._end is not None:
            self.refused += 1
            return False
        if len(self._items) >= self.maxsize:
            return False
        self._items.append(message)
        self._ready.set()
        return True

    def end(self, error: ConnectionClosed) -> None:
        """End the stream: :meth:`get` returns what is queued, then raises ``error``. The first end wins."""
        if self._end is None:
            self._end = error
        self._ready.set()

    async def get(self) -> bytes:
        """The next message, in order; raises the end error (every time) once the queue is empty and ended."""
        while True:
            if self._items:
                message = self._items.popleft()
                if not self._items and self._end is None:
                    self._ready.clear()
                return message
            if self._end is not None:
                raise self._end
            self._ready.clear()
            await self._ready.wait()
