"""Budgets and call caps shared between server instances through a real redis-server (Debian's package),
started on a free 127.0.0.1 port (the ``redis_url`` fixture in conftest)."""

from __future__ import annotations

import time

import pytest

from aoai_realtime.server import RateLimits, RateLimitSettings, RedisCallGate

pytestmark = pytest.mark.integration


async def test_two_servers_share_one_budget(redis_url: str) -> None:
    settings = RateLimitSettings(session_per_user="3/minute", storage_uri=redis_url)
    first, second = RateLimits(settings), RateLimits(settings)
    try:
        await first.reset()
        await _budget_checks(first, second)
    finally:
        await first.close()
        await second.close()


async def _budget_checks(first: RateLimits, second: RateLimits) -> None:
    results = [await (first if i % 2 else second).hit("session", "user", "alice") for i in range(4)]
    assert results[:3] == [None, None, None]
    assert results[3] is not None
    assert 1 <= results[3] <= 60
    # per route and per key kind: other budgets are untouched
    assert await first.hit("call", "user", "alice") is None
    assert await second.hit("session", "ip", "alice") is None
    assert await second.hit("session", "user", "bob") is None


async def test_call_cap_is_shared_and_slots_expire(redis_url: str) -> None:
    a, b = RedisCallGate(redis_url, prefix="test-cap:"), RedisCallGate(redis_url, prefix="test-cap:")
    try:
        assert await a.acquire("u1", "call-1", max_calls=2, ttl_s=60)
        assert await b.acquire("u1", "call-2", max_calls=2, ttl_s=60)
        assert not await a.acquire("u1", "call-3", max_calls=2, ttl_s=60)
        assert await a.acquire("u2", "call-4", max_calls=2, ttl_s=60)
        await b.release("u1", "call-1")
        assert await a.acquire("u1", "call-3", max_calls=2, ttl_s=60)
        # a slot whose holder died expires at its deadline
        assert await a.acquire("u3", "dead", max_calls=1, ttl_s=0.001)
        time.sleep(0.01)  # noqa: ASYNC251  # let a 1 ms deadline pass on the wall clock Redis compares with
        assert await b.acquire("u3", "fresh", max_calls=1, ttl_s=60)
    finally:
        await a.close()
        await b.close()
