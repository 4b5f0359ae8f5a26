"""Agent benchmarks against the local engine (in memory), printing their figures.

    .venv/bin/python bench/bench_agents.py [--sessions 12] [--turns 12] [--speech tone|piper|all] [--realtime]

1. Transcript sync error: the mean and p95 |time a word is shown - time it is spoken| over every assistant word of
   ``--sessions`` answers, per voice and pace: tone speech and piper (the engine's real voice) at four paces each
   from about 200 to 350 ms per word, the pace measured as audio per word. For ours (words revealed by the
   playback clock, with and without speech onsets), the TypeScript SDK's drip (one transcript chunk every 285 ms
   from the start of playback, the rest flushed when playback ends) and a drip tuned to the voice's measured
   pace, on the same sessions. "Spoken" is the truth the voice recorded of the pieces the engine asked it for
   (``bench.spoken``: tone's exact word timings; piper's phoneme durations). Runs on a virtual clock
   (deterministic apart from piper's random noise, instant) unless ``--realtime``. Target (issue 15): ours under
   50 ms at every pace on piper speech.
2. End of user speech -> first audio heard, p50/p95, on the real clock, in memory and over a real WebSocket on
   127.0.0.1: the user's words (tone speech) are streamed at microphone pace, the engine's VAD ends the turn
   (its silence wait is part of the figure, as users feel it), the scripted brain answers; measured at the
   client from the moment the last speech sample was sent to the moment the first answer sample was played.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
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
from .spoken import PiperVoice, SpokenPiece, TimedTts, TimedVoice, ToneVoice, alignment_available

__all__ = ["TEXTS", "SyncRow", "main", "measure_latency", "measure_sync", "print_sync_table", "register"]

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
class SessionRecord:
    """One answer as the user got it: when each word was shown and when it was spoken (loop seconds), the
    transcript deltas' word counts and when playback started and ended."""

    shown: list[float]
    spoken: list[float]
    chunk_words: list[int]
    start: float
    end: float
    audio_ms: float


@dataclass
class SyncRow:
    """One voice at one pace, over every session: ``pace_ms`` is the measured audio per word."""

    voice: str
    knob: float
    pace_ms: float
    words: int
    ours_ms: list[float]
    ours_text_only_ms: list[float]
    drip_ms: list[float]  # the fixed 285 ms drip
    drip_at_pace_ms: list[float]  # a drip tuned to this voice's pace: one chunk every ``pace_ms``


def _spoken_pieces(text: str) -> list[str]:
    """The pieces the engine synthesises one at a time, in order, for tone speech answered at once (the scripted
    brain, in memory, on the virtual clock): the words arrive as the scripted brain splits them, and the engine's
    own rules (``engine.responses.ready_to_speak``, ``first_words_ready`` and ``engine.pacing.hurry``) decide
    where a piece ends. Tone synthesis is instant there and no time passes while the answer streams, so the audio
    in hand is all the audio made so far. (The sync benchmark itself needs none of this: its voice records the
    pieces the engine asked for.)"""
    from ..engine.brain.scripted import split_words
    from ..engine.pacing import TtsPace, hurry
    from ..engine.responses import first_words_ready, ready_to_speak
    from ..engine.speech.tone import ToneTts

    instant = TtsPace(speed=1e6)
    tts = ToneTts()
    pieces: list[str] = []
    audio_ms = 0.0
    pending = ""

    def cut() -> None:
        nonlocal pending, audio_ms
        piece = pending.strip()
        pending = ""
        if piece:
            pieces.append(piece)
            audio_ms += len(tts.synthesize_with_timings(piece)[0]) / 48.0

    for word in split_words(text):
        early = not pieces or hurry(pending, ahead_ms=audio_ms, pace=instant)
        if early and first_words_ready(pending, word):
            cut()
        pending += word
        if ready_to_speak(pending, first=early):
            cut()
    cut()
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


