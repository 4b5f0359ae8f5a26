"""``aoai-realtime talk`` as a user drives it: text lines and a WAV file in, text and WAV replies out."""

from __future__ import annotations

import io
import wave
from pathlib import Path

from rich.console import Console

from aoai_realtime.apps.talk import read_wav_24k, talk, write_wav
from aoai_realtime.engine.speech import ToneTts


async def test_text_and_wav_turns_with_replies_written(tmp_path: Path) -> None:
    question = tmp_path / "question.wav"
    pcm, _ = ToneTts().synthesize_with_timings("What time does the store open")
    # a 48 kHz file, as a user's recorder might write it: talk resamples to 24 kHz
    import numpy as np
    import soxr

    up = soxr.resample(np.frombuffer(pcm, dtype="<i2").astype(np.float32), 24000, 48000)
    write_wav(question, up.astype("<i2").tobytes(), rate=48000)
    out = io.StringIO()
    turns = await talk(["Hello there", str(question)], speech="fake", wav_out=tmp_path / "replies",
                       console=Console(file=out, width=200))
    assert [t.spoken for t in turns] == [False, True]
    assert turns[1].heard == "What time does the store open"
    assert all(t.reply and t.latency_ms is not None for t in turns)
    for n in (1, 2):
        with wave.open(str(tmp_path / "replies" / f"reply-{n}.wav"), "rb") as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (24000, 1, 2)
            assert w.getnframes() == len(turns[n - 1].audio) // 2 > 0
    assert "first audio" in out.getvalue()


async def test_interactive_lines_until_quit() -> None:
    lines = iter(["", "Good morning", "quit", "never sent"])
    turns = await talk([], speech="fake", console=Console(file=io.StringIO()), read_line=lambda: next(lines, None))
    assert [t.user for t in turns] == ["Good morning"]


def test_read_wav_24k_averages_stereo(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(24000)
        w.writeframes(b"\x10\x00\x30\x00" * 100)  # left 16, right 48
    assert read_wav_24k(path) == b"\x20\x00" * 100


async def test_tool_calls_go_through_the_shared_loop() -> None:
    import json
    from collections import Counter

    from aoai_realtime.apps.talk import Turn, run_turn
    from aoai_realtime.client import RealtimeClient
    from aoai_realtime.engine.brain.base import CallTool, Say
    from aoai_realtime.engine.brain.scripted import ScriptedBrain
    from aoai_realtime.protocol import events as ev
    from aoai_realtime.protocol.codec import decode_client_event
    from aoai_realtime.protocol.session import SessionConfig
    from aoai_realtime.testing.engine import EngineHarness

    brain = ScriptedBrain([[CallTool("lookup", '{"q": "hours"}'), CallTool("broken", "{}")], [Say("Nine to five.")]])

    def call_tool(name: str, arguments: str) -> str:
        if name == "broken":
            raise RuntimeError("disk api_key=abcdef0123456789 full")
        return json.dumps({"hours": "9-17", "q": json.loads(arguments)["q"]})

    async with EngineHarness(brain=brain) as harness:
        transport = harness.connect()
        tools = [{"type": "function", "name": n, "description": n, "parameters": {"type": "object"}}
                 for n in ("lookup", "broken")]
        async with RealtimeClient(transport, session=SessionConfig(tools=tools)) as client:
            turn = await run_turn(client, Turn(user="When are you open?"), console=Console(file=io.StringIO()),
                                  t0=0.0, call_tool=call_tool)
            sent = [decode_client_event(raw) for raw in transport.sent]
    assert turn.reply == "Nine to five."
    outputs = [e.item for e in sent if isinstance(e, ev.ConversationItemCreateEvent)
               and e.item.type == "function_call_output"]
    assert set(Counter(o.call_id for o in outputs).values()) == {1} and len(outputs) == 2
    errors = [json.loads(str(o.output))["error"] for o in outputs if "error" in str(o.output)]
    assert [e["type"] for e in errors] == ["tool_error"] and "abcdef0123456789" not in errors[0]["message"]
    assert sum(isinstance(e, ev.ResponseCreateEvent) for e in sent) == 2  # the question, then one follow-up


async def test_a_bad_file_typed_at_the_prompt_is_reported_and_the_session_goes_on(tmp_path: Path) -> None:
    silent = tmp_path / "silent.wav"
    write_wav(silent, bytes(9600))
    lines = iter([f"@{tmp_path / 'missing.wav'}", f"@{silent}", "Hello there", "quit"])
    out = io.StringIO()
    turns = await talk([], speech="fake", console=Console(file=out, width=300), read_line=lambda: next(lines, None))
    assert [t.user for t in turns] == ["Hello there"]
    assert f"error: no such WAV file: {tmp_path / 'missing.wav'}" in out.getvalue()
    assert f"error: no speech in {silent}" in out.getvalue()
