"""The WebRTC microphone track is paced by the injected clock (one clock everywhere, issue 12 item 2): frames go
out every 20 ms of *that* clock, silence when nothing was fed; audio that is only late mid-stream is waited for,
never replaced by silence. Driven by a FakeClock: no sockets, no real time."""

from __future__ import annotations

import asyncio

from aoai_realtime.clock import FakeClock
from aoai_realtime.transport.webrtc import FRAME_BYTES, LATE_AUDIO_S, _OutgoingAudio

VOICE = b"\x01\x00" * (FRAME_BYTES // 2)  # 20 ms of fed audio
SILENCE = bytes(FRAME_BYTES)


def pcm(frame: object) -> bytes:
    return bytes(frame.planes[0])[:FRAME_BYTES]  # type: ignore[attr-defined]


async def test_frames_follow_the_injected_clock() -> None:
    clock = FakeClock()
    track = _OutgoingAudio(max_buffer_ms=1000, clock=clock)
    assert pcm(await track.recv()) == SILENCE  # idle: silence at once, nothing awaited
    track.feed(VOICE * 2)
    second = asyncio.ensure_future(track.recv())
    await clock.advance(0.019)
    assert not second.done()  # not before 20 ms of the clock
    await clock.advance(0.001)
    assert second.done() and pcm(second.result()) == VOICE
    assert second.result().pts == FRAME_BYTES // 2
    third = asyncio.ensure_future(track.recv())
    await clock.advance(0.020)
    assert third.done() and pcm(third.result()) == VOICE
    track.stop()


async def test_audio_late_mid_stream_is_waited_for_not_replaced_by_silence() -> None:
    # A microphone (or pcm_source) on its own real-time schedule runs a little behind the track's whenever the
    # event loop is busy. Silence sent in place of its frame would land inside the user's words.
    clock = FakeClock()
    track = _OutgoingAudio(max_buffer_ms=1000, clock=clock)
    track.feed(VOICE)
    assert pcm(await track.recv()) == VOICE
    late = asyncio.ensure_future(track.recv())
    await clock.advance(0.020 + LATE_AUDIO_S / 2)
    assert not late.done()  # due, but the stream's next audio has not come yet
    track.feed(VOICE[: FRAME_BYTES // 2])
    await clock.settle()
    assert not late.done()  # half a frame: still waiting for the rest
    track.feed(VOICE[FRAME_BYTES // 2 :])
    await clock.settle()
    assert late.done() and pcm(late.result()) == VOICE
    # The stream has ended: after LATE_AUDIO_S the track fills with silence, then goes on without waiting.
    ended = asyncio.ensure_future(track.recv())
    await clock.advance(LATE_AUDIO_S - 0.001)
    assert not ended.done()
    await clock.advance(0.002)
    assert ended.done() and pcm(ended.result()) == SILENCE
    idle = asyncio.ensure_future(track.recv())
    await clock.settle()
    assert idle.done() and pcm(idle.result()) == SILENCE  # behind its absolute schedule: catches up at once
    track.stop()
