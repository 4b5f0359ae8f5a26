"""Interop fixtures: the engine served by uvicorn on 127.0.0.1 (port 0), and validators built from the
official ``openai`` models (the schema of record)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import TypeAdapter

from aoai_realtime.engine import Engine, EngineConfig, RulesBrain
from aoai_realtime.testing.engine import load_test_speech, serve_engine

API_KEY = "interop-key"


@pytest.fixture(scope="session")
def light_speech() -> Any:
    # webrtc VAD + whisper tiny.en (understands flite) + tone TTS: real STT, fast replies
    return load_test_speech("light")


@pytest.fixture
async def engine_url(light_speech: Any) -> AsyncIterator[str]:
    engine = Engine(EngineConfig(api_key=API_KEY, brain=RulesBrain, speech=light_speech))
    async with serve_engine(engine) as url:
        yield url


class Validator:
    """Validates raw server messages against the official SDK union, and keeps them."""

    def __init__(self, dialect: str = "ga") -> None:
        if dialect == "ga":
            from openai.types.realtime import RealtimeServerEvent
        else:
            from openai.types.beta.realtime import RealtimeServerEvent  # type: ignore[no-redef]
        self.adapter: TypeAdapter[Any] = TypeAdapter(RealtimeServerEvent)
        self.seen: list[dict[str, Any]] = []

    def check(self, raw: bytes | str) -> dict[str, Any]:
        self.adapter.validate_json(raw)  # raises on anything the official models reject
        event: dict[str, Any] = json.loads(raw)
        self.seen.append(event)
        return event

    async def until(self, conn: Any, kind: str) -> list[dict[str, Any]]:
        """Receive (validating each) until an event of ``kind``; returns them all."""
        got = []
        while True:
            event = self.check(await conn.recv_bytes())
            got.append(event)
            if event["type"] == kind:
                return got
