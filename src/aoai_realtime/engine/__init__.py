"""The local Realtime engine: the Azure OpenAI / OpenAI Realtime API on localhost, offline.

Pieces (each usable alone): :class:`EngineSession` (the session semantics, no sockets), :class:`Engine`
(credentials, calls, sessions) with :func:`serve_channel` (runs a session over any message pipe),
``create_app`` in :mod:`.app` (the ASGI app: WebSocket, client_secrets, calls/WebRTC), brains in
:mod:`.brain`, speech in :mod:`.speech`, record/replay in :mod:`.record` / :mod:`.replay`.
For tests, :mod:`aoai_realtime.testing.engine` wires an engine to in-memory transports.
"""

from __future__ import annotations

from .brain import Brain, BrainRequest, CallTool, Pause, RulesBrain, Say, ScriptedBrain
from .clock import Clock, FakeClock, SystemClock
from .engine import Channel, Engine, EngineConfig, serve_channel
from .errors import EngineError, RequestRejected
from .ids import Ids
from .ports import SpeechKit, SpeechPort
from .record import Recorder, read_recording
from .session import AudioOut, EngineSession, SessionOptions

__all__ = [
    "AudioOut",
    "Brain",
    "BrainRequest",
    "CallTool",
    "Channel",
    "Clock",
    "Engine",
    "EngineConfig",
    "EngineError",
    "EngineSession",
    "FakeClock",
    "Ids",
    "Pause",
    "Recorder",
    "RequestRejected",
    "RulesBrain",
    "Say",
    "ScriptedBrain",
    "SessionOptions",
    "SpeechKit",
    "SpeechPort",
    "SystemClock",
    "read_recording",
    "serve_channel",
]
