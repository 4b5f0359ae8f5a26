"""The engine's ASGI app: the Realtime API's routes on localhost (reference 3, 7).

=========================================  =========================================================
route                                       what
=========================================  =========================================================
WS   /v1/realtime, /openai/v1/realtime       GA session (``?model=``; ``?call_id=`` joins a WebRTC call)
WS   /openai/realtime                        preview path (``?api-version=&deployment=``): beta events
POST /v1/realtime/client_secrets (+/openai)  mint an ``ek_`` secret bound to a session config
POST /v1/realtime/calls (+/openai)           WebRTC: SDP offer in, 201 + SDP answer + ``Location``
POST /v1/realtime/calls/{id}/hangup          end a call
=========================================  =========================================================

Auth as the service: ``api-key`` header or query parameter, ``Authorization: Bearer <key or ek_>``, or the
browser subprotocols ``realtime`` + ``openai-insecure-api-key.<key>`` (``realtime`` is echoed). A bad key is
refused at the handshake with HTTP 401 and the service's error JSON; calls need an ephemeral secret or the key.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any, Literal

import msgspec
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from ..errors import ConnectionClosed, ProtocolError, get_logger, redact
from ..protocol.codec import check_depth
from ..transport._ice import is_loopback
from .config import apply_update, default_session, default_transcription_session
from .engine import Engine, serve_channel
from .errors import RequestRejected

__all__ = ["QueryCredentialFilter", "create_app", "error_body"]

log = get_logger(__name__)

# A credential in a query string (``?api-key=``, ``?Authorization=Bearer%20...``, a ``token``/``key`` parameter).
_QUERY_CREDENTIAL = re.compile(
    r"(?i)([?&](?:api[-_]?key|key|authorization|access[-_]?token|token|client[-_]?secret|secret)=)[^&\s\"']*"
)


def redact_query(text: str) -> str:
    """``text`` with query-string credentials and anything :func:`~aoai_realtime.errors.redact` finds masked."""
    return redact(_QUERY_CREDENTIAL.sub(lambda m: f"{m.group(1)}***", text))


class QueryCredentialFilter(logging.Filter):
    """Masks credentials in the server's own log lines (uvicorn's access log and its WebSocket lines carry the
    request path with its query string; ``?api-key=`` is a documented way to authenticate). Arguments are
    masked in place, so formatters that unpack them (uvicorn's access formatter) keep working."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_query(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str) and not record.args:
            record.msg = redact_query(record.msg)
        return True


_SERVER_LOGGERS = ("uvicorn.access", "uvicorn.error")


def _guard_server_logs() -> None:
    for name in _SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, QueryCredentialFilter) for f in logger.filters):
            logger.addFilter(QueryCredentialFilter())

_INSECURE_PREFIX = "openai-insecure-api-key."


