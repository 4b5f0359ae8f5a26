"""The assistant against the real local engine over the in-memory transport, on a virtual clock: real
protocol, real engine session, real VAD/tone speech, real-time pacing that runs instantly and deterministically.
No sockets."""

from __future__ import annotations

import asyncio
import base64
import json
import random
from collections import Counter
from typing import Any

import pytest

import aoai_realtime.testing.engine as harness_module
from aoai_realtime.agents import (
    AssistantConfig,
    AssistantState,
    RolloverPolicy,
    TextChat,
    ToolAgent,
    ToolPolicy,
    ToolResult,
    VoiceAssistant,
    tool,
)
from aoai_realtime.audio import PacedPlayer, pcm_source
from aoai_realtime.bench.agents import _spoken_pieces, _truth
from aoai_realtime.client import RealtimeClient
from aoai_realtime.errors import ToolError
from aoai_realtime.protocol import events as ev
from aoai_realtime.protocol.codec import decode_client_event
from aoai_realtime.testing.virtual_time import run_virtual

from .scenarios import barge_in

EngineHarness = harness_module.EngineHarness
from aoai_realtime.engine.brain.base import CallTool, Say  # noqa: E402
from aoai_realtime.engine.brain.scripted import ScriptedBrain  # noqa: E402
from aoai_realtime.engine.speech.tone import ToneTts  # noqa: E402

S = AssistantState
FRAME_MS = 20.0


def sent_events(client: RealtimeClient) -> list[Any]:
    return [decode_client_event(raw) for raw in client.transport.sent]  # type: ignore[attr-defined]


async def wait_turn_done(assistant: VoiceAssistant, timeout: float = 60.0) -> None:
    """Until the assistant is listening with nothing pending (the turn's answer has been heard)."""
    await assistant.wait_until_idle(timeout)


TRANSCRIBED = {"type": "realtime", "audio": {"input": {"transcription": {"model": "whisper-1"}}}}
LONG = "The quick brown fox jumps over the lazy dog. Then it runs far away into the deep green forest."


@pytest.mark.parametrize("barge_after_s", [0.7, 1.31, 2.45])
def test_barge_in_mid_sentence_truncates_at_what_was_played(barge_after_s: float) -> None:
    run = run_virtual(barge_in(LONG, barge_after_s, session=TRANSCRIBED, fallback="Okay."))
    truncates = [e for e in run.sent if isinstance(e, ev.ConversationItemTruncateEvent)]
    assert len(truncates) == 1
    played_ms = run.player.clears[0] / 24.0  # exactly what the player had played when it was cut
    assert abs(truncates[0].audio_end_ms - played_ms) <= FRAME_MS
    assert truncates[0].audio_end_ms <= played_ms  # never claims audio that was not heard
    cut = next(e for e in run.transcript if e.interrupted)
    heard = [w for w, start in zip(LONG.split(), _truth(LONG), strict=True) if start < truncates[0].audio_end_ms]
    assert cut.text.split() == heard
    assert 0 < len(heard) < len(LONG.split())
    # the conversation goes on: the user's words, then the assistant's answer to them
    assert [(e.role, e.text) for e in run.transcript][-2:] == [("user", "stop please"), ("assistant", "Okay.")]


def test_speaking_lasts_until_playback_drains_not_until_response_done() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        async with EngineHarness(brain=ScriptedBrain([[Say("Hello there, how are you today?")]])) as harness:
            client = RealtimeClient(harness.connect())
            player = PacedPlayer(clock=loop.time)
            marks: dict[str, float] = {}
            client.on("response.done", lambda e: marks.setdefault("done", loop.time()))
            async with VoiceAssistant(client, player=player, clock=loop.time) as assistant:
                assistant.on("state_change", lambda c: marks.setdefault(c.new.value, loop.time()))
                await assistant.send_text("hi")
                await wait_turn_done(assistant)
                audio_s = len(player.played) / 2 / 24000
        assert marks["done"] < marks["listening"] - 0.5  # response.done long before the audio ended
        assert marks["listening"] - marks["speaking"] == pytest.approx(audio_s, abs=0.03)

    run_virtual(scenario())


