"""Transports: how messages (and WebRTC audio) travel. Injected into the client, never subclassed.

``MemoryTransport`` / ``memory_pair`` (tests), ``WebSocketTransport`` (websockets), ``WebRTCTransport`` (aiortc;
imported from ``aoai_realtime.transport.webrtc`` so that aiortc stays optional).
"""

from __future__ import annotations

from .base import AudioChannel, Dialect, Transport
from .memory import MemoryTransport, memory_pair

__all__ = ["AudioChannel", "Dialect", "MemoryTransport", "Transport", "memory_pair"]
