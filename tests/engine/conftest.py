"""Fixtures for engine tests: a session core driven directly, fake speech, a fake clock.

Fake time and worker threads: the engine runs speech (STT, TTS, the end-of-turn model) in worker threads
(``asyncio.to_thread``), whose results reach the event loop in real time: the worker thread hands the result over
with ``call_soon_threadsafe`` once it holds the GIL, and a loop spinning through ``sleep(0)`` may keep the GIL for
a whole switch interval (5 ms), longer on a busy machine. A plain :class:`FakeClock` settles by spinning the loop a
fixed number of times, so ``clock.advance(1.0)`` could move time while a TTS chunk was still on its way back, and
the scripted ``Pause(1.0)`` reached afterwards waited for a deadline nobody would advance (the test hung about one
run in four, the loop parked in ``select()`` with no timer). :class:`ThreadAwareClock` treats worker-thread work
as taking no fake time: it settles only once every job's result is on the loop, so what a test reads does not
depend on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from aoai_realtime.engine import EngineSession, FakeClock, Ids, ScriptedBrain, SessionOptions
from aoai_realtime.engine.brain.base import Brain
from aoai_realtime.engine.speech import load_speech
from aoai_realtime.protocol import events as ev


class Probe:
    """Drives an EngineSession by raw client messages and reads its events, with a fake clock."""

    def __init__(self, session: EngineSession, clock: FakeClock) -> None:
        self.session = session
        self.clock = clock

    async def send(self, event: dict[str, Any]) -> list[ev.ServerEvent]:
        await self.session.receive(json.dumps(event))
        await self.clock.settle()
        return self.session.pending_events()

    async def append(self, pcm: bytes, chunk_ms: int = 100) -> list[ev.ServerEvent]:
        events: list[ev.ServerEvent] = []
        step = chunk_ms * 48
        for start in range(0, len(pcm), step):
            b64 = base64.b64encode(pcm[start : start + step]).decode()
            events += await self.send({"type": "input_audio_buffer.append", "audio": b64})
        return events

    async def until(self, kind: str, *, after: list[ev.ServerEvent] | None = None) -> list[ev.ServerEvent]:
        """Events up to and including the first of type ``kind`` (``after``: events already taken)."""
        events = list(after or [])
        for i, e in enumerate(events):
            if e.type == kind:
                return events[: i + 1]
        while True:
            event = await self.session.next_event()
            assert event is not None, f"session ended before {kind}"
            events.append(event)
            if event.type == kind:
                return events

    async def respond(self, params: dict[str, Any] | None = None) -> list[ev.ServerEvent]:
        """``response.create`` and every event up to its ``rate_limits.updated``."""
        msg: dict[str, Any] = {"type": "response.create"}
        if params is not None:
            msg["response"] = params
        await self.session.receive(json.dumps(msg))
        return await self.until("rate_limits.updated")


def types(events: list[ev.ServerEvent]) -> list[str]:
    return [e.type for e in events]


@pytest.fixture
def speech() -> Any:
    return load_speech("fake")


class ThreadAwareClock(FakeClock):
    """A :class:`FakeClock` whose settling also waits for worker-thread jobs (see the module docstring).

    A job counts from ``loop.run_in_executor`` (which ``asyncio.to_thread`` calls) until its result is on the
    loop: the worker thread finishing is not enough, because it hands the result over with a second
    ``call_soon_threadsafe`` that may wait for the GIL while the loop spins. Call :meth:`attach` on the test's
    event loop before the session starts (the ``clock`` fixture does).
    """

    def __init__(self) -> None:
        super().__init__()
        self._jobs = 0
        self._idle: asyncio.Event | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._idle = asyncio.Event()
        self._idle.set()
        submit = loop.run_in_executor

        def run_in_executor(executor: Any, func: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
            future = submit(executor, func, *args)
            self._jobs += 1
            assert self._idle is not None
            self._idle.clear()
            future.add_done_callback(self._job_done)
            return future

        loop.run_in_executor = run_in_executor  # type: ignore[method-assign]

    def _job_done(self, _: asyncio.Future[Any]) -> None:
        self._jobs -= 1
        if self._jobs == 0 and self._idle is not None:
            self._idle.set()

    async def settle(self, rounds: int = 20) -> None:
        idle = self._idle
        assert idle is not None, "ThreadAwareClock.attach(loop) was not called"
        while True:
            await super().settle(rounds)
            if self._jobs == 0:
                return
            await idle.wait()


@pytest.fixture
async def clock() -> ThreadAwareClock:
    fake = ThreadAwareClock()
    fake.attach(asyncio.get_running_loop())
    return fake


def make_session(
    speech: Any, clock: FakeClock, brain: Brain | None = None, **options: Any
) -> EngineSession:
    return EngineSession(
        SessionOptions(**options),
        brain=brain or ScriptedBrain([]),
        speech=speech,
        clock=clock,
        ids=Ids(deterministic=True),
    )


@pytest.fixture
async def probe(speech: Any, clock: FakeClock) -> AsyncIterator[Probe]:
    session = make_session(speech, clock, ScriptedBrain([], fallback="Okay."))
    async with session:
        yield Probe(session, clock)
