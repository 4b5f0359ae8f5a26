"""Which host addresses aiortc's ICE agent (aioice) offers.

aioice never offers loopback addresses and offers every interface address instead. Tests and local demos must
keep every packet on 127.0.0.1 (``browser-testing.md``, pitfall 4), so both the local engine and our WebRTC
client can gather candidates inside :func:`host_addresses` (``["127.0.0.1"]``). The override is scoped: it is
installed on first use, applies only while a ``with`` block is active, and calls the original otherwise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

__all__ = ["host_addresses"]

_original: Callable[[bool, bool], list[str]] | None = None
_active: list[tuple[str, ...]] = []


def _patched(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    if _active:
        return list(_active[-1])
    assert _original is not None
    return _original(use_ipv4, use_ipv6)


@contextlib.contextmanager
def host_addresses(addresses: Sequence[str]) -> Iterator[None]:
    """Offer only ``addresses`` as host candidates for ICE gathering done inside this block."""
    global _original
    import aioice.ice

    if _original is None:
        _original = aioice.ice.get_host_addresses
        aioice.ice.get_host_addresses = _patched
    _active.append(tuple(addresses))
    try:
        yield
    finally:
        _active.pop()
