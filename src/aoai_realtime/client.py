"""``RealtimeClient``: the low-level client. Typed events in and out over any transport.

::

    async with RealtimeClient(WebSocketTransport(endpoint, ApiKey(key)), session=SessionConfig(...)) as client:
        await client.create_response()
        async for event in client.events():
            ...

What it guarantees (the TypeScript SDK this project is modelled on did none of these):

- the session config is sent and *confirmed*: ``connect`` waits for ``session.created``, sends the session, and
  waits for ``session.updated``; a rejected config raises :class:`~aoai_realtime.errors.ServerError` naming
  the field (``param``), and invalid values never get that far (:class:`~aoai_realtime.protocol.session.SessionConfig`);
- both GA and preview event names arrive as the GA types (the decoder maps them);
- a dropped connection is reconnected with exponential backoff and jitter (never after 401/403), the session
  config re-sent, and ``on`` handlers kept: they belong to the client, not to one connection;
- a failed connect closes everything it opened; ``close()`` is idempotent and the client can connect again;
- one malformed message is logged and skipped, never the end of the receive loop;
- session expiry (``session_expired``, close 1001) ends :meth:`events` with :class:`SessionExpired`;
- nothing is sent to a session that is not open (connecting, reconnecting, closed): :meth:`send` raises
  :class:`~aoai_realtime.errors.ConnectionClosed` instead.

The protocol itself (the lifecycle table, the one handshake for connect and reconnect, the conversation and the
effective session) is the sans-I/O :class:`~aoai_realtime.protocol.connection.ClientConnection`; this class is
its asyncio driver: transport I/O, timeouts, backoff, and the fan-out to handlers, waiters and iterators.

Each :meth:`events` iterator has its own bounded queue (``queue_size`` events). A consumer that falls that far
behind is cut off with :class:`~aoai_realtime.errors.Busy` rather than stalling the session for every other
consumer and handler; nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar, overload

import msgspec

from .errors import (
    AuthenticationError,
    Busy,
    ConfigError,
    ConnectError,
    ConnectionClosed,
    ProtocolError,
    ServerError,
    TransportError,
    get_logger,
)
from .protocol import events as ev
from .protocol.connection import ClientConnection, ClientState, LocalProtocolError, config_rejected
from .protocol.session import SessionConfig
from .protocol.state import ConversationState
from .transport.base import Transport

__all__ = ["Handler", "RealtimeClient", "ReconnectPolicy", "Reconnected"]

log = get_logger(__name__)

E = TypeVar("E", bound=ev.ServerEvent)
AnyServerEvent = ev.ServerEvent | ev.UnknownEvent
Handler = Callable[[Any], Awaitable[None] | None]


@dataclass(frozen=True, kw_only=True)
class ReconnectPolicy:
    """Exponential backoff with full jitter: attempt *n* waits ``uniform(0, min(max_delay, base * 2**n))``."""

    max_attempts: int = 6
    base_delay: float = 0.25
    max_delay: float = 8.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.0, min(self.max_delay, self.base_delay * (2**attempt)))


@dataclass(frozen=True)
class Reconnected:
    """Local notification (not a wire event): the transport dropped and a new session took over.

    It is announced once the new session has the session config (its ``session.updated`` comes first). The
    service keeps the conversation per session, so the new session starts empty: re-seed context if needed.
    """

    attempt: int
    type: str = "client.reconnected"


_END = object()
_OVERFLOW = object()


class _Fanout:
    """Where received events go: ``on`` handlers, ``wait_for`` waiters and ``events()`` queues, in that order."""

    def __init__(self) -> None:
        self.handlers: dict[str, list[Handler]] = {}
        self.subscribers: set[asyncio.Queue[Any]] = set()
        self.waiters: list[tuple[str, Callable[[Any], bool] | None, asyncio.Future[Any]]] = []
        self.handler_tasks: set[asyncio.Task[None]] = set()

    def dispatch(self, event: AnyServerEvent | Reconnected) -> None:
        type_ = event.type
        for handler in (*self.handlers.get(type_, ()), *self.handlers.get("*", ())):
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    task = asyncio.ensure_future(result)
                    self.handler_tasks.add(task)
                    task.add_done_callback(self._handler_done)
            except Exception:  # boundary: a user's handler must not break the session
                log.exception("handler for %s raised", type_)
        if self.waiters:
            still = []
            for waiter in self.waiters:
                wtype, predicate, fut = waiter
                if fut.done():
                    continue
                if wtype == type_ and (predicate is None or predicate(event)):
                    fut.set_result(event)
                else:
                    still.append(waiter)
            self.waiters = still
        for queue in list(self.subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                # One consumer that stopped reading must not stall the session for everyone: it is cut
                # off with an error it will see, the others go on.
                self.subscribers.discard(queue)
                _push_end(queue, _OVERFLOW)

    def _handler_done(self, task: asyncio.Task[None]) -> None:
        self.handler_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("async handler raised", exc_info=task.exception())

    async def cancel_handlers(self) -> None:
        pending = [t for t in self.handler_tasks if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    def expect(
        self, event_type: str, predicate: Callable[[Any], bool] | None, failure: BaseException | None
    ) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if failure is not None:
            fut.set_exception(failure)
        else:
            self.waiters.append((event_type, predicate, fut))
        return fut

    def drop_waiter(self, fut: asyncio.Future[Any]) -> None:
        self.waiters = [w for w in self.waiters if w[2] is not fut]

    def end_all(self, exc: BaseException) -> None:
        """End every iterator (each sees the client's failure, if any) and fail every waiter with ``exc``."""
        for queue in list(self.subscribers):
            _push_end(queue, _END)
        for _, _, fut in self.waiters:
            if not fut.done():
                fut.set_exception(exc)
        self.waiters.clear()


def _push_end(queue: asyncio.Queue[Any], marker: object) -> None:
    # The marker must get through even to a full queue: drop the oldest queued event to make room.
    while True:
        try:
            queue.put_nowait(marker)
            return
        except asyncio.QueueFull:
            queue.get_nowait()


class RealtimeClient:
    """A Realtime session over an injected transport: a thin asyncio driver of the sans-I/O
    :class:`~aoai_realtime.protocol.connection.ClientConnection`, which holds the lifecycle, the handshake, the
    conversation and the effective session. See the module docstring."""

    def __init__(
        self,
        transport: Transport,
        *,
        session: SessionConfig | Mapping[str, Any] | None = None,
        reconnect: ReconnectPolicy | None = ReconnectPolicy(),
        connect_timeout: float = 15.0,
        queue_size: int = 1024,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if queue_size < 1:
            raise ConfigError("queue_size must be at least 1", field="queue_size")
        self.transport = transport
        self._reconnect = reconnect
        self._connect_timeout = connect_timeout
        self._queue_size = queue_size
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._conn = ClientConnection(dialect=transport.dialect, config=session,
                                      new_event_id=lambda: f"evt_session_{self._rng.getrandbits(48):012x}")  # fmt: skip
        self._fanout = _Fanout()
        self._reader: asyncio.Task[None] | None = None

    @property
    def state(self) -> ClientState:
        """Where the connection is in its lifecycle (``protocol.connection.CLIENT_TRANSITIONS``)."""
        return self._conn.state

    @property
    def conversation(self) -> ConversationState:
        """The conversation of the current session, rebuilt from its events (empty again after a reconnect)."""
        return self._conn.conversation

    @property
    def session(self) -> dict[str, Any]:
        """The effective session, as the service last reported it (``session.created/updated``)."""
        return self._conn.session

    # -- lifecycle ------------------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self._conn.state is ClientState.OPEN

    async def connect(self) -> None:
        """Connect, wait for ``session.created``, send the session config and wait for ``session.updated``.

        On any failure everything opened is closed again and the error is raised (ConnectError,
        AuthenticationError, ServerError for a rejected config, a timeout as ConnectError).
        """
        if self.connected:
            return
        self._conn.dialect = self.transport.dialect
        self._conn.connect()
        try:
            await self._handshake()
        except BaseException as exc:
            self._conn.fail(exc)
            await self._teardown(closing=False)
            raise
        self._reader = asyncio.create_task(self._read_loop(), name="realtime-reader")

    async def _handshake(self) -> None:
        """The one handshake, for a connect and for every reconnect: open the transport, then feed the core
        until it says the session is open (it has its config), sending what the core asks to send."""
        conn = self._conn
        await self.transport.connect()
        conn.connection_made()
        try:
            async with asyncio.timeout(self._connect_timeout):
                while conn.state is not ClientState.OPEN:
                    try:
                        event = conn.receive_data(await self.transport.recv())
                    except ProtocolError as exc:
                        log.warning("skipping a malformed server message: %s", exc)
                        continue
                    for data in conn.data_to_send():
                        await self.transport.send(data)
                    await self._dispatch(event)
                    if conn.state is ClientState.FAILED and conn.failure is not None:
                        raise conn.failure
        except TimeoutError as exc:
            raise ConnectError(
                f"no {conn.awaiting} within {self._connect_timeout:g} s of connecting; is this a Realtime endpoint?"
            ) from exc
        except ConnectionClosed as closed:
            raise ConnectError(f"connection ended during setup: {closed}") from closed

    async def close(self) -> None:
        """Close the connection and end every :meth:`events` iterator. Idempotent; handlers are kept."""
        self._conn.close()
        await self._teardown(closing=True)

    async def _teardown(self, *, closing: bool) -> None:
        reader, self._reader = self._reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
        with contextlib.suppress(Exception):
            await self.transport.close()
        if closing:
            await self._fanout.cancel_handlers()  # async handlers still running do not outlive close()
            self._end_all(ConnectionClosed("client closed", code=1000))

    # -- receiving ------------------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        try:
            while True:
                try:
                    raw = await self.transport.recv()
                except ConnectionClosed as closed:
                    if await self._on_connection_lost(closed):
                        continue
                    return
                try:
                    event = self._conn.receive_data(raw)
                except ProtocolError as exc:
                    log.warning("skipping a malformed server message: %s", exc)
                    continue
                await self._dispatch(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # boundary: the reader must not die silently
            log.exception("realtime receive loop failed")
            self._fail(exc)

    async def _on_connection_lost(self, closed: ConnectionClosed) -> bool:
        """Reconnect if the core says so; return True when a new session took over."""
        policy = self._reconnect
        state = self._conn.connection_lost(closed.code, closed.reason, may_retry=policy is not None, error=closed)
        if state is ClientState.CLOSED:
            return False
        if state is not ClientState.RECONNECTING or policy is None:
            self._end_all(self._conn.failure or closed)
            return False
        for attempt in range(policy.max_attempts):
            await self._sleep(policy.delay(attempt, self._rng))
            if self._conn.state is ClientState.CLOSED:
                return False
            with contextlib.suppress(Exception):
                await self.transport.close()
            try:
                await self._handshake()
            except (AuthenticationError, ServerError) as exc:  # retrying cannot help: a revoked key, a refused config
                self._fail(exc)
                return False
            except (TransportError, ProtocolError, TimeoutError) as exc:
                log.warning("reconnect attempt %d failed: %s", attempt + 1, exc)
                self._conn.connection_lost(None, str(exc), may_retry=True)
                continue
            await self._dispatch(Reconnected(attempt=attempt + 1))
            return True
        self._fail(ConnectionClosed(f"connection lost and {policy.max_attempts} reconnect attempts failed",
                                    code=closed.code, reason=closed.reason))
        return False

    def _fail(self, exc: BaseException) -> None:
        self._conn.fail(exc)
        self._end_all(self._conn.failure or exc)

    def _end_all(self, exc: BaseException) -> None:
        self._fanout.end_all(exc)

    async def _dispatch(self, event: AnyServerEvent | Reconnected) -> None:
        self._fanout.dispatch(event)

    # -- public receiving API -------------------------------------------------------------------------------

    def on(self, event_type: str, handler: Handler) -> Handler:
        """Call ``handler(event)`` for every event of ``event_type`` (``"*"``: all). Survives reconnects.

        Async handlers run as tasks the client keeps until they finish. Returns the handler (decorator use).
        """
        self._fanout.handlers.setdefault(event_type, []).append(handler)
        return handler

    def off(self, event_type: str, handler: Handler) -> None:
        """Remove a handler added with :meth:`on`. Removing one that is not there does nothing."""
        handlers = self._fanout.handlers.get(event_type, [])
        with contextlib.suppress(ValueError):
            handlers.remove(handler)

    async def events(self) -> AsyncIterator[AnyServerEvent | Reconnected]:
        """Every event from now on, in order. Ends when the client closes; raises if the connection is lost.

        Raises :class:`SessionExpired` at the session's maximum duration, :class:`ConnectionClosed` when the
        connection dropped and could not be re-established, :class:`Busy` when this iterator fell
        ``queue_size`` events behind.
        """
        queue: asyncio.Queue[Any] = asyncio.Queue(self._queue_size)
        self._fanout.subscribers.add(queue)
        try:
            while True:
                failure = self._conn.failure
                if failure is not None and queue.empty():
                    raise failure
                item = await queue.get()
                if item is _OVERFLOW:
                    raise Busy(
                        f"this events() iterator fell {self._queue_size} events behind and was cut off so the "
                        "session could go on; read events faster, or raise queue_size"
                    )
                if item is _END:
                    failure = self._conn.failure
                    if failure is not None and self._conn.state is not ClientState.CLOSED:
                        raise failure
                    return
                yield item
        finally:
            self._fanout.subscribers.discard(queue)

    @overload
    async def wait_for(
        self, event_type: type[E], predicate: Callable[[E], bool] | None = None, *, timeout: float | None = 30.0
    ) -> E: ...

    @overload
    async def wait_for(
        self, event_type: str, predicate: Callable[[Any], bool] | None = None, *, timeout: float | None = 30.0
    ) -> Any: ...

    async def wait_for(
        self,
        event_type: str | type[ev.ServerEvent],
        predicate: Callable[[Any], bool] | None = None,
        *,
        timeout: float | None = 30.0,
    ) -> Any:
        """The next event of ``event_type`` (a wire name or an event class) matching ``predicate``."""
        name = event_type if isinstance(event_type, str) else event_type.TYPE
        fut = self._expect(name, predicate)
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._drop_waiter(fut)

    def _expect(self, event_type: str, predicate: Callable[[Any], bool] | None = None) -> asyncio.Future[Any]:
        return self._fanout.expect(event_type, predicate, self._conn.failure)

    def _drop_waiter(self, fut: asyncio.Future[Any]) -> None:
        self._fanout.drop_waiter(fut)

    # -- sending --------------------------------------------------------------------------------------------

    async def send(self, event: ev.ClientEvent) -> None:
        """Send one client event. Raises ConnectionClosed when the session is not open (not connected yet,
        reconnecting, closed or failed)."""
        failure = self._conn.failure
        if failure is not None:
            raise ConnectionClosed(f"not connected: {failure}") from failure
        try:
            data = self._conn.send(event)
        except LocalProtocolError as exc:
            raise ConnectionClosed(f"not connected: {exc}") from exc
        await self.transport.send(data)

    async def update_session(self, session: SessionConfig | Mapping[str, Any]) -> dict[str, Any]:
        """Send a partial session update and wait until the service confirms it; returns the effective session.

        The update is remembered and re-sent after a reconnect. A rejection raises ServerError naming ``param``.
        """
        payload = session.to_wire(self._conn.dialect) if isinstance(session, SessionConfig) else dict(session)
        event_id = self._conn.new_event_id()
        updated = self._expect("session.updated")
        rejected = self._expect("error", lambda e: e.error.event_id == event_id)
        try:
            await self.send(ev.SessionUpdateEvent(session=payload, event_id=event_id))
            done, _ = await asyncio.wait({updated, rejected}, timeout=self._connect_timeout,
                                         return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            if rejected in done:
                raise config_rejected("the service", rejected.result().error, event_id)
            if not done:
                raise ConnectError(f"no session.updated within {self._connect_timeout:g} s after session.update")
            result: dict[str, Any] = updated.result().session
            self._conn.remember_update(payload)
            return result
        finally:
            for fut in (updated, rejected):
                if not fut.done():
                    fut.cancel()
                self._drop_waiter(fut)

    async def append_audio(self, pcm: bytes) -> None:
        """Append audio to the input buffer (``input_audio_buffer.append``) in the session's input format:
        pcm16 mono 24 kHz by default, G.711 bytes for ``audio/pcmu``/``audio/pcma`` (see ``audio.g711``)."""
        await self.send(ev.InputAudioBufferAppendEvent(audio=base64.b64encode(pcm).decode("ascii")))

    async def commit_audio(self) -> None:
        await self.send(ev.InputAudioBufferCommitEvent())

    async def clear_audio(self) -> None:
        await self.send(ev.InputAudioBufferClearEvent())

    async def create_response(self, **response: Any) -> None:
        """``response.create``; keyword arguments become the ``response`` object (instructions, metadata, ...)."""
        if response:
            await self.send(ev.ResponseCreateEvent(response=response))
        else:
            await self.send(ev.ResponseCreateEvent())

    async def cancel_response(self, response_id: str | None = None) -> None:
        if response_id is None:
            await self.send(ev.ResponseCancelEvent())
        else:
            await self.send(ev.ResponseCancelEvent(response_id=response_id))

    async def truncate(self, item_id: str, audio_end_ms: int, content_index: int = 0) -> None:
        """``conversation.item.truncate``: the user heard ``audio_end_ms`` of this assistant item."""
        if audio_end_ms < 0:
            raise ConfigError(f"audio_end_ms must be >= 0, got {audio_end_ms}", field="audio_end_ms")
        await self.send(
            ev.ConversationItemTruncateEvent(item_id=item_id, content_index=content_index, audio_end_ms=audio_end_ms)
        )

    async def create_item(self, item: ev.Item | Mapping[str, Any], previous_item_id: str | None = None) -> None:
        value = item if isinstance(item, ev.Item) else msgspec.convert(dict(item), ev.Item)
        if previous_item_id is None:
            await self.send(ev.ConversationItemCreateEvent(item=value))
        else:
            await self.send(ev.ConversationItemCreateEvent(item=value, previous_item_id=previous_item_id))

    async def send_text(self, text: str, *, respond: bool = True) -> None:
        """Add a user text message and (by default) ask for a response."""
        await self.create_item(ev.Item(type="message", role="user", content=[ev.ContentPart(type="input_text",
                                                                                             text=text)]))
        if respond:
            await self.create_response()

    async def delete_item(self, item_id: str) -> None:
        await self.send(ev.ConversationItemDeleteEvent(item_id=item_id))

    async def clear_output_audio(self) -> None:
        """``output_audio_buffer.clear`` (WebRTC/SIP): cut off the audio the service is still playing."""
        await self.send(ev.OutputAudioBufferClearEvent())
