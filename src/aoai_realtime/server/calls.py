"""Which server instance runs which SDP-proxy call: the call registry.

One process keeps its calls in memory (:class:`MemoryCallRegistry`). Behind a load balancer, several instances
share a :class:`RedisCallRegistry` (the same ``redis://`` URL as the call cap), so that:

- ``DELETE /calls/{id}`` landing on any instance finds the call and its user; the instance that does not run
  it hangs it up through the upstream (``POST /realtime/calls/{id}/hangup``, which any instance may send with
  the server's credentials), and the owner's sideband then ends and releases the call's slot;
- each instance renews a heartbeat for its live calls; when an instance dies, its calls' heartbeats lapse and
  the next sweep of any other instance claims them (each orphan exactly once, atomically in Redis), hangs them
  up upstream (nobody polices them any more) and frees their slots in the call cap.

The registry stores only ids: call id, user id, instance id and call-cap slot, never a token or a transcript.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Protocol

__all__ = ["CallEntry", "CallRegistry", "MemoryCallRegistry", "RedisCallRegistry"]


@dataclasses.dataclass(frozen=True, slots=True)
class CallEntry:
    """One live call: its upstream ``call_id``, the user it belongs to, the instance running its sideband and
    the slot it holds in the call cap."""

    call_id: str
    user_id: str
    instance: str
    slot: str


class CallRegistry(Protocol):
    """Where live calls are recorded. Every method is safe to call from many instances at once."""

    async def add(self, entry: CallEntry, *, heartbeat_ttl_s: float) -> None:
        """Record a call; it counts as alive for ``heartbeat_ttl_s`` unless :meth:`refresh` renews it."""
        ...

    async def refresh(self, call_ids: list[str], *, heartbeat_ttl_s: float) -> None:
        """Renew the heartbeat of calls this instance still runs."""
        ...

    async def get(self, call_id: str) -> CallEntry | None: ...

    async def remove(self, call_id: str) -> None:
        """Forget a call that ended (idempotent)."""
        ...

    async def request_hangup(self, call_id: str) -> None:
        """Note that a user asked to hang up (the owner then records ``hangup`` as the reason)."""
        ...

    async def hangup_requested(self, call_id: str) -> bool: ...

    async def claim_orphans(self, *, limit: int = 100) -> list[CallEntry]:
        """Calls whose heartbeat lapsed (their instance died), removed from the registry: each one is returned
        to exactly one caller, who must hang it up and free its slot."""
        ...

    async def close(self) -> None: ...


class MemoryCallRegistry:
    """Calls of this process only: a crash takes the registry with it, so there are never orphans."""

    def __init__(self) -> None:
        self._calls: dict[str, CallEntry] = {}
        self._hangups: set[str] = set()

    async def add(self, entry: CallEntry, *, heartbeat_ttl_s: float) -> None:
        self._calls[entry.call_id] = entry

    async def refresh(self, call_ids: list[str], *, heartbeat_ttl_s: float) -> None:
        return None

    async def get(self, call_id: str) -> CallEntry | None:
        return self._calls.get(call_id)

    async def remove(self, call_id: str) -> None:
        self._calls.pop(call_id, None)
        self._hangups.discard(call_id)

    async def request_hangup(self, call_id: str) -> None:
        if call_id in self._calls:
            self._hangups.add(call_id)

    async def hangup_requested(self, call_id: str) -> bool:
        return call_id in self._hangups

    async def claim_orphans(self, *, limit: int = 100) -> list[CallEntry]:
        return []

    async def close(self) -> None:
        self._calls.clear()
        self._hangups.clear()


# Atomic: take up to ARGV[2] calls whose heartbeat deadline passed, drop them, return their fields. Two instances
# sweeping at once never both get the same call.
_CLAIM_ORPHANS = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  local key = ARGV[3] .. id
  local fields = redis.call('HMGET', key, 'user', 'instance', 'slot')
  redis.call('DEL', key)
  if fields[1] then
    table.insert(out, id)
    table.insert(out, fields[1])
    table.insert(out, fields[2] or '')
    table.insert(out, fields[3] or '')
  end
end
return out
"""

# A registry hash outlives its heartbeat by this much, so a claimed orphan's details are still there; after
# that Redis drops it on its own.
_ENTRY_GRACE_S = 3600


class RedisCallRegistry:
    """Calls shared by every instance through Redis (``redis://host:port/db``): one hash per call
    (``{prefix}call:{id}``) and one sorted set of heartbeat deadlines (``{prefix}alive``). Deadlines are wall-clock
    seconds, so the instances' clocks must agree to within a small part of the heartbeat TTL."""

    def __init__(self, url: str, *, prefix: str = "aoai-realtime:registry:") -> None:
        import redis.asyncio as aioredis

        self._redis: Any = aioredis.Redis.from_url(url, decode_responses=True)
        self._prefix = prefix
        self._alive = prefix + "alive"
        self._claim = self._redis.register_script(_CLAIM_ORPHANS)

    def _key(self, call_id: str) -> str:
        return f"{self._prefix}call:{call_id}"

    async def add(self, entry: CallEntry, *, heartbeat_ttl_s: float) -> None:
        key = self._key(entry.call_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"user": entry.user_id, "instance": entry.instance, "slot": entry.slot})
            pipe.expire(key, int(heartbeat_ttl_s) + _ENTRY_GRACE_S)
            pipe.zadd(self._alive, {entry.call_id: time.time() + heartbeat_ttl_s})
            await pipe.execute()

    async def refresh(self, call_ids: list[str], *, heartbeat_ttl_s: float) -> None:
        if not call_ids:
            return
        deadline = time.time() + heartbeat_ttl_s
        async with self._redis.pipeline(transaction=False) as pipe:
            # XX: renew only calls still registered (a call claimed as an orphan meanwhile stays gone).
            pipe.zadd(self._alive, dict.fromkeys(call_ids, deadline), xx=True)
            for call_id in call_ids:
                pipe.expire(self._key(call_id), int(heartbeat_ttl_s) + _ENTRY_GRACE_S)
            await pipe.execute()

    async def get(self, call_id: str) -> CallEntry | None:
        fields = await self._redis.hgetall(self._key(call_id))
        if not fields or "user" not in fields:
            return None
        return CallEntry(
            call_id=call_id, user_id=fields["user"], instance=fields.get("instance", ""), slot=fields.get("slot", "")
        )

    async def remove(self, call_id: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._key(call_id))
            pipe.zrem(self._alive, call_id)
            await pipe.execute()

    async def request_hangup(self, call_id: str) -> None:
        await self._redis.hset(self._key(call_id), "hangup", "1")

    async def hangup_requested(self, call_id: str) -> bool:
        return bool(await self._redis.hexists(self._key(call_id), "hangup"))

    async def claim_orphans(self, *, limit: int = 100) -> list[CallEntry]:
        flat = await self._claim(keys=[self._alive], args=[time.time(), limit, self._prefix + "call:"])
        return [
            CallEntry(call_id=flat[i], user_id=flat[i + 1], instance=flat[i + 2], slot=flat[i + 3])
            for i in range(0, len(flat), 4)
        ]

    async def close(self) -> None:
        await self._redis.aclose()
