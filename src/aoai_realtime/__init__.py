"""aoai-realtime: voice agents on the Azure OpenAI Realtime API.

The public API is what ``__all__`` lists (pinned by ``tests/test_public_api.py``). ``WebRTCTransport`` is
imported on first use so that aiortc stays optional.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .auth import ApiKey, EntraId, EphemeralToken, Token
from .client import RealtimeClient, Reconnected, ReconnectPolicy
from .endpoints import Endpoint
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
)
from .protocol.session import AudioFormat, SemanticVad, ServerVad, SessionConfig, Transcription
from .transport.memory import MemoryTransport, memory_pair
from .transport.websocket import WebSocketTransport

if TYPE_CHECKING:
    from .transport.webrtc import WebRTCTransport

logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"

__all__ = [
    "ApiKey",
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
    "Token",
    "ToolError",
    "Transcription",
    "TransportError",
    "WebRTCTransport",
    "WebSocketTransport",
    "__version__",
    "memory_pair",
]


def __getattr__(name: str) -> Any:
    if name == "WebRTCTransport":
        from .transport.webrtc import WebRTCTransport

        return WebRTCTransport
    raise AttributeError(f"module 'aoai_realtime' has no attribute {name!r}")
