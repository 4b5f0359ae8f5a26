"""``aoai-realtime bench engine``: end of the user's speech -> first audio, as a person talking to the engine gets it.

What is measured, per turn, with one engine and in-memory sessions (no sockets):

- The user's audio is streamed at microphone pace: 20 ms chunks, each sent when it would have been recorded
  (chunk ``i`` at ``t0 + (i + 1) * 20 ms``), silence between turns included, never in a burst. The user speaks
  again 300 ms after the answer has played out (``response.done`` alone comes when its last audio is *sent*).
- The clock starts at the sound's real end (the utterance is trimmed to its last audible sample, so that is the
  wall time its last chunk is due) plus the configured silence wait (``--silence-ms``, server_vad): every figure
  excludes that wait, which is the user's setting, not the engine's cost.
- Parts, each as a time on that clock: the VAD's decision (``speech_stopped`` received), transcript ready (the
  brain is handed the conversation with the transcript; only for brains that wait for one), the brain's first
  token (first ``Say``), the first clause synthesised (TTS's first chunk of the reply) and the first audio delta.
- Underrun: the client plays the reply from its first delta at real time; a delta arriving after the audio
  before it has played out is an underrun (tolerance one 20 ms chunk). Reported after the first clause.
- STT passes per turn: how often the engine ran speech-to-text (work nobody waits for shows here).
- ``--concurrency``: K sessions at once, each streaming at real-time pace, K raised until a level fails: any
  underrun, first audio p95 >= 2 s, or the client unable to send its chunks on time (p95 lateness >= 60 ms).

Every absolute figure is printed with the 1-minute load average beside it: the machine may be shared.
``--json`` prints one object: ``{"first_audio_ms": {"p50", "p95"}, "parts_ms": {part: {"p50", "p95"}},
"turns", "brain", "speech"}`` (+ ``"max_realtime_calls"`` with ``--concurrency``).
"""

from __future__ import annotations

import array
import asyncio
import base64
import contextvars
import json
import os
import statistics
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer

from ..engine import Engine, EngineConfig
from ..engine.brain.base import Brain, BrainOutput, BrainRequest, Say
from ..engine.ports import SpeechKit, SpeechPort
from ..engine.workers import WorkQueue
from ..testing.engine import EngineHarness

__all__ = ["BenchResult", "Probe", "register", "run_bench"]

CHUNK_MS = 20
UNDERRUN_TOLERANCE_MS = 20.0
PARTS = ("vad_decision", "transcript_ready", "brain_first_token", "first_clause_synthesised", "first_delta")
QUESTIONS = (
    "What is the capital of France?",
    "Could you tell me what time it is, please?",
    "How far away is the moon from the earth?",
    "What should I cook for dinner tonight?",
    "Please remember that my sister lives in Lisbon.",
    "Can you recommend a good book about the ocean?",
    "Why is the sky blue during the day?",
    "What is the weather going to be like tomorrow?",
)

_PROBE: contextvars.ContextVar[Probe | None] = contextvars.ContextVar("aoai_bench_probe", default=None)


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Turn:
    """One user turn's wall times (``time.perf_counter``)."""

    sound_end: float
    silence_ms: int
    marks: dict[str, float] = field(default_factory=dict)
    stt_passes: int = 0
    underrun_ms: float = 0.0
    underrun_at_ms: float = 0.0  # where in the answer's audio the worst underrun came (ms of audio sent before it)
    question_sent: float = 0.0  # when the utterance's first chunk was sent
    heard_out: float = 0.0  # when the answer's playback (from its first delta, at real time) ended
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def mark(self, part: str) -> None:
        self.marks.setdefault(part, time.perf_counter())

    def ms(self, part: str) -> float | None:
        at = self.marks.get(part)
        return None if at is None else (at - self.sound_end) * 1000 - self.silence_ms


