"""Budgets and call caps shared between server instances through a real redis-server (Debian's package),
started on a free 127.0.0.1 port by this test."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from aoai_realtime.server import RateLimits, RateLimitSettings, RedisCallGate

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; scripts/setup.sh --test)")
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


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
