"""Cost of the engine's offline speech parts, each implementation side by side in one run.

    .venv/bin/python bench/bench_speech.py [--repeat 5] [--only vad,stt,tts,resample]
    aoai-realtime bench speech [--repeat 5] [--only vad,stt,tts,resample]

- VAD: a 20 s stream (speech and silence) fed in 20 ms pieces, as a session receives it; x real time
  (seconds of audio per second of compute) and the cost of one 20 ms piece.
- STT: one 3 s utterance (flite speech, or tone speech for ``ToneStt``); latency and RTF (latency / 3 s),
  plus the model's load time. Whisper pads every input to 30 s, so its latency hardly depends on length.
- TTS: a two-sentence reply; time to the first chunk (what a caller waits before audio starts), total time
  and x real time, plus the load time.
- Resample: 48 kHz stereo -> 24 kHz mono (WebRTC input) and 24 -> 16 kHz, per 20 ms frame.
- Offline (only when asked: ``--only offline``; needs root, ``unshare`` and ``strace``): one full-speech turn
  (piper -> silero -> whisper) in a child process with no network, kept alive 20 s (onnxruntime's telemetry
  fired 3-15 s after start in offline-models.md §6.1), counting its AF_INET/AF_INET6 connect/sendto calls.
  With ``ORT_DISABLE_TELEMETRY=0`` it counted 8 DNS attempts here; with the loaders' default, 0.

Figures are medians over ``--repeat`` runs after one warm-up. The machine is shared and noisy: compare rows
of one run, not runs of different days. Needs flite (apt-get install flite). The loaders set
ORT_DISABLE_TELEMETRY=1 and HF_HUB_OFFLINE=1 before onnxruntime is imported.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator

import typer

from ..engine.speech import (
    EnergyVad,
    PiperTts,
    SileroVad,
    SpeechToText,
    StreamResampler,
    TextToSpeech,
    ToneStt,
    ToneTts,
    VoiceActivityDetector,
    WebRtcVad,
    WhisperStt,
    mono24k_to_stereo48k,
)
from ..testing.audio import concat, silence, speak_flite

UTTERANCE = "Set an alarm for six thirty tomorrow."
REPLY = "Sure, your alarm is set for six thirty. Is there anything else I can do for you?"
CHUNK = 960  # 20 ms of pcm16 24 kHz


def fit(pcm: bytes, ms: int) -> bytes:
    """Pad with silence or cut to exactly ``ms``."""
    n = ms * 48
    return pcm[:n] + silence(max(0, n - len(pcm)) / 48)


def median_time(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_vad(repeat: int, speech: bytes) -> None:
    stream = concat(*(concat(silence(700), speech, silence(1300)) for _ in range(4)))
    stream = fit(stream, 20000)
    pieces = [stream[i : i + CHUNK] for i in range(0, len(stream), CHUNK)]
    print("\nVAD: 20 s stream in 20 ms pieces")
    print(f"{'detector':<12}{'frame':>7}{'x real time':>14}{'us / 20 ms':>12}")
    makers: list[tuple[str, Callable[[], VoiceActivityDetector]]] = [
        ("silero", SileroVad),
        ("webrtc", WebRtcVad),
        ("energy", EnergyVad),
    ]
    for name, make in makers:
        vad = make()

        def run(vad: VoiceActivityDetector = vad) -> None:
            vad.reset()
            for piece in pieces:
                vad.process(piece)

        t = median_time(run, repeat)
        print(f"{name:<12}{vad.frame_ms:>5} ms{20.0 / t:>14,.0f}{t / len(pieces) * 1e6:>12.1f}")


def bench_stt(repeat: int, speech: bytes) -> None:
    utterance = fit(speech, 3000)  # flite leaves ~0.2 s of silence at both ends
    tone_pcm = fit(concat(silence(200), ToneTts().synthesize_with_timings(UTTERANCE)[0]), 3000)
    print("\nSTT: one 3 s utterance")
    print(f"{'model':<22}{'load s':>8}{'latency s':>11}{'RTF':>8}  transcript")
    cases: list[tuple[str, SpeechToText, bytes]] = [
        ("whisper tiny.en b=1", WhisperStt(beam_size=1), utterance),
        ("whisper tiny.en b=5", WhisperStt(beam_size=5), utterance),
        ("tone", ToneStt(), tone_pcm),
    ]
    for name, stt, audio in cases:
        t = time.perf_counter()
        load = getattr(stt, "load", None)
        if callable(load):
            load()
        load_s = time.perf_counter() - t
        latency = median_time(functools.partial(stt.transcribe, audio), repeat)
        text = stt.transcribe(audio).text
        print(f"{name:<22}{load_s:>8.2f}{latency:>11.3f}{latency / 3.0:>8.3f}  {text!r}")


def first_and_total(chunks: Iterator[bytes]) -> tuple[float, float, int]:
    t = time.perf_counter()
    first = None
    size = 0
    for chunk in chunks:
        if first is None:
            first = time.perf_counter() - t
        size += len(chunk)
    return first or 0.0, time.perf_counter() - t, size


def bench_tts(repeat: int) -> None:
    print(f"\nTTS: {REPLY!r}")
    print(f"{'voice':<10}{'load s':>8}{'first chunk s':>15}{'total s':>9}{'audio s':>9}{'x real time':>13}")
    cases: list[tuple[str, TextToSpeech]] = [("piper", PiperTts()), ("tone", ToneTts())]
    for name, tts in cases:
        t = time.perf_counter()
        load = getattr(tts, "load", None)
        if callable(load):
            load()
        load_s = time.perf_counter() - t
        first_and_total(tts.synthesize(REPLY))  # warm-up
        runs = [first_and_total(tts.synthesize(REPLY)) for _ in range(repeat)]
        first = statistics.median(r[0] for r in runs)
        total = statistics.median(r[1] for r in runs)
        audio_s = runs[0][2] / 48000
        print(f"{name:<10}{load_s:>8.2f}{first:>15.3f}{total:>9.3f}{audio_s:>9.2f}{audio_s / total:>13,.1f}")


def bench_resample(repeat: int, speech: bytes) -> None:
    mono = fit(speech, 2000)
    stereo = mono24k_to_stereo48k(mono)
    print("\nResample: 2 s in 20 ms frames")
    print(f"{'path':<28}{'us / 20 ms':>12}{'x real time':>14}")
    for name, rate_in, rate_out, channels, audio, frame in (
        ("48k stereo -> 24k mono", 48000, 24000, 2, stereo, 3840),
        ("24k -> 16k", 24000, 16000, 1, mono, CHUNK),
    ):
        pieces = [audio[i : i + frame] for i in range(0, len(audio), frame)]
        r = StreamResampler(rate_in, rate_out, channels=channels)

        def run(r: StreamResampler = r, pieces: list[bytes] = pieces) -> None:
            r.reset()
            for p in pieces:
                r.push_pcm16(p)

        t = median_time(run, repeat)
        print(f"{name:<28}{t / len(pieces) * 1e6:>12.1f}{2.0 / t:>14,.0f}")


_OFFLINE_TURN = """
import time
from aoai_realtime.engine.speech import load_speech
from aoai_realtime.testing.audio import silence
speech = load_speech("full")
pcm = b"".join(speech.tts.synthesize("Please set an alarm for six thirty tomorrow morning."))
speech.new_vad().process(silence(500) + pcm + silence(800))
print(speech.stt.transcribe(pcm).text, flush=True)
time.sleep(20)
"""


def bench_offline() -> None:
    print("\nOffline: one full-speech turn with no network, then 20 s idle")
    missing = [tool for tool in ("unshare", "strace") if shutil.which(tool) is None]
    if missing:
        print(f"  cannot check: {' and '.join(missing)} not installed (apt-get install util-linux strace)")
        return
    env = {k: v for k, v in os.environ.items() if k not in ("ORT_DISABLE_TELEMETRY", "HF_HUB_OFFLINE")}
    with tempfile.TemporaryDirectory() as tmp:
        trace = os.path.join(tmp, "trace.txt")
        cmd = ["unshare", "-n", "strace", "-f", "-qq", "-e", "trace=connect,sendto", "-o", trace]
        result = subprocess.run(
            [*cmd, sys.executable, "-c", _OFFLINE_TURN], capture_output=True, text=True, env=env, check=False
        )
        if result.returncode:
            print(f"  the check failed (exit {result.returncode}): {result.stderr.strip()[-300:]}")
            return
        with open(trace, encoding="utf-8") as f:
            attempts = [line for line in f if "AF_INET" in line]
    print(f"  transcript {result.stdout.strip()!r}; inet connect/sendto attempts: {len(attempts)}")
    for line in attempts[:3]:
        print(f"    {line.strip()}")


def run(*, repeat: int = 5, only: str = "vad,stt,tts,resample") -> None:
    """Run the chosen benchmarks (comma-separated: vad, stt, tts, resample, offline) and print their figures."""
    parts = set(only.split(","))
    unknown = parts - {"vad", "stt", "tts", "resample", "offline"}
    if unknown:
        raise ValueError(f"unknown benchmark part(s): {', '.join(sorted(unknown))}")
    load1, load5, _ = os.getloadavg()
    print(f"load average {load1:.2f} / {load5:.2f} on {os.cpu_count()} cores; medians of {repeat} runs")
    speech = speak_flite(UTTERANCE)
    if "vad" in parts:
        bench_vad(repeat, speech)
    if "stt" in parts:
        bench_stt(repeat, speech)
    if "tts" in parts:
        bench_tts(repeat)
    if "resample" in parts:
        bench_resample(repeat, speech)
    if "offline" in parts:
        bench_offline()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Cost of the offline speech parts.")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", default="vad,stt,tts,resample")
    args = parser.parse_args(argv)
    run(repeat=args.repeat, only=args.only)


def register(bench_app: typer.Typer) -> None:
    """Add ``speech`` to the ``bench`` sub-app."""

    @bench_app.command("speech")
    def bench_speech(
        repeat: int = typer.Option(5, help="Runs per figure (medians are printed)."),
        only: str = typer.Option(
            "vad,stt,tts,resample", help="Comma-separated parts: vad, stt, tts, resample; offline (root, strace)."
        ),
    ) -> None:
        """VAD x real time, STT latency/RTF, TTS time to first chunk, resampling cost, per implementation."""
        run(repeat=repeat, only=only)