@dataclass
class Probe:
    """The turns of one benchmark session. The engine's parts find it through a context variable the session's
    tasks inherit (set before the session is opened)."""

    turns: list[Turn] = field(default_factory=list)
    lateness_ms: list[float] = field(default_factory=list)
    early_reused: int = 0  # turns whose transcript came from the engine's early pass
    early_skipped: int = 0  # pauses that started no early pass: the transcription queue was busy

    @property
    def current(self) -> Turn | None:
        return self.turns[-1] if self.turns else None


def _mark(part: str) -> None:
    probe = _PROBE.get()
    if probe is not None and probe.current is not None:
        probe.current.mark(part)


class _TimedStt:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.yield_nice = int(getattr(inner, "yield_nice", 0))  # the engine asks the wrapped STT to yield as usual

    def transcribe(
        self, pcm16_24k: bytes, *, language: str | None = None, prompt: str | None = None, yield_cpu: bool = False
    ) -> Any:
        probe = _PROBE.get()
        turn = probe.current if probe is not None else None
        started = time.perf_counter()
        more = {"yield_cpu": yield_cpu} if yield_cpu else {}
        result = self.inner.transcribe(pcm16_24k, language=language, prompt=prompt, **more)
        if turn is not None:
            turn.stt_passes += 1
            turn.marks["stt_last_pass_start"] = started
            turn.marks["stt_last_pass_end"] = time.perf_counter()
        return result


class _TimedTts:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def synthesize(self, text: str) -> Iterator[bytes]:
        for chunk in self.inner.synthesize(text):
            _mark("first_clause_synthesised")
            yield chunk


class _TimedBrain:
    def __init__(self, inner: Brain) -> None:
        self.inner = inner
        self.needs_transcripts = bool(getattr(inner, "needs_transcripts", True))
        prepare = getattr(inner, "prepare", None)
        if prepare is not None:
            self.prepare = prepare  # the session's prompt read ahead, as the engine does for the brain itself
        end = getattr(inner, "end", None)
        if end is not None:
            self.end = end  # the session's conversation ended: the brain may drop what it keeps for it

    async def respond(self, request: BrainRequest) -> AsyncIterator[BrainOutput]:
        if self.needs_transcripts:
            _mark("transcript_ready")
        gen = self.inner.respond(request)
        try:
            async for output in gen:
                if isinstance(output, Say):
                    _mark("brain_first_token")
                yield output
        finally:
            aclose = getattr(gen, "aclose", None)
            if aclose is not None:
                await aclose()


def _brain(kind: str) -> Callable[[], Brain]:
    if kind == "scripted":
        from ..engine.brain.scripted import ScriptedBrain

        shared = ScriptedBrain([], fallback="Sure, here you go. That is all I have for now.")
        return lambda: shared
    from ..engine.factory import brain_factory

    return brain_factory(kind)


def _speech(kind: str) -> SpeechPort:
    from ..engine.speech import load_speech

    return load_speech(kind)  # type: ignore[arg-type]


def trim(pcm: bytes, *, floor: int = 300) -> bytes:
    """``pcm`` (pcm16) from its first to its last sample louder than ``floor``: where the sound really ends."""
    samples = array.array("h", pcm)
    loud = [i for i in range(0, len(samples), 24) if abs(samples[i]) > floor]
    if not loud:
        return pcm
    return samples[loud[0] : loud[-1] + 1].tobytes()


def _append(pcm: bytes) -> bytes:
    return json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}).encode()


async def _recv(conn: Any) -> dict[str, Any]:
    return dict(json.loads(await asyncio.wait_for(conn.recv(), 120)))


