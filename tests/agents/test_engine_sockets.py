"""The assistant against the local engine over real sockets on 127.0.0.1, on the real clock: WebSocket (the
client plays the audio and truncates) and WebRTC (the engine plays on the media track and truncates itself)."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

import aoai_realtime.engine as engine_mod
import aoai_realtime.testing.engine as testing_engine
from aoai_realtime.agents import AssistantConfig, AssistantState, RolloverPolicy, ToolResult, VoiceAssistant, tool
from aoai_realtime.agents.track import is_silent
from aoai_realtime.audio import PacedPlayer, pcm_source
from aoai_realtime.auth import ApiKey
from aoai_realtime.bench.agents import _spoken_pieces, _truth
from aoai_realtime.client import RealtimeClient
from aoai_realtime.endpoints import Endpoint
from aoai_realtime.engine.brain.base import CallTool, Say
from aoai_realtime.engine.brain.scripted import ScriptedBrain
from aoai_realtime.engine.speech.tone import ToneTts
from aoai_realtime.protocol import events as ev
from aoai_realtime.transport.websocket import WebSocketTransport

pytestmark = pytest.mark.integration

KEY = "agents-test-key"
S = AssistantState
LONG = "The quick brown fox jumps over the lazy dog. Then it runs far away into the deep green forest."
TRANSCRIBED = {"type": "realtime", "audio": {"input": {"transcription": {"model": "whisper-1"}}}}


def serve(brain: Callable[[], Any]) -> Any:
    engine = engine_mod.Engine(engine_mod.EngineConfig(
        api_key=KEY, brain=brain, speech=testing_engine.load_test_speech("fake")))
    return testing_engine.serve_engine(engine)


def ws_client(url: str, session: dict[str, Any] | None = None) -> RealtimeClient:
    transport = WebSocketTransport(Endpoint.local(f"{url}/v1"), ApiKey(KEY, style="bearer"))
    return RealtimeClient(transport, session=session)


async def until_idle(assistant: VoiceAssistant, timeout: float = 20.0) -> None:
    await assistant.wait_until_idle(timeout)


async def speak(assistant: VoiceAssistant, text: str) -> None:
    user, _ = ToneTts().synthesize_with_timings(text)
    await assistant.stream_audio(pcm_source(user + bytes(2 * 24 * 900)))


async def until_answered(assistant: VoiceAssistant) -> None:
    """Wait until the turn just spoken has been answered and the answer heard. ``until_idle`` alone is not it:
    the assistant is idle too while the engine has yet to hear the end of the speech (on a loaded machine, well
    after the last frame was handed over)."""
    await until_transcript(assistant, lambda es: es[-1].role == "assistant" and es[-1].final
                           and not es[-1].interrupted)
    await until_idle(assistant)


async def test_websocket_barge_in_truncates_at_what_was_played_and_keeps_heard_words() -> None:
    async with serve(lambda: ScriptedBrain([[Say(LONG)]], fallback="Okay.")) as url:
        player = PacedPlayer()
        client = ws_client(url, TRANSCRIBED)
        async with VoiceAssistant(client, player=player) as assistant:
            truncated: list[ev.ConversationItemTruncatedEvent] = []
            client.on("conversation.item.truncated", truncated.append)
            await assistant.send_text("tell me a story")
            await assistant.wait_for_state(S.SPEAKING, timeout=10)
            await asyncio.sleep(1.0)
            await speak(assistant, "stop please")
            await until_answered(assistant)
            transcript = assistant.transcript
            sent = assistant.core.truncations
    assert len(sent) == 1 and len(truncated) == 1  # sent, and the engine confirmed it
    item, audio_end_ms = sent[0]
    assert truncated[0].audio_end_ms == audio_end_ms and truncated[0].item_id == item
    played_ms = player.clears[0] / 24.0
    assert 0 <= played_ms - audio_end_ms <= 20.0  # within one 20 ms frame, never more than was heard
    cut = next(e for e in transcript if e.interrupted)
    heard = [w for w, start in zip(LONG.split(), _truth(LONG), strict=True) if start < audio_end_ms]
    assert cut.text.split() == heard
    assert [(e.role, e.text) for e in transcript][-2:] == [("user", "stop please"), ("assistant", "Okay.")]


def rtc_client(url: str, session: dict[str, Any] | None = None) -> RealtimeClient:
    from aoai_realtime.transport.webrtc import WebRTCTransport

    transport = WebRTCTransport(Endpoint.local(f"{url}/v1"), ApiKey(KEY, style="bearer"), session=session,
                                ice_addresses=["127.0.0.1"])
    return RealtimeClient(transport)


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["websocket", "webrtc"])
async def test_200_random_tool_calls_each_settle_once_and_the_model_speaks(transport: str) -> None:
    rng = random.Random(7)

    @tool(timeout=1.0)
    async def ok(n: int) -> dict[str, int]:
        """Succeeds."""
        await asyncio.sleep(rng.random() * 0.05)
        return {"n": n}

    @tool
    async def raises(n: int) -> str:
        """Fails."""
        raise RuntimeError(f"boom {n}")

    @tool(timeout=0.2)
    async def hangs() -> str:
        """Never returns."""
        await asyncio.Event().wait()
        return "never"

    @tool
    def ghost() -> str:
        """Removed before it is called."""
        raise AssertionError("never called")

    calls = [rng.choice([
        CallTool("ok", json.dumps({"n": i})), CallTool("raises", json.dumps({"n": i})), CallTool("hangs", "{}"),
        CallTool("ghost", "{}"), CallTool("ok", '{"n": "x"}'),
    ]) for i in range(200)]
    turns = [calls[i : i + 8] for i in range(0, 200, 8)]
    script: list[list[Any]] = []
    for i, turn in enumerate(turns):
        script += [turn, [Say(f"Ok {i}.")]]

    async with serve(lambda: ScriptedBrain(script)) as url:
        results: list[ToolResult] = []
        config = AssistantConfig(tool_timeout=0.5)
        client = ws_client(url) if transport == "websocket" else rtc_client(url)
        async with VoiceAssistant(client, tools=[ok, raises, hangs, ghost], config=config) as assistant:
            assert assistant.core.config.mode == transport
            assistant.tools.remove("ghost")
            assistant.on("tool_result", results.append)
            for i, turn in enumerate(turns):
                before = len(results)
                await assistant.send_text("go")
                await until_idle(assistant)
                assert len(results) - before == len(turn)
                assert assistant.transcript[-1].text == f"Ok {i}."
            outputs = Counter(
                i.call_id for i in assistant.client.conversation.ordered_items() if i.type == "function_call_output"
            )
    assert len(outputs) == 200 and set(outputs.values()) == {1}
    assert {r.status for r in results} == {"ok", "error", "timeout", "unknown_tool", "invalid_arguments"}
    for r in results:
        timeout = {"ok": 1.0, "hangs": 0.2}.get(r.call.name, 0.5)
        assert r.latency_ms <= (timeout + 1.0) * 1000.0


def _piece_starts_ms(text: str) -> list[float]:
    """Where each piece the engine synthesises separately starts in the answer's audio."""
    starts, offset = [], 0.0
    for piece in _spoken_pieces(text):
        starts.append(offset)
        offset += len(ToneTts().synthesize_with_timings(piece)[0]) / 48.0
    return starts


