"""Which host addresses aiortc's ICE agent (aioice) offers: the one loopback helper for the engine and the client.

aioice never offers loopback addresses and offers every interface address instead. Tests and local demos must
keep every packet on 127.0.0.1 (``browser-testing.md``, pitfall 4), so both the local engine and our WebRTC
client gather candidates inside :func:`host_addresses` (``["127.0.0.1"]``, or :func:`loopback_only`).

The choice is held in a :class:`~contextvars.ContextVar`, so it belongs to the task that made it (and to the tasks
it starts, which copy its context): two WebRTC set-ups running at once in one process each get their own
addresses. ``aioice.ice.get_host_addresses`` is replaced once, on first use, by a function that reads the
variable and calls the original when it is unset; nothing is patched at import time.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Sequence

__all__ = ["host_addresses", "is_loopback", "loopback_only"]

_addresses: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar("ice_host_addresses",
                                                                                     default=None)
_original: Callable[[bool, bool], list[str]] | None = None


def _scoped(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    chosen = _addresses.get()
    if chosen is not None:
        return list(chosen)
    assert _original is not None
    return _original(use_ipv4, use_ipv6)


def _install() -> None:
    global _original
    import aioice.ice

    if _original is None:
        _original = aioice.ice.get_host_addresses
        aioice.ice.get_host_addresses = _scoped


@contextlib.contextmanager
def host_addresses(addresses: Sequence[str]) -> Iterator[None]:
    """Offer only ``addresses`` as host candidates for ICE gathering done inside this block, by this task (and
    tasks it starts inside the block). ``[]`` offers none."""
    _install()
    token = _addresses.set(tuple(addresses))
    try:
        yield
    finally:
        _addresses.reset(token)


def loopback_only() -> contextlib.AbstractContextManager[None]:
    """``host_addresses(["127.0.0.1"])``."""
    return host_addresses(["127.0.0.1"])


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    return host in ("localhost", "::1") or host.startswith("127.")
