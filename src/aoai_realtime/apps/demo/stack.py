"""The demo's composition: voice upstream, the two agents, the browser server and the page, in one process.

::

    async with open_demo(DemoOptions(data_dir=Path("demo-data")), say=print) as demo:
        print(demo.url)             # http://127.0.0.1:8080/
        ...                         # browsers or the headless client call demo.url
    # calls hung up, post-call work finished, stores closed, engine stopped

The upstream is the local Realtime engine served on 127.0.0.1 (a free port, its brain chosen by
``DemoOptions.brain``: ``auto`` is the offline language model when installed, else the rules brain), or Azure
OpenAI when ``AZURE_OPENAI_ENDPOINT`` is set (``AZURE_OPENAI_API_KEY``, else Entra ID through azure-identity;
deployment ``AZURE_OPENAI_REALTIME_DEPLOYMENT``, default ``gpt-realtime``). Either way the browser server
(:class:`~aoai_realtime.server.RealtimeServer`) runs the agents' personas and tools on its sideband and hands
every ended call to the agents' post-call work (:class:`~aoai_realtime.apps.base.AppHooks`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles

from ...auth import ApiKey, Auth, EntraId
from ...endpoints import Endpoint
from ...engine.brain.base import Brain
from ...errors import ConfigError, get_logger
from ...listen import ListenError, listen
from ...progress import activity
from ...server import (
    STATIC_DIR,
    CallRecord,
    CallStart,
    RealtimeServer,
    ServerSettings,
    ToolRegistry,
    UpstreamClient,
    create_app,
)
from ..base import AppHooks
from ..memory_agent import MemoryAgent
from ..visit_agent import VisitAgent
from ..visit_script import VisitScript, load_script
from .routes import DemoInfo, demo_router
from .users import DemoUsers

__all__ = ["DEFAULT_SCRIPT", "Demo", "DemoError", "DemoOptions", "azure_upstream", "open_demo"]

logger = get_logger(__name__)

DEFAULT_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "follow_up_visit.yaml"
PAGE = "agents.html"


class DemoError(ConfigError):
    """A user error starting the demo (port busy, bad script, bad option): the message names cause and fix."""


@dataclass(frozen=True, kw_only=True)
class DemoOptions:
    """How to run the demo. ``port=0`` picks a free port. ``upstream``: ``auto`` uses Azure when
    ``AZURE_OPENAI_ENDPOINT`` is set in ``environ``, else the local engine. ``brain`` is a ``--brain`` spec
    (``auto``, ``llm``, ``rules``, ``scripted:PATH``); ``engine_brain`` (a per-session brain factory) replaces it."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    brain: str = "auto"
    speech: Literal["full", "light", "fake"] = "full"
    script: Path | None = None
    upstream: Literal["auto", "local", "azure"] = "auto"
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    engine_brain: Callable[[], Brain] | None = None  # a brain factory of your own, in place of ``brain``


