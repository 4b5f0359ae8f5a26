"""The assistant against the local engine whose voice says where its words start (as piper does): the engine
sends each word's transcript right before the audio it starts in (WebSocket order), and the assistant shows each
word as its audio plays, cuts the transcript at barge-in to the words heard, and ends with the whole text. Tone
speech given word timings, in memory, on the virtual clock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from aoai_realtime.agents import AssistantState, VoiceAssistant
from aoai_realtime.audio import PacedPlayer
from aoai_realtime.client import RealtimeClient
from aoai_realtime.engine.brain.base import Say
from aoai_realtime.engine.brain.scripted import ScriptedBrain
from aoai_realtime.engine.speech.load import Speech
from aoai_realtime.engine.speech.tone import ToneStt, ToneTts
from aoai_realtime.engine.speech.vad import EnergyVad
from aoai_realtime.protocol import events as ev
from aoai_realtime.testing.engine import EngineHarness
from aoai_realtime.testing.virtual_time import run_virtual

from .scenarios import BargeIn, barge_in

LONG = "The quick brown fox jumps over the lazy dog. Then it runs far away into the deep green forest."
STORY = "the quick brown fox jumps over the lazy dog then it runs far away into the deep green forest"
TRANSCRIBED = {"type": "realtime", "audio": {"input": {"transcription": {"model": "whisper-1"}}}}


class TimedTone(ToneTts):
    """Tone speech that says where its words start (``synthesize_timed``, as ``PiperTts``), recording the pieces
    the engine asked for."""

    times_words = True

    def __init__(self) -> None:
        super().__init__()
        self.pieces: list[str] = []

    def synthesize_timed(self, text: str) -> Iterator[tuple[bytes, list[tuple[int, float]]]]:
        self.pieces.append(text)
        word, offset = 0, 0.0
        for pcm, timings in self.synthesize_sentences(text):
            yield pcm, [(word + i, t.start_ms - offset) for i, t in enumerate(timings)]
            word += len(timings)
            offset += len(pcm) / 48.0

    def starts(self) -> list[float]:
        """Every word spoken, ms from the start of the answer (pieces back to back)."""
        starts: list[float] = []
        offset = 0.0
        for piece in self.pieces:
            pcm, timings = ToneTts().synthesize_with_timings(piece)
            starts.extend(offset + t.start_ms for t in timings)
            offset += len(pcm) / 48.0
        return starts


def speech(tts: ToneTts) -> Speech:
    return Speech(kind="custom", new_vad=EnergyVad, stt=ToneStt(), tts=tts)


async def timed_barge_in(text: str, after_s: float, session: dict[str, Any]) -> tuple[BargeIn, TimedTone]:
    tts = TimedTone()
    return await barge_in(text, after_s, session=session, fallback="okay", speech=speech(tts)), tts


@pytest.mark.parametrize("after_s", [0.7, 1.31, 2.45])
def test_barge_in_cuts_the_transcript_to_the_words_heard(after_s: float) -> None:
    run, tts = run_virtual(timed_barge_in(LONG, after_s, TRANSCRIBED))
    sent, transcript = run.sent, run.transcript
    [truncate] = [e for e in sent if isinstance(e, ev.ConversationItemTruncateEvent)]
    heard = [w for w, start in zip(LONG.split(), tts.starts(), strict=False) if start < truncate.audio_end_ms]
    cut = next(e for e in transcript if e.interrupted)
    assert 0 < len(heard) < len(LONG.split()) and cut.text.split() == heard
    assert [(e.role, e.text) for e in transcript][-2:] == [("user", "stop please"), ("assistant", "okay")]


def test_a_g711_session_cuts_at_the_words_heard_too() -> None:
    # Each word's audio is its own slice of the answer: the G.711 stream is encoded across the cuts unchanged.
    pcmu = {"type": "audio/pcmu"}
    audio = {"input": {"format": pcmu, "transcription": {"model": "whisper-1"}}, "output": {"format": pcmu}}
    session = {"type": "realtime", "audio": audio}
    run, tts = run_virtual(timed_barge_in(STORY, 1.31, session))
    sent, transcript = run.sent, run.transcript
    [truncate] = [e for e in sent if isinstance(e, ev.ConversationItemTruncateEvent)]
    heard = [w for w, start in zip(STORY.split(), tts.starts(), strict=False) if start < truncate.audio_end_ms]
    cut = next(e for e in transcript if e.interrupted)
    assert 0 < len(heard) < len(STORY.split()) and cut.text.split() == heard


def test_an_answer_heard_to_the_end_shows_every_word_in_step_and_then_the_whole_text() -> None:
    async def scenario() -> tuple[list[tuple[float, int]], list[Any], TimedTone]:
        loop = asyncio.get_running_loop()
        tts = TimedTone()
        async with EngineHarness(brain=ScriptedBrain([[Say(LONG)]]), speech=speech(tts)) as harness:
            client = RealtimeClient(harness.connect())
            player = PacedPlayer(clock=loop.time)
            shown: list[tuple[float, int]] = []  # (ms of the answer played, words shown)
            async with VoiceAssistant(client, player=player, clock=loop.time) as assistant:
                await assistant.send_text("tell me a story")
                await assistant.wait_for_state(AssistantState.SPEAKING, timeout=10)
                while assistant.state is AssistantState.SPEAKING:
                    answer = [e for e in assistant.transcript if e.role == "assistant"]
                    shown.append((player.position_samples() / 24.0, len(answer[-1].text.split()) if answer else 0))
                    await asyncio.sleep(0.005)
                await assistant.wait_until_idle(60)
                return shown, list(assistant.transcript), tts

    shown, transcript, tts = run_virtual(scenario())
    starts = tts.starts()
    # never a word before its first sample plays; each word once it has (within a player frame: 20 ms)
    assert len(shown) > 100
    for at, count in shown:
        assert count <= sum(1 for s in starts if s <= at), (at, count)
        assert count >= sum(1 for s in starts if s <= at - 20.0), (at, count)
    assert transcript[-1].role == "assistant" and transcript[-1].text == LONG and transcript[-1].final
