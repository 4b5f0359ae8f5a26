"""The protocol core: every GA event round-trips, agrees with the official SDK models both ways, beta names
map onto GA, unknown types stay values, and malformed input raises only ProtocolError."""

from __future__ import annotations

import json
import subprocess
import sys
import typing
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent
from pydantic import TypeAdapter

from aoai_realtime.errors import ProtocolError
from aoai_realtime.protocol import codec
from aoai_realtime.protocol import events as ev

from .samples import CLIENT, SERVER, client_message, server_message

SERVER_ADAPTER: TypeAdapter[Any] = TypeAdapter(RealtimeServerEvent)
CLIENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(RealtimeClientEvent)


def _union_types(union: Any) -> set[str]:
    members = typing.get_args(typing.get_args(union)[0])  # Annotated[Union[...], discriminator]
    return {typing.get_args(m.model_fields["type"].annotation)[0] for m in members}


def test_we_cover_exactly_the_official_ga_unions() -> None:
    ours_server = {cls.TYPE for cls in ev.SERVER_EVENT_TYPES}
    ours_client = {cls.TYPE for cls in ev.CLIENT_EVENT_TYPES}
    assert len(ours_server) == 46
    assert len(ours_client) == 11
    assert ours_server == _union_types(RealtimeServerEvent)
    assert ours_client == _union_types(RealtimeClientEvent)
    assert set(SERVER) == ours_server
    assert set(CLIENT) == ours_client


@pytest.mark.parametrize("event_type", sorted(SERVER))
def test_server_event_round_trips_and_agrees_with_official_models(event_type: str) -> None:
    message = server_message(event_type)
    raw = json.dumps(message).encode()
    event = codec.decode_server_event(raw)
    assert not isinstance(event, ev.UnknownEvent)
    assert event.type == event_type
    # wire fidelity: decode -> encode gives the same JSON, and values round-trip
    assert json.loads(codec.encode(event)) == message
    assert codec.decode_server_event(codec.encode(event)) == event
    # ours -> official: what we emit validates against the SDK's schema of record
    official = SERVER_ADAPTER.validate_json(codec.encode(event))
    assert official.type == event_type
    # official -> ours: what the SDK emits decodes to the same value
    dumped = SERVER_ADAPTER.dump_json(official, exclude_unset=True)
    assert codec.decode_server_event(dumped) == event


@pytest.mark.parametrize("event_type", sorted(CLIENT))
def test_client_event_round_trips_and_agrees_with_official_models(event_type: str) -> None:
    message = client_message(event_type)
    event = codec.decode_client_event(json.dumps(message))
    assert not isinstance(event, ev.UnknownEvent)
    assert event.type == event_type
    assert json.loads(codec.encode(event)) == message
    official = CLIENT_ADAPTER.validate_json(codec.encode(event))
    assert official.type == event_type
    assert codec.decode_client_event(CLIENT_ADAPTER.dump_json(official, exclude_unset=True)) == event


@pytest.mark.parametrize(("beta", "ga"), sorted(codec.BETA_TO_GA.items()))
def test_beta_names_decode_to_ga_types_and_encode_back(beta: str, ga: str) -> None:
    message = server_message(ga)
    message["type"] = beta
    event = codec.decode_server_event(json.dumps(message))
    assert event.type == ga
    assert type(event).__name__ != "UnknownEvent"
    assert json.loads(codec.encode(event, "beta"))["type"] == beta
    assert json.loads(codec.encode(event))["type"] == ga


def test_conversation_item_created_stays_its_own_ga_event() -> None:
    event = codec.decode_server_event(json.dumps(server_message("conversation.item.created")))
    assert isinstance(event, ev.ConversationItemCreatedEvent)
    assert event.item.role == "user"


