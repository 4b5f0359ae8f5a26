"""The sans-I/O Realtime connection, one object per side: bytes in, typed events out, bytes to send out.

As websockets' ``Protocol`` and h11's ``Connection`` do, this module holds the whole protocol of one connection
and no I/O: no sockets, no ``async def``, no clock. A driver moves bytes and owns timers, reconnects and backoff:

- :class:`ClientConnection` is :class:`~aoai_realtime.client.RealtimeClient`'s core: the handshake (wait for
  ``session.created``, send the session config, wait for its ``session.updated``), the same for a connect and for
  every reconnect; the conversation and the effective session rebuilt from server events; what a lost
  connection means (reconnect, expired, failed).
- :class:`ServerConnection` is the engine's (:class:`~aoai_realtime.engine.session.EngineSession`): client
  messages decoded, or refused with the service's ``error`` (``code``, ``param``, ``event_id``) found from the
  message's structure; ``session.update`` applied through the one schema and the one dialect; expiry.

The lifecycles are declared as data (:data:`CLIENT_TRANSITIONS`, :data:`SERVER_TRANSITIONS`): a trigger the
table does not allow in the current state raises :class:`LocalProtocolError` naming both ("can't handle X in
state Y"), never a silent skip. ``docs/design.md`` draws the client table; a test reads it exhaustively.

::

    connecting ──connection_made──► awaiting_created ──session.created──► configuring ──session.updated──► open
        ▲                               │ (no config: straight to open)        │ error (our event_id)
        │                               ▼                                      ▼
      connect            reconnecting ◄──connection_lost (retry)── open      failed
                         expired ◄──connection_lost (session_expired / 1001)── open
                         closed ◄──close── any state
"""

from __future__ import annotations

import enum
import itertools
import re
import secrets
import typing
from collections.abc import Callable, Mapping
from typing import Any, cast

import msgspec

from ..errors import (
    ConnectionClosed,
    ProtocolError,
    RealtimeError,
    ServerError,
    SessionExpired,
)
from . import events as ev
from .codec import decode_client_event, decode_server_event, encode, to_dict
from .dialect import BETA_TO_GA, Dialect, event_to_beta, response_to_beta, session_update_to_ga
from .schema import RealtimeSession, RequestRejected, _invalid_type, _missing, apply_update, merge_partial
from .session import SessionConfig
from .state import ConversationState

__all__ = [
    "CLIENT_TRANSITIONS",
    "SERVER_TRANSITIONS",
    "ClientConnection",
    "ClientState",
    "ClientTrigger",
    "LocalProtocolError",
    "ServerConnection",
    "ServerState",
    "ServerTrigger",
    "encode_server_event",
    "is_auth_close",
    "mermaid",
]


class LocalProtocolError(RealtimeError):
    """This side asked its connection for something the lifecycle table does not allow now (a bug in the
    driver, or a call made at the wrong time: sending before the session is configured, after it closed)."""

    def __init__(self, trigger: enum.Enum, state: enum.Enum) -> None:
        super().__init__(f"can't handle {trigger.value} in state {state.value}")
        self.trigger = trigger
        self.state = state


# ------------------------------------------------------------------------------------------------------------
# The client side


class ClientState(enum.Enum):
    CONNECTING = "connecting"
    AWAITING_CREATED = "awaiting_created"
    CONFIGURING = "configuring"
    OPEN = "open"
    RECONNECTING = "reconnecting"
    EXPIRED = "expired"
    CLOSED = "closed"
    FAILED = "failed"


class ClientTrigger(enum.Enum):
    CONNECT = "connect"
    CONNECTION_MADE = "connection_made"
    SESSION_CREATED = "session.created (no config)"
    CONFIG_SENT = "session.created (config sent)"
    SESSION_UPDATED = "session.updated"
    CONFIG_REJECTED = "config_rejected"
    SEND = "send"
    LOST_RETRY = "connection_lost (retry)"
    LOST_EXPIRED = "connection_lost (expired)"
    LOST_FATAL = "connection_lost (fatal)"
    FAIL = "fail"
    CLOSE = "close"