async def _sync_session(
    text: str,
    voice: TimedVoice,
    cache: dict[tuple[str, float, str], SpokenPiece],
    *,
    onsets: bool = True,
    word_timings: bool = True,
) -> SessionRecord:
    """Speak ``text`` with ``voice`` through the engine to a :class:`VoiceAssistant` playing it on a paced player,
    as a user's app does; the truth is what the voice recorded of the pieces the engine asked it for."""
    from ..client import RealtimeClient
    from ..engine.brain.base import Say
    from ..engine.brain.scripted import ScriptedBrain
    from ..engine.speech.load import Speech
    from ..engine.speech.tone import ToneStt
    from ..engine.speech.vad import EnergyVad
    from ..testing.engine import EngineHarness

    loop = asyncio.get_running_loop()
    tts = TimedTts(voice, cache, offer_timings=word_timings)
    speech = Speech(kind="bench", new_vad=EnergyVad, stt=ToneStt(), tts=tts)
    shown: dict[int, float] = {}
    chunks: list[str] = []
    async with EngineHarness(brain=ScriptedBrain([[Say(text)]]), speech=speech) as harness:
        client = RealtimeClient(harness.connect())
        frames: list[tuple[float, int]] = []  # (when a frame starts playing, samples played before it)

        async def sleep(seconds: float) -> None:
            if player._frame_started is not None:
                frames.append((player._frame_started, player.played_samples))
            await asyncio.sleep(seconds)

        player = PacedPlayer(clock=loop.time, sleep=sleep)
        config = AssistantConfig(audio_onsets=onsets)
        assistant = VoiceAssistant(client, player=player, clock=loop.time, config=config)

        def on_transcript(entries: list[TranscriptEntry]) -> None:
            said = [e for e in entries if e.role == "assistant"]
            if said:
                for k in range(len(said[-1].text.split())):
                    shown.setdefault(k, loop.time())

        def on_event(event: Any) -> None:
            chunks.append(event.delta)

        assistant.on("transcript", on_transcript)
        client.on("response.output_audio_transcript.delta", on_event)
        async with assistant:
            await assistant.send_text("go")
            await assistant.wait_for_state(AssistantState.SPEAKING, timeout=60)
            await assistant.wait_for_state(AssistantState.LISTENING, timeout=600)
            end = loop.time()
            turn = assistant.turns[-1]
    assert turn.first_audio_at is not None
    start = turn.first_audio_at
    # When each word was heard: where its first sample played (after an underrun the player starts again later).
    spoken = [_played_at(frames, round(t * 24)) for t in tts.word_starts_ms()]
    words = text.split()
    if len(spoken) != len(words) or len(shown) != len(words):
        raise RuntimeError(f"word count mismatch for {text!r}: {len(spoken)} spoken, {len(shown)} shown")
    return SessionRecord(
        shown=[shown[k] for k in range(len(words))],
        spoken=spoken,
        chunk_words=[len(c.split()) for c in chunks],
        start=start,
        end=end,
        audio_ms=tts.audio_ms,
    )


def _played_at(frames: list[tuple[float, int]], sample: int) -> float:
    """When ``sample`` (24 kHz, from the start of the answer) played, from the player's frame schedule."""
    index = max(0, bisect.bisect_right([position for _, position in frames], sample) - 1)
    began, position = frames[index]
    return began + (sample - position) / 24000.0


def _drip_errors(record: SessionRecord, interval_ms: float) -> list[float]:
    """The TypeScript SDK's drip: transcript chunk j appears at start + (j + 1) * interval, or when playback
    ends if that comes first."""
    times: list[float] = []
    for j, count in enumerate(record.chunk_words):
        times.extend([min(record.start + (j + 1) * interval_ms / 1000.0, record.end)] * count)
    return [abs(t - s) * 1000.0 for t, s in zip(times, record.spoken, strict=True)]


async def measure_sync(texts: list[str], voice: TimedVoice | None = None, *, word_timings: bool = True) -> SyncRow:
    """Sync errors (ms per word) over ``texts``, one session each, for ours with and without speech onsets and
    for the two drips. ``voice`` defaults to tone speech at its usual pace. ``word_timings=False``: the engine
    gets no word timings from the voice even when its TTS could give them (as against a service that has none)."""
    voice = voice or ToneVoice()
    cache: dict[tuple[str, float, str], SpokenPiece] = {}
    records = [await _sync_session(text, voice, cache, word_timings=word_timings) for text in texts]
    text_only = [await _sync_session(text, voice, cache, onsets=False, word_timings=word_timings) for text in texts]
    words = sum(len(r.spoken) for r in records)
    pace = sum(r.audio_ms for r in records) / words
    return SyncRow(
        voice=voice.name,
        knob=voice.pace,
        pace_ms=pace,
        words=words,
        ours_ms=[abs(a - b) * 1000.0 for r in records for a, b in zip(r.shown, r.spoken, strict=True)],
        ours_text_only_ms=[abs(a - b) * 1000.0 for r in text_only for a, b in zip(r.shown, r.spoken, strict=True)],
        drip_ms=[e for r in records for e in _drip_errors(r, DRIP_MS)],
        drip_at_pace_ms=[e for r in records for e in _drip_errors(r, pace)],
    )


