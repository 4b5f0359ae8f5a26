"""The engine's latency paths: transcription only when someone reads it, the early pass at the speaker's pause
(reused only when nothing was said after it), and speech synthesised while the brain goes on."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from aoai_realtime.engine import FakeClock, RulesBrain, Say, ScriptedBrain
from aoai_realtime.engine.brain.base import BrainOutput, BrainRequest
from aoai_realtime.engine.ports import SpeechKit
from aoai_realtime.engine.speech import load_speech
from aoai_realtime.engine.workers import WorkQueue
from aoai_realtime.testing.audio import silence

from .conftest import Probe, make_session

TD = {"type": "server_vad", "silence_duration_ms": 300}


class CountingStt:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.heard: list[str] = []

    def transcribe(self, pcm16_24k: bytes, *, language: str | None = None, prompt: str | None = None) -> Any:
        result = self.inner.transcribe(pcm16_24k, language=language, prompt=prompt)
        self.heard.append(result.text)
        return result


def kit(stt: Any = None, tts: Any = None) -> tuple[SpeechKit, CountingStt]:
    fake = load_speech("fake")
    counting = CountingStt(stt or fake.stt)
    return SpeechKit(new_vad=fake.new_vad, stt=counting, tts=tts or fake.tts), counting


def said(text: str) -> bytes:
    return b"".join(load_speech("fake").tts.synthesize(text))


async def configure(probe: Probe, *, transcription: bool = True) -> None:
    audio: dict[str, Any] = {"input": {"turn_detection": TD}}
    if transcription:
        audio["input"]["transcription"] = {"model": "whisper-1"}
    await probe.send({"type": "session.update", "session": {"type": "realtime", "audio": audio}})


async def completed_transcript(probe: Probe, after: list[Any]) -> str:
    events = await probe.until("conversation.item.input_audio_transcription.completed", after=after)
    return str(events[-1].transcript)


async def test_a_turn_that_ends_at_the_pause_uses_the_early_pass(clock: FakeClock) -> None:
    speech, stt = kit()
    session = make_session(speech, clock, RulesBrain())
    async with session:
        probe = Probe(session, clock)
        await configure(probe)
        events = await probe.append(silence(300) + said("hello there") + silence(600), chunk_ms=20)
        assert await completed_transcript(probe, events) == "hello there"
    assert session.transcripts.reused == 1
    assert stt.heard.count("hello there") == 1  # the final transcript cost no second pass


async def test_words_after_a_pause_are_never_lost_to_the_early_pass(clock: FakeClock) -> None:
    speech, _ = kit()
    session = make_session(speech, clock, RulesBrain())
    async with session:
        probe = Probe(session, clock)
        await configure(probe)
        # a 150 ms pause (an early pass starts) shorter than the 300 ms silence wait: one turn goes on
        events = await probe.append(
            silence(300) + said("hello") + silence(150) + said("world") + silence(600), chunk_ms=20
        )
        assert await completed_transcript(probe, events) == "hello world"
    assert session.transcripts.reused == 1  # the pass at the final pause, not the one at the 150 ms pause


class HeldQueue(WorkQueue):
    """A transcription queue whose one worker another call's pass holds until :meth:`release` (held on the loop,
    not in a thread: the fake clock settles only once every thread job is back)."""

    def __init__(self) -> None:
        super().__init__(workers=1)
        self.free = asyncio.Event()

    def idle(self) -> bool:
        return self.free.is_set() and super().idle()

    async def run(self, job: Any, *, deadline: float) -> Any:
        await self.free.wait()
        return await super().run(job, deadline=deadline)


async def test_no_early_pass_starts_while_other_passes_hold_the_workers(clock: FakeClock) -> None:
    # Another call's pass holds the engine's only transcription worker: the pause's early pass (a guess) is not
    # queued behind it; the committed turn's pass is, and runs once the worker is free.
    speech, stt = kit()
    session = make_session(speech, clock, RulesBrain())
    session.transcription = queue = HeldQueue()
    async with session:
        probe = Probe(session, clock)
        await configure(probe)
        events = await probe.append(silence(300) + said("hello there") + silence(600), chunk_ms=20)
        assert stt.heard == []  # nothing ran yet: the worker is held
        queue.free.set()
        assert await completed_transcript(probe, events) == "hello there"
    assert session.transcripts.skipped_early >= 1
    assert session.transcripts.reused == 0
    assert stt.heard == ["hello there"]  # one pass: the committed turn's


class YieldingStt(CountingStt):
    """Whisper with a second, nicer instance: records whether each pass asked for it."""

    yield_nice = 4

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.yielded: list[bool] = []

    def transcribe(
        self, pcm16_24k: bytes, *, language: str | None = None, prompt: str | None = None, yield_cpu: bool = False
    ) -> Any:
        self.yielded.append(yield_cpu)
        return super().transcribe(pcm16_24k, language=language, prompt=prompt)


class SynthesisOfOtherCalls(WorkQueue):
    """The engine's synthesis queue, busy with other calls' pieces while ``others`` is set."""

    others = False

    @property
    def busy(self) -> bool:
        return self.others or super().busy


async def test_a_pass_yields_the_cpu_only_while_speech_synthesis_is_busy(clock: FakeClock) -> None:
    # A listener's next piece must not wait behind a transcription pass on the shared cores; with the synthesis
    # queue idle, a pass runs at full priority (other programs on the machine would otherwise win).
    fake = load_speech("fake")
    stt = YieldingStt(fake.stt)
    session = make_session(SpeechKit(new_vad=fake.new_vad, stt=stt, tts=fake.tts), clock, RulesBrain())
    session.synthesis = synthesis = SynthesisOfOtherCalls()
    async with session:
        probe = Probe(session, clock)
        await configure(probe)
        events = await probe.append(silence(300) + said("hello there") + silence(600), chunk_ms=20)
        assert await completed_transcript(probe, events) == "hello there"
        await probe.until("response.done", after=events)
        calm = len(stt.yielded)
        synthesis.others = True
        events = await probe.append(silence(300) + said("good night") + silence(600), chunk_ms=20)
        assert await completed_transcript(probe, events) == "good night"
    assert calm >= 1 and stt.yielded[:calm] == [False] * calm
    assert len(stt.yielded) > calm and stt.yielded[calm:] == [True] * (len(stt.yielded) - calm)


async def test_no_transcription_runs_when_nobody_reads_it(clock: FakeClock) -> None:
    speech, stt = kit()
    session = make_session(speech, clock, ScriptedBrain([], fallback="Okay."))  # a script does not listen
    async with session:
        probe = Probe(session, clock)
        await configure(probe, transcription=False)
        events = await probe.append(silence(300) + said("hello there") + silence(600), chunk_ms=20)
        done = await probe.until("response.done", after=events)
        committed = next(e for e in done if e.type == "input_audio_buffer.committed")
        assert stt.heard == []
        entry = session.conversation.get(str(committed.item_id))
        assert entry is not None
        assert await session.transcript_of(entry) == "hello there"  # transcribed when asked for
    assert stt.heard == ["hello there"]


class GatedTts:
    """Synthesis that blocks until the test opens the gate."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.texts: list[str] = []

    def synthesize(self, text: str) -> Iterator[bytes]:
        self.texts.append(text)
        self.gate.wait(30)
        yield bytes(4800)


class TwoSentences:
    needs_transcripts = False

    def __init__(self) -> None:
        self.read_all = asyncio.Event()

    async def respond(self, request: BrainRequest) -> AsyncIterator[BrainOutput]:
        yield Say("First sentence.")
        yield Say(" Second sentence.")
        self.read_all.set()


async def test_the_brain_is_read_while_the_first_sentence_is_synthesised(clock: FakeClock) -> None:
    tts = GatedTts()
    speech, _ = kit(tts=tts)
    brain = TwoSentences()
    session = make_session(speech, clock, brain)
    async with session:
        probe = Probe(session, clock)
        await session.receive('{"type": "response.create"}')
        try:
            # synthesis of the first sentence is blocked: the brain's second sentence is read all the same
            await asyncio.wait_for(brain.read_all.wait(), 30)
        finally:
            tts.gate.set()
        events = await probe.until("response.done")
    kinds = [e.type for e in events]
    assert kinds.count("response.output_audio.delta") == 2
    assert kinds.index("response.output_audio.done") > max(
        i for i, k in enumerate(kinds) if k == "response.output_audio.delta"
    )
    assert tts.texts == ["First sentence.", "Second sentence."]
