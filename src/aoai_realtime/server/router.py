"""The FastAPI router: token route, SDP proxy, personas, call hang-up. Mount it in any app.

::

    server = RealtimeServer(settings=..., upstream=UpstreamClient(endpoint, auth), auth=my_hook,
                            personas=[...], tools=ToolRegistry([...]), hooks=my_app_hooks)
    app = FastAPI(lifespan=server.lifespan)
    app.include_router(server.router)

Every route checks, in order: the client-IP budget, the auth hook (401), the user's budget (429 with
``Retry-After``), the closed request schema (400), the persona allow-list (403). Replies carry
``Cache-Control: no-store``; errors are ``{"error": {"code", "message"}}`` and never contain upstream bodies
or credentials.

With ``hooks`` (:class:`~aoai_realtime.server.hooks.CallHooks`), both routes append the hook's
``session_context`` to the persona's instructions before the session is built, and every call that had a
sideband ends with one ``call_ended`` (its transcript turns and tool calls).
"""

# No "from __future__ import annotations" here: FastAPI reads the route signatures at runtime, and they use
# dependency aliases local to _build_router.
import asyncio
import dataclasses
import inspect
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.types import Message

from ..errors import ConfigError, get_logger, redact
from .calls import CallEntry, CallRegistry, MemoryCallRegistry, RedisCallRegistry
from .hooks import CallHooks, CallStart, safe_call_ended, safe_session_context
from .limits import (
    CallGate,
    MemoryCallGate,
    RateLimits,
    RateLimitSettings,
    RedisCallGate,
    TrustedProxies,
    client_ip,
)
from .personas import Persona, User, build_session, check_personas
from .schemas import PERSONA_PATTERN, ErrorReply, PersonaInfo, PersonaList, SessionReply, SessionRequest
from .sideband import CallPolicy, Sideband
from .tools import ToolContext, ToolRegistry
from .upstream import UpstreamClient, UpstreamError

__all__ = ["ApiError", "AuthHook", "RealtimeServer", "ServerSettings"]

logger = get_logger(__name__)

CLOSE_GRACE_S = 10.0  # how long RealtimeServer.close waits for each part before it goes on without it

AuthHook = Callable[[Request], Awaitable[User | None] | User | None]
"""Returns the authenticated user, or ``None`` (or raises :class:`ApiError`) to refuse with 401."""

_NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
# A call needs an audio section or a data channel (m=application): a text-only browser call has only the latter.
_MEDIA_SECTION = re.compile(r"^m=(audio|application) ", re.MULTILINE)
_AUDIO_SECTION = re.compile(r"^m=audio ", re.MULTILINE)
_SESSION_BODY_LIMIT = 4096


@dataclass(frozen=True, kw_only=True)
class ServerSettings:
    """Everything the router needs besides its collaborators. Defaults are the safe ones.

    ``trusted_proxies``: addresses/networks of your reverse proxies; only their ``X-Forwarded-For`` counts.
    ``call_gate_url``: ``redis://...`` to share the concurrent-call cap and the registry of live calls between
    processes (``None`` keeps both in this process). Use the same Redis in ``rate_limits.storage_uri`` for the
    budgets. ``call_heartbeat_s``: how often an instance renews its calls in the shared registry; a call whose
    instance missed three renewals is hung up by another instance and its slot freed.
    """

    prefix: str = "/api/realtime"
    model: str | None = None  # None: the endpoint's model/deployment
    token_ttl_s: int = 60
    cors_origins: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()
    rate_limits: RateLimitSettings = field(default_factory=RateLimitSettings)
    call_gate_url: str | None = None
    max_calls_per_user: int = 2
    call_policy: CallPolicy = field(default_factory=CallPolicy)
    max_sdp_bytes: int = 32 * 1024
    call_heartbeat_s: float = 10.0

    def __post_init__(self) -> None:
        if not 0 < self.call_heartbeat_s <= 300:
            raise ConfigError("call_heartbeat_s must be within 0..300 seconds", field="call_heartbeat_s")
        if not 10 <= self.token_ttl_s <= 7200:
            raise ConfigError("token_ttl_s must be 10..7200 seconds (client_secrets limits)", field="token_ttl_s")
        if "*" in self.cors_origins:
            raise ConfigError("cors_origins must list origins explicitly; '*' is not allowed", field="cors_origins")
        if not self.prefix.startswith("/") or self.prefix.endswith("/"):
            raise ConfigError("prefix must start with '/' and not end with one", field="prefix")


