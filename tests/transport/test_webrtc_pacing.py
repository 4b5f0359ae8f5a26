"""The WebRTC microphone track is paced by the injected clock (one clock everywhere, issue 12 item 2): frames go
out every 20 ms of *that* clock, silence when nothing was fed. Driven by a FakeClock: no sockets, no real time."""

from __future__ import annotations

import asyncio

from aoai_realtime.clock import FakeClock
from aoai_realtime.transport.webrtc import FRAME_BYTES, _OutgoingAudio


async def test_frames_follow_the_injected_clock() -> None:
    clock = FakeClock()
    track = _OutgoingAudio(max_buffer_ms=1000, clock=clock)
    track.feed(b"\x01\x00" * (FRAME_BYTES // 2))
    first = await track.recv()  # the first frame goes at once
    assert bytes(first.planes[0])[:FRAME_BYTES] == b"\x01\x00" * (FRAME_BYTES // 2)
    second = asyncio.ensure_future(track.recv())
    await clock.advance(0.019)
    assert not second.done()  # not before 20 ms of the clock
    await clock.advance(0.001)
    assert second.done()
    frame = second.result()
    assert frame.pts == FRAME_BYTES // 2
    assert bytes(frame.planes[0])[:FRAME_BYTES] == bytes(FRAME_BYTES)  # nothing fed: silence
    track.stop()
