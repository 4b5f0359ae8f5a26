"""A browser opening the demo page, the server or the engine asks for /favicon.ico: it gets an icon (server, demo)
or 204 (engine), never a 404 in the console (issue 14 item 10)."""

from __future__ import annotations

import httpx

from aoai_realtime.auth import ApiKey
from aoai_realtime.endpoints import Endpoint
from aoai_realtime.server import STATIC_DIR, Persona, RealtimeServer, ServerSettings, UpstreamClient, create_app


async def get(app: object, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        return await client.get(path)


async def test_the_server_serves_its_icon() -> None:
    server = RealtimeServer(
        settings=ServerSettings(),
        upstream=UpstreamClient(Endpoint.local("http://127.0.0.1:9/v1"), ApiKey("k")),
        auth=lambda request: None,
        personas=[Persona(id="assistant", instructions="Be brief.")],
    )
    response = await get(create_app(server), "/favicon.ico")
    assert response.status_code == 200
    assert response.content == (STATIC_DIR / "favicon.ico").read_bytes()
    assert response.content[:4] == b"\x00\x00\x01\x00"  # an ICO file


async def test_the_engine_answers_no_content() -> None:
    from aoai_realtime.engine.app import create_app as engine_app
    from aoai_realtime.engine.brain.rules import RulesBrain
    from aoai_realtime.engine.engine import Engine, EngineConfig
    from aoai_realtime.testing.engine import load_test_speech

    engine = Engine(EngineConfig(api_key="k", brain=RulesBrain, speech=load_test_speech("fake")))
    try:
        response = await get(engine_app(engine), "/favicon.ico")
    finally:
        await engine.aclose()
    assert response.status_code == 204
