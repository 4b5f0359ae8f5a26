"""The one Realtime session schema: the service's defaults, its validation and its partial merge.

Every side uses this module: the engine applies ``session.update`` with :func:`apply_update` (the service's
rules, error wording and dotted ``param``, reference 2.1, 2.4, 4.6, pitfalls 6.2), and the client's
:class:`~aoai_realtime.protocol.session.SessionConfig` checks its values with the same rules before anything is
sent, so the client cannot build a session the engine (or the service) would refuse.

The effective session is held in the GA nested shape as a :class:`RealtimeSession` (a ``TypedDict``: the wire
dict itself, typed). The preview flat shape is converted at the edge by :mod:`~aoai_realtime.protocol.dialect`.
Pure functions, no I/O.

- :func:`default_session` / :func:`default_transcription_session`: what a new session starts with (2.4).
- :func:`apply_update`: validate an update and return the merged session (only the fields present change;
  ``turn_detection``, ``transcription``, ``noise_reduction`` and formats are replaced whole, with their
  type's defaults filled in; ``null`` turns a feature off). Raises :class:`RequestRejected`.
- :func:`validate_response_params`: the ``response`` object of ``response.create`` (2.3).
- :func:`merge_partial`: merge one partial update into another the way the service merges them (the client
  keeps its updates this way to re-send them after a reconnect).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from typing import Any, Required, TypedDict, cast

from ..errors import RealtimeError

__all__ = [
    "AUDIO_BYTES_PER_MS",
    "AUDIO_FORMATS",
    "EAGERNESS",
    "INCLUDABLE",
    "MAX_OUTPUT_TOKENS",
    "NOISE_REDUCTION_TYPES",
    "REASONING_EFFORTS",
    "SPEED_RANGE",
    "TOOL_CHOICES",
    "TRANSCRIPTION_MODELS",
    "VOICES",
    "AudioFormatValue",
    "AudioInput",
    "AudioOutput",
    "RealtimeSession",
    "RequestRejected",
    "SessionAudio",
    "TurnDetection",
    "apply_update",
    "default_session",
    "default_transcription_session",
    "merge_partial",
    "turn_detection_defaults",
    "validate_response_params",
]

VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
EAGERNESS = ("low", "medium", "high", "auto")
NOISE_REDUCTION_TYPES = ("near_field", "far_field")
TOOL_CHOICES = ("auto", "none", "required")
SPEED_RANGE = (0.25, 1.5)
MAX_OUTPUT_TOKENS = 4096
# The audio formats by GA name and how many bytes one millisecond takes on the wire (pcm16 at 24 kHz: 48;
# G.711 at 8 kHz: 8). Their preview names are in the dialect module.
AUDIO_BYTES_PER_MS = {"audio/pcm": 48, "audio/pcmu": 8, "audio/pcma": 8}
AUDIO_FORMATS = tuple(AUDIO_BYTES_PER_MS)
TRANSCRIPTION_MODELS = (
    "whisper-1",
    "gpt-4o-transcribe",
    "gpt-4o-mini-transcribe",
    "gpt-4o-transcribe-diarize",
    "gpt-4o-mini-transcribe-2025-12-15",
    "gpt-realtime-whisper",
    "gpt-transcribe",
    "gpt-live-transcribe",
)
INCLUDABLE = ("item.input_audio_transcription.logprobs",)  # openai.types.realtime: include's only value
REASONING_EFFORTS = ("minimal", "low", "medium", "high", "xhigh")


class RequestRejected(RealtimeError):
    """A client request the service refuses: it becomes an ``error`` event with these fields (reference 4.6)
    and the session stays open. ``param`` is the dotted path of the offending value (``session.audio.output.voice``)."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None,
        param: str | None = None,
        type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        self.type = type
        self.event_id: str | None = None  # the refused client event's, when known


class AudioFormatValue(TypedDict, total=False):
    type: Required[str]
    rate: int


class TurnDetection(TypedDict, total=False):
    """``server_vad`` (threshold, paddings, idle timeout) or ``semantic_vad`` (eagerness); both have the two flags."""

    type: Required[str]
    threshold: float
    prefix_padding_ms: int
    silence_duration_ms: int
    idle_timeout_ms: int | None
    eagerness: str
    create_response: bool
    interrupt_response: bool


