"""Agents: what app builders touch. ``VoiceAssistant`` (speaking state machine, barge-in truncation, transcript
synced to playback, rollover), ``TextChat`` and ``ToolAgent``, and tools that always answer."""

from __future__ import annotations

from .core import CoreConfig, StateChanged, VoiceCore
from .metrics import PriceTable, TurnMetrics, Usage
from .playback import PlaybackClock, truncate_position_ms
from .responses import ResponseWriter
from .rollover import RolloverPolicy, Seed, build_seed, extractive_summary
from .schema import parse_docstring, schema_for_function, validate
from .state import NO_EFFECT, TRANSITIONS, AssistantState, IllegalTransition, StateMachine, Trigger, mermaid
from .text import AgentResult, TextChat, ToolAgent
from .tools import Tool, ToolCall, ToolPolicy, ToolResult, ToolRunner, ToolSet, tool
from .transcript import Transcript, TranscriptEntry, word_starts_ms
from .voice import AssistantConfig, VoiceAssistant

__all__ = [
    "NO_EFFECT",
    "TRANSITIONS",
    "AgentResult",
    "AssistantConfig",
    "AssistantState",
    "CoreConfig",
    "IllegalTransition",
    "PlaybackClock",
    "PriceTable",
    "ResponseWriter",
    "RolloverPolicy",
    "Seed",
    "StateChanged",
    "StateMachine",
    "TextChat",
    "Tool",
    "ToolAgent",
    "ToolCall",
    "ToolPolicy",
    "ToolResult",
    "ToolRunner",
    "ToolSet",
    "Transcript",
    "TranscriptEntry",
    "Trigger",
    "TurnMetrics",
    "Usage",
    "VoiceAssistant",
    "VoiceCore",
    "build_seed",
    "extractive_summary",
    "mermaid",
    "parse_docstring",
    "schema_for_function",
    "tool",
    "truncate_position_ms",
    "validate",
    "word_starts_ms",
]
