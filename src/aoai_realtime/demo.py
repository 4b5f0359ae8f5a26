"""``aoai-realtime demo``: a short conversation with the local engine, no cloud account needed.

It starts the local Realtime engine in this process, connects a :class:`RealtimeClient` to it, and plays three
user turns: a text greeting, a statement the assistant saves with a tool, and a *spoken* question (speech
synthesised, sent as pcm16 audio, turn-detected by the engine's VAD, transcribed by its speech-to-text) that the
assistant answers from its notes through a second tool. Every event is shown as it arrives with its time, and
each turn ends with its latency (end of user input to first assistant audio) and token usage.
"""

from __future__ import annotations

import asyncio
import json
import time

from rich.console import Console

from .client import RealtimeClient
from .protocol.session import ServerVad, SessionConfig, Transcription
from .talk import Turn, run_turn

__all__ = ["run_demo"]

INSTRUCTIONS = (
    "You are a concise voice assistant. When the user states something to remember, save it with save_note. "
    "search_notes is mandatory for every question about what the user said before."
)
TOOLS = [
    {
        "name": "save_note",
        "description": "Save something the user asked you to remember.",
        "parameters": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    },
    {
        "name": "search_notes",
        "description": "Search the user's saved notes. Mandatory for every question about earlier statements.",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    },
]


class _Notes:
    def __init__(self) -> None:
        self.notes: list[str] = []

    def call(self, name: str, arguments: str) -> str:
        try:
            args = json.loads(arguments or "{}")
        except json.JSONDecodeError:
            return json.dumps({"error": "arguments were not valid JSON"})
        if name == "save_note":
            self.notes.append(str(args.get("text", "")))
            return json.dumps({"saved": True, "count": len(self.notes)})
        if name == "search_notes":
            words = {w.lower().strip("?.,!") for w in str(args.get("query", "")).split() if len(w) > 3}
            hits = [n for n in self.notes if words & {w.lower().strip("?.,!") for w in n.split()}] or self.notes
            return json.dumps({"notes": hits})
        return json.dumps({"error": f"unknown tool {name!r}"})


async def run_demo(*, speech: str = "full", console: Console | None = None) -> list[Turn]:
    """Run the demo conversation and return its turns (the CLI prints them as they happen)."""
    from .engine.speech import load_speech
    from .testing.engine import EngineHarness

    console = console or Console()
    console.rule("[bold]aoai-realtime demo[/bold]: the local Realtime engine, no cloud account")
    loaded = load_speech(speech)  # type: ignore[arg-type]
    notes = _Notes()
    session = SessionConfig(
        instructions=INSTRUCTIONS,
        tools=TOOLS,
        transcription=Transcription(model="whisper-1", language="en"),
        turn_detection=ServerVad(silence_duration_ms=400),
    )
    turns = [
        Turn("Hello there, nice to meet you."),
        Turn("Please remember that the quarterly review moves to Thursday at three."),
        Turn("When is the quarterly review?", spoken=True),
    ]
    t0 = time.perf_counter()
    async with EngineHarness(speech=loaded) as harness, RealtimeClient(harness.connect(), session=session) as client:
        console.print(f"connected: session {client.session.get('id', '?')}, model {client.session.get('model')}")
        for turn in turns:
            console.print(f"\n[bold]user{' (spoken)' if turn.spoken else ''}:[/bold] {turn.user}")
            audio = None
            if turn.spoken:
                chunks = await asyncio.to_thread(list, loaded.tts.synthesize(turn.user))
                pcm = b"".join(chunks)
                audio = bytes(24000) + pcm + bytes(48000)  # lead-in and trailing silence for the VAD
            runner = run_turn(client, turn, console=console, t0=t0, audio=audio, call_tool=notes.call)
            await asyncio.wait_for(runner, timeout=120)
    console.rule("summary")
    for turn in turns:
        latency = f"{turn.latency_ms:.0f} ms" if turn.latency_ms is not None else "-"
        console.print(f"{'spoken' if turn.spoken else 'text  '} | first audio {latency:>7} | "
                      f"tokens {turn.tokens:4d} | {turn.reply}")
    return turns


def main(speech: str = "full") -> None:
    asyncio.run(run_demo(speech=speech))
