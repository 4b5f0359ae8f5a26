"""``aoai-realtime talk``: a conversation from the terminal, against the local engine or a real deployment.

Each input is a line of text or a WAV file (``@path.wav`` on the interactive prompt). The reply is printed as
text and, with ``--wav-out DIR``, written as ``reply-N.wav`` (pcm16 mono 24 kHz). Events are shown as they
arrive with their time since the start, and every turn ends with its latency (end of user input -> first
assistant audio; for speech, from ``speech_stopped``) and its tokens.

Targets: the in-process local engine (default), any engine URL (``--url http://127.0.0.1:8765/v1 --key KEY``;
``--ca-file CERT`` trusts the certificate of an engine started with ``--tls-self-signed``), or Azure
(``--azure-resource R --deployment D``, key from ``AZURE_OPENAI_API_KEY``).

Inputs are checked before anything connects: a WAV file that is missing, is not a WAV file, or is silent is a
:class:`~aoai_realtime.errors.ConfigError` naming the file. A spoken turn in which the service hears no speech
(no ``input_audio_buffer.speech_started`` within ``no_speech_s`` of the end of the audio) raises
:class:`NoSpeechHeard`, and a turn with no reply in ``turn_timeout_s`` raises :class:`TalkError`. An engine URL
that is not the API root (``http://127.0.0.1:8765`` without ``/v1``) is reported as a wrong path, not as a wrong
key.

Tool calls go through the one tool loop (:class:`~aoai_realtime.protocol.arbiter.ToolCallBook` and its
:class:`~aoai_realtime.protocol.arbiter.ResponseArbiter`, as in the agents and the server's sideband): each call
answered once, one ``response.create`` after the calls of a response, retried if it collides with a VAD response.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import os
import ssl
import time
import urllib.error
import urllib.request
import wave
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from ..client import RealtimeClient
from ..errors import AuthenticationError, ConfigError, RealtimeError, redact
from ..protocol import events as ev
from ..protocol.arbiter import ToolCallBook, tool_error_output
from ..protocol.session import ServerVad, SessionConfig, Transcription
from ..transport.base import Transport

__all__ = ["NoSpeechHeard", "TalkError", "Turn", "read_wav_24k", "run_turn", "stdin_line", "talk", "write_wav"]

SILENT_PEAK = 64
"""A WAV whose loudest sample is below this (about -54 dBFS of full scale 32767) holds no speech."""


class TalkError(RealtimeError):
    """A turn of ``talk`` could not complete (no reply in time)."""


class NoSpeechHeard(TalkError):
    """The service heard no speech in a spoken turn's audio."""

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
    no_speech_s: float = 5.0,
) -> Turn:
    """Send one user turn and follow its events until the assistant has answered and nothing is left to do.

    Tool calls are answered with ``call_tool(name, arguments) -> output`` (sync or async; an ``unknown_tool``
    error when there is none, a ``tool_error`` when it raises). ``book`` is the session's tool-call book: pass
    the same one for every turn of a session (a fresh one is made when omitted). For ``audio``, when the
    service reports no ``speech_started`` within ``no_speech_s`` after the last chunk is sent,
    :class:`NoSpeechHeard` is raised (the caller decides whether to go on with the session).
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
    try:
        async with asyncio.timeout(None if audio is None else no_speech_s) as no_speech:
            await _follow(client, stream, turn, book, console=console, t0=t0, call_tool=call_tool,
                          end_of_input=end_of_input, heard_speech=no_speech.reschedule)
    except TimeoutError:
        raise NoSpeechHeard(
            f"no speech heard in {turn.user} (no speech_started within {no_speech_s:.0f} s of the end of the audio); "
            "check that it is speech, recorded loud enough"
        ) from None
    return turn


async def _follow(
    client: RealtimeClient,
    stream: AsyncIterator[object],
    turn: Turn,
    book: ToolCallBook,
    *,
    console: Console,
    t0: float,
    call_tool: ToolCall | None,
    end_of_input: float | None,
    heard_speech: Callable[[float | None], None],
) -> None:
    async for event in stream:
        if isinstance(event, ev.InputAudioBufferSpeechStartedEvent):
            heard_speech(None)  # no deadline once the service hears speech
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


async def _call(call_tool: ToolCall | None, name: str, arguments: str) -> str:
    if call_tool is None:
        return tool_error_output("unknown_tool", f"there is no tool named {name!r}")
    try:
        result = call_tool(name, arguments)
        return await result if inspect.isawaitable(result) else result
    except Exception as exc:  # noqa: BLE001 - a tool's failure is an answer to the model, not a crash
        return tool_error_output("tool_error", f"{type(exc).__name__}: {exc}")


def read_wav_24k(path: str | Path) -> bytes:
    """A 16-bit WAV file as pcm16 mono 24 kHz (stereo is averaged, other rates resampled).

    Raises :class:`ConfigError` naming the file when it is missing, unreadable or not a 16-bit PCM WAV file.
    """
    import numpy as np

    try:
        with wave.open(str(path), "rb") as w:
            if w.getsampwidth() != 2:
                raise ConfigError(f"{path}: only 16-bit PCM WAV files are supported (this one has "
                                  f"{w.getsampwidth() * 8}-bit samples); convert it, e.g. with sox or ffmpeg")
            channels, rate = w.getnchannels(), w.getframerate()
            data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32)
    except FileNotFoundError:
        raise ConfigError(f"no such WAV file: {path}; check the path") from None
    except (wave.Error, EOFError) as exc:
        raise ConfigError(f"not a WAV file: {path} ({_not_wav_reason(path, exc)}); give a 16-bit PCM .wav "
                          "recording") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1)
    if rate != 24000:
        import soxr

        data = soxr.resample(data, rate, 24000)
    return bytes(np.clip(data, -32768, 32767).astype("<i2").tobytes())


def _not_wav_reason(path: str | Path, exc: Exception) -> str:
    with open(path, "rb") as f:
        head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:] != b"WAVE":
        return f"it starts with {head[:12]!r}, not a RIFF/WAVE header"
    return str(exc) or type(exc).__name__


def write_wav(path: str | Path, pcm: bytes, rate: int = 24000) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


def _spoken_input(path: str) -> bytes:
    """The turn's audio: the file at 24 kHz, with silence before and after (so the VAD hears the end of the
    turn: longer than ``silence_duration_ms``). A silent file is refused here, before anything connects."""
    import numpy as np

    pcm = read_wav_24k(path)
    samples = np.frombuffer(pcm, dtype="<i2")
    peak = int(np.abs(samples.astype(np.int32)).max()) if samples.size else 0
    if peak < SILENT_PEAK:
        seconds = samples.size / 24000
        raise ConfigError(f"no speech in {path}: its {seconds:.1f} s of audio are silent (loudest sample {peak} of "
                          "32767); record it again, louder")
    return bytes(4800) + pcm + bytes(48000)


def _no_api_at(base_url: str, context: ssl.SSLContext | None) -> bool:
    """True when ``base_url`` is reachable but has no Realtime API under it (client_secrets answers 404)."""
    request = urllib.request.Request(base_url + "/realtime/client_secrets", method="GET")
    try:
        with urllib.request.urlopen(request, timeout=3, context=context):  # the user's own URL
            return False
    except urllib.error.HTTPError as exc:
        return exc.code == 404
    except (OSError, ValueError):
        return False


@asynccontextmanager
async def _transport(url: str | None, key: str | None, azure_resource: str | None, deployment: str | None,
                     speech: str, tls: ssl.SSLContext | None = None) -> AsyncIterator[Transport]:
    from ..auth import ApiKey
    from ..endpoints import Endpoint
    from ..transport.websocket import WebSocketTransport

    if azure_resource:
        api_key = key or os.environ.get("AZURE_OPENAI_API_KEY")
        if not api_key:
            raise ConfigError("set AZURE_OPENAI_API_KEY (or --key) to talk to Azure", field="key")
        endpoint = Endpoint.azure(resource=azure_resource, deployment=deployment or "gpt-realtime")
        yield WebSocketTransport(endpoint, ApiKey(api_key), ssl_context=tls)
    elif url:
        yield WebSocketTransport(Endpoint.local(url), ApiKey(key, style="bearer") if key else None, ssl_context=tls)
    else:
        from ..progress import activity
        from ..testing.engine import EngineHarness, load_test_speech

        with activity(f"loading speech ({speech})"):
            speech_port = load_test_speech(speech)
        async with EngineHarness(speech=speech_port) as harness:
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
    ca_file: Path | None = None,
    no_speech_s: float = 5.0,
    turn_timeout_s: float = 120.0,
) -> list[Turn]:
    """Talk through ``inputs`` (text, or paths ending in ``.wav``), or read lines interactively if empty.

    ``ca_file`` is a PEM certificate to trust for ``wss://`` (else the system's trust store). Errors are the
    module docstring's; the WAV files among ``inputs`` are read and checked before connecting.
    """
    console = console or Console()
    session = SessionConfig(instructions=instructions, transcription=Transcription(model="whisper-1", language="en"),
                            turn_detection=ServerVad(silence_duration_ms=500))
    turns: list[Turn] = []
    audio_of = {given.strip(): _spoken_input(given.strip()) for given in inputs if _is_wav(given.strip())}
    if wav_out is not None:
        os.makedirs(wav_out, exist_ok=True)  # once, before the session starts
    tls = ssl.create_default_context(cafile=str(ca_file)) if ca_file is not None else None
    t0 = time.perf_counter()
    try:
        async with _transport(url, key, azure_resource, deployment, speech, tls) as transport, \
                RealtimeClient(transport, session=session) as client:
            await _session(client, inputs, read_line, audio_of, turns, console=console, t0=t0, wav_out=wav_out,
                           no_speech_s=no_speech_s, turn_timeout_s=turn_timeout_s)
    except AuthenticationError as exc:
        if url and exc.status == 403:
            from ..endpoints import Endpoint

            base = Endpoint.local(url).base_url
            if await asyncio.to_thread(_no_api_at, base, tls):
                hint = f" (e.g. --url {base}/v1)" if "/" not in base.split("://", 1)[-1] else ""
                raise ConfigError(f"there is no Realtime API under {base}: the path is wrong, not the key; give the "
                                  f"API root, which for the local engine ends in /v1{hint}", field="url") from None
        raise
    return turns


def _is_wav(line: str) -> bool:
    return line.removeprefix("@").lower().endswith(".wav")


async def _session(
    client: RealtimeClient,
    inputs: Sequence[str],
    read_line: Callable[[], str | None] | None,
    audio_of: dict[str, bytes],
    turns: list[Turn],
    *,
    console: Console,
    t0: float,
    wav_out: Path | None,
    no_speech_s: float,
    turn_timeout_s: float,
) -> None:
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
        spoken = _is_wav(line)
        turn = Turn(user=path if spoken else line, spoken=spoken)
        typed = spoken and line not in audio_of  # typed at the prompt: an error is reported, the session goes on
        try:
            audio = (audio_of[line] if line in audio_of else _spoken_input(path)) if spoken else None
            console.print(f"\n[bold]you{' (wav)' if spoken else ''}:[/bold] {turn.user}")
            async with asyncio.timeout(turn_timeout_s):
                await run_turn(client, turn, console=console, t0=t0, audio=audio, book=book,
                               no_speech_s=no_speech_s)
        except TimeoutError:
            raise TalkError(f"no reply to {turn.user!r} within {turn_timeout_s:.0f} s; the service may be "
                            "overloaded: try again, or a shorter input") from None
        except (ConfigError, NoSpeechHeard) as exc:
            if not typed:
                raise
            console.print(f"[red]error:[/red] {exc}")
            continue
        turns.append(turn)
        if wav_out is not None and turn.audio:
            out = wav_out / f"reply-{len(turns)}.wav"
            write_wav(out, bytes(turn.audio))
            console.print(f"[dim]reply audio: {out} ({len(turn.audio) / 48000:.2f} s)[/dim]")
        latency = f"{turn.latency_ms:.0f} ms" if turn.latency_ms is not None else "-"
        console.print(f"[dim]turn: first audio {latency}, {turn.tokens} tokens[/dim]")


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