class ApiError(Exception):
    """An error reply: ``status``, a stable ``code``, a message for the caller, optional ``Retry-After``."""

    def __init__(self, status: int, code: str, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after

    def response(self) -> JSONResponse:
        headers = dict(_NO_STORE)
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        if self.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        body = {"error": {"code": self.code, "message": self.message}}
        return JSONResponse(body, status_code=self.status, headers=headers)


def _describe(exc: RequestValidationError) -> str:
    # Name the offending fields, never echo the values (they may be anything the browser sent).
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) + (
        ". The browser may only name a persona; instructions, tools, model and voice are set by the server."
    )


class _GuardedRoute(APIRoute):
    """Turns validation errors into 400 and :class:`ApiError` into its reply, and caps the body size,
    inside the route itself so the rules hold in whatever app mounts the router."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        limit: int = (self.openapi_extra or {}).get("x-body-limit", _SESSION_BODY_LIMIT)

        async def guarded(request: Request) -> Response:
            try:
                declared = int(request.headers.get("content-length", "0"))
            except ValueError:
                return ApiError(400, "invalid_request", "Content-Length is not a number").response()
            if declared > limit:
                return ApiError(413, "too_large", f"request body exceeds {limit} bytes").response()
            try:
                return await handler(Request(request.scope, _capped(request.receive, limit)))
            except RequestValidationError as exc:
                return ApiError(400, "invalid_request", _describe(exc)).response()
            except ApiError as exc:
                return exc.response()
            except HTTPException as exc:  # FastAPI's own (e.g. an undecodable body): same error shape as ours
                if isinstance(exc.__cause__, ApiError):  # our body cap, tripped inside FastAPI's body parsing
                    return exc.__cause__.response()
                return ApiError(exc.status_code, "invalid_request", "the request body could not be parsed").response()

        return guarded


class _BodyTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, "too_large", f"request body exceeds {limit} bytes")


def _capped(receive: Callable[[], Awaitable[Message]], limit: int) -> Callable[[], Awaitable[Message]]:
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _BodyTooLarge(limit)
        return message

    return wrapped


@dataclass
class _LiveCall:
    user_id: str
    slot: str
    sideband: Sideband
    task: asyncio.Task[str] | None = None


class RealtimeServer:
    """The browser-facing server: owns the upstream client, limits, call gate and live sidebands.

    Use :attr:`router` in your app and :meth:`lifespan` (or :meth:`start`/:meth:`close`) around it.
    """

    def __init__(
        self,
        *,
        settings: ServerSettings,
        upstream: UpstreamClient,
        auth: AuthHook,
        personas: Iterable[Persona],
        tools: ToolRegistry | None = None,
        call_gate: CallGate | None = None,
        call_registry: CallRegistry | None = None,
        hooks: CallHooks | None = None,
    ) -> None:
        self.settings = settings
        self.upstream = upstream
        self.hooks = hooks
        self._auth = auth
        self.tools = tools if tools is not None else ToolRegistry()
        self.personas: dict[str, Persona] = {p.id: p for p in personas}
        check_personas(self.personas, self.tools)
        for persona in self.personas.values():
            watched = persona.tools or persona.max_usd is not None or settings.call_policy.max_usd is not None
            if persona.token_route and watched:
                logger.warning(
                    "persona %s may be served by token (token_route=True): on those sessions its tools do not run "
                    "and no spend ceiling or session check applies",
                    persona.id,
                )
        self._proxies = TrustedProxies(settings.trusted_proxies)
        self.limits = RateLimits(settings.rate_limits)
        if call_gate is None:
            call_gate = RedisCallGate(settings.call_gate_url) if settings.call_gate_url else MemoryCallGate()
        self.call_gate = call_gate
        if call_registry is None:
            url = settings.call_gate_url
            call_registry = RedisCallRegistry(url) if url else MemoryCallRegistry()
        self.call_registry = call_registry
        self.instance_id = uuid.uuid4().hex[:12]
        self._heartbeat: asyncio.Task[None] | None = None
        self.calls: dict[str, _LiveCall] = {}
        self.model = settings.model or upstream.endpoint.model or "gpt-realtime"
        self.router = self._build_router()

    # -- lifecycle ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.upstream.start()
        if self._heartbeat is None:
            self._heartbeat = asyncio.get_running_loop().create_task(self._keep_calls_alive())

    async def close(self) -> None:
        """Hang up every live call, then close the upstream session, the call gate and the call registry.

        Each step gets :data:`CLOSE_GRACE_S`: a call still running after it is cancelled, a back end that does not
        close in it is left, each with a warning naming it, so a shutdown never hangs on one stuck part."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await _settle([self._heartbeat], "the call registry heartbeat")
            self._heartbeat = None
        for call in list(self.calls.values()):
            await call.sideband.hang_up()
        tasks = [c.task for c in self.calls.values() if c.task is not None]
        if tasks:
            await _settle(tasks, "a call's supervision after its hang-up")
        for name, closing in (("upstream session", self.upstream.close), ("call gate", self.call_gate.close),
                              ("call registry", self.call_registry.close), ("rate limits", self.limits.close)):
            try:
                async with asyncio.timeout(CLOSE_GRACE_S):
                    await closing()
            except TimeoutError:
                logger.warning("closing the %s took over %.0f s: left open", name, CLOSE_GRACE_S)

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.close()

    # -- checks --------------------------------------------------------------------------------------------

    def client_ip(self, request: Request) -> str:
        peer = request.client.host if request.client else None
        return client_ip(peer, request.headers.getlist("x-forwarded-for"), self._proxies)

    async def _limit(self, route: str, kind: str, key: str) -> None:
        wait = await self.limits.hit(route, kind, key)
        if wait is not None:
            raise ApiError(429, "rate_limited", f"too many requests; retry in {wait} s", retry_after=wait)

    async def _authenticate(self, request: Request) -> User:
        result = self._auth(request)
        user = await result if inspect.isawaitable(result) else result
        if not isinstance(user, User):
            raise ApiError(401, "unauthorized", "sign in first")
        return user

    def _persona_for(self, user: User, persona_id: str) -> Persona:
        persona = self.personas.get(persona_id)
        # Unknown and not-allowed look the same, so the reply does not reveal which personas exist.
        if persona is None or persona_id not in user.personas:
            raise ApiError(403, "persona_not_allowed", f"persona {persona_id!r} is not available to you")
        return persona

    def _guard(self, route: str) -> Callable[[Request], Awaitable[User]]:
        async def dependency(request: Request) -> User:
            await self._limit(route, "ip", self.client_ip(request))
            user = await self._authenticate(request)
            await self._limit(route, "user", user.id)
            return user

        return dependency

    # -- routes ----------------------------------------------------------------------------------------------

    def _build_router(self) -> APIRouter:
        s = self.settings
        router = APIRouter(prefix=s.prefix, route_class=_GuardedRoute, tags=["realtime"])
        errors: dict[int | str, dict[str, Any]] = {
            code: {"model": ErrorReply} for code in (400, 401, 403, 413, 415, 429, 502, 503)
        }
        # Validation errors are 400 here, not FastAPI's 422; "default" stops FastAPI documenting a 422.
        errors["default"] = {"model": ErrorReply, "description": "an error"}
        SessionUser = Annotated[User, Depends(self._guard("session"))]
        CallUser = Annotated[User, Depends(self._guard("call"))]
        AnyUser = Annotated[User, Depends(self._authenticate)]

        @router.get("/personas", response_model=PersonaList, responses=errors)
        async def list_personas(user: AnyUser) -> JSONResponse:
            """The personas the signed-in user may use."""
            allowed = [
                PersonaInfo(id=p.id, title=p.title or p.id) for p in self.personas.values() if p.id in user.personas
            ]
            return JSONResponse(PersonaList(personas=allowed).model_dump(), headers=_NO_STORE)

        @router.post("/session", response_model=SessionReply, responses=errors)
        async def create_session(body: SessionRequest, user: SessionUser) -> JSONResponse:
            """Mint an ephemeral token for a persona; the session config is built on the server. Only for personas
            that may be served without the server watching the call (403 ``persona_needs_call_route`` otherwise)."""
            persona = self._persona_for(user, body.persona)
            if not persona.token_route_allowed(s.call_policy.max_usd):
                raise ApiError(
                    403,
                    "persona_needs_call_route",
                    f"persona {persona.id!r} is served only through the call route (POST {s.prefix}/calls): "
                    "its tools and spend limit need the server on the call",
                )
            context = await self._session_context(user, persona)
            session = build_session(persona, user, model=self.model, registry=self.tools, context=context)
            minted = await self._mint(session)
            reply = SessionReply(
                token=minted.token,
                expires_at=minted.expires_at,
                persona=PersonaInfo(id=persona.id, title=persona.title or persona.id),
            )
            return JSONResponse(reply.model_dump(), headers=_NO_STORE)

        sdp_body = {
            "x-body-limit": s.max_sdp_bytes,
            "requestBody": {
                "required": True,
                "description": f"the SDP offer; at most {s.max_sdp_bytes} bytes (413 beyond)",
                "content": {"application/sdp": {"schema": {"type": "string"}}},
            },
        }
        sdp_reply = {
            201: {
                "description": "the SDP answer; the call's path is in Location",
                "content": {"application/sdp": {"schema": {"type": "string"}}},
            },
            **errors,
        }

        @router.post("/calls", status_code=201, response_class=Response, responses=sdp_reply, openapi_extra=sdp_body)
        async def create_call(
            request: Request,
            user: CallUser,
            persona: Annotated[str, Query(pattern=PERSONA_PATTERN)],
        ) -> Response:
            """SDP proxy: post the browser's offer; the server mints the token, relays the offer upstream and
            answers with the SDP answer. The browser never sees a token."""
            extra = set(request.query_params) - {"persona"}
            if extra:
                raise ApiError(400, "invalid_request", f"unknown query parameters {sorted(extra)}; only 'persona'")
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type != "application/sdp":
                raise ApiError(415, "unsupported_media_type", "post the SDP offer as application/sdp")
            chosen = self._persona_for(user, persona)
            raw = await request.body()
            try:
                offer = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ApiError(400, "invalid_sdp", "the SDP offer is not UTF-8 text") from None
            if not offer.startswith("v=0") or not _MEDIA_SECTION.search(offer):
                raise ApiError(400, "invalid_sdp", "the body is not an SDP offer with an audio or data-channel section")
            return await self._start_call(user, chosen, offer)

        @router.delete("/calls/{call_id}", status_code=204, response_class=Response, responses=errors)
        async def hang_up(call_id: Annotated[str, Path(max_length=128)], user: AnyUser) -> Response:
            """Hang up one of the user's own calls, whichever server instance runs it."""
            call = self.calls.get(call_id)
            if call is not None and call.user_id == user.id:
                await call.sideband.hang_up()
                return Response(status_code=204, headers=_NO_STORE)
            entry = await self._registered(call_id)
            if entry is None or entry.user_id != user.id:
                raise ApiError(404, "not_found", "no such call of yours")
            # Another instance runs its sideband: end the call upstream; that sideband then closes and cleans up.
            await self.call_registry.request_hangup(call_id)
            await self.upstream.hangup(call_id, missing_ok=True)
            return Response(status_code=204, headers=_NO_STORE)

        return router

    # -- work ------------------------------------------------------------------------------------------------

    async def _session_context(self, user: User, persona: Persona) -> str:
        # The upstream names a call only when it answers the offer, which needs the session: call_id is "" here.
        try:
            return await safe_session_context(self.hooks, CallStart(call_id="", user=user, persona=persona))
        except Exception as exc:  # noqa: BLE001 - the app's failure becomes a clean 503, never a traceback
            logger.error("session_context hook failed for persona %s: %s: %s", persona.id, type(exc).__name__,
                         redact(str(exc)))
            raise ApiError(503, "context_unavailable", "this session could not be prepared; retry later") from None

    async def _mint(self, session: dict[str, Any]) -> Any:
        try:
            return await self.upstream.mint(session, ttl_s=self.settings.token_ttl_s)
        except UpstreamError as exc:
            raise _from_upstream(exc) from None

    async def _start_call(self, user: User, persona: Persona, offer: str) -> Response:
        s = self.settings
        slot = uuid.uuid4().hex
        ttl = s.call_policy.max_seconds + 60
        if not await self.call_gate.acquire(user.id, slot, max_calls=s.max_calls_per_user, ttl_s=ttl):
            raise ApiError(
                429, "too_many_calls", f"at most {s.max_calls_per_user} calls at once; hang up one first", retry_after=5
            )
        try:
            context = await self._session_context(user, persona)
            # The sideband's tamper check compares against this same session (instructions with the context).
            session = build_session(persona, user, model=self.model, registry=self.tools, context=context)
            if not _AUDIO_SECTION.search(offer):
                # A data channel only: a text call, held to text output (the sideband then expects text replies).
                session["output_modalities"] = ["text"]
            minted = await self._mint(session)
            try:
                call = await self.upstream.create_call(offer, token=minted.token)
            except UpstreamError as exc:
                raise _from_upstream(exc) from None
        except BaseException:
            await self.call_gate.release(user.id, slot)
            raise
        try:
            entry = CallEntry(call_id=call.call_id, user_id=user.id, instance=self.instance_id, slot=slot)
            await self.call_registry.add(entry, heartbeat_ttl_s=3 * s.call_heartbeat_s)
        except Exception as exc:  # noqa: BLE001 - an unregistered call could not be hung up elsewhere: end it
            logger.error("call %s could not be registered (%s); hanging it up", call.call_id, type(exc).__name__)
            await self.upstream.hangup(call.call_id, missing_ok=True)
            await self.call_gate.release(user.id, slot)
            raise ApiError(503, "registry_unavailable", "the call could not be set up; retry later") from None
        sideband = Sideband(
            upstream=self.upstream,
            registry=self.tools,
            context=ToolContext(user_id=user.id, persona_id=persona.id, call_id=call.call_id),
            allowed_tools=persona.tools,
            session=session,
            policy=_policy_for(s.call_policy, persona),
        )
        live = _LiveCall(user_id=user.id, slot=slot, sideband=sideband)
        self.calls[call.call_id] = live
        live.task = asyncio.get_running_loop().create_task(self._supervise(call.call_id, live))
        headers = {**_NO_STORE, "Location": f"{s.prefix}/calls/{call.call_id}"}
        return Response(call.answer, status_code=201, media_type="application/sdp", headers=headers)

    async def _supervise(self, call_id: str, live: _LiveCall) -> str:
        try:
            reason = await live.sideband.run()
            logger.info(
                "call %s ended: %s (spent $%.4f, %d tool calls)",
                call_id,
                reason,
                live.sideband.spent_usd,
                live.sideband.tool_calls,
            )
            return reason
        finally:
            try:
                self.calls.pop(call_id, None)
                # The slot first: once the registry forgets the call, its slot is free (what other instances see).
                await self.call_gate.release(live.user_id, live.slot)
                await self._unregister(call_id, live)
            finally:
                # Exactly once per call with a sideband, after it ended (logged, never raised).
                await safe_call_ended(self.hooks, live.sideband.record())


    async def _registered(self, call_id: str) -> CallEntry | None:
        try:
            return await self.call_registry.get(call_id)
        except Exception as exc:  # noqa: BLE001 - the registry's store is down: a clean 503, never a traceback
            logger.error("call registry lookup failed: %s", type(exc).__name__)
            raise ApiError(503, "registry_unavailable", "calls cannot be looked up right now; retry later") from None

    async def _unregister(self, call_id: str, live: _LiveCall) -> None:
        try:
            if live.sideband.ended_reason == "closed" and await self.call_registry.hangup_requested(call_id):
                live.sideband.ended_reason = "hangup"  # the user hung up through another instance
            await self.call_registry.remove(call_id)
        except Exception as exc:  # noqa: BLE001 - the heartbeat lapses and another instance cleans up
            logger.warning("call %s could not be removed from the registry: %s", call_id, type(exc).__name__)

    async def _keep_calls_alive(self) -> None:
        """Renew this instance's calls in the registry; hang up calls whose instance stopped renewing."""
        interval = self.settings.call_heartbeat_s
        while True:
            await asyncio.sleep(interval)
            try:
                await self.call_registry.refresh(list(self.calls), heartbeat_ttl_s=3 * interval)
                for orphan in await self.call_registry.claim_orphans():
                    logger.warning(
                        "call %s of instance %s lost its heartbeat (that instance stopped): hanging it up",
                        orphan.call_id,
                        orphan.instance,
                    )
                    await self.call_gate.release(orphan.user_id, orphan.slot)
                    await self.upstream.hangup(orphan.call_id, missing_ok=True)
            except Exception as exc:  # noqa: BLE001 - a background loop's boundary: log, try again next beat
                logger.warning("call registry heartbeat failed: %s", type(exc).__name__)


