"""A listening TCP socket for the servers the command line starts (the engine, the demo), bound before anything
slow happens so that a busy port fails at once. Each command words its own fix; this says what went wrong."""

from __future__ import annotations

import errno
import ipaddress
import socket

from .errors import ConfigError

__all__ = ["ListenError", "listen"]


class ListenError(ConfigError):
    """The socket could not be bound; ``in_use``: because the port is taken."""

    def __init__(self, message: str, *, in_use: bool = False) -> None:
        super().__init__(message, field="port")
        self.in_use = in_use


def listen(host: str, port: int, *, backlog: int = 2048) -> socket.socket:
    """A non-blocking socket bound to ``host:port`` (``SO_REUSEADDR``, as uvicorn binds) and listening with
    ``backlog`` (connections made before the server runs wait there). Raises :class:`ListenError` naming the
    cause. The caller owns the socket (hands it to the server, or closes it)."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET  # a host name (localhost): bind() resolves it
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        in_use = exc.errno == errno.EADDRINUSE
        reason = "the port is in use" if in_use else (exc.strerror or type(exc).__name__)
        raise ListenError(f"cannot listen on {host}:{port}: {reason}", in_use=in_use) from None
    return sock