async def until_transcript(assistant: VoiceAssistant, done: Callable[[list[Any]], bool], timeout: float = 20.0) -> None:
    """Wait for the transcript event after which ``done(entries)`` holds (checked at once as well)."""
    reached = asyncio.Event()

    def check(entries: list[Any]) -> None:
        if done(entries):
            reached.set()

    assistant.on("transcript", check)
    try:
        check(assistant.transcript)
        await asyncio.wait_for(reached.wait(), timeout)
    finally:
        assistant.off("transcript", check)


async def test_webrtc_states_follow_the_output_buffer_and_barge_in_clears_it() -> None:
    # Long enough (about 11 s) that the barge-in always lands while it plays, however slow the machine.
    story = " ".join([LONG] * 3)
    async with serve(lambda: ScriptedBrain([[Say(story)]], fallback="Okay.")) as url:
        client = rtc_client(url, TRANSCRIBED)
        seen: list[str] = []
        async with VoiceAssistant(client) as assistant:
            assert assistant.core.config.mode == "webrtc"
            assistant.on("state_change", lambda c: seen.append(f"{c.new.value}:{c.trigger.value}"))
            truncated: list[ev.ConversationItemTruncatedEvent] = []
            client.on("conversation.item.truncated", truncated.append)
            await assistant.send_text("tell me a story")
            await assistant.wait_for_state(S.SPEAKING, timeout=10)
            # the user interrupts once a few words have been heard (revealed as the track plays them)
            await until_transcript(assistant, lambda es: es[-1].role == "assistant" and len(es[-1].text.split()) >= 4)
            await speak(assistant, "stop please")
            await until_answered(assistant)
            # the cut is final once the audio the engine says it played has all arrived on the track
            await until_transcript(assistant, lambda es: any(e.interrupted and e.final for e in es))
            transcript = assistant.transcript
    assert "speaking:playback_started" in seen and "listening:speech_started" in seen
    cut = next(e for e in transcript if e.interrupted)
    assert story.startswith(cut.text) and 0 < len(cut.text.split()) < len(story.split())
    # The engine truncated at what it had played, and the cut waited until all of that had arrived on the
    # track, attributed to the item (idle silence before its first sound not counted).
    assert len(truncated) == 1 and truncated[0].item_id == cut.item_id
    end_ms = truncated[0].audio_end_ms
    assert assistant.core.track.received_ms[cut.item_id] >= end_ms > 0
    # So the words kept are the words heard by then. The tone voice leaves no silence where one synthesised piece
    # meets the next, so a word opening a piece has no onset of its own: each such join before the cut may put
    # the count one word off.
    heard = [w for w, s in zip(story.split(), _truth(story), strict=True) if s < end_ms]
    joins = sum(1 for start in _piece_starts_ms(story)[1:] if start < end_ms)
    assert abs(len(cut.text.split()) - len(heard)) <= joins
    assert [(e.role, e.text) for e in transcript][-2:] == [("user", "stop please"), ("assistant", "Okay.")]


