"""Async iterators with bounded queues, and a Server-Sent Events relay for browsers.

Iterators: :func:`client_events` (a client's events, filtered), :func:`client_audio` (its assistant audio),
``VoiceAssistant.state_changes()`` / ``transcript_updates()`` / ``subscribe()`` (the assistant's view).

:class:`Channel` is the one queue type: bounded, with an explicit overflow policy, ``close()`` that ends every
iteration cleanly after what is queued, ``fail(exc)`` that raises ``exc`` in the consumer, and
:meth:`Channel.statistics` (the trio pattern). Producers that are callbacks (and cannot wait) use
:meth:`Channel.send_nowait`.

:func:`sse_frames` turns any async iterator of ``(event_name, payload)`` pairs into ``text/event-stream``
frames; :func:`assistant_sse` relays a voice assistant's state and transcript. With FastAPI/Starlette::

    @app.get("/calls/{call_id}/events")
    async def events(call_id: str) -> StreamingResponse:
        return StreamingResponse(assistant_sse(assistants[call_id]), media_type="text/event-stream")
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

from .errors import Busy, ConfigError

__all__ = [
    "Channel",
    "ChannelStatistics",
    "Overflow",
    "assistant_sse",
    "client_audio",
    "client_events",
    "sse_frame",
    "sse_frames",
]

T = TypeVar("T")

Overflow = Literal["block", "drop_oldest", "error"]


@dataclass(frozen=True, slots=True)
class ChannelStatistics:
    queued: int
    maxsize: int
    dropped: int
    closed: bool


class Channel(Generic[T]):
    """A bounded single-consumer queue that is also an async iterator.

    ``overflow`` decides what a full channel does: ``"block"`` (``await send`` waits; ``send_nowait`` raises
    :class:`~aoai_realtime.errors.Busy`), ``"drop_oldest"`` (the oldest item is dropped and counted: right
    for snapshots such as transcripts, where only the latest matters), ``"error"`` (raise ``Busy``).
    """

    def __init__(self, maxsize: int = 256, *, overflow: Overflow = "block") -> None:
        if maxsize < 1:
            raise ConfigError("maxsize must be at least 1", field="maxsize")
        self.maxsize = maxsize
        self.overflow: Overflow = overflow
        self._items: collections.deque[T] = collections.deque()
        self._closed = False
        self._error: BaseException | None = None
        self._dropped = 0
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()

    def statistics(self) -> ChannelStatistics:
        return ChannelStatistics(len(self._items), self.maxsize, self._dropped, self._closed)

    @property
    def closed(self) -> bool:
        return self._closed

    def _update(self) -> None:
        if self._items or self._closed:
            self._readable.set()
        else:
            self._readable.clear()
        if len(self._items) < self.maxsize or self._closed:
            self._writable.set()
        else:
            self._writable.clear()

    def send_nowait(self, item: T) -> None:
        """Queue ``item`` without waiting. Raises ``Busy`` when full (policies ``block``/``error``)."""
        if self._closed:
            return  # the consumer is gone or finished: late items are dropped quietly
        if len(self._items) >= self.maxsize:
            if self.overflow != "drop_oldest":
                raise Busy(f"channel full ({self.maxsize} items): the consumer is not keeping up")
            self._items.popleft()
            self._dropped += 1
        self._items.append(item)
        self._update()

    async def send(self, item: T) -> None:
        """Queue ``item``; with ``overflow="block"`` wait for room."""
        while self.overflow == "block" and not self._closed and len(self._items) >= self.maxsize:
            await self._writable.wait()
        self.send_nowait(item)

    def close(self) -> None:
        """End the stream: the consumer gets what is queued, then ``StopAsyncIteration``. Idempotent."""
        self._closed = True
        self._update()

    def fail(self, exc: BaseException) -> None:
        """End the stream with an error: the consumer gets what is queued, then ``exc`` is raised."""
        if self._error is None and not self._closed:
            self._error = exc
        self.close()

    async def receive(self) -> T:
        """The next item. Raises ``StopAsyncIteration`` at a clean end, or the error given to :meth:`fail`."""
        while not self._items:
            if self._closed:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            await self._readable.wait()
        item = self._items.popleft()
        self._update()
        return item

    def __aiter__(self) -> Channel[T]:
        return self

    async def __anext__(self) -> T:
        return await self.receive()


class _EventSource(Protocol):
    def events(self) -> AsyncIterator[Any]: ...


async def client_events(client: _EventSource, *, types: set[str] | None = None) -> AsyncIterator[Any]:
    """A client's events, optionally only those whose ``type`` is in ``types``. Ends when the client closes;
    raises what the client raises (``SessionExpired``, ``ConnectionClosed``)."""
    async for event in client.events():
        if types is None or getattr(event, "type", None) in types:
            yield event


async def client_audio(client: _EventSource) -> AsyncIterator[tuple[str, bytes]]:
    """The assistant audio a client receives (WebSocket), as ``(item_id, pcm16 24 kHz mono)`` chunks in
    order, e.g. to relay to a phone line or a browser. Bounded by the client's own event queue."""
    import base64

    async for event in client.events():
        if getattr(event, "type", None) == "response.output_audio.delta":
            yield event.item_id, base64.b64decode(event.delta)


def sse_frame(event: str, data: Any, *, event_id: str | None = None) -> bytes:
    """One ``text/event-stream`` frame. ``data`` is JSON-encoded; newlines inside cannot break the frame."""
    body = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"), default=str)
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.extend(f"data: {line}" for line in body.splitlines() or [""])
    return ("\n".join(lines) + "\n\n").encode()


async def sse_frames(
    source: AsyncIterator[tuple[str, Any]],
    *,
    heartbeat: float | None = 15.0,
    retry_ms: int | None = 2000,
) -> AsyncIterator[bytes]:
    """Frames for every ``(event, payload)`` of ``source``; a ``: ping`` comment every ``heartbeat`` seconds of
    silence keeps proxies from closing the stream. Ends when ``source`` ends; an error in ``source`` is sent as
    an ``error`` event, then the stream ends."""
    if retry_ms is not None:
        yield f"retry: {retry_ms}\n\n".encode()
    iterator = source.__aiter__()
    pending: asyncio.Task[tuple[str, Any]] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(iterator.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=heartbeat)
            if not done:
                yield b": ping\n\n"
                continue
            task, pending = pending, None
            try:
                name, payload = task.result()
            except StopAsyncIteration:
                return
            except Exception as exc:  # noqa: BLE001  (boundary: tell the browser, then end the stream)
                yield sse_frame("error", {"type": type(exc).__name__, "message": str(exc)})
                return
            yield sse_frame(name, payload)
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
                await pending


class _Relayable(Protocol):
    def subscribe(self, *, maxsize: int = ...) -> Channel[tuple[str, Any]]: ...
    def unsubscribe(self, channel: Channel[tuple[str, Any]]) -> None: ...


async def assistant_sse(
    assistant: _Relayable, *, heartbeat: float | None = 15.0, maxsize: int = 256
) -> AsyncIterator[bytes]:
    """Relay a :class:`~aoai_realtime.agents.VoiceAssistant`'s ``state``, ``transcript``, ``tools`` and
    ``turn`` updates as SSE frames until it closes. A slow browser loses intermediate snapshots, never the
    latest one (each transcript frame is the whole transcript)."""
    channel = assistant.subscribe(maxsize=maxsize)
    try:
        async for frame in sse_frames(channel, heartbeat=heartbeat):
            yield frame
    finally:
        assistant.unsubscribe(channel)


