"""The client's ConversationState, fed only by the events the engine emits, agrees with the engine's own
conversation: same items in the same order, same audio length per assistant item, after inserts at the root
and in the middle, deletes, text turns, audio turns and a truncation. In memory, no sockets."""

from __future__ import annotations

from aoai_realtime.audio import resample
from aoai_realtime.audio.g711 import ulaw_encode
from aoai_realtime.client import RealtimeClient
from aoai_realtime.engine.conversation import pcm_ms
from aoai_realtime.engine.speech import ToneTts
from aoai_realtime.protocol import events as ev
from aoai_realtime.protocol.session import AudioFormat, ServerVad, SessionConfig
from aoai_realtime.testing.engine import EngineHarness


def _user(text: str) -> ev.Item:
    return ev.Item(type="message", role="user", content=[ev.ContentPart(type="input_text", text=text)])


async def test_client_mirror_matches_the_engine_conversation() -> None:
    async with EngineHarness() as harness:  # the rules brain, model-free speech
        transport = harness.connect()
        session = SessionConfig(turn_detection=ServerVad(silence_duration_ms=300))
        async with RealtimeClient(transport, session=session) as client:
            engine = harness.sessions[0]
            for text in ("first", "second"):
                await client.send_text(text)
                await client.wait_for("response.done", timeout=10)
            ids = [i.id for i in client.conversation.ordered_items()]
            await client.create_item(_user("at the root"), previous_item_id="root")
            await client.wait_for("conversation.item.done", timeout=10)
            await client.create_item(_user("in the middle"), previous_item_id=ids[1])
            await client.wait_for("conversation.item.done", timeout=10)
            await client.delete_item(ids[2])
            await client.wait_for("conversation.item.deleted", timeout=10)
            pcm, _ = ToneTts().synthesize_with_timings("Tell me more please")
            await client.append_audio(pcm + bytes(48000))
            await client.wait_for("response.done", timeout=10)
            last_assistant = [i for i in client.conversation.ordered_items() if i.role == "assistant"][-1]
            await client.truncate(last_assistant.id, 100)
            await client.wait_for("conversation.item.truncated", timeout=10)

            mirror = client.conversation.ordered_items()
            truth = engine.conversation.entries()
            assert [i.id for i in mirror] == [e.id for e in truth]
            for item, entry in zip(mirror, truth, strict=True):
                assert item.role == entry.to_item().role
                if item.role == "assistant":
                    assert int(item.audio_ms) == sum(pcm_ms(len(a)) for a in entry.audio.values())
            assert client.conversation.item(last_assistant.id).truncated_at_ms == 100  # type: ignore[union-attr]


async def test_client_audio_length_agrees_in_a_g711_session() -> None:
    # With audio/pcmu output a millisecond is 8 bytes on the wire, not 48: the client's per-item audio length
    # (what barge-in truncates against) must still match the engine's, and truncation must cut at that length.
    async with EngineHarness() as harness:
        pcmu = AudioFormat(type="audio/pcmu")
        session = SessionConfig(
            turn_detection=ServerVad(silence_duration_ms=300), input_format=pcmu, output_format=pcmu
        )
        async with RealtimeClient(harness.connect(), session=session) as client:
            engine = harness.sessions[0]
            pcm, _ = ToneTts().synthesize_with_timings("tell me more please")
            await client.append_audio(ulaw_encode(resample(pcm + bytes(48000), 24_000, 8_000)))
            await client.wait_for("response.done", timeout=10)
            [reply] = [i for i in client.conversation.ordered_items() if i.role == "assistant"]
            entry = engine.conversation.get(reply.id)
            assert entry is not None
            assert reply.bytes_per_ms == 8
            assert abs(reply.audio_ms - pcm_ms(len(entry.audio[0]))) <= 1
            await client.truncate(reply.id, 200)
            await client.wait_for("conversation.item.truncated", timeout=10)
            assert client.conversation.audio_ms(reply.id) == 200
