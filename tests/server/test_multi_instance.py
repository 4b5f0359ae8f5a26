"""More than one server instance: calls made through the SDP proxy are registered in Redis, so any instance can
hang up any of the user's calls; a call whose sideband drops is ended; a killed instance's calls are hung up by
another instance and leave the call cap. Also: a data-channel-only offer (a text call) is accepted.

Integration: the fake upstream and the servers listen on 127.0.0.1; Redis is Debian's redis-server."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from aoai_realtime.server import CallRecord, CallStart, ServerSettings
from aoai_realtime.server.calls import CallEntry, RedisCallRegistry
from aoai_realtime.testing.fake_upstream import FakeSideband, FakeUpstream

from .conftest import free_port
from .support import OFFER, MakeServer, alice, bob

pytestmark = pytest.mark.integration

SDP = {"Content-Type": "application/sdp"}
# What a browser that wants text only (a data channel, no microphone) offers.
DATA_ONLY_OFFER = (
    "v=0\r\no=- 4611 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=sctp-port:5000\r\n"
)


async def eventually(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Wait for something another process does (no fixed sleep decides the outcome; the deadline is generous)."""
    async with asyncio.timeout(timeout):
        while not check():  # noqa: ASYNC110 - the state lives in another process or in Redis: no event to await
            await asyncio.sleep(0.02)
    assert check(), what


@pytest.fixture
async def clean_redis(redis_url: str) -> str:
    import redis.asyncio as aioredis

    r = aioredis.Redis.from_url(redis_url)
    await r.flushdb()
    await r.aclose()
    return redis_url


async def call(client: httpx.AsyncClient, offer: str = OFFER, who: dict[str, str] | None = None) -> httpx.Response:
    headers = {**(who or alice()), **SDP}
    return await client.post("/api/realtime/calls?persona=assistant", content=offer, headers=headers)


async def connected(fake: FakeUpstream) -> FakeSideband:
    return await asyncio.wait_for(fake.sideband_connected.get(), 10)


# -- one process per instance would be the deployment; in-process instances show the routing rules ---------------


async def test_any_instance_hangs_up_a_call_another_instance_runs(
    make_server: MakeServer, fake: FakeUpstream, clean_redis: str
) -> None:
    ended: list[CallRecord] = []

    class Hooks:
        async def session_context(self, start: CallStart) -> str | None:
            return None

        async def call_ended(self, record: CallRecord) -> None:
            ended.append(record)

    a, client_a = await make_server(call_gate_url=clean_redis, max_calls_per_user=1, hooks=Hooks())
    b, client_b = await make_server(call_gate_url=clean_redis, max_calls_per_user=1)
    resp = await call(client_a)
    assert resp.status_code == 201
    sb = await connected(fake)
    path = resp.headers["location"]
    assert sb.call_id in a.calls and sb.call_id not in b.calls
    assert (await call(client_b)).status_code == 429  # the cap is shared: alice holds her one call on A

    assert (await client_b.delete(path, headers=bob())).status_code == 404  # not bob's call, on any instance
    assert (await client_b.delete(path, headers=alice())).status_code == 204

    await asyncio.wait_for(sb.closed.wait(), 10)
    live = a.calls.get(sb.call_id)
    if live is not None and live.task is not None:
        await asyncio.wait_for(live.task, 10)
    # B hung up upstream; A's sideband closed and A made sure (a second, harmless hang-up of a finished call).
    assert set(fake.hangups) == {sb.call_id}
    assert [r.ended_reason for r in ended] == ["hangup"]  # A records why its call ended
    assert await b.call_registry.get(sb.call_id) is None
    assert (await client_b.delete(path, headers=alice())).status_code == 404  # gone everywhere
    assert (await call(client_b)).status_code == 201  # the slot was freed


async def test_an_orphaned_call_is_hung_up_and_leaves_the_cap(
    make_server: MakeServer, fake: FakeUpstream, clean_redis: str
) -> None:
    # An instance died holding a call: it is in the registry and the cap, and nobody renews its heartbeat.
    dead = RedisCallRegistry(clean_redis)
    server, client = await make_server(call_gate_url=clean_redis, max_calls_per_user=1, call_heartbeat_s=0.05)
    try:
        assert await server.call_gate.acquire("alice", "slot-dead", max_calls=1, ttl_s=600)
        await dead.add(CallEntry("rtc_dead", "alice", "gone", "slot-dead"), heartbeat_ttl_s=0.01)
        await eventually(lambda: "rtc_dead" in fake.hangups, "the live instance hangs up the orphan")
        assert await dead.get("rtc_dead") is None
        assert (await call(client)).status_code == 201  # alice's slot is free again
        assert fake.hangups == ["rtc_dead"]  # claimed once, though this instance sweeps again and again
    finally:
        await dead.close()


