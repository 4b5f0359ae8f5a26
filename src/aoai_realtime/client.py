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
- session expiry (``session_expired``, close 1001) ends :meth:`events` with :class:`SessionExpired`.

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
    SessionExpired,
    TransportError,
    get_logger,
)
from .protocol import events as ev
from .protocol.codec import decode_server_event, encode
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


class RealtimeClient:
    """A Realtime session over an injected transport. See the module docstring."""

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
        self._session_config = session
        self._session_overrides: dict[str, Any] = {}
        self._reconnect = reconnect
        self._connect_timeout = connect_timeout
        self._queue_size = queue_size
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._handlers: dict[str, list[Handler]] = {}
        self._subscribers: set[asyncio.Queue[Any]] = set()
        self._waiters: list[tuple[str, Callable[[Any], bool] | None, asyncio.Future[Any]]] = []
        self._reader: asyncio.Task[None] | None = None
        self._handler_tasks: set[asyncio.Task[None]] = set()
        self._connected = asyncio.Event()
        self._closing = False
        self._failure: BaseException | None = None
        self._expired = False
        self.conversation = ConversationState()
        self.session: dict[str, Any] = {}

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
        return self._connected.is_set()

    async def connect(self) -> None:
        """Connect, wait for ``session.created``, send the session config and wait for ``session.updated``.

        On any failure everything opened is closed again and the error is raised (ConnectError,
        AuthenticationError, ServerError for a rejected config, TimeoutError wrapped in ConnectError).
        """
        if self.connected:
            return
        self._closing = False
        self._failure = None
        self._expired = False
        try:
            await self._open_session()
        except BaseException:
            await self._teardown()
            raise

    async def _open_session(self) -> None:
        self.conversation = ConversationState()
        created = self._expect("session.created")
        try:
            await self.transport.connect()
            self._reader = asyncio.create_task(self._read_loop(), name="realtime-reader")
            await self._await_or_fail(created, "session.created")
            self._connected.set()
            payload = self._session_payload()
            if payload is not None:
                await self._apply_session(payload)
        finally:
            if not created.done():
                created.cancel()
            self._drop_waiter(created)

    def _session_payload(self) -> dict[str, Any] | None:
        cfg = self._session_config
        base: dict[str, Any] | None
        if cfg is None:
            base = None
        elif isinstance(cfg, SessionConfig):
            base = cfg.to_wire(self.transport.dialect)
        else:
            base = dict(cfg)
        if not self._session_overrides:
            return base
        merged = dict(base or ({"type": "realtime"} if self.transport.dialect == "ga" else {}))
        _deep_merge(merged, self._session_overrides)
        return merged

    async def _apply_session(self, session: dict[str, Any]) -> dict[str, Any]:
        event_id = f"evt_session_{self._rng.getrandbits(48):012x}"
        updated = self._expect("session.updated")
        rejected = self._expect("error", lambda e: e.error.event_id == event_id)
        try:
            await self.send(ev.SessionUpdateEvent(session=session, event_id=event_id))
            done, _ = await asyncio.wait(
                {updated, rejected, *self._reader_set()},
                timeout=self._connect_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if rejected in done:
                raise _config_rejected("the service", rejected.result().error, event_id)
            if updated in done:
                result: dict[str, Any] = updated.result().session
                return result
            self._raise_reader_failure()
            raise ConnectError(f"no session.updated within {self._connect_timeout:g} s after session.update")
        finally:
            for fut in (updated, rejected):
                if not fut.done():
                    fut.cancel()
                self._drop_waiter(fut)

    def _reader_set(self) -> set[asyncio.Task[None]]:
        return {self._reader} if self._reader is not None else set()

    def _raise_reader_failure(self) -> None:
        if self._reader is not None and self._reader.done():
            failure = self._failure
            if failure is None and not self._reader.cancelled():
                failure = self._reader.exception()
            if isinstance(failure, AuthenticationError):
                raise failure
            if isinstance(failure, TransportError):
                raise ConnectError(f"connection ended during setup: {failure}") from failure
            raise ConnectError("connection ended during setup")

    async def _await_or_fail(self, fut: asyncio.Future[Any], what: str) -> Any:
        done, _ = await asyncio.wait(
            {fut, *self._reader_set()}, timeout=self._connect_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if fut in done:
            return fut.result()
        self._raise_reader_failure()
        raise ConnectError(f"no {what} within {self._connect_timeout:g} s of connecting; is this a Realtime endpoint?")

    async def close(self) -> None:
        """Close the connection and end every :meth:`events` iterator. Idempotent; handlers are kept."""
        self._closing = True
        await self._teardown()

    async def _teardown(self) -> None:
        self._connected.clear()
        reader, self._reader = self._reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
        with contextlib.suppress(Exception):
            await self.transport.close()
        if self._closing:
            # Async handlers still running belong to this client: they do not outlive close().
            pending = [t for t in self._handler_tasks if t is not asyncio.current_task()]
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
            for queue in list(self._subscribers):
                self._push_end(queue)
            for _, _, fut in self._waiters:
                if not fut.done():
                    fut.set_exception(ConnectionClosed("client closed", code=1000))
            self._waiters.clear()

    # -- receiving ------------------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        try:
            while True:
                try:
                    raw = await self.transport.recv()
                except ConnectionClosed as closed:
                    if self._closing:
                        return
                    if await self._on_connection_lost(closed):
                        continue
                    return
                try:
                    event = decode_server_event(raw)
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
        """Reconnect if allowed; return True when a new session took over."""
        self._connected.clear()
        if self._expired or (closed.code == 1001 and "maximum duration" in closed.reason):
            self._fail(SessionExpired(closed.reason or "session expired", code=closed.code, reason=closed.reason))
            return False
        policy = self._reconnect
        if policy is None or _is_auth_close(closed) or not self.session:  # never had a session: don't retry
            self._fail(closed)
            return False
        for attempt in range(policy.max_attempts):
            await self._sleep(policy.delay(attempt, self._rng))
            if self._closing:
                return False
            try:
                await self._reconnect_once()
            except (AuthenticationError, ServerError) as exc:  # retrying cannot help: a revoked key, a refused config
                self._fail(exc)
                return False
            except (ConnectError, ConnectionClosed, ProtocolError, TimeoutError) as exc:
                log.warning("reconnect attempt %d failed: %s", attempt + 1, exc)
                continue
            await self._dispatch(Reconnected(attempt=attempt + 1))
            return True
        self._fail(ConnectionClosed(f"connection lost and {policy.max_attempts} reconnect attempts failed",
                                    code=closed.code, reason=closed.reason))
        return False

    async def _reconnect_once(self) -> None:
        with contextlib.suppress(Exception):
            await self.transport.close()
        await self.transport.connect()
        self.conversation = ConversationState()
        # This runs inside the reader task, so read the greeting directly rather than through dispatch waiters.
        raw = await asyncio.wait_for(self.transport.recv(), self._connect_timeout)
        created = decode_server_event(raw)
        if not isinstance(created, ev.SessionCreatedEvent):
            raise ConnectError(f"expected session.created after reconnecting, got {created.type!r}")
        await self._dispatch(created)
        self._connected.set()
        payload = self._session_payload()
        if payload is None:
            return
        # As in connect(): the new session counts only once it has the config, so that whoever hears Reconnected
        # talks to a configured session (no window in which to wait for a session.updated that already went by).
        event_id = f"evt_session_{self._rng.getrandbits(48):012x}"
        await self.transport.send(
            encode(ev.SessionUpdateEvent(session=payload, event_id=event_id), self.transport.dialect)
        )
        while True:
            event = decode_server_event(await asyncio.wait_for(self.transport.recv(), self._connect_timeout))
            await self._dispatch(event)
            if isinstance(event, ev.SessionUpdatedEvent):
                return
            if isinstance(event, ev.RealtimeErrorEvent) and event.error.event_id == event_id:
                raise _config_rejected("the new session", event.error, event_id)

    def _fail(self, exc: BaseException) -> None:
        self._connected.clear()
        if self._failure is None:
            self._failure = exc
        for queue in list(self._subscribers):
            self._push_end(queue)
        for _, _, fut in self._waiters:
            if not fut.done():
                fut.set_exception(exc)
        self._waiters.clear()

    def _push_end(self, queue: asyncio.Queue[Any], marker: object = _END) -> None:
        # The marker must get through even to a full queue: drop the oldest queued event to make room.
        while True:
            try:
                queue.put_nowait(marker)
                return
            except asyncio.QueueFull:
                queue.get_nowait()

    async def _dispatch(self, event: AnyServerEvent | Reconnected) -> None:
        if isinstance(event, ev.ServerEvent):
            self.conversation.apply(event)
            if isinstance(event, ev.SessionCreatedEvent | ev.SessionUpdatedEvent):
                self.session = event.session
            elif isinstance(event, ev.RealtimeErrorEvent) and event.error.code == "session_expired":
                self._expired = True
        type_ = event.type
        for handler in (*self._handlers.get(type_, ()), *self._handlers.get("*", ())):
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    task = asyncio.ensure_future(result)
                    self._handler_tasks.add(task)
                    task.add_done_callback(self._handler_done)
            except Exception:  # boundary: a user's handler must not break the session
                log.exception("handler for %s raised", type_)
        if self._waiters:
            still = []
            for waiter in self._waiters:
                wtype, predicate, fut = waiter
                if fut.done():
                    continue
                if wtype == type_ and (predicate is None or predicate(event)):
                    fut.set_result(event)
                else:
                    still.append(waiter)
            self._waiters = still
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                # One consumer that stopped reading must not stall the session for everyone: it is cut
                # off with an error it will see, the others go on.
                self._subscribers.discard(queue)
                self._push_end(queue, _OVERFLOW)

    def _handler_done(self, task: asyncio.Task[None]) -> None:
        self._handler_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("async handler raised", exc_info=task.exception())

    # -- public receiving API -------------------------------------------------------------------------------

    def on(self, event_type: str, handler: Handler) -> Handler:
        """Call ``handler(event)`` for every event of ``event_type`` (``"*"``: all). Survives reconnects.

        Async handlers run as tasks the client keeps until they finish. Returns the handler (decorator use).
        """
        self._handlers.setdefault(event_type, []).append(handler)
        return handler

    def off(self, event_type: str, handler: Handler) -> None:
        """Remove a handler added with :meth:`on`. Removing one that is not there does nothing."""
        handlers = self._handlers.get(event_type, [])
        with contextlib.suppress(ValueError):
            handlers.remove(handler)

    async def events(self) -> AsyncIterator[AnyServerEvent | Reconnected]:
        """Every event from now on, in order. Ends when the client closes; raises if the connection is lost.

        Raises :class:`SessionExpired` at the session's maximum duration, :class:`ConnectionClosed` when the
        connection dropped and could not be re-established, :class:`Busy` when this iterator fell
        ``queue_size`` events behind.
        """
        queue: asyncio.Queue[Any] = asyncio.Queue(self._queue_size)
        self._subscribers.add(queue)
        try:
            while True:
                failure = self._failure
                if failure is not None and queue.empty():
                    raise failure
                item = await queue.get()
                if item is _OVERFLOW:
                    raise Busy(
                        f"this events() iterator fell {self._queue_size} events behind and was cut off so the "
                        "session could go on; read events faster, or raise queue_size"
                    )
                if item is _END:
                    failure = self._failure
                    if failure is not None and not self._closing:
                        raise failure
                    return
                yield item
        finally:
            self._subscribers.discard(queue)

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
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self._failure is not None:
            fut.set_exception(self._failure)
            return fut
        self._waiters.append((event_type, predicate, fut))
        return fut

    def _drop_waiter(self, fut: asyncio.Future[Any]) -> None:
        self._waiters = [w for w in self._waiters if w[2] is not fut]

    # -- sending --------------------------------------------------------------------------------------------

    async def send(self, event: ev.ClientEvent) -> None:
        """Send one client event. Raises ConnectionClosed when not connected."""
        if self._failure is not None:
            raise ConnectionClosed(f"not connected: {self._failure}") from self._failure
        await self.transport.send(encode(event, self.transport.dialect))

    async def update_session(self, session: SessionConfig | Mapping[str, Any]) -> dict[str, Any]:
        """Send a partial session update and wait until the service confirms it; returns the effective session.

        The update is remembered and re-sent after a reconnect. A rejection raises ServerError naming ``param``.
        """
        payload = session.to_wire(self.transport.dialect) if isinstance(session, SessionConfig) else dict(session)
        result = await self._apply_session(payload)
        _deep_merge(self._session_overrides, payload)
        return result

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


def _is_auth_close(closed: ConnectionClosed) -> bool:
    # OpenAI closes a socket with a bad key with 3000 "invalid_request_error.invalid_api_key" (reference 3.1).
    return closed.code in (3000, 4001, 4003) or "invalid_api_key" in closed.reason


def _config_rejected(who: str, err: ev.ErrorDetails, event_id: str) -> ServerError:
    """The error for a ``session.update`` the service answered with ``error`` (``param`` names the field)."""
    return ServerError(
        f"{who} rejected the session config: {err.message}",
        type=err.type,
        code=_opt(err.code),
        param=_opt(err.param),
        event_id=event_id,
    )


def _opt(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _deep_merge(into: dict[str, Any], update: Mapping[str, Any]) -> None:
    for key, value in update.items():
        current = into.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            _deep_merge(current, value)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value
