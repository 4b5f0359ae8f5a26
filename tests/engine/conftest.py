"""Fixtures for engine tests: a session core driven directly, fake speech, a fake clock."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
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


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


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
