"""WebSocketTransport over real sockets on 127.0.0.1 against a small Realtime-shaped websockets server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from aoai_realtime.auth import ApiKey
from aoai_realtime.client import RealtimeClient, Reconnected, ReconnectPolicy
from aoai_realtime.endpoints import Endpoint
from aoai_realtime.errors import AuthenticationError, ConnectError
from aoai_realtime.protocol import events as ev
from aoai_realtime.protocol.session import SessionConfig
from aoai_realtime.transport.websocket import WebSocketTransport

pytestmark = pytest.mark.integration

KEY = "0123456789abcdef0123456789abcdef"


class Server_:
    def __init__(self) -> None:
        self.handshakes: list[dict[str, Any]] = []
        self.frames: list[tuple[bool, Any]] = []
        self.sessions = 0
        self.connections: list[ServerConnection] = []

    def check_auth(self, conn: ServerConnection, request: Request) -> Response | None:
        query = request.path.partition("?")[2]
        self.handshakes.append({"path": request.path, "api-key": request.headers.get("api-key"), "query": query})
        if request.headers.get("api-key") != KEY and f"api-key={KEY}" not in query:
            return conn.respond(401, "Unauthorized\n")
        return None

    async def handler(self, conn: ServerConnection) -> None:
        self.connections.append(conn)
        self.sessions += 1
        await conn.send(json.dumps({"type": "session.created", "event_id": "e0",
                                    "session": {"type": "realtime", "id": f"sess_{self.sessions}"}}))
        async for message in conn:
            self.frames.append((isinstance(message, str), json.loads(message)))
            data = json.loads(message)
            if data["type"] == "session.update":
                await conn.send(json.dumps({"type": "session.updated", "event_id": "e1", "session": data["session"]}))
            elif data["type"] == "input_audio_buffer.clear":
                await conn.send(json.dumps({"type": "input_audio_buffer.cleared", "event_id": "e2"}))


@pytest.fixture
async def server() -> AsyncIterator[tuple[Server_, int]]:
    state = Server_()
    ws_server: Server = await serve(state.handler, "127.0.0.1", 0, process_request=state.check_auth)
    port = ws_server.sockets[0].getsockname()[1]
    try:
        yield state, port
    finally:
        ws_server.close()
        await ws_server.wait_closed()


async def test_credentials_are_sent_and_events_flow_as_text_frames(server: tuple[Server_, int]) -> None:
    state, port = server
    transport = WebSocketTransport(Endpoint.local(f"http://127.0.0.1:{port}/v1", model="m"), ApiKey(KEY))
    async with RealtimeClient(transport, session=SessionConfig(instructions="hi")) as client:
        assert client.session["instructions"] == "hi"
        await client.clear_audio()
        await client.wait_for(ev.InputAudioBufferClearedEvent, timeout=5)
    assert state.handshakes[0]["api-key"] == KEY
    assert state.handshakes[0]["path"] == "/v1/realtime?model=m"
    assert all(is_text for is_text, _ in state.frames)  # the service expects text frames


async def test_key_in_query_for_browser_style_azure(server: tuple[Server_, int]) -> None:
    state, port = server
    transport = WebSocketTransport(Endpoint.local(f"http://127.0.0.1:{port}/v1"), ApiKey(KEY), key_in_query=True)
    async with RealtimeClient(transport):
        pass
    assert state.handshakes[0]["api-key"] is None
    assert f"api-key={KEY}" in state.handshakes[0]["query"]


async def test_wrong_key_is_an_authentication_error_without_the_key(server: tuple[Server_, int]) -> None:
    _, port = server
    wrong = "fedcba9876543210fedcba9876543210"
    transport = WebSocketTransport(Endpoint.local(f"http://127.0.0.1:{port}/v1"), ApiKey(wrong), key_in_query=True)
    client = RealtimeClient(transport)
    with pytest.raises(AuthenticationError) as info:
        await client.connect()
    assert info.value.status == 401
    assert wrong not in str(info.value)


async def test_nothing_listening_is_a_connect_error() -> None:
    transport = WebSocketTransport(Endpoint.local("http://127.0.0.1:9/v1"), None, open_timeout=2)
    with pytest.raises(ConnectError, match=r"127\.0\.0\.1:9"):
        await RealtimeClient(transport).connect()


async def test_reconnects_after_the_server_drops_the_socket(server: tuple[Server_, int]) -> None:
    state, port = server
    transport = WebSocketTransport(Endpoint.local(f"http://127.0.0.1:{port}/v1"), ApiKey(KEY))

    async def no_wait(_: float) -> None:
        return None

    client = RealtimeClient(transport, session={"type": "realtime", "instructions": "keep me"}, sleep=no_wait,
                            reconnect=ReconnectPolicy(max_attempts=3))
    async with client:
        stream = client.events()
        await state.connections[0].close(1011, "server restart")
        event = await anext(stream)
        while not isinstance(event, Reconnected):
            event = await anext(stream)
        assert client.session["instructions"] == "keep me"  # configured before Reconnected is announced
    assert state.sessions == 2
    resent = [f for _, f in state.frames if f["type"] == "session.update"]
    assert len(resent) == 2
