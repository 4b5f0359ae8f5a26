"""Small builders of server events for driving the core directly."""

from __future__ import annotations

import base64
from typing import Any

from aoai_realtime.protocol import events as ev


def pcm(ms: float) -> bytes:
    return b"\x01\x00" * int(24 * ms)


def speech_started(item: str = "u1", at: int = 0) -> ev.InputAudioBufferSpeechStartedEvent:
    return ev.InputAudioBufferSpeechStartedEvent(item_id=item, audio_start_ms=at)


def speech_stopped(item: str = "u1", at: int = 1000) -> ev.InputAudioBufferSpeechStoppedEvent:
    return ev.InputAudioBufferSpeechStoppedEvent(item_id=item, audio_end_ms=at)


def committed(item: str, prev: str | None = None) -> ev.InputAudioBufferCommittedEvent:
    return ev.InputAudioBufferCommittedEvent(item_id=item, previous_item_id=prev)


def response_created(rid: str) -> ev.ResponseCreatedEvent:
    return ev.ResponseCreatedEvent(response=ev.Response(id=rid, status="in_progress"))


def response_done(rid: str, status: str = "completed", output: list[ev.Item] | None = None,
                  usage: dict[str, Any] | None = None) -> ev.ResponseDoneEvent:
    kwargs: dict[str, Any] = {"id": rid, "status": status, "output": output or []}
    if usage is not None:
        kwargs["usage"] = usage
    return ev.ResponseDoneEvent(response=ev.Response(**kwargs))


def message_added(rid: str, item: str) -> ev.ResponseOutputItemAddedEvent:
    return ev.ResponseOutputItemAddedEvent(
        response_id=rid, output_index=0, item=ev.Item(type="message", id=item, role="assistant")
    )


def audio(rid: str, item: str, ms: float) -> ev.ResponseAudioDeltaEvent:
    return ev.ResponseAudioDeltaEvent(
        response_id=rid, item_id=item, output_index=0, content_index=0,
        delta=base64.b64encode(pcm(ms)).decode(),
    )


def audio_done(rid: str, item: str) -> ev.ResponseAudioDoneEvent:
    return ev.ResponseAudioDoneEvent(response_id=rid, item_id=item, output_index=0, content_index=0)


def said(rid: str, item: str, text: str) -> ev.ResponseAudioTranscriptDeltaEvent:
    return ev.ResponseAudioTranscriptDeltaEvent(
        response_id=rid, item_id=item, output_index=0, content_index=0, delta=text
    )


def said_done(rid: str, item: str, text: str) -> ev.ResponseAudioTranscriptDoneEvent:
    return ev.ResponseAudioTranscriptDoneEvent(
        response_id=rid, item_id=item, output_index=0, content_index=0, transcript=text
    )


def call(rid: str, call_id: str, name: str, args: str = "{}") -> ev.ResponseFunctionCallArgumentsDoneEvent:
    return ev.ResponseFunctionCallArgumentsDoneEvent(
        response_id=rid, item_id=f"fc_{call_id}", output_index=0, call_id=call_id, arguments=args, name=name
    )


def output_added(call_id: str, item: str | None = None) -> ev.ConversationItemAdded:
    return ev.ConversationItemAdded(
        item=ev.Item(type="function_call_output", id=item or f"out_{call_id}", call_id=call_id, output="x")
    )


def error(code: str, message: str = "error") -> ev.RealtimeErrorEvent:
    return ev.RealtimeErrorEvent(error=ev.ErrorDetails(message=message, type="invalid_request_error", code=code))
