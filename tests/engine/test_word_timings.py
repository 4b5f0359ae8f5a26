"""A TTS that knows where its words start (piper with its phoneme durations): over WebSocket the engine sends
each word's transcript right before the audio delta in which that word starts, so a client that anchors text to
the audio following it (``Transcript.audio_received``) places every word exactly. Fake clock, tone speech given
word timings; the real voice's timings are tested in ``speech/test_piper.py``."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import msgspec

from aoai_realtime.agents.transcript import Transcript
from aoai_realtime.engine import Pause, Say, ScriptedBrain
from aoai_realtime.engine.brain.base import BrainOutput
from aoai_realtime.engine.speech.load import Speech
from aoai_realtime.engine.speech.tone import ToneStt, ToneTts
from aoai_realtime.engine.speech.vad import EnergyVad
from aoai_realtime.protocol import events as ev

from .conftest import make_session

TEXT = "Sure, the meeting moved to room four. Bring the slides and the budget sheet."


class TimedTone(ToneTts):
    """Tone speech that tells the engine where its words start, as ``PiperTts.synthesize_timed`` does, and keeps
    the pieces the engine asked for (where the engine cuts depends on its pacing, not on this test)."""

    def __init__(self, *, times_words: bool = True) -> None:
        super().__init__()
        self.times_words = times_words
        self.pieces: list[str] = []

    def synthesize(self, text: str) -> Iterator[bytes]:
        self.pieces.append(text)
        return super().synthesize(text)

    def synthesize_timed(self, text: str) -> Iterator[tuple[bytes, list[tuple[int, float]]]]:
        self.pieces.append(text)
        word = 0
        offset = 0.0
        for pcm, timings in self.synthesize_sentences(text):
            yield pcm, [(word + i, t.start_ms - offset) for i, t in enumerate(timings)]
            word += len(timings)
            offset += len(pcm) / 48.0


def truth(pieces: list[str]) -> list[float]:
    """Where each word starts in the pieces spoken one after another (ms of audio)."""
    starts: list[float] = []
    offset = 0.0
    for piece in pieces:
        pcm, timings = ToneTts().synthesize_with_timings(piece)
        starts.extend(offset + t.start_ms for t in timings)
        offset += len(pcm) / 48.0
    return starts


class Track:
    """WebRTC's media track, in memory: takes the audio, plays nothing."""

    def __init__(self) -> None:
        self.audio = bytearray()

    async def write(self, response_id: str, item_id: str, pcm: bytes) -> None:
        self.audio += pcm

    def clear(self) -> tuple[str, str, int] | None:
        return None

    async def wait_drained(self) -> None:
        return None


async def answer(
    clock: Any, tts: ToneTts, outputs: list[BrainOutput] | None = None, *, params: dict[str, Any] | None = None,
    audio_out: Track | None = None, cancel_after_audio: bool = False,
) -> list[ev.ServerEvent]:
    """Every event of one response, from ``response.create`` to ``response.done``; ``cancel_after_audio``
    sends ``response.cancel`` once the first audio delta is out and the brain is still writing."""
    speech = Speech(kind="custom", new_vad=EnergyVad, stt=ToneStt(), tts=tts)
    session = make_session(speech, clock, ScriptedBrain([outputs or [Say(TEXT)]]))
    session.audio_out = audio_out
    async with session:
        create: dict[str, Any] = {"type": "response.create"}
        if params is not None:
            create["response"] = params
        await session.receive(json.dumps(create))
        events: list[ev.ServerEvent] = []
        while not any(isinstance(e, ev.ResponseDoneEvent) for e in events):
            await clock.settle()
            event = await session.next_event()
            assert event is not None
            events.append(event)
            if cancel_after_audio and isinstance(event, ev.ResponseAudioDeltaEvent):
                cancel_after_audio = False
                await session.receive('{"type": "response.cancel"}')
    return events


def audio_of(events: list[ev.ServerEvent]) -> bytes:
    return b"".join(base64.b64decode(e.delta) for e in events if isinstance(e, ev.ResponseAudioDeltaEvent))


def transcript_deltas(events: list[ev.ServerEvent]) -> str:
    return "".join(e.delta for e in events if isinstance(e, ev.ResponseAudioTranscriptDeltaEvent))


def transcripts_at_close(events: list[ev.ServerEvent]) -> list[str]:
    """The item's transcript as ``output_audio_transcript.done``, ``content_part.done`` and ``response.done``
    give it."""
    done = next(e for e in events if isinstance(e, ev.ResponseAudioTranscriptDoneEvent))
    part = next(e for e in events if isinstance(e, ev.ResponseContentPartDoneEvent))
    final = next(e for e in events if isinstance(e, ev.ResponseDoneEvent))
    item = msgspec.to_builtins(final.response.output[0])
    return [done.transcript, str(part.part.transcript), str(item["content"][0]["transcript"])]


