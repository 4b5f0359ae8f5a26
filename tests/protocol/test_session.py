"""The session-config builder: GA nested and preview flat shapes, validated before anything is sent."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.realtime import RealtimeSessionCreateRequest
from pydantic import TypeAdapter

from aoai_realtime.errors import ConfigError
from aoai_realtime.protocol.session import AudioFormat, SemanticVad, ServerVad, SessionConfig, Transcription

FULL = SessionConfig(
    model="gpt-realtime",
    instructions="You are terse.",
    voice="cedar",
    output_modalities=["audio"],
    input_format=AudioFormat(),
    output_format=AudioFormat(),
    transcription=Transcription(model="whisper-1", language="en"),
    turn_detection=ServerVad(threshold=0.6, silence_duration_ms=350, idle_timeout_ms=6000),
    noise_reduction="near_field",
    speed=1.1,
    tools=[{"name": "lookup", "description": "Look up", "parameters": {"type": "object", "properties": {}}}],
    max_output_tokens=1024,
)


def test_ga_shape_is_nested_and_valid_for_the_official_model() -> None:
    ga = FULL.to_ga()
    assert ga["type"] == "realtime"
    assert ga["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert ga["audio"]["input"]["transcription"] == {"model": "whisper-1", "language": "en"}
    assert ga["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 350
    assert ga["audio"]["input"]["turn_detection"]["idle_timeout_ms"] == 6000
    assert ga["audio"]["input"]["noise_reduction"] == {"type": "near_field"}
    assert ga["audio"]["output"] == {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "cedar", "speed": 1.1}
    assert ga["tools"][0]["type"] == "function"
    assert ga["tool_choice"] == "auto"
    assert "voice" not in ga and "turn_detection" not in ga  # nothing at the beta places
    TypeAdapter(RealtimeSessionCreateRequest).validate_python(ga)


def test_beta_shape_is_flat() -> None:
    beta = FULL.to_beta()
    assert "type" not in beta and "audio" not in beta
    assert beta["voice"] == "cedar"
    assert beta["modalities"] == ["text", "audio"]
    assert beta["input_audio_format"] == "pcm16"
    assert beta["input_audio_transcription"] == {"model": "whisper-1", "language": "en"}
    assert beta["turn_detection"]["type"] == "server_vad"
    assert beta["input_audio_noise_reduction"] == {"type": "near_field"}
    assert beta["max_response_output_tokens"] == 1024


def test_only_given_fields_are_sent_and_none_switches_features_off() -> None:
    assert SessionConfig().to_ga() == {"type": "realtime", "tool_choice": "auto"}
    off = SessionConfig(turn_detection=None, transcription=None, noise_reduction=None).to_ga()
    assert off["audio"]["input"] == {"turn_detection": None, "transcription": None, "noise_reduction": None}
    semantic = SessionConfig(turn_detection=SemanticVad(eagerness="high")).to_ga()
    assert semantic["audio"]["input"]["turn_detection"]["type"] == "semantic_vad"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"voice": "robot"}, "audio.output.voice"),
        ({"speed": 3.0}, "audio.output.speed"),
        ({"speed": float("nan")}, "audio.output.speed"),
        ({"output_modalities": ["audio", "text"]}, "output_modalities"),
        ({"input_format": AudioFormat(rate=16000)}, "audio.input.format.rate"),
        ({"turn_detection": ServerVad(threshold=1.5)}, "audio.input.turn_detection.threshold"),
        ({"turn_detection": ServerVad(silence_duration_ms=-1)}, "audio.input.turn_detection.silence_duration_ms"),
        ({"turn_detection": SemanticVad(eagerness="eager")}, "audio.input.turn_detection.eagerness"),  # type: ignore[arg-type]
        ({"turn_detection": {"type": "server_vad"}}, "audio.input.turn_detection"),
        ({"transcription": Transcription(language="english")}, "audio.input.transcription.language"),
        ({"noise_reduction": "loud"}, "audio.input.noise_reduction"),
        ({"tool_choice": "sometimes"}, "tool_choice"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"tools": [{"name": "has space"}]}, "tools[0].name"),
        ({"tools": [{"name": "a", "parameters": {"type": "array"}}]}, "tools[0].parameters"),
        ({"tools": [{"name": "a"}, {"name": "a"}]}, "tools"),
    ],
)
def test_invalid_values_fail_at_construction_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        SessionConfig(**kwargs)
    assert info.value.field == field
    assert field in str(info.value)
