"""What every transport provides. Transports are injected into :class:`~aoai_realtime.client.RealtimeClient`;
they move whole JSON messages (and, for WebRTC, audio) and know nothing of events.

A transport can be connected again after it closed: the client's reconnect loop calls :meth:`connect` anew.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal, Protocol, runtime_checkable

__all__ = ["AudioChannel", "Dialect", "Transport"]

Dialect = Literal["ga", "beta"]


@runtime_checkable
class AudioChannel(Protocol):
    """Media audio beside the events (WebRTC): pcm16 mono 24 kHz both ways, as the Realtime API speaks it."""

    async def send_audio(self, pcm: bytes) -> None:
        """Queue ``pcm`` (pcm16 mono 24 kHz) for the outgoing track; it is paced in real time."""
        ...

    def received_audio(self) -> AsyncIterator[bytes]:
        """The incoming track as pcm16 mono 24 kHz chunks, ending when the transport closes."""
        ...


@runtime_checkable
class Transport(Protocol):
    """A message pipe to a Realtime session."""

    #: ``"ga"`` or ``"beta"``: which shape of session config and event names the far side speaks.
    dialect: Dialect

    @property
    def audio(self) -> AudioChannel | None:
        """The media channel (WebRTC only); ``None`` when audio travels as events."""
        ...

    async def connect(self) -> None:
        """Open the connection. Raises ConnectError (AuthenticationError on 401/403); leaks nothing on failure."""
        ...

    async def send(self, message: bytes) -> None:
        """Send one JSON message. Raises ConnectionClosed once closed."""
        ...

    async def recv(self) -> bytes:
        """Receive one JSON message. Raises ConnectionClosed (with the close code) once closed."""
        ...

    async def close(self) -> None:
        """Close; safe to call more than once and from any state."""
        ...