def test_200_random_tool_calls_each_settle_once_in_time_and_the_model_always_speaks() -> None:
    rng = random.Random(4)
    timeouts = {"ok": 2.0, "raises": 2.0, "hangs": 0.5}

    @tool(timeout=timeouts["ok"])
    async def ok(n: int) -> dict[str, int]:
        """Succeeds after a while.

        Args:
            n: A number.
        """
        await asyncio.sleep(rng.random() * 0.3)
        return {"n": n}

    @tool(timeout=timeouts["raises"])
    async def raises(n: int) -> str:
        """Fails."""
        await asyncio.sleep(rng.random() * 0.1)
        if n % 2:
            raise ToolError("refused")
        raise RuntimeError("boom")

    @tool(timeout=timeouts["hangs"])
    async def hangs() -> str:
        """Never returns."""
        await asyncio.Event().wait()
        return "never"

    @tool
    def ghost() -> str:
        """Removed before it is called."""
        raise AssertionError("never called")

    kinds = ["ok", "raises", "hangs", "unknown", "bad_args"]
    turns: list[list[Any]] = []
    total = 0
    while total < 200:
        calls = []
        for _ in range(min(rng.randint(1, 5), 200 - total)):
            kind = rng.choice(kinds)
            if kind == "ok":
                calls.append(CallTool("ok", json.dumps({"n": total})))
            elif kind == "raises":
                calls.append(CallTool("raises", json.dumps({"n": total})))
            elif kind == "hangs":
                calls.append(CallTool("hangs", "{}"))
            elif kind == "unknown":
                calls.append(CallTool("ghost", "{}"))
            else:
                calls.append(CallTool("ok", json.dumps({"n": "not a number", "extra": True})))
            total += 1
        turns.append(calls)
    script: list[list[Any]] = []
    for i, calls in enumerate(turns):
        script.append(calls)
        script.append([Say(f"Done {i}.")])

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        results: list[ToolResult] = []
        async with EngineHarness(brain=ScriptedBrain(script)) as harness:
            client = RealtimeClient(harness.connect())
            config = AssistantConfig(tool_timeout=1.0)
            async with VoiceAssistant(client, tools=[ok, raises, hangs, ghost], config=config, clock=loop.time,
                                      player=PacedPlayer(clock=loop.time, record=False)) as assistant:
                assistant.on("tool_result", results.append)
                # The session offers "ghost"; the app then drops it: calls to it are unknown to the runner
                # (the engine, like the service, only lets the model call tools the session offers).
                assistant.tools.remove("ghost")
                for i, calls in enumerate(turns):
                    before = len(results)
                    await assistant.send_text("go")
                    await wait_turn_done(assistant)
                    assert len(results) - before == len(calls), f"turn {i}: not every call settled"
                    assert assistant.transcript[-1].text == f"Done {i}."  # the model spoke afterwards
                events = sent_events(client)
                transcript = assistant.transcript
                function_calls = [e for e in client.conversation.ordered_items() if e.type == "function_call"]

        assert len(results) == 200
        outputs = Counter(e.item.call_id for e in events
                          if isinstance(e, ev.ConversationItemCreateEvent) and e.item.type == "function_call_output")
        assert len(outputs) == 200 and set(outputs.values()) == {1}
        assert len(function_calls) == 200
        statuses = Counter(r.status for r in results)
        assert set(statuses) == {"ok", "error", "timeout", "unknown_tool", "invalid_arguments"}
        for r in results:
            limit = timeouts.get(r.call.name, 1.0)
            assert r.latency_ms <= (limit + 1.0) * 1000.0
        # one response.create per user message and exactly one per tool turn
        creates = [e for e in events if isinstance(e, ev.ResponseCreateEvent)]
        assert len(creates) == 2 * len(turns)
        spoken = [e.text for e in transcript if e.role == "assistant"]
        assert spoken == [f"Done {i}." for i in range(len(turns))]

    run_virtual(scenario())


