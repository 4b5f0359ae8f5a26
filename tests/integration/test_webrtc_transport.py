"""WebRTCTransport against a small aiortc answerer on 127.0.0.1: SDP over HTTP, data channel, audio both ways,
and a clean teardown when the call cannot be set up. Every ICE candidate is 127.0.0.1."""

from __future__ import annotations

import asyncio
import fractions
import json
import math
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from av import AudioFrame, AudioResampler

from aoai_realtime.auth import ApiKey
from aoai_realtime.client import RealtimeClient
from aoai_realtime.endpoints import Endpoint
from aoai_realtime.errors import AuthenticationError, ConnectError
from aoai_realtime.protocol import events as ev
from aoai_realtime.transport._ice import host_addresses
from aoai_realtime.transport.webrtc import WebRTCTransport

pytestmark = pytest.mark.integration

KEY = "0123456789abcdef0123456789abcdef"


class Tone(MediaStreamTrack):
    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.pts = 0

    async def recv(self) -> AudioFrame:
        await asyncio.sleep(0.02)
        samples = 960  # 20 ms at 48 kHz
        data = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * (self.pts + i) / 48000)))
                        for i in range(samples))
        frame = AudioFrame(format="s16", layout="mono", samples=samples)
        frame.planes[0].update(data)
        frame.pts, frame.sample_rate, frame.time_base = self.pts, 48000, fractions.Fraction(1, 48000)
        self.pts += samples
        return frame


class Answerer:
    def __init__(self, *, candidates: bool = True, calls_status: int = 201) -> None:
        self.candidates = candidates
        self.calls_status = calls_status
        self.peers: list[RTCPeerConnection] = []
        self.tokens_minted = 0
        self.session_bodies: list[Any] = []
        self.heard_peak = 0
        self.received_events: list[dict[str, Any]] = []
        self.tasks: set[asyncio.Future[None]] = set()

    async def client_secrets(self, request: web.Request) -> web.Response:
        if request.headers.get("api-key") != KEY:
            return web.json_response({"error": {"message": "bad key"}}, status=401)
        self.session_bodies.append(await request.json())
        self.tokens_minted += 1
        return web.json_response({"value": f"ek_test{self.tokens_minted}", "expires_at": 0, "session": {}})

    async def calls(self, request: web.Request) -> web.Response:
        if not request.headers.get("Authorization", "").startswith("Bearer ek_"):
            return web.Response(status=401)
        if self.calls_status != 201:
            return web.Response(status=self.calls_status, text="upstream exploded with api-key=SECRETSECRET")
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.peers.append(pc)

        @pc.on("datachannel")
        def on_channel(channel: Any) -> None:
            channel.send(json.dumps({"type": "session.created", "event_id": "e0", "session": {"type": "realtime"}}))

            @channel.on("message")
            def on_message(message: str) -> None:
                self.received_events.append(json.loads(message))
                channel.send(json.dumps({"type": "input_audio_buffer.cleared", "event_id": "e1"}))

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            async def listen() -> None:
                resampler = AudioResampler(format="s16", layout="mono", rate=24000)
                while True:
                    try:
                        frame = await track.recv()
                    except Exception:
                        return
                    for out in resampler.resample(frame):  # type: ignore[arg-type]
                        pcm = bytes(out.planes[0])[: out.samples * 2]
                        peak = max(abs(v) for (v,) in struct.iter_unpack("<h", pcm)) if pcm else 0
                        self.heard_peak = max(self.heard_peak, peak)

            task = asyncio.ensure_future(listen())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

        pc.addTrack(Tone())
        await pc.setRemoteDescription(RTCSessionDescription(sdp=await request.text(), type="offer"))
        answer = await pc.createAnswer()
        with host_addresses(["127.0.0.1"] if self.candidates else []):
            await pc.setLocalDescription(answer)
        return web.Response(status=201, text=pc.localDescription.sdp, content_type="application/sdp",
                            headers={"Location": "/v1/realtime/calls/rtc_test123"})

    async def close(self) -> None:
        for pc in self.peers:
            await pc.close()


async def _serve(answerer: Answerer) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.router.add_post("/v1/realtime/client_secrets", answerer.client_secrets)
    app.router.add_post("/v1/realtime/calls", answerer.calls)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port


@pytest.fixture
async def answerer() -> AsyncIterator[tuple[Answerer, int]]:
    a = Answerer()
    runner, port = await _serve(a)
    try:
        yield a, port
    finally:
        await a.close()
        await runner.cleanup()


async def test_call_setup_events_and_audio_both_ways(answerer: tuple[Answerer, int]) -> None:
    a, port = answerer
    transport = WebRTCTransport(Endpoint.local(f"http://127.0.0.1:{port}/v1"), ApiKey(KEY),
                                session={"type": "realtime", "instructions": "x"}, ice_addresses=["127.0.0.1"])
    async with RealtimeClient(transport) as client:
        assert transport.call_id == "rtc_test123"
        assert a.session_bodies == [{"session": {"type": "realtime", "instructions": "x"}}]
        await client.clear_audio()
        await client.wait_for(ev.InputAudioBufferClearedEvent, timeout=10)
        assert a.received_events[0]["type"] == "input_audio_buffer.clear"
        audio = transport.audio
        assert audio is not None
        # their tone reaches us as pcm16 24 kHz mono
        stream = audio.received_audio()
        got = b""
        while len(got) < 24000:  # 0.5 s
            got += await anext(stream)
        peak = max(abs(v) for (v,) in struct.iter_unpack("<h", got[12000:]))
        assert peak > 2000
        # our audio reaches them
        tone = b"".join(struct.pack("<h", int(9000 * math.sin(2 * math.pi * 300 * i / 24000))) for i in range(24000))
        await audio.send_audio(tone)
        for _ in range(200):
            if a.heard_peak > 2000:
                break
            await asyncio.sleep(0.02)
        assert a.heard_peak > 2000


async def test_upstream_failure_is_a_clear_error_without_secrets_and_nothing_stays_open() -> None:
    a = Answerer(calls_status=500)
    runner, port = await _serve(a)
    try:
        transport = WebRTCTransport(Endpoint.local(f"http://127.0.0.1:{port}/v1"), ApiKey(KEY),
                                    ice_addresses=["127.0.0.1"])
        with pytest.raises(ConnectError) as info:
            await RealtimeClient(transport).connect()
        assert "500" in str(info.value)
        assert "SECRETSECRET" not in str(info.value)
        assert transport._pc is None  # closed and dropped
    finally:
        await runner.cleanup()


async def test_bad_key_is_an_authentication_error() -> None:
    a = Answerer()
    runner, port = await _serve(a)
    try:
        transport = WebRTCTransport(Endpoint.local(f"http://127.0.0.1:{port}/v1"), ApiKey("f" * 32))
        with pytest.raises(AuthenticationError):
            await RealtimeClient(transport).connect()
    finally:
        await runner.cleanup()


async def test_a_data_channel_that_never_opens_times_out_and_closes_everything() -> None:
    a = Answerer(candidates=False)  # the answer offers no candidate: ICE cannot connect
    runner, port = await _serve(a)
    try:
        transport = WebRTCTransport(Endpoint.local(f"http://127.0.0.1:{port}/v1"), ApiKey(KEY), open_timeout=1.0,
                                    ice_addresses=["127.0.0.1"])
        with pytest.raises(ConnectError, match="data channel did not open"):
            await RealtimeClient(transport).connect()
        assert transport._pc is None
    finally:
        await a.close()
        await runner.cleanup()