async def test_websocket_session_expiry_rolls_over_and_the_conversation_goes_on() -> None:
    brain = ScriptedBrain([[Say("Nice to meet you, Ada.")], [Say("Your name is Ada.")]])
    engine = engine_mod.Engine(engine_mod.EngineConfig(
        api_key=KEY, brain=lambda: brain, speech=testing_engine.load_test_speech("fake"), max_session_s=3.0))
    async with testing_engine.serve_engine(engine) as url:
        policy = RolloverPolicy(max_session_s=3600, margin_s=60, use_expires_at=False)
        clients: list[RealtimeClient] = []

        def connect() -> RealtimeClient:
            transport = WebSocketTransport(Endpoint.local(f"{url}/v1"), ApiKey(KEY, style="bearer"))
            clients.append(RealtimeClient(transport, reconnect=None))
            return clients[-1]

        async with VoiceAssistant(connect=connect, instructions="Be brief.",
                                  config=AssistantConfig(rollover=policy)) as assistant:
            rolled = asyncio.Event()
            assistant.on("rollover", lambda _: rolled.set())
            await assistant.send_text("My name is Ada.")
            await until_idle(assistant)
            await asyncio.wait_for(rolled.wait(), 30)  # the engine ends the session at 3 s
            assert assistant.rollovers == 1 and assistant.failure is None and len(clients) == 2
            seeded = [i.content for i in assistant.client.conversation.ordered_items()]
            assert seeded == ["My name is Ada.", "Nice to meet you, Ada."]
            await assistant.send_text("What is my name?")
            await until_idle(assistant)
            assert [e.text for e in assistant.transcript] == [
                "My name is Ada.", "Nice to meet you, Ada.", "What is my name?", "Your name is Ada."]


