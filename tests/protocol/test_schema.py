"""The one session schema and the one dialect: the client's builder and the engine apply the same rules."""

from __future__ import annotations

from typing import Any

import pytest

from aoai_realtime.errors import ConfigError
from aoai_realtime.protocol.dialect import session_to_beta, session_update_to_ga, update_to_beta
from aoai_realtime.protocol.schema import (
    RequestRejected,
    apply_update,
    default_session,
    merge_partial,
    turn_detection_defaults,
)
from aoai_realtime.protocol.session import AudioFormat, SemanticVad, ServerVad, SessionConfig, Transcription


def base() -> Any:
    return default_session(model="gpt-realtime", instructions="hi", session_id="sess_1", expires_at=0)


def test_the_builders_vad_defaults_are_the_services() -> None:
    # reference 2.4: session.created shows silence_duration_ms 200 (the schema text's 500 is not what runs)
    sent = SessionConfig(turn_detection=ServerVad()).to_ga()["audio"]["input"]["turn_detection"]
    service = turn_detection_defaults("server_vad")
    assert {k: v for k, v in service.items() if v is not None} == sent
    assert base()["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 200
    semantic = SessionConfig(turn_detection=SemanticVad()).to_ga()["audio"]["input"]["turn_detection"]
    assert semantic == turn_detection_defaults("semantic_vad")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"voice": "robot"},
        {"speed": 1.6},
        {"speed": 0.1},
        {"output_modalities": ["audio", "text"]},
        {"input_format": AudioFormat(rate=16000)},
        {"output_format": AudioFormat(type="audio/wav")},  # type: ignore[arg-type]
        {"turn_detection": ServerVad(threshold=-0.1)},
        {"turn_detection": ServerVad(prefix_padding_ms=20_000)},
        {"turn_detection": SemanticVad(eagerness="eager")},  # type: ignore[arg-type]
        {"transcription": Transcription(model="no-such-model")},
        {"tool_choice": "sometimes"},
        {"max_output_tokens": 5000},
    ],
)
def test_client_and_engine_refuse_the_same_value_at_the_same_param(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as client:
        SessionConfig(**kwargs)
    # the same value, as the engine receives it on the wire
    wire = SessionConfig.__new__(SessionConfig)
    object.__setattr__(wire, "__dict__", {**SessionConfig().__dict__, **kwargs})
    with pytest.raises(RequestRejected) as engine:
        apply_update(base(), wire.to_ga())
    assert engine.value.param == f"session.{client.value.field}"
    assert engine.value.message in str(client.value)  # the service's wording, on both sides


def test_a_valid_builder_config_is_accepted_by_the_engine_schema_unchanged() -> None:
    config = SessionConfig(
        instructions="x", voice="cedar", speed=1.2, output_modalities=["text"],
        input_format=AudioFormat(type="audio/pcmu"), transcription=Transcription(model="gpt-4o-transcribe"),
        turn_detection=SemanticVad(eagerness="low"), noise_reduction="far_field", max_output_tokens="inf",
        tools=[{"name": "look_up", "parameters": {"type": "object"}}],
    )
    merged = apply_update(base(), config.to_ga())
    assert merged["audio"]["output"]["voice"] == "cedar" and merged["audio"]["output"]["speed"] == 1.2
    assert merged["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert merged["audio"]["input"]["turn_detection"] == {**turn_detection_defaults("semantic_vad"), "eagerness": "low"}
    assert merged["tools"] == [{"type": "function", "name": "look_up", "parameters": {"type": "object"}}]


def test_update_replaces_feature_objects_whole_and_null_switches_off() -> None:
    s1 = apply_update(base(), {"type": "realtime", "audio": {"input": {"turn_detection": {"type": "server_vad",
                                                                                          "threshold": 0.9}}}})
    s2 = apply_update(s1, {"type": "realtime", "audio": {"input": {"turn_detection": {"type": "server_vad"}}}})
    assert s2["audio"]["input"]["turn_detection"] == turn_detection_defaults("server_vad")  # not merged
    s3 = apply_update(s2, {"type": "realtime", "audio": {"input": {"turn_detection": None}}})
    assert s3["audio"]["input"]["turn_detection"] is None
    assert s3["instructions"] == "hi" and s1["audio"]["input"]["turn_detection"]["threshold"] == 0.9  # not mutated


def test_non_finite_numbers_are_refused_with_their_param() -> None:
    with pytest.raises(RequestRejected) as info:
        apply_update(base(), {"type": "realtime", "audio": {"output": {"speed": float("inf")}}})
    assert info.value.param == "session.audio.output.speed"


def test_merge_partial_equals_sending_both_updates() -> None:
    first = SessionConfig(instructions="a", voice="ash", turn_detection=ServerVad(threshold=0.7)).to_ga()
    second = {"type": "realtime", "audio": {"output": {"speed": 1.3}, "input": {"turn_detection": None}}}
    merged: dict[str, Any] = {}
    merge_partial(merged, first)
    merge_partial(merged, second)
    assert apply_update(base(), merged) == apply_update(apply_update(base(), first), second)
    assert first["audio"]["input"]["turn_detection"] is not None  # the inputs are not mutated


@pytest.mark.parametrize(
    "config",
    [
        SessionConfig(instructions="x", voice="verse", speed=0.8, output_modalities=["audio"],
                      input_format=AudioFormat(type="audio/pcma"), output_format=AudioFormat(),
                      transcription=Transcription(language="de"), turn_detection=ServerVad(idle_timeout_ms=5000),
                      noise_reduction="near_field", max_output_tokens=100),
        SessionConfig(output_modalities=["text"], turn_detection=None, transcription=None, noise_reduction=None),
    ],
)
def test_a_preview_update_means_what_its_ga_update_means(config: SessionConfig) -> None:
    ga = config.to_ga()
    beta = update_to_beta(ga)
    via_beta = apply_update(base(), session_update_to_ga(beta))
    direct = apply_update(base(), ga)
    # beta has no idle timeout in session.created, but the update carries it through
    assert via_beta == direct
    flat = session_to_beta(direct)
    assert flat["voice"] == direct["audio"]["output"]["voice"]
    assert flat["input_audio_format"] == update_to_beta(ga).get("input_audio_format", "pcm16")


def test_ga_only_fields_on_the_preview_path_are_unknown_parameters() -> None:
    with pytest.raises(RequestRejected) as info:
        session_update_to_ga({"output_modalities": ["text"]})
    assert info.value.code == "unknown_parameter" and info.value.param == "session.output_modalities"