def test_unknown_type_is_kept_as_a_value() -> None:
    event = codec.decode_server_event(b'{"type": "session.future_thing", "event_id": "e9", "x": [1, 2]}')
    assert isinstance(event, ev.UnknownEvent)
    assert event.type == "session.future_thing"
    assert event.event_id == "e9"
    assert json.loads(codec.encode(event)) == {"type": "session.future_thing", "event_id": "e9", "x": [1, 2]}


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (b"not json", None),
        (b"[1, 2]", None),
        (b'{"no_type": 1}', None),
        (b'{"type": 5}', None),
        (b'{"type": "error", "event_id": "e"}', "error"),
        (b'{"type": "response.output_audio.delta", "event_id": "e", "delta": 3}', "response.output_audio.delta"),
        (b'{"type": "response.audio.delta", "event_id": "e"}', "response.audio.delta"),
    ],
)
def test_malformed_input_raises_protocol_error_naming_the_type(raw: bytes, named: str | None) -> None:
    with pytest.raises(ProtocolError) as info:
        codec.decode_server_event(raw)
    assert info.value.event_type == named
    if named:
        assert named in str(info.value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)


@given(
    event_type=st.sampled_from(sorted(SERVER) + sorted(codec.BETA_TO_GA) + ["x.y"]),
    fields=st.dictionaries(
        st.sampled_from(["event_id", "item", "item_id", "delta", "response", "session", "error", "part",
                         "output_index", "content_index", "audio_end_ms", "transcript", "previous_item_id"]),
        json_values,
        max_size=6,
    ),
)
def test_fuzzed_messages_decode_or_raise_protocol_error_only(event_type: str, fields: dict[str, Any]) -> None:
    message = {"type": event_type, **fields}
    raw = json.dumps(message)
    try:
        json.dumps(message, allow_nan=False)
        strict_json = True
    except ValueError:
        strict_json = False  # a NaN/Infinity float (json.dumps writes them bare), not the *string* "Infinity"
    outcome: object
    try:
        outcome = codec.decode_server_event(raw)
    except ProtocolError as exc:
        outcome = exc
    if isinstance(outcome, ProtocolError):
        # a message that is not JSON has no type that can be trusted
        assert outcome.event_type == (event_type if strict_json else None)
    else:
        assert isinstance(outcome, ev.ServerEvent | ev.UnknownEvent)


@pytest.mark.parametrize("value", ["Infinity", "NaN", "-Infinity"])
def test_strings_that_spell_non_finite_numbers_are_ordinary_json(value: str) -> None:
    # the example a newcomer's run failed on: the string "Infinity" is JSON, the bare token is not
    with pytest.raises(ProtocolError) as info:
        codec.decode_server_event(json.dumps({"type": "error", "event_id": value}))
    assert info.value.event_type == "error"
    with pytest.raises(ProtocolError) as info:
        codec.decode_server_event('{"type": "error", "event_id": "e", "error": ' + value + "}")
    assert info.value.event_type is None


@given(st.binary(max_size=64) | st.text(max_size=64))
def test_arbitrary_bytes_never_raise_anything_but_protocol_error(data: bytes | str) -> None:
    try:
        codec.decode_server_event(data)
        codec.decode_client_event(data)
    except ProtocolError:
        pass


@given(st.sampled_from(sorted(SERVER)), st.text(max_size=20), st.integers(0, 10**6))
def test_values_round_trip(event_type: str, text: str, number: int) -> None:
    message = server_message(event_type)
    for key in ("delta", "transcript", "text", "arguments"):
        if isinstance(message.get(key), str):
            message[key] = text
    for key in ("audio_end_ms", "audio_start_ms", "output_index", "content_index"):
        if key in message:
            message[key] = number
    event = codec.decode_server_event(json.dumps(message))
    assert codec.decode_server_event(codec.encode(event)) == event
    assert msgspec.json.decode(codec.encode(event)) == message


def test_events_are_immutable() -> None:
    event = ev.ResponseCancelEvent(response_id="r")
    with pytest.raises(AttributeError):
        event.response_id = "other"  # type: ignore[misc]


def test_protocol_core_imports_no_io_libraries() -> None:
    code = (
        "import sys; import aoai_realtime.protocol, aoai_realtime.protocol.state, aoai_realtime.protocol.session,"
        " aoai_realtime.protocol.schema, aoai_realtime.protocol.dialect, aoai_realtime.protocol.connection,"
        " aoai_realtime.protocol.arbiter;"
        "bad = [m for m in ('asyncio', 'websockets', 'aiortc', 'aiohttp') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