def test_tools_running_at_barge_in_are_cancelled_and_still_answered() -> None:
    started = asyncio.Event()

    @tool
    async def slow() -> str:
        """Slow."""
        started.set()
        await asyncio.sleep(30)
        return "late"

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        brain = ScriptedBrain([[CallTool("slow", "{}")]], fallback="Yes?")
        async with EngineHarness(brain=brain) as harness:
            client = RealtimeClient(harness.connect())
            config = AssistantConfig(tool_policy=ToolPolicy.CANCEL, tool_timeout=60)
            async with VoiceAssistant(client, tools=[slow], config=config, clock=loop.time,
                                      player=PacedPlayer(clock=loop.time)) as assistant:
                results: list[ToolResult] = []
                assistant.on("tool_result", results.append)
                await assistant.send_text("go")
                await started.wait()
                assert [c.name for c in assistant.tools_in_flight] == ["slow"]
                assert assistant.state is S.THINKING
                user, _ = ToneTts().synthesize_with_timings("never mind")
                await assistant.stream_audio(pcm_source(user + bytes(2 * 24 * 800), clock=loop.time))
                await wait_turn_done(assistant)
                assert [r.status for r in results] == ["cancelled"]
                assert assistant.transcript[-1].text == "Yes?"

    run_virtual(scenario())


def _rollover_assistant(harness: Any, policy: RolloverPolicy, clock: Any) -> VoiceAssistant:
    return VoiceAssistant(
        connect=lambda: RealtimeClient(harness.connect(), reconnect=None),
        instructions="You are terse.",
        config=AssistantConfig(rollover=policy),
        clock=clock,
        player=PacedPlayer(clock=clock, record=False),
    )


def test_planned_rollover_seeds_the_new_session_and_the_conversation_goes_on() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        brain = ScriptedBrain([[Say("Nice to meet you, Ada.")], [Say("Your name is Ada.")]])
        policy = RolloverPolicy(max_session_s=60, margin_s=20, keep_turns=4)
        async with EngineHarness(brain=brain) as harness:
            assistant = _rollover_assistant(harness, policy, loop.time)
            states_at_switch: list[AssistantState] = []
            assistant.on("rollover", lambda _: states_at_switch.append(assistant.state))
            async with assistant:
                first = assistant.client
                await assistant.send_text("My name is Ada.")
                await wait_turn_done(assistant)
                await asyncio.sleep(45)  # past max - margin
                assert assistant.rollovers == 1 and assistant.client is not first
                assert states_at_switch == [S.LISTENING]
                seeded = [i.content for i in assistant.client.conversation.ordered_items()]
                assert seeded == ["My name is Ada.", "Nice to meet you, Ada."]
                assert assistant.client.session["instructions"].startswith("You are terse.")
                await assistant.send_text("What is my name?")
                await wait_turn_done(assistant)
                texts = [(e.role, e.text) for e in assistant.transcript]
        assert texts == [("user", "My name is Ada."), ("assistant", "Nice to meet you, Ada."),
                         ("user", "What is my name?"), ("assistant", "Your name is Ada.")]

    run_virtual(scenario())


def test_session_expiry_rolls_over_at_once() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        brain = ScriptedBrain([[Say("First answer.")], [Say("Still here.")]])
        # the engine ends the session long before the policy expects it to
        policy = RolloverPolicy(max_session_s=3600, margin_s=60, use_expires_at=False)
        async with EngineHarness(brain=brain, max_session_s=20) as harness:
            assistant = _rollover_assistant(harness, policy, loop.time)
            async with assistant:
                await assistant.send_text("Hello.")
                await wait_turn_done(assistant)
                await asyncio.sleep(30)
                assert assistant.rollovers == 1 and assistant.failure is None
                await assistant.send_text("Are you there?")
                await wait_turn_done(assistant)
                texts = [e.text for e in assistant.transcript if e.role == "assistant"]
        assert texts == ["First answer.", "Still here."]

    run_virtual(scenario())


