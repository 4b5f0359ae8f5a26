"""What a call said, from its server events, sans I/O: the transcript turns handed to ``call_ended``.

Feed :meth:`CallTranscript.on_event` every server event of the call, in order. User turns come from
``conversation.item.input_audio_transcription.completed`` (speech) and from user messages with ``input_text``
(typed); assistant turns from ``response.output_audio_transcript.done`` / ``response.output_text.done``.
Turns are in conversation order (items placed by ``previous_item_id`` where the server gives one), not in the
order their text arrived: a user's transcription often completes after the assistant started answering.
"""

from __future__ import annotations

from typing import Any, Literal

from ..protocol import events as ev
from .hooks import TranscriptTurn

__all__ = ["CallTranscript"]

Role = Literal["user", "assistant"]


class CallTranscript:
    """The conversation of one call as :class:`TranscriptTurn` values (see the module docstring)."""

    def __init__(self) -> None:
        self._order: list[str] = []
        self._text: dict[str, tuple[Role, str]] = {}
        self.transcriptions_failed = 0

    def _place(self, item_id: str, previous: Any) -> None:
        if item_id in self._order:
            return
        if isinstance(previous, str) and previous in self._order:
            self._order.insert(self._order.index(previous) + 1, item_id)
        else:
            self._order.append(item_id)

    def _set(self, item_id: str, role: Role, text: str) -> None:
        self._place(item_id, None)
        self._text[item_id] = (role, text)

    def on_event(self, event: Any) -> None:
        """Note one server event (any type; the ones that carry no transcript are ignored)."""
        if isinstance(event, ev.ConversationItemAdded | ev.ConversationItemCreatedEvent | ev.ConversationItemDone):
            item = event.item
            if not isinstance(item.id, str):
                return
            if item.type == "message" and item.role in ("user", "assistant"):
                self._place(item.id, event.previous_item_id)
            if item.type == "message" and item.role == "user" and isinstance(item.content, list):
                typed = "".join(p.text for p in item.content if p.type == "input_text" and isinstance(p.text, str))
                if typed:
                    self._set(item.id, "user", typed)
        elif isinstance(event, ev.InputAudioBufferCommittedEvent):
            self._place(event.item_id, event.previous_item_id)
        elif isinstance(event, ev.ResponseOutputItemAddedEvent):
            if event.item.type == "message" and isinstance(event.item.id, str):
                self._place(event.item.id, None)
        elif isinstance(event, ev.ConversationItemInputAudioTranscriptionCompletedEvent):
            self._set(event.item_id, "user", event.transcript)
        elif isinstance(event, ev.ConversationItemInputAudioTranscriptionFailedEvent):
            self.transcriptions_failed += 1
        elif isinstance(event, ev.ResponseAudioTranscriptDoneEvent):
            self._set(event.item_id, "assistant", event.transcript)
        elif isinstance(event, ev.ResponseTextDoneEvent):
            self._set(event.item_id, "assistant", event.text)
        elif isinstance(event, ev.ConversationItemDeletedEvent):
            self._text.pop(event.item_id, None)
            if event.item_id in self._order:
                self._order.remove(event.item_id)

    def turns(self) -> tuple[TranscriptTurn, ...]:
        """The turns with text so far, in conversation order."""
        out: list[TranscriptTurn] = []
        for item_id in self._order:
            found = self._text.get(item_id)
            if found is not None and found[1].strip():
                out.append(TranscriptTurn(role=found[0], text=found[1].strip(), item_id=item_id))
        return tuple(out)
