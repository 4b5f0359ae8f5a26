"""Benchmark the local engine; prints figures (issue 3, item 9).

1. Engine overhead: from the moment the client has sent the audio that makes the end of speech detectable
   (end of speech + ``silence_duration_ms``) to the first ``response.output_audio.delta``, p50/p95 over N turns
   with the scripted brain. Measured in memory and over a real WebSocket on 127.0.0.1, with fake speech
   (energy VAD, tone TTS) and with full speech (silero VAD, piper TTS).
2. CPU per real-time second of a call with full speech (silero VAD, whisper transcription on, piper TTS,
   rules brain waiting for the transcript), audio streamed in real time.
3. Concurrent real-time calls one engine process holds: K sessions streaming audio in real time (20 ms chunks)
   with fake speech; a level holds if every chunk is sent within 60 ms of its due time and the p95 turn
   overhead stays under 200 ms.

Run: ``.venv/bin/python bench/bench_engine.py`` (or ``aoai-realtime bench engine``). AOAI_BENCH_TURNS=N
changes the number of turns (default 50). The machine is shared: read medians and ratios, not absolutes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import statistics
import time
from typing import Any

import websockets

from aoai_realtime.engine import Engine, EngineConfig, ScriptedBrain
from aoai_realtime.engine.brain.rules import RulesBrain
from aoai_realtime.testing.audio import silence, speak_flite, tone
from aoai_realtime.testing.engine import EngineHarness, load_test_speech, serve_engine

SILENCE_MS = 300
CHUNK_MS = 20


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def append(pcm: bytes) -> bytes:
    return json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}).encode()


class Pipe:
    """send/recv over either a MemoryTransport or a websockets connection."""

    def __init__(self, conn: Any, ws: bool) -> None:
        self.conn = conn
        self.ws = ws

    async def send(self, data: bytes) -> None:
        await self.conn.send(data.decode() if self.ws else data)

    async def recv(self) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.conn.recv(), 60)  # a stuck run fails instead of hanging
        return dict(json.loads(raw))


async def turns_overhead(
    pipe: Pipe, turns: int, speech_pcm: bytes, *, realtime: bool = False, vad_part: list[float] | None = None
) -> list[float]:
    """Per turn: ms from sending the chunk that completes end-of-speech + silence to the first audio delta.

    ``vad_part`` collects the share of it spent before ``speech_stopped`` arrives (the VAD's decision)."""
    while (await pipe.recv())["type"] != "session.created":
        pass
    await pipe.send(json.dumps({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
        "turn_detection": {"type": "server_vad", "silence_duration_ms": SILENCE_MS}}}}}).encode())
    while (await pipe.recv())["type"] != "session.updated":
        pass
    results = []
    step = CHUNK_MS * 48
    for _ in range(turns):
        audio = silence(200) + speech_pcm
        tail = silence(SILENCE_MS + 100)
        for start in range(0, len(audio), step):
            await pipe.send(append(audio[start : start + step]))
            if realtime:
                await asyncio.sleep(CHUNK_MS / 1000)
        sent_at = 0.0
        for start in range(0, len(tail), step):
            await pipe.send(append(tail[start : start + step]))
            if start + step >= SILENCE_MS * 48 and not sent_at:
                sent_at = time.perf_counter()
            if realtime:
                await asyncio.sleep(CHUNK_MS / 1000)
        while True:
            event = await pipe.recv()
            if event["type"] == "input_audio_buffer.speech_stopped" and vad_part is not None and sent_at:
                vad_part.append((time.perf_counter() - sent_at) * 1000)
            if event["type"] == "response.output_audio.delta" and sent_at:
                results.append((time.perf_counter() - sent_at) * 1000)
                sent_at = 0.0
            if event["type"] == "response.done":
                break
        while (await pipe.recv())["type"] != "rate_limits.updated":
            pass
    return results


def engine_for(speech: Any, brain: Any = None) -> Engine:
    brain = brain or (lambda: ScriptedBrain([], fallback="Sure, here you go."))
    return Engine(EngineConfig(api_key="bench", brain=brain, speech=speech))


async def bench_latency(turns: int) -> None:
    print(f"\n1. engine overhead, end of speech (+{SILENCE_MS} ms silence) -> first audio delta, {turns} turns, "
          "scripted brain")
    speech_pcm = speak_flite("Hello there, how are you today?")
    for speech_kind in ("fake", "full"):
        speech = load_test_speech(speech_kind)
        vad: list[float] = []
        async with EngineHarness(engine_for(speech)) as harness:
            mem = await turns_overhead(Pipe(harness.connect(), ws=False), turns, speech_pcm, vad_part=vad)
        async with serve_engine(engine_for(speech)) as url:
            ws_url = url.replace("http://", "ws://") + "/v1/realtime?model=gpt-realtime"
            async with websockets.connect(ws_url, additional_headers={"api-key": "bench"}, max_size=None) as ws:
                sock = await turns_overhead(Pipe(ws, ws=True), turns, speech_pcm)
        for label, values in (("in-memory", mem), ("websocket", sock)):
            print(f"   speech={speech_kind:<4} {label:<9}  p50 {statistics.median(values):6.1f} ms   "
                  f"p95 {pct(values, 0.95):6.1f} ms   max {max(values):6.1f} ms   (n={len(values)})")
        print(f"   speech={speech_kind:<4} of which the VAD's stop decision (in-memory): p50 "
              f"{statistics.median(vad):6.1f} ms   p95 {pct(vad, 0.95):6.1f} ms; the rest is brain + TTS first chunk")


