"""Brains: what writes the engine's replies (``scripted``, ``rules``, ``llama``; ``relay`` is a proxy mode)."""

from __future__ import annotations

from .base import Brain, BrainOutput, BrainRequest, CallTool, ContextItem, Pause, Say
from .rules import RulesBrain
from .scripted import ScriptedBrain, parse_script

__all__ = [
    "Brain",
    "BrainOutput",
    "BrainRequest",
    "CallTool",
    "ContextItem",
    "Pause",
    "RulesBrain",
    "Say",
    "ScriptedBrain",
    "parse_script",
]
