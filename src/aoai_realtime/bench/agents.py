"""Agent benchmarks against the local engine (in memory), printing their figures.

    .venv/bin/python bench/bench_agents.py [--sessions 12] [--turns 12] [--realtime]

1. Transcript sync error: the mean |time a word is shown - time it is spoken| over every assistant word of
   ``--sessions`` sessions, for ours (words revealed by the playback clock) and for the TypeScript SDK's drip
   (one transcript chunk every 285 ms from the start of playback, the rest flushed when playback ends), on the
   same sessions. "Spoken" is exact: the engine speaks with tone TTS, whose word timings are known to the
   sample, and the player reports what it played. Runs on a virtual clock (deterministic, instant) unless
   ``--realtime``. Target: ours under 80 ms and at least 3x better than the drip.
2. End of user speech -> first audio heard, p50/p95, on the real clock, in memory and over a real WebSocket on
   127.0.0.1: the user's words (tone speech) are streamed at microphone pace, the engine's VAD ends the turn
   (its silence wait is part of the figure, as users feel it), the scripted brain answers; measured at the
   client from the moment the last speech sample was sent to the moment the first answer sample was played.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from dataclasses import dataclass
from typing import Any

import typer

from ..agents.state import AssistantState
from ..agents.transcript import TranscriptEntry
from ..agents.voice import AssistantConfig, VoiceAssistant
from ..audio.player import PacedPlayer
from ..audio.source import pcm_source
from ..testing.virtual_time import run_virtual

__all__ = ["TEXTS", "main", "measure_latency", "measure_sync", "register"]

TEXTS = [
    "Hello there! How can I help you today?",
    "The weather in Oslo is cold and clear, with a light wind from the north.",
    "Sure. I have booked a table for two at seven thirty tonight.",
    "Your order has shipped. It should arrive on Tuesday, before noon.",
    "I am sorry, I did not catch that. Could you say it again, please?",
    "Paris is the capital of France. It is known for art, food and the Eiffel tower.",
    "Okay.",
    "Three things: buy milk, call Anna, and send the quarterly report to finance before Friday.",
    "The meeting moved to room four. Bring the slides, the budget sheet and your laptop charger.",
    "Yes, that works for me.",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen inside the leaves of plants.",
    "Let me check. One moment. Your balance is forty two dollars and ten cents.",
]

DRIP_MS = 285.0


@dataclass
class SyncResult:
    ours_ms: list[float]
    drip_ms: list[float]
    ours_text_only_ms: list[float]


def _spoken_pieces(text: str) -> list[str]:
    """The pieces the engine synthesises one at a time, in order: the words arrive as the scripted brain splits
    them, and the engine's own rules (``engine.responses.ready_to_speak`` and ``first_words_ready``) decide where a
    piece ends."""
    from ..engine.brain.scripted import split_words
    from ..engine.responses import first_words_ready, ready_to_speak

    pieces: list[str] = []
    pending = ""
    for word in split_words(text):
        if not pieces and first_words_ready(pending, word):
            pieces.append(pending.strip())
            pending = ""
        pending += word
        if ready_to_speak(pending, first=not pieces):
            pieces.append(pending.strip())
            pending = ""
    if pending.strip():
        pieces.append(pending.strip())
    return pieces


def _truth(text: str) -> list[float]:
    """Word starts (ms from the start of the answer) as the engine speaks it: tone TTS one piece at a time."""
    from ..engine.speech.tone import ToneTts

    tts = ToneTts()
    starts: list[float] = []
    offset = 0.0
    for piece in _spoken_pieces(text):
        pcm, timings = tts.synthesize_with_timings(piece)
        starts.extend(offset + t.start_ms for t in timings)
        offset += len(pcm) / 2 / 24.0
    return starts


async def _sync_session(text: str, *, onsets: bool = True) -> tuple[list[float], list[float]]:
    from ..client import RealtimeClient
    from ..engine.brain.base import Say
    from ..engine.brain.scripted import ScriptedBrain
    from ..testing.engine import EngineHarness

    loop = asyncio.get_running_loop()
    shown: dict[int, float] = {}
    chunks: list[str] = []
    end_at: list[float] = []
    async with EngineHarness(brain=ScriptedBrain([[Say(text)]])) as harness:
        client = RealtimeClient(harness.connect())
        player = PacedPlayer(clock=loop.time)
        config = AssistantConfig(audio_onsets=onsets)
        assistant = VoiceAssistant(client, player=player, clock=loop.time, config=config)

        def on_transcript(entries: list[TranscriptEntry]) -> None:
            said = [e for e in entries if e.role == "assistant"]
            if said:
                for k in range(len(said[-1].text.split())):
                    shown.setdefault(k, loop.time())

        def on_event(event: Any) -> None:
            if event.type == "response.output_audio_transcript.delta":
                chunks.append(event.delta)

        assistant.on("transcript", on_transcript)
        client.on("response.output_audio_transcript.delta", on_event)
        async with assistant:
            await assistant.send_text("go")
            await assistant.wait_for_state(AssistantState.SPEAKING, timeout=30)
            await assistant.wait_for_state(AssistantState.LISTENING, timeout=60)
            end_at.append(loop.time())
            turn = assistant.turns[-1]
    assert turn.first_audio_at is not None
    start = turn.first_audio_at
    truth = [start + t / 1000.0 for t in _truth(text)]
    words = text.split()
    if len(truth) != len(words) or len(shown) != len(words):
        raise RuntimeError(f"word count mismatch for {text!r}: {len(truth)} spoken, {len(shown)} shown")
    ours = [abs(shown[k] - truth[k]) * 1000.0 for k in range(len(words))]
    # The drip: chunk j appears at start + (j + 1) * 285 ms, or at the end of playback if that comes first.
    drip_times: list[float] = []
    for j in range(len(chunks)):
        drip_times.append(min(start + (j + 1) * DRIP_MS / 1000.0, end_at[0]))
    drip_words: list[float] = []
    for j, chunk in enumerate(chunks):
        drip_words.extend([drip_times[j]] * len(chunk.split()))
    drip = [abs(drip_words[k] - truth[k]) * 1000.0 for k in range(len(words))]
    return ours, drip


async def measure_sync(texts: list[str]) -> SyncResult:
    result = SyncResult([], [], [])
    for text in texts:
        ours, drip = await _sync_session(text)
        result.ours_ms.extend(ours)
        result.drip_ms.extend(drip)
        text_only, _ = await _sync_session(text, onsets=False)
        result.ours_text_only_ms.extend(text_only)
    return result


async def measure_latency(turns: int, *, transport: str = "memory") -> list[float]:
    """End of user speech -> first audio heard, in ms, for ``turns`` spoken turns on the real clock, over the
    in-memory transport or a real WebSocket on 127.0.0.1."""
    from ..engine.brain.base import Say
    from ..engine.brain.scripted import ScriptedBrain
    from ..engine.speech.tone import ToneTts

    tts = ToneTts()
    user, _ = tts.synthesize_with_timings("what is the time")
    silence = bytes(2 * 24 * 900)

    def brain() -> ScriptedBrain:
        return ScriptedBrain([[Say("It is noon.")] for _ in range(turns)])

    async def run(client: Any) -> list[float]:
        async with VoiceAssistant(client, config=AssistantConfig()) as assistant:
            for _ in range(turns):
                await assistant.stream_audio(pcm_source(bytes(2 * 24 * 300) + user + silence))
                await assistant.wait_until_idle(30)
            return [t.response_latency_ms for t in assistant.turns if t.response_latency_ms is not None]

    from ..client import RealtimeClient

    if transport == "memory":
        from ..testing.engine import EngineHarness

        async with EngineHarness(brain=brain) as harness:
            return await run(RealtimeClient(harness.connect()))
    from ..auth import ApiKey
    from ..endpoints import Endpoint
    from ..engine import Engine, EngineConfig
    from ..testing.engine import load_test_speech, serve_engine
    from ..transport.websocket import WebSocketTransport

    engine = Engine(EngineConfig(api_key="bench-key", brain=brain, speech=load_test_speech("fake")))
    async with serve_engine(engine) as url:
        ws = WebSocketTransport(Endpoint.local(f"{url}/v1"), ApiKey("bench-key", style="bearer"))
        return await run(RealtimeClient(ws))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=len(TEXTS))
    parser.add_argument("--turns", type=int, default=12)
    parser.add_argument("--realtime", action="store_true", help="run the sync benchmark on the real clock")
    args = parser.parse_args(argv)
    texts = [TEXTS[i % len(TEXTS)] for i in range(args.sessions)]
    sync = asyncio.run(measure_sync(texts)) if args.realtime else run_virtual(measure_sync(texts))
    ours, drip = statistics.mean(sync.ours_ms), statistics.mean(sync.drip_ms)
    clock = "real" if args.realtime else "virtual"
    print(f"transcript sync error over {len(sync.ours_ms)} words, {args.sessions} sessions ({clock} clock):")
    text_only = statistics.mean(sync.ours_text_only_ms)
    print(f"  ours           mean {ours:7.1f} ms   p95 {_pct(sync.ours_ms, 0.95):7.1f} ms"
          "   (playback clock + text/audio anchors + speech onsets)")
    print(f"  ours, no audio mean {text_only:7.1f} ms   p95 {_pct(sync.ours_text_only_ms, 0.95):7.1f} ms"
          "   (playback clock + text/audio anchors, audio_onsets=False)")
    print(f"  285 ms drip    mean {drip:7.1f} ms   p95 {_pct(sync.drip_ms, 0.95):7.1f} ms")
    print(f"  drip / ours    {drip / ours:7.1f}x   drip / ours-no-audio {drip / text_only:5.1f}x"
          "   (target: ours < 80 ms and >= 3x better)")
    if args.turns > 0:
        print("end of user speech -> first audio heard (engine with tone speech, real clock):")
        for transport, label in (("memory", "in memory          "), ("websocket", "WebSocket 127.0.0.1")):
            latencies = asyncio.run(measure_latency(args.turns, transport=transport))
            print(f"  {label}  {len(latencies)} turns   p50 {_pct(latencies, 0.5):7.1f} ms"
                  f"   p95 {_pct(latencies, 0.95):7.1f} ms")


def register(bench_app: typer.Typer) -> None:
    """Add ``agents`` to the ``bench`` sub-app."""

    @bench_app.command("agents")
    def bench_agents(
        sessions: int = typer.Option(12, help="Sessions for the transcript sync error."),
        turns: int = typer.Option(12, help="Spoken turns for the latency figures (0: skip)."),
        realtime: bool = typer.Option(False, help="Run the sync benchmark on the real clock."),
    ) -> None:
        """Transcript sync error (ours vs a 285 ms drip) and end of speech -> first audio heard, p50/p95."""
        argv = ["--sessions", str(sessions), "--turns", str(turns)]
        main([*argv, "--realtime"] if realtime else argv)
