"""aoai-realtime: voice agents on the Azure OpenAI Realtime API.

The public API is what ``__all__`` lists (pinned by ``tests/test_public_api.py``). Names are imported on first
use, so ``import aoai_realtime.protocol`` loads no I/O library and aiortc stays optional.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from .errors import (
    AuthenticationError,
    Busy,
    ConfigError,
    ConnectError,
    ConnectionClosed,
    ProtocolError,
    RealtimeError,
    ServerError,
    SessionExpired,
    ToolError,
    TransportError,
    get_logger,
)

if TYPE_CHECKING:
    from .agents import AssistantState, TextChat, ToolAgent, ToolSet, VoiceAssistant, tool
    from .auth import ApiKey, EntraId, EphemeralToken, Token
    from .client import RealtimeClient, Reconnected, ReconnectPolicy
    from .endpoints import Endpoint
    from .protocol.session import AudioFormat, SemanticVad, ServerVad, SessionConfig, Transcription
    from .transport.memory import MemoryTransport, memory_pair
    from .transport.webrtc import WebRTCTransport
    from .transport.websocket import WebSocketTransport

get_logger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"

_LAZY = {
    "ApiKey": ".auth",
    "EntraId": ".auth",
    "EphemeralToken": ".auth",
    "Token": ".auth",
    "RealtimeClient": ".client",
    "Reconnected": ".client",
    "ReconnectPolicy": ".client",
    "Endpoint": ".endpoints",
    "AudioFormat": ".protocol.session",
    "SemanticVad": ".protocol.session",
    "ServerVad": ".protocol.session",
    "SessionConfig": ".protocol.session",
    "Transcription": ".protocol.session",
    "MemoryTransport": ".transport.memory",
    "memory_pair": ".transport.memory",
    "WebRTCTransport": ".transport.webrtc",
    "VoiceAssistant": ".agents",
    "AssistantState": ".agents",
    "TextChat": ".agents",
    "ToolAgent": ".agents",
    "ToolSet": ".agents",
    "tool": ".agents",
    "WebSocketTransport": ".transport.websocket",
}

__all__ = [
    "ApiKey",
    "AssistantState",
    "AudioFormat",
    "AuthenticationError",
    "Busy",
    "ConfigError",
    "ConnectError",
    "ConnectionClosed",
    "Endpoint",
    "EntraId",
    "EphemeralToken",
    "MemoryTransport",
    "ProtocolError",
    "RealtimeClient",
    "RealtimeError",
    "ReconnectPolicy",
    "Reconnected",
    "SemanticVad",
    "ServerError",
    "ServerVad",
    "SessionConfig",
    "SessionExpired",
    "TextChat",
    "Token",
    "ToolAgent",
    "ToolError",
    "ToolSet",
    "Transcription",
    "TransportError",
    "VoiceAssistant",
    "WebRTCTransport",
    "WebSocketTransport",
    "__version__",
    "memory_pair",
    "tool",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aoai_realtime' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
