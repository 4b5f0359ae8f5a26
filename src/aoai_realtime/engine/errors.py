"""Errors the engine turns into ``error`` events (reference 4.6) or HTTP error bodies.

:class:`RequestRejected` is raised by the session core for a client event the service would refuse; the
driver sends it as ``{"type": "error", "error": {type, code, message, param, event_id}}`` and the session
stays open, as the service's does.
"""

from __future__ import annotations

from ..errors import RealtimeError

__all__ = ["EngineError", "RequestRejected"]


class EngineError(RealtimeError):
    """Something the engine itself cannot do (bad engine setup, missing speech model)."""


class RequestRejected(RealtimeError):
    """A client request the service would reject; becomes an ``error`` event with these fields."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None,
        param: str | None = None,
        type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        self.type = type
