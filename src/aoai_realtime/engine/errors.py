"""Errors the engine turns into ``error`` events (reference 4.6) or HTTP error bodies.

:class:`RequestRejected` (defined by the protocol core's schema, :mod:`aoai_realtime.protocol.schema`) is raised
for a client event the service would refuse; the driver sends it as
``{"type": "error", "error": {type, code, message, param, event_id}}`` and the session stays open, as the
service's does.
"""

from __future__ import annotations

from ..errors import RealtimeError
from ..protocol.schema import RequestRejected

__all__ = ["EngineError", "RequestRejected"]


class EngineError(RealtimeError):
    """Something the engine itself cannot do (bad engine setup, missing speech model)."""
