"""Typed values for every GA Realtime event: 46 server events, 11 client events.

The wire reference is ``shared/reference/realtime-protocol.md`` (section 8 lists every event with its
fields); the official ``openai.types.realtime`` models are the schema of record, and
``tests/protocol/test_differential.py`` proves these types agree with them in both directions.

Events are frozen ``msgspec`` structs tagged by ``type``, so one decoder turns JSON into the right class in a
single pass (about 0.25x the cost of ``json.loads``, where the SDK's own parse path costs about 19x).
Optional fields default to :data:`UNSET` and are left out when encoding: an absent field and ``null`` stay
different, so a message survives ``decode -> encode`` unchanged. Class names mirror the SDK's.

Nested objects that callers read often (items, content parts, responses, errors) are typed; large config
objects (``session``, ``usage``, ``rate_limits``) are plain dicts, so fields added by the service pass through.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec
from msgspec import UNSET, UnsetType

__all__ = [
    "UNSET",
    "ClientEvent",
    "ContentPart",
    "ErrorDetails",
    "Event",
    "Item",
    "Response",
    "ServerEvent",
    "UnknownEvent",
    "UnsetType",
]

_STRUCT = {"frozen": True, "omit_defaults": True, "kw_only": True, "repr_omit_defaults": True}


# ----------------------------------------------------------------------------------------------------
# Nested values


class ContentPart(msgspec.Struct, **_STRUCT):
    """One content part of a message item, or the ``part`` of ``response.content_part.*``.

    ``type`` is ``input_text``/``input_audio``/``input_image`` (user), ``output_text``/``output_audio``
    (assistant, GA), ``text``/``audio`` (content_part events, beta items).
    """

    type: str
    text: str | UnsetType | None = UNSET
    audio: str | UnsetType | None = UNSET
    transcript: str | UnsetType | None = UNSET
    image_url: str | UnsetType | None = UNSET
    detail: str | UnsetType | None = UNSET


class Item(msgspec.Struct, **_STRUCT):
    """A conversation item: ``message``, ``function_call``, ``function_call_output`` or an MCP item.

    One struct for every item type; which fields are set depends on ``type`` (see the reference, 4.3).
    """

    type: str
    id: str | UnsetType | None = UNSET
    object: str | UnsetType | None = UNSET
    status: str | UnsetType | None = UNSET
    role: str | UnsetType = UNSET
    content: list[ContentPart] | UnsetType = UNSET
    call_id: str | UnsetType | None = UNSET
    name: str | UnsetType = UNSET
    arguments: str | UnsetType = UNSET
    output: str | UnsetType | None = UNSET
    server_label: str | UnsetType = UNSET
    tools: list[dict[str, Any]] | UnsetType = UNSET
    approval_request_id: str | UnsetType | None = UNSET
    approve: bool | UnsetType = UNSET
    reason: str | UnsetType | None = UNSET
    error: dict[str, Any] | UnsetType | None = UNSET

    @property
    def transcript(self) -> str:
        """The text of a message: its text parts and audio transcripts joined ("" when there are none)."""
        if not isinstance(self.content, list):
            return ""
        texts = []
        for part in self.content:
            value = part.text if isinstance(part.text, str) else part.transcript
            if isinstance(value, str):
                texts.append(value)
        return "".join(texts)


class Response(msgspec.Struct, **_STRUCT):
    """The ``response`` object of ``response.created`` / ``response.done``."""

    id: str | UnsetType | None = UNSET
    object: str | UnsetType | None = UNSET
    status: str | UnsetType | None = UNSET
    status_details: dict[str, Any] | UnsetType | None = UNSET
    output: list[Item] | UnsetType | None = UNSET
    conversation_id: str | UnsetType | None = UNSET
    output_modalities: list[str] | UnsetType | None = UNSET
    audio: dict[str, Any] | UnsetType | None = UNSET
    max_output_tokens: int | str | UnsetType | None = UNSET
    metadata: dict[str, str] | UnsetType | None = UNSET
    usage: dict[str, Any] | UnsetType | None = UNSET


class ErrorDetails(msgspec.Struct, **_STRUCT):
    """The ``error`` object of an ``error`` event (reference 4.6)."""

    message: str
    type: str
    code: str | UnsetType | None = UNSET
    param: str | UnsetType | None = UNSET
    event_id: str | UnsetType | None = UNSET


# ----------------------------------------------------------------------------------------------------
# Bases


class Event(msgspec.Struct, tag_field="type", **_STRUCT):
    """Base of every event. ``type`` is the wire name; ``event_id`` identifies this message."""

    TYPE: ClassVar[str] = ""  # the wire name, set for every concrete event below

    @property
    def type(self) -> str:
        return self.TYPE


class ServerEvent(Event, kw_only=True):
    """Base of events the service sends."""

    event_id: str = ""


class ClientEvent(Event, kw_only=True):
    """Base of events the client sends. ``event_id`` is optional; the service echoes it in errors."""

    event_id: str | UnsetType = UNSET


class UnknownEvent(msgspec.Struct, frozen=True):
    """An event whose ``type`` this version does not know: kept as a value, never an exception."""

    type: str
    data: dict[str, Any]

    @property
    def event_id(self) -> str:
        value = self.data.get("event_id")
        return value if isinstance(value, str) else ""


# ----------------------------------------------------------------------------------------------------
# Client events (11)


class ConversationItemCreateEvent(ClientEvent, tag="conversation.item.create"):
    item: Item
    previous_item_id: str | UnsetType | None = UNSET


class ConversationItemDeleteEvent(ClientEvent, tag="conversation.item.delete"):
    item_id: str


class ConversationItemRetrieveEvent(ClientEvent, tag="conversation.item.retrieve"):
    item_id: str


class ConversationItemTruncateEvent(ClientEvent, tag="conversation.item.truncate"):
    item_id: str
    content_index: int
    audio_end_ms: int


class InputAudioBufferAppendEvent(ClientEvent, tag="input_audio_buffer.append"):
    audio: str  # base64


class InputAudioBufferClearEvent(ClientEvent, tag="input_audio_buffer.clear"):
    pass


class InputAudioBufferCommitEvent(ClientEvent, tag="input_audio_buffer.commit"):
    pass


class OutputAudioBufferClearEvent(ClientEvent, tag="output_audio_buffer.clear"):
    pass


class ResponseCancelEvent(ClientEvent, tag="response.cancel"):
    response_id: str | UnsetType = UNSET


class ResponseCreateEvent(ClientEvent, tag="response.create"):
    response: dict[str, Any] | UnsetType = UNSET


class SessionUpdateEvent(ClientEvent, tag="session.update"):
    session: dict[str, Any]


# ----------------------------------------------------------------------------------------------------
# Server events (46)


class ConversationCreatedEvent(ServerEvent, tag="conversation.created"):
    conversation: dict[str, Any]


class ConversationItemAdded(ServerEvent, tag="conversation.item.added"):
    item: Item
    previous_item_id: str | UnsetType | None = UNSET


class ConversationItemCreatedEvent(ServerEvent, tag="conversation.item.created"):
    item: Item
    previous_item_id: str | UnsetType | None = UNSET


class ConversationItemDeletedEvent(ServerEvent, tag="conversation.item.deleted"):
    item_id: str


class ConversationItemDone(ServerEvent, tag="conversation.item.done"):
    item: Item
    previous_item_id: str | UnsetType | None = UNSET


class ConversationItemInputAudioTranscriptionCompletedEvent(
    ServerEvent, tag="conversation.item.input_audio_transcription.completed"
):
    item_id: str
    content_index: int
    transcript: str
    usage: dict[str, Any]
    languages: list[Any] | UnsetType | None = UNSET
    logprobs: list[dict[str, Any]] | UnsetType | None = UNSET


class ConversationItemInputAudioTranscriptionDeltaEvent(
    ServerEvent, tag="conversation.item.input_audio_transcription.delta"
):
    item_id: str
    content_index: int | UnsetType | None = UNSET
    delta: str | UnsetType | None = UNSET
    logprobs: list[dict[str, Any]] | UnsetType | None = UNSET


class ConversationItemInputAudioTranscriptionFailedEvent(
    ServerEvent, tag="conversation.item.input_audio_transcription.failed"
):
    item_id: str
    content_index: int
    error: dict[str, Any]


class ConversationItemInputAudioTranscriptionSegment(
    ServerEvent, tag="conversation.item.input_audio_transcription.segment"
):
    id: str
    item_id: str
    content_index: int
    text: str
    speaker: str
    start: float
    end: float


class ConversationItemRetrieved(ServerEvent, tag="conversation.item.retrieved"):
    item: Item


class ConversationItemTruncatedEvent(ServerEvent, tag="conversation.item.truncated"):
    item_id: str
    content_index: int
    audio_end_ms: int


class RealtimeErrorEvent(ServerEvent, tag="error"):
    error: ErrorDetails


class InputAudioBufferClearedEvent(ServerEvent, tag="input_audio_buffer.cleared"):
    pass


class InputAudioBufferCommittedEvent(ServerEvent, tag="input_audio_buffer.committed"):
    item_id: str
    previous_item_id: str | UnsetType | None = UNSET


class InputAudioBufferDtmfEventReceivedEvent(ServerEvent, tag="input_audio_buffer.dtmf_event_received"):
    """SIP only. The one server event the service sends without an ``event_id``."""

    event: str
    received_at: int


class InputAudioBufferSpeechStartedEvent(ServerEvent, tag="input_audio_buffer.speech_started"):
    item_id: str
    audio_start_ms: int


class InputAudioBufferSpeechStoppedEvent(ServerEvent, tag="input_audio_buffer.speech_stopped"):
    item_id: str
    audio_end_ms: int


class InputAudioBufferTimeoutTriggered(ServerEvent, tag="input_audio_buffer.timeout_triggered"):
    item_id: str
    audio_start_ms: int
    audio_end_ms: int


class McpListToolsCompleted(ServerEvent, tag="mcp_list_tools.completed"):
    item_id: str


class McpListToolsFailed(ServerEvent, tag="mcp_list_tools.failed"):
    item_id: str


class McpListToolsInProgress(ServerEvent, tag="mcp_list_tools.in_progress"):
    item_id: str


class OutputAudioBufferCleared(ServerEvent, tag="output_audio_buffer.cleared"):
    response_id: str


class OutputAudioBufferStarted(ServerEvent, tag="output_audio_buffer.started"):
    response_id: str


class OutputAudioBufferStopped(ServerEvent, tag="output_audio_buffer.stopped"):
    response_id: str


class RateLimitsUpdatedEvent(ServerEvent, tag="rate_limits.updated"):
    rate_limits: list[dict[str, Any]]


class ResponseContentPartAddedEvent(ServerEvent, tag="response.content_part.added"):
    response_id: str
    item_id: str
    output_index: int
    content_index: int
    part: ContentPart


class ResponseContentPartDoneEvent(ServerEvent, tag="response.content_part.done"):
    response_id: str
    item_id: str
    output_index: int
    content_index: int
    part: ContentPart


class ResponseCreatedEvent(ServerEvent, tag="response.created"):
    response: Response


class ResponseDoneEvent(ServerEvent, tag="response.done"):
    response: Response


class ResponseFunctionCallArgumentsDeltaEvent(ServerEvent, tag="response.function_call_arguments.delta"):
    response_id: str
    item_id: str
    output_index: int
    call_id: str
    delta: str
    obfuscation: str | UnsetType = UNSET


class ResponseFunctionCallArgumentsDoneEvent(ServerEvent, tag="response.function_call_arguments.done"):
    response_id: str
    item_id: str
    output_index: int
    call_id: str
    arguments: str
    name: str | UnsetType = UNSET  # GA adds it; beta has no name


class ResponseMcpCallCompleted(ServerEvent, tag="response.mcp_call.completed"):
    item_id: str
    output_index: int


class ResponseMcpCallFailed(ServerEvent, tag="response.mcp_call.failed"):
    item_id: str
    output_index: int


class ResponseMcpCallInProgress(ServerEvent, tag="response.mcp_call.in_progress"):
    item_id: str
    output_index: int


class ResponseMcpCallArgumentsDelta(ServerEvent, tag="response.mcp_call_arguments.delta"):
    response_id: str
    item_id: str
    output_index: int
    delta: str
    obfuscation: str | UnsetType | None = UNSET


class ResponseMcpCallArgumentsDone(ServerEvent, tag="response.mcp_call_arguments.done"):
    response_id: str
    item_id: str
    output_index: int
    arguments: str


class ResponseAudioDeltaEvent(ServerEvent, tag="response.output_audio.delta"):
    """A chunk of assistant audio, base64 pcm16 24 kHz (beta name ``response.audio.delta``)."""

    response_id: str
    item_id: str
    output_index: int
    content_index: int
    delta: str


class ResponseAudioDoneEvent(ServerEvent, tag="response.output_audio.done"):
    response_id: str
    item_id: str
    output_index: int
    content_index: int


class ResponseAudioTranscriptDeltaEvent(ServerEvent, tag="response.output_audio_transcript.delta"):
    response_id: str
    item_id: str
    output_index: int
    content_index: int
    delta: str


class ResponseAudioTranscriptDoneEvent(ServerEvent, tag="response.output_audio_transcript.done"):
    response_id: str
    item_id: str
    output_index: int
    content_index: int
    transcript: str


class ResponseOutputItemAddedEvent(ServerEvent, tag="response.output_item.added"):
    response_id: str
    output_index: int
    item: Item


class ResponseOutputItemDoneEvent(ServerEvent, tag="response.output_item.done"):
    response_id: str
    output_index: int
    item: Item


class ResponseTextDeltaEvent(ServerEvent, tag="response.output_text.delta"):
    response_id: str
    item_id: str
    output_index: int
    content_index: int
    delta: str


class ResponseTextDoneEvent(ServerEvent, tag="response.output_text.done"):
    response_id: str
    item_id: str
    output_index: int
    content_index: int
    text: str


class SessionCreatedEvent(ServerEvent, tag="session.created"):
    session: dict[str, Any]


class SessionUpdatedEvent(ServerEvent, tag="session.updated"):
    session: dict[str, Any]


CLIENT_EVENT_TYPES: tuple[type[ClientEvent], ...] = tuple(ClientEvent.__subclasses__())
SERVER_EVENT_TYPES: tuple[type[ServerEvent], ...] = tuple(ServerEvent.__subclasses__())

for _cls in (*CLIENT_EVENT_TYPES, *SERVER_EVENT_TYPES):
    _cls.TYPE = str(_cls.__struct_config__.tag)
del _cls
