"""WebSocket transport (``websockets``): one JSON text frame per event, credentials on every handshake.

The TypeScript SDK this project is modelled on opened its WebSocket without credentials; here every
:meth:`connect` asks the injected :class:`~aoai_realtime.auth.Auth` for fresh headers (an Entra ID token may have
been refreshed since the last attempt). Keepalive pings run every ``ping_interval`` seconds; a peer that stops
answering is dropped after ``ping_timeout`` and the client's reconnect policy takes over. Incoming frames wait
in a bounded queue (``max_queue`` frames) so a slow reader pushes back on the socket instead of growing memory.

A 401/403 at the handshake raises :class:`~aoai_realtime.errors.AuthenticationError` (never retried); other
handshake failures raise :class:`~aoai_realtime.errors.ConnectError`. The message says which URL (without its
query string, which may hold a key) and what to check.
"""

from __future__ import annotations

import contextlib
import ssl
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed as WsConnectionClosed
from websockets.exceptions import InvalidHandshake, InvalidStatus

from ..auth import ApiKey, Auth
from ..endpoints import Endpoint
from ..errors import AuthenticationError, ConnectError, ConnectionClosed
from .base import AudioChannel, Dialect

__all__ = ["WebSocketTransport"]


def _safe_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


class WebSocketTransport:
    """A Realtime session over a WebSocket. Reusable: ``connect()`` again after ``close()`` opens a new socket.

    ``ssl_context`` replaces the system trust store for ``wss://`` (e.g. the local engine's self-signed
    certificate, :mod:`aoai_realtime.testing.tls`). ``intent="transcription"`` opens a transcription session
    (speech in, transcripts out, no responses); give the client a session like
    ``{"type": "transcription", "audio": {"input": {"transcription": {"model": ...}}}}``.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        auth: Auth | None,
        *,
        call_id: str | None = None,
        open_timeout: float = 10.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        max_queue: int = 256,
        max_size: int | None = 16 * 1024 * 1024,
        key_in_query: bool = False,
        extra_headers: dict[str, str] | None = None,
        intent: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._intent = intent
        self._ssl = ssl_context
        self.dialect: Dialect = endpoint.dialect
        self._auth = auth
        self._call_id = call_id
        self._open_timeout = open_timeout
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._max_queue = max_queue
        self._max_size = max_size
        self._key_in_query = key_in_query
        self._extra_headers = dict(extra_headers or {})
        self._ws: ClientConnection | None = None

    @property
    def audio(self) -> AudioChannel | None:
        return None

    async def connect(self) -> None:
        await self.close()
        headers = dict(self._extra_headers)
        extra_query: dict[str, str] = {"intent": self._intent} if self._intent else {}
        if self._auth is not None:
            if self._key_in_query and isinstance(self._auth, ApiKey):
                extra_query["api-key"] = self._auth.secret  # Azure accepts the key as a query parameter
            else:
                headers.update(await self._auth.headers())
        url = self.endpoint.websocket_url(call_id=self._call_id, extra_query=extra_query)
        where = _safe_url(url)
        tls: dict[str, Any] = {"ssl": self._ssl} if self._ssl is not None and url.startswith("wss:") else {}
        try:
            self._ws = await connect(
                url,
                additional_headers=headers,
                open_timeout=self._open_timeout,
                ping_interval=self._ping_interval,
                ping_timeout=self._ping_timeout,
                max_queue=self._max_queue,
                max_size=self._max_size,
                compression=None,  # the service does not negotiate it; audio does not compress anyway
                proxy=None,
                user_agent_header="aoai-realtime",
                **tls,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise AuthenticationError(
                    f"{where} refused the credentials (HTTP {status}); check the key or token and that it is "
                    f"allowed to use this deployment",
                    status=status,
                ) from None
            if status == 404:
                raise ConnectError(
                    f"{where} answered 404: check the resource, path and deployment/model name"
                ) from None
            raise ConnectError(f"{where} refused the WebSocket handshake with HTTP {status}") from None
        except (InvalidHandshake, OSError, TimeoutError) as exc:
            raise ConnectError(f"could not open a WebSocket to {where}: {type(exc).__name__}: {exc}") from None

    async def send(self, message: bytes) -> None:
        ws = self._ws
        if ws is None:
            raise ConnectionClosed("not connected", code=1006)
        try:
            await ws.send(message, text=True)
        except WsConnectionClosed as exc:
            raise self._closed(exc) from None

    async def recv(self) -> bytes:
        ws = self._ws
        if ws is None:
            raise ConnectionClosed("not connected", code=1006)
        try:
            data = await ws.recv(decode=False)
        except WsConnectionClosed as exc:
            raise self._closed(exc) from None
        return data if isinstance(data, bytes) else data.encode()

    @staticmethod
    def _closed(exc: WsConnectionClosed) -> ConnectionClosed:
        frame = exc.rcvd or exc.sent
        code = frame.code if frame is not None else 1006
        reason = frame.reason if frame is not None else ""
        return ConnectionClosed(f"WebSocket closed ({code}) {reason}".strip(), code=code, reason=reason)

    async def close(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
