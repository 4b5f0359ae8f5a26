"""The session-config builder: one validated value that writes the GA nested shape or the preview flat shape.

Reference: ``realtime-protocol.md`` section 2.1 (GA ``session`` object) and 2.2 (the beta flat equivalents).
Every value is checked when the config is built, so an invalid one fails before anything is sent, with
:class:`~aoai_realtime.errors.ConfigError` naming the field by its GA path (``audio.output.speed``). The TypeScript
SDK this project is modelled on dropped unknown settings silently; here there is nothing to drop: the fields
are typed, and ``extra`` (for settings this version does not know yet) is passed through as given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import ConfigError
from .dialect import BETA_AUDIO_FORMATS, Dialect, ga_audio_format, update_to_beta
from .schema import (
    AUDIO_BYTES_PER_MS,
    NOISE_REDUCTION_TYPES,
    VOICES,
    RequestRejected,
    apply_update,
    default_session,
)

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

# What a session.update is checked against (the values of a config never depend on the session's id or model).
_BASE = default_session(model="gpt-realtime", instructions="", session_id="sess", expires_at=0)


def _check(ok: bool, field_path: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"invalid session config: {field_path}: {message}", field=field_path)


@dataclass(frozen=True, kw_only=True)
class AudioFormat:
    """``audio/pcm`` (16-bit little-endian mono, 24 kHz only), ``audio/pcmu`` or ``audio/pcma`` (G.711, 8 kHz)."""

    type: Literal["audio/pcm", "audio/pcmu", "audio/pcma"] = "audio/pcm"
    rate: int = 24000

    def to_ga(self) -> dict[str, Any]:
        return {"type": self.type, "rate": self.rate} if self.type == "audio/pcm" else {"type": self.type}

    def to_beta(self) -> str:
        return BETA_AUDIO_FORMATS.get(self.type, self.type)


@dataclass(frozen=True, kw_only=True)
class Transcription:
    """Input audio transcription (off unless set). ``model`` e.g. ``whisper-1``, ``gpt-4o-transcribe``."""

    model: str = "whisper-1"
    language: str | None = None
    prompt: str | None = None

    def validate(self, path: str) -> None:
        """Checks stricter than the service's (which takes any string as ``language``)."""
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
    """Server voice activity detection (the service's default). The defaults are the service's own
    (:func:`~aoai_realtime.protocol.schema.turn_detection_defaults`: 200 ms of silence ends a turn)."""

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 200
    idle_timeout_ms: int | None = None
    create_response: bool = True
    interrupt_response: bool = True

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
        # The builder's own shape: which Python values go where.
        _check(
            isinstance(self.transcription, Transcription) or self.transcription in (None, _NOT_GIVEN),
            "audio.input.transcription",
            "expected Transcription(...) or None",
        )
        _check(
            isinstance(self.turn_detection, ServerVad | SemanticVad) or self.turn_detection in (None, _NOT_GIVEN),
            "audio.input.turn_detection",
            "expected ServerVad(...), SemanticVad(...) or None",
        )
        _check(
            self.noise_reduction in (None, _NOT_GIVEN, *NOISE_REDUCTION_TYPES),
            "audio.input.noise_reduction",
            f"{self.noise_reduction!r} is not one of {NOISE_REDUCTION_TYPES} or None",
        )
        _check(self.model is None or (isinstance(self.model, str) and bool(self.model)), "model",
               "expected a model/deployment name")  # fmt: skip
        # The values: the service's rules, from the one schema the engine applies too.
        ga = self.to_ga()
        for key in self.extra:
            ga.pop(key, None)  # settings this version does not know are passed through unchecked
        try:
            apply_update(_BASE, ga)
        except RequestRejected as exc:
            path = (exc.param or "session").removeprefix("session").lstrip(".") or "session"
            raise ConfigError(f"invalid session config: {path}: {exc.message}", field=path) from None
        # Stricter than the service, for mistakes it would only report later (or never).
        if isinstance(self.transcription, Transcription):
            self.transcription.validate("audio.input.transcription")
        if self.tools is not None:
            for i, tool in enumerate(self.tools):
                self._check_tool(tool, f"tools[{i}]")
            names = [t.get("name") for t in self.tools if t.get("type", "function") == "function"]
            dupes = sorted({str(n) for n in names if names.count(n) > 1})
            _check(not dupes, "tools", f"duplicate tool names: {dupes}")

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
        return update_to_beta(self.to_ga())

    def to_wire(self, dialect: Dialect) -> dict[str, Any]:
        return self.to_ga() if dialect == "ga" else self.to_beta()