class CallLog:
    """The server's call hooks: :class:`AppHooks` in front, plus a note of every call that ended, so a driver
    can wait until a call it hung up has been handed to the agents (:meth:`settled`)."""

    def __init__(self, hooks: AppHooks) -> None:
        self.hooks = hooks
        self._ended: dict[str, asyncio.Event] = {}

    def _event(self, call_id: str) -> asyncio.Event:
        return self._ended.setdefault(call_id, asyncio.Event())

    async def session_context(self, start: CallStart) -> str | None:
        return await self.hooks.session_context(start)

    async def call_ended(self, record: CallRecord) -> None:
        try:
            await self.hooks.call_ended(record)
        finally:
            self._event(record.call_id).set()

    async def settled(self, call_id: str, *, timeout: float = 60.0) -> None:
        """Wait until call ``call_id`` ended on the server and the agents' post-call work for every ended call
        has finished. Raises ``TimeoutError`` after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            await self._event(call_id).wait()
            await self.hooks.drain()


@dataclass(kw_only=True)
class Demo:
    """A running demo. ``url`` is the page; ``local_engine`` is True when the local engine answers."""

    url: str
    server: RealtimeServer
    hooks: AppHooks
    calls: CallLog
    memory: MemoryAgent
    visit: VisitAgent
    script: VisitScript
    users: DemoUsers
    info: DemoInfo
    local_engine: bool
    speech: Any = None  # the engine's speech bundle (its TTS voices the headless user), None on Azure


def azure_upstream(environ: Mapping[str, str]) -> tuple[Endpoint, Auth, str] | None:
    """The Azure upstream from the environment, and a line saying what it is; None without
    ``AZURE_OPENAI_ENDPOINT``. The line never contains the key."""
    url = environ.get("AZURE_OPENAI_ENDPOINT", "").strip()
    if not url:
        return None
    deployment = environ.get("AZURE_OPENAI_REALTIME_DEPLOYMENT", "").strip() or "gpt-realtime"
    try:
        endpoint = Endpoint.azure(endpoint=url, deployment=deployment)
    except ConfigError as exc:
        raise DemoError(
            f"AZURE_OPENAI_ENDPOINT is not usable ({exc}); set it to https://<resource>.openai.azure.com"
        ) from None
    key = environ.get("AZURE_OPENAI_API_KEY", "").strip()
    auth: Auth
    if key:
        auth, how = ApiKey(key), "API key from AZURE_OPENAI_API_KEY"
    else:
        try:
            from azure.identity.aio import DefaultAzureCredential
        except ImportError:
            raise DemoError("AZURE_OPENAI_ENDPOINT is set without AZURE_OPENAI_API_KEY and azure-identity is not "
                            "installed; set the key or pip install azure-identity") from None  # fmt: skip
        auth, how = EntraId(DefaultAzureCredential()), "Entra ID (azure-identity DefaultAzureCredential)"
    return endpoint, auth, f"Azure OpenAI, deployment {deployment} at {endpoint.base_url} ({how})"


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` or a :class:`DemoError` saying what to do."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise DemoError(f"--host {host!r} is not an IP address; use e.g. 127.0.0.1") from None
    try:
        return listen(host, port, backlog=128)
    except ListenError as exc:
        if exc.in_use:
            raise DemoError(f"port {port} on {host} is busy (another demo or server?); "
                            "pass --port with a free port, or --port 0 to pick one") from None  # fmt: skip
        raise DemoError(f"{exc}; pass another --host or --port") from None


@contextlib.asynccontextmanager
async def serve_asgi(app: Any, sock: socket.socket, *, ws: str = "auto") -> AsyncIterator[None]:
    """Serve ``app`` with uvicorn on ``sock`` in this event loop until the block exits."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", lifespan="on", proxy_headers=False, ws=ws)
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise DemoError("the web server stopped while starting; see the log above")
            await asyncio.sleep(0.01)
        yield
    finally:
        server.should_exit = True
        await task
        sock.close()


@contextlib.asynccontextmanager
async def _local_engine(options: DemoOptions, say: Callable[[str], None]) -> AsyncIterator[tuple[str, str, Any]]:
    """The local engine on 127.0.0.1 (free port); yields its base URL, its key and its speech bundle."""
    from ...engine.app import create_app as engine_app
    from ...engine.engine import Engine, EngineConfig
    from ...engine.factory import brain_factory, speech_for

    if options.engine_brain is not None:
        brain = options.engine_brain
    else:
        try:
            brain = await asyncio.to_thread(brain_factory, options.brain)  # loads a language model: seconds
        except ConfigError as exc:
            raise DemoError(f"--brain {options.brain}: {exc}") from None
    say(f"brain: {_describe_brain(options)}")
    with activity(f"loading speech models ({options.speech})"):  # a spinner on a terminal, else a line
        speech = await asyncio.to_thread(speech_for, options.speech)
    key = "sk-demo-" + secrets.token_urlsafe(18)
    engine = Engine(EngineConfig(api_key=key, brain=brain, speech=speech))
    sock = bind("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        async with serve_asgi(engine_app(engine), sock, ws="websockets-sansio"):
            yield url, key, speech
    finally:
        await engine.aclose()


def _describe_brain(options: DemoOptions) -> str:
    from ...engine import factory

    if options.engine_brain is not None:
        return f"a brain of your own ({getattr(options.engine_brain, '__name__', type(options.engine_brain).__name__)})"
    return factory.describe_brain(options.brain)


def _agents_listing(memory: MemoryAgent, visit: VisitAgent) -> list[dict[str, Any]]:
    titles = {"memory-agent": "Memory Agent", "visit-agent": "Visit Agent"}
    return [
        {"name": app.name, "title": titles.get(app.name, app.name),
         "personas": [{"id": p.id, "title": p.title or p.id} for p in app.personas()]}
        for app in (memory, visit)
    ]  # fmt: skip


def build_app(demo: Demo, agents: list[dict[str, Any]]) -> FastAPI:
    """The demo's ASGI app: the server's routes, the demo routes, the page at ``/`` and the static files."""
    app = create_app(demo.server, static_dir=None, title="aoai-realtime demo")
    routes = demo_router(
        info=demo.info, users=demo.users, memory=demo.memory, visit=demo.visit, script=demo.script, agents=agents
    )
    app.include_router(routes)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / PAGE, headers={"Cache-Control": "no-store"})

    app.mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="static")
    return app


