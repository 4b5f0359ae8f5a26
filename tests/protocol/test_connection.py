"""The sans-I/O connection of each side, driven by feeding bytes: no event loop, no transport, no clock."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from aoai_realtime.errors import ConnectionClosed, ServerError, SessionExpired
from aoai_realtime.protocol import events as ev
from aoai_realtime.protocol.codec import decode_client_event, encode
from aoai_realtime.protocol.connection import (
    CLIENT_TRANSITIONS,
    ClientConnection,
    ClientState,
    LocalProtocolError,
    ServerConnection,
    ServerState,
    encode_server_event,
)
from aoai_realtime.protocol.schema import RequestRejected, default_session
from aoai_realtime.protocol.session import ServerVad, SessionConfig


def server_msg(event: ev.ServerEvent) -> bytes:
    return encode(event)


def created(n: int = 1) -> bytes:
    return server_msg(ev.SessionCreatedEvent(event_id=f"c{n}", session={"type": "realtime", "id": f"sess_{n}"}))


def updated(**session: Any) -> bytes:
    return server_msg(ev.SessionUpdatedEvent(event_id="u", session={"type": "realtime", **session}))


def ids() -> Any:
    counter = iter(range(1, 1000))
    return lambda: f"evt_{next(counter)}"


HI = SessionConfig(instructions="hi")


def open_client(config: SessionConfig | None = HI) -> ClientConnection:
    conn = ClientConnection(config=config, new_event_id=ids())
    conn.connect()
    conn.connection_made()
    conn.receive_data(created())
    conn.data_to_send()
    if config is not None:
        conn.receive_data(updated(instructions="hi"))
    assert conn.state is ClientState.OPEN
    return conn


# -- client ---------------------------------------------------------------------------------------------------


def test_the_handshake_sends_the_config_after_session_created_and_opens_on_session_updated() -> None:
    conn = ClientConnection(config=SessionConfig(instructions="hi", turn_detection=ServerVad()), new_event_id=ids())
    conn.connect()
    conn.connection_made()
    assert conn.data_to_send() == []  # nothing before the service greets
    event = conn.receive_data(created())
    assert isinstance(event, ev.SessionCreatedEvent) and conn.state is ClientState.CONFIGURING
    (sent,) = conn.data_to_send()
    update = decode_client_event(sent)
    assert isinstance(update, ev.SessionUpdateEvent) and update.event_id == "evt_1"
    assert update.session["instructions"] == "hi" and update.session["type"] == "realtime"
    assert conn.data_to_send() == []  # sent once
    conn.receive_data(updated(instructions="hi"))
    assert conn.state is ClientState.OPEN and conn.session["instructions"] == "hi"


def test_without_a_config_session_created_opens_the_session() -> None:
    conn = open_client(None)
    assert conn.data_to_send() == []


def test_a_refused_config_fails_the_connection_with_the_param() -> None:
    conn = ClientConnection(config={"type": "realtime", "voice": "x"}, new_event_id=ids())
    conn.connect()
    conn.connection_made()
    conn.receive_data(created())
    other = ev.ErrorDetails(type="invalid_request_error", code="x", message="another request", event_id="evt_99")
    conn.receive_data(server_msg(ev.RealtimeErrorEvent(event_id="e0", error=other)))
    assert conn.state is ClientState.CONFIGURING  # someone else's error is not the answer to our config
    err = ev.ErrorDetails(type="invalid_request_error", code="unknown_parameter", message="Unknown parameter: 'x'.",
                          param="session.voice", event_id="evt_1")
    conn.receive_data(server_msg(ev.RealtimeErrorEvent(event_id="e1", error=err)))
    assert conn.state is ClientState.FAILED
    assert isinstance(conn.failure, ServerError) and conn.failure.param == "session.voice"
    assert "the service rejected the session config" in str(conn.failure)


@pytest.mark.parametrize("state_of", ["connecting", "awaiting_created", "configuring", "reconnecting", "closed"])
def test_client_events_are_refused_until_the_session_is_open(state_of: str) -> None:
    conn = ClientConnection(config=SessionConfig(instructions="hi"), new_event_id=ids())
    steps = {
        "connecting": lambda: None,
        "awaiting_created": lambda: (conn.connect(), conn.connection_made()),
        "configuring": lambda: (conn.connect(), conn.connection_made(), conn.receive_data(created())),
        "reconnecting": lambda: (
            conn.connect(), conn.connection_made(), conn.receive_data(created()), conn.receive_data(updated()),
            conn.connection_lost(1006, "", may_retry=True)),
        "closed": conn.close,
    }
    steps[state_of]()
    assert conn.state.value == state_of
    with pytest.raises(LocalProtocolError, match=f"can't handle send in state {state_of}"):
        conn.send(ev.InputAudioBufferCommitEvent())


def test_an_open_session_sends_in_its_dialect() -> None:
    conn = ClientConnection(dialect="beta", new_event_id=ids())
    conn.connect()
    conn.connection_made()
    conn.receive_data(created())
    data = conn.send(ev.InputAudioBufferCommitEvent(event_id="x"))
    assert json.loads(data) == {"type": "input_audio_buffer.commit", "event_id": "x"}


def test_a_reconnect_runs_the_same_handshake_with_the_confirmed_updates_and_an_empty_conversation() -> None:
    conn = open_client()
    conn.receive_data(server_msg(ev.ConversationItemAdded(event_id="a", item=ev.Item(id="item_1", type="message"))))
    assert conn.conversation.last_item_id() == "item_1"
    conn.remember_update({"type": "realtime", "audio": {"output": {"voice": "cedar"}}})
    assert conn.connection_lost(1006, "abnormal", may_retry=True) is ClientState.RECONNECTING
    conn.connection_made()
    assert conn.conversation.last_item_id() is None  # a new session starts empty
    conn.receive_data(created(2))
    (sent,) = conn.data_to_send()
    session = json.loads(sent)["session"]
    assert session["instructions"] == "hi" and session["audio"]["output"]["voice"] == "cedar"
    err = ev.ErrorDetails(type="invalid_request_error", code="c", message="no", event_id=json.loads(sent)["event_id"])
    conn.receive_data(server_msg(ev.RealtimeErrorEvent(event_id="e", error=err)))
    assert conn.state is ClientState.FAILED and "the new session rejected" in str(conn.failure)


def test_a_reconnect_handshake_that_drops_is_retried() -> None:
    conn = open_client()
    conn.connection_lost(1006, "", may_retry=True)
    conn.connection_made()  # the new socket drops before session.created
    assert conn.connection_lost(None, "reset", may_retry=True) is ClientState.RECONNECTING
    assert conn.connection_lost(None, "refused", may_retry=True) is ClientState.RECONNECTING  # connect failed


@pytest.mark.parametrize(
    ("code", "reason", "may_retry"),
    [(3000, "invalid_request_error.invalid_api_key", True), (4001, "", True), (1006, "", False)],
)
def test_a_lost_connection_that_no_retry_can_mend_fails(code: int, reason: str, may_retry: bool) -> None:
    conn = open_client()
    assert conn.connection_lost(code, reason, may_retry=may_retry) is ClientState.FAILED
    assert isinstance(conn.failure, ConnectionClosed) and conn.failure.code == code


def test_a_connection_that_never_had_a_session_is_not_retried() -> None:
    conn = ClientConnection(new_event_id=ids())
    conn.connect()
    conn.connection_made()
    assert conn.connection_lost(1006, "", may_retry=True) is ClientState.FAILED


def test_session_expiry_is_expired_not_a_reconnect() -> None:
    conn = open_client()
    err = ev.ErrorDetails(type="invalid_request_error", code="session_expired", message="max duration")
    conn.receive_data(server_msg(ev.RealtimeErrorEvent(event_id="e", error=err)))
    assert conn.connection_lost(1001, "going away", may_retry=True) is ClientState.EXPIRED
    assert isinstance(conn.failure, SessionExpired)
    conn.connect()  # a new connect may follow (the application's rollover)
    assert conn.failure is None and conn.state is ClientState.CONNECTING


def test_illegal_calls_name_the_trigger_and_the_state() -> None:
    conn = open_client()
    with pytest.raises(LocalProtocolError, match="can't handle connection_made in state open"):
        conn.connection_made()
    with pytest.raises(LocalProtocolError, match="can't handle connect in state open"):
        conn.connect()
    conn.close()
    assert conn.connection_lost(1000, "", may_retry=True) is ClientState.CLOSED  # our own close is not a loss


def test_every_state_is_reachable_and_every_state_can_close() -> None:
    reachable = {ClientState.CONNECTING}
    frontier = [ClientState.CONNECTING]
    while frontier:
        state = frontier.pop()
        for (src, _), dst in CLIENT_TRANSITIONS.items():
            if src is state and dst not in reachable:
                reachable.add(dst)
                frontier.append(dst)
    assert reachable == set(ClientState)
    conn = ClientConnection()
    for state in ClientState:
        conn.state = state
        conn.close()
        assert conn.state is ClientState.CLOSED


def test_a_malformed_message_leaves_the_client_state_unchanged() -> None:
    conn = open_client()
    before = (conn.state, dict(conn.session))
    with pytest.raises(Exception, match="not valid JSON"):
        conn.receive_data(b"{")
    assert (conn.state, conn.session) == before


# -- server ---------------------------------------------------------------------------------------------------


def server(dialect: Any = "ga") -> ServerConnection:
    conn = ServerConnection(default_session(model="m", instructions="i", session_id="sess_1", expires_at=0),
                            dialect=dialect)
    first = conn.start()
    assert first.session["id"] == "sess_1"
    return conn


def rejection(conn: ServerConnection, message: Any) -> RequestRejected:
    data = message if isinstance(message, bytes) else json.dumps(message).encode()
    with pytest.raises(RequestRejected) as info:
        conn.receive_data(data)
    return info.value


def test_the_server_refuses_nothing_before_session_created() -> None:
    conn = ServerConnection(default_session(model="m", instructions="i", session_id="s", expires_at=0))
    with pytest.raises(LocalProtocolError, match="can't handle receive in state connecting"):
        conn.receive_data(b'{"type": "input_audio_buffer.commit"}')


@pytest.mark.parametrize(
    ("message", "code", "param", "words"),
    [
        ({"type": "conversation.item.delete", "event_id": "e1"}, "missing_required_parameter", "item_id", "'item_id'"),
        ({"type": "conversation.item.delete", "item_id": 5, "event_id": "e1"}, "invalid_type", "item_id",
         "expected a string, but got an integer"),
        ({"type": "conversation.item.create", "item": {"type": "message", "content": "hi"}, "event_id": "e1"},
         "invalid_type", "item.content", "expected an array, but got a string"),
        ({"type": "conversation.item.create", "item": {"type": "message", "content": [{"text": "x"}]},
          "event_id": "e1"}, "missing_required_parameter", "item.content[0].type", "'item.content[0].type'"),
        ({"type": "conversation.item.truncate", "item_id": "i", "content_index": 0, "audio_end_ms": "10",
          "event_id": "e1"}, "invalid_type", "audio_end_ms", "expected an integer"),
        ({"type": "session.bogus", "event_id": "e1"}, "invalid_value", "type", "'session.update'"),
        ({"event_id": "e1"}, "missing_required_parameter", "type", "'type'"),
    ],
)
def test_the_server_refuses_a_malformed_event_naming_its_param(
    message: dict[str, Any], code: str, param: str, words: str
) -> None:
    error = rejection(server(), message)
    assert (error.code, error.param, error.event_id) == (code, param, "e1")
    assert words in error.message


def test_not_json_is_invalid_json_and_the_session_goes_on() -> None:
    conn = server()
    for data in (b"not json", b"[1, 2]", b'{"type": "x"'):
        error = rejection(conn, data)
        assert error.code == "invalid_json" and error.event_id is None
    assert isinstance(conn.receive_data(b'{"type": "input_audio_buffer.clear"}'), ev.InputAudioBufferClearEvent)


def test_error_event_carries_the_refusal() -> None:
    error = rejection(server(), {"type": "conversation.item.delete", "event_id": "e7"})
    event = ServerConnection.error_event(error, None)
    assert msgspec.to_builtins(event.error) == {
        "type": "invalid_request_error", "code": "missing_required_parameter",
        "message": "Missing required parameter: 'item_id'.", "param": "item_id", "event_id": "e7"}


def test_the_server_applies_a_preview_update_through_the_dialect() -> None:
    conn = server("beta")
    out = conn.update_session({"voice": "ash", "input_audio_format": "g711_ulaw", "turn_detection": None})
    assert out.session["audio"]["output"]["voice"] == "ash"
    assert conn.session["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert conn.session["audio"]["input"]["turn_detection"] is None
    data = encode_server_event(out, "beta")
    assert data is not None and json.loads(data)["session"]["input_audio_format"] == "g711_ulaw"
    with pytest.raises(RequestRejected) as info:
        conn.update_session({"output_modalities": ["text"]})
    assert info.value.param == "session.output_modalities"


def test_the_voice_is_locked_once_the_session_has_spoken() -> None:
    conn = server()
    conn.voice_locked = True
    with pytest.raises(RequestRejected) as info:
        conn.update_session({"type": "realtime", "audio": {"output": {"voice": "ash"}}})
    assert info.value.code == "cannot_update_voice"


def test_expiry_sends_session_expired_then_closes_with_1001() -> None:
    conn = server()
    event = conn.expire(3600)
    assert event.error.code == "session_expired" and "60 minutes" in event.error.message
    assert (conn.state, conn.close_code) == (ServerState.EXPIRED, 1001)
    with pytest.raises(LocalProtocolError, match="can't handle receive in state expired"):
        conn.receive_data(b'{"type": "input_audio_buffer.clear"}')


def test_preview_server_events_take_their_beta_names_or_are_not_sent() -> None:
    item = ev.Item(id="item_1", type="message", role="assistant",
                   content=[ev.ContentPart(type="output_audio", transcript="hi")])
    added = encode_server_event(ev.ConversationItemAdded(event_id="a", item=item), "beta")
    assert added is not None
    wire = json.loads(added)
    assert wire["type"] == "conversation.item.created" and wire["item"]["content"][0]["type"] == "audio"
    assert encode_server_event(ev.ConversationItemDone(event_id="d", item=item), "beta") is None
    delta = encode_server_event(ev.ResponseAudioDeltaEvent(event_id="x", response_id="r", item_id="i",
                                                           output_index=0, content_index=0, delta="AA=="), "beta")
    assert delta is not None and json.loads(delta)["type"] == "response.audio.delta"


def test_the_docs_draw_the_tables_as_they_are() -> None:
    from pathlib import Path

    from aoai_realtime.protocol.connection import SERVER_TRANSITIONS, mermaid

    design = (Path(__file__).parents[2] / "docs" / "design.md").read_text(encoding="utf-8")
    assert mermaid() in design
    assert mermaid(SERVER_TRANSITIONS) in design