S, T = ClientState, ClientTrigger
_LIVE = (S.AWAITING_CREATED, S.CONFIGURING, S.OPEN, S.RECONNECTING)
CLIENT_TRANSITIONS: dict[tuple[ClientState, ClientTrigger], ClientState] = {
    **{(s, T.CONNECT): S.CONNECTING for s in (S.CONNECTING, S.CLOSED, S.FAILED, S.EXPIRED)},
    (S.CONNECTING, T.CONNECTION_MADE): S.AWAITING_CREATED,
    (S.RECONNECTING, T.CONNECTION_MADE): S.AWAITING_CREATED,
    (S.AWAITING_CREATED, T.SESSION_CREATED): S.OPEN,  # no config to send
    (S.AWAITING_CREATED, T.CONFIG_SENT): S.CONFIGURING,
    (S.CONFIGURING, T.SESSION_UPDATED): S.OPEN,
    (S.CONFIGURING, T.CONFIG_REJECTED): S.FAILED,
    (S.OPEN, T.SEND): S.OPEN,
    **{(s, T.LOST_RETRY): S.RECONNECTING for s in _LIVE},  # a reconnect's own handshake can drop too
    (S.OPEN, T.LOST_EXPIRED): S.EXPIRED,
    **{(s, T.LOST_FATAL): S.FAILED for s in _LIVE},
    **{(s, T.FAIL): S.FAILED for s in (S.CONNECTING, *_LIVE)},
    **{(s, T.CLOSE): S.CLOSED for s in S},
}
del S, T


_CONTROL = frozenset({ev.SessionCreatedEvent, ev.SessionUpdatedEvent, ev.RealtimeErrorEvent})


def mermaid(table: Mapping[Any, enum.Enum] | None = None) -> str:
    """A lifecycle table as a mermaid ``stateDiagram-v2`` for the docs (the docs test compares it with the
    table). Edges between the same two states are one arrow; ``close`` (from every state) is one note."""
    table = CLIENT_TRANSITIONS if table is None else table
    edges: dict[tuple[str, str], list[str]] = {}
    for (src, trigger), dst in table.items():
        if trigger.value == "close" or src is dst:
            continue
        edges.setdefault((src.value, dst.value), []).append(trigger.value)
    first = next(iter(table))[0]
    lines = ["stateDiagram-v2", f"    [*] --> {first.value}"]
    lines += [f"    {src} --> {dst}: {', '.join(triggers)}" for (src, dst), triggers in edges.items()]
    lines.append("    note right of closed: close, from any state, leads here")
    return "\n".join(lines) + "\n"


def is_auth_close(code: int | None, reason: str) -> bool:
    """A close that no retry can mend: OpenAI closes a socket with a bad key with 3000
    ``invalid_request_error.invalid_api_key`` (reference 3.1); 4001/4003 are the usual 401/403 codes."""
    return code in (3000, 4001, 4003) or "invalid_api_key" in reason


