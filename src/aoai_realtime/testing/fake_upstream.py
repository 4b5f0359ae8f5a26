"""A fake Realtime upstream for tests and benchmarks: an aiohttp app on 127.0.0.1.

It answers ``POST /v1/realtime/client_secrets``, ``POST /v1/realtime/calls`` (201 + ``Location``),
``POST /v1/realtime/calls/{id}/hangup`` and the sideband WebSocket ``GET /v1/realtime?call_id=``, with a
configurable latency and failure mode, and records what it was sent so tests can assert on it::

    async with FakeUpstream(api_key="k") as fake:
        endpoint, auth = fake.endpoint, fake.auth
        fake.latency_s = 0.15
        fake.fail_status = 429   # every route answers 429 (with Retry-After) until reset to None
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from types import TracebackType
from typing import Any

from aiohttp import WSMsgType, web

from ..auth import ApiKey
from ..endpoints import Endpoint

__all__ = ["FakeSideband", "FakeUpstream"]

ANSWER_SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"


class FakeSideband:
    """One sideband connection: what the server sent (``received``) and a way to push events to it."""

    def __init__(self, ws: web.WebSocketResponse, call_id: str) -> None:
        self.ws = ws
        self.call_id = call_id
        self.received: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)
        self.closed = asyncio.Event()

    async def send(self, event: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(event))

    async def next(self, type_: str | None = None, *, timeout: float = 5.0) -> dict[str, Any]:
        """The next event the server sent (of ``type_`` if given; others are skipped)."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self.received.get()
                if type_ is None or event.get("type") == type_:
                    return event


class FakeUpstream:
    """Run with ``async with``; ``endpoint``/``auth`` point the server at it."""

    def __init__(
        self, *, api_key: str = "fake-upstream-key", latency_s: float = 0.0, port: int = 0, record: bool = True
    ) -> None:
        self.api_key = api_key
        self.latency_s = latency_s
        self.fail_status: int | None = None
        self.fail_body = ""
        self.retry_after: str | None = "7"
        self.hang = False
        self.minted: dict[str, dict[str, Any]] = {}
        self.secrets_requests: list[dict[str, Any]] = []
        self.calls: dict[str, str] = {}
        self.hangups: list[str] = []
        self.sidebands: dict[str, FakeSideband] = {}
        self.sideband_connected: asyncio.Queue[FakeSideband] = asyncio.Queue(maxsize=100)
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self.port = port
        self.record = record  # False for benchmarks: keep no per-request state

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint.local(f"{self.base_url}/v1")

    @property
    def auth(self) -> ApiKey:
        return ApiKey(self.api_key)

    async def __aenter__(self) -> FakeUpstream:
        app = web.Application()
        # Both roots: /v1 (OpenAI, Endpoint.local) and /openai/v1 (Azure GA, the TypeScript SDK's server).
        for root in ("/v1", "/openai/v1"):
            app.router.add_post(f"{root}/realtime/client_secrets", self._secrets)
            app.router.add_post(f"{root}/realtime/calls", self._calls)
            app.router.add_post(f"{root}/realtime/calls/{{call_id}}/hangup", self._hangup)
            app.router.add_get(f"{root}/realtime", self._sideband)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, backlog=1024)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing.set()
        for sb in list(self.sidebands.values()):
            await sb.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _delay_or_fail(self) -> web.Response | None:
        if self.hang:
            await self._closing.wait()
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if self.fail_status is not None:
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return web.Response(status=self.fail_status, text=self.fail_body, headers=headers)
        return None

    def _authorized(self, request: web.Request) -> bool:
        return (
            request.headers.get("api-key") == self.api_key
            or request.headers.get("Authorization") == f"Bearer {self.api_key}"
        )

    async def _secrets(self, request: web.Request) -> web.Response:
        failed = await self._delay_or_fail()
        if failed is not None:
            return failed
        if not self._authorized(request):
            return web.json_response({"error": {"code": "invalid_api_key", "message": "bad key"}}, status=401)
        body = await request.json()
        token = "ek_" + secrets.token_hex(12)
        if self.record:
            self.secrets_requests.append(body)
            self.minted[token] = body["session"]
        ttl = int(body.get("expires_after", {}).get("seconds", 600))
        return web.json_response({"value": token, "expires_at": int(time.time()) + ttl, "session": body["session"]})

    async def _calls(self, request: web.Request) -> web.Response:
        failed = await self._delay_or_fail()
        if failed is not None:
            return failed
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.minted:
            return web.json_response({"error": {"message": "bad token"}}, status=401)
        if request.content_type != "application/sdp":
            return web.json_response({"error": {"message": "need application/sdp"}}, status=400)
        call_id = "rtc_" + secrets.token_hex(8)
        self.calls[call_id] = await request.text()
        return web.Response(
            status=201,
            text=ANSWER_SDP,
            content_type="application/sdp",
            headers={"Location": f"/v1/realtime/calls/{call_id}"},
        )

    async def _hangup(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.Response(status=401)
        call_id = request.match_info["call_id"]
        self.hangups.append(call_id)
        sb = self.sidebands.get(call_id)
        if sb is not None:
            await sb.ws.close()
        return web.Response(status=200)

    async def _sideband(self, request: web.Request) -> web.StreamResponse:
        call_id = request.query.get("call_id", "")
        if not self._authorized(request) or call_id not in self.calls:
            return web.Response(status=404 if self._authorized(request) else 401)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sb = FakeSideband(ws, call_id)
        self.sidebands[call_id] = sb
        await self.sideband_connected.put(sb)
        await sb.send({"type": "session.created", "event_id": "event_1", "session": self.minted_session(call_id)})
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await sb.received.put(json.loads(msg.data))
        sb.closed.set()
        return ws

    def minted_session(self, call_id: str) -> dict[str, Any]:
        # The session the call was created with: the last one minted (tests mint one per call).
        return next(reversed(self.minted.values()), {})


def main() -> None:
    """``python -m aoai_realtime.testing.fake_upstream --port P --latency-ms L --api-key K``: run until killed."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--api-key", default="fake-upstream-key")
    args = parser.parse_args()

    async def run() -> None:
        async with FakeUpstream(api_key=args.api_key, latency_s=args.latency_ms / 1000, port=args.port, record=False):
            await asyncio.Event().wait()

    try:
        import uvloop
    except ImportError:
        asyncio.run(run())
    else:
        uvloop.run(run())


if __name__ == "__main__":
    main()
