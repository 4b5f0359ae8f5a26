"""The server's only way out: mint ephemeral tokens, relay SDP offers, hang up calls, open sideband sockets.

One shared :class:`aiohttp.ClientSession` with a connection pool serves every request (DESIGN: httpx is slow
under concurrency here). Failures become :class:`UpstreamError` carrying the status the browser should get
(429, 502 or 503) and a ``Retry-After``; the upstream's body is never read into an error, a log line or a
response, so nothing the upstream echoes (keys, internal ids) can leak to the browser.

Towards Azure it authenticates with ``aoai_realtime.auth.ApiKey`` or ``EntraId`` (azure-identity); the URLs come
from ``aoai_realtime.endpoints.Endpoint`` (GA only: the preview API has no client_secrets or calls routes).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp

from ..auth import Auth
from ..endpoints import Endpoint
from ..errors import RealtimeError, get_logger

__all__ = ["Minted", "NewCall", "UpstreamClient", "UpstreamError"]

logger = get_logger(__name__)


class UpstreamError(RealtimeError):
    """The upstream failed. ``status`` is what to answer the browser (429, 502 or 503), with ``retry_after``.

    The message never contains the upstream's body or any credential.
    """

    def __init__(self, message: str, *, status: int, retry_after: int) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True, kw_only=True)
class Minted:
    """An ephemeral client secret: ``token`` (``ek_...``) valid until ``expires_at`` (Unix seconds)."""

    token: str
    expires_at: int


@dataclass(frozen=True, kw_only=True)
class NewCall:
    """A WebRTC call the upstream accepted: the SDP ``answer`` and the ``call_id`` from ``Location``."""

    answer: str
    call_id: str


def _retry_after(value: str | None, default: int) -> int:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), clamped to 1..300."""
    if value:
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
                seconds = when.timestamp() - time.time()
            except (TypeError, ValueError):
                seconds = default
        return max(1, min(300, math.ceil(seconds)))
    return default


_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


async def _error_code(resp: aiohttp.ClientResponse) -> str | None:
    """The ``error.code`` of an error reply, when it is a plain identifier (e.g. ``invalid_api_key``). Nothing
    else of the body is kept: it is never logged or passed on."""
    try:
        raw = await resp.content.read(8192)
        data = json.loads(raw)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    error = data.get("error") if isinstance(data, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) and _CODE.match(code) else None


async def _failure(resp: aiohttp.ClientResponse, what: str) -> UpstreamError:
    return _map_status(resp.status, resp.headers.get("Retry-After"), what, await _error_code(resp))


def _map_status(status: int, retry_after_header: str | None, what: str, code: str | None = None) -> UpstreamError:
    if code is not None:
        what = f"{what} (error code {code})"
    if status == 429:
        return UpstreamError(
            f"upstream rate limit on {what}", status=429, retry_after=_retry_after(retry_after_header, 5)
        )
    if status == 503:
        return UpstreamError(
            f"upstream unavailable on {what}", status=503, retry_after=_retry_after(retry_after_header, 5)
        )
    # 4xx other than 429 means our own configuration is wrong (key, deployment, session): the browser cannot
    # fix it, so it is a bad gateway, like any other upstream failure.
    return UpstreamError(f"upstream answered {status} on {what}", status=502, retry_after=10)


class UpstreamClient:
    """HTTP and WebSocket access to the Realtime service, sharing one pooled aiohttp session.

    Call :meth:`start` inside the running event loop (the app's lifespan does) and :meth:`close` at shutdown.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        auth: Auth,
        *,
        timeout_s: float = 10.0,
        pool_size: int = 256,
    ) -> None:
        self.endpoint = endpoint
        self._auth = auth
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the pooled session. Idempotent."""
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._pool_size, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout, trust_env=False)

    async def close(self) -> None:
        """Close the session and its connections. Idempotent."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    @property
    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("UpstreamClient.start() was not called; the app's lifespan starts it")
        return self._session

    async def mint(self, session: dict[str, Any], *, ttl_s: int) -> Minted:
        """Mint an ephemeral client secret carrying ``session`` (``POST /client_secrets``, reference 3.1)."""
        body = {"expires_after": {"anchor": "created_at", "seconds": ttl_s}, "session": session}
        headers = await self._auth.headers()
        try:
            async with self._http.post(self.endpoint.client_secrets_url, json=body, headers=headers) as resp:
                if resp.status != 200:
                    raise await _failure(resp, "client_secrets")
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._unreachable("client_secrets", exc) from None
        except ValueError:
            raise UpstreamError("upstream client_secrets reply is not JSON", status=502, retry_after=10) from None
        token = data.get("value") if isinstance(data, dict) else None
        expires_at = data.get("expires_at") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token or not isinstance(expires_at, int):
            raise UpstreamError(
                "upstream client_secrets reply lacks 'value' or 'expires_at'", status=502, retry_after=10
            )
        return Minted(token=token, expires_at=expires_at)

    async def create_call(self, offer: str, *, token: str) -> NewCall:
        """Relay an SDP offer with an ephemeral ``token`` (``POST /realtime/calls``, 201 + ``Location``)."""
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/sdp"}
        try:
            async with self._http.post(self.endpoint.calls_url, data=offer.encode(), headers=headers) as resp:
                if resp.status not in (200, 201):
                    raise await _failure(resp, "calls")
                answer = await resp.text()
                location = resp.headers.get("Location", "")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._unreachable("calls", exc) from None
        call_id = location.rstrip("/").rsplit("/", 1)[-1]
        if not answer.startswith("v=") or not call_id:
            raise UpstreamError("upstream calls reply lacks an SDP answer or a Location", status=502, retry_after=10)
        return NewCall(answer=answer, call_id=call_id)

    async def hangup(self, call_id: str, *, missing_ok: bool = False) -> None:
        """End a call (``POST /realtime/calls/{id}/hangup``). Failures are logged, not raised: best effort.
        ``missing_ok``: the call may be over already, so a 404 is expected (logged at debug level only)."""
        url = self.endpoint.call_url(call_id, "hangup")
        try:
            headers = await self._auth.headers()
            async with self._http.post(url, headers=headers) as resp:
                if resp.status == 404 and missing_ok:
                    logger.debug("hangup of call %s: the call was over already", call_id)
                elif resp.status >= 300:
                    code = await _error_code(resp)
                    logger.warning("hangup of call %s answered %d (error code %s)", call_id, resp.status, code)
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("hangup of call %s failed: %s", call_id, type(exc).__name__)

    @asynccontextmanager
    async def sideband(self, call_id: str) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
        """Open the sideband WebSocket (``?call_id=``) with the server's own credentials (reference 3.1/3.2)."""
        headers = await self._auth.headers()
        url = self.endpoint.websocket_url(call_id=call_id)
        try:
            ws = await self._http.ws_connect(url, headers=headers, heartbeat=20.0, max_msg_size=16 * 2**20)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._unreachable("sideband", exc) from None
        try:
            yield ws
        finally:
            await ws.close()

    @staticmethod
    def _unreachable(what: str, exc: BaseException) -> UpstreamError:
        # The exception's text may hold a URL with a key in its query (browser-style Azure auth): log its type.
        logger.warning("upstream %s unreachable: %s", what, type(exc).__name__)
        kind = "timed out" if isinstance(exc, TimeoutError | asyncio.TimeoutError) else "unreachable"
        return UpstreamError(f"upstream {what} {kind}", status=503, retry_after=2)