# Knobs that put each voice at about 200, 240, 285 and 350 ms per word on TEXTS (the pace is measured, not assumed).
TONE_SCALES = (0.975, 1.175, 1.4, 1.725)
PIPER_SCALES = (0.51, 0.675, 0.865, 1.14)


_ENGINE_INSTALL = "pip install 'aoai-realtime[engine]'"


def _voices(which: str) -> list[TimedVoice]:
    voices: list[TimedVoice] = []
    if which in ("tone", "all"):
        voices.extend(ToneVoice(s) for s in TONE_SCALES)
    if which in ("piper", "all"):
        if alignment_available():
            voices.extend(PiperVoice(s) for s in PIPER_SCALES)
        elif which == "piper":
            raise SystemExit(f"piper speech needs the engine extra: {_ENGINE_INSTALL}")
        else:
            print(f"(piper rows skipped: they need the engine extra: {_ENGINE_INSTALL})")
    return voices


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


def _cell(values: list[float]) -> str:
    return f"{statistics.mean(values):6.1f} / {_pct(values, 0.95):6.1f}"


def print_sync_table(rows: list[SyncRow]) -> None:
    header = ("voice  knob   ms/word words |  ours mean / p95  | ours no-onsets    |  285 ms drip      |"
              "  drip at pace")
    print(header)
    for row in rows:
        print(f"{row.voice:5s} {row.knob:5.3f} {row.pace_ms:8.1f} {row.words:5d} | {_cell(row.ours_ms)} ms |"
              f" {_cell(row.ours_text_only_ms)} ms | {_cell(row.drip_ms)} ms | {_cell(row.drip_at_pace_ms)} ms")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=len(TEXTS))
    parser.add_argument("--turns", type=int, default=12)
    parser.add_argument("--speech", choices=("tone", "piper", "all"), default="all",
                        help="the voices of the sync table (piper needs the engine extra)")
    parser.add_argument("--realtime", action="store_true", help="run the sync benchmark on the real clock")
    parser.add_argument("--no-word-timings", action="store_true",
                        help="give the engine no word timings even where its piper voice has them")
    args = parser.parse_args(argv)
    texts = [TEXTS[i % len(TEXTS)] for i in range(args.sessions)]
    clock = "real" if args.realtime else "virtual"
    print(f"transcript sync error |shown - spoken| per word, mean / p95, {args.sessions} sessions per row"
          f" ({clock} clock; target: ours < 50 ms at every pace from 200 to 350 ms/word):")
    rows: list[SyncRow] = []
    for voice in _voices(args.speech):
        run = measure_sync(texts, voice, word_timings=not args.no_word_timings)
        rows.append(asyncio.run(run) if args.realtime else run_virtual(run))
    print_sync_table(rows)
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
        sessions: int = typer.Option(12, help="Sessions per row of the transcript sync table."),
        turns: int = typer.Option(12, help="Spoken turns for the latency figures (0: skip)."),
        speech: str = typer.Option("all", help="Voices of the sync table: tone, piper or all."),
        realtime: bool = typer.Option(False, help="Run the sync benchmark on the real clock."),
        word_timings: bool = typer.Option(True, help="Let the engine use its voice's word timings, where it has them."),
    ) -> None:
        """Transcript sync error (ours vs the 285 ms drip and a drip at the voice's pace, tone and piper speech at
        200-350 ms/word) and end of speech -> first audio heard, p50/p95."""
        argv = ["--sessions", str(sessions), "--turns", str(turns), "--speech", speech]
        argv += ["--realtime"] if realtime else []
        main(argv if word_timings else [*argv, "--no-word-timings"])
