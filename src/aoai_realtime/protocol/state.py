"""The conversation as the service holds it, rebuilt from server events. No I/O, no clock.

Feed every server event to :meth:`ConversationState.apply`; read items in conversation order, the active
response, each assistant item's audio length and transcript. This is the one conversation model: the client
keeps one (:class:`~aoai_realtime.protocol.connection.ClientConnection`) to know what can be truncated and where
a late user transcript belongs; the engine's conversation (``engine/conversation.py``) orders its items with one
fed the conversation events it emits, and keeps only the items' wire shapes and audio bytes beside it.

Ordering follows the service (reference 4.2, 4.5): an item is placed after ``previous_item_id`` when given
(``null`` or ``"root"`` puts it first), otherwise appended. Transcripts of user audio arrive late and
asynchronously (pitfall 6.3); they are matched on ``item_id``, so they land on their item, never as a new entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from . import events as ev
from .dialect import ga_audio_format
from .schema import AUDIO_BYTES_PER_MS

__all__ = ["BYTES_PER_MS", "ConversationState", "ItemState", "ResponseState", "session_audio_format"]

BYTES_PER_MS = 48  # pcm16 mono at 24 kHz: 24 samples * 2 bytes per millisecond


def session_audio_format(session: dict[str, Any], direction: Literal["input", "output"] = "output") -> str | None:
    """The audio format a ``session`` object names for ``direction``, by its GA name (``audio/pcm``,
    ``audio/pcmu``, ``audio/pcma``), from the GA shape (``audio.<direction>.format.type``) or the preview one
    (``<direction>_audio_format``); ``None`` when it names none or one this code does not know."""
    fmt: object = session.get(f"{direction}_audio_format")
    audio = session.get("audio")
    if isinstance(audio, dict) and isinstance(audio.get(direction), dict):
        nested = audio[direction].get("format")
        fmt = nested.get("type") if isinstance(nested, dict) else fmt
    return ga_audio_format(fmt)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


@dataclass
class ItemState:
    """One conversation item as last seen. ``audio_bytes`` counts assistant audio received for it."""

    id: str
    type: str
    role: str | None = None
    status: str | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str = ""
    output: str | None = None
    text: str = ""
    transcript: str = ""
    audio_bytes: int = 0
    bytes_per_ms: int = BYTES_PER_MS  # of the output format when the item appeared
    truncated_at_ms: int | None = None
    response_id: str | None = None
    transcription_failed: bool = False

    @property
    def audio_ms(self) -> float:
        return self.audio_bytes / self.bytes_per_ms

    @property
    def content(self) -> str:
        """What the item says: the transcript for audio, else the text."""
        return self.transcript or self.text


@dataclass
class ResponseState:
    id: str
    status: str = "in_progress"
    output_item_ids: list[str] = field(default_factory=list)
    conversation: str = "auto"
    status_details: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None


class ConversationState:
    """Items in conversation order, responses, audio and transcripts, built from server events."""

    def __init__(self) -> None:
        self._order: list[str] = []
        self.items: dict[str, ItemState] = {}
        self.responses: dict[str, ResponseState] = {}
        self.active_response_id: str | None = None
        self.session: dict[str, Any] = {}
        self.output_bytes_per_ms = BYTES_PER_MS  # from the session's output audio format

    # -- reading --------------------------------------------------------------------------------------------

    def ordered_items(self) -> list[ItemState]:
        return [self.items[i] for i in self._order]

    def item(self, item_id: str) -> ItemState | None:
        return self.items.get(item_id)

    def audio_ms(self, item_id: str) -> float:
        item = self.items.get(item_id)
        return item.audio_ms if item else 0.0

    def last_item_id(self) -> str | None:
        return self._order[-1] if self._order else None

    # -- feeding --------------------------------------------------------------------------------------------

    def apply(self, event: ev.ServerEvent | ev.UnknownEvent) -> None:
        """Update the state from one server event. Events it does not need are ignored."""
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    def _place(self, item_id: str, previous_item_id: object) -> None:
        """Put a new item after ``previous_item_id``.

        ``None`` (the service's "no previous item") and ``"root"`` put it first; an unknown id or an absent
        field appends it.
        """
        if item_id in self._order:
            return
        if previous_item_id is None or previous_item_id == "root":
            self._order.insert(0, item_id)
        elif isinstance(previous_item_id, str) and previous_item_id in self._order:
            self._order.insert(self._order.index(previous_item_id) + 1, item_id)
        else:
            self._order.append(item_id)

    def _ensure(self, item_id: str, type_: str = "message") -> ItemState:
        state = self.items.get(item_id)
        if state is None:
            state = self.items[item_id] = ItemState(id=item_id, type=type_, bytes_per_ms=self.output_bytes_per_ms)
        return state

    def _upsert(self, item: ev.Item, previous_item_id: object = ev.UNSET) -> ItemState | None:
        item_id = _str(item.id)
        if item_id is None:
            return None
        state = self._ensure(item_id, item.type)
        state.type = item.type
        if isinstance(item.role, str):
            state.role = item.role
        if isinstance(item.status, str):
            state.status = item.status
        if isinstance(item.call_id, str):
            state.call_id = item.call_id
        if isinstance(item.name, str):
            state.name = item.name
        if isinstance(item.arguments, str) and item.arguments:
            state.arguments = item.arguments
        if isinstance(item.output, str):
            state.output = item.output
        if isinstance(item.content, list):
            for part in item.content:
                if isinstance(part.transcript, str) and part.transcript and not state.transcript:
                    state.transcript = part.transcript
                if isinstance(part.text, str) and part.text and not state.text:
                    state.text = part.text
        self._place(item_id, previous_item_id)
        return state

    # individual handlers, dispatched by event class

    def _on_session(self, e: ev.SessionCreatedEvent | ev.SessionUpdatedEvent) -> None:
        self.session = e.session
        fmt = session_audio_format(e.session)
        if fmt is not None:
            self.output_bytes_per_ms = AUDIO_BYTES_PER_MS[fmt]

    def _on_item_added(
        self, e: ev.ConversationItemAdded | ev.ConversationItemCreatedEvent | ev.ConversationItemDone
    ) -> None:
        self._upsert(e.item, e.previous_item_id)

    def _on_item_retrieved(self, e: ev.ConversationItemRetrieved) -> None:
        self._upsert(e.item)

    def _on_item_deleted(self, e: ev.ConversationItemDeletedEvent) -> None:
        self.items.pop(e.item_id, None)
        if e.item_id in self._order:
            self._order.remove(e.item_id)

    def _on_committed(self, e: ev.InputAudioBufferCommittedEvent) -> None:
        state = self._ensure(e.item_id)
        state.role = state.role or "user"
        self._place(e.item_id, e.previous_item_id)

    def _on_truncated(self, e: ev.ConversationItemTruncatedEvent) -> None:
        state = self._ensure(e.item_id)
        state.truncated_at_ms = e.audio_end_ms
        state.audio_bytes = min(state.audio_bytes, e.audio_end_ms * state.bytes_per_ms)
        # The service drops the whole transcript of a truncated item (reference 4.4).
        state.transcript = ""

    def _on_user_transcript(self, e: ev.ConversationItemInputAudioTranscriptionCompletedEvent) -> None:
        state = self._ensure(e.item_id)
        state.role = state.role or "user"
        state.transcript = e.transcript

    def _on_user_transcript_failed(self, e: ev.ConversationItemInputAudioTranscriptionFailedEvent) -> None:
        self._ensure(e.item_id).transcription_failed = True

    def _on_response_created(self, e: ev.ResponseCreatedEvent) -> None:
        rid = _str(e.response.id)
        if rid is None:
            return
        # Out-of-band responses (``conversation: "none"``) have no conversation id and may overlap.
        conversation = "none" if e.response.conversation_id is None else "auto"
        self.responses[rid] = ResponseState(
            id=rid,
            conversation=conversation,
            metadata=e.response.metadata if isinstance(e.response.metadata, dict) else None,
        )
        if conversation == "auto":
            self.active_response_id = rid

    def _on_response_done(self, e: ev.ResponseDoneEvent) -> None:
        rid = _str(e.response.id)
        if rid is None:
            return
        state = self.responses.setdefault(rid, ResponseState(id=rid))
        state.status = _str(e.response.status) or "completed"
        if isinstance(e.response.status_details, dict):
            state.status_details = e.response.status_details
        if isinstance(e.response.usage, dict):
            state.usage = e.response.usage
        if isinstance(e.response.output, list):
            for item in e.response.output:
                if isinstance(item.status, str) and isinstance(item.id, str) and item.id in self.items:
                    self.items[item.id].status = item.status
        if self.active_response_id == rid:
            self.active_response_id = None

    def _on_output_item_added(self, e: ev.ResponseOutputItemAddedEvent) -> None:
        state = self._upsert(e.item)
        if state is None:
            return
        state.response_id = e.response_id
        response = self.responses.setdefault(e.response_id, ResponseState(id=e.response_id))
        if state.id not in response.output_item_ids:
            response.output_item_ids.append(state.id)

    def _on_output_item_done(self, e: ev.ResponseOutputItemDoneEvent) -> None:
        self._upsert(e.item)

    def _on_audio_delta(self, e: ev.ResponseAudioDeltaEvent) -> None:
        # Length from the base64 text itself: no need to decode 50 chunks a second just to count them.
        delta = e.delta
        self._ensure(e.item_id).audio_bytes += len(delta) * 3 // 4 - (len(delta) - len(delta.rstrip("=")))

    def _on_transcript_delta(self, e: ev.ResponseAudioTranscriptDeltaEvent) -> None:
        state = self._ensure(e.item_id)
        if state.truncated_at_ms is None:
            state.transcript += e.delta

    def _on_transcript_done(self, e: ev.ResponseAudioTranscriptDoneEvent) -> None:
        state = self._ensure(e.item_id)
        if state.truncated_at_ms is None:
            state.transcript = e.transcript

    def _on_text_delta(self, e: ev.ResponseTextDeltaEvent) -> None:
        self._ensure(e.item_id).text += e.delta

    def _on_text_done(self, e: ev.ResponseTextDoneEvent) -> None:
        self._ensure(e.item_id).text = e.text

    def _on_arguments_done(self, e: ev.ResponseFunctionCallArgumentsDoneEvent) -> None:
        state = self._ensure(e.item_id, "function_call")
        state.call_id = e.call_id
        state.arguments = e.arguments
        if isinstance(e.name, str):
            state.name = e.name


_HANDLERS: dict[type[Any], Any] = {
    ev.SessionCreatedEvent: ConversationState._on_session,
    ev.SessionUpdatedEvent: ConversationState._on_session,
    ev.ConversationItemAdded: ConversationState._on_item_added,
    ev.ConversationItemCreatedEvent: ConversationState._on_item_added,
    ev.ConversationItemDone: ConversationState._on_item_added,
    ev.ConversationItemRetrieved: ConversationState._on_item_retrieved,
    ev.ConversationItemDeletedEvent: ConversationState._on_item_deleted,
    ev.InputAudioBufferCommittedEvent: ConversationState._on_committed,
    ev.ConversationItemTruncatedEvent: ConversationState._on_truncated,
    ev.ConversationItemInputAudioTranscriptionCompletedEvent: ConversationState._on_user_transcript,
    ev.ConversationItemInputAudioTranscriptionFailedEvent: ConversationState._on_user_transcript_failed,
    ev.ResponseCreatedEvent: ConversationState._on_response_created,
    ev.ResponseDoneEvent: ConversationState._on_response_done,
    ev.ResponseOutputItemAddedEvent: ConversationState._on_output_item_added,
    ev.ResponseOutputItemDoneEvent: ConversationState._on_output_item_done,
    ev.ResponseAudioDeltaEvent: ConversationState._on_audio_delta,
    ev.ResponseAudioTranscriptDeltaEvent: ConversationState._on_transcript_delta,
    ev.ResponseAudioTranscriptDoneEvent: ConversationState._on_transcript_done,
    ev.ResponseTextDeltaEvent: ConversationState._on_text_delta,
    ev.ResponseTextDoneEvent: ConversationState._on_text_done,
    ev.ResponseFunctionCallArgumentsDoneEvent: ConversationState._on_arguments_done,
}