def error_body(message: str, *, code: str | None, param: str | None = None,
               type: str = "invalid_request_error") -> dict[str, Any]:  # fmt: skip
    """The service's HTTP error JSON."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def _credential(conn: HTTPConnection) -> tuple[str | None, bool]:
    """The credential a request carries and whether it came as a browser subprotocol."""
    if conn.headers.get("api-key"):
        return conn.headers["api-key"], False
    auth = conn.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip(), False
    if conn.query_params.get("api-key"):
        return conn.query_params["api-key"], False
    query_auth = conn.query_params.get("Authorization", "")
    if query_auth.lower().startswith("bearer "):
        return query_auth[7:].strip(), False
    for proto in _subprotocols(conn):
        if proto.startswith(_INSECURE_PREFIX):
            return proto[len(_INSECURE_PREFIX) :], True
    return None, False


def _subprotocols(conn: HTTPConnection) -> list[str]:
    raw = conn.headers.get("sec-websocket-protocol", "")
    return [p.strip() for p in raw.split(",") if p.strip()]


def _unauthorized(credential: str | None) -> JSONResponse:
    if not credential:
        body = error_body("Missing bearer or basic authentication in header. Send 'Authorization: Bearer <key>' "
                          "or an 'api-key' header.", code=None)  # fmt: skip
    else:
        body = error_body("Incorrect API key provided. Use the key the engine printed at start "
                          "(or set with --api-key / AOAI_ENGINE_API_KEY).", code="invalid_api_key")  # fmt: skip
    return JSONResponse(body, status_code=401)


class _WebSocketChannel:
    """A Starlette WebSocket as an engine :class:`~.engine.Channel` (text frames, one event each)."""

    def __init__(self, websocket: WebSocket) -> None:
        self.ws = websocket

    async def send(self, message: bytes) -> None:
        if self.ws.application_state is not WebSocketState.CONNECTED:
            raise ConnectionClosed("websocket closed", code=1006)
        try:
            await self.ws.send_text(message.decode("utf-8"))
        except (WebSocketDisconnect, RuntimeError) as exc:
            raise ConnectionClosed("websocket closed while sending", code=1006) from exc

    async def recv(self) -> bytes:
        try:
            message = await self.ws.receive()
        except RuntimeError as exc:
            raise ConnectionClosed("websocket closed", code=1006) from exc
        if message["type"] == "websocket.disconnect":
            raise ConnectionClosed("client disconnected", code=message.get("code", 1000))
        if message.get("text") is not None:
            return str(message["text"]).encode("utf-8")
        return bytes(message.get("bytes") or b"")

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.ws.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError):  # already closing
                await self.ws.close(code, reason)


def _dialect(conn: HTTPConnection, path_kind: str) -> Literal["ga", "beta"]:
    if conn.headers.get("openai-beta", "").replace(" ", "") == "realtime=v1":
        return "beta"
    if "openai-beta.realtime-v1" in _subprotocols(conn):
        return "beta"
    if path_kind == "preview":
        version = conn.query_params.get("api-version", "")
        # the preview path speaks the beta shape for every preview api-version (reference 3.2)
        return "beta" if ("preview" in version or version < "2025-08-28") else "ga"
    return "ga"


def create_app(engine: Engine) -> Starlette:
    """The ASGI app serving ``engine``. Run it with uvicorn (``aoai-realtime engine``). Installs
    :class:`QueryCredentialFilter` on uvicorn's loggers, so no credential from a URL reaches a log line."""
    _guard_server_logs()

    async def realtime_ws(websocket: WebSocket) -> None:
        path_kind = "preview" if websocket.url.path.rstrip("/") == "/openai/realtime" else "ga"
        credential, _browser = _credential(websocket)
        kind = engine.check_key(credential)
        if kind is None:
            await _deny(websocket, _unauthorized(credential))
            return
        subprotocol = "realtime" if "realtime" in _subprotocols(websocket) else None
        call_id = websocket.query_params.get("call_id")
        if call_id:
            hub = engine.calls.get(call_id)
            if hub is None or kind != "key":  # the sideband is the server's: an ephemeral secret joins no call
                message = "No session found for the provided call_id."
                if kind != "key":
                    message += " A sideband connection needs the API key, not an ephemeral client secret."
                body = error_body(message, code="call_id_not_found", param="call_id")
                await _deny(websocket, JSONResponse(body, status_code=404))
                return
            await websocket.accept(subprotocol=subprotocol)
            await hub.attach(_WebSocketChannel(websocket))
            return
        model = websocket.query_params.get("deployment") or websocket.query_params.get("model")
        if engine.config.replay is not None:
            from .replay import Replay, serve_replay

            await websocket.accept(subprotocol=subprotocol)
            await serve_replay(Replay.load(engine.config.replay), _WebSocketChannel(websocket))
            return
        if engine.config.relay is not None:
            from .relay import relay_channel

            await websocket.accept(subprotocol=subprotocol)
            recorder = engine.recorder_for(engine.ids.new("relay"))
            await relay_channel(engine.config.relay, _WebSocketChannel(websocket), model=model, recorder=recorder)
            return
        initial = engine.secret_session(credential or "") if kind == "ephemeral" else None
        dialect = _dialect(websocket, path_kind)
        transcribe = websocket.query_params.get("intent") == "transcription"
        if dialect == "beta" and (transcribe or (initial or {}).get("type") == "transcription"):
            body = error_body(
                "This engine emulates transcription sessions on the GA interface only: connect to "
                "/v1/realtime?intent=transcription.",
                code="unsupported_intent",
                param="intent",
            )
            await _deny(websocket, JSONResponse(body, status_code=400))
            return
        if transcribe and initial is not None and initial.get("type") != "transcription":
            body = error_body(
                "This client secret was minted for a realtime session; ?intent=transcription needs a secret minted "
                'with {"session": {"type": "transcription"}} (or drop ?intent=transcription).',
                code="invalid_value",
                param="intent",
            )
            await _deny(websocket, JSONResponse(body, status_code=400))
            return
        session = engine.new_session(
            dialect=dialect, model=model, initial=initial, kind="transcription" if transcribe else "realtime"
        )
        await websocket.accept(subprotocol=subprotocol)
        await serve_channel(session, _WebSocketChannel(websocket), recorder=engine.recorder(session))

    async def client_secrets(request: Request) -> Response:
        credential, _ = _credential(request)
        if engine.check_key(credential) != "key":
            return _unauthorized(credential)
        try:
            raw = await request.body()
            check_depth(raw)
            body = msgspec.json.decode(raw)
        except (ProtocolError, msgspec.MsgspecError, RecursionError):
            return JSONResponse(error_body("We could not parse the JSON body of your request.", code=None),
                                status_code=400)  # fmt: skip
        try:
            seconds, session = _validate_secret_request(body, engine)
        except RequestRejected as exc:
            return JSONResponse(error_body(exc.message, code=exc.code, param=exc.param), status_code=400)
        secret = engine.mint_secret(session, seconds)
        return JSONResponse({"value": secret.value, "expires_at": int(secret.expires_at), "session": session})

    async def calls(request: Request) -> Response:
        from .calls import create_call

        return await create_call(engine, request, _credential(request)[0])

    async def hangup(request: Request) -> Response:
        from .calls import hangup_call

        return await hangup_call(engine, request, _credential(request)[0])

    routes = [
        WebSocketRoute("/v1/realtime", realtime_ws),
        WebSocketRoute("/openai/v1/realtime", realtime_ws),
        WebSocketRoute("/openai/realtime", realtime_ws),
        Route("/v1/realtime/client_secrets", client_secrets, methods=["POST"]),
        Route("/openai/v1/realtime/client_secrets", client_secrets, methods=["POST"]),
        Route("/v1/realtime/calls", calls, methods=["POST"]),
        Route("/openai/v1/realtime/calls", calls, methods=["POST"]),
        Route("/v1/realtime/calls/{call_id}/hangup", hangup, methods=["POST"]),
        Route("/openai/v1/realtime/calls/{call_id}/hangup", hangup, methods=["POST"]),
        Route("/favicon.ico", lambda _request: Response(status_code=204)),  # a browser's ask: no icon, no 404
    ]
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await engine.aclose()  # end live WebRTC calls on shutdown

    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(_Cors, origins=engine.config.cors_origins)
    return app


