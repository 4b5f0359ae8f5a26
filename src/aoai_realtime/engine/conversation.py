"""The engine's conversation: ordered items with their audio, and the item rules of the service.

Items are kept in the GA wire shape (``object: "realtime.item"``, content types ``input_text``,
``input_audio``, ``output_text``, ``output_audio``); audio bytes (pcm16 24 kHz) live beside them per content
index, so ``conversation.item.retrieve`` can return them and ``truncate`` can cut them (reference 4.4, 4.5).
:func:`validate_new_item` checks a client ``conversation.item.create`` the way the service does.
"""

from __future__ import annotations

import base64
import binascii
import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ..protocol import events as ev
from ..protocol.state import ConversationState
from .errors import RequestRejected

__all__ = ["Conversation", "Entry", "pcm_ms", "validate_new_item"]

BYTES_PER_MS = 48  # pcm16 mono 24 kHz


def pcm_ms(pcm_len: int) -> int:
    """Milliseconds of pcm16 24 kHz mono audio in ``pcm_len`` bytes."""
    return pcm_len // BYTES_PER_MS


@dataclass
class Entry:
    """One item: its wire dict and the audio of its content parts (by content index)."""

    wire: dict[str, Any]
    audio: dict[int, bytearray] = field(default_factory=dict)
    audio_ms_played: int | None = None  # set by truncation

    @property
    def id(self) -> str:
        return str(self.wire["id"])

    def to_item(self, *, with_audio: Callable[[bytes, str], bytes] | None = None) -> ev.Item:
        """The item as the wire shows it; ``with_audio(pcm, content_type)`` adds each audio part's bytes in the
        session's wire format."""
        wire = copy.deepcopy(self.wire)
        if with_audio is not None:
            for index, pcm in self.audio.items():
                if index < len(wire.get("content", [])):
                    part = wire["content"][index]
                    part["audio"] = base64.b64encode(with_audio(bytes(pcm), str(part.get("type")))).decode("ascii")
        return msgspec.convert(wire, ev.Item)

    def truncate_audio(self, content_index: int, audio_end_ms: int) -> None:
        """Cut the audio of content part ``content_index`` at ``audio_end_ms`` and drop its transcript, as the
        service does (reference 4.4). Raises RequestRejected past the end of the audio."""
        pcm = self.audio.get(content_index, bytearray())
        duration = pcm_ms(len(pcm))
        if audio_end_ms > duration:
            raise RequestRejected(
                f"Audio content of {duration}ms is already shorter than {audio_end_ms}ms",
                code="invalid_value",
                param="audio_end_ms",
            )
        del pcm[audio_end_ms * BYTES_PER_MS :]
        self.wire["content"][content_index]["transcript"] = ""
        self.audio_ms_played = audio_end_ms

    def text(self) -> str:
        """The item's text: typed text, or the transcript of its audio ("" if unknown)."""
        parts = []
        for part in self.wire.get("content", []):
            value = part.get("text") if part.get("text") is not None else part.get("transcript")
            if isinstance(value, str):
                parts.append(value)
        return "".join(parts)


class Conversation:
    """The default conversation, held in the one conversation model of the protocol core.

    Order and item facts live in :attr:`state`, a :class:`~aoai_realtime.protocol.state.ConversationState`
    fed the conversation events the engine emits (``conversation.item.added``, ``.deleted``, ``.truncated``),
    the same model and the same code a client rebuilds the conversation with, so the two cannot disagree on
    where an item is. Beside it the engine keeps what only it has: each item's full wire shape and its audio
    bytes (:class:`Entry`), for ``item.retrieve``, truncation and the brain's context.
    """

    def __init__(self) -> None:
        self.state = ConversationState()
        self._items: dict[str, Entry] = {}

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def __len__(self) -> int:
        return len(self._items)

    def ids(self) -> list[str]:
        return [item.id for item in self.state.ordered_items()]

    def entries(self) -> list[Entry]:
        return [self._items[i] for i in self.ids()]

    def get(self, item_id: str) -> Entry | None:
        return self._items.get(item_id)

    def last_id(self) -> str | None:
        return self.state.last_item_id()

    def previous_of(self, item_id: str) -> str | None:
        order = self.ids()
        index = order.index(item_id)
        return order[index - 1] if index > 0 else None

    def add(self, entry: Entry, previous_item_id: str | None = None) -> str | None:
        """Insert ``entry`` after ``previous_item_id`` (``None`` = append, ``"root"`` = first).

        Returns the id of the item now before it (the ``previous_item_id`` of the event to emit). Raises
        RequestRejected for an unknown previous id.
        """
        if previous_item_id is None:
            before = self.last_id()
        elif previous_item_id == "root":
            before = None
        elif previous_item_id not in self._items:
            raise RequestRejected(
                f"Error adding item: the previous item with id '{previous_item_id}' does not exist.",
                code="item_not_found",
                param="previous_item_id",
            )
        else:
            before = previous_item_id
        self._items[entry.id] = entry
        self.state.apply(ev.ConversationItemAdded(item=entry.to_item(), previous_item_id=before))
        return before

    def delete(self, item_id: str) -> None:
        if item_id not in self._items:
            raise RequestRejected(
                f"Error deleting item: the item with id '{item_id}' does not exist.",
                code="item_delete_invalid_item_id",
                param="item_id",
            )
        del self._items[item_id]
        self.state.apply(ev.ConversationItemDeletedEvent(item_id=item_id))

    def truncate(self, item_id: str, content_index: int, audio_end_ms: int) -> None:
        """``conversation.item.truncate``: only an assistant item's output audio, within its length."""
        entry = self.get(item_id)
        if entry is None:
            raise RequestRejected(
                f"Error truncating item: the item with id '{item_id}' does not exist.",
                code="item_truncate_invalid_item_id",
                param="item_id",
            )
        content = entry.wire.get("content") or []
        if entry.wire.get("role") != "assistant" or not any(p.get("type") == "output_audio" for p in content):
            raise RequestRejected(
                "Only model output audio messages can be truncated", code="unsupported_content_type", param="item_id"
            )
        if not 0 <= content_index < len(content) or content[content_index].get("type") != "output_audio":
            raise RequestRejected(
                f"Invalid value: {content_index}. No audio content at this index.",
                code="invalid_value",
                param="content_index",
            )
        if audio_end_ms < 0:
            raise RequestRejected(
                f"Invalid 'audio_end_ms': integer below minimum value. Expected a value >= 0, but got {audio_end_ms}"
                " instead.",
                code="integer_below_min_value",
                param="audio_end_ms",
            )
        self.cut_audio(entry, content_index, audio_end_ms)

    def cut_audio(self, entry: Entry, content_index: int, audio_end_ms: int) -> None:
        """Truncate ``entry``'s audio at ``audio_end_ms`` (checked by the caller: a client's truncate, or what a
        WebRTC listener heard before a barge-in)."""
        entry.truncate_audio(content_index, audio_end_ms)
        self.state.apply(ev.ConversationItemTruncatedEvent(item_id=entry.id, content_index=content_index,
                                                           audio_end_ms=audio_end_ms))  # fmt: skip

    def retrieve(self, item_id: str) -> Entry:
        """``conversation.item.retrieve``: the entry, or RequestRejected."""
        entry = self.get(item_id)
        if entry is None:
            raise RequestRejected(
                f"Error retrieving item: the item with id '{item_id}' does not exist.",
                code="item_retrieve_invalid_item_id",
                param="item_id",
            )
        return entry


