"""The server for browsers: ephemeral-token route, SDP proxy with a sideband for tools and limits, personas,
rate limits, CORS, and the browser client's files. See :mod:`aoai_realtime.server.router`."""

from __future__ import annotations

from ..pricing import PriceTable
from .app import STATIC_DIR, create_app
from .calls import CallEntry, CallRegistry, MemoryCallRegistry, RedisCallRegistry
from .hooks import CallHooks, CallRecord, CallStart, ToolCallRecord, TranscriptTurn
from .limits import CallGate, MemoryCallGate, RateLimits, RateLimitSettings, RedisCallGate, TrustedProxies, client_ip
from .personas import Persona, User, build_session
from .router import ApiError, AuthHook, RealtimeServer, ServerSettings
from .sideband import CallPolicy, Sideband
from .tools import ServerTool, ToolContext, ToolOutcome, ToolRegistry
from .upstream import Minted, NewCall, UpstreamClient, UpstreamError

__all__ = [
    "STATIC_DIR",
    "ApiError",
    "AuthHook",
    "CallEntry",
    "CallGate",
    "CallHooks",
    "CallPolicy",
    "CallRecord",
    "CallRegistry",
    "CallStart",
    "MemoryCallGate",
    "MemoryCallRegistry",
    "Minted",
    "NewCall",
    "Persona",
    "PriceTable",
    "RateLimitSettings",
    "RateLimits",
    "RealtimeServer",
    "RedisCallGate",
    "RedisCallRegistry",
    "ServerSettings",
    "ServerTool",
    "Sideband",
    "ToolCallRecord",
    "ToolContext",
    "ToolOutcome",
    "ToolRegistry",
    "TranscriptTurn",
    "TrustedProxies",
    "UpstreamClient",
    "UpstreamError",
    "User",
    "build_session",
    "client_ip",
    "create_app",
]
