"""WebRTC calls and the HTTP routes against what real clients and attackers send (issue 13 items 1, 7, 9, 11
of the HTTP side), over 127.0.0.1 with aiortc as the browser: a data-channel-only offer is a text call; an
ephemeral secret joins or hangs up no call but its own; hostile bodies get 400, never 500."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import websockets

from aoai_realtime.engine import Engine, EngineConfig, Say, ScriptedBrain
from aoai_realtime.testing.engine import load_test_speech, serve_engine

pytestmark = pytest.mark.integration

KEY = "calls-key"


@pytest.fixture
async def engine_url() -> AsyncIterator[str]:
    engine = Engine(EngineConfig(api_key=KEY, brain=lambda: ScriptedBrain([[Say("Hello by text.")]]),
                                 speech=load_test_speech("fake")))  # fmt: skip
    async with serve_engine(engine) as url:
        yield url


async def mint(url: str, session: dict[str, Any] | None = None) -> str:
    async with aiohttp.ClientSession() as http:
        body = {"session": session or {"type": "realtime"}}
        async with http.post(url + "/v1/realtime/client_secrets", json=body, headers={"api-key": KEY}) as r:
            assert r.status == 200
            return str((await r.json())["value"])


@dataclass
class Call:
    """A browser-like peer: an aiortc connection with only a data channel (the seed SDK's TextChat)."""

    pc: Any
    channel: Any
    call_id: str
    inbox: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)

    async def until(self, kind: str) -> list[dict[str, Any]]:
        got = []
        while True:
            event = await asyncio.wait_for(self.inbox.get(), 20)
            got.append(event)
            if event["type"] == kind:
                return got

    def send(self, event: dict[str, Any]) -> None:
        self.channel.send(json.dumps(event))


@contextlib.asynccontextmanager
async def data_channel_call(url: str, token: str, *, query: str = "") -> AsyncIterator[Call]:
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    from aoai_realtime.transport._ice import loopback_only

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        channel = pc.createDataChannel("oai-events")
        opened = asyncio.Event()
        channel.on("open", opened.set)
        with loopback_only():
            await pc.setLocalDescription(await pc.createOffer())
        assert "m=audio" not in pc.localDescription.sdp
        async with aiohttp.ClientSession() as http:
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/sdp"}
            async with http.post(url + "/v1/realtime/calls" + query, data=pc.localDescription.sdp,
                                 headers=headers) as r:  # fmt: skip
                assert r.status == 201, await r.text()
                answer, location = await r.text(), r.headers["Location"]
        assert "m=audio" not in answer
        call = Call(pc, channel, location.rsplit("/", 1)[-1])
        channel.on("message", lambda m: call.inbox.put_nowait(json.loads(m)))
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        await asyncio.wait_for(opened.wait(), 20)
        yield call
    finally:
        await pc.close()


# -- item 1: a data channel and no audio m-line ---------------------------------------------------------------


async def test_a_data_channel_only_offer_is_a_text_call(engine_url: str) -> None:
    token = await mint(engine_url)
    async with data_channel_call(engine_url, token) as call:
        (created,) = await call.until("session.created")
        assert created["session"]["output_modalities"] == ["text"]
        call.send({"type": "conversation.item.create",
                   "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}})
        call.send({"type": "response.create"})
        events = await call.until("response.done")
        kinds = [e["type"] for e in events]
        assert "response.output_audio.delta" not in kinds and "output_audio_buffer.started" not in kinds
        assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == "Hello by text."
        assert events[-1]["response"]["status"] == "completed"


# -- item 7: the sideband and hangup are not for any ephemeral secret ---------------------------------------------


async def test_an_ephemeral_secret_cannot_join_or_hang_up_another_call(engine_url: str) -> None:
    owner, stranger = await mint(engine_url), await mint(engine_url)
    async with data_channel_call(engine_url, owner) as call:
        await call.until("session.created")
        side = engine_url.replace("http://", "ws://") + f"/v1/realtime?call_id={call.call_id}"
        for token in (owner, stranger):
            with pytest.raises(websockets.InvalidStatus) as info:
                async with websockets.connect(side, additional_headers={"Authorization": f"Bearer {token}"}):
                    pass
            assert info.value.response.status_code == 404
            assert b"API key" in info.value.response.body
        async with websockets.connect(side, additional_headers={"Authorization": f"Bearer {KEY}"}) as ws:
            call.send({"type": "session.update", "session": {"type": "realtime", "instructions": "x"}})
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "session.updated"
        hangup = engine_url + f"/v1/realtime/calls/{call.call_id}/hangup"
        async with aiohttp.ClientSession() as http:
            async with http.post(hangup, headers={"Authorization": f"Bearer {stranger}"}) as r:
                assert r.status == 404
            async with http.post(hangup, headers={"Authorization": f"Bearer {owner}"}) as r:
                assert r.status == 200


# -- item 9: 400 where the service answers 400 -----------------------------------------------------------------


async def test_hostile_bodies_get_400_with_the_service_error_json(engine_url: str) -> None:
    from aiortc import RTCPeerConnection

    pc = RTCPeerConnection()
    pc.createDataChannel("oai-events")
    await pc.setLocalDescription(await pc.createOffer())
    offer = pc.localDescription.sdp
    await pc.close()
    token = await mint(engine_url)
    no_ice = "\r\n".join(line for line in offer.split("\r\n") if not line.startswith("a=ice-"))
    bad_port = offer.replace("m=application", "m=audio x RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\nm=application")
    sdp = {"Content-Type": "application/sdp"}
    cases: list[tuple[str, dict[str, str], Any]] = [
        ("/v1/realtime/client_secrets", {"Content-Type": "application/json"},
         '{"session": ' + "[" * 50_000 + "]" * 50_000 + "}"),
        ("/v1/realtime/calls", sdp, bad_port),
        ("/v1/realtime/calls", sdp, no_ice),
        ("/v1/realtime/calls", sdp, "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"),
    ]  # fmt: skip
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
        for path, headers, body in cases:
            async with http.post(engine_url + path, data=body, headers={**headers, "api-key": KEY}) as r:
                assert r.status == 400, (path, await r.text())
                assert set((await r.json())["error"]) == {"message", "type", "param", "code"}
        for credential in (KEY, token):  # with a secret, its session is merged with the part: still a 400
            form = aiohttp.FormData()
            form.add_field("sdp", offer, content_type="application/sdp")
            form.add_field("session", "[1,2]", content_type="application/json")
            async with http.post(engine_url + "/v1/realtime/calls", data=form,
                                 headers={"Authorization": f"Bearer {credential}"}) as r:  # fmt: skip
                error = (await r.json())["error"]
                assert r.status == 400 and (error["code"], error["param"]) == ("invalid_type", "session")
    ws_url = engine_url.replace("http://", "ws://") + "/v1/realtime?intent=transcription"
    with pytest.raises(websockets.InvalidStatus) as info:
        async with websockets.connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"}):
            pass
    assert info.value.response.status_code == 400
    assert json.loads(info.value.response.body)["error"]["param"] == "intent"