class AudioInput(TypedDict):
    format: AudioFormatValue
    transcription: dict[str, Any] | None
    noise_reduction: dict[str, Any] | None
    turn_detection: TurnDetection | None


class AudioOutput(TypedDict):
    format: AudioFormatValue
    voice: str | dict[str, Any]
    speed: float


class SessionAudio(TypedDict, total=False):
    input: Required[AudioInput]
    output: AudioOutput  # absent in a transcription session


class RealtimeSession(TypedDict, total=False):
    """The effective session (GA shape, reference 2.4). A transcription session has only ``audio.input``."""

    type: Required[str]
    object: str
    id: str
    model: str
    output_modalities: list[str]
    instructions: str
    tools: list[dict[str, Any]]
    tool_choice: str | dict[str, Any]
    max_output_tokens: int | str
    tracing: Any
    truncation: Any
    prompt: Any
    expires_at: int
    audio: Required[SessionAudio]
    include: list[str] | None
    parallel_tool_calls: bool
    reasoning: Any


def turn_detection_defaults(kind: str) -> TurnDetection:
    """The full turn_detection object the service reports for ``kind`` (reference 2.4: the service's
    ``session.created`` shows ``silence_duration_ms`` 200 for server_vad, though its schema text says 500)."""
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


def _default_audio_input() -> AudioInput:
    """``audio.input`` of a new session, realtime or transcription alike."""
    return {
        "format": {"type": "audio/pcm", "rate": 24000},
        "transcription": None,
        "noise_reduction": None,
        "turn_detection": turn_detection_defaults("server_vad"),
    }


def default_session(*, model: str, instructions: str, session_id: str, expires_at: int) -> RealtimeSession:
    """The effective session a new realtime connection starts with (the service's defaults, reference 2.4)."""
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id,
        "model": model,
        "output_modalities": ["audio"],
        "instructions": instructions,
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


def default_transcription_session(*, session_id: str, expires_at: int) -> RealtimeSession:
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
    if not math.isfinite(value):
        raise RequestRejected(
            f"Invalid '{path}': expected a finite {kind}, but got {value} instead.", code="invalid_value", param=path
        )
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
    _string(f"{path}.type", fmt["type"], AUDIO_FORMATS)
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
    """A whole turn_detection object: the defaults of its type, then the values given (so one update replaces
    the previous object instead of merging into it, as the service does)."""
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
    result = cast(dict[str, Any], turn_detection_defaults(kind))
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
            _string(sub, item, EAGERNESS)
        result[key] = item
    return result


def _transcription(path: str, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    t = _obj(path, value, ("model", "language", "prompt", "languages", "keywords", "delay"))
    if "model" in t:
        _string(f"{path}.model", t["model"], TRANSCRIPTION_MODELS)
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
        _string(f"{path}.type", nr["type"], NOISE_REDUCTION_TYPES)
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
    if isinstance(value, str) and value == "inf":
        return value
    if isinstance(value, str):
        raise _invalid_value(path, value, ("inf",))
    _number(path, value, 1, MAX_OUTPUT_TOKENS, integer=True)
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
    "speed": lambda p, v: _checked(lambda q, w: _number(q, w, *SPEED_RANGE), p, v),
}


def apply_update(
    session: RealtimeSession, update: Any, *, voice_locked: bool = False, require_type: bool = True
) -> RealtimeSession:
    """Validate a GA ``session.update.session`` payload and return the merged effective session.

    ``voice_locked`` is true once the session has produced assistant audio (then a voice change is
    ``cannot_update_voice``). ``require_type`` enforces ``session.type`` as the GA service does.
    Raises :class:`RequestRejected`; ``current`` is never modified.
    """
    current = cast(dict[str, Any], session)
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
    return cast(RealtimeSession, merged)


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


def merge_partial(into: dict[str, Any], update: Mapping[str, Any]) -> None:
    """Merge the partial session update ``update`` into ``into`` (in place): objects merge key by key, any other
    value (lists, strings, ``None``) replaces what was there. Two updates merged this way, sent once, leave the
    service's session where sending both one after the other would."""
    for key, value in update.items():
        current = into.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            merge_partial(current, value)
        else:
            into[key] = copy.deepcopy(dict(value)) if isinstance(value, Mapping) else copy.deepcopy(value)
