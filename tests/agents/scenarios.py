"""Whole conversations with the in-memory engine that several tests drive the same way."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aoai_realtime.agents import AssistantState, TranscriptEntry, VoiceAssistant
from aoai_realtime.audio import PacedPlayer, pcm_source
from aoai_realtime.client import RealtimeClient
from aoai_realtime.engine.brain.base import Say
from aoai_realtime.engine.brain.scripted import ScriptedBrain
from aoai_realtime.engine.ports import SpeechPort
from aoai_realtime.engine.speech.tone import ToneTts
from aoai_realtime.protocol.codec import decode_client_event
from aoai_realtime.testing.engine import EngineHarness


@dataclass
class BargeIn:
    sent: list[Any]  # the client's events, decoded
    transcript: list[TranscriptEntry]  # the assistant's transcript once the turn after the barge-in is answered
    player: PacedPlayer


async def barge_in(text: str, after_s: float, *, session: dict[str, Any], fallback: str,
                   speech: SpeechPort | str = "fake") -> BargeIn:  # fmt: skip
    """The assistant asks for a story the engine answers with ``text``; ``after_s`` into the answer the user says
    "stop please" over it, and the engine answers that with ``fallback``. Run it on the virtual clock."""
    loop = asyncio.get_running_loop()
    brain = ScriptedBrain([[Say(text)]], fallback=fallback)
    async with EngineHarness(brain=brain, speech=speech) as harness:
        client = RealtimeClient(harness.connect(), session=session)
        player = PacedPlayer(clock=loop.time)
        async with VoiceAssistant(client, player=player, clock=loop.time) as assistant:
            await assistant.send_text("tell me a story")
            await assistant.wait_for_state(AssistantState.SPEAKING, timeout=10)
            await asyncio.sleep(after_s)
            user, _ = ToneTts().synthesize_with_timings("stop please")
            await assistant.stream_audio(pcm_source(user + bytes(2 * 24 * 800), clock=loop.time))
            await assistant.wait_until_idle(60)
            sent = [decode_client_event(raw) for raw in client.transport.sent]  # type: ignore[attr-defined]
            return BargeIn(sent, list(assistant.transcript), player)