@contextlib.asynccontextmanager
async def open_demo(options: DemoOptions, *, say: Callable[[str], None] = print) -> AsyncIterator[Demo]:
    """Start everything; yield the running :class:`Demo`; on exit hang up, finish post-call work, close.

    Raises :class:`DemoError` (a message for the user) for a busy port, a bad script or a bad brain."""
    sock = bind(options.host, options.port)  # first: a busy port fails before any model loads
    try:
        script = load_script(options.script or DEFAULT_SCRIPT)
    except ConfigError as exc:
        sock.close()
        raise DemoError(f"{exc}; pass --script with a question script (YAML or JSON)") from None
    azure = None if options.upstream == "local" else azure_upstream(options.environ)
    if options.upstream == "azure" and azure is None:
        sock.close()
        raise DemoError("--upstream azure needs AZURE_OPENAI_ENDPOINT (and AZURE_OPENAI_API_KEY or Entra ID)")
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(sock.close)
        speech = None
        if azure is not None:
            endpoint, auth, line = azure
            info = DemoInfo(upstream=line, brain=f"the Azure deployment {endpoint.model}")
            say(f"voice: {line}")
        else:
            engine_url, key, speech = await stack.enter_async_context(_local_engine(options, say))
            endpoint, auth = Endpoint.local(f"{engine_url}/v1"), ApiKey(key)
            info = DemoInfo(upstream=f"local engine at {engine_url} (speech: {options.speech})",
                            brain=_describe_brain(options))  # fmt: skip
            say(f"voice: {info.upstream}")
        data_dir = options.data_dir.expanduser()
        data_dir.mkdir(parents=True, exist_ok=True)
        say(f"data: {data_dir}")
        from ...memory import CachedEmbedder, LocalEmbedder

        embedder = CachedEmbedder(LocalEmbedder())  # one MiniLM for both agents
        memory = await MemoryAgent.open(data_dir / "memory-agent", embedder=embedder)
        say("memory graph: " + (f"{memory.chunk_graph.name} parser (entities and relations)" if memory.chunk_graph
                                else "capitalised names only (pip install 'aoai-realtime[graph]' for the parser)"))
        try:
            visit = await VisitAgent.open(data_dir / "visit-agent", script=script, embedder=embedder)
        except BaseException:
            await memory.close()
            raise
        hooks = AppHooks([memory, visit])
        stack.push_async_callback(hooks.close)
        users = DemoUsers.default(frozenset(p.id for p in hooks.personas()))
        calls = CallLog(hooks)
        server = RealtimeServer(
            settings=ServerSettings(),
            upstream=UpstreamClient(endpoint, auth),
            auth=users.authenticate,
            personas=hooks.personas(),
            tools=ToolRegistry(hooks.tools()),
            hooks=calls,
        )
        host = f"[{options.host}]" if ":" in options.host else options.host
        demo = Demo(url=f"http://{host}:{sock.getsockname()[1]}/", server=server, hooks=hooks, calls=calls,
                    memory=memory, visit=visit, script=script, users=users, info=info, local_engine=azure is None,
                    speech=speech)  # fmt: skip
        stack.push_async_callback(hooks.drain)  # runs before hooks.close: post-call work finishes first
        await stack.enter_async_context(serve_asgi(build_app(demo, _agents_listing(memory, visit)), sock))
        yield demo
