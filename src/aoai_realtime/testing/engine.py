"""The local engine in memory, for socket-free tests anywhere in the project.

>>> async with EngineHarness(brain=ScriptedBrain([[Say("Hello there.")]])) as harness:
...     async with RealtimeClient(harness.connect()) as client:
...         await client.create_response()
...         done = await client.wait_for("response.done")

Each :meth:`EngineHarness.connect` opens a new engine session served over
:func:`~aoai_realtime.transport.memory.memory_pair` and returns the client side (a ``Transport``; the
client calls ``connect()``). Speech defaults to ``"fake"`` (energy VAD, tone TTS whose audio the tone STT
reads back exactly): deterministic and instant. Pass ``clock=FakeClock()`` to drive timers (idle timeout,
maximum duration, scripted pauses) by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from ..engine.brain.base import Brain
from ..engine.brain.rules import RulesBrain
from ..engine.clock import Clock, SystemClock
from ..engine.engine import Engine, EngineConfig, serve_channel
from ..engine.ports import SpeechPort
from ..engine.session import EngineSession
from ..transport.memory import MemoryTransport, memory_pair

__all__ = ["EngineHarness", "connect_in_memory", "load_test_speech", "serve_engine"]


def load_test_speech(kind: str = "fake") -> SpeechPort:
    """The engine's speech bundle of ``kind`` (``fake`` loads no model)."""
    from ..engine.speech import load_speech

    return load_speech(kind)  # type: ignore[arg-type]


def _brain_factory(brain: Brain | Callable[[], Brain] | None) -> Callable[[], Brain]:
    if brain is None:
        return RulesBrain
    # A brain class (RulesBrain) is a factory too: only an instance is shared between sessions.
    if hasattr(brain, "respond") and not isinstance(brain, type):
        shared: Brain = brain
        return lambda: shared
    return brain


class EngineHarness:
    """An engine plus the tasks serving its in-memory sessions. Use as ``async with``.

    ``brain`` is a brain shared by every session (e.g. one :class:`ScriptedBrain`), or a factory called
    per session; default :class:`RulesBrain`. ``engine`` overrides everything else.
    """

    def __init__(
        self,
        engine: Engine | None = None,
        *,
        brain: Brain | Callable[[], Brain] | None = None,
        speech: SpeechPort | str = "fake",
        clock: Clock | None = None,
        max_session_s: float = 3600.0,
        api_key: str = "test-key",
    ) -> None:
        if engine is None:
            engine = Engine(
                EngineConfig(
                    api_key=api_key,
                    brain=_brain_factory(brain),
                    speech=load_test_speech(speech) if isinstance(speech, str) else speech,
                    clock=clock or SystemClock(),
                    max_session_s=max_session_s,
                    deterministic_ids=True,
                )
            )
        self.engine = engine
        self.sessions: list[EngineSession] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._server_sides: list[MemoryTransport] = []

    async def __aenter__(self) -> EngineHarness:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """End every session and wait for their tasks."""
        for side in self._server_sides:
            await side.close(1000, "harness closed")
        for session in self.sessions:
            await session.aclose()
        if self._tasks:
            await asyncio.wait(self._tasks)

    def connect(
        self,
        *,
        dialect: Literal["ga", "beta"] = "ga",
        model: str | None = None,
        session: dict[str, Any] | None = None,
        maxsize: int = 256,
    ) -> MemoryTransport:
        """A new session; returns the client side of its in-memory pipe. Call inside the ``async with``.

        ``session`` is a GA session config applied at creation (as client_secrets would).
        """
        client_side, server_side = memory_pair(maxsize, dialect=dialect)
        engine_session = self.engine.new_session(dialect=dialect, model=model, initial=session)
        self.sessions.append(engine_session)
        self._server_sides.append(server_side)
        task = asyncio.get_running_loop().create_task(
            serve_channel(engine_session, server_side, recorder=self.engine.recorder(engine_session))
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return client_side


@asynccontextmanager
async def connect_in_memory(
    engine: Engine, *, dialect: Literal["ga", "beta"] = "ga", session: dict[str, Any] | None = None
) -> AsyncIterator[MemoryTransport]:
    """One in-memory session on ``engine``; yields the client-side transport, ends the session on exit."""
    async with EngineHarness(engine) as harness:
        yield harness.connect(dialect=dialect, session=session)


@asynccontextmanager
async def serve_engine(
    engine: Engine,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    tls: tuple[str | Path, str | Path] | None = None,
) -> AsyncIterator[str]:
    """Serve ``engine`` with uvicorn in this event loop; yields its base URL (``http://127.0.0.1:PORT``, or
    ``https://`` with ``tls=(cert_path, key_path)``, see :mod:`aoai_realtime.testing.tls`).

    ``port=0`` picks a free port. For integration tests (real sockets on loopback).
    """
    import uvicorn

    from ..engine.app import create_app

    cert, key = (str(tls[0]), str(tls[1])) if tls else (None, None)
    config = uvicorn.Config(create_app(engine), host=host, port=port, log_level="warning",
                            ws="websockets-sansio", lifespan="off", ssl_certfile=cert, ssl_keyfile=key)  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()  # startup failed: raise its error
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.005)
        bound = server.servers[0].sockets[0].getsockname()[1]
        yield f"{'https' if tls else 'http'}://{host}:{bound}"
    finally:
        await engine.aclose()
        server.should_exit = True
        await task
