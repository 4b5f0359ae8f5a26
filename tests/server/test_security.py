"""CORS from an explicit allow-list, secrets never echoed (responses and logs), trusted-proxy address logic,
persona templates and session building."""

from __future__ import annotations

import asyncio
import logging

import pytest

from aoai_realtime.errors import ConfigError
from aoai_realtime.server import Persona, ServerSettings, ToolRegistry, TrustedProxies, User, build_session, client_ip
from aoai_realtime.testing.fake_upstream import FakeUpstream

from .support import OFFER, UPSTREAM_KEY, MakeServer, alice

ORIGIN = "https://app.example.com"


@pytest.mark.integration
async def test_cors_echoes_an_allowed_origin_with_vary(make_server: MakeServer) -> None:
    _, client = await make_server(cors_origins=(ORIGIN, "https://other.example.com"))
    resp = await client.post(
        "/api/realtime/session", json={"persona": "assistant"}, headers={**alice(), "Origin": ORIGIN}
    )
    assert resp.status_code == 200
    assert resp.headers["access-control-allow-origin"] == ORIGIN
    assert "Origin" in resp.headers["vary"]

    preflight = await client.options(
        "/api/realtime/calls",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "," not in preflight.headers["access-control-allow-origin"]


@pytest.mark.integration
async def test_cors_ignores_other_origins(make_server: MakeServer) -> None:
    _, client = await make_server(cors_origins=(ORIGIN,))
    evil = "https://evil.example.net"
    resp = await client.post(
        "/api/realtime/session", json={"persona": "assistant"}, headers={**alice(), "Origin": evil}
    )
    assert "access-control-allow-origin" not in resp.headers
    preflight = await client.options(
        "/api/realtime/session", headers={"Origin": evil, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers


@pytest.mark.integration
async def test_no_cors_headers_without_an_allow_list(make_server: MakeServer) -> None:
    _, client = await make_server()
    resp = await client.post(
        "/api/realtime/session", json={"persona": "assistant"}, headers={**alice(), "Origin": ORIGIN}
    )
    assert "access-control-allow-origin" not in resp.headers


def test_wildcard_origin_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="explicitly"):
        ServerSettings(cors_origins=("*",))


@pytest.mark.integration
async def test_the_upstream_key_never_appears_in_responses_or_logs(
    make_server: MakeServer, fake: FakeUpstream, all_logs: pytest.LogCaptureFixture
) -> None:
    """Drive every route through success and every failure mode; scan every reply and log record."""
    server, client = await make_server(timeout_s=0.3)
    texts: list[str] = []

    async def record(resp_coro: object) -> None:
        resp = await resp_coro  # type: ignore[misc]
        texts.append(resp.text)
        texts.extend(f"{k}: {v}" for k, v in resp.headers.items())

    fake.fail_body = f"error: invalid key {UPSTREAM_KEY} (Bearer {UPSTREAM_KEY})"
    for status in (None, 400, 401, 429, 500, 503):
        fake.fail_status = status
        await record(client.post("/api/realtime/session", json={"persona": "assistant"}, headers=alice()))
        await record(
            client.post(
                "/api/realtime/calls?persona=assistant",
                content=OFFER,
                headers={**alice(), "Content-Type": "application/sdp"},
            )
        )
    fake.fail_status = None
    fake.hang = True
    await record(client.post("/api/realtime/session", json={"persona": "assistant"}, headers=alice()))
    fake.hang = False
    await record(
        client.post("/api/realtime/session", json={"persona": "assistant", "key": UPSTREAM_KEY}, headers=alice())
    )
    await record(client.get("/openapi.json"))
    await record(client.get("/api/realtime/personas", headers=alice()))
    for live in list(server.calls.values()):
        await live.sideband.hang_up()
        assert live.task is not None
        await asyncio.wait_for(live.task, 5)

    assert any("upstream" in r.getMessage() for r in all_logs.records)  # the failures were logged...
    for text in texts:
        assert UPSTREAM_KEY not in text
    for record_ in all_logs.records:
        line = logging.Formatter("%(message)s %(exc_text)s").format(record_)
        assert UPSTREAM_KEY not in line  # ...without the key
        assert "ek_" not in line  # nor a minted token


@pytest.mark.parametrize(
    ("peer", "xff", "trusted", "expected"),
    [
        ("198.51.100.1", ["1.2.3.4"], (), "198.51.100.1"),  # untrusted peer: header ignored
        ("10.0.0.5", ["1.2.3.4"], ("10.0.0.0/8",), "1.2.3.4"),
        ("10.0.0.5", ["6.6.6.6, 1.2.3.4"], ("10.0.0.0/8",), "1.2.3.4"),  # left-most is client-written
        ("10.0.0.5", ["1.2.3.4, 10.0.0.9"], ("10.0.0.0/8",), "1.2.3.4"),  # two proxies
        ("10.0.0.5", ["1.2.3.4", "5.6.7.8"], ("10.0.0.0/8",), "5.6.7.8"),  # several headers: the last counts
        ("10.0.0.5", [], ("10.0.0.0/8",), "10.0.0.5"),
        ("10.0.0.5", ["garbage"], ("10.0.0.0/8",), "10.0.0.5"),
        ("10.0.0.5", ["10.0.0.7"], ("10.0.0.0/8",), "10.0.0.7"),  # only proxies: the farthest one
        ("::1", ["2001:db8::1"], ("::1",), "2001:db8::1"),
        (None, ["1.2.3.4"], (), "unknown"),
    ],
)
def test_client_ip(peer: str | None, xff: list[str], trusted: tuple[str, ...], expected: str) -> None:
    assert client_ip(peer, xff, TrustedProxies(trusted)) == expected


def test_trusted_proxies_reject_garbage() -> None:
    with pytest.raises(ConfigError):
        TrustedProxies(["not-an-ip"])


def test_persona_template_is_checked_at_startup() -> None:
    with pytest.raises(ConfigError, match="user_email"):
        Persona(id="p", instructions="Hi {user_email}")
    with pytest.raises(ConfigError):
        Persona(id="Bad Id", instructions="x")
    with pytest.raises(ConfigError):
        Persona(id="p", instructions="unbalanced {")


def test_user_values_are_injected_verbatim() -> None:
    persona = Persona(id="p", instructions="Name: {user_name}. Role: {user_role}. {{literal}}", tools=())
    user = User(id="u", name="{user_role} Eve", role="x", personas=frozenset({"p"}))
    session = build_session(persona, user, model="m", registry=ToolRegistry())
    assert session["instructions"] == "Name: {user_role} Eve. Role: x. {literal}"
    assert session["tools"] == []
    assert session["tool_choice"] == "auto"


def test_persona_with_an_unregistered_tool_is_refused() -> None:
    from aoai_realtime.auth import ApiKey
    from aoai_realtime.endpoints import Endpoint
    from aoai_realtime.server import RealtimeServer, UpstreamClient

    with pytest.raises(ConfigError, match="not registered"):
        RealtimeServer(
            settings=ServerSettings(),
            upstream=UpstreamClient(Endpoint.local("http://127.0.0.1:9/v1"), ApiKey("k")),
            auth=lambda request: None,
            personas=[Persona(id="p", instructions="x", tools=("missing",))],
        )
