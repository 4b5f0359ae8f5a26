"""The official ``openai`` Python SDK against the engine on what issue 13 found (items 1, 4, 5, 6, 7, 9): every
server message validated against the SDK's models before the test looks at it."""

from __future__ import annotations

import base64

import openai
import pytest
from openai import AsyncAzureOpenAI, AsyncOpenAI

from .conftest import API_KEY, Validator

pytestmark = pytest.mark.integration


def clients(engine_url: str, key: str = API_KEY) -> AsyncOpenAI:
    return AsyncOpenAI(api_key=key, base_url=engine_url + "/v1", max_retries=0,
                       websocket_base_url=engine_url.replace("http://", "ws://") + "/v1")  # fmt: skip


async def data_channel_offer() -> str:
    from aiortc import RTCPeerConnection

    pc = RTCPeerConnection()
    pc.createDataChannel("oai-events")
    await pc.setLocalDescription(await pc.createOffer())
    sdp: str = pc.localDescription.sdp
    await pc.close()
    return sdp


async def test_include_and_tracing_through_the_sdk(engine_url: str) -> None:
    client = clients(engine_url)
    v = Validator()
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await v.until(conn, "session.created")
        await conn.session.update(session={"type": "realtime", "include": ["bogus"]}, event_id="inc")  # type: ignore[list-item]
        (error,) = await v.until(conn, "error")
        assert (error["error"]["param"], error["error"]["event_id"]) == ("session.include[0]", "inc")
        await conn.session.update(session={"type": "realtime", "tracing": "auto",
                                           "include": ["item.input_audio_transcription.logprobs"]})  # fmt: skip
        await v.until(conn, "session.updated")
        await conn.session.update(session={"type": "realtime", "tracing": None}, event_id="tr")
        (error,) = await v.until(conn, "error")
        assert (error["error"]["param"], error["error"]["event_id"]) == ("session.tracing", "tr")
        await conn.session.update(session={"type": "realtime", "instructions": "Still valid."})
        (updated,) = await v.until(conn, "session.updated")  # validated: include still fits the SDK's model
        assert updated["session"]["include"] == ["item.input_audio_transcription.logprobs"]
    await client.close()


async def test_preview_path_response_has_the_beta_shape(engine_url: str) -> None:
    client = AsyncAzureOpenAI(api_key=API_KEY, api_version="2025-04-01-preview", azure_endpoint=engine_url,
                              websocket_base_url=engine_url.replace("http://", "ws://") + "/openai")
    v = Validator("beta")
    async with client.realtime.connect(model="gpt-4o-realtime-preview") as conn:
        await v.until(conn, "session.created")
        await conn.send({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": "I like tea."}]}})
        await conn.send({"type": "response.create"})
        events = await v.until(conn, "response.done")
        for event in events:
            if event["type"] in ("response.created", "response.done"):
                response = event["response"]
                assert {"output_modalities", "audio"}.isdisjoint(response)
                assert response["modalities"] == ["text", "audio"] and response["output_audio_format"] == "pcm16"
                assert response["voice"] == "alloy" and response["temperature"] == 0.8
        assert "cached_tokens_details" not in events[-1]["response"]["usage"]["input_token_details"]
    await client.close()


async def test_a_full_buffer_and_a_deep_message_are_error_events_and_the_session_goes_on(engine_url: str) -> None:
    client = clients(engine_url)
    v = Validator()
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await v.until(conn, "session.created")
        await conn.session.update(session={"type": "realtime", "audio": {"input": {"turn_detection": None}}})
        await v.until(conn, "session.updated")
        chunk = base64.b64encode(bytes(6 * 1024 * 1024)).decode()  # 8 MiB of base64 per append, as the attack
        for i in range(3):
            await conn.input_audio_buffer.append(audio=chunk, event_id=f"a{i}")
        (error,) = await v.until(conn, "error")
        assert (error["error"]["code"], error["error"]["event_id"]) == ("input_audio_buffer_full", "a2")
        deep = '{"type": "session.update", "event_id": "deep", "session": ' + "[" * 100_000 + "]" * 100_000 + "}"
        await conn.send_raw(deep)
        (error,) = await v.until(conn, "error")
        assert error["error"]["event_id"] == "deep"
        await conn.input_audio_buffer.commit()
        (committed,) = await v.until(conn, "input_audio_buffer.committed")
        assert committed["item_id"]
    await client.close()


async def test_rest_routes_answer_400_and_a_data_channel_only_call(engine_url: str) -> None:
    client = clients(engine_url)
    offer = await data_channel_offer()
    answer = await client.realtime.calls.create(sdp=offer, session={"type": "realtime", "instructions": "Hi."})
    assert "m=application" in answer.text and "m=audio" not in answer.text
    bad_port = offer.replace("m=application", "m=audio x RTP/AVP 0\r\nm=application")
    with pytest.raises(openai.BadRequestError) as info:  # a 500 would have been retried and reported as a crash
        await client.realtime.calls.create(sdp=bad_port)
    assert info.value.body["code"] == "invalid_offer"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        await client.realtime.client_secrets.create(session={"type": "realtime", "include": ["bogus"]})  # type: ignore[list-item]
    await client.close()


async def test_an_ephemeral_secret_cannot_join_a_call_over_the_sdk(engine_url: str) -> None:
    import aiohttp

    client = clients(engine_url)
    secret = await client.realtime.client_secrets.create(session={"type": "realtime"})
    offer = await data_channel_offer()
    headers = {"Authorization": f"Bearer {secret.value}", "Content-Type": "application/sdp"}
    # the SDK's calls.create returns the answer, not the Location
    async with aiohttp.ClientSession() as http, http.post(engine_url + "/v1/realtime/calls", data=offer,
                                                          headers=headers) as r:  # fmt: skip
        assert r.status == 201
        call_id = r.headers["Location"].rsplit("/", 1)[-1]
    ephemeral = clients(engine_url, secret.value)
    with pytest.raises(Exception, match="404"):
        async with ephemeral.realtime.connect(model="gpt-realtime", extra_query={"call_id": call_id}) as conn:
            await conn.recv_bytes()
    v = Validator()
    async with client.realtime.connect(model="gpt-realtime", extra_query={"call_id": call_id}) as conn:
        await conn.session.update(session={"type": "realtime", "instructions": "From the sideband."})
        (updated,) = await v.until(conn, "session.updated")
        assert updated["session"]["instructions"] == "From the sideband."
    await client.realtime.calls.hangup(call_id)
    await client.close()
    await ephemeral.close()