def _policy_for(policy: CallPolicy, persona: Persona) -> CallPolicy:
    """The server's call policy with the persona's own spend ceiling, the lower of the two."""
    if persona.max_usd is None:
        return policy
    ceiling = persona.max_usd if policy.max_usd is None else min(policy.max_usd, persona.max_usd)
    return dataclasses.replace(policy, max_usd=ceiling)


def _from_upstream(exc: UpstreamError) -> ApiError:
    logger.warning("upstream failure: %s -> %d", exc, exc.status)
    messages = {
        429: "the voice service is busy; retry later",
        502: "the voice service failed; retry later",
        503: "the voice service is unavailable; retry later",
    }
    code = {429: "upstream_rate_limited", 502: "upstream_failed", 503: "upstream_unavailable"}[exc.status]
    return ApiError(exc.status, code, messages[exc.status], retry_after=exc.retry_after)


async def _settle(tasks: list[asyncio.Task[Any]], what: str) -> None:
    """Wait up to :data:`CLOSE_GRACE_S` for ``tasks``; cancel the ones still running and give them as long again."""
    done, pending = await asyncio.wait(tasks, timeout=CLOSE_GRACE_S)
    _retrieved(done)
    if not pending:
        return
    logger.warning("%s: %d task(s) still running after %.0f s; cancelled", what, len(pending), CLOSE_GRACE_S)
    for task in pending:
        task.cancel()
    done, pending = await asyncio.wait(pending, timeout=CLOSE_GRACE_S)
    _retrieved(done)
    if pending:
        logger.warning("%s: %d task(s) ignored their cancellation; left running", what, len(pending))


def _retrieved(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Take the outcome of finished tasks (their own code logged what mattered), so none is reported unread."""
    for task in tasks:
        if not task.cancelled():
            task.exception()