def test_text_chat_streams_deltas_and_keeps_history() -> None:
    async def scenario() -> None:
        brain = ScriptedBrain([[Say("Hello there, friend.")], [Say("Goodbye.")]])
        async with (
            EngineHarness(brain=brain) as harness,
            TextChat(RealtimeClient(harness.connect()), instructions="Be brief.") as chat,
        ):
            deltas = [d async for d in chat.stream("hi")]
            assert len(deltas) > 1 and "".join(deltas) == "Hello there, friend."
            assert await chat.send("bye") == "Goodbye."
            assert [(e.role, e.text) for e in chat.history] == [
                ("user", "hi"), ("assistant", "Hello there, friend."), ("user", "bye"), ("assistant", "Goodbye.")
            ]

    run_virtual(scenario())


def test_tool_agent_runs_tools_and_returns_the_final_answer() -> None:
    @tool
    async def get_weather(city: str) -> dict[str, str]:
        """Weather for a city."""
        return {"city": city, "sky": "sunny"}

    async def scenario() -> None:
        brain = ScriptedBrain([
            [CallTool("get_weather", '{"city": "Oslo"}'), CallTool("get_weather", '{"city": 5}')],
            [Say("Sunny in Oslo.")],
        ])
        async with (
            EngineHarness(brain=brain) as harness,
            ToolAgent(RealtimeClient(harness.connect()), tools=[get_weather]) as agent,
        ):
            result = await agent.run("Weather in Oslo?")
        assert result.text == "Sunny in Oslo."
        by_status = {r.status: r for r in result.tool_results}
        assert sorted(by_status) == ["invalid_arguments", "ok"]
        assert json.loads(by_status["ok"].output) == {"city": "Oslo", "sky": "sunny"}

    run_virtual(scenario())


class Redialing:
    """A transport that opens a fresh engine session on every connect (as a network reconnect does)."""

    dialect = "ga"
    audio = None

    def __init__(self, harness: Any) -> None:
        self.harness = harness
        self.current: Any = None
        self.sessions = 0

    async def connect(self) -> None:
        self.current = self.harness.connect()
        self.sessions += 1
        await self.current.connect()

    async def send(self, message: bytes) -> None:
        await self.current.send(message)

    async def recv(self) -> bytes:
        return await self.current.recv()  # type: ignore[no-any-return]

    async def close(self) -> None:
        if self.current is not None:
            await self.current.close()


def test_a_dropped_connection_is_reseeded_so_the_conversation_survives() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        brain = ScriptedBrain([[Say("Nice to meet you, Ada.")], [Say("Your name is Ada.")]])
        async with EngineHarness(brain=brain) as harness:
            transport = Redialing(harness)
            client = RealtimeClient(transport)  # type: ignore[arg-type]
            reseeded = asyncio.Event()
            assistant = VoiceAssistant(client, instructions="You are terse.", clock=loop.time,
                                       player=PacedPlayer(clock=loop.time, record=False))
            assistant.on("rollover", lambda _: reseeded.set())
            async with assistant:
                await assistant.send_text("My name is Ada.")
                await wait_turn_done(assistant)
                await transport.current.peer.close(1006, "network drop")  # the client redials
                await asyncio.wait_for(reseeded.wait(), 30)
                assert transport.sessions == 2
                seeded = [i.content for i in client.conversation.ordered_items()]
                assert seeded == ["My name is Ada.", "Nice to meet you, Ada."]
                await assistant.send_text("What is my name?")
                await wait_turn_done(assistant)
                texts = [e.text for e in assistant.transcript]
        assert texts == ["My name is Ada.", "Nice to meet you, Ada.", "What is my name?", "Your name is Ada."]

    run_virtual(scenario())


def test_a_rollover_waiting_for_silence_switches_at_once_when_the_session_expires() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        long_answer = " ".join(["word"] * 60) + "."  # about 12 s of speech
        brain = ScriptedBrain([[Say(long_answer)], [Say("Still here.")]])
        policy = RolloverPolicy(max_session_s=30, margin_s=10, use_expires_at=False)  # planned at 20 s
        async with EngineHarness(brain=brain, max_session_s=25) as harness:
            assistant = _rollover_assistant(harness, policy, loop.time)
            async with assistant:
                start = loop.time()
                await asyncio.sleep(14)
                await assistant.send_text("Talk for a while.")
                await assistant.wait_for_state(S.SPEAKING, timeout=5)
                await asyncio.sleep(8)  # 22 s: the planned rollover is waiting for silence
                assert assistant.rollovers == 0 and assistant.state is S.SPEAKING
                await asyncio.sleep(4)  # 26 s: the session expired at 25 s
                assert assistant.rollovers == 1 and assistant.failure is None
                assert loop.time() - start < 27
                await wait_turn_done(assistant)
                await assistant.send_text("Are you there?")
                await wait_turn_done(assistant)
                assert assistant.transcript[-1].text == "Still here."

    run_virtual(scenario())


