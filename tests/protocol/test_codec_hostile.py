"""Hostile bytes (issue 13 item 6): deep nesting and huge integers inside otherwise valid events raise
ProtocolError from both decoders, never RecursionError or anything else, and ordinary deep-ish events pass."""

from __future__ import annotations

import json

import pytest

from aoai_realtime.errors import ProtocolError
from aoai_realtime.protocol import codec
from aoai_realtime.protocol import events as ev

DECODERS = [codec.decode_client_event, codec.decode_server_event]


def nested(depth: int, opener: str = "[") -> str:
    closer = {"[": "]", "{": "}"}[opener]
    inner = '{"a":' * depth + "1" + "}" * depth if opener == "{" else opener * depth + closer * depth
    return '{"type": "session.update", "session": {"type": "realtime", "x": ' + inner + "}}"


@pytest.mark.parametrize("decode", DECODERS)
@pytest.mark.parametrize("opener", ["[", "{"])
@pytest.mark.parametrize("depth", [codec.MAX_DEPTH, 5_000, 100_000])
def test_deep_nesting_is_a_protocol_error(decode: object, opener: str, depth: int) -> None:
    message = nested(depth, opener)
    for data in (message, message.encode()):
        with pytest.raises(ProtocolError, match="nests"):
            decode(data)  # type: ignore[operator]


@pytest.mark.parametrize("decode", DECODERS)
def test_a_bare_frame_of_brackets_is_a_protocol_error(decode: object) -> None:
    with pytest.raises(ProtocolError):
        decode("[" * 100_000)  # type: ignore[operator]


def test_nesting_just_under_the_limit_decodes() -> None:
    event = codec.decode_client_event(nested(codec.MAX_DEPTH - 3))
    assert isinstance(event, ev.SessionUpdateEvent)


def test_brackets_inside_strings_do_not_count() -> None:
    text = "[{" * 10_000 + '\\"]' * 3
    event = codec.decode_client_event(
        json.dumps({"type": "session.update", "session": {"type": "realtime", "instructions": text}})
    )
    assert isinstance(event, ev.SessionUpdateEvent)
    assert event.session["instructions"] == text


@pytest.mark.parametrize("decode", DECODERS)
def test_a_5000_digit_integer_is_a_protocol_error_naming_the_value(decode: object) -> None:
    message = '{"type": "response.create", "event_id": "e1", "response": {"max_output_tokens": ' + "9" * 5000 + "}}"
    with pytest.raises(ProtocolError, match="out of range"):
        decode(message)  # type: ignore[operator]


def test_check_depth_counts_only_real_nesting() -> None:
    codec.check_depth("[]" * 10_000)  # wide, not deep
    with pytest.raises(ProtocolError):
        codec.check_depth("[" * 200 + "]" * 200)
    codec.check_depth("[" * 200 + "]" * 200, limit=200)
