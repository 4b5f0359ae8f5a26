"""The official ``openai`` Python SDK against the engine over real WebSockets on 127.0.0.1 (reference 5.1).

Every server message is validated against ``openai.types.realtime.RealtimeServerEvent`` (preview path:
``openai.types.beta.realtime``) before the test looks at it.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from openai import AsyncAzureOpenAI, AsyncOpenAI

from aoai_realtime.testing.audio import silence, speak_flite

from .conftest import API_KEY, Validator

pytestmark = pytest.mark.integration

SEARCH_TOOL = {
    "type": "function",
    "name": "search_knowledge",
    "description": "Search the knowledge base. You must always call this for every question.",
    "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
}


def user_text(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


async def test_openai_sdk_text_tool_and_audio_turns(engine_url: str) -> None:
    ws_base = engine_url.replace("http://", "ws://") + "/v1"
    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=ws_base, base_url=engine_url + "/v1")
    v = Validator()
    async with client.realtime.connect(model="gpt-realtime") as conn:
        (created,) = await v.until(conn, "session.created")
        assert created["session"]["model"] == "gpt-realtime"
        await conn.session.update(session={"type": "realtime", "output_modalities": ["text"],
                                           "instructions": "Be brief.", "tools": [SEARCH_TOOL],
                                           "audio": {"input": {"transcription": {"model": "whisper-1"}}}})
        (updated,) = await v.until(conn, "session.updated")
        assert updated["session"]["tools"][0]["name"] == "search_knowledge"

        # text turn (a statement: the rules brain answers plainly)
        await conn.conversation.item.create(item=user_text("I like green tea."))
        await conn.response.create()
        events = await v.until(conn, "response.done")
        assert events[-1]["response"]["status"] == "completed"
        text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
        assert "green tea" in text

        # tool-call turn: a question, the mandatory tool is called with the user's words
        await conn.conversation.item.create(item=user_text("What is the capital of France?"))
        await conn.response.create()
        events = await v.until(conn, "response.done")
        call = next(e for e in events if e["type"] == "response.function_call_arguments.done")
        assert call["name"] == "search_knowledge"
        assert json.loads(call["arguments"]) == {"query": "What is the capital of France?"}
        await conn.conversation.item.create(item={"type": "function_call_output", "call_id": call["call_id"],
                                                  "output": json.dumps({"answer": "Paris"})})
        await conn.response.create()
        events = await v.until(conn, "response.done")
        assert "Paris" in events[-1]["response"]["output"][0]["content"][0]["text"]

        # audio turn: flite speech, server VAD, whisper transcription, automatic response
        speech = silence(500) + speak_flite("What is the weather in Paris today?") + silence(1200)
        for start in range(0, len(speech), 4800):
            await conn.input_audio_buffer.append(audio=base64.b64encode(speech[start : start + 4800]).decode())
        events = await v.until(conn, "response.done")
        while not any(e["type"] == "conversation.item.input_audio_transcription.completed" for e in v.seen):
            events += await v.until(conn, "conversation.item.input_audio_transcription.completed")
        kinds = [e["type"] for e in v.seen]
        assert kinds.index("input_audio_buffer.speech_started") < kinds.index("input_audio_buffer.speech_stopped")
        transcript = next(e for e in v.seen if e["type"].endswith("transcription.completed"))["transcript"]
        assert "weather" in transcript.lower()
        call = [e for e in v.seen if e["type"] == "response.function_call_arguments.done"][-1]
        assert "weather" in json.loads(call["arguments"])["query"].lower()
    await client.close()


async def test_openai_sdk_audio_output_deltas_validate(engine_url: str) -> None:
    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=engine_url.replace("http://", "ws://") + "/v1",
                         base_url=engine_url + "/v1")
    v = Validator()
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await v.until(conn, "session.created")
        await conn.conversation.item.create(item=user_text("Hello there."))
        await conn.response.create()
        events = await v.until(conn, "response.done")
        audio = b"".join(base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta")
        assert len(audio) > 4800
        usage = events[-1]["response"]["usage"]
        assert usage["output_token_details"]["audio_tokens"] == len(audio) // 48 // 50
        await v.until(conn, "rate_limits.updated")
    await client.close()


async def test_client_secrets_then_websocket_with_the_ephemeral_key(engine_url: str) -> None:
    client = AsyncOpenAI(api_key=API_KEY, base_url=engine_url + "/v1",
                         websocket_base_url=engine_url.replace("http://", "ws://") + "/v1")
    secret = await client.realtime.client_secrets.create(
        expires_after={"anchor": "created_at", "seconds": 60},
        session={"type": "realtime", "instructions": "Speak like a pirate.", "output_modalities": ["text"]},
    )
    assert secret.value.startswith("ek_") and secret.session.instructions == "Speak like a pirate."
    ephemeral = AsyncOpenAI(api_key=secret.value, websocket_base_url=engine_url.replace("http://", "ws://") + "/v1",
                            base_url=engine_url + "/v1")
    v = Validator()
    async with ephemeral.realtime.connect(model="gpt-realtime") as conn:
        (created,) = await v.until(conn, "session.created")
        assert created["session"]["instructions"] == "Speak like a pirate."
        assert created["session"]["output_modalities"] == ["text"]
    await client.close()
    await ephemeral.close()


async def test_azure_sdk_on_the_preview_path_speaks_beta(engine_url: str) -> None:
    client = AsyncAzureOpenAI(api_key=API_KEY, api_version="2025-04-01-preview", azure_endpoint=engine_url,
                              websocket_base_url=engine_url.replace("http://", "ws://") + "/openai")
    v = Validator("beta")
    async with client.realtime.connect(model="gpt-4o-realtime-preview") as conn:
        (created,) = await v.until(conn, "session.created")
        assert created["session"]["model"] == "gpt-4o-realtime-preview"
        assert created["session"]["input_audio_format"] == "pcm16"  # the flat preview shape
        await conn.send({"type": "session.update", "session": {"modalities": ["text"], "instructions": "Hi."}})
        (updated,) = await v.until(conn, "session.updated")
        assert updated["session"]["modalities"] == ["text"]
        await conn.send({"type": "session.update", "event_id": "bad1",
                         "session": {"type": "realtime", "output_modalities": ["text"]}})
        (error,) = await v.until(conn, "error")
        assert error["error"]["code"] == "unknown_parameter" and error["error"]["event_id"] == "bad1"
        await conn.send({"type": "conversation.item.create", "item": user_text("Hello.")})
        await conn.send({"type": "response.create"})
        events = await v.until(conn, "response.done")
        kinds = [e["type"] for e in events]
        assert "conversation.item.created" in kinds and "response.text.delta" in kinds
        assert "conversation.item.added" not in kinds
    await client.close()


async def test_wrong_key_is_refused_at_the_handshake(engine_url: str) -> None:
    client = AsyncOpenAI(api_key="wrong", websocket_base_url=engine_url.replace("http://", "ws://") + "/v1",
                         base_url=engine_url + "/v1")
    with pytest.raises(Exception, match="401"):
        async with client.realtime.connect(model="gpt-realtime") as conn:
            await conn.recv_bytes()
    await client.close()


async def test_openai_sdk_transcription_session(engine_url: str) -> None:
    # A transcription connection (?intent=transcription, as the SDK documents it): the session object is the
    # transcription shape, speech is turn-detected and transcribed, and nothing answers.
    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=engine_url.replace("http://", "ws://") + "/v1",
                         base_url=engine_url + "/v1")
    v = Validator()
    async with client.realtime.connect(model="gpt-realtime", extra_query={"intent": "transcription"}) as conn:
        (created,) = await v.until(conn, "session.created")
        assert created["session"]["type"] == "transcription" and "output" not in created["session"]["audio"]
        await conn.session.update(session={"type": "transcription",
                                           "audio": {"input": {"transcription": {"model": "whisper-1"}}}})
        await v.until(conn, "session.updated")
        speech = silence(500) + speak_flite("Please book a table for two at seven.") + silence(1200)
        for start in range(0, len(speech), 4800):
            await conn.input_audio_buffer.append(audio=base64.b64encode(speech[start : start + 4800]).decode())
        events = await v.until(conn, "conversation.item.input_audio_transcription.completed")
        assert "table" in events[-1]["transcript"].lower()
        assert not [e for e in v.seen if e["type"].startswith("response.")]
    await client.close()