class _Cors:
    """CORS for the HTTP routes (client_secrets, calls, hangup), as the service serves browsers directly.

    ``origins`` None: any origin when the request reached a loopback address, none otherwise; else exactly
    those origins. ``Location`` (the call's path) is exposed, so a page can hang up its call. WebSockets are
    not subject to CORS.
    """

    def __init__(self, app: ASGIApp, *, origins: tuple[str, ...] | None) -> None:
        options: dict[str, Any] = {"allow_methods": ["GET", "POST", "DELETE", "OPTIONS"], "allow_headers": ["*"],
                                   "expose_headers": ["Location"], "max_age": 600}  # fmt: skip
        self.app = app
        self.configured = CORSMiddleware(app, allow_origins=list(origins), **options) if origins is not None else None
        self.loopback = CORSMiddleware(app, allow_origins=["*"], **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
        elif self.configured is not None:
            await self.configured(scope, receive, send)
        elif is_loopback(str((scope.get("server") or ("", 0))[0])):
            await self.loopback(scope, receive, send)
        else:
            await self.app(scope, receive, send)


async def _deny(websocket: WebSocket, response: Response) -> None:
    """Refuse a WebSocket handshake with an HTTP response (as the service does for bad credentials)."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(response)
        return
    # servers without the denial extension: accept, report, close as OpenAI did (reference 3.1)
    await websocket.accept()
    payload = json.loads(bytes(response.body))
    await websocket.send_text(json.dumps({"type": "error", "event_id": "event_auth", "error": payload["error"]}))
    await websocket.close(3000, "invalid_request_error.invalid_api_key")


def _validate_secret_request(body: Any, engine: Engine) -> tuple[int, dict[str, Any]]:
    """``(seconds, session)`` of a client_secrets body, or RequestRejected (reference 3.1)."""
    if not isinstance(body, dict):
        raise RequestRejected("Invalid body: expected a JSON object.", code="invalid_type", param=None)
    for key in body:
        if key not in ("expires_after", "session"):
            raise RequestRejected(f"Unknown parameter: '{key}'.", code="unknown_parameter", param=key)
    seconds = 600
    expires = body.get("expires_after")
    if expires is not None:
        if not isinstance(expires, dict):
            raise RequestRejected("Invalid type for 'expires_after': expected an object.", code="invalid_type",
                                  param="expires_after")  # fmt: skip
        anchor = expires.get("anchor", "created_at")
        if anchor != "created_at":
            raise RequestRejected(f"Invalid value: '{anchor}'. Supported values are: 'created_at'.",
                                  code="invalid_value", param="expires_after.anchor")  # fmt: skip
        seconds = expires.get("seconds", 600)
        if isinstance(seconds, bool) or not isinstance(seconds, int):
            raise RequestRejected("Invalid type for 'expires_after.seconds': expected an integer.",
                                  code="invalid_type", param="expires_after.seconds")  # fmt: skip
        if not 10 <= seconds <= 7200:
            raise RequestRejected(
                f"Invalid 'expires_after.seconds': expected a value between 10 and 7200, but got {seconds}.",
                code="integer_out_of_range" if seconds > 7200 else "integer_below_min_value",
                param="expires_after.seconds",
            )
    raw_session = body.get("session", {"type": "realtime"})
    if isinstance(raw_session, dict) and raw_session.get("type") == "transcription":
        base = default_transcription_session(session_id=engine.ids.new("sess"), expires_at=0)
    else:
        base = default_session(model=engine.config.model, session_id=engine.ids.new("sess"), expires_at=0)
    session = apply_update(base, raw_session)
    return seconds, session
