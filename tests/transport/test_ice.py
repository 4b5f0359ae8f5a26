"""The loopback ICE helper holds its addresses per task (issue 12 item 2): concurrent WebRTC set-ups in one process
cannot see each other's addresses."""

from __future__ import annotations

import asyncio

import aioice.ice
from aiortc import RTCConfiguration, RTCPeerConnection

from aoai_realtime.transport._ice import host_addresses, is_loopback, loopback_only


async def test_two_interleaved_set_ups_each_see_their_own_addresses() -> None:
    both_inside, both_gathered = asyncio.Barrier(2), asyncio.Barrier(2)

    async def set_up(addresses: list[str]) -> list[str]:
        with host_addresses(addresses):
            await both_inside.wait()  # the other set-up has entered its block too
            gathered = aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True)
            await both_gathered.wait()  # and neither leaves before both have gathered
        return gathered

    first, second = await asyncio.gather(set_up(["127.0.0.1"]), set_up([]))
    assert (first, second) == (["127.0.0.1"], [])
    with loopback_only():
        inside = aioice.ice.get_host_addresses(True, False)
    assert inside == ["127.0.0.1"]
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(True, False)  # outside: aioice's own choice is back


async def _gather_candidates(addresses: list[str]) -> set[str]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.createDataChannel("events")
        with host_addresses(addresses):
            await pc.setLocalDescription(await pc.createOffer())
        return {line.split()[4] for line in pc.localDescription.sdp.splitlines() if line.startswith("a=candidate:")}
    finally:
        await pc.close()


async def test_concurrent_aiortc_set_ups_in_one_process() -> None:
    loopback, none = await asyncio.gather(_gather_candidates(["127.0.0.1"]), _gather_candidates([]))
    assert loopback == {"127.0.0.1"}
    assert none == set()


def test_is_loopback() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.1.2.3", "::1", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "10.0.0.1", "example.com"]))