class ClientConnection:
    """The client's side of one Realtime session, across reconnects. See the module docstring.

    The driver must: call :meth:`connect`, open its transport, call :meth:`connection_made`, then feed every
    message to :meth:`receive_data` and send everything :meth:`data_to_send` returns, until :attr:`state` is
    ``OPEN`` (or ``FAILED``: raise :attr:`failure`). Client events go out through :meth:`send` (bytes back).
    When the transport drops, :meth:`connection_lost` says what to do next.
    """

    def __init__(
        self,
        *,
        dialect: Dialect = "ga",
        config: SessionConfig | Mapping[str, Any] | None = None,
        new_event_id: Callable[[], str] | None = None,
    ) -> None:
        self.dialect: Dialect = dialect
        self._config = config
        self._updates: dict[str, Any] = {}  # later update_session() payloads, merged, for the next handshake
        self._new_event_id = new_event_id or _random_event_ids()
        self.state = ClientState.CONNECTING
        self.failure: BaseException | None = None
        self.session: dict[str, Any] = {}  # the effective session, as the service last reported it
        self.conversation = ConversationState()
        self.sessions = 0  # sessions created on this connection (more than one after a reconnect)
        self._config_event_id: str | None = None
        self._outgoing: list[bytes] = []
        self._expired = False

    # -- the table ------------------------------------------------------------------------------------------

    def _fire(self, trigger: ClientTrigger) -> ClientState:
        new = CLIENT_TRANSITIONS.get((self.state, trigger))
        if new is None:
            raise LocalProtocolError(trigger, self.state)
        self.state = new
        return new

    @property
    def awaiting(self) -> str:
        """What the handshake waits for now (for a driver's timeout message)."""
        return "session.updated" if self.state is ClientState.CONFIGURING else "session.created"

    # -- driver calls ---------------------------------------------------------------------------------------

    def connect(self) -> None:
        """A new connect (not a reconnect): forget an earlier failure."""
        self._fire(ClientTrigger.CONNECT)
        self.failure = None
        self._expired = False

    def connection_made(self) -> None:
        """The transport is open: a new server session begins, with an empty conversation."""
        self._fire(ClientTrigger.CONNECTION_MADE)
        self.conversation = ConversationState()
        self._outgoing.clear()

    def receive_data(self, data: bytes | str) -> ev.ServerEvent | ev.UnknownEvent:
        """Decode one server message and apply it. Raises :class:`ProtocolError` for a malformed one (the
        state is unchanged: log it and go on)."""
        event = decode_server_event(data)
        self.receive_event(event)
        return event

    def receive_event(self, event: ev.ServerEvent | ev.UnknownEvent) -> None:
        """Apply one decoded server event: conversation, effective session, handshake, expiry."""
        self.conversation.apply(event)
        if type(event) in _CONTROL:  # one set lookup for the 50 audio deltas a second
            self._on_control(event)

    def _on_control(self, event: ev.ServerEvent | ev.UnknownEvent) -> None:
        if isinstance(event, ev.SessionCreatedEvent | ev.SessionUpdatedEvent):
            self.session = event.session
        if isinstance(event, ev.SessionCreatedEvent) and self.state is ClientState.AWAITING_CREATED:
            self.sessions += 1
            payload = self.config_payload()
            if payload is None:
                self._fire(ClientTrigger.SESSION_CREATED)
            else:
                self._config_event_id = self._new_event_id()
                self._outgoing.append(encode(ev.SessionUpdateEvent(session=payload, event_id=self._config_event_id),
                                             self.dialect))  # fmt: skip
                self._fire(ClientTrigger.CONFIG_SENT)
        elif isinstance(event, ev.SessionUpdatedEvent) and self.state is ClientState.CONFIGURING:
            self._fire(ClientTrigger.SESSION_UPDATED)
        elif isinstance(event, ev.RealtimeErrorEvent):
            config_id = self._config_event_id
            if self.state is ClientState.CONFIGURING and config_id is not None and event.error.event_id == config_id:
                who = "the service" if self.sessions == 1 else "the new session"
                self.failure = config_rejected(who, event.error, config_id)
                self._fire(ClientTrigger.CONFIG_REJECTED)
            elif event.error.code == "session_expired":
                self._expired = True

    def data_to_send(self) -> list[bytes]:
        """Messages the connection itself must send now (the handshake's ``session.update``)."""
        out, self._outgoing = self._outgoing, []
        return out

    def send(self, event: ev.ClientEvent) -> bytes:
        """The wire bytes of a client event. Only an open session takes client events."""
        self._fire(ClientTrigger.SEND)
        return encode(event, self.dialect)

    def new_event_id(self) -> str:
        return self._new_event_id()

    def connection_lost(
        self, code: int | None, reason: str, *, may_retry: bool, error: BaseException | None = None
    ) -> ClientState:
        """The transport dropped. Returns the new state: ``RECONNECTING`` (the driver reconnects with backoff,
        then :meth:`connection_made` again), ``EXPIRED`` or ``FAILED`` (:attr:`failure` says why), or
        ``CLOSED`` when the driver closed it itself. ``error``: the driver's own exception for the loss, kept as
        :attr:`failure` when the connection fails."""
        if self.state is ClientState.CLOSED:
            return self.state
        closed = error or ConnectionClosed(reason or "connection lost", code=code, reason=reason)
        if self.state is ClientState.OPEN and (self._expired or (code == 1001 and "maximum duration" in reason)):
            self.failure = SessionExpired(reason or "session expired", code=code, reason=reason)
            return self._fire(ClientTrigger.LOST_EXPIRED)
        # Only a connection that once had a session is retried: one that never did is a wrong endpoint or key.
        if may_retry and self.sessions and self.state in _LIVE and not is_auth_close(code, reason):
            return self._fire(ClientTrigger.LOST_RETRY)
        self.failure = self.failure or closed
        return self._fire(ClientTrigger.LOST_FATAL)

    def fail(self, exc: BaseException) -> None:
        """The driver gives up (reconnect attempts exhausted, a handshake that cannot succeed, a broken reader)."""
        if self.state in (ClientState.FAILED, ClientState.EXPIRED, ClientState.CLOSED):
            return
        self.failure = self.failure or exc
        self._fire(ClientTrigger.FAIL)

    def close(self) -> None:
        self._fire(ClientTrigger.CLOSE)

    # -- the session config ---------------------------------------------------------------------------------

    def remember_update(self, payload: Mapping[str, Any]) -> None:
        """An update the service confirmed: re-sent, merged into the config, by every later handshake."""
        merge_partial(self._updates, payload)

    def config_payload(self) -> dict[str, Any] | None:
        """The ``session`` a handshake sends: the config in this dialect with the confirmed updates merged
        (``None`` when there is nothing to send)."""
        cfg = self._config
        base: dict[str, Any] | None
        if cfg is None:
            base = None
        elif isinstance(cfg, SessionConfig):
            base = cfg.to_wire(self.dialect)
        else:
            base = dict(cfg)
        if not self._updates:
            return base
        merged = dict(base or ({"type": "realtime"} if self.dialect == "ga" else {}))
        merge_partial(merged, self._updates)
        return merged


