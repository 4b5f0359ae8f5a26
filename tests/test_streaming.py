from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from aoai_realtime.errors import Busy, ConfigError, SessionExpired
from aoai_realtime.protocol import events as ev
from aoai_realtime.streaming import Channel, assistant_sse, client_audio, client_events, sse_frame, sse_frames
from aoai_realtime.testing.virtual_time import run_virtual


async def test_channel_ends_cleanly_after_what_is_queued() -> None:
    channel: Channel[int] = Channel(4)
    for i in range(3):
        await channel.send(i)
    channel.close()
    await channel.send(99)  # after close: dropped quietly
    assert [i async for i in channel] == [0, 1, 2]
    assert channel.statistics().closed


async def test_channel_raises_the_producers_error_to_the_consumer_after_queued_items() -> None:
    channel: Channel[int] = Channel(4)
    channel.send_nowait(1)
    channel.fail(SessionExpired("over", code=1001))
    assert await channel.receive() == 1
    with pytest.raises(SessionExpired):
        await channel.receive()


async def test_channel_overflow_policies() -> None:
    dropping: Channel[int] = Channel(2, overflow="drop_oldest")
    for i in range(5):
        dropping.send_nowait(i)
    assert dropping.statistics().dropped == 3
    dropping.close()
    assert [i async for i in dropping] == [3, 4]
    strict: Channel[int] = Channel(1, overflow="error")
    strict.send_nowait(1)
    with pytest.raises(Busy):
        strict.send_nowait(2)
    with pytest.raises(ConfigError):
        Channel(0)


async def test_blocking_send_waits_for_room() -> None:
    channel: Channel[int] = Channel(1)
    await channel.send(1)
    sender = asyncio.create_task(channel.send(2))
    await asyncio.sleep(0)
    assert not sender.done()  # bounded: the producer waits
    assert await channel.receive() == 1
    await sender
    assert await channel.receive() == 2


def test_sse_frame_format_and_multiline_data() -> None:
    assert sse_frame("state", {"state": "listening"}) == b'event: state\ndata: {"state":"listening"}\n\n'
    assert sse_frame("note", "a\nb", event_id="7") == b"event: note\nid: 7\ndata: a\ndata: b\n\n"


def test_sse_frames_heartbeat_and_error_end() -> None:
    async def source() -> AsyncIterator[tuple[str, Any]]:
        yield ("state", {"state": "thinking"})
        await asyncio.sleep(40)  # silence: heartbeats keep the connection alive
        yield ("transcript", [])
        raise RuntimeError("session lost")

    async def scenario() -> list[bytes]:
        return [f async for f in sse_frames(source(), heartbeat=15.0)]

    frames = run_virtual(scenario())
    assert frames[0] == b"retry: 2000\n\n"
    assert frames[1].startswith(b"event: state")
    assert frames[2:4] == [b": ping\n\n", b": ping\n\n"]
    assert frames[4].startswith(b"event: transcript")
    assert frames[5].startswith(b"event: error") and b"session lost" in frames[5]
    assert len(frames) == 6


class FakeClient:
    def __init__(self, events: list[Any], error: BaseException | None = None) -> None:
        self._events = events
        self._error = error

    async def events(self) -> AsyncIterator[Any]:
        for event in self._events:
            yield event
        if self._error is not None:
            raise self._error


class E:
    def __init__(self, type: str) -> None:
        self.type = type


async def test_client_events_filters_and_raises() -> None:
    client = FakeClient([E("a"), E("b"), E("a")], SessionExpired("x", code=1001))
    seen: list[str] = []

    async def consume() -> None:
        async for event in client_events(client, types={"a"}):
            seen.append(event.type)

    with pytest.raises(SessionExpired):
        await consume()
    assert seen == ["a", "a"]


async def test_client_audio_decodes_the_assistant_audio_in_order() -> None:
    def delta(item: str, pcm: bytes) -> ev.ResponseAudioDeltaEvent:
        import base64

        return ev.ResponseAudioDeltaEvent(response_id="r", item_id=item, output_index=0, content_index=0,
                                          delta=base64.b64encode(pcm).decode())

    client = FakeClient([delta("a", b"\x01\x00"), E("response.done"), delta("b", b"\x02\x00\x03\x00")])
    assert [chunk async for chunk in client_audio(client)] == [("a", b"\x01\x00"), ("b", b"\x02\x00\x03\x00")]


def test_assistant_sse_relays_state_and_transcript_until_close() -> None:
    harness = pytest.importorskip("aoai_realtime.testing.engine")
    from aoai_realtime.agents import VoiceAssistant
    from aoai_realtime.audio import PacedPlayer
    from aoai_realtime.client import RealtimeClient
    from aoai_realtime.engine.brain.base import Say
    from aoai_realtime.engine.brain.scripted import ScriptedBrain

    async def scenario() -> list[bytes]:
        loop = asyncio.get_running_loop()
        async with harness.EngineHarness(brain=ScriptedBrain([[Say("Hi there.")]])) as h:
            assistant = VoiceAssistant(RealtimeClient(h.connect()), clock=loop.time,
                                       player=PacedPlayer(clock=loop.time))
            await assistant.start()
            frames: list[bytes] = []

            async def relay() -> None:
                async for frame in assistant_sse(assistant, heartbeat=None):
                    frames.append(frame)

            task = asyncio.create_task(relay())
            await asyncio.sleep(0)
            await assistant.send_text("hello")
            await assistant.wait_until_idle(10)
            await assistant.close()
            await task  # the stream ends when the assistant closes
            return frames

    frames = run_virtual(scenario())
    events = [f.split(b"\n")[0].decode() for f in frames[1:]]
    states = [json.loads(f.split(b"data: ")[1])["state"] for f in frames[1:] if f.startswith(b"event: state")]
    assert states[:1] == ["listening"] and "speaking" in states and states[-1] == "idle"
    last_transcript = [f for f in frames if f.startswith(b"event: transcript")][-1]
    assert json.loads(last_transcript.split(b"data: ")[1])[-1]["text"] == "Hi there."
    assert "event: turn" in events
