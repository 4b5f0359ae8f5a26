"""Rate limits, client addresses and call caps.

- :class:`RateLimits` wraps the ``limits`` library: one budget per route and per key kind (user, client IP),
  sliding-window counters, memory storage for one process or Redis (``redis://host:port``) for several.
- :func:`client_ip` returns the address a request really came from: ``X-Forwarded-For`` is believed only when
  the TCP peer is one of the configured proxies (a forged header from anyone else is ignored).
- :class:`CallGate` caps concurrent calls per user, in memory or in Redis (a sorted set per user whose
  entries expire at the call's deadline, so a crashed process cannot hold slots forever).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from ..errors import ConfigError

__all__ = [
    "CallGate",
    "MemoryCallGate",
    "RateLimitSettings",
    "RateLimits",
    "RedisCallGate",
    "TrustedProxies",
    "client_ip",
]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, kw_only=True)
class RateLimitSettings:
    """Budgets in ``limits`` notation (``"10/minute"``, ``"5 per 10 seconds"``), one pair per route."""

    session_per_user: str = "10/minute"
    session_per_ip: str = "30/minute"
    call_per_user: str = "10/minute"
    call_per_ip: str = "30/minute"
    storage_uri: str = "memory://"


class TrustedProxies:
    """Addresses (or CIDR networks) of reverse proxies whose ``X-Forwarded-For`` may be believed."""

    def __init__(self, proxies: Iterable[str] = ()) -> None:
        networks: list[IPNetwork] = []
        for entry in proxies:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError as exc:
                raise ConfigError(
                    f"trusted proxy {entry!r} is not an IP address or network", field="trusted_proxies"
                ) from exc
        self._networks = tuple(networks)

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, str):
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._networks)


def client_ip(peer: str | None, forwarded_for: Sequence[str], proxies: TrustedProxies) -> str:
    """The client's address: the TCP ``peer``, or, when the peer is a trusted proxy, the right-most address
    in ``X-Forwarded-For`` that is not itself a trusted proxy.

    ``forwarded_for`` holds every ``X-Forwarded-For`` header value (a proxy appends, so the right-most entries
    are the trustworthy ones; the left-most can be anything the client wrote).
    """
    address = peer or "unknown"
    if address not in proxies:
        return address
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return address  # a garbled chain: fall back to the proxy itself rather than trust a fragment
        if hop not in proxies:
            return hop
        address = hop
    return address


class RateLimits:
    """Per-route budgets keyed by user and by client IP.

    :meth:`hit` counts one request and returns ``None`` when allowed, or the seconds to wait (``Retry-After``).
    """

    def __init__(self, settings: RateLimitSettings) -> None:
        self.settings = settings
        self._items: dict[tuple[str, str], RateLimitItem] = {}
        for route in ("session", "call"):
            for kind in ("user", "ip"):
                spec = getattr(settings, f"{route}_per_{kind}")
                try:
                    self._items[(route, kind)] = parse(spec)
                except ValueError as exc:
                    raise ConfigError(
                        f"rate limit {spec!r} is not valid limits notation", field=f"{route}_per_{kind}"
                    ) from exc
        uri = settings.storage_uri
        options: dict[str, Any] = {}
        self._pool: Any = None
        if uri.removeprefix("async+").startswith(("redis://", "rediss://")):
            import redis.asyncio as aioredis

            # Our own pool, so close() can release its connections (limits' storage has no close).
            self._pool = aioredis.ConnectionPool.from_url(uri.removeprefix("async+"))
            options = {"implementation": "redispy", "connection_pool": self._pool}
        storage = storage_from_string(uri if uri.startswith("async+") else f"async+{uri}", **options)
        if not isinstance(storage, Storage):
            raise ConfigError(f"rate-limit storage {uri!r} has no asyncio implementation", field="storage_uri")
        self._storage = storage
        # Sliding-window counters: O(1) per hit in memory and in Redis (a moving window keeps every timestamp).
        self._limiter = SlidingWindowCounterRateLimiter(self._storage)

    async def hit(self, route: str, kind: str, key: str) -> int | None:
        item = self._items[(route, kind)]
        if await self._limiter.hit(item, route, kind, key):
            return None
        stats = await self._limiter.get_window_stats(item, route, kind, key)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def reset(self) -> None:
        """Forget every counter (tests and admin tools)."""
        await self._storage.reset()

    async def close(self) -> None:
        """Release storage connections (Redis). Idempotent."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.aclose()


class CallGate(Protocol):
    """A cap on concurrent calls per user."""

    async def acquire(self, user_id: str, call_key: str, *, max_calls: int, ttl_s: float) -> bool: ...

    async def release(self, user_id: str, call_key: str) -> None: ...

    async def close(self) -> None: ...


class MemoryCallGate:
    """Call slots in this process only (one server process)."""

    def __init__(self) -> None:
        self._calls: dict[str, dict[str, float]] = {}

    async def acquire(self, user_id: str, call_key: str, *, max_calls: int, ttl_s: float) -> bool:
        now = time.monotonic()
        calls = {k: d for k, d in self._calls.get(user_id, {}).items() if d > now}
        if len(calls) >= max_calls:
            self._calls[user_id] = calls
            return False
        calls[call_key] = now + ttl_s
        self._calls[user_id] = calls
        return True

    async def release(self, user_id: str, call_key: str) -> None:
        calls = self._calls.get(user_id)
        if calls is not None:
            calls.pop(call_key, None)
            if not calls:
                del self._calls[user_id]

    async def close(self) -> None:
        self._calls.clear()


# Atomic on the Redis side: drop expired slots, then take one if there is room.
_ACQUIRE = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])) + 60)
return 1
"""


class RedisCallGate:
    """Call slots shared by every server process through Redis (``redis://host:port/db``)."""

    def __init__(self, url: str, *, prefix: str = "aoai-realtime:calls:") -> None:
        import redis.asyncio as aioredis

        self._redis = aioredis.Redis.from_url(url)
        self._prefix = prefix
        self._acquire = self._redis.register_script(_ACQUIRE)

    async def acquire(self, user_id: str, call_key: str, *, max_calls: int, ttl_s: float) -> bool:
        # Wall-clock time: every process must agree on the scores.
        result = await self._acquire(keys=[self._prefix + user_id], args=[time.time(), max_calls, ttl_s, call_key])
        return bool(result)

    async def release(self, user_id: str, call_key: str) -> None:
        await self._redis.zrem(self._prefix + user_id, call_key)

    async def close(self) -> None:
        await self._redis.aclose()