async def test_a_call_whose_sideband_drops_is_ended(make_server: MakeServer, fake: FakeUpstream) -> None:
    server, client = await make_server()
    assert (await call(client)).status_code == 201
    sb = await connected(fake)
    live = server.calls[sb.call_id]
    await sb.ws.close()  # the socket drops; nothing says the call itself ended
    assert live.task is not None
    assert await asyncio.wait_for(live.task, 10) == "closed"
    assert fake.hangups == [sb.call_id]  # so the server ended it rather than leave it running unpoliced
    assert sb.call_id not in server.calls


async def test_a_data_channel_only_offer_is_accepted(make_server: MakeServer, fake: FakeUpstream) -> None:
    _, client = await make_server()
    resp = await call(client, DATA_ONLY_OFFER)
    assert resp.status_code == 201
    assert list(fake.calls.values()) == [DATA_ONLY_OFFER]
    video_only = DATA_ONLY_OFFER.replace("m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "m=video 9 RTP/AVP 96")
    resp = await call(client, video_only)
    assert resp.status_code == 400
    assert resp.json()["error"] == {
        "code": "invalid_sdp",
        "message": "the body is not an SDP offer with an audio or data-channel section",
    }


def test_the_heartbeat_setting_is_checked() -> None:
    with pytest.raises(Exception, match="call_heartbeat_s"):
        ServerSettings(call_heartbeat_s=0)


# -- two server processes, one Redis ---------------------------------------------------------------------------


@pytest.fixture
def spawn(fake: FakeUpstream, clean_redis: str) -> Iterator[Callable[[], tuple[subprocess.Popen[bytes], str]]]:
    procs: list[subprocess.Popen[bytes]] = []
    root = Path(__file__).resolve().parents[2]

    def start() -> tuple[subprocess.Popen[bytes], str]:
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.server.multi_instance_server", "--port", str(port),
             "--upstream", f"{fake.base_url}/v1", "--redis", clean_redis],
            cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
        )  # fmt: skip
        procs.append(proc)
        return proc, f"http://127.0.0.1:{port}"

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def listening(proc: subprocess.Popen[bytes], base: str) -> None:
    host, port = base.removeprefix("http://").split(":")

    def up() -> bool:
        assert proc.poll() is None, "the server process exited"
        try:
            socket.create_connection((host, int(port)), timeout=0.2).close()
        except OSError:
            return False
        return True

    await eventually(up, f"{base} listens", timeout=60)


async def test_two_server_processes_share_calls_through_one_redis(
    fake: FakeUpstream, spawn: Callable[[], tuple[subprocess.Popen[bytes], str]]
) -> None:
    (proc_a, url_a), (proc_b, url_b) = spawn(), spawn()
    await listening(proc_a, url_a)
    await listening(proc_b, url_b)
    async with httpx.AsyncClient(base_url=url_a, timeout=10) as a, httpx.AsyncClient(base_url=url_b, timeout=10) as b:
        # A call made on A is hung up through B.
        resp = await call(a)
        assert resp.status_code == 201
        first = await connected(fake)
        path = resp.headers["location"]
        assert (await b.delete(path, headers=bob())).status_code == 404
        assert (await b.delete(path, headers=alice())).status_code == 204
        await asyncio.wait_for(first.closed.wait(), 10)
        assert fake.hangups[0] == first.call_id

        # Alice's one slot comes back once A has cleaned up; then A is killed while it runs her next call.
        async def new_call(client: httpx.AsyncClient) -> httpx.Response:
            while (resp := await call(client)).status_code == 429:  # noqa: ASYNC110 - A's state, another process
                await asyncio.sleep(0.05)  # A releases the slot when its sideband has closed
            return resp

        assert (await asyncio.wait_for(new_call(a), 20)).status_code == 201
        second = await connected(fake)
        proc_a.send_signal(signal.SIGKILL)
        proc_a.wait()
        assert (await call(b)).status_code == 429  # the dead instance's call still holds the slot, for now
        # B finds the call without a heartbeat, hangs it up and frees the slot.
        await eventually(lambda: second.call_id in fake.hangups, "B hangs up the dead instance's call")
        assert set(fake.hangups) == {first.call_id, second.call_id}
        resp = await call(b)
        assert resp.status_code == 201
        third = await connected(fake)
        assert (await b.delete(resp.headers["location"], headers=alice())).status_code == 204
        await asyncio.wait_for(third.closed.wait(), 10)