def config_rejected(who: str, err: ev.ErrorDetails, event_id: str) -> ServerError:
    """The error for a ``session.update`` the service answered with ``error`` (``param`` names the field)."""
    return ServerError(
        f"{who} rejected the session config: {err.message}",
        type=err.type,
        code=err.code if isinstance(err.code, str) else None,
        param=err.param if isinstance(err.param, str) else None,
        event_id=event_id,
    )


def _random_event_ids() -> Callable[[], str]:
    prefix = secrets.token_hex(4)
    counter = itertools.count(1)
    return lambda: f"evt_{prefix}{next(counter):06d}"


# ------------------------------------------------------------------------------------------------------------
# The server (engine) side


class ServerState(enum.Enum):
    CONNECTING = "connecting"
    OPEN = "open"
    EXPIRED = "expired"
    CLOSED = "closed"


class ServerTrigger(enum.Enum):
    START = "session.created"
    RECEIVE = "receive"
    EXPIRE = "expire"
    CLOSE = "close"


SERVER_TRANSITIONS: dict[tuple[ServerState, ServerTrigger], ServerState] = {
    (ServerState.CONNECTING, ServerTrigger.START): ServerState.OPEN,
    (ServerState.OPEN, ServerTrigger.RECEIVE): ServerState.OPEN,
    (ServerState.OPEN, ServerTrigger.EXPIRE): ServerState.EXPIRED,
    **{(s, ServerTrigger.CLOSE): ServerState.CLOSED for s in ServerState},
}

