"""Property-based tests from the served OpenAPI schema (schemathesis), run in-process against the app with a
fake upstream on 127.0.0.1: every generated request gets a documented status and a reply matching its schema,
and no request makes the server fail (5xx)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from starlette.testclient import TestClient

from aoai_realtime.server import RateLimitSettings, RealtimeServer, ServerSettings, UpstreamClient, create_app
from aoai_realtime.testing.fake_upstream import FakeUpstream

from .support import PERSONAS, UPSTREAM_KEY, ToolLog, auth_hook, bob, make_tools

pytestmark = pytest.mark.integration


@schemathesis.serializer("application/sdp")
def _sdp(ctx: Any, value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else str(value).encode()


def _app() -> FastAPI:
    fake = FakeUpstream(api_key=UPSTREAM_KEY)
    generous = "10000/minute"
    settings = ServerSettings(
        rate_limits=RateLimitSettings(
            session_per_user=generous, session_per_ip=generous, call_per_user=generous, call_per_ip=generous
        ),
        max_calls_per_user=100_000,
    )
    holder: dict[str, RealtimeServer] = {}

    # The fake upstream has to live in the app's event loop, so the lifespan starts it before the server.
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with fake:
            server = RealtimeServer(
                settings=settings,
                upstream=UpstreamClient(fake.endpoint, fake.auth),
                auth=auth_hook,
                personas=PERSONAS,
                tools=make_tools(ToolLog()),
            )
            holder["server"] = server
            async with server.lifespan(app):
                app.include_router(server.router)
                yield

    app = FastAPI(lifespan=lifespan)
    return app


def _schema_app() -> FastAPI:
    from aoai_realtime.auth import ApiKey
    from aoai_realtime.endpoints import Endpoint

    server = RealtimeServer(
        settings=ServerSettings(),
        upstream=UpstreamClient(Endpoint.local("http://127.0.0.1:9/v1"), ApiKey("unused")),
        auth=auth_hook,
        personas=PERSONAS,
        tools=make_tools(ToolLog()),
    )
    return create_app(server, static_dir=None)


schema = schemathesis.openapi.from_dict(_schema_app().openapi())


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(_app(), client=("203.0.113.8", 5000)) as test_client:
        yield test_client


@schema.parametrize()
@settings(max_examples=25, suppress_health_check=list(HealthCheck), deadline=None)
def test_api_conforms_to_its_schema(case: schemathesis.Case, client: TestClient) -> None:
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=bob())
    if not kwargs.get("cookies"):
        kwargs.pop("cookies", None)  # per-request cookies are deprecated in httpx; our API uses none
    if isinstance(kwargs.get("data"), bytes | str):
        kwargs["content"] = kwargs.pop("data")  # raw bodies go in content= for httpx
    response = client.request(**kwargs)
    case.validate_response(response)
    assert UPSTREAM_KEY not in response.text
