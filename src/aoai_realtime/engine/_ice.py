"""Keep the engine's WebRTC on loopback: offer only the host addresses we allow.

aioice (under aiortc) skips loopback addresses and offers the machine's interface addresses, so a call
between two local peers would leave 127.0.0.1 (browser-testing.md, pitfall 4). The engine gathers its
candidates inside :func:`loopback_only` when it is bound to a loopback address.

One patch of ``aioice.ice.get_host_addresses`` per process: this module delegates to the client transport's
:func:`aoai_realtime.transport._ice.host_addresses` so the engine and our WebRTC client (often in the same test
process) share it instead of undoing each other's.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager

from ..transport._ice import host_addresses

__all__ = ["is_loopback", "loopback_only", "restrict_host_addresses"]


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    return host in ("localhost", "::1") or host.startswith("127.")


def restrict_host_addresses(addresses: Sequence[str]) -> AbstractContextManager[None]:
    """While active, ICE gathering in this process offers only ``addresses`` as host candidates."""
    return host_addresses(addresses)


def loopback_only() -> AbstractContextManager[None]:
    """``restrict_host_addresses(["127.0.0.1"])``."""
    return host_addresses(["127.0.0.1"])
