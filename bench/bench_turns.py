"""False turn ends on pauses inside sentences: semantic_vad with Smart Turn v3.2 against server_vad (issue 13).

Each case is one spoken sentence (piper's voice) cut after a word that cannot end it ("...book a table for"),
with a pause of PAUSE_MS, then the rest, then 5 s of silence. It is fed to an engine session (silero VAD) as a
client would stream it. A false end is a ``speech_stopped`` during the pause; the figure that matters beside it
is how long the end of the finished sentence took to be called (from the end of its synthesized audio).

Run: ``ORT_DISABLE_TELEMETRY=1 .venv/bin/python bench/bench_turns.py`` (needs pipecat-ai installed with
--no-deps, and the engine's speech models). Piper reads cut-off phrases with a final intonation, which is harder
than people: read the result as a floor. Piper is not deterministic: runs differ by a case or two.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
from typing import Any

from aoai_realtime.engine import EngineSession, FakeClock, Ids, ScriptedBrain, SessionOptions, SpeechKit
from aoai_realtime.engine.speech import SileroVad, load_speech
from aoai_realtime.engine.speech.endofturn import SmartTurn
from aoai_realtime.protocol import events as ev
from aoai_realtime.testing.audio import silence

PAUSE_MS = int(os.environ.get("AOAI_BENCH_PAUSE_MS", "700"))
CASES = [
    ("I would like to book a table for", "four people tonight."),
    ("Can you tell me the weather in", "Paris tomorrow?"),
    ("My order number is two three", "seven nine."),
    ("I need to change my", "delivery address please."),
    ("Could you remind me to call my mother at", "six thirty this evening?"),
    ("The problem is that when I", "open the app it crashes."),
    ("I want to transfer money from my savings to", "my checking account."),
    ("What time does the", "pharmacy close today?"),
    ("Please send the report to", "the whole team by Friday."),
    ("I was wondering if you could", "help me with my password."),
    ("Set an alarm for", "seven in the morning."),
    ("Tell me a story about a", "dragon who learns to fly."),
]
MODES: dict[str, dict[str, Any]] = {
    "server_vad 500 ms": {"type": "server_vad", "silence_duration_ms": 500, "create_response": False},
    "semantic_vad auto": {"type": "semantic_vad", "eagerness": "auto", "create_response": False},
    "semantic_vad high": {"type": "semantic_vad", "eagerness": "high", "create_response": False},
}


async def one(speech: SpeechKit, td: dict[str, Any], first: bytes, rest: bytes) -> tuple[bool, int | None]:
    """(a false end in the pause, ms from the last word to the decided end) for one case."""
    session = EngineSession(SessionOptions(), brain=ScriptedBrain([]), speech=speech, clock=FakeClock(),
                            ids=Ids(deterministic=True))  # fmt: skip
    pause_from = 300 + len(first) // 48
    pause_to = pause_from + PAUSE_MS
    last_word = pause_to + len(rest) // 48
    audio = silence(300) + first + silence(PAUSE_MS) + rest + silence(5000)
    stops: list[tuple[int, int]] = []  # (audio_end_ms, audio sent when it was decided)
    async with session:
        await session.receive(json.dumps({"type": "session.update", "session": {
            "type": "realtime", "audio": {"input": {"turn_detection": td}}}}))  # fmt: skip
        for start in range(0, len(audio), 960):  # 20 ms chunks
            await session.push_audio(audio[start : start + 960])
            for event in session.pending_events():
                if isinstance(event, ev.InputAudioBufferSpeechStoppedEvent):
                    stops.append((event.audio_end_ms, (start + 960) // 48))
    false_end = any(pause_from - 100 <= end <= pause_to for end, _ in stops)
    final = [decided for end, decided in stops if end > pause_to]
    return false_end, (final[0] - last_word if final else None)


async def main() -> None:
    full = load_speech("full")
    assert full.tts is not None
    judge = SmartTurn()
    judge.load()
    with_model = SpeechKit(new_vad=SileroVad, stt=None, tts=None, end_of_turn=judge)
    without = SpeechKit(new_vad=SileroVad, stt=None, tts=None)
    audio = [(b"".join(full.tts.synthesize(a)), b"".join(full.tts.synthesize(b))) for a, b in CASES]
    print(f"{len(CASES)} sentences with a {PAUSE_MS} ms pause after a word that cannot end them (piper voice)")
    for name, td in MODES.items():
        kit = with_model if td["type"] == "semantic_vad" else without
        results = [await one(kit, td, first, rest) for first, rest in audio]
        false_ends = sum(1 for false_end, _ in results if false_end)
        delays = [d for _, d in results if d is not None]
        median = f"{statistics.median(delays)} ms" if delays else "n/a"
        print(f"  {name:20s} false ends in the pause: {false_ends}/{len(CASES)}; end of the sentence called "
              f"{median} after its audio ended (median)")
    without_name = "semantic_vad auto, no model"
    td = MODES["semantic_vad auto"]
    results = [await one(without, td, first, rest) for first, rest in audio]
    print(f"  {without_name:20s} false ends in the pause: {sum(1 for f, _ in results if f)}/{len(CASES)}")


if __name__ == "__main__":
    asyncio.run(main())
