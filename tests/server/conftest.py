"""Fixtures: a fake upstream on 127.0.0.1, a RealtimeServer pointed at it, an in-process ASGI client."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from aoai_realtime.server import RateLimitSettings, RealtimeServer, ServerSettings, UpstreamClient, create_app
from aoai_realtime.testing.fake_upstream import FakeUpstream

from .support import PERSONAS, UPSTREAM_KEY, MakeServer, ToolLog, auth_hook, make_tools


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream(api_key=UPSTREAM_KEY) as upstream:
        yield upstream


@pytest.fixture
def tool_log() -> ToolLog:
    return ToolLog()


@pytest.fixture
async def make_server(fake: FakeUpstream, tool_log: ToolLog) -> AsyncIterator[MakeServer]:
    servers: list[RealtimeServer] = []
    clients: list[httpx.AsyncClient] = []

    async def factory(
        *, peer: str = "203.0.113.5", timeout_s: float = 5.0, **overrides: Any
    ) -> tuple[RealtimeServer, httpx.AsyncClient]:
        limits = overrides.pop(
            "rate_limits",
            RateLimitSettings(
                session_per_user="100/minute",
                session_per_ip="100/minute",
                call_per_user="100/minute",
                call_per_ip="100/minute",
            ),
        )
        hooks = overrides.pop("hooks", None)
        settings = ServerSettings(rate_limits=limits, **overrides)
        server = RealtimeServer(
            settings=settings,
            upstream=UpstreamClient(fake.endpoint, fake.auth, timeout_s=timeout_s),
            auth=auth_hook,
            personas=PERSONAS,
            tools=make_tools(tool_log),
            hooks=hooks,
        )
        await server.start()
        servers.append(server)
        app = create_app(server)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(peer, 40000)), base_url="http://testserver"
        )
        clients.append(client)
        return server, client

    yield factory
    for client in clients:
        await client.aclose()
    for server in servers:
        await server.close()


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog
