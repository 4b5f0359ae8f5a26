"""The session-config builder: one validated value that writes the GA nested shape or the preview flat shape.

Reference: ``realtime-protocol.md`` section 2.1 (GA ``session`` object) and 2.2 (the beta flat equivalents).
Every value is checked when the config is built, so an invalid one fails before anything is sent, with
:class:`~aoai_realtime.errors.ConfigError` naming the field by its GA path (``audio.output.speed``). The TypeScript
SDK this project is modelled on dropped unknown settings silently; here there is nothing to drop: the fields
are typed, and ``extra`` (for settings this version does not know yet) is passed through as given.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import ConfigError

__all__ = [
    "AUDIO_BYTES_PER_MS",
    "BETA_AUDIO_FORMATS",
    "VOICES",
    "AudioFormat",
    "SemanticVad",
    "ServerVad",
    "SessionConfig",
    "Transcription",
    "ga_audio_format",
]

VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
_MODALITIES = ({"audio"}, {"text"})
_TOOL_CHOICES = ("auto", "none", "required")
_NOISE = ("near_field", "far_field")
_EAGERNESS = ("low", "medium", "high", "auto")
# The audio formats by GA name: their preview (beta) name and how many bytes one millisecond takes on the wire
# (pcm16 at 24 kHz: 48; G.711 at 8 kHz: 8). The one table the client, the agents, the audio codec and the engine use.
BETA_AUDIO_FORMATS = {"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}
AUDIO_BYTES_PER_MS = {"audio/pcm": 48, "audio/pcmu": 8, "audio/pcma": 8}
_GA_AUDIO_FORMATS = {**{ga: ga for ga in BETA_AUDIO_FORMATS}, **{beta: ga for ga, beta in BETA_AUDIO_FORMATS.items()}}


def ga_audio_format(name: object) -> str | None:
    """The GA name (``audio/pcmu``) of an audio format given by its GA or preview (``g711_ulaw``) name, or ``None``
    for anything else."""
    return _GA_AUDIO_FORMATS.get(name) if isinstance(name, str) else None


def _check(ok: bool, field_path: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"invalid session config: {field_path}: {message}", field=field_path)


def _check_range(value: float, low: float, high: float, field_path: str) -> None:
    _check(
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value),
        field_path,
        f"expected a number, got {value!r}",
    )
    _check(low <= value <= high, field_path, f"{value!r} is outside {low}..{high}")


def _check_ms(value: int | None, field_path: str, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    _check(
        isinstance(value, int) and not isinstance(value, bool) and value >= 0,
        field_path,
        f"expected a whole number of milliseconds >= 0, got {value!r}",
    )


@dataclass(frozen=True, kw_only=True)
class AudioFormat:
    """``audio/pcm`` (16-bit little-endian mono, 24 kHz only), ``audio/pcmu`` or ``audio/pcma`` (G.711, 8 kHz)."""

    type: Literal["audio/pcm", "audio/pcmu", "audio/pcma"] = "audio/pcm"
    rate: int = 24000

    def validate(self, path: str) -> None:
        known = sorted(BETA_AUDIO_FORMATS)
        _check(self.type in BETA_AUDIO_FORMATS, f"{path}.type", f"{self.type!r} is not one of {known}")
        if self.type == "audio/pcm":
            _check(self.rate == 24000, f"{path}.rate", f"only 24000 Hz is supported for audio/pcm, got {self.rate!r}")

    def to_ga(self) -> dict[str, Any]:
        return {"type": self.type, "rate": self.rate} if self.type == "audio/pcm" else {"type": self.type}

    def to_beta(self) -> str:
        return BETA_AUDIO_FORMATS[self.type]


@dataclass(frozen=True, kw_only=True)
class Transcription:
    """Input audio transcription (off unless set). ``model`` e.g. ``whisper-1``, ``gpt-4o-transcribe``."""

    model: str = "whisper-1"
    language: str | None = None
    prompt: str | None = None

    def validate(self, path: str) -> None:
        _check(isinstance(self.model, str) and bool(self.model), f"{path}.model", "a model name is required")
        if self.language is not None:
            _check(
                isinstance(self.language, str) and 2 <= len(self.language) <= 3 and self.language.isalpha(),
                f"{path}.language",
                f"expected an ISO-639-1 code such as 'en', got {self.language!r}",
            )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model}
        if self.language is not None:
            out["language"] = self.language
        if self.prompt is not None:
            out["prompt"] = self.prompt
        return out


@dataclass(frozen=True, kw_only=True)
class ServerVad:
    """Server voice activity detection (the service's default)."""

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    idle_timeout_ms: int | None = None
    create_response: bool = True
    interrupt_response: bool = True

    def validate(self, path: str) -> None:
        _check_range(self.threshold, 0.0, 1.0, f"{path}.threshold")
        _check_ms(self.prefix_padding_ms, f"{path}.prefix_padding_ms")
        _check_ms(self.silence_duration_ms, f"{path}.silence_duration_ms")
        _check_ms(self.idle_timeout_ms, f"{path}.idle_timeout_ms", allow_none=True)
        _check(isinstance(self.create_response, bool), f"{path}.create_response", "expected true or false")
        _check(isinstance(self.interrupt_response, bool), f"{path}.interrupt_response", "expected true or false")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "server_vad",
            "threshold": self.threshold,
            "prefix_padding_ms": self.prefix_padding_ms,
            "silence_duration_ms": self.silence_duration_ms,
            "create_response": self.create_response,
            "interrupt_response": self.interrupt_response,
        }
        if self.idle_timeout_ms is not None:
            out["idle_timeout_ms"] = self.idle_timeout_ms
        return out


@dataclass(frozen=True, kw_only=True)
class SemanticVad:
    """Semantic turn detection: ends the turn when the words sound finished. ``auto`` equals ``medium``."""

    eagerness: Literal["low", "medium", "high", "auto"] = "auto"
    create_response: bool = True
    interrupt_response: bool = True

    def validate(self, path: str) -> None:
        _check(self.eagerness in _EAGERNESS, f"{path}.eagerness", f"{self.eagerness!r} is not one of {_EAGERNESS}")
        _check(isinstance(self.create_response, bool), f"{path}.create_response", "expected true or false")
        _check(isinstance(self.interrupt_response, bool), f"{path}.interrupt_response", "expected true or false")

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "semantic_vad",
            "eagerness": self.eagerness,
            "create_response": self.create_response,
            "interrupt_response": self.interrupt_response,
        }


_NOT_GIVEN: Any = object()


@dataclass(frozen=True, kw_only=True)
class SessionConfig:
    """A Realtime session configuration, validated at construction.

    Only fields that were given are sent (``session.update`` is a partial merge on the service); ``None`` for
    ``turn_detection``, ``transcription`` or ``noise_reduction`` is sent as ``null`` and switches that feature
    off. Pass it to :class:`~aoai_realtime.client.RealtimeClient` or call :meth:`to_ga` / :meth:`to_beta`.
    """

    model: str | None = None
    instructions: str | None = None
    voice: str | None = None
    output_modalities: Sequence[Literal["audio", "text"]] | None = None
    input_format: AudioFormat | None = None
    output_format: AudioFormat | None = None
    transcription: Transcription | Any | None = _NOT_GIVEN
    turn_detection: ServerVad | SemanticVad | Any | None = _NOT_GIVEN
    noise_reduction: Literal["near_field", "far_field"] | Any | None = _NOT_GIVEN
    speed: float | None = None
    tools: Sequence[Mapping[str, Any]] | None = None
    tool_choice: str | Mapping[str, Any] = "auto"
    max_output_tokens: int | Literal["inf"] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.model is not None:
            _check(isinstance(self.model, str) and bool(self.model), "model", "expected a model/deployment name")
        if self.instructions is not None:
            _check(isinstance(self.instructions, str), "instructions", "expected a string")
        if self.voice is not None:
            _check(
                self.voice in VOICES, "audio.output.voice", f"{self.voice!r} is not one of {', '.join(VOICES)}"
            )
        if self.output_modalities is not None:
            _check(
                set(self.output_modalities) in _MODALITIES and len(self.output_modalities) == 1,
                "output_modalities",
                f"expected ['audio'] or ['text'] (both at once is not allowed), got {list(self.output_modalities)!r}",
            )
        if self.input_format is not None:
            self.input_format.validate("audio.input.format")
        if self.output_format is not None:
            self.output_format.validate("audio.output.format")
        if isinstance(self.transcription, Transcription):
            self.transcription.validate("audio.input.transcription")
        else:
            _check(
                self.transcription is None or self.transcription is _NOT_GIVEN,
                "audio.input.transcription",
                "expected Transcription(...) or None",
            )
        if isinstance(self.turn_detection, ServerVad | SemanticVad):
            self.turn_detection.validate("audio.input.turn_detection")
        else:
            _check(
                self.turn_detection is None or self.turn_detection is _NOT_GIVEN,
                "audio.input.turn_detection",
                "expected ServerVad(...), SemanticVad(...) or None",
            )
        if self.noise_reduction is not None and self.noise_reduction is not _NOT_GIVEN:
            _check(
                self.noise_reduction in _NOISE,
                "audio.input.noise_reduction",
                f"{self.noise_reduction!r} is not one of {_NOISE} or None",
            )
        if self.speed is not None:
            _check_range(self.speed, 0.25, 1.5, "audio.output.speed")
        if self.tools is not None:
            for i, tool in enumerate(self.tools):
                self._check_tool(tool, f"tools[{i}]")
            names = [t.get("name") for t in self.tools if t.get("type", "function") == "function"]
            dupes = sorted({str(n) for n in names if names.count(n) > 1})
            _check(not dupes, "tools", f"duplicate tool names: {dupes}")
        if isinstance(self.tool_choice, str):
            _check(
                self.tool_choice in _TOOL_CHOICES,
                "tool_choice",
                f"{self.tool_choice!r} is not one of {_TOOL_CHOICES} or a {{'type': 'function', 'name': ...}}",
            )
        else:
            _check(
                isinstance(self.tool_choice, Mapping) and self.tool_choice.get("type") in ("function", "mcp"),
                "tool_choice",
                "expected 'auto', 'none', 'required' or {'type': 'function', 'name': ...}",
            )
        if self.max_output_tokens is not None and self.max_output_tokens != "inf":
            _check(
                isinstance(self.max_output_tokens, int)
                and not isinstance(self.max_output_tokens, bool)
                and 1 <= self.max_output_tokens <= 4096,
                "max_output_tokens",
                f"expected 1..4096 or 'inf', got {self.max_output_tokens!r}",
            )

    @staticmethod
    def _check_tool(tool: Mapping[str, Any], path: str) -> None:
        _check(isinstance(tool, Mapping), path, "expected a tool object")
        kind = tool.get("type", "function")
        if kind == "mcp":
            _check(bool(tool.get("server_label")), f"{path}.server_label", "an MCP tool needs a server_label")
            return
        _check(kind == "function", f"{path}.type", f"expected 'function' or 'mcp', got {kind!r}")
        name = tool.get("name")
        _check(
            isinstance(name, str) and 0 < len(name) <= 64 and name.replace("_", "a").replace("-", "a").isalnum(),
            f"{path}.name",
            f"expected a name of letters, digits, '_' or '-' (at most 64), got {name!r}",
        )
        params = tool.get("parameters", {"type": "object"})
        _check(
            isinstance(params, Mapping) and params.get("type") == "object",
            f"{path}.parameters",
            "expected a JSON Schema object with type 'object'",
        )

    # ------------------------------------------------------------------------------------------------

    def to_ga(self) -> dict[str, Any]:
        """The GA nested ``session`` object (``type: "realtime"``), only with the fields that were set."""
        out: dict[str, Any] = {"type": "realtime"}
        if self.model is not None:
            out["model"] = self.model
        if self.instructions is not None:
            out["instructions"] = self.instructions
        if self.output_modalities is not None:
            out["output_modalities"] = list(self.output_modalities)
        audio_in: dict[str, Any] = {}
        if self.input_format is not None:
            audio_in["format"] = self.input_format.to_ga()
        if self.transcription is not _NOT_GIVEN:
            audio_in["transcription"] = self.transcription.to_dict() if self.transcription else None
        if self.turn_detection is not _NOT_GIVEN:
            audio_in["turn_detection"] = self.turn_detection.to_dict() if self.turn_detection else None
        if self.noise_reduction is not _NOT_GIVEN:
            audio_in["noise_reduction"] = {"type": self.noise_reduction} if self.noise_reduction else None
        audio_out: dict[str, Any] = {}
        if self.output_format is not None:
            audio_out["format"] = self.output_format.to_ga()
        if self.voice is not None:
            audio_out["voice"] = self.voice
        if self.speed is not None:
            audio_out["speed"] = self.speed
        audio: dict[str, Any] = {}
        if audio_in:
            audio["input"] = audio_in
        if audio_out:
            audio["output"] = audio_out
        if audio:
            out["audio"] = audio
        if self.tools is not None:
            out["tools"] = [{"type": "function", **dict(t)} for t in self.tools]
        out["tool_choice"] = dict(self.tool_choice) if isinstance(self.tool_choice, Mapping) else self.tool_choice
        if self.max_output_tokens is not None:
            out["max_output_tokens"] = self.max_output_tokens
        out.update(self.extra)
        return out

    def to_beta(self) -> dict[str, Any]:
        """The preview (beta) flat ``session`` object, for ``/openai/realtime?api-version=...`` endpoints."""
        out: dict[str, Any] = {}
        if self.model is not None:
            out["model"] = self.model
        if self.instructions is not None:
            out["instructions"] = self.instructions
        if self.output_modalities is not None:
            # beta lists both when audio is on: audio always came with its transcript text.
            out["modalities"] = ["text", "audio"] if "audio" in self.output_modalities else ["text"]
        if self.input_format is not None:
            out["input_audio_format"] = self.input_format.to_beta()
        if self.output_format is not None:
            out["output_audio_format"] = self.output_format.to_beta()
        if self.transcription is not _NOT_GIVEN:
            out["input_audio_transcription"] = self.transcription.to_dict() if self.transcription else None
        if self.turn_detection is not _NOT_GIVEN:
            out["turn_detection"] = self.turn_detection.to_dict() if self.turn_detection else None
        if self.noise_reduction is not _NOT_GIVEN:
            out["input_audio_noise_reduction"] = {"type": self.noise_reduction} if self.noise_reduction else None
        if self.voice is not None:
            out["voice"] = self.voice
        if self.speed is not None:
            out["speed"] = self.speed
        if self.tools is not None:
            out["tools"] = [{"type": "function", **dict(t)} for t in self.tools]
        out["tool_choice"] = dict(self.tool_choice) if isinstance(self.tool_choice, Mapping) else self.tool_choice
        if self.max_output_tokens is not None:
            out["max_response_output_tokens"] = self.max_output_tokens
        out.update(self.extra)
        return out

    def to_wire(self, dialect: Literal["ga", "beta"]) -> dict[str, Any]:
        return self.to_ga() if dialect == "ga" else self.to_beta()
