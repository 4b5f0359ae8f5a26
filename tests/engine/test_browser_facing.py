"""What a browser page needs from the engine (issue 13 items 2, 3): CORS on the HTTP routes (any origin on
loopback, configured origins elsewhere) and Azure's ``?webrtcfilter=on`` (only the allow-listed events reach
the data channel; the sideband gets them all)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets

from aoai_realtime.engine import Engine, EngineConfig, ScriptedBrain
from aoai_realtime.engine.app import create_app
from aoai_realtime.engine.calls import WEBRTC_FILTER
from aoai_realtime.testing.engine import load_test_speech

from .test_calls_hostile import KEY, data_channel_call, engine_url, mint

__all__ = ["engine_url"]  # the fixture, shared

PREFLIGHT = {"Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization,content-type"}  # fmt: skip
ROUTES = ["/v1/realtime/client_secrets", "/openai/v1/realtime/client_secrets", "/v1/realtime/calls",
          "/openai/v1/realtime/calls", "/v1/realtime/calls/rtc_x/hangup"]  # fmt: skip


def user_text(text: str) -> dict[str, Any]:
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    return {"type": "conversation.item.create", "item": item}


def engine(**config: Any) -> Engine:
    return Engine(EngineConfig(api_key=KEY, brain=lambda: ScriptedBrain([]), speech=load_test_speech("fake"), **config))


def client(engine: Engine, host: str) -> httpx.AsyncClient:
    """An in-process HTTP client; ``host`` is the address the request reaches (loopback or not)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(engine)), base_url=f"http://{host}:8765")


# -- item 2: CORS -------------------------------------------------------------------------------------------------


async def test_on_loopback_any_origin_may_call_the_routes() -> None:
    async with client(engine(), "127.0.0.1") as http:
        for route in ROUTES:
            r = await http.options(route, headers={"Origin": "http://localhost:5173", **PREFLIGHT})
            assert r.status_code == 200, route
            assert r.headers["access-control-allow-origin"] in ("*", "http://localhost:5173")
            assert "POST" in r.headers["access-control-allow-methods"]
            assert "authorization" in r.headers["access-control-allow-headers"].lower()
        headers = {"Origin": "http://localhost:5173", "Authorization": f"Bearer {KEY}"}
        r = await http.post("/v1/realtime/client_secrets", json={}, headers=headers)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
        assert "location" in r.headers["access-control-expose-headers"].lower()


async def test_off_loopback_only_configured_origins_may() -> None:
    async with client(engine(), "10.0.0.5") as http:  # no origins configured, not loopback: no CORS at all
        r = await http.options("/v1/realtime/calls", headers={"Origin": "http://app.example", **PREFLIGHT})
        assert "access-control-allow-origin" not in r.headers
    async with client(engine(cors_origins=("https://app.example",)), "10.0.0.5") as http:
        r = await http.options("/v1/realtime/calls", headers={"Origin": "https://app.example", **PREFLIGHT})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://app.example"
        r = await http.options("/v1/realtime/calls", headers={"Origin": "https://evil.example", **PREFLIGHT})
        assert r.status_code == 400 and "access-control-allow-origin" not in r.headers


# -- item 3: webrtcfilter=on ------------------------------------------------------------------------------------


@pytest.mark.integration
async def test_webrtcfilter_on_sends_the_browser_only_the_allow_list(engine_url: str) -> None:
    token = await mint(engine_url)
    async with data_channel_call(engine_url, token, query="?webrtcfilter=on") as call:
        side_url = engine_url.replace("http://", "ws://") + f"/v1/realtime?call_id={call.call_id}"
        async with websockets.connect(side_url, additional_headers={"Authorization": f"Bearer {KEY}"}) as side:
            call.send(user_text("hi"))
            call.send({"type": "response.create"})
            side_kinds: list[str] = []
            while "response.done" not in side_kinds:
                side_kinds.append(json.loads(await asyncio.wait_for(side.recv(), 10))["type"])
            browser = await call.until("response.output_text.done")
        browser_kinds = [e["type"] for e in browser]
        assert set(browser_kinds) <= WEBRTC_FILTER
        assert "conversation.item.added" in browser_kinds and "response.output_text.delta" in browser_kinds
        assert "".join(e["delta"] for e in browser if e["type"] == "response.output_text.delta") == "Hello by text."
        # the sideband got what the browser did not
        assert {"response.created", "response.done"} <= set(side_kinds)
        # an error is not on the list either: the next thing the browser gets is the item added after it
        while not call.inbox.empty():
            call.inbox.get_nowait()
        call.send({"type": "bogus"})
        call.send(user_text("x"))
        assert (await asyncio.wait_for(call.inbox.get(), 10))["type"] == "conversation.item.added"