_ROLE_CONTENT = {
    "user": ("input_text", "input_audio", "input_image"),
    "system": ("input_text",),
    "assistant": ("output_text", "output_audio", "text", "audio"),
}


def validate_new_item(raw: dict[str, Any], item_id: str) -> Entry:
    """Check a client item (``conversation.item.create.item``) and build its entry.

    Fills ``id`` (when absent), ``object`` and ``status``; decodes ``input_audio`` content into the entry's
    audio. Raises RequestRejected with the service's codes.
    """
    wire = {k: v for k, v in raw.items() if v is not None or k in ("output",)}
    kind = wire.get("type")
    if kind not in ("message", "function_call", "function_call_output"):
        supported = "'message', 'function_call', 'function_call_output'"
        raise RequestRejected(
            f"Invalid value: '{kind}'. Supported values are: {supported}.", code="invalid_value", param="item.type"
        )
    wire["id"] = wire.get("id") or item_id
    wire["object"] = "realtime.item"
    entry = Entry(wire=wire)
    if kind == "message":
        role = wire.get("role")
        if role not in _ROLE_CONTENT:
            raise RequestRejected(
                f"Invalid value: '{role}'. Supported values are: 'user', 'assistant', 'system'.",
                code="invalid_value",
                param="item.role",
            )
        content = wire.get("content")
        if not isinstance(content, list):
            raise RequestRejected(
                "Missing required parameter: 'item.content'.", code="missing_required_parameter", param="item.content"
            )
        parts = []
        for i, part in enumerate(content):
            ctype = part.get("type") if isinstance(part, dict) else None
            if ctype not in _ROLE_CONTENT[role]:
                options = ", ".join(f"'{t}'" for t in _ROLE_CONTENT[role])
                raise RequestRejected(
                    f"Invalid value: '{ctype}'. Supported values are: {options}.",
                    code="invalid_value",
                    param=f"item.content[{i}].type",
                )
            part = dict(part)
            # beta content names for assistant items are stored as their GA names
            part["type"] = {"text": "output_text", "audio": "output_audio"}.get(ctype, ctype)
            if part["type"] in ("input_audio", "output_audio") and isinstance(part.get("audio"), str):
                try:
                    entry.audio[i] = bytearray(base64.b64decode(part.pop("audio"), validate=True))
                except (binascii.Error, ValueError) as exc:
                    raise RequestRejected(
                        "Invalid 'audio': expected base64-encoded audio in the session's input format.",
                        code="invalid_value",
                        param=f"item.content[{i}].audio",
                    ) from exc
                part.setdefault("transcript", None)
            parts.append(part)
        wire["content"] = parts
        wire["status"] = "completed"
    elif kind == "function_call":
        for key in ("name", "call_id"):
            if not isinstance(wire.get(key), str):
                raise RequestRejected(
                    f"Missing required parameter: 'item.{key}'.", code="missing_required_parameter", param=f"item.{key}"
                )
        wire.setdefault("arguments", "")
        wire["status"] = "completed"
    else:
        if not isinstance(wire.get("call_id"), str):
            raise RequestRejected(
                "Missing required parameter: 'item.call_id'.", code="missing_required_parameter", param="item.call_id"
            )
        if not isinstance(wire.get("output"), str):
            raise RequestRejected(
                "Missing required parameter: 'item.output'.", code="missing_required_parameter", param="item.output"
            )
        wire["status"] = "completed"
    return entry