def sound_ms(pcm: bytes) -> float:
    """Milliseconds of ``pcm`` in 20 ms frames that are not digital silence (the track's idle fill is)."""
    frame = 24 * 20 * 2
    return sum(20.0 for i in range(0, len(pcm), frame) if not is_silent(pcm[i : i + frame]))


class SoundCounter(PacedPlayer):
    """A player that counts the sound written to it and lets a test wait for an amount of it."""

    def __init__(self) -> None:
        super().__init__()
        self.sound_ms = 0.0
        self._target: tuple[float, asyncio.Event] | None = None

    def write(self, pcm: bytes) -> None:
        super().write(pcm)
        self.sound_ms += sound_ms(pcm)
        if self._target is not None and self.sound_ms >= self._target[0]:
            self._target[1].set()

    async def wait_for(self, total_ms: float, timeout: float) -> None:
        reached = asyncio.Event()
        self._target = (total_ms, reached)
        if self.sound_ms >= total_ms:
            reached.set()
        await asyncio.wait_for(reached.wait(), timeout)


async def test_webrtc_rollover_and_reconnect_keep_the_new_calls_audio_playing() -> None:
    # Over WebRTC the reply's audio arrives on the call's media track. A rollover (new client, new call) and a
    # reconnect (same client, new call after the server hung up) both bring a new track: the assistant's player
    # must follow it, or the conversation goes on in silence.
    import aiohttp

    brain = ScriptedBrain([[Say("Nice to meet you, Ada.")], [Say("Your name is Ada.")], [Say("Still here, Ada.")]])
    engine = engine_mod.Engine(engine_mod.EngineConfig(
        api_key=KEY, brain=lambda: brain, speech=testing_engine.load_test_speech("fake")))
    async with testing_engine.serve_engine(engine) as url:
        clients: list[RealtimeClient] = []

        def connect() -> RealtimeClient:
            from aoai_realtime.client import ReconnectPolicy
            from aoai_realtime.transport.webrtc import WebRTCTransport

            transport = WebRTCTransport(Endpoint.local(f"{url}/v1"), ApiKey(KEY, style="bearer"),
                                        ice_addresses=["127.0.0.1"])
            clients.append(RealtimeClient(transport, reconnect=ReconnectPolicy(max_attempts=3, base_delay=0.05)))
            return clients[-1]

        player = SoundCounter()
        policy = RolloverPolicy(max_session_s=3600, margin_s=60, use_expires_at=False)
        async with VoiceAssistant(connect=connect, player=player, instructions="Be brief.",
                                  config=AssistantConfig(rollover=policy)) as assistant:
            assert assistant.core.config.mode == "webrtc"

            async def heard(text: str, reply: str) -> None:
                """The reply's sound reaches the player. The track runs behind the data channel by an amount load
                decides, so wait for the audio itself (a player that does not follow the call's track never
                gets it: the wait times out)."""
                before = player.sound_ms
                await assistant.send_text(text)
                await until_idle(assistant)
                pcm, _ = ToneTts().synthesize_with_timings(reply)
                await player.wait_for(before + sound_ms(pcm) * 0.9, timeout=20)

            await heard("My name is Ada.", "Nice to meet you, Ada.")
            await assistant.roll_over()
            assert assistant.rollovers == 1 and len(clients) == 2
            await heard("What is my name?", "Your name is Ada.")  # the new call's track plays

            reconnected = asyncio.Event()
            assistant.on("rollover", lambda _: reconnected.set())  # a reconnect re-seeds and says so
            transport = clients[1].transport
            hangup = f"{url}/v1/realtime/calls/{transport.call_id}/hangup"  # type: ignore[attr-defined]
            async with aiohttp.ClientSession() as http, http.post(
                hangup, headers={"Authorization": f"Bearer {KEY}"}
            ) as r:
                assert r.status == 200
            await asyncio.wait_for(reconnected.wait(), 20)
            await heard("Are you there?", "Still here, Ada.")  # and so does the reconnected call's
            assert assistant.failure is None
            assert [e.text for e in assistant.transcript][-2:] == ["Are you there?", "Still here, Ada."]
