"""The engine's view of a session's configuration: defaults, validation, partial merge, GA <-> beta shapes.

Pure functions over plain dicts (the wire shape). The effective session is always held in the GA nested shape
(reference 2.1); the preview path converts the flat beta shape (reference 2.2) in and out at the edge.

``apply_update(current, update)`` validates a ``session.update`` payload the way the service does and returns
the merged session: only the fields present change; ``turn_detection``, ``transcription``, ``noise_reduction``
and formats are replaced whole (with the defaults of their type filled in); ``null`` turns a feature off.
Invalid input raises :class:`~aoai_realtime.engine.errors.RequestRejected` with the service's ``code``,
message wording and dotted ``param`` (reference 4.6, pitfalls 6.2).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from ..protocol.session import BETA_AUDIO_FORMATS
from .errors import RequestRejected

__all__ = [
    "DEFAULT_INSTRUCTIONS",
    "VOICES",
    "apply_update",
    "beta_to_ga",
    "default_session",
    "ga_to_beta",
    "turn_detection_defaults",
    "validate_response_params",
]

DEFAULT_INSTRUCTIONS = (
    "You are a helpful, witty, and friendly AI running on a local engine. Keep answers short and clear."
)
VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
_FORMATS = tuple(BETA_AUDIO_FORMATS)
_TRANSCRIPTION_MODELS = (
    "whisper-1",
    "gpt-4o-transcribe",
    "gpt-4o-mini-transcribe",
    "gpt-4o-transcribe-diarize",
    "gpt-4o-mini-transcribe-2025-12-15",
    "gpt-realtime-whisper",
    "gpt-transcribe",
    "gpt-live-transcribe",
)
_EAGERNESS = ("low", "medium", "high", "auto")
_BETA_FORMATS = {beta: ga for ga, beta in BETA_AUDIO_FORMATS.items()}
_GA_TO_BETA_FORMATS = BETA_AUDIO_FORMATS
BETA_TEMPERATURE = 0.8  # the preview's default; the engine reports it (its brains take no temperature)


def turn_detection_defaults(kind: str) -> dict[str, Any]:
    """The full turn_detection object the service reports for ``kind`` (reference 2.4)."""
    if kind == "semantic_vad":
        return {"type": "semantic_vad", "eagerness": "auto", "create_response": True, "interrupt_response": True}
    return {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 200,
        "idle_timeout_ms": None,
        "create_response": True,
        "interrupt_response": True,
    }


def _default_audio_input() -> dict[str, Any]:
    """``audio.input`` of a new session, realtime or transcription alike."""
    return {
        "format": {"type": "audio/pcm", "rate": 24000},
        "transcription": None,
        "noise_reduction": None,
        "turn_detection": turn_detection_defaults("server_vad"),
    }


def default_session(*, model: str = "gpt-realtime", session_id: str, expires_at: int) -> dict[str, Any]:
    """The effective session a new connection starts with (the service's defaults, reference 2.4)."""
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id,
        "model": model,
        "output_modalities": ["audio"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": expires_at,
        "audio": {
            "input": _default_audio_input(),
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy", "speed": 1.0},
        },
        "include": None,
    }


def default_transcription_session(*, session_id: str, expires_at: int) -> dict[str, Any]:
    """The session a transcription connection (``?intent=transcription``) starts with: input audio only, no
    model, voice, instructions or tools. Transcription stays off until the client names a model, as in realtime
    sessions."""
    return {
        "type": "transcription",
        "object": "realtime.transcription_session",
        "id": session_id,
        "expires_at": expires_at,
        "audio": {"input": _default_audio_input()},
        "include": None,
    }


# ------------------------------------------------------------------------------------------------------------
# Validators: each checks one value at a dotted path and raises RequestRejected the way the service words it.


def _typename(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _invalid_type(path: str, expected: str, value: Any) -> RequestRejected:
    return RequestRejected(
        f"Invalid type for '{path}': expected {expected}, but got {_typename(value)} instead.",
        code="invalid_type",
        param=path,
    )


def _invalid_value(path: str, value: Any, supported: tuple[str, ...]) -> RequestRejected:
    options = ", ".join(f"'{s}'" for s in supported)
    return RequestRejected(
        f"Invalid value: '{value}'. Supported values are: {options}.", code="invalid_value", param=path
    )


def _unknown(path: str) -> RequestRejected:
    return RequestRejected(f"Unknown parameter: '{path}'.", code="unknown_parameter", param=path)


def _missing(path: str) -> RequestRejected:
    return RequestRejected(f"Missing required parameter: '{path}'.", code="missing_required_parameter", param=path)


def _obj(path: str, value: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid_type(path, "an object", value)
    for key in value:
        if key not in allowed:
            raise _unknown(f"{path}.{key}")
    return value


def _bool(path: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise _invalid_type(path, "a boolean", value)


def _number(path: str, value: Any, lo: float, hi: float, *, integer: bool = False) -> None:
    kind = "integer" if integer else "decimal"
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        raise _invalid_type(path, "an integer" if integer else "a decimal", value)
    if value < lo:
        raise RequestRejected(
            f"Invalid '{path}': {kind} below minimum value. Expected a value >= {lo}, but got {value} instead.",
            code=f"{kind}_below_min_value",
            param=path,
        )
    if value > hi:
        raise RequestRejected(
            f"Invalid '{path}': {kind} above maximum value. Expected a value <= {hi}, but got {value} instead.",
            code=f"{kind}_above_max_value",
            param=path,
        )


def _string(path: str, value: Any, choices: tuple[str, ...] | None = None) -> None:
    if not isinstance(value, str):
        raise _invalid_type(path, "a string", value)
    if choices is not None and value not in choices:
        raise _invalid_value(path, value, choices)


def _format(path: str, value: Any) -> dict[str, Any]:
    fmt = _obj(path, value, ("type", "rate"))
    if "type" not in fmt:
        raise _missing(f"{path}.type")
    _string(f"{path}.type", fmt["type"], _FORMATS)
    if fmt["type"] == "audio/pcm":
        rate = fmt.get("rate", 24000)
        if rate != 24000:
            raise RequestRejected(
                f"Invalid value: '{rate}'. Only a 24000 Hz sample rate is supported.",
                code="invalid_value",
                param=f"{path}.rate",
            )
        return {"type": "audio/pcm", "rate": 24000}
    return {"type": fmt["type"]}


def _turn_detection(path: str, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _invalid_type(path, "an object", value)
    kind = value.get("type", "server_vad")
    _string(f"{path}.type", kind, ("server_vad", "semantic_vad"))
    if kind == "server_vad":
        allowed: tuple[str, ...] = (
            "type",
            "threshold",
            "prefix_padding_ms",
            "silence_duration_ms",
            "idle_timeout_ms",
            "create_response",
            "interrupt_response",
        )
    else:
        allowed = ("type", "eagerness", "create_response", "interrupt_response")
    _obj(path, value, allowed)
    result = turn_detection_defaults(kind)
    for key, item in value.items():
        sub = f"{path}.{key}"
        if key == "threshold":
            _number(sub, item, 0.0, 1.0)
        elif key in ("prefix_padding_ms", "silence_duration_ms"):
            _number(sub, item, 0, 10_000, integer=True)
        elif key == "idle_timeout_ms":
            if item is not None:
                _number(sub, item, 0, 3_600_000, integer=True)  # the service's bounds are undocumented
        elif key in ("create_response", "interrupt_response"):
            _bool(sub, item)
        elif key == "eagerness":
            _string(sub, item, _EAGERNESS)
        result[key] = item
    return result


def _transcription(path: str, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    t = _obj(path, value, ("model", "language", "prompt", "languages", "keywords", "delay"))
    if "model" in t:
        _string(f"{path}.model", t["model"], _TRANSCRIPTION_MODELS)
    for key in ("language", "prompt"):
        if key in t and t[key] is not None:
            _string(f"{path}.{key}", t[key])
    if "delay" in t:
        _string(f"{path}.delay", t["delay"], ("minimal", "low", "medium", "high", "xhigh"))
    return dict(t)


def _noise_reduction(path: str, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    nr = _obj(path, value, ("type", "strength"))
    if "type" in nr:
        _string(f"{path}.type", nr["type"], ("near_field", "far_field"))
    if "strength" in nr:
        _number(f"{path}.strength", nr["strength"], 0.0, 1.0)
    return dict(nr)


def _voice(path: str, value: Any) -> Any:
    if isinstance(value, dict):
        _obj(path, value, ("id",))
        _string(f"{path}.id", value.get("id"))
        return dict(value)
    _string(path, value, VOICES)
    return value


def _tools(path: str, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise _invalid_type(path, "an array", value)
    tools = []
    for i, tool in enumerate(value):
        sub = f"{path}[{i}]"
        if not isinstance(tool, dict):
            raise _invalid_type(sub, "an object", tool)
        kind = tool.get("type", "function")
        _string(f"{sub}.type", kind, ("function", "mcp"))
        if kind == "function":
            _obj(sub, tool, ("type", "name", "description", "parameters"))
            if "name" not in tool:
                raise _missing(f"{sub}.name")
            _string(f"{sub}.name", tool["name"])
            tools.append({"type": "function", **{k: v for k, v in tool.items() if k != "type"}})
        else:
            tools.append(dict(tool))
    return tools


def _tool_choice(path: str, value: Any) -> Any:
    if isinstance(value, str):
        _string(path, value, ("auto", "none", "required"))
        return value
    choice = _obj(path, value, ("type", "name", "server_label"))
    _string(f"{path}.type", choice.get("type"), ("function", "mcp"))
    _string(f"{path}.name", choice.get("name"))
    return dict(choice)


def _max_tokens(path: str, value: Any) -> Any:
    if value == "inf":
        return value
    if isinstance(value, str):
        raise _invalid_value(path, value, ("inf",))
    _number(path, value, 1, 4096, integer=True)
    return value


def _modalities(path: str, value: Any) -> list[str]:
    if not isinstance(value, list):
        raise _invalid_type(path, "an array", value)
    for i, m in enumerate(value):
        _string(f"{path}[{i}]", m, ("text", "audio"))
    if sorted(value) not in (["audio"], ["text"]):
        raise RequestRejected(
            f"Invalid value: {value!r}. '{path}' must be either ['text'] or ['audio'].",
            code="invalid_value",
            param=path,
        )
    return list(value)


def _checked(check: Callable[[str, Any], None], path: str, value: Any) -> Any:
    check(path, value)
    return value


def _plain(path: str, value: Any) -> Any:
    return copy.deepcopy(value)


def _instructions(path: str, value: Any) -> str:
    _string(path, value)
    return str(value)


INCLUDABLE = ("item.input_audio_transcription.logprobs",)  # openai.types.realtime: include's only value
REASONING_EFFORTS = ("minimal", "low", "medium", "high", "xhigh")


def _include(path: str, value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise _invalid_type(path, "an array", value)
    for i, name in enumerate(value):
        _string(f"{path}[{i}]", name, INCLUDABLE)
    return list(value)


def _tracing(path: str, value: Any) -> Any:
    if value is None or value == "auto":
        return value
    if isinstance(value, str):
        raise _invalid_value(path, value, ("auto",))
    config = _obj(path, value, ("group_id", "metadata", "workflow_name"))
    for key in ("group_id", "workflow_name"):
        if key in config:
            _string(f"{path}.{key}", config[key])
    return copy.deepcopy(config)


def _truncation(path: str, value: Any) -> Any:
    if isinstance(value, str):
        _string(path, value, ("auto", "disabled"))
        return value
    ratio = _obj(path, value, ("type", "retention_ratio", "token_limits"))
    _string(f"{path}.type", ratio.get("type"), ("retention_ratio",))
    if "retention_ratio" not in ratio:
        raise _missing(f"{path}.retention_ratio")
    _number(f"{path}.retention_ratio", ratio["retention_ratio"], 0.0, 1.0)
    if "token_limits" in ratio:
        limits = _obj(f"{path}.token_limits", ratio["token_limits"], ("post_instructions",))
        if "post_instructions" in limits:
            _number(f"{path}.token_limits.post_instructions", limits["post_instructions"], 0, 10**9, integer=True)
    return copy.deepcopy(ratio)


def _prompt(path: str, value: Any) -> Any:
    if value is None:
        return None
    prompt = _obj(path, value, ("id", "variables", "version"))
    if "id" not in prompt:
        raise _missing(f"{path}.id")
    _string(f"{path}.id", prompt["id"])
    if prompt.get("variables") is not None and not isinstance(prompt["variables"], dict):
        raise _invalid_type(f"{path}.variables", "an object", prompt["variables"])
    if prompt.get("version") is not None:
        _string(f"{path}.version", prompt["version"])
    return copy.deepcopy(prompt)


def _reasoning(path: str, value: Any) -> Any:
    if value is None:
        return None
    reasoning = _obj(path, value, ("effort",))
    if reasoning.get("effort") is not None:
        _string(f"{path}.effort", reasoning["effort"], REASONING_EFFORTS)
    return dict(reasoning)


_TOP: dict[str, Callable[[str, Any], Any]] = {
    "model": _plain,
    "instructions": _instructions,
    "output_modalities": _modalities,
    "tools": _tools,
    "tool_choice": _tool_choice,
    "max_output_tokens": _max_tokens,
    "tracing": _tracing,
    "truncation": _truncation,
    "prompt": _prompt,
    "include": _include,
    "parallel_tool_calls": lambda p, v: _checked(_bool, p, v),
    "reasoning": _reasoning,
}
_INPUT: dict[str, Callable[[str, Any], Any]] = {
    "format": _format,
    "transcription": _transcription,
    "noise_reduction": _noise_reduction,
    "turn_detection": _turn_detection,
}
_OUTPUT: dict[str, Callable[[str, Any], Any]] = {
    "format": _format,
    "voice": _voice,
    "speed": lambda p, v: _checked(lambda q, w: _number(q, w, 0.25, 1.5), p, v),
}


def apply_update(
    current: dict[str, Any], update: Any, *, voice_locked: bool = False, require_type: bool = True
) -> dict[str, Any]:
    """Validate a GA ``session.update.session`` payload and return the merged effective session.

    ``voice_locked`` is true once the session has produced assistant audio (then a voice change is
    ``cannot_update_voice``). ``require_type`` enforces ``session.type`` as the GA service does.
    Raises :class:`RequestRejected`; ``current`` is never modified.
    """
    root = "session"
    if not isinstance(update, dict):
        raise _invalid_type(root, "an object", update)
    transcription = current.get("type") == "transcription"
    # A transcription session has input audio and nothing else: no model, voice, instructions or tools.
    top = {"include": _TOP["include"]} if transcription else _TOP
    allowed = ("type", "object", "id", "expires_at", *top, "audio")
    _obj(root, update, allowed)
    if "type" not in update:
        if require_type:
            raise _missing("session.type")
    else:
        _string("session.type", update["type"], ("realtime", "transcription"))
        if update["type"] != current.get("type", "realtime"):
            raise _invalid_value("session.type", update["type"], (str(current.get("type", "realtime")),))
    merged = copy.deepcopy(current)
    for key, check in top.items():
        if key in update:
            merged[key] = check(f"session.{key}", update[key])
    if current.get("tracing") is not None and merged.get("tracing") != current["tracing"]:
        # "Once tracing is enabled for a session, the configuration cannot be modified" (openai.types.realtime);
        # the service's code and wording for the refusal are not documented.
        raise RequestRejected(
            "Tracing cannot be modified once it has been enabled for a session. Leave 'session.tracing' out of "
            "this update.",
            code="invalid_value",
            param="session.tracing",
        )
    if "audio" in update:
        audio = _obj("session.audio", update["audio"], ("input",) if transcription else ("input", "output"))
        if "input" in audio:
            inp = _obj("session.audio.input", audio["input"], tuple(_INPUT))
            for key, check in _INPUT.items():
                if key in inp:
                    merged["audio"]["input"][key] = check(f"session.audio.input.{key}", inp[key])
        if "output" in audio:
            out = _obj("session.audio.output", audio["output"], tuple(_OUTPUT))
            for key, check in _OUTPUT.items():
                if key in out:
                    merged["audio"]["output"][key] = check(f"session.audio.output.{key}", out[key])
            new_voice = merged["audio"]["output"]["voice"]
            if voice_locked and new_voice != current["audio"]["output"]["voice"]:
                raise RequestRejected(
                    "Cannot update a conversation's voice if assistant audio is present.",
                    code="cannot_update_voice",
                    param="session.audio.output.voice",
                )
    return merged


def validate_response_params(params: Any) -> dict[str, Any]:
    """Validate ``response.create.response`` (reference 2.3); returns it (a copy) or raises RequestRejected."""
    root = "response"
    if params is None:
        return {}
    allowed = (
        "conversation",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "output_modalities",
        "audio",
        "max_output_tokens",
        "metadata",
        "prompt",
        "parallel_tool_calls",
        "reasoning",
    )
    p = dict(_obj(root, params, allowed))
    if "conversation" in p:
        conv = p["conversation"]
        if not isinstance(conv, str):
            raise _invalid_type("response.conversation", "a string", conv)
        if conv not in ("auto", "none"):
            raise _invalid_value("response.conversation", conv, ("auto", "none"))
    if "instructions" in p:
        _string("response.instructions", p["instructions"])
    if "tools" in p:
        p["tools"] = _tools("response.tools", p["tools"])
    if "tool_choice" in p:
        p["tool_choice"] = _tool_choice("response.tool_choice", p["tool_choice"])
    if "output_modalities" in p:
        p["output_modalities"] = _modalities("response.output_modalities", p["output_modalities"])
    if "max_output_tokens" in p:
        _max_tokens("response.max_output_tokens", p["max_output_tokens"])
    if "metadata" in p and p["metadata"] is not None:
        meta = p["metadata"]
        if not isinstance(meta, dict):
            raise _invalid_type("response.metadata", "an object", meta)
        if len(meta) > 16:
            raise RequestRejected(
                "Invalid 'response.metadata': too many properties. Expected an object with at most 16 "
                f"properties, but got an object with {len(meta)} properties instead.",
                code="object_above_max_properties",
                param="response.metadata",
            )
        for k, v in meta.items():
            _string(f"response.metadata.{k}", v)
    if "prompt" in p:
        p["prompt"] = _prompt("response.prompt", p["prompt"])
    if "reasoning" in p:
        p["reasoning"] = _reasoning("response.reasoning", p["reasoning"])
    if "input" in p and not isinstance(p["input"], list):
        raise _invalid_type("response.input", "an array", p["input"])
    if "audio" in p:
        audio = _obj("response.audio", p["audio"], ("output",))
        if "output" in audio:
            out = _obj("response.audio.output", audio["output"], ("format", "voice"))
            if "voice" in out:
                _voice("response.audio.output.voice", out["voice"])
            if "format" in out:
                _format("response.audio.output.format", out["format"])
    return p


# ------------------------------------------------------------------------------------------------------------
# Beta (preview) flat shape <-> GA nested shape (reference 2.2)

_BETA_KEYS = (
    "modalities",
    "instructions",
    "voice",
    "input_audio_format",
    "output_audio_format",
    "input_audio_transcription",
    "turn_detection",
    "tools",
    "tool_choice",
    "temperature",
    "max_response_output_tokens",
    "speed",
    "tracing",
    "input_audio_noise_reduction",
    "model",
    "include",
    "object",
    "id",
    "expires_at",
    "client_secret",
)


def beta_to_ga(flat: Any) -> dict[str, Any]:
    """Translate a preview ``session.update.session`` into a GA update (``type`` added).

    GA-only fields sent on the preview path fail as the service does (``Unknown parameter:
    'session.output_modalities'``). Raises :class:`RequestRejected`.
    """
    if not isinstance(flat, dict):
        raise _invalid_type("session", "an object", flat)
    _obj("session", flat, _BETA_KEYS)
    ga: dict[str, Any] = {"type": "realtime"}
    audio_in: dict[str, Any] = {}
    audio_out: dict[str, Any] = {}
    for key, value in flat.items():
        if key == "modalities":
            if not isinstance(value, list):
                raise _invalid_type("session.modalities", "an array", value)
            # beta allowed ["text", "audio"]: audio output with its transcript, which GA calls ["audio"]
            ga["output_modalities"] = ["audio"] if "audio" in value else ["text"]
        elif key in ("input_audio_format", "output_audio_format"):
            _string(f"session.{key}", value, tuple(_BETA_FORMATS))
            target = audio_in if key.startswith("input") else audio_out
            target["format"] = {"type": _BETA_FORMATS[value]}
            if value == "pcm16":
                target["format"]["rate"] = 24000
        elif key == "input_audio_transcription":
            audio_in["transcription"] = value
        elif key == "input_audio_noise_reduction":
            audio_in["noise_reduction"] = value
        elif key == "turn_detection":
            audio_in["turn_detection"] = value
        elif key == "voice":
            audio_out["voice"] = value
        elif key == "speed":
            audio_out["speed"] = value
        elif key == "max_response_output_tokens":
            ga["max_output_tokens"] = value
        elif key == "temperature":
            _number("session.temperature", value, 0.6, 1.2)
        elif key in ("object", "id", "expires_at", "client_secret"):
            continue
        else:
            ga[key] = value
    if audio_in or audio_out:
        ga["audio"] = {}
        if audio_in:
            ga["audio"]["input"] = audio_in
        if audio_out:
            ga["audio"]["output"] = audio_out
    return ga


def ga_to_beta(session: dict[str, Any]) -> dict[str, Any]:
    """The flat preview shape of an effective GA session (what ``session.created/updated`` carry on beta)."""
    audio_in = session["audio"]["input"]
    audio_out = session["audio"]["output"]
    modalities = ["text", "audio"] if session["output_modalities"] == ["audio"] else ["text"]
    td = audio_in["turn_detection"]
    return {
        "id": session["id"],
        "object": "realtime.session",
        "model": session["model"],
        "expires_at": session.get("expires_at", 0),
        "modalities": modalities,
        "instructions": session["instructions"],
        "voice": audio_out["voice"],
        "turn_detection": None if td is None else {k: v for k, v in td.items() if k != "idle_timeout_ms"},
        "input_audio_format": _GA_TO_BETA_FORMATS[audio_in["format"]["type"]],
        "output_audio_format": _GA_TO_BETA_FORMATS[audio_out["format"]["type"]],
        "input_audio_transcription": audio_in["transcription"],
        "input_audio_noise_reduction": audio_in["noise_reduction"],
        "tool_choice": session["tool_choice"],
        "temperature": BETA_TEMPERATURE,
        "max_response_output_tokens": session["max_output_tokens"],
        "speed": audio_out["speed"],
        "tracing": session["tracing"],
        "tools": session["tools"],
    }
