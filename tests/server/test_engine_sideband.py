"""The server's sideband on a real WebRTC call of the local engine: it receives the events it needs to record the
call (the user's transcribed words, the assistant's answer) and hands them over once the call ends.

Integration: the engine serves on 127.0.0.1; the caller is our WebRTC client (aiortc) speaking tone speech."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aoai_realtime.auth import ApiKey
from aoai_realtime.client import RealtimeClient
from aoai_realtime.endpoints import Endpoint
from aoai_realtime.engine import Engine, EngineConfig, Say, ScriptedBrain
from aoai_realtime.protocol.session import ServerVad, SessionConfig, Transcription
from aoai_realtime.server import CallPolicy, ToolContext, ToolRegistry, UpstreamClient
from aoai_realtime.server.sideband import Sideband
from aoai_realtime.testing.audio import silence
from aoai_realtime.testing.engine import load_test_speech, serve_engine
from aoai_realtime.transport.webrtc import WebRTCTransport

pytestmark = pytest.mark.integration

KEY = "rtc-key"
WORDS = "remember the blue door"


async def test_sideband_records_the_users_words_and_the_answer() -> None:
    brain = ScriptedBrain([[Say("Noted, the blue door.")]])
    engine = Engine(EngineConfig(api_key=KEY, brain=lambda: brain, speech=load_test_speech("fake")))
    instructions = "You take notes."
    session = SessionConfig(instructions=instructions, transcription=Transcription(model="whisper-1"),
                            turn_detection=ServerVad(silence_duration_ms=300))
    async with serve_engine(engine) as url:
        endpoint = Endpoint.local(url + "/v1")
        upstream = UpstreamClient(endpoint, ApiKey(KEY))
        await upstream.start()
        t = WebRTCTransport(endpoint, ApiKey(KEY), ice_addresses=["127.0.0.1"])
        try:
            async with RealtimeClient(t, session=session, reconnect=None) as client:
                assert t.call_id is not None and t.audio is not None
                sideband = Sideband(
                    upstream=upstream,
                    registry=ToolRegistry(),
                    context=ToolContext(user_id="u1", persona_id="capture", call_id=t.call_id),
                    allowed_tools=(),
                    session={"instructions": instructions, "tools": []},
                    policy=CallPolicy(max_seconds=60, max_usd=None),
                )
                runner = asyncio.create_task(sideband.run())
                heard = asyncio.create_task(client.wait_for(
                    "conversation.item.input_audio_transcription.completed", timeout=30))
                answered = asyncio.create_task(client.wait_for("output_audio_buffer.stopped", timeout=30))
                # the sideband sees the call's events from the moment it is attached (there is no replay)
                await asyncio.wait_for(sideband.attached.wait(), 10)
                tts = load_test_speech("fake").tts
                assert tts is not None
                for pcm in (b"".join(tts.synthesize(WORDS)), silence(800)):
                    await t.audio.send_audio(pcm)
                completed: Any = await heard
                assert completed.transcript == WORDS
                await answered
            # the caller hung up: the engine flushes the call's events to the sideband, then closes it
            assert await asyncio.wait_for(runner, 15) == "closed"
        finally:
            await upstream.close()
    record = sideband.record()
    assert [(u.role, u.text) for u in record.turns] == [("user", WORDS), ("assistant", "Noted, the blue door.")]
    assert (record.call_id, record.user_id, record.persona_id, record.ended_reason) == (
        t.call_id, "u1", "capture", "closed")