async def one_call(
    harness: EngineHarness,
    utterances: list[bytes],
    silence_ms: int,
    probe: Probe,
    *,
    early: bool = True,
    start_delay: float = 0.0,
) -> None:
    """One session: each utterance streamed at real-time pace after 300 ms of silence, then silence until the
    reply is done and has been heard out (its audio played from its first delta at real time), as a caller waits
    for the answer before the next question. ``early=False`` turns the engine's early transcription pass off (the
    comparison)."""
    await asyncio.sleep(start_delay)
    _PROBE.set(probe)  # the session's tasks (created by connect) inherit it
    conn = harness.connect()
    session = harness.sessions[-1]
    if not early:
        session.transcripts.early_after_ms = None
    while (await _recv(conn))["type"] != "session.created":
        pass
    update = {"type": "realtime", "audio": {"input": {"turn_detection": {"type": "server_vad",
              "silence_duration_ms": silence_ms}}}}  # fmt: skip
    await conn.send(json.dumps({"type": "session.update", "session": update}).encode())
    while (await _recv(conn))["type"] != "session.updated":
        pass
    play: dict[str, float] = {}

    async def reader() -> None:
        while True:
            event = await _recv(conn)
            turn = probe.current
            kind = event["type"]
            if turn is None:
                continue
            if kind == "input_audio_buffer.speech_stopped":
                turn.mark("vad_decision")
            elif kind == "response.output_audio.delta":
                now = time.perf_counter()
                ms = len(base64.b64decode(event["delta"])) / 48
                if "first_delta" not in turn.marks:
                    turn.mark("first_delta")
                    play["due"] = now  # playback starts with the first delta
                    play["sent"] = 0.0
                late = (now - play["due"]) * 1000
                if late > UNDERRUN_TOLERANCE_MS and late > turn.underrun_ms:
                    turn.underrun_ms, turn.underrun_at_ms = late, play["sent"]
                play["due"] = max(play["due"], now) + ms / 1000
                play["sent"] += ms
            elif kind == "response.done":
                turn.done.set()

    task = asyncio.create_task(reader())
    step = CHUNK_MS * 48
    t0 = time.perf_counter()
    sent = 0.0

    async def stream(pcm: bytes, turn: Turn | None = None) -> None:
        nonlocal sent
        for start in range(0, len(pcm), step):
            chunk = pcm[start : start + step]
            due = t0 + (sent + len(chunk) / 48) / 1000
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            probe.lateness_ms.append(max(0.0, -delay) * 1000)
            if turn is not None and not turn.question_sent:
                turn.question_sent = time.perf_counter()
            await conn.send(_append(chunk))
            sent += len(chunk) / 48

    try:
        silence = bytes(step)
        for pcm in utterances:
            await stream(bytes(300 * 48))
            probe.turns.append(Turn(sound_end=t0 + (sent + len(pcm) / 48) / 1000, silence_ms=silence_ms))
            turn = probe.turns[-1]
            await stream(pcm, turn)
            deadline = time.perf_counter() + 60
            while not turn.done.is_set() and time.perf_counter() < deadline:
                await stream(silence)
            # The caller hears the answer out before speaking again: ``response.done`` comes when the last audio
            # is sent, which is seconds before it is heard (the engine synthesises faster than real time).
            while time.perf_counter() < play.get("due", 0.0) and time.perf_counter() < deadline:
                await stream(silence)
            turn.heard_out = play.get("due", 0.0)
    finally:
        probe.early_reused = session.transcripts.reused
        probe.early_skipped = session.transcripts.skipped_early
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@dataclass
class BenchResult:
    turns: list[Turn]
    lateness_ms: list[float]
    brain: str
    speech: str
    early_reused: int = 0
    early_skipped: int = 0

    def __add__(self, other: BenchResult) -> BenchResult:
        return BenchResult(self.turns + other.turns, self.lateness_ms + other.lateness_ms, self.brain, self.speech,
                           self.early_reused + other.early_reused,
                           self.early_skipped + other.early_skipped)  # fmt: skip

    def values(self, part: str) -> list[float]:
        return [v for t in self.turns if (v := t.ms(part)) is not None]

    def summary(self, part: str) -> dict[str, float] | None:
        values = self.values(part)
        if not values:
            return None
        return {"p50": round(statistics.median(values), 1), "p95": round(pct(values, 0.95), 1)}

    def to_json(self) -> dict[str, Any]:
        first = self.summary("first_delta") or {"p50": float("nan"), "p95": float("nan")}
        parts = {p: s for p in PARTS if (s := self.summary(p)) is not None}
        return {"first_audio_ms": first, "parts_ms": parts, "turns": len(self.turns), "brain": self.brain,
                "speech": self.speech}  # fmt: skip


