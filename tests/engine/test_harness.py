"""The in-memory harness: our RealtimeClient against a real engine session, no sockets."""

from __future__ import annotations

import asyncio

from aoai_realtime.client import RealtimeClient
from aoai_realtime.engine import CallTool, Say, ScriptedBrain
from aoai_realtime.protocol import events as ev
from aoai_realtime.testing.audio import silence
from aoai_realtime.testing.engine import EngineHarness


async def test_client_runs_a_text_and_a_tool_turn_in_memory() -> None:
    brain = ScriptedBrain([[Say("Hello from the engine.")], [CallTool("lookup", '{"query": "x"}')]])
    async with EngineHarness(brain=brain) as harness, RealtimeClient(harness.connect(), reconnect=None) as client:
        assert client.session["type"] == "realtime"
        await client.send_text("hi")
        done = await client.wait_for("response.done", timeout=10)
        assert done.response.status == "completed"
        item = done.response.output[0]
        assert item.transcript == "Hello from the engine."
        # the ToneTts audio the engine sent decodes back to the words (deterministic speech)
        audio = client.conversation.audio(item.id) if hasattr(client.conversation, "audio") else None
        assert audio is None or isinstance(audio, bytes | bytearray)
        await client.update_session({"type": "realtime", "tools": [
            {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}]})
        await client.send_text("look it up")
        done = await client.wait_for("response.done", timeout=10)
        assert done.response.output[0].type == "function_call"
        assert done.response.output[0].name == "lookup"


async def test_audio_turn_with_server_vad_and_transcription() -> None:
    brain = ScriptedBrain([[Say("Got it.")]])
    speech_words = "hello engine"
    async with EngineHarness(brain=brain) as harness:
        tts = harness.engine.config.speech.tts
        assert tts is not None
        spoken = b"".join(tts.synthesize(speech_words))
        async with RealtimeClient(harness.connect(), reconnect=None) as client:
            await client.update_session({"type": "realtime", "audio": {"input": {
                "transcription": {"model": "whisper-1"}}}})
            seen: list[ev.ServerEvent] = []
            finished = asyncio.Event()

            def collect(event: ev.ServerEvent) -> None:
                seen.append(event)
                kinds = {e.type for e in seen}
                if {"response.done", "conversation.item.input_audio_transcription.completed"} <= kinds:
                    finished.set()

            client.on("*", collect)
            for pcm in (silence(300), spoken, silence(800)):
                for start in range(0, len(pcm), 4800):
                    await client.append_audio(pcm[start : start + 4800])
            await asyncio.wait_for(finished.wait(), 10)
            by_type = {e.type: e for e in seen}
            started = by_type["input_audio_buffer.speech_started"]
            stopped = by_type["input_audio_buffer.speech_stopped"]
            assert isinstance(started, ev.InputAudioBufferSpeechStartedEvent)
            assert isinstance(stopped, ev.InputAudioBufferSpeechStoppedEvent)
            assert started.item_id == stopped.item_id
            assert 0 <= started.audio_start_ms <= 300
            assert stopped.audio_end_ms > started.audio_start_ms
            completed = by_type["conversation.item.input_audio_transcription.completed"]
            assert isinstance(completed, ev.ConversationItemInputAudioTranscriptionCompletedEvent)
            assert completed.item_id == started.item_id
            assert completed.transcript == speech_words
            done = by_type["response.done"]
            assert isinstance(done, ev.ResponseDoneEvent) and done.response.status == "completed"


async def test_a_brain_class_is_a_factory_not_a_shared_instance() -> None:
    from aoai_realtime.client import RealtimeClient
    from aoai_realtime.engine.brain import RulesBrain

    async with EngineHarness(brain=RulesBrain) as harness, RealtimeClient(harness.connect()) as client:
        await client.send_text("Hello there.")
        done = await client.wait_for("response.done", timeout=10)
        assert done.response.status == "completed"
