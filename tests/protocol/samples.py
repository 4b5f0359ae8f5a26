"""One realistic wire message per GA event type, shaped as the reference (section 4) shows them."""

from __future__ import annotations

from typing import Any

_ITEM_USER = {
    "id": "item_u1", "object": "realtime.item", "type": "message", "role": "user", "status": "completed",
    "content": [{"type": "input_audio", "transcript": None}],
}
_ITEM_ASSISTANT = {
    "id": "item_a1", "object": "realtime.item", "type": "message", "role": "assistant", "status": "completed",
    "content": [{"type": "output_audio", "transcript": "Hello there."}],
}
_ITEM_CALL = {
    "id": "item_f1", "object": "realtime.item", "type": "function_call", "status": "completed",
    "name": "get_weather", "call_id": "call_1", "arguments": "{\"city\": \"Oslo\"}",
}
_RESPONSE = {
    "id": "resp_1", "object": "realtime.response", "status": "completed", "status_details": None,
    "output": [_ITEM_ASSISTANT, _ITEM_CALL], "conversation_id": "conv_1", "output_modalities": ["audio"],
    "max_output_tokens": "inf", "metadata": None,
    "usage": {"total_tokens": 253, "input_tokens": 132, "output_tokens": 121,
              "input_token_details": {"text_tokens": 119, "audio_tokens": 13, "cached_tokens": 64},
              "output_token_details": {"text_tokens": 30, "audio_tokens": 91}},
}
_SESSION = {
    "type": "realtime", "object": "realtime.session", "id": "sess_1", "model": "gpt-realtime",
    "output_modalities": ["audio"], "instructions": "Be brief.", "tools": [], "tool_choice": "auto",
    "max_output_tokens": "inf", "tracing": None, "truncation": "auto", "prompt": None, "expires_at": 0,
    "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}, "transcription": None, "noise_reduction": None,
                        "turn_detection": {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                                           "silence_duration_ms": 200, "idle_timeout_ms": None,
                                           "create_response": True, "interrupt_response": True}},
              "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy", "speed": 1.0}},
    "include": None,
}
_PART = {"response_id": "resp_1", "item_id": "item_a1", "output_index": 0, "content_index": 0}

