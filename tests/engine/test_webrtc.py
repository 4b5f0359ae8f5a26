"""WebRTC calls against the engine over 127.0.0.1 (aiortc both sides; our WebRTCTransport as the client).

Checks reference 4.8: events on the data channel, audio only on the media track (no audio deltas on the
channel), output_audio_buffer.started/stopped/cleared, automatic truncation at an interruption, the sideband
WebSocket (?call_id=), and the calls route's answers.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import numpy as np
import pytest
import websockets

from aoai_realtime.auth import ApiKey
from aoai_realtime.client import RealtimeClient
from aoai_realtime.endpoints import Endpoint
from aoai_realtime.engine import Engine, EngineConfig, Say, ScriptedBrain
from aoai_realtime.protocol import events as ev
from aoai_realtime.testing.audio import silence
from aoai_realtime.testing.engine import load_test_speech, serve_engine
from aoai_realtime.transport.webrtc import WebRTCTransport

pytestmark = pytest.mark.integration

KEY = "rtc-key"
LONG = "This reply is long on purpose, so that it is still playing when the caller starts to talk over it."


@pytest.fixture
async def engine_url() -> AsyncIterator[str]:
    brain = ScriptedBrain([[Say("Hello over WebRTC.")], [Say(LONG)], [Say("Okay.")]])
    engine = Engine(EngineConfig(api_key=KEY, brain=lambda: brain, speech=load_test_speech("fake")))
    async with serve_engine(engine) as url:
        yield url


def transport(url: str) -> WebRTCTransport:
    return WebRTCTransport(Endpoint.local(url + "/v1"), ApiKey(KEY), ice_addresses=["127.0.0.1"])


async def collect_until(client: RealtimeClient, seen: list[Any], kind: str, count: int = 1) -> None:
    done = asyncio.Event()

    def on_event(event: Any) -> None:
        seen.append(event)
        if sum(1 for e in seen if e.type == kind) >= count:
            done.set()

    client.on("*", on_event)
    try:
        await asyncio.wait_for(done.wait(), 20)
    finally:
        client.off("*", on_event)


async def test_webrtc_call_text_turn_audio_on_the_track_and_sideband(engine_url: str) -> None:
    t = transport(engine_url)
    async with RealtimeClient(t, reconnect=None) as client:
        assert t.call_id is not None and t.call_id.startswith("rtc_")
        assert t.audio is not None
        heard = bytearray()

        async def listen() -> None:
            assert t.audio is not None
            async for pcm in t.audio.received_audio():
                heard.extend(pcm)

        listener = asyncio.create_task(listen())
        ws_url = engine_url.replace("http://", "ws://") + f"/v1/realtime?call_id={t.call_id}"
        async with websockets.connect(ws_url, additional_headers={"Authorization": f"Bearer {KEY}"}) as side:
            seen: list[Any] = []
            waiter = asyncio.create_task(collect_until(client, seen, "output_audio_buffer.stopped"))
            await asyncio.sleep(0)
            await client.send_text("hello")
            await waiter
            kinds = [e.type for e in seen]
            assert "response.output_audio.delta" not in kinds  # audio goes on the track only
            assert kinds.index("output_audio_buffer.started") < kinds.index("response.done")
            assert kinds.index("response.done") < kinds.index("output_audio_buffer.stopped")
            done = next(e for e in seen if isinstance(e, ev.ResponseDoneEvent))
            assert done.response.output[0].transcript == "Hello over WebRTC."  # type: ignore[index]
            from openai.types.realtime import RealtimeServerEvent
            from pydantic import TypeAdapter

            from aoai_realtime.protocol import encode

            adapter: TypeAdapter[Any] = TypeAdapter(RealtimeServerEvent)
            for event in seen:  # WebRTC-only events included: all valid for the official models
                adapter.validate_json(encode(event))
            # the sideband socket saw the same response
            side_kinds = []
            while "response.done" not in side_kinds:
                side_kinds.append(json.loads(await asyncio.wait_for(side.recv(), 10))["type"])
            assert "response.created" in side_kinds
        listener.cancel()
        samples = np.frombuffer(bytes(heard), dtype="<i2")
        assert samples.size > 24000 * 0.3 and int(np.abs(samples).max()) > 1000  # real audio came through


async def test_webrtc_interruption_clears_and_truncates_to_what_was_played(engine_url: str) -> None:
    t = transport(engine_url)
    async with RealtimeClient(t, reconnect=None) as client:
        assert t.audio is not None
        seen: list[Any] = []
        await client.send_text("first")
        await client.wait_for("output_audio_buffer.stopped", timeout=20)
        waiter = asyncio.create_task(collect_until(client, seen, "output_audio_buffer.cleared"))
        await client.send_text("second")  # the long reply
        await client.wait_for("output_audio_buffer.started", timeout=20)
        # talk over it: tone speech from the engine's own tone TTS, then silence
        tts = load_test_speech("fake").tts
        assert tts is not None
        speech = b"".join(tts.synthesize("stop please"))
        for pcm in (speech, silence(600)):
            await t.audio.send_audio(pcm)
        await waiter
        kinds = [e.type for e in seen]
        assert "input_audio_buffer.speech_started" in kinds
        truncated = next(e for e in seen if isinstance(e, ev.ConversationItemTruncatedEvent))
        entry_ms = len(LONG.split()) * 200  # far longer than what could have played by now
        assert 0 < truncated.audio_end_ms < entry_ms
        assert kinds.index("conversation.item.truncated") < kinds.index("output_audio_buffer.cleared")


async def test_calls_route_refuses_bad_tokens_and_bodies(engine_url: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(engine_url + "/v1/realtime/calls", data=b"v=0\r\n",
                             headers={"Authorization": "Bearer ek_nope", "Content-Type": "application/sdp"}) as r:
            assert r.status == 401
            assert (await r.json())["error"]["code"] == "invalid_api_key"
        async with http.post(engine_url + "/openai/v1/realtime/calls", data=b"hello",
                             headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/sdp"}) as r:
            assert r.status == 400
        async with http.post(engine_url + "/v1/realtime/client_secrets", json={"expires_after": {"seconds": 5}},
                             headers={"api-key": KEY}) as r:
            body = await r.json()
            assert r.status == 400 and body["error"]["param"] == "expires_after.seconds"
        async with http.post(engine_url + "/openai/v1/realtime/client_secrets", json={"session": {"instructions": "x"}},
                             headers={"api-key": KEY}) as r:
            body = await r.json()
            assert r.status == 400 and body["error"]["code"] == "missing_required_parameter"
    ws_url = engine_url.replace("http://", "ws://") + "/v1/realtime?call_id=rtc_unknown"
    with pytest.raises(websockets.InvalidStatus) as info:
        async with websockets.connect(ws_url, additional_headers={"Authorization": f"Bearer {KEY}"}):
            pass
    assert info.value.response.status_code == 404


async def test_multipart_offer_loopback_candidates_and_hangup(engine_url: str) -> None:
    from aiortc import RTCConfiguration, RTCPeerConnection

    from aoai_realtime.transport._ice import loopback_only

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.createDataChannel("realtime-channel")  # Azure's samples' label: any label works
        pc.addTransceiver("audio")
        with loopback_only():
            await pc.setLocalDescription(await pc.createOffer())
        form = aiohttp.FormData()
        form.add_field("sdp", pc.localDescription.sdp, content_type="application/sdp")
        form.add_field("session", json.dumps({"type": "realtime", "instructions": "From the form."}),
                       content_type="application/json")
        async with aiohttp.ClientSession() as http:
            async with http.post(engine_url + "/v1/realtime/calls", data=form,
                                 headers={"Authorization": f"Bearer {KEY}"}) as r:
                assert r.status == 201 and r.content_type == "application/sdp"
                location = r.headers["Location"]
                answer = await r.text()
            call_id = location.rsplit("/", 1)[-1]
            assert location == f"/v1/realtime/calls/{call_id}" and call_id.startswith("rtc_")
            candidates = [line for line in answer.splitlines() if line.startswith("a=candidate")]
            assert candidates and all(" 127.0.0.1 " in c for c in candidates)
            async with http.post(engine_url + f"/v1/realtime/calls/{call_id}/hangup",
                                 headers={"Authorization": f"Bearer {KEY}"}) as r:
                assert r.status == 200
            async with http.post(engine_url + f"/v1/realtime/calls/{call_id}/hangup",
                                 headers={"Authorization": f"Bearer {KEY}"}) as r:
                assert r.status == 404
    finally:
        await pc.close()