_CLIENT_TYPES = tuple(sorted(cls.TYPE for cls in ev.CLIENT_EVENT_TYPES))
_CLIENT_BY_TYPE: dict[str, type[ev.ClientEvent]] = {cls.TYPE: cls for cls in ev.CLIENT_EVENT_TYPES}


class ServerConnection:
    """The service's side of one session: client messages in, typed client events or refusals out.

    The driver must: call :meth:`start` and send its ``session.created`` first; feed each client message to
    :meth:`receive_data` (a :class:`RequestRejected` it raises becomes an ``error`` event, see
    :meth:`error_event`; the session goes on); apply ``session.update`` with :meth:`update_session`; at the
    maximum duration send :meth:`expire`'s event and close with :attr:`close_code` / :attr:`close_reason`.
    """

    def __init__(self, session: RealtimeSession, *, dialect: Dialect = "ga") -> None:
        self.dialect: Dialect = dialect
        self.session = session
        self.state = ServerState.CONNECTING
        self.voice_locked = False  # set once the session has produced assistant audio
        self.close_code: int | None = None
        self.close_reason = ""

    def _fire(self, trigger: ServerTrigger) -> None:
        new = SERVER_TRANSITIONS.get((self.state, trigger))
        if new is None:
            raise LocalProtocolError(trigger, self.state)
        self.state = new

    @property
    def wire_session(self) -> dict[str, Any]:
        """The effective session as the wire carries it (GA; :func:`encode_server_event` converts for beta)."""
        return cast(dict[str, Any], self.session)

    def start(self) -> ev.SessionCreatedEvent:
        self._fire(ServerTrigger.START)
        return ev.SessionCreatedEvent(session=self.wire_session)

    def receive_data(self, data: bytes | str) -> ev.ClientEvent:
        """Decode one client message. Raises :class:`RequestRejected` (with ``event_id`` when the message has
        one) for anything the service would refuse to parse: not JSON, an unknown ``type``, a missing or
        mistyped field (``param`` is its dotted path, found from the message, not from a decoder's text)."""
        self._fire(ServerTrigger.RECEIVE)
        try:
            event = decode_client_event(data)
        except ProtocolError as exc:
            raise _rejection(data) from exc
        if isinstance(event, ev.UnknownEvent):
            raise unknown_type(event)
        return event

    def update_session(self, update: Any) -> ev.SessionUpdatedEvent:
        """Apply a client's ``session.update.session`` (in this connection's dialect). Raises RequestRejected."""
        if self.dialect == "beta":
            update = session_update_to_ga(update)
        self.session = apply_update(self.session, update, voice_locked=self.voice_locked,
                                    require_type=self.dialect == "ga")  # fmt: skip
        return ev.SessionUpdatedEvent(session=self.wire_session)

    def expire(self, seconds: float) -> ev.RealtimeErrorEvent:
        """The maximum duration is reached: the ``error`` to send last, then close with 1001."""
        self._fire(ServerTrigger.EXPIRE)
        reason = f"Your session hit the maximum duration of {round(seconds / 60)} minutes."
        self.close_code, self.close_reason = 1001, reason
        return ev.RealtimeErrorEvent(
            error=ev.ErrorDetails(type="invalid_request_error", code="session_expired", message=reason)
        )

    def close(self) -> None:
        self._fire(ServerTrigger.CLOSE)

    @staticmethod
    def refusal(event: ev.UnknownEvent) -> RequestRejected:
        """The service's refusal of a client event of a ``type`` it does not have."""
        return unknown_type(event)

    @staticmethod
    def error_event(exc: RequestRejected, client_event_id: str | None) -> ev.RealtimeErrorEvent:
        event_id = exc.event_id or client_event_id
        details = ev.ErrorDetails(type=exc.type, code=exc.code, message=exc.message, param=exc.param, event_id=event_id)
        return ev.RealtimeErrorEvent(error=details)

    def data_for(self, event: ev.ServerEvent) -> bytes | None:
        return encode_server_event(event, self.dialect)