STORY = "the quick brown fox jumps over the lazy dog then it runs far away into the deep green forest"


def test_a_g711_session_plays_pcm16_and_barge_in_truncates_at_what_was_played() -> None:
    # A telephony session (audio/pcmu both ways): the assistant still takes and plays pcm16 24 kHz, encodes the
    # microphone to G.711 and decodes the deltas, so the player's clock and the truncation are in real milliseconds.
    # Lower-case words: tone speech puts capitals and punctuation above 4 kHz, where 8 kHz G.711 cannot go.
    pcmu = {"type": "audio/pcmu"}
    session = {
        "type": "realtime",
        "audio": {"input": {"format": pcmu, "transcription": {"model": "whisper-1"}}, "output": {"format": pcmu}},
    }

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        async with EngineHarness(brain=ScriptedBrain([[Say(STORY)]], fallback="okay")) as harness:
            client = RealtimeClient(harness.connect(), session=session)
            player = PacedPlayer(clock=loop.time)
            async with VoiceAssistant(client, player=player, clock=loop.time) as assistant:
                await assistant.send_text("tell me a story")
                await assistant.wait_for_state(S.SPEAKING, timeout=10)
                await asyncio.sleep(1.31)
                user, _ = ToneTts().synthesize_with_timings("stop please")
                await assistant.stream_audio(pcm_source(user + bytes(2 * 24 * 800), clock=loop.time))
                await wait_turn_done(assistant)
                events = sent_events(client)
                transcript = assistant.transcript
                engine = harness.sessions[0]

        appends = [e for e in events if isinstance(e, ev.InputAudioBufferAppendEvent)]
        assert appends and all(len(base64.b64decode(e.audio)) == 160 for e in appends[:-1])  # 20 ms of G.711
        [truncate] = [e for e in events if isinstance(e, ev.ConversationItemTruncateEvent)]
        played_ms = player.clears[0] / 24.0
        assert abs(truncate.audio_end_ms - played_ms) <= FRAME_MS and truncate.audio_end_ms <= played_ms
        # The engine cut its copy at the same millisecond, and the user's G.711 words were understood.
        story = engine.conversation.get(truncate.item_id)
        assert story is not None and len(story.audio[0]) == truncate.audio_end_ms * 48
        cut = next(e for e in transcript if e.interrupted)
        assert 0 < len(cut.text.split()) < len(STORY.split()) and STORY.startswith(cut.text)
        assert [(e.role, e.text) for e in transcript][-2:] == [("user", "stop please"), ("assistant", "okay")]

    run_virtual(scenario())


@pytest.mark.parametrize("text", [LONG, "Yes, that works for me.", "Sure, one moment, please. Done."])
def test_the_benchmarks_ground_truth_is_the_audio_the_engine_speaks(text: str) -> None:
    # bench_agents scores transcript timing against _truth(); it must follow how the engine cuts its speech
    # (the first clause early, then each sentence), or the benchmark measures its own error.
    async def scenario() -> bytes:
        audio = bytearray()
        async with (
            EngineHarness(brain=ScriptedBrain([[Say(text)]])) as harness,
            RealtimeClient(harness.connect()) as client,
        ):
            client.on("response.output_audio.delta", lambda e: audio.extend(base64.b64decode(e.delta)))
            await client.create_response()
            await client.wait_for("response.done", timeout=30)
        return bytes(audio)

    audio = run_virtual(scenario())
    pieces = [ToneTts().synthesize_with_timings(p)[0] for p in _spoken_pieces(text)]
    assert audio == b"".join(pieces)  # the same samples, so the same word starts as _truth() computes
    assert len(_truth(text)) == len(text.split())
