"""Bytes to events and back. No I/O: a message in, a typed value out.

``decode_server_event`` / ``decode_client_event`` accept GA and beta (preview) messages; beta names are mapped
onto GA by the table in :mod:`.dialect` (reference, section 1: ``response.audio.*`` -> ``response.output_audio.*``,
``response.audio_transcript.*`` -> ``response.output_audio_transcript.*``, ``response.text.*`` ->
``response.output_text.*``). ``conversation.item.created`` is a GA event of its own and stays itself.
An unknown ``type`` decodes to :class:`UnknownEvent`. Anything else that is wrong raises
:class:`~aoai_realtime.errors.ProtocolError` naming the event type; a receive loop logs it and goes on.
That includes hostile shapes: JSON nested deeper than :data:`MAX_DEPTH` (no event needs it; past about a
thousand levels it would raise ``RecursionError`` in any recursive reader) and integers outside 64 bits.

``encode`` writes GA JSON; ``encode(event, dialect="beta")`` writes the preview names for old clients.
"""

from __future__ import annotations

import re
from typing import Any, Union

import msgspec

from ..errors import ProtocolError
from .dialect import BETA_TO_GA, GA_TO_BETA, Dialect
from .events import (
    CLIENT_EVENT_TYPES,
    SERVER_EVENT_TYPES,
    ClientEvent,
    ServerEvent,
    UnknownEvent,
)

__all__ = [
    "BETA_TO_GA",
    "GA_TO_BETA",
    "MAX_DEPTH",
    "Dialect",
    "check_depth",
    "decode_client_event",
    "decode_server_event",
    "encode",
    "server_event_types",
]

_SERVER_BY_TYPE: dict[str, type[ServerEvent]] = {cls.TYPE: cls for cls in SERVER_EVENT_TYPES}
_CLIENT_BY_TYPE: dict[str, type[ClientEvent]] = {cls.TYPE: cls for cls in CLIENT_EVENT_TYPES}

_ServerUnion = Union[SERVER_EVENT_TYPES]  # type: ignore[valid-type]  # noqa: UP007
_ClientUnion = Union[CLIENT_EVENT_TYPES]  # type: ignore[valid-type]  # noqa: UP007

_server_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(_ServerUnion)
_client_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(_ClientUnion)
_dict_decoder = msgspec.json.Decoder(dict[str, Any])
_encoder = msgspec.json.Encoder()

# Deepest JSON nesting accepted in one message. A session.update with tools whose JSON schemas nest is some
# ten levels deep; the limit keeps every recursive reader (ours, the official SDK's models, the recorder) far
# from Python's recursion limit.
MAX_DEPTH = 128
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")


def check_depth(data: bytes | str, limit: int = MAX_DEPTH) -> None:
    """Raise :class:`ProtocolError` when the JSON text ``data`` nests arrays/objects deeper than ``limit``.

    Cheap for ordinary messages (two counts); a message with many brackets is scanned once, strings skipped.
    """
    if isinstance(data, bytes):
        if data.count(b"[") + data.count(b"{") <= limit:
            return
        text = data.decode("utf-8", "replace")
    elif data.count("[") + data.count("{") <= limit:
        return
    else:
        text = data
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_JSON_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
        if deepest > limit:
            raise ProtocolError(
                f"message nests arrays/objects deeper than {limit} levels; no Realtime event needs that much"
            )


def server_event_types() -> dict[str, type[ServerEvent]]:
    """Every GA server event class by its wire ``type``."""
    return dict(_SERVER_BY_TYPE)


def decode_server_event(data: bytes | str) -> ServerEvent | UnknownEvent:
    """Decode one server message. Raises :class:`ProtocolError` for malformed input, never anything else."""
    event: ServerEvent | UnknownEvent = _decode(data, _server_decoder, _SERVER_BY_TYPE)
    return event


def decode_client_event(data: bytes | str) -> ClientEvent | UnknownEvent:
    """Decode one client message (the engine's side). Raises :class:`ProtocolError` for malformed input."""
    event: ClientEvent | UnknownEvent = _decode(data, _client_decoder, _CLIENT_BY_TYPE)
    return event


def _decode(
    data: bytes | str,
    decoder: msgspec.json.Decoder[Any],
    by_type: dict[str, type[ServerEvent]] | dict[str, type[ClientEvent]],
) -> Any:
    check_depth(data)
    try:
        # The fast path: one pass, straight into the right class.
        return decoder.decode(data)
    except msgspec.ValidationError:
        pass  # a beta name, an unknown type or a bad field: look closer below
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"message is not valid JSON ({exc}); expected one JSON object per message") from exc
    except RecursionError as exc:  # check_depth bounds nesting; a deep stack at the caller's end can still hit this
        raise ProtocolError("message nests too deeply to decode; no Realtime event needs that much") from exc
    try:
        raw = _dict_decoder.decode(data)
    except msgspec.ValidationError as exc:
        if data.lstrip()[:1] not in (b"{", "{"):  # the JSON value itself is not an object
            raise ProtocolError(
                "message is not a JSON object; every Realtime event is an object with a 'type'"
            ) from exc
        raise ProtocolError(f"message has a value no Realtime event can hold ({exc})") from exc
    except RecursionError as exc:
        raise ProtocolError("message nests too deeply to decode; no Realtime event needs that much") from exc
    except msgspec.DecodeError as exc:
        # The typed pass can reject a message on its tag before reaching a malformed part of it.
        raise ProtocolError(f"message is not valid JSON ({exc}); expected one JSON object per message") from exc
    event_type = raw.get("type")
    if not isinstance(event_type, str):
        raise ProtocolError("event has no string 'type' field; every Realtime event names its type")
    ga_type = BETA_TO_GA.get(event_type, event_type)
    cls = by_type.get(ga_type)
    if cls is None:
        return UnknownEvent(type=event_type, data=raw)
    raw["type"] = ga_type
    try:
        return msgspec.convert(raw, cls)
    except msgspec.ValidationError as exc:
        raise ProtocolError(f"malformed {event_type!r} event: {exc}", event_type=event_type) from exc


def encode(event: ServerEvent | ClientEvent | UnknownEvent, dialect: Dialect = "ga") -> bytes:
    """Encode an event as one JSON message. ``dialect="beta"`` uses the preview event names."""
    if isinstance(event, UnknownEvent):
        return _encoder.encode(event.data)
    if dialect == "beta":
        beta = GA_TO_BETA.get(event.TYPE)
        if beta is not None:
            raw = msgspec.to_builtins(event)
            raw["type"] = beta
            return _encoder.encode(raw)
    return _encoder.encode(event)


def to_dict(event: ServerEvent | ClientEvent | UnknownEvent) -> dict[str, Any]:
    """The event as plain JSON-ready builtins (``type`` included)."""
    if isinstance(event, UnknownEvent):
        return dict(event.data)
    result: dict[str, Any] = msgspec.to_builtins(event)
    return result
