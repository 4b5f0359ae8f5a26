"""Session fields as the official SDK's models and the service's docs define them (issue 13 item 4): ``include``,
``tracing`` (locked once enabled), ``truncation``, ``prompt``, ``reasoning``; and the preview path's response
object in the beta shape. Driven directly: no sockets, fake clock."""

from __future__ import annotations

from typing import Any

from openai.types.beta.realtime import RealtimeServerEvent as BetaServerEvent
from openai.types.realtime import RealtimeServerEvent
from pydantic import TypeAdapter

from aoai_realtime.engine import FakeClock, Say, ScriptedBrain
from aoai_realtime.engine.engine import encode_for
from aoai_realtime.protocol import events as ev

from .conftest import Probe, make_session, types

GA: TypeAdapter[Any] = TypeAdapter(RealtimeServerEvent)
BETA: TypeAdapter[Any] = TypeAdapter(BetaServerEvent)


def update(**session: Any) -> dict[str, Any]:
    return {"type": "session.update", "event_id": "evt_u", "session": {"type": "realtime", **session}}


def errors(events: list[ev.ServerEvent]) -> list[ev.ErrorDetails]:
    return [e.error for e in events if isinstance(e, ev.RealtimeErrorEvent)]


async def test_include_takes_only_what_the_service_defines(probe: Probe) -> None:
    (error,) = errors(await probe.send(update(include=["bogus"])))
    assert (error.code, error.param, error.event_id) == ("invalid_value", "session.include[0]", "evt_u")
    assert "item.input_audio_transcription.logprobs" in error.message
    (error,) = errors(await probe.send(update(include="item.input_audio_transcription.logprobs")))
    assert error.code == "invalid_type"
    (updated,) = await probe.send(update(include=["item.input_audio_transcription.logprobs"]))
    assert isinstance(updated, ev.SessionUpdatedEvent)
    GA.validate_json(encode_for(updated, "ga"))  # every later session.updated still fits the official model
    (again,) = await probe.send(update(instructions="Be brief."))
    assert again.session["include"] == ["item.input_audio_transcription.logprobs"]  # type: ignore[attr-defined]
    GA.validate_json(encode_for(again, "ga"))


async def test_tracing_cannot_change_once_enabled(probe: Probe) -> None:
    probe.session.pending_events()  # session.created
    assert types(await probe.send(update(tracing=None))) == ["session.updated"]  # off -> off is fine
    assert types(await probe.send(update(tracing={"workflow_name": "support", "group_id": "g1"}))) == [
        "session.updated"]  # fmt: skip
    # the same value again is no change; anything else is refused
    assert types(await probe.send(update(tracing={"workflow_name": "support", "group_id": "g1"}))) == [
        "session.updated"]  # fmt: skip
    for changed in ("auto", None, {"workflow_name": "other"}):
        (error,) = errors(await probe.send(update(tracing=changed)))
        assert (error.param, error.event_id) == ("session.tracing", "evt_u")
    assert probe.session.session["tracing"] == {"workflow_name": "support", "group_id": "g1"}
    (error,) = errors(await probe.send(update(tracing="on")))
    assert error.code == "invalid_value"


async def test_truncation_prompt_and_reasoning_are_checked(probe: Probe) -> None:
    refused = [
        (update(truncation="sometimes"), "session.truncation"),
        (update(truncation={"type": "retention_ratio", "retention_ratio": 1.5}), "session.truncation.retention_ratio"),
        (update(truncation={"type": "retention_ratio"}), "session.truncation.retention_ratio"),
        (update(prompt={"version": "1"}), "session.prompt.id"),
        (update(prompt={"id": "pmpt_1", "variables": ["x"]}), "session.prompt.variables"),
        (update(reasoning={"effort": "extreme"}), "session.reasoning.effort"),
        ({"type": "response.create", "response": {"prompt": {"id": 3}}}, "response.prompt.id"),
    ]
    for message, param in refused:
        (error,) = errors(await probe.send(message))
        assert error.param == param, (message, error)
    accepted = update(truncation={"type": "retention_ratio", "retention_ratio": 0.8,
                                  "token_limits": {"post_instructions": 5000}},
                      prompt={"id": "pmpt_1", "variables": {"name": "Ada"}, "version": "2"})  # fmt: skip
    (updated,) = await probe.send(accepted)
    GA.validate_json(encode_for(updated, "ga"))


async def test_preview_responses_carry_the_beta_fields(speech: Any, clock: FakeClock) -> None:
    session = make_session(speech, clock, ScriptedBrain([[Say("Hi there.")]]), dialect="beta")
    async with session:
        probe = Probe(session, clock)
        events = await probe.respond()
    for event in events:
        if not isinstance(event, ev.ResponseCreatedEvent | ev.ResponseDoneEvent):
            continue
        data = encode_for(event, "beta")
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
