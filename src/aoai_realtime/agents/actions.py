"""What :class:`~aoai_realtime.agents.core.VoiceCore` returns (the :data:`Action` values its driver performs, in
order) and its settings (:class:`CoreConfig`). Plain data, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from ..protocol import events as ev
from .metrics import PriceTable, TurnMetrics
from .playback import SAMPLE_RATE
from .state import AssistantState, Trigger
from .tools import ToolCall, ToolPolicy
from .transcript import TranscriptEntry

__all__ = [
    "Action",
    "CancelTool",
    "CoreConfig",
    "Mode",
    "Play",
    "RunTool",
    "Send",
    "StateChanged",
    "StopPlayback",
    "TranscriptChanged",
    "TurnCompleted",
]

Mode = Literal["websocket", "webrtc"]


@dataclass(frozen=True, slots=True)
class Send:
    """Send this client event."""

    event: ev.ClientEvent


@dataclass(frozen=True, slots=True)
class Play:
    """Write pcm16 24 kHz mono to the local player (WebSocket mode)."""

    pcm: bytes


@dataclass(frozen=True, slots=True)
class StopPlayback:
    """Empty the local player now: the user interrupted."""


@dataclass(frozen=True, slots=True)
class RunTool:
    """Start this tool call; report its :class:`ToolResult` to :meth:`VoiceCore.tool_settled`."""

    call: ToolCall


@dataclass(frozen=True, slots=True)
class CancelTool:
    """Cancel this running call (its result, ``cancelled``, still comes back through ``tool_settled``)."""

    call_id: str


@dataclass(frozen=True, slots=True)
class StateChanged:
    old: AssistantState
    new: AssistantState
    trigger: Trigger


@dataclass(frozen=True, slots=True)
class TranscriptChanged:
    entries: tuple[TranscriptEntry, ...]


@dataclass(frozen=True, slots=True)
class TurnCompleted:
    metrics: TurnMetrics


Action: TypeAlias = Send | Play | StopPlayback | RunTool | CancelTool | StateChanged | TranscriptChanged | TurnCompleted


@dataclass(frozen=True, slots=True, kw_only=True)
class CoreConfig:
    """Settings of the assistant core.

    ``mode``: ``"websocket"`` (the client plays audio itself) or ``"webrtc"`` (the service plays it on the
    media track and reports ``output_audio_buffer.*``). ``tool_policy``: running tools at barge-in.
    ``cancel_response_on_barge_in``: also send ``response.cancel`` (only needed when the session's
    ``turn_detection.interrupt_response`` is off; with it on the service cancels by itself).
    ``audio_onsets``: refine transcript word timing with speech onsets found in the audio (WebSocket mode).
    """

    mode: Mode = "websocket"
    tool_policy: ToolPolicy = ToolPolicy.CANCEL
    cancel_response_on_barge_in: bool = False
    prices: PriceTable = field(default_factory=PriceTable)
    sample_rate: int = SAMPLE_RATE
    audio_onsets: bool = True