async def bench_cpu() -> None:
    print("\n2. CPU per real-time second of a call, full speech (silero VAD + whisper transcription + piper TTS, "
          "rules brain)")
    speech = load_test_speech("full")
    said = [speak_flite("What is the weather like in Paris today?"), speak_flite("Please remember my name is Ada.")]
    async with EngineHarness(engine_for(speech, RulesBrain)) as harness:
        pipe = Pipe(harness.connect(), ws=False)
        while (await pipe.recv())["type"] != "session.created":
            pass
        await pipe.send(json.dumps({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
            "transcription": {"model": "whisper-1"}}}}}).encode())
        cpu0, wall0 = time.process_time(), time.perf_counter()
        audio_ms = 0
        drained: list[str] = []

        async def reader() -> None:
            while True:
                drained.append((await pipe.recv())["type"])

        task = asyncio.create_task(reader())
        step = CHUNK_MS * 48
        t_next = time.perf_counter()
        for utterance in said:
            audio = silence(500) + utterance + silence(3000)  # room for the reply to be generated
            for start in range(0, len(audio), step):
                await pipe.send(append(audio[start : start + step]))
                audio_ms += CHUNK_MS
                t_next += CHUNK_MS / 1000
                await asyncio.sleep(max(0.0, t_next - time.perf_counter()))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        task.cancel()
    responses = drained.count("response.done")
    print(f"   {audio_ms / 1000:.1f} s of call audio in {wall:.1f} s wall, {responses} responses, "
          f"{drained.count('conversation.item.input_audio_transcription.completed')} transcripts")
    print(f"   CPU {cpu:.2f} s -> {cpu / (audio_ms / 1000) * 1000:.0f} ms CPU per call-second "
          f"(~{(os.cpu_count() or 1) / (cpu / (audio_ms / 1000)):.1f} such calls on {os.cpu_count()} cores)")


async def one_realtime_call(harness: EngineHarness, seconds: float, lateness: list[float],
                            overheads: list[float]) -> None:  # fmt: skip
    pipe = Pipe(harness.connect(), ws=False)
    while (await pipe.recv())["type"] != "session.created":
        pass
    step = CHUNK_MS * 48
    speech_pcm = tone(800, 300.0)
    audio = b""
    while len(audio) < seconds * 48000:
        audio += silence(300) + speech_pcm + silence(1200)
    end_marks = set()
    pos = 0
    while pos < len(audio):
        pos += 300 * 48 + len(speech_pcm)
        end_marks.add((pos + 200 * 48) // step)  # the chunk completing the default 200 ms of silence
        pos += 1200 * 48
    sent: dict[int, float] = {}

    async def reader() -> None:
        pending: list[float] = []
        while True:
            event = await pipe.recv()
            if event["type"] == "input_audio_buffer.speech_stopped":
                pending.append(max(sent.values()) if sent else time.perf_counter())
            if event["type"] == "response.output_audio.delta" and pending:
                overheads.append((time.perf_counter() - pending.pop(0)) * 1000)

    task = asyncio.create_task(reader())
    t0 = time.perf_counter()
    for i, start in enumerate(range(0, len(audio), step)):
        due = t0 + i * CHUNK_MS / 1000
        now = time.perf_counter()
        if due > now:
            await asyncio.sleep(due - now)
        lateness.append((time.perf_counter() - due) * 1000)
        await pipe.send(append(audio[start : start + step]))
        if i in end_marks:
            sent[i] = time.perf_counter()
    await asyncio.sleep(0.5)
    task.cancel()


async def bench_concurrency() -> None:
    print("\n3. concurrent real-time calls in one engine process (fake speech, scripted brain, in-memory, 6 s each)")
    speech = load_test_speech("fake")
    best = 0
    for k in (5, 10, 20, 40, 80):
        lateness: list[float] = []
        overheads: list[float] = []
        async with EngineHarness(engine_for(speech)) as harness:
            await asyncio.gather(*(one_realtime_call(harness, 6.0, lateness, overheads) for _ in range(k)))
        late95 = pct(lateness, 0.95)
        over95 = pct(overheads, 0.95) if overheads else float("inf")
        ok = late95 < 60 and over95 < 200
        print(f"   {k:3d} calls: chunk lateness p95 {late95:6.1f} ms, turn overhead p95 {over95:6.1f} ms "
              f"({len(overheads)} turns) -> {'holds' if ok else 'falls behind'}")
        if not ok:
            break
        best = k
    print(f"   holds {best} concurrent real-time calls (fake speech); with full speech see the CPU figure above")


async def main() -> None:
    turns = int(os.environ.get("AOAI_BENCH_TURNS", "50"))
    print(f"bench_engine on {os.cpu_count()} cores (shared machine: compare medians, expect noise)")
    await bench_latency(turns)
    await bench_cpu()
    await bench_concurrency()


if __name__ == "__main__":
    asyncio.run(main())