SERVER: dict[str, dict[str, Any]] = {
    "conversation.created": {"conversation": {"id": "conv_1", "object": "realtime.conversation"}},
    "conversation.item.added": {"item": _ITEM_USER, "previous_item_id": None},
    "conversation.item.created": {"item": _ITEM_USER, "previous_item_id": "item_0"},
    "conversation.item.deleted": {"item_id": "item_u1"},
    "conversation.item.done": {"item": _ITEM_ASSISTANT, "previous_item_id": "item_u1"},
    "conversation.item.input_audio_transcription.completed": {
        "item_id": "item_u1", "content_index": 0, "transcript": "What's the weather?",
        "usage": {"type": "tokens", "total_tokens": 26, "input_tokens": 17,
                  "input_token_details": {"text_tokens": 0, "audio_tokens": 17}, "output_tokens": 9},
    },
    "conversation.item.input_audio_transcription.delta": {"item_id": "item_u1", "content_index": 0, "delta": "What's"},
    "conversation.item.input_audio_transcription.failed": {
        "item_id": "item_u1", "content_index": 0,
        "error": {"type": "transcription_error", "code": "audio_unintelligible", "message": "no speech", "param": None},
    },
    "conversation.item.input_audio_transcription.segment": {
        "id": "seg_1", "item_id": "item_u1", "content_index": 0, "text": "hi", "speaker": "A", "start": 0.0, "end": 0.5,
    },
    "conversation.item.retrieved": {"item": _ITEM_ASSISTANT},
    "conversation.item.truncated": {"item_id": "item_a1", "content_index": 0, "audio_end_ms": 1500},
    "error": {"error": {"type": "invalid_request_error", "code": "invalid_value", "message": "Invalid value: 'x'.",
                        "param": "session.audio.output.voice", "event_id": "evt_client_1"}},
    "input_audio_buffer.cleared": {},
    "input_audio_buffer.committed": {"item_id": "item_u1", "previous_item_id": None},
    "input_audio_buffer.dtmf_event_received": {"event": "5", "received_at": 1730000000},
    "input_audio_buffer.speech_started": {"item_id": "item_u1", "audio_start_ms": 1000},
    "input_audio_buffer.speech_stopped": {"item_id": "item_u1", "audio_end_ms": 2500},
    "input_audio_buffer.timeout_triggered": {"item_id": "item_u2", "audio_start_ms": 2500, "audio_end_ms": 7500},
    "mcp_list_tools.completed": {"item_id": "item_m1"},
    "mcp_list_tools.failed": {"item_id": "item_m1"},
    "mcp_list_tools.in_progress": {"item_id": "item_m1"},
    "output_audio_buffer.cleared": {"response_id": "resp_1"},
    "output_audio_buffer.started": {"response_id": "resp_1"},
    "output_audio_buffer.stopped": {"response_id": "resp_1"},
    "rate_limits.updated": {"rate_limits": [{"name": "requests", "limit": 1000, "remaining": 999, "reset_seconds": 7.5},
                                            {"name": "tokens", "limit": 50000, "remaining": 49000,
                                             "reset_seconds": 0.6}]},
    "response.content_part.added": {**_PART, "part": {"type": "audio", "transcript": ""}},
    "response.content_part.done": {**_PART, "part": {"type": "audio", "transcript": "Hello there."}},
    "response.created": {"response": {**_RESPONSE, "status": "in_progress", "output": [], "usage": None}},
    "response.done": {"response": _RESPONSE},
    "response.function_call_arguments.delta": {"response_id": "resp_1", "item_id": "item_f1", "output_index": 1,
                                               "call_id": "call_1", "delta": "{\"city\""},
    "response.function_call_arguments.done": {"response_id": "resp_1", "item_id": "item_f1", "output_index": 1,
                                              "call_id": "call_1", "name": "get_weather",
                                              "arguments": "{\"city\": \"Oslo\"}"},
    "response.mcp_call.completed": {"item_id": "item_m2", "output_index": 0},
    "response.mcp_call.failed": {"item_id": "item_m2", "output_index": 0},
    "response.mcp_call.in_progress": {"item_id": "item_m2", "output_index": 0},
    "response.mcp_call_arguments.delta": {"response_id": "resp_1", "item_id": "item_m2", "output_index": 0,
                                          "delta": "{}"},
    "response.mcp_call_arguments.done": {"response_id": "resp_1", "item_id": "item_m2", "output_index": 0,
                                         "arguments": "{}"},
    "response.output_audio.delta": {**_PART, "delta": "AAABAAIA"},
    "response.output_audio.done": dict(_PART),
    "response.output_audio_transcript.delta": {**_PART, "delta": "Hello"},
    "response.output_audio_transcript.done": {**_PART, "transcript": "Hello there."},
    "response.output_item.added": {"response_id": "resp_1", "output_index": 0,
                                   "item": {**_ITEM_ASSISTANT, "status": "in_progress", "content": []}},
    "response.output_item.done": {"response_id": "resp_1", "output_index": 0, "item": _ITEM_ASSISTANT},
    "response.output_text.delta": {**_PART, "delta": "Hi"},
    "response.output_text.done": {**_PART, "text": "Hi there."},
    "session.created": {"session": _SESSION},
    "session.updated": {"session": _SESSION},
}

CLIENT: dict[str, dict[str, Any]] = {
    "conversation.item.create": {"previous_item_id": "item_a1", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello"}]}},
    "conversation.item.delete": {"item_id": "item_a1"},
    "conversation.item.retrieve": {"item_id": "item_a1"},
    "conversation.item.truncate": {"item_id": "item_a1", "content_index": 0, "audio_end_ms": 1200},
    "input_audio_buffer.append": {"audio": "AAABAAIA"},
    "input_audio_buffer.clear": {},
    "input_audio_buffer.commit": {},
    "output_audio_buffer.clear": {},
    "response.cancel": {"response_id": "resp_1"},
    "response.create": {"response": {"conversation": "none", "metadata": {"topic": "summary"},
                                     "output_modalities": ["text"], "instructions": "Summarize."}},
    "session.update": {"session": {"type": "realtime", "instructions": "Be brief.",
                                   "audio": {"output": {"voice": "marin"}}}},
}


def server_message(event_type: str) -> dict[str, Any]:
    body = {"type": event_type, **SERVER[event_type]}
    if event_type != "input_audio_buffer.dtmf_event_received":
        body["event_id"] = f"event_{abs(hash(event_type)) % 10**8}"
    return body


def client_message(event_type: str) -> dict[str, Any]:
    return {"type": event_type, "event_id": "evt_client_1", **CLIENT[event_type]}
