"""The preview (beta) dialect of server events, derived from the GA events the session core makes.

The session core speaks GA only. On the preview path (``/openai/realtime?api-version=...``) each event goes
through :func:`to_beta` before :func:`~aoai_realtime.protocol.encode` with ``dialect="beta"`` renames the
six streaming event types (reference 1, 2.2): ``conversation.item.added`` becomes
``conversation.item.created``, ``conversation.item.done`` and GA-only events are dropped, sessions take the
flat shape, and assistant content parts take their beta names (``text``, ``audio``). The ``response`` of
``response.created``/``response.done`` takes the beta fields (:func:`beta_response`: ``modalities``, ``voice``,
``output_audio_format``, ``temperature``, beta usage), as ``openai.types.beta.realtime.RealtimeResponse`` has them.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..protocol import events as ev
from .config import _GA_TO_BETA_FORMATS, BETA_TEMPERATURE, ga_to_beta

__all__ = ["beta_response", "to_beta"]

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


def to_beta(event: ev.ServerEvent) -> ev.ServerEvent | None:
    """The preview form of ``event``, or ``None`` when the preview protocol has no such event."""
    if isinstance(event, _GA_ONLY):
        return None
    if isinstance(event, ev.SessionCreatedEvent | ev.SessionUpdatedEvent):
        return msgspec.structs.replace(event, session=ga_to_beta(event.session))
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


def beta_response(response: dict[str, Any]) -> dict[str, Any]:
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
    if isinstance(fmt, dict) and fmt.get("type") in _GA_TO_BETA_FORMATS:
        beta["output_audio_format"] = _GA_TO_BETA_FORMATS[fmt["type"]]
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
