"""Whisper's fixed 30 s window against the window sized to the turn (``WhisperStt.turn_window``): WER and time.

    .venv/bin/python bench/bench_stt_window.py --locomo ../shared/data/locomo [--count 60]
        [--convs conv-42 --max-words 12 --min-window 8]   (trying another floor, on the tuning conversation)

The speech is LoCoMo dialogue turns spoken by piper (noise 0, so every run hears the same audio) with 0.3 s of
silence after each, as the engine's early pass sees a turn. The 15 s minimum window was chosen on 14 questions
and 26 turns of conv-42; this prints figures on turns of conv-30 and conv-48, which it was not chosen on. Both
paths run in the same process, one after the other, with the load average printed beside the times.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import jiwer

from aoai_realtime.engine.speech import PiperTts, WhisperStt
from aoai_realtime.engine.speech.stt import MIN_WINDOW_S


def _turns(obj: Any, out: list[str]) -> list[str]:
    if isinstance(obj, dict):
        if "text" in obj and "speaker" in obj:
            out.append(str(obj["text"]))
        for value in obj.values():
            _turns(value, out)
    elif isinstance(obj, list):
        for value in obj:
            _turns(value, out)
    return out


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]", " ", text.lower()).split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--locomo", type=Path, required=True, help="the folder with conv-*.json")
    parser.add_argument("--count", type=int, default=60, help="how many turns (default 60)")
    parser.add_argument("--convs", default="conv-30,conv-48",
                        help="conversations to speak (default conv-30,conv-48; the window was tuned on conv-42)")
    parser.add_argument("--max-words", type=int, default=40, help="longest turn in words (default 40)")
    parser.add_argument("--min-window", type=float, default=None, help="the shortest window in seconds (default: "
                        "the engine's)")  # fmt: skip
    args = parser.parse_args()
    names = args.convs.split(",")
    turns: list[str] = []
    for name in names:
        _turns(json.loads((args.locomo / f"{name}.json").read_text(encoding="utf-8")), turns)
    texts = random.Random(7).sample([t for t in turns if 2 <= len(t.split()) <= args.max_words], args.count)
    tts, stt = PiperTts(noise_scale=0.0, noise_w_scale=0.0), WhisperStt()
    silence = b"\x00\x00" * int(24000 * 0.3)
    audios = [b"".join(tts.synthesize(t)) + silence for t in texts]
    stt.load()
    if args.min_window is not None:
        stt.min_window_s = args.min_window
    window_pass = stt._transcribe_window
    fallbacks = 0

    def counting(model: Any, audio: Any, prompt: str | None) -> Any:
        nonlocal fallbacks
        result = window_pass(model, audio, prompt)
        fallbacks += result is None
        return result

    stt._transcribe_window = counting  # type: ignore[method-assign]
    mean_s = statistics.mean(len(a) / 48000 for a in audios)
    print(f"{len(texts)} LoCoMo turns ({', '.join(names)}) spoken by piper, {mean_s:.1f} s each on average; "
          f"window at least {stt.min_window_s:g} s")  # fmt: skip
    sweep = args.min_window is not None and args.min_window != MIN_WINDOW_S
    for label, on in (("30 s window (faster-whisper)", False), ("window sized to the turn", True)):
        if sweep and not on:
            continue  # trying another floor: the 30 s path's figures do not depend on it
        stt.turn_window = on
        heard, times = [], []
        for pcm in audios:
            started = time.perf_counter()
            heard.append(stt.transcribe(pcm).text)
            times.append((time.perf_counter() - started) * 1000)
        wer = jiwer.wer([_words(t) for t in texts], [_words(h) for h in heard])
        extra = f", {fallbacks} fell back to the 30 s path" if on else ""
        p95 = sorted(times)[int(0.95 * (len(times) - 1))]
        print(f"  {label:<30} WER {wer:.3f}  pass p50 {statistics.median(times):5.0f} ms  p95 {p95:5.0f} ms{extra}"
              f"  (load {os.getloadavg()[0]:.1f})")  # fmt: skip


if __name__ == "__main__":
    main()
