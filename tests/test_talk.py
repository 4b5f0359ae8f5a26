"""``aoai-realtime talk`` as a user drives it: text lines and a WAV file in, text and WAV replies out."""

from __future__ import annotations

import io
import wave
from pathlib import Path

from rich.console import Console

from aoai_realtime.engine.speech import ToneTts
from aoai_realtime.talk import read_wav_24k, talk, write_wav


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