def encode_server_event(event: ev.ServerEvent, dialect: Dialect) -> bytes | None:
    """The wire bytes of ``event`` in ``dialect`` (``None`` when the preview protocol has no such event)."""
    if dialect == "beta":
        beta = event_to_beta(event)
        if isinstance(beta, ev.ResponseCreatedEvent | ev.ResponseDoneEvent):
            raw = to_dict(beta)
            raw["response"] = response_to_beta(raw["response"])
            return msgspec.json.encode(raw)
        return None if beta is None else encode(beta, "beta")
    return encode(event)


def unknown_type(event: ev.UnknownEvent) -> RequestRejected:
    options = ", ".join(f"'{t}'" for t in _CLIENT_TYPES)
    refusal = RequestRejected(f"Invalid value: '{event.type}'. Supported values are: {options}.",
                              code="invalid_value", param="type")  # fmt: skip
    return _with_event_id(refusal, event.data)


# -- refusing a client message by its structure ---------------------------------------------------------------

_dict_decoder = msgspec.json.Decoder(dict[str, Any])
_UnionType = type(int | str)
_EVENT_ID = re.compile(rb'"event_id"\s*:\s*"([^"\\]{1,128})"')


def _with_event_id(exc: RequestRejected, raw: Mapping[str, Any]) -> RequestRejected:
    event_id = raw.get("event_id")
    if isinstance(event_id, str) and event_id:
        exc.event_id = event_id[:128]
    return exc


def _rejection(data: bytes | str) -> RequestRejected:
    """Why the service would refuse ``data``: the first missing or mistyped field, by its dotted path."""
    not_json = RequestRejected(
        "We could not parse the JSON body of your request. Send one JSON object per message, with a 'type'.",
        code="invalid_json",
    )
    try:
        raw = _dict_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        # Too deep, a number no type holds, broken JSON: the service still names the request it refuses.
        found = _EVENT_ID.search(data.encode() if isinstance(data, str) else data)
        not_json.event_id = found.group(1).decode(errors="replace") if found else None
        return not_json
    event_type = raw.get("type")
    if not isinstance(event_type, str):
        return _with_event_id(_missing("type") if event_type is None else _invalid_type("type", "a string",
                                                                                          event_type), raw)  # fmt: skip
    cls = _CLIENT_BY_TYPE.get(BETA_TO_GA.get(event_type, event_type))
    problem = None if cls is None else _problem(raw, cls, "")
    return _with_event_id(problem or not_json, raw)


_EXPECTED = {str: "a string", int: "an integer", float: "a decimal", bool: "a boolean", dict: "an object",
             list: "an array"}  # fmt: skip


def _problem(value: Any, tp: Any, path: str) -> RequestRejected | None:
    """The first field of ``value`` that type ``tp`` refuses, or None."""
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        if not isinstance(value, dict):
            return _invalid_type(path or "event", "an object", value)
        for field in msgspec.structs.fields(tp):
            sub = f"{path}.{field.encode_name}" if path else field.encode_name
            if field.encode_name not in value:
                if field.required:
                    return _missing(sub)
                continue
            found = _problem(value[field.encode_name], field.type, sub)
            if found is not None:
                return found
        return None
    try:
        msgspec.convert(value, tp)
        return None
    except msgspec.ValidationError:
        pass
    origin = typing.get_origin(tp)
    members = [m for m in typing.get_args(tp) if m not in (type(None), msgspec.UnsetType)]
    if origin is list and isinstance(value, list) and members:
        for i, item in enumerate(value):
            found = _problem(item, members[0], f"{path}[{i}]")
            if found is not None:
                return found
    if origin in (typing.Union, _UnionType) and len(members) == 1:
        return _problem(value, members[0], path)
    kinds = members if origin in (typing.Union, _UnionType) else [tp]
    expected = " or ".join(_EXPECTED.get(typing.get_origin(k) or k, "a valid value") for k in kinds)
    return _invalid_type(path, expected, value)

