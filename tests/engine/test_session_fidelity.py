"""The preview path's response object in the beta shape, as the official SDK's models define it. Driven
directly: no sockets, fake clock. (The session fields ``include``, ``tracing``, ``truncation``, ``prompt`` and
``reasoning`` are checked byte-fed, with no event loop, in tests/protocol/test_server_session.py.)"""

from __future__ import annotations

from typing import Any

from openai.types.beta.realtime import RealtimeServerEvent as BetaServerEvent
from openai.types.realtime import RealtimeServerEvent
from pydantic import TypeAdapter

from aoai_realtime.engine import FakeClock, Say, ScriptedBrain
from aoai_realtime.protocol import events as ev
from aoai_realtime.protocol.connection import encode_server_event

from .conftest import Probe, make_session

GA: TypeAdapter[Any] = TypeAdapter(RealtimeServerEvent)
BETA: TypeAdapter[Any] = TypeAdapter(BetaServerEvent)


def update(**session: Any) -> dict[str, Any]:
    return {"type": "session.update", "event_id": "evt_u", "session": {"type": "realtime", **session}}


def errors(events: list[ev.ServerEvent]) -> list[ev.ErrorDetails]:
    return [e.error for e in events if isinstance(e, ev.RealtimeErrorEvent)]


async def test_preview_responses_carry_the_beta_fields(speech: Any, clock: FakeClock) -> None:
    session = make_session(speech, clock, ScriptedBrain([[Say("Hi there.")]]), dialect="beta")
    async with session:
        probe = Probe(session, clock)
        events = await probe.respond()
    for event in events:
        if not isinstance(event, ev.ResponseCreatedEvent | ev.ResponseDoneEvent):
            continue
        data = encode_server_event(event, "beta")
        assert data is not None
        model = BETA.validate_json(data)
        response = model.response.model_dump(exclude_unset=True)
        assert {"output_modalities", "audio"}.isdisjoint(response)
        assert response["modalities"] == ["text", "audio"]
        assert (response["voice"], response["output_audio_format"], response["temperature"]) == ("alloy", "pcm16", 0.8)
        if isinstance(event, ev.ResponseDoneEvent):
            details = response["usage"]["input_token_details"]
            assert set(details) <= {"text_tokens", "audio_tokens", "cached_tokens"}
            assert response["usage"]["output_token_details"]["audio_tokens"] > 0
