"""Everything that differs between the GA protocol and the preview (beta) one, in one place (reference 1, 2.2).

The protocol core speaks GA. Preview endpoints (``/openai/realtime?api-version=...``) differ in:

- six streaming event names (:data:`BETA_TO_GA`): ``response.audio.*``, ``response.audio_transcript.*`` and
  ``response.text.*`` for GA's ``response.output_audio.*``, ``response.output_audio_transcript.*`` and
  ``response.output_text.*``; the codec decodes both and encodes either;
- audio format names (:data:`BETA_AUDIO_FORMATS`: ``pcm16``, ``g711_ulaw``, ``g711_alaw``);
- the ``session`` object, flat instead of nested: :func:`update_to_beta` (a client's update, GA -> beta),
  :func:`session_update_to_ga` (a preview client's update, beta -> GA, the engine's side) and
  :func:`session_to_beta` (an effective session as ``session.created/updated`` carry it on beta);
- server events: ``conversation.item.created`` for ``conversation.item.added``, no GA-only events, beta content
  part names (``text``, ``audio``) and beta ``response`` fields: :func:`event_to_beta`, :func:`response_to_beta`.

Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeAlias, cast

import msgspec

from . import events as ev
from .schema import RealtimeSession, _invalid_type, _number, _obj, _string

__all__ = [
    "BETA_AUDIO_FORMATS",
    "BETA_TEMPERATURE",
    "BETA_TO_GA",
    "GA_TO_BETA",
    "Dialect",
    "event_to_beta",
    "ga_audio_format",
    "response_to_beta",
    "session_to_beta",
    "session_update_to_ga",
    "update_to_beta",
]

Dialect: TypeAlias = Literal["ga", "beta"]

BETA_TO_GA: dict[str, str] = {
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
}
GA_TO_BETA: dict[str, str] = {ga: beta for beta, ga in BETA_TO_GA.items()}

# The audio formats by GA name -> their preview name.
BETA_AUDIO_FORMATS = {"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}
_GA_FORMAT_OF = {**{ga: ga for ga in BETA_AUDIO_FORMATS}, **{beta: ga for ga, beta in BETA_AUDIO_FORMATS.items()}}
_BETA_FORMATS = {beta: ga for ga, beta in BETA_AUDIO_FORMATS.items()}
BETA_TEMPERATURE = 0.8  # the preview's default; the engine reports it (its brains take no temperature)


def ga_audio_format(name: object) -> str | None:
    """The GA name (``audio/pcmu``) of an audio format given by its GA or preview (``g711_ulaw``) name, or ``None``
    for anything else."""
    return _GA_FORMAT_OF.get(name) if isinstance(name, str) else None


# ------------------------------------------------------------------------------------------------------------
# Sessions

def update_to_beta(update: Mapping[str, Any]) -> dict[str, Any]:
    """A GA partial ``session`` (``session.update``) in the preview flat shape. Only the fields present are
    written; ``None`` stays ``None`` (a feature switched off); keys this module does not know pass through."""
    out: dict[str, Any] = {}
    audio = _mapping(update.get("audio"))
    audio_in, audio_out = _mapping(audio.get("input")), _mapping(audio.get("output"))
    for key, value in update.items():
        if key in ("type", "audio"):
            continue
        if key == "output_modalities":
            # beta lists both when audio is on: audio always came with its transcript text
            out["modalities"] = ["text", "audio"] if "audio" in value else ["text"]
        elif key == "max_output_tokens":
            out["max_response_output_tokens"] = value
        else:
            out[key] = value
    if "format" in audio_in:
        out["input_audio_format"] = _beta_format(audio_in["format"])
    if "format" in audio_out:
        out["output_audio_format"] = _beta_format(audio_out["format"])
    for ga_key, beta_key in (("transcription", "input_audio_transcription"), ("turn_detection", "turn_detection"),
                             ("noise_reduction", "input_audio_noise_reduction")):  # fmt: skip
        if ga_key in audio_in:
            out[beta_key] = audio_in[ga_key]
    for key in ("voice", "speed"):
        if key in audio_out:
            out[key] = audio_out[key]
    return out


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _beta_format(fmt: Any) -> Any:
    kind = fmt.get("type") if isinstance(fmt, Mapping) else fmt
    return BETA_AUDIO_FORMATS.get(kind, kind) if isinstance(kind, str) else kind


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


def session_update_to_ga(flat: Any) -> dict[str, Any]:
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


def session_to_beta(effective: RealtimeSession | Mapping[str, Any]) -> dict[str, Any]:
    """The flat preview shape of an effective GA realtime session (what ``session.created/updated`` carry on
    beta)."""
    session = cast(dict[str, Any], effective)
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
        "input_audio_format": BETA_AUDIO_FORMATS[audio_in["format"]["type"]],
        "output_audio_format": BETA_AUDIO_FORMATS[audio_out["format"]["type"]],
        "input_audio_transcription": audio_in["transcription"],
        "input_audio_noise_reduction": audio_in["noise_reduction"],
        "tool_choice": session["tool_choice"],
        "temperature": BETA_TEMPERATURE,
        "max_response_output_tokens": session["max_output_tokens"],
        "speed": audio_out["speed"],
        "tracing": session["tracing"],
        "tools": session["tools"],
    }


# ------------------------------------------------------------------------------------------------------------
# Server events

_BETA_CONTENT = {"output_text": "text", "output_audio": "audio"}
_GA_ONLY = (
    ev.ConversationItemDone,
    ev.InputAudioBufferTimeoutTriggered,
    ev.ConversationItemInputAudioTranscriptionSegment,
)


def _item(item: ev.Item) -> ev.Item:
    if not isinstance(item.content, list):
        return item
    parts = [
        msgspec.structs.replace(p, type=_BETA_CONTENT[p.type]) if p.type in _BETA_CONTENT else p for p in item.content
    ]
    return msgspec.structs.replace(item, content=parts)


def event_to_beta(event: ev.ServerEvent) -> ev.ServerEvent | None:
    """The preview form of ``event``, or ``None`` when the preview protocol has no such event."""
    if isinstance(event, _GA_ONLY):
        return None
    if isinstance(event, ev.SessionCreatedEvent | ev.SessionUpdatedEvent):
        return msgspec.structs.replace(event, session=session_to_beta(event.session))
    if isinstance(event, ev.ConversationItemAdded):
        return ev.ConversationItemCreatedEvent(
            event_id=event.event_id, item=_item(event.item), previous_item_id=event.previous_item_id
        )
    if isinstance(
        event, ev.ResponseOutputItemAddedEvent | ev.ResponseOutputItemDoneEvent | ev.ConversationItemRetrieved
    ):
        return msgspec.structs.replace(event, item=_item(event.item))
    if isinstance(event, ev.ResponseCreatedEvent | ev.ResponseDoneEvent):
        resp = event.response
        if isinstance(resp.output, list):
            resp = msgspec.structs.replace(resp, output=[_item(i) for i in resp.output])
        return msgspec.structs.replace(event, response=resp)
    return event


def response_to_beta(response: dict[str, Any]) -> dict[str, Any]:
    """A GA ``response`` object (JSON builtins) in the preview shape: ``modalities`` for ``output_modalities``,
    ``voice`` and ``output_audio_format`` for ``audio.output``, the session's ``temperature``, and usage details
    without the GA-only ``image_tokens``/``cached_tokens_details``."""
    beta = {k: v for k, v in response.items() if k not in ("output_modalities", "audio")}
    modalities = response.get("output_modalities")
    if isinstance(modalities, list):
        beta["modalities"] = ["text", "audio"] if "audio" in modalities else ["text"]
    output = (response.get("audio") or {}).get("output") or {}
    if "voice" in output:
        beta["voice"] = output["voice"]
    fmt = output.get("format")
    if isinstance(fmt, dict) and fmt.get("type") in BETA_AUDIO_FORMATS:
        beta["output_audio_format"] = BETA_AUDIO_FORMATS[fmt["type"]]
    beta["temperature"] = BETA_TEMPERATURE
    usage = response.get("usage")
    if isinstance(usage, dict):
        usage = dict(usage)
        details = usage.get("input_token_details")
        if isinstance(details, dict):
            usage["input_token_details"] = {k: v for k, v in details.items()
                                            if k in ("text_tokens", "audio_tokens", "cached_tokens")}  # fmt: skip
        beta["usage"] = usage
    return beta