async def run_bench(
    *,
    speech: str,
    brain: str,
    calls: int,
    turns: int,
    silence_ms: int,
    speech_port: SpeechPort | None = None,
    early: bool = True,
    first_question: int = 0,
    stagger_s: float = 0.0,
    tts_workers: int | None = None,
) -> BenchResult:
    """``calls`` sessions at once on one engine, ``turns`` spoken questions each; the turns' marks.
    ``stagger_s``: the calls start spread evenly over that many seconds (0: all at once, so their turns end at
    about the same moment). ``tts_workers``: TTS pieces synthesised at once (None: the engine's default)."""
    port = speech_port if speech_port is not None else await asyncio.to_thread(_speech, speech)
    inner_brain = await asyncio.to_thread(_brain, brain)
    kit = SpeechKit(new_vad=port.new_vad, stt=_TimedStt(port.stt) if port.stt else None,
                    tts=_TimedTts(port.tts) if port.tts else None, name=f"bench-{speech}")  # fmt: skip
    engine = Engine(EngineConfig(api_key="bench", brain=lambda: _TimedBrain(inner_brain()), speech=kit))
    if tts_workers is not None:  # the engine's default is one piece at a time, most urgent first
        engine.synthesis = WorkQueue(workers=tts_workers)
    tts = port.tts
    assert tts is not None, "the benchmark needs a TTS to speak the user's questions"
    said = [trim(b"".join(tts.synthesize(q))) for q in QUESTIONS]
    probes = [Probe() for _ in range(calls)]
    async with EngineHarness(engine) as harness:
        await asyncio.gather(*(
            one_call(harness, [said[(first_question + c + i) % len(said)] for i in range(turns)], silence_ms,
                     probes[c], early=early, start_delay=stagger_s * c / calls)
            for c in range(calls)
        ))  # fmt: skip
    return BenchResult(
        turns=[t for p in probes for t in p.turns],
        lateness_ms=[x for p in probes for x in p.lateness_ms],
        brain=brain,
        speech=speech,
        early_reused=sum(p.early_reused for p in probes),
        early_skipped=sum(p.early_skipped for p in probes),
    )


def _table(result: BenchResult, echo: Callable[[str], None]) -> None:
    echo(f"   {'part (ms after sound end + silence wait)':<44} {'p50':>7} {'p95':>7} {'max':>7}")
    for part in (*PARTS[:2], "stt_last_pass_start", "stt_last_pass_end", *PARTS[2:]):
        values = result.values(part)
        if values:
            echo(f"   {part:<44} {statistics.median(values):7.0f} {pct(values, 0.95):7.0f} {max(values):7.0f}")
        else:
            echo(f"   {part:<44} {'-':>7}")
    under = [t.underrun_ms for t in result.turns]
    echo(f"   underrun after the first delta: {sum(1 for u in under if u > 0)}/{len(under)} turns, "
         f"worst {max(under, default=0):.0f} ms; STT passes per turn: "
         f"{statistics.mean(t.stt_passes for t in result.turns):.2f}; transcript from the early pass: "
         f"{result.early_reused}/{len(result.turns)} (early passes skipped, queue busy: {result.early_skipped})"
         if result.turns else "   no turns")  # fmt: skip


def _where(result: BenchResult) -> str:
    """Where in their answers the underruns came: ms of audio sent before each turn's worst one."""
    at = sorted(round(t.underrun_at_ms) for t in result.turns if t.underrun_ms > 0)
    return f" (at {', '.join(map(str, at))} ms into the answer)" if at else ""


