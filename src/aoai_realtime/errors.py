"""The exception tree of aoai-realtime. Every exception the toolkit raises on purpose derives from
:class:`RealtimeError`, so ``except RealtimeError`` at a boundary catches ours and nothing else.

::

    RealtimeError
     ├── ProtocolError            a malformed event (local decode); names the event type
     ├── ConfigError              an invalid session config or setting, found before anything is sent;
     │                            names the field (also a ValueError)
     ├── TransportError           the connection itself
     │    ├── ConnectError        could not connect (DNS, refused, handshake, SDP exchange, timeout)
     │    │    └── AuthenticationError   401/403 or a rejected key: never retried
     │    ├── ConnectionClosed    the connection is closed (by us: ``code`` 1000; by the peer: its code)
     │    │    └── SessionExpired the service ended the session at its maximum duration (close 1001)
     │    └── Busy                a bounded queue is full and the caller asked not to wait
     ├── ServerError             an ``error`` event from the service (remote): ``code``, ``param``, ``event_id``
     └── ToolError               a tool failed; its text goes back to the model as the call's output

Error texts never contain secrets: API keys and tokens are redacted by :func:`redact` before they are
formatted into a message.
"""

from __future__ import annotations

import logging
import re
import traceback

__all__ = [
    "AuthenticationError",
    "Busy",
    "ConfigError",
    "ConnectError",
    "ConnectionClosed",
    "ProtocolError",
    "RealtimeError",
    "RedactingFilter",
    "ServerError",
    "SessionExpired",
    "ToolError",
    "TransportError",
    "get_logger",
    "redact",
]

# api keys (32 hex, sk-..., ek_...), bearer tokens and JWTs.
_SECRET = re.compile(
    r"(?i)(bearer\s+)\S+|\b(?:sk|ek)[-_][A-Za-z0-9_\-]{6,}|\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"
    r"|\b[0-9a-f]{32}\b|(api[-_]key[=:]\s*)[^\s&\"',]+"
)


# key=value and key: value pairs that name a secret (connection strings, config dumps, exception texts).
_SECRET_VALUE = re.compile(
    r"(?i)\b((?:password|passwd|pwd|secret|client[-_]secret|token|access[-_]token|refresh[-_]token)\s*[=:]\s*)"
    r"[^\s&\"',;]+"
)
# The password in a URL's user info: scheme://user:password@host.
_URL_PASSWORD = re.compile(r"(://[^/\s:@]+:)[^@\s/]+(@)")


def redact(text: str) -> str:
    """Return ``text`` with anything that looks like a key, token or password replaced by ``***``: API keys,
    bearer tokens, JWTs, ``password=``/``token:`` style values and the password of a ``scheme://user:pw@host``
    URL."""

    def _sub(m: re.Match[str]) -> str:
        prefix = m.group(1) or m.group(2) or ""
        return f"{prefix}***"

    text = _SECRET.sub(_sub, text)
    text = _SECRET_VALUE.sub(lambda m: f"{m.group(1)}***", text)
    return _URL_PASSWORD.sub(lambda m: f"{m.group(1)}***{m.group(2)}", text)


class RedactingFilter(logging.Filter):
    """Masks secrets (:func:`redact`) in a log record's message and in its formatted traceback.

    Every module logger of this package has one (:func:`get_logger`), so an exception text that carries a key or
    a connection string is never written as it is, whatever handlers the application installs.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is logging's to report, not ours
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            formatted = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_text = redact(formatted)
        return True


_FILTER = RedactingFilter()


def get_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` with the :class:`RedactingFilter` attached (once)."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger


class RealtimeError(Exception):
    """Root of every exception aoai-realtime raises on purpose."""


class ProtocolError(RealtimeError):
    """A message could not be decoded as a Realtime event.

    ``event_type`` is the ``type`` the message claimed (``None`` if it had none or was not JSON).
    Receive loops log it and go on: one bad message never ends a session.
    """

    def __init__(self, message: str, *, event_type: str | None = None) -> None:
        super().__init__(message)
        self.event_type = event_type


class ConfigError(RealtimeError, ValueError):
    """An invalid configuration value, caught before anything is sent. ``field`` is its dotted path."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class TransportError(RealtimeError):
    """Something went wrong with the connection itself."""


class ConnectError(TransportError):
    """Could not establish a connection. Every resource opened for the attempt has been closed."""


class AuthenticationError(ConnectError):
    """The service refused the credentials (HTTP 401/403 or a key error). Not retried."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ConnectionClosed(TransportError):
    """The connection is closed. ``code``/``reason`` are the WebSocket close code and reason when known."""

    def __init__(self, message: str = "connection closed", *, code: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class SessionExpired(ConnectionClosed):
    """The service ended the session at its maximum duration (``session_expired``, close 1001).

    The conversation lives server-side and is gone: open a new session and seed it with context.
    """


class Busy(TransportError):
    """A bounded queue is full and the caller asked not to wait."""


class ServerError(RealtimeError):
    """An ``error`` event from the service. Most are recoverable; the session stays open."""

    def __init__(
        self,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        event_id: str | None = None,
    ) -> None:
        super().__init__(redact(message))
        self.type = type
        self.code = code
        self.param = param
        self.event_id = event_id


class ToolError(RealtimeError):
    """A tool failed. The message is sent back to the model as the call's output."""
