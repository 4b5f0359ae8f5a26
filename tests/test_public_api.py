"""The public API is pinned: adding or removing a name is a deliberate change to this list."""

from __future__ import annotations

import subprocess
import sys

import aoai_realtime

PINNED = {
    "ApiKey", "AudioFormat", "AuthenticationError", "Busy", "ConfigError", "ConnectError", "ConnectionClosed",
    "Endpoint", "EntraId", "EphemeralToken", "MemoryTransport", "ProtocolError", "RealtimeClient", "RealtimeError",
    "ReconnectPolicy", "Reconnected", "SemanticVad", "ServerError", "ServerVad", "SessionConfig", "SessionExpired",
    "Token", "ToolError", "Transcription", "TransportError", "WebRTCTransport", "WebSocketTransport",
    "__version__", "memory_pair",
    "VoiceAssistant", "AssistantState", "TextChat", "ToolAgent", "ToolSet", "tool",
}


def test_all_is_pinned_and_every_name_resolves() -> None:
    assert set(aoai_realtime.__all__) == PINNED
    for name in aoai_realtime.__all__:
        assert getattr(aoai_realtime, name) is not None


def test_every_exception_derives_from_the_root() -> None:
    for name in aoai_realtime.__all__:
        value = getattr(aoai_realtime, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, aoai_realtime.RealtimeError), name


def test_import_does_no_work_and_leaves_aiortc_unloaded() -> None:
    code = ("import sys, logging; import aoai_realtime; "
            "print('aiortc' in sys.modules or 'websockets' in sys.modules, logging.root.handlers)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False []"
    assert out.stderr == ""
