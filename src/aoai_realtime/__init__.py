"""aoai-realtime: voice agents on the Azure OpenAI Realtime API."""

from __future__ import annotations

import logging

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

logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "Busy",
    "ConfigError",
    "ConnectError",
    "ConnectionClosed",
    "ProtocolError",
    "RealtimeError",
    "ServerError",
    "SessionExpired",
    "ToolError",
    "TransportError",
    "__version__",
]