async def test_each_words_text_goes_out_right_before_the_audio_it_starts_in(clock: Any) -> None:
    tts = TimedTone()
    events = await answer(clock, tts)
    audio_ms = 0.0
    arrived: list[tuple[float, str]] = []  # (audio sent before it, delta)
    for event in events:
        if isinstance(event, ev.ResponseAudioDeltaEvent):
            audio_ms += len(base64.b64decode(event.delta)) / 48.0
        elif isinstance(event, ev.ResponseAudioTranscriptDeltaEvent):
            arrived.append((audio_ms, event.delta))
    assert "".join(d for _, d in arrived) == TEXT  # the same text, whitespace and all
    assert len(tts.pieces) > 1 and " ".join(tts.pieces) == TEXT
    sent_at = [at for at, delta in arrived for _ in delta.split()]
    assert sent_at == truth(tts.pieces)  # each word's text came exactly where its audio starts
    assert audio_of(events) == b"".join(ToneTts().synthesize_with_timings(p)[0] for p in tts.pieces)  # untouched
    assert transcripts_at_close(events) == [TEXT, TEXT, TEXT]


async def test_a_client_anchoring_text_to_the_audio_after_it_places_every_word_exactly(clock: Any) -> None:
    tts = TimedTone()
    events = await answer(clock, tts)
    transcript = Transcript()
    transcript.add_item("a", "assistant")
    for event in events:
        if isinstance(event, ev.ResponseAudioTranscriptDeltaEvent):
            transcript.assistant_delta("a", event.delta, audio=True)
        elif isinstance(event, ev.ResponseAudioDeltaEvent):
            transcript.audio_received("a", len(base64.b64decode(event.delta)) / 48.0)  # no pcm: no onsets
    spoken = truth(tts.pieces)
    for count, start in enumerate(spoken[1:], start=1):
        transcript.played("a", start - 1.0)
        entry = transcript.entry("a")
        assert entry is not None and len(entry.text.split()) == count  # not a word early
    transcript.played("a", spoken[-1])
    entry = transcript.entry("a")
    assert entry is not None and entry.text == TEXT


async def test_a_cancelled_answer_sends_no_text_past_its_audio(clock: Any) -> None:
    # The brain has written the start of the next sentence when the user cancels: its words were never spoken,
    # so no transcript carries them (the deltas, the done event, the item in response.done).
    tts = TimedTone()
    spoken = "Sure, the meeting moved to room four."
    outputs: list[BrainOutput] = [Say(spoken + " Bring the"), Pause(5.0), Say(" slides.")]
    events = await answer(clock, tts, outputs, cancel_after_audio=True)
    final = next(e for e in events if isinstance(e, ev.ResponseDoneEvent))
    assert final.response.status == "cancelled"
    assert " ".join(tts.pieces) == spoken
    assert transcript_deltas(events) == spoken
    assert transcripts_at_close(events) == [spoken, spoken, spoken]
    assert len(audio_of(events)) == len(b"".join(ToneTts().synthesize_with_timings(p)[0] for p in tts.pieces))


async def test_without_word_timings_the_text_still_goes_ahead_of_its_audio(clock: Any) -> None:
    # times_words off (or a TTS without it): each piece's text goes out as the brain writes it, before its audio.
    tts = TimedTone(times_words=False)
    events = await answer(clock, tts)
    first_audio = next(i for i, e in enumerate(events) if isinstance(e, ev.ResponseAudioDeltaEvent))
    before = transcript_deltas(events[:first_audio])
    assert before.strip() == tts.pieces[0] and transcript_deltas(events) == TEXT
    assert transcripts_at_close(events) == [TEXT, TEXT, TEXT]


async def test_over_webrtc_text_goes_as_it_comes_and_the_audio_to_the_track(clock: Any) -> None:
    # Audio on the media track and text on the data channel take separate paths: nothing to interleave.
    track = Track()
    tts = TimedTone()
    events = await answer(clock, tts, audio_out=track)
    assert not audio_of(events)
    assert bytes(track.audio) == b"".join(ToneTts().synthesize_with_timings(p)[0] for p in tts.pieces)
    untimed = await answer(clock, TimedTone(times_words=False), audio_out=Track())
    assert [e.type for e in events] == [e.type for e in untimed]  # the same events as without word timings
    deltas = [e.delta for e in events if isinstance(e, ev.ResponseAudioTranscriptDeltaEvent)]
    assert deltas == [e.delta for e in untimed if isinstance(e, ev.ResponseAudioTranscriptDeltaEvent)]
    assert transcripts_at_close(events) == [TEXT, TEXT, TEXT]


async def test_a_text_only_answer_is_unchanged(clock: Any) -> None:
    tts = TimedTone()
    events = await answer(clock, tts, params={"output_modalities": ["text"]})
    untimed = await answer(clock, TimedTone(times_words=False), params={"output_modalities": ["text"]})
    deltas = [e.delta for e in events if isinstance(e, ev.ResponseTextDeltaEvent)]
    assert "".join(deltas) == TEXT and deltas == [e.delta for e in untimed if isinstance(e, ev.ResponseTextDeltaEvent)]
    assert not tts.pieces and not any(isinstance(e, ev.ResponseAudioTranscriptDeltaEvent) for e in events)
    done = next(e for e in events if isinstance(e, ev.ResponseTextDoneEvent))
    assert done.text == TEXT
