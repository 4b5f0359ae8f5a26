"""RealtimeClient against the local engine over real sockets on 127.0.0.1: WebSocket (GA and preview paths)
and WebRTC (SDP through /realtime/calls, data channel, audio track). Speech is the model-free bundle: tone TTS,
whose audio the tone STT reads back exactly."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from aoai_realtime.auth import ApiKey
from aoai_realtime.client import RealtimeClient, Reconnected, ReconnectPolicy
from aoai_realtime.endpoints import Endpoint
from aoai_realtime.engine import Engine, EngineConfig, RulesBrain
from aoai_realtime.engine.speech import ToneTts
from aoai_realtime.errors import AuthenticationError, ConnectError, ServerError, SessionExpired
from aoai_realtime.protocol import events as ev
from aoai_realtime.protocol.session import ServerVad, SessionConfig, Transcription
from aoai_realtime.testing.engine import load_test_speech, serve_engine
from aoai_realtime.transport.webrtc import WebRTCTransport
from aoai_realtime.transport.websocket import WebSocketTransport

pytestmark = pytest.mark.integration

KEY = "engine-test-key"
TOOLS = [{"name": "lookup", "description": "Mandatory for every question: look the answer up.",
          "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}]


@pytest.fixture
async def engine_url() -> AsyncIterator[str]:
    engine = Engine(EngineConfig(api_key=KEY, brain=RulesBrain, speech=load_test_speech("fake")))
    async with serve_engine(engine) as url:
        yield url


def _ws(url: str) -> WebSocketTransport:
    return WebSocketTransport(Endpoint.local(f"{url}/v1"), ApiKey(KEY, style="bearer"))


async def _until_done(client: RealtimeClient, stream: AsyncIterator[Any]) -> list[Any]:
    seen = []
    async for event in stream:
        seen.append(event)
        if isinstance(event, ev.ResponseDoneEvent):
            return seen
    raise AssertionError("events ended before response.done")


async def test_websocket_text_tool_and_audio_turns(engine_url: str) -> None:
    session = SessionConfig(instructions="Be brief.", tools=TOOLS, transcription=Transcription(),
                            turn_detection=ServerVad(silence_duration_ms=300))
    async with RealtimeClient(_ws(engine_url), session=session) as client:
        assert client.session["tools"][0]["name"] == "lookup"
        stream = client.events()
        # a text turn
        await client.send_text("Hello there.")
        text_turn = await _until_done(client, stream)
        assert any(isinstance(e, ev.ResponseAudioDeltaEvent) for e in text_turn)
        # a tool turn: a question makes the rules brain call the mandatory tool
        await client.send_text("Where is the nearest station?")
        tool_turn = await _until_done(client, stream)
        call = next(e for e in tool_turn if isinstance(e, ev.ResponseFunctionCallArgumentsDoneEvent))
        assert call.name == "lookup"
        await client.create_item(ev.Item(type="function_call_output", call_id=call.call_id,
                                         output='{"answer": "two blocks north"}'))
        await client.create_response()
        spoken = await _until_done(client, stream)
        transcript = next(e for e in spoken if isinstance(e, ev.ResponseAudioTranscriptDoneEvent)).transcript
        assert "two blocks north" in transcript
        # an audio turn: speech in, turn detection, transcription, a reply
        pcm, _ = ToneTts().synthesize_with_timings("Good morning to you")
        for i in range(0, len(pcm) + 48000, 4800):
            await client.append_audio((pcm + bytes(48000))[i : i + 4800])
        audio_turn = await _until_done(client, stream)
        assert any(isinstance(e, ev.InputAudioBufferSpeechStoppedEvent) for e in audio_turn)
        user_items = [i for i in client.conversation.ordered_items() if i.role == "user"]
        assert len(user_items) == 3
        # conversation state tracked the assistant audio of every item
        assistant = [i for i in client.conversation.ordered_items() if i.role == "assistant"]
        assert all(i.audio_ms > 0 for i in assistant)


async def test_preview_path_speaks_beta_and_arrives_as_ga(engine_url: str) -> None:
    endpoint = Endpoint.azure_preview(endpoint=engine_url, deployment="gpt-realtime")
    transport = WebSocketTransport(endpoint, ApiKey(KEY))
    session = SessionConfig(instructions="Be brief.", voice="alloy", output_modalities=["text"])
    async with RealtimeClient(transport, session=session) as client:
        assert client.session.get("modalities") == ["text"]  # the flat preview shape was accepted
        stream = client.events()
        await client.send_text("Hello there.")
        turn = await _until_done(client, stream)
        assert any(isinstance(e, ev.ResponseTextDoneEvent) for e in turn)  # beta response.text.done -> GA type


async def test_rejected_session_field_is_a_server_error_naming_it(engine_url: str) -> None:
    client = RealtimeClient(_ws(engine_url), session={"type": "realtime", "voice": "alloy"})  # beta place
    with pytest.raises(ServerError) as info:
        await client.connect()
    assert info.value.param == "session.voice"


async def test_wrong_key_is_refused(engine_url: str) -> None:
    transport = WebSocketTransport(Endpoint.local(f"{engine_url}/v1"), ApiKey("not-the-key", style="bearer"))
    with pytest.raises(AuthenticationError):
        await RealtimeClient(transport).connect()


async def test_session_expiry_surfaces_as_session_expired() -> None:
    engine = Engine(EngineConfig(api_key=KEY, brain=RulesBrain, speech=load_test_speech("fake"), max_session_s=0.5))
    async with serve_engine(engine) as url, RealtimeClient(_ws(url)) as client:
        errors: list[str] = []

        async def consume() -> None:
            async for event in client.events():
                if isinstance(event, ev.RealtimeErrorEvent):
                    errors.append(str(event.error.code))

        with pytest.raises(SessionExpired):
            await consume()
        assert errors == ["session_expired"]


async def test_webrtc_call_events_on_the_data_channel_and_audio_on_the_track(engine_url: str) -> None:
    transport = WebRTCTransport(Endpoint.local(f"{engine_url}/v1"), ApiKey(KEY, style="bearer"),
                                session={"type": "realtime", "instructions": "Be brief."},
                                ice_addresses=["127.0.0.1"])
    async with RealtimeClient(transport) as client:
        assert transport.call_id is not None
        assert transport.call_id.startswith("rtc_")
        assert client.session.get("instructions") == "Be brief."
        audio = transport.audio
        assert audio is not None
        heard = audio.received_audio()
        stream = client.events()
        await client.send_text("Hello there.")
        seen: list[str] = []
        async for event in stream:
            seen.append(event.type)
            assert not isinstance(event, ev.ResponseAudioDeltaEvent)  # audio travels on the track
            if isinstance(event, ev.OutputAudioBufferStopped):
                break
        assert "output_audio_buffer.started" in seen
        assert "response.done" in seen
        peak = 0
        got = 0
        async for pcm in heard:
            got += len(pcm)
            if pcm:
                peak = max(peak, max(abs(v) for (v,) in struct.iter_unpack("<h", pcm)))
            if peak > 1000 or got > 24000 * 2 * 5:
                break
        assert peak > 1000  # the reply's tones arrived as audio


async def test_webrtc_call_hung_up_by_the_server_reconnects_with_a_new_call(engine_url: str) -> None:
    # The client's reconnect loop is transport-agnostic: over WebRTC "connect again" means a new SDP offer, a new
    # call id and a new data channel, and the session config must be sent again on the new call.
    async def no_wait(_: float) -> None:
        return None

    transport = WebRTCTransport(Endpoint.local(f"{engine_url}/v1"), ApiKey(KEY, style="bearer"),
                                ice_addresses=["127.0.0.1"])
    session = SessionConfig(instructions="Keep me.")
    client = RealtimeClient(transport, session=session, sleep=no_wait, reconnect=ReconnectPolicy(max_attempts=3))
    async with client:
        first_call = transport.call_id
        assert first_call is not None and client.session.get("instructions") == "Keep me."
        stream = client.events()
        hangup = f"{engine_url}/v1/realtime/calls/{first_call}/hangup"
        async with aiohttp.ClientSession() as http, http.post(hangup, headers={"Authorization": f"Bearer {KEY}"}) as r:
            assert r.status == 200
        event = await anext(stream)
        while not isinstance(event, Reconnected):
            event = await anext(stream)
        assert transport.call_id is not None and transport.call_id != first_call
        assert client.session.get("instructions") == "Keep me."  # re-sent and applied before Reconnected
        # The new call works: a text turn, its audio on the new track.
        await client.send_text("Hello again.")
        done = await client.wait_for("response.done", timeout=20)
        assert done.response.status == "completed"


async def test_a_transcription_session_transcribes_each_turn_and_never_answers(engine_url: str) -> None:
    transport = WebSocketTransport(Endpoint.local(f"{engine_url}/v1"), ApiKey(KEY, style="bearer"),
                                   intent="transcription")
    session = {"type": "transcription", "audio": {"input": {"transcription": {"model": "whisper-1"},
                                                            "turn_detection": {"type": "server_vad",
                                                                               "silence_duration_ms": 300}}}}
    async with RealtimeClient(transport, session=session) as client:
        assert client.session["type"] == "transcription"
        stream = client.events()
        heard: list[str] = []
        for words in ("book a table", "for two at seven"):
            pcm, _ = ToneTts().synthesize_with_timings(words)
            await client.append_audio(bytes(4800) + pcm + bytes(24000))
            async for event in stream:
                assert not event.type.startswith("response.")
                if isinstance(event, ev.ConversationItemInputAudioTranscriptionCompletedEvent):
                    heard.append(event.transcript)
                    break
        assert heard == ["book a table", "for two at seven"]
        assert [i.transcript for i in client.conversation.ordered_items()] == heard


async def test_the_engine_over_tls_with_its_self_signed_certificate(tmp_path: Path) -> None:
    # Clients that insist on wss:// (the npm SDK) need the engine behind TLS: trusted with the certificate it was
    # given, refused by default trust (the handshake fails cleanly, naming the certificate problem).
    from aoai_realtime.testing.tls import client_context, self_signed

    cert, key = self_signed(tmp_path)
    engine = Engine(EngineConfig(api_key=KEY, brain=RulesBrain, speech=load_test_speech("fake")))
    async with serve_engine(engine, tls=(cert, key)) as url:
        assert url.startswith("https://127.0.0.1:")
        trusted = WebSocketTransport(Endpoint.local(f"{url}/v1"), ApiKey(KEY, style="bearer"),
                                     ssl_context=client_context(cert))
        async with RealtimeClient(trusted) as client:
            await client.send_text("Hello over TLS.")
            done = await client.wait_for("response.done", timeout=20)
            assert done.response.status == "completed"
        untrusted = WebSocketTransport(Endpoint.local(f"{url}/v1"), ApiKey(KEY, style="bearer"))
        with pytest.raises(ConnectError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            await RealtimeClient(untrusted).connect()
        # WebRTC: the token and the SDP offer go over https with the same trust.
        rtc = WebRTCTransport(Endpoint.local(f"{url}/v1"), ApiKey(KEY, style="bearer"), ice_addresses=["127.0.0.1"],
                              ssl_context=client_context(cert))
        async with RealtimeClient(rtc) as client:
            assert rtc.call_id is not None and rtc.call_id.startswith("rtc_")


async def test_a_transcription_session_on_the_preview_path_is_refused_clearly(engine_url: str) -> None:
    import websockets

    ws_url = engine_url.replace("http://", "ws://") + "/openai/realtime?api-version=2025-04-01-preview&deployment=d"
    with pytest.raises(websockets.exceptions.InvalidStatus) as info:
        async with websockets.connect(ws_url + "&intent=transcription", additional_headers={"api-key": KEY}):
            pass
    assert info.value.response.status_code == 400
    assert b"GA interface only" in info.value.response.body
