"""``aoai-realtime talk``: a conversation from the terminal, against the local engine or a real deployment.

Each input is a line of text or a WAV file (``@path.wav`` on the interactive prompt). The reply is printed as
text and, with ``--wav-out DIR``, written as ``reply-N.wav`` (pcm16 mono 24 kHz). Events are shown as they
arrive with their time since the start, and every turn ends with its latency (end of user input -> first
assistant audio; for speech, from ``speech_stopped``) and its tokens.

Targets: the in-process local engine (default), any engine URL (``--url http://127.0.0.1:8765/v1 --key KEY``),
or Azure (``--azure-resource R --deployment D``, key from ``AZURE_OPENAI_API_KEY``).

Tool calls go through the one tool loop (:class:`~aoai_realtime.protocol.arbiter.ToolCallBook` and its
:class:`~aoai_realtime.protocol.arbiter.ResponseArbiter`, as in the agents and the server's sideband): each call
answered once, one ``response.create`` after the calls of a response, retried if it collides with a VAD response.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import os
import time
import wave
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from ..client import RealtimeClient
from ..errors import ConfigError, redact
from ..protocol import events as ev
from ..protocol.arbiter import ToolCallBook, tool_error_output
from ..protocol.session import ServerVad, SessionConfig, Transcription
from ..transport.base import Transport

__all__ = ["Turn", "read_wav_24k", "run_turn", "stdin_line", "talk", "write_wav"]

ToolCall = Callable[[str, str], str | Awaitable[str]]


@dataclass
class Turn:
    """One user input and what came back."""

    user: str
    spoken: bool = False
    heard: str = ""
    reply: str = ""
    tools: list[str] = field(default_factory=list)
    latency_ms: float | None = None
    tokens: int = 0
    audio: bytearray = field(default_factory=bytearray)


async def run_turn(
    client: RealtimeClient,
    turn: Turn,
    *,
    console: Console,
    t0: float,
    audio: bytes | None = None,
    call_tool: ToolCall | None = None,
    book: ToolCallBook | None = None,
) -> Turn:
    """Send one user turn and follow its events until the assistant has answered and nothing is left to do.

    Tool calls are answered with ``call_tool(name, arguments) -> output`` (sync or async; an ``unknown_tool``
    error when there is none, a ``tool_error`` when it raises). ``book`` is the session's tool-call book: pass
    the same one for every turn of a session (a fresh one is made when omitted).
    """
    book = book if book is not None else ToolCallBook()
    stream = client.events()
    started = time.perf_counter()
    if audio is None:
        await client.send_text(turn.user, respond=False)
        for create in book.arbiter.request():  # the one writer of response.create
            await client.send(create)
    else:
        for i in range(0, len(audio), 4800):  # 100 ms chunks, as a microphone delivers them
            await client.append_audio(audio[i : i + 4800])
    end_of_input = started if audio is None else None
    async for event in stream:
        stamp = f"[dim]{(time.perf_counter() - t0) * 1000:7.0f} ms[/dim]"
        step = book.on_event(event)
        for out in step.send:
            await client.send(out)
        if isinstance(event, ev.InputAudioBufferSpeechStoppedEvent):
            end_of_input = time.perf_counter()
            console.print(f"{stamp} speech stopped at {event.audio_end_ms} ms of audio")
        elif isinstance(event, ev.ConversationItemInputAudioTranscriptionCompletedEvent):
            turn.heard = event.transcript
            console.print(f"{stamp} [cyan]heard:[/cyan] {event.transcript!r}")
        elif isinstance(event, ev.ResponseAudioDeltaEvent):
            if turn.latency_ms is None and end_of_input is not None:
                turn.latency_ms = (time.perf_counter() - end_of_input) * 1000
                console.print(f"{stamp} first audio after {turn.latency_ms:.0f} ms")
            turn.audio += base64.b64decode(event.delta)
        elif isinstance(event, ev.ResponseAudioTranscriptDoneEvent | ev.ResponseTextDoneEvent):
            turn.reply = event.transcript if isinstance(event, ev.ResponseAudioTranscriptDoneEvent) else event.text
            console.print(f"{stamp} [green]assistant:[/green] {turn.reply}")
        elif isinstance(event, ev.ResponseDoneEvent):
            usage = event.response.usage if isinstance(event.response.usage, dict) else {}
            turn.tokens += int(usage.get("total_tokens", 0) or 0)
        elif isinstance(event, ev.RealtimeErrorEvent):
            console.print(f"{stamp} [red]error[/red] {event.error.code}: {redact(event.error.message)}")
        for call in step.calls:
            output = await _call(call_tool, call.name, call.arguments)
            turn.tools.append(f"{call.name}({call.arguments}) -> {output}")
            console.print(f"{stamp} [magenta]tool[/magenta] {call.name}({call.arguments}) -> {output}")
            for out in book.settle(call.call_id, output):
                await client.send(out)
        if isinstance(event, ev.ResponseDoneEvent) and book.idle:
            break  # no call open, no response active or wanted: the turn is over
    return turn


async def _call(call_tool: ToolCall | None, name: str, arguments: str) -> str:
    if call_tool is None:
        return tool_error_output("unknown_tool", f"there is no tool named {name!r}")
    try:
        result = call_tool(name, arguments)
        return await result if inspect.isawaitable(result) else result
    except Exception as exc:  # noqa: BLE001 - a tool's failure is an answer to the model, not a crash
        return tool_error_output("tool_error", f"{type(exc).__name__}: {exc}")


def read_wav_24k(path: str | Path) -> bytes:
    """A 16-bit WAV file as pcm16 mono 24 kHz (stereo is averaged, other rates resampled)."""
    import numpy as np

    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ConfigError(f"{path}: only 16-bit PCM WAV files are supported", field="wav")
        channels, rate = w.getnchannels(), w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32)
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1)
    if rate != 24000:
        import soxr

        data = soxr.resample(data, rate, 24000)
    return bytes(np.clip(data, -32768, 32767).astype("<i2").tobytes())


def write_wav(path: str | Path, pcm: bytes, rate: int = 24000) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


@asynccontextmanager
async def _transport(url: str | None, key: str | None, azure_resource: str | None, deployment: str | None,
                     speech: str) -> AsyncIterator[Transport]:
    from ..auth import ApiKey
    from ..endpoints import Endpoint
    from ..transport.websocket import WebSocketTransport

    if azure_resource:
        api_key = key or os.environ.get("AZURE_OPENAI_API_KEY")
        if not api_key:
            raise ConfigError("set AZURE_OPENAI_API_KEY (or --key) to talk to Azure", field="key")
        endpoint = Endpoint.azure(resource=azure_resource, deployment=deployment or "gpt-realtime")
        yield WebSocketTransport(endpoint, ApiKey(api_key))
    elif url:
        yield WebSocketTransport(Endpoint.local(url), ApiKey(key, style="bearer") if key else None)
    else:
        from ..testing.engine import EngineHarness

        async with EngineHarness(speech=speech) as harness:
            yield harness.connect()


async def talk(
    inputs: Sequence[str],
    *,
    url: str | None = None,
    key: str | None = None,
    azure_resource: str | None = None,
    deployment: str | None = None,
    speech: str = "full",
    wav_out: Path | None = None,
    instructions: str = "You are a concise, friendly voice assistant.",
    console: Console | None = None,
    read_line: Callable[[], str | None] | None = None,
) -> list[Turn]:
    """Talk through ``inputs`` (text, or paths ending in ``.wav``), or read lines interactively if empty."""
    console = console or Console()
    session = SessionConfig(instructions=instructions, transcription=Transcription(model="whisper-1", language="en"),
                            turn_detection=ServerVad(silence_duration_ms=500))
    turns: list[Turn] = []
    if wav_out is not None:
        os.makedirs(wav_out, exist_ok=True)  # once, before the session starts
    t0 = time.perf_counter()
    async with _transport(url, key, azure_resource, deployment, speech) as transport, \
            RealtimeClient(transport, session=session) as client:
        book = ToolCallBook()  # one per session: it tracks the active response across turns
        console.print(f"[bold]connected[/bold]: session {client.session.get('id', '?')}; "
                      f"model {client.session.get('model', '?')}")
        async for raw in _lines(inputs, read_line):
            line = raw.strip()
            if not line:
                continue
            if line in ("quit", "exit"):
                break
            path = line.removeprefix("@")
            spoken = path.lower().endswith(".wav")
            turn = Turn(user=path if spoken else line, spoken=spoken)
            audio = None
            if spoken:
                # trailing silence longer than silence_duration_ms, so the VAD hears the end of the turn
                audio = bytes(4800) + read_wav_24k(path) + bytes(48000)
            console.print(f"\n[bold]you{' (wav)' if spoken else ''}:[/bold] {turn.user}")
            await asyncio.wait_for(run_turn(client, turn, console=console, t0=t0, audio=audio, book=book),
                                   timeout=120)
            turns.append(turn)
            if wav_out is not None and turn.audio:
                out = wav_out / f"reply-{len(turns)}.wav"
                write_wav(out, bytes(turn.audio))
                console.print(f"[dim]reply audio: {out} ({len(turn.audio) / 48000:.2f} s)[/dim]")
            latency = f"{turn.latency_ms:.0f} ms" if turn.latency_ms is not None else "-"
            console.print(f"[dim]turn: first audio {latency}, {turn.tokens} tokens[/dim]")
    return turns


async def _lines(inputs: Sequence[str], read_line: Callable[[], str | None] | None) -> AsyncIterator[str]:
    for given in inputs:
        yield given
    if inputs or read_line is None:
        return
    while True:
        typed = await asyncio.to_thread(read_line)
        if typed is None:
            return
        yield typed


def stdin_line() -> str | None:
    """One line from the terminal, or None at end of input."""
    try:
        return input("> ")
    except EOFError:
        return None
