"""The engine side's session handling, in the protocol core: client bytes in, ``session.updated`` or the
service's refusal out. No event loop, no engine (the asyncio driver is tested in tests/engine/)."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from openai.types.realtime import RealtimeServerEvent
from pydantic import TypeAdapter

from aoai_realtime.protocol import events as ev
from aoai_realtime.protocol.connection import ServerConnection, encode_server_event
from aoai_realtime.protocol.schema import RequestRejected, default_session

GA: TypeAdapter[Any] = TypeAdapter(RealtimeServerEvent)


def core() -> ServerConnection:
    conn = ServerConnection(default_session(model="gpt-realtime", instructions="i", session_id="sess_1",
                                            expires_at=0))  # fmt: skip
    conn.start()
    return conn


def feed(conn: ServerConnection, **session: Any) -> ev.SessionUpdatedEvent:
    """Feed one session.update as bytes; the refusal (if any) raises with the message's event_id."""
    data = json.dumps({"type": "session.update", "event_id": "evt_u", "session": session}).encode()
    event = conn.receive_data(data)
    assert isinstance(event, ev.SessionUpdateEvent)
    try:
        return conn.update_session(event.session)
    except RequestRejected as exc:
        exc.event_id = exc.event_id or event.event_id or None  # what the driver does with a refusal
        raise


def wire(event: ev.ServerEvent) -> bytes | None:
    """The bytes a driver sends (it gives every event an id)."""
    return encode_server_event(msgspec.structs.replace(event, event_id="event_1"), "ga")


def refused(conn: ServerConnection, **session: Any) -> RequestRejected:
    before = conn.session
    with pytest.raises(RequestRejected) as info:
        feed(conn, **session)
    assert conn.session is before  # nothing was applied
    assert info.value.event_id == "evt_u"
    return info.value


@pytest.mark.parametrize(
    ("session", "code", "param"),
    [
        ({"instructions": "x"}, "missing_required_parameter", "session.type"),
        ({"type": "realtime", "voice": "alloy"}, "unknown_parameter", "session.voice"),
        ({"type": "realtime", "audio": {"output": {"voice": "bogus"}}}, "invalid_value", "session.audio.output.voice"),
        ({"type": "realtime", "audio": {"output": {"speed": 2.0}}}, "decimal_above_max_value",
         "session.audio.output.speed"),
        ({"type": "realtime", "audio": {"input": {"turn_detection": {"type": "server_vad", "create_response": None}}}},
         "invalid_type", "session.audio.input.turn_detection.create_response"),
        ({"type": "realtime", "output_modalities": ["text", "audio"]}, "invalid_value", "session.output_modalities"),
        ({"type": "transcription"}, "invalid_value", "session.type"),
    ],
)
def test_a_refused_update_names_code_param_and_event_id_and_changes_nothing(
    session: dict[str, Any], code: str, param: str
) -> None:
    error = refused(core(), **session)
    assert (error.code, error.param) == (code, param)
    event = ServerConnection.error_event(error, None)
    assert event.error.event_id == "evt_u"


def test_include_takes_only_what_the_service_defines() -> None:
    conn = core()
    error = refused(conn, type="realtime", include=["bogus"])
    assert (error.code, error.param) == ("invalid_value", "session.include[0]")
    assert "item.input_audio_transcription.logprobs" in error.message
    assert refused(conn, type="realtime", include="item.input_audio_transcription.logprobs").code == "invalid_type"
    updated = feed(conn, type="realtime", include=["item.input_audio_transcription.logprobs"])
    GA.validate_json(wire(updated))  # session.updated still fits the official model
    again = feed(conn, type="realtime", instructions="Be brief.")
    assert again.session["include"] == ["item.input_audio_transcription.logprobs"]
    GA.validate_json(wire(again))


def test_tracing_cannot_change_once_enabled() -> None:
    conn = core()
    feed(conn, type="realtime", tracing=None)  # off -> off is fine
    enabled = {"workflow_name": "support", "group_id": "g1"}
    feed(conn, type="realtime", tracing=enabled)
    feed(conn, type="realtime", tracing=dict(enabled))  # the same value again is no change
    for changed in ("auto", None, {"workflow_name": "other"}):
        assert refused(conn, type="realtime", tracing=changed).param == "session.tracing"
    assert conn.session["tracing"] == enabled
    assert refused(conn, type="realtime", tracing="on").code == "invalid_value"


@pytest.mark.parametrize(
    ("session", "param"),
    [
        ({"truncation": "sometimes"}, "session.truncation"),
        ({"truncation": {"type": "retention_ratio", "retention_ratio": 1.5}}, "session.truncation.retention_ratio"),
        ({"truncation": {"type": "retention_ratio"}}, "session.truncation.retention_ratio"),
        ({"prompt": {"version": "1"}}, "session.prompt.id"),
        ({"prompt": {"id": "pmpt_1", "variables": ["x"]}}, "session.prompt.variables"),
        ({"reasoning": {"effort": "extreme"}}, "session.reasoning.effort"),
    ],
)
def test_truncation_prompt_and_reasoning_are_checked(session: dict[str, Any], param: str) -> None:
    assert refused(core(), type="realtime", **session).param == param


def test_accepted_truncation_and_prompt_fit_the_official_model() -> None:
    updated = feed(core(), type="realtime",
                   truncation={"type": "retention_ratio", "retention_ratio": 0.8,
                               "token_limits": {"post_instructions": 5000}},
                   prompt={"id": "pmpt_1", "variables": {"name": "Ada"}, "version": "2"})  # fmt: skip
    GA.validate_json(wire(updated))


def test_update_merges_partially_and_replaces_turn_detection_whole() -> None:
    conn = core()
    feed(conn, type="realtime", instructions="Be brief.")
    final = feed(conn, type="realtime", audio={"input": {"turn_detection": {"type": "semantic_vad"}}}).session
    assert final["instructions"] == "Be brief." and final["audio"]["output"]["voice"] == "alloy"
    assert final["audio"]["input"]["turn_detection"] == {
        "type": "semantic_vad", "eagerness": "auto", "create_response": True, "interrupt_response": True}