def held(result: BenchResult) -> bool:
    """A concurrency level holds: no underrun, first audio p95 < 2 s, chunks sent on time, every turn answered."""
    first = result.values("first_delta")
    return (
        len(first) == len(result.turns)
        and all(t.underrun_ms == 0 for t in result.turns)
        and pct(first, 0.95) < 2000
        and pct(result.lateness_ms, 0.95) < 60
    )


async def main_async(
    *,
    speech: str,
    brain: str,
    turns: int,
    silence_ms: int,
    concurrency: bool,
    max_calls: int,
    as_json: bool,
    compare: bool = False,
    compare_window: bool = False,
    stagger_s: float = 0.0,
    tts_workers: int | None = None,
) -> dict[str, Any]:
    def echo(line: str) -> None:
        if not as_json:
            typer.echo(line)

    port = await asyncio.to_thread(_speech, speech)
    echo(f"bench engine: speech={speech} brain={brain}, {turns} turns, silence wait {silence_ms} ms, "
         f"{os.cpu_count()} cores, {load()} at start")  # fmt: skip
    result = await run_bench(speech=speech, brain=brain, calls=1, turns=turns, silence_ms=silence_ms,
                             speech_port=port)  # fmt: skip
    out = result.to_json()
    first = out["first_audio_ms"]
    echo(f" end of speech -> first audio delta: p50 {first['p50']:.0f} ms, p95 {first['p95']:.0f} ms ({load()})")
    _table(result, echo)
    if compare_window:
        await _compare_window(port, speech=speech, brain=brain, turns=turns, silence_ms=silence_ms, echo=echo)
    if compare:
        await _side_by_side(port, speech=speech, brain=brain, turns=turns, silence_ms=silence_ms, echo=echo,
                            labels=("early transcription pass OFF", "early transcription pass ON"),
                            variant=lambda on: {"early": on})  # fmt: skip
    if concurrency:
        echo(f" concurrency: calls started {'together' if not stagger_s else f'spread over {stagger_s:g} s'}, "
             f"{max(2, turns // 4)} turns each")  # fmt: skip
        best = 0
        k = 1
        while k <= max_calls:
            level = await run_bench(speech=speech, brain=brain, calls=k, turns=max(2, turns // 4),
                                    silence_ms=silence_ms, speech_port=port, stagger_s=stagger_s,
                                    tts_workers=tts_workers)  # fmt: skip
            first_k = level.values("first_delta")
            ok = held(level)
            echo(f" {k:3d} calls: first audio p50 {statistics.median(first_k) if first_k else float('nan'):.0f} / "
                 f"p95 {pct(first_k, 0.95) if first_k else float('nan'):.0f} ms, underruns "
                 f"{sum(1 for t in level.turns if t.underrun_ms > 0)}/{len(level.turns)}{_where(level)}, "
                 f"send lateness p95 "
                 f"{pct(level.lateness_ms, 0.95):.0f} ms -> {'holds' if ok else 'falls behind'} ({load()})")
            if not ok:
                break
            best = k
            k = k + 1 if k < 12 else k + 4
        out["max_realtime_calls"] = best
        echo(f" largest K held: {best} ({load()})")
    if as_json:
        typer.echo(json.dumps(out))
    return out


async def _side_by_side(
    port: SpeechPort,
    *,
    speech: str,
    brain: str,
    turns: int,
    silence_ms: int,
    echo: Callable[[str], None],
    labels: tuple[str, str],
    variant: Callable[[bool], dict[str, Any]],
) -> None:
    """One setting OFF and ON, alternating 2 turns each in the same run: both parts tables and the ON - OFF
    differences. ``variant(on)`` switches the setting and returns any extra ``run_bench`` arguments."""
    runs: dict[bool, BenchResult] = {}
    for r in range(max(1, turns // 2)):
        for on in (False, True):
            part = await run_bench(speech=speech, brain=brain, calls=1, turns=2, silence_ms=silence_ms,
                                   speech_port=port, first_question=2 * r, **variant(on))  # fmt: skip
            runs[on] = part if on not in runs else runs[on] + part
    echo(f" side by side, alternating 2 turns each ({load()}):")
    for label, on in zip(labels, (False, True), strict=True):
        echo(f"  {label}:")
        _table(runs[on], echo)
    for part_name in PARTS:
        a, b = runs[False].values(part_name), runs[True].values(part_name)
        if a and b:
            echo(f"   {part_name:<44} ON - OFF p50 {statistics.median(b) - statistics.median(a):+7.0f} ms")


async def _compare_window(
    port: SpeechPort, *, speech: str, brain: str, turns: int, silence_ms: int, echo: Callable[[str], None]
) -> None:
    """Whisper's fixed 30 s window (OFF) against the window sized to the turn (ON)."""
    stt = port.stt
    if stt is None or not hasattr(stt, "turn_window"):
        echo(" --compare-window: this speech has no Whisper STT; nothing to compare")
        return

    def window(on: bool) -> dict[str, Any]:
        stt.turn_window = on
        return {}

    try:
        await _side_by_side(port, speech=speech, brain=brain, turns=turns, silence_ms=silence_ms, echo=echo,
                            labels=("Whisper window 30 s (faster-whisper's)", "Whisper window sized to the turn"),
                            variant=window)  # fmt: skip
    finally:
        stt.turn_window = True


def register(bench_app: typer.Typer) -> None:
    """Add ``engine`` to the ``bench`` sub-app."""

    @bench_app.command("engine")
    def bench_engine_command(
        speech: Annotated[str, typer.Option(help="full (silero+whisper+piper) | light | fake")] = "full",
        brain: Annotated[str, typer.Option(help="scripted | rules | llm")] = "rules",
        turns: Annotated[int, typer.Option(min=1, help="Spoken turns for the latency figures.")] = 12,
        silence_ms: Annotated[int, typer.Option(min=100, help="server_vad silence wait (ms).")] = 300,
        concurrency: Annotated[bool, typer.Option("--concurrency", help="Also find the most real-time calls.")] = False,
        max_calls: Annotated[int, typer.Option(min=1, help="Highest K tried with --concurrency.")] = 24,
        stagger: Annotated[float, typer.Option(min=0.0, help="--concurrency: spread the calls' starts over this "
                           "many seconds (0: together, turns end at the same moment).")] = 0.0,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
        compare: Annotated[bool, typer.Option("--compare", help="Also run the engine's early transcription "
                           "pass off and on, alternating, in the same run.")] = False,
        compare_window: Annotated[bool, typer.Option("--compare-window", help="Also run Whisper's 30 s window "
                                  "and the window sized to the turn, alternating, in the same run.")] = False,
        tts_workers: Annotated[int | None, typer.Option(min=1, help="--concurrency: TTS pieces synthesised at "
                               "once (default: the engine's, one at a time, most urgent first).")] = None,
    ) -> None:
        """End of speech -> first audio at microphone pace, with its parts; --concurrency: most real-time calls."""
        if speech not in ("full", "light", "fake"):
            raise typer.BadParameter(f"unknown speech {speech!r}: use full, light or fake", param_hint="--speech")
        if brain not in ("scripted", "rules", "llm"):
            raise typer.BadParameter(f"unknown brain {brain!r}: use scripted, rules or llm", param_hint="--brain")
        asyncio.run(main_async(speech=speech, brain=brain, turns=turns, silence_ms=silence_ms, compare=compare,
                               compare_window=compare_window, stagger_s=stagger, tts_workers=tts_workers,
                               concurrency=concurrency, max_calls=max_calls, as_json=as_json))  # fmt: skip
