"""``aoai-realtime demo``: two short calls with the local engine and cross-session memory, no cloud account.

It starts the local Realtime engine in this process and a memory store (SQLite in a temporary directory, the
offline all-MiniLM-L6-v2 embedder), and connects a :class:`RealtimeClient` with the memory tools
(``save_insight``, ``retrieve_knowledge``, ``get_session_context``). In the first call the user greets the assistant
and states something it saves; the call ends. In the second call, a new session that starts with an empty
conversation, the user *asks* (speech synthesised, sent as pcm16 audio, turn-detected by the engine's VAD,
transcribed by its speech-to-text) and the assistant answers from memory through hybrid retrieval. Every event is
shown as it arrives with its time, and each turn ends with its latency (end of user input to first assistant
audio) and token usage.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from .client import RealtimeClient
from .protocol.session import ServerVad, SessionConfig, Transcription
from .talk import Turn, run_turn

__all__ = ["run_demo"]

INSTRUCTIONS = (
    "You are a concise voice assistant with a memory across calls. When the user states something to remember, "
    "save it with save_insight. Use retrieve_knowledge for every question about what the user said before."
)
CALLS = [
    [Turn("Hello there, nice to meet you."),
     Turn("Please remember that the quarterly review moves to Thursday at three.")],
    [Turn("When is the quarterly review?", spoken=True)],
]  # fmt: skip


def _dispatcher(tools: list[Any]) -> Callable[[str, str], Awaitable[str]]:
    """``call_tool(name, arguments) -> output`` over the agents' ``Tool`` objects; errors become results."""
    by_name = {t.name: t for t in tools}

    async def call(name: str, arguments: str) -> str:
        t = by_name.get(name)
        if t is None:
            return json.dumps({"ok": False, "error": f"unknown tool {name!r}"})
        try:
            args = json.loads(arguments or "{}")
        except json.JSONDecodeError:
            return json.dumps({"ok": False, "error": "arguments were not valid JSON"})
        if not isinstance(args, dict):
            return json.dumps({"ok": False, "error": "arguments must be a JSON object"})
        try:
            result = await t(**args)
        except TypeError as exc:  # wrong or missing argument names
            return json.dumps({"ok": False, "error": str(exc)})
        return json.dumps(result, default=str)

    return call


async def run_demo(*, speech: str = "full", console: Console | None = None) -> list[Turn]:
    """Run the demo's two calls and return their turns (the CLI prints them as they happen)."""
    from .agents import tool
    from .engine.speech import load_speech
    from .memory import CachedEmbedder, LocalEmbedder, Scope, SQLiteStore, memory_tools
    from .testing.engine import EngineHarness

    console = console or Console()
    console.rule("[bold]aoai-realtime demo[/bold]: the local Realtime engine and memory, no cloud account")
    loaded = load_speech(speech)  # type: ignore[arg-type]
    embedder = CachedEmbedder(LocalEmbedder())  # all-MiniLM-L6-v2 from its wheel: offline, no torch
    turns: list[Turn] = []
    t0 = time.perf_counter()

    async def call(harness: Any, store: Any, call_id: str, call_turns: list[Turn]) -> list[Turn]:
        """One call: a new session whose memory tools are bound to this call."""
        tools = [tool(f) for f in memory_tools(store, embedder, Scope(owner="demo-user", session_id=call_id))]
        session = SessionConfig(
            instructions=INSTRUCTIONS,
            tools=[t.definition() for t in tools],
            transcription=Transcription(model="whisper-1", language="en"),
            turn_detection=ServerVad(silence_duration_ms=400),
        )
        async with RealtimeClient(harness.connect(), session=session) as client:
            console.rule(f"{call_id}: a new session ({client.session.get('id', '?')}), an empty conversation")
            for turn in call_turns:
                console.print(f"\n[bold]user{' (spoken)' if turn.spoken else ''}:[/bold] {turn.user}")
                audio = None
                if turn.spoken:
                    chunks = await asyncio.to_thread(list, loaded.tts.synthesize(turn.user))
                    audio = bytes(24000) + b"".join(chunks) + bytes(48000)  # silence around it, for the VAD
                runner = run_turn(client, turn, console=console, t0=t0, audio=audio, call_tool=_dispatcher(tools))
                await asyncio.wait_for(runner, timeout=120)
        return call_turns

    with tempfile.TemporaryDirectory(prefix="aoai-demo-") as tmp:
        store = await SQLiteStore.open(Path(tmp) / "memory.db", dim=384)
        try:
            async with EngineHarness(speech=loaded) as harness:
                for n, call_turns in enumerate(CALLS, start=1):
                    turns += await call(harness, store, f"call-{n}", call_turns)
        finally:
            await store.close()
    console.rule("summary")
    for turn in turns:
        latency = f"{turn.latency_ms:.0f} ms" if turn.latency_ms is not None else "-"
        console.print(f"{'spoken' if turn.spoken else 'text  '} | first audio {latency:>7} | "
                      f"tokens {turn.tokens:4d} | {turn.reply}")
    return turns


def main(speech: str = "full") -> None:
    asyncio.run(run_demo(speech=speech))
