"""Fixtures: a fake upstream on 127.0.0.1, a RealtimeServer pointed at it, an in-process ASGI client."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; scripts/setup.sh --test)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
