"""A call placed the way the demo page places it, from Python: the headless demo's client.

:class:`DemoCaller` posts a WebRTC offer to the demo server's SDP proxy (``POST /api/realtime/calls?persona=``,
signed in as a demo user), so the server mints the session, runs the persona's tools on its sideband and hands
the ended call to the agents, exactly as for a browser. Audio goes out on the media track at microphone pace;
events come back on the data channel. It never answers a tool call itself (the sideband does) and never sends
``response.create`` (the sideband creates the reply to a typed message too).

:class:`TurnWatcher` is the sans-I/O part: fed the call's server events with their arrival time, it knows when
a turn is over (the last response called no tool, every audio response stopped playing, nothing is pending)
and what happened in it (what the user was heard saying, the tools the server ran with their outputs, the
reply, and the latency from the end of the user's speech, or from sending typed text, to the first audio).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from ...auth import EphemeralToken
from ...client import RealtimeClient
from ...endpoints import Endpoint
from ...protocol import events as ev

_INBOX = 8192

__all__ = ["DemoCaller", "ProxyEndpoint", "ToolActivity", "TurnReport", "TurnWatcher"]


@dataclass(frozen=True, kw_only=True)
class ProxyEndpoint(Endpoint):
    """The demo server's SDP proxy as a WebRTC endpoint: the proxy names the persona in its query."""

    persona: str

    @property
    def calls_url(self) -> str:
        return f"{self.realtime_url}/calls?persona={quote(self.persona)}"


@dataclass(frozen=True, kw_only=True)
class ToolActivity:
    """A tool call the server ran during a turn, as the data channel showed it."""

    name: str
    arguments: str
    output: str

    @property
    def ok(self) -> bool:
        try:
            value = json.loads(self.output)
        except (json.JSONDecodeError, TypeError):
            return True
        return not (isinstance(value, dict) and "error" in value)

    def short(self, width: int = 100) -> str:
        """The output on one line, cut to ``width`` characters."""
        text = " ".join(self.output.split())
        return text if len(text) <= width else text[: width - 1] + "…"


@dataclass(kw_only=True)
class TurnReport:
    """One turn: what the user said (``said``) and was heard saying, the tools, the reply and its latency."""

    said: str
    spoken: bool
    heard: str = ""
    reply: str = ""
    tools: list[ToolActivity] = field(default_factory=list)
    latency_ms: float | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def latency_label(self) -> str:
        start = "end of speech" if self.spoken else "text sent"
        value = "no audio" if self.latency_ms is None else f"{self.latency_ms:.0f} ms"
        return f"{start} -> first audio {value}"


class TurnWatcher:
    """Follows one turn's server events (see the module docstring). Call :meth:`begin` when the user starts,
    :meth:`feed` for every event with its arrival time (monotonic seconds); read :attr:`done` and :attr:`report`.
    """

    def __init__(self) -> None:
        self.report = TurnReport(said="", spoken=False)
        self._started_at = 0.0
        self._speech_stopped_at: float | None = None
        self._awaiting_transcript = False
        self._active: set[str] = set()
        self._responses_done = 0
        self._last_called_tools = False
        self._calls: dict[str, ToolActivity] = {}
        self._answered: set[str] = set()
        self._audio_expected: set[str] = set()
        self._audio_finished: set[str] = set()
        self._replies: list[str] = []

    def begin(self, said: str, *, spoken: bool, now: float) -> None:
        """A new turn: the user says (``spoken``) or types ``said``, starting ``now``."""
        self.__init__()  # type: ignore[misc]  # a watcher is reused turn after turn
        self.report = TurnReport(said=said, spoken=spoken)
        self._started_at = now
        self._awaiting_transcript = spoken

    @property
    def done(self) -> bool:
        """The turn is over: a response ended without calling a tool, every tool call of the turn was answered,
        no response is running, every audio response finished playing, and the user's speech was transcribed."""
        return (
            self._responses_done > 0
            and not self._last_called_tools
            and not self._active
            and set(self._calls) <= self._answered
            and self._audio_expected <= self._audio_finished
            and not self._awaiting_transcript
        )

    def feed(self, event: Any, now: float) -> None:
        report = self.report
        if isinstance(event, ev.InputAudioBufferSpeechStoppedEvent):
            if self._speech_stopped_at is None:
                self._speech_stopped_at = now
        elif isinstance(event, ev.ConversationItemInputAudioTranscriptionCompletedEvent):
            report.heard = (report.heard + " " + event.transcript).strip()
            self._awaiting_transcript = False
        elif isinstance(event, ev.ConversationItemInputAudioTranscriptionFailedEvent):
            report.errors.append("the user's speech could not be transcribed")
            self._awaiting_transcript = False
        elif isinstance(event, ev.ResponseCreatedEvent):
            self._active.add(str(event.response.id))
        elif isinstance(event, ev.ResponseFunctionCallArgumentsDoneEvent):
            name = event.name if isinstance(event.name, str) else "?"
            self._calls[event.call_id] = ToolActivity(name=name, arguments=event.arguments, output="")
        elif isinstance(event, ev.ConversationItemAdded | ev.ConversationItemCreatedEvent):
            item = event.item
            call_id = item.call_id if isinstance(item.call_id, str) else ""
            if item.type == "function_call_output" and call_id in self._calls and call_id not in self._answered:
                called = self._calls[call_id]
                output = item.output if isinstance(item.output, str) else ""
                report.tools.append(ToolActivity(name=called.name, arguments=called.arguments, output=output))
                self._answered.add(call_id)
        elif isinstance(event, ev.ResponseAudioTranscriptDoneEvent):
            self._replies.append(event.transcript)
            report.reply = " ".join(t.strip() for t in self._replies if t.strip())
        elif isinstance(event, ev.ResponseTextDoneEvent):
            self._replies.append(event.text)
            report.reply = " ".join(t.strip() for t in self._replies if t.strip())
        elif isinstance(event, ev.OutputAudioBufferStarted):
            self._audio_expected.add(event.response_id)
            if report.latency_ms is None:
                since = self._speech_stopped_at if report.spoken else self._started_at
                if since is not None:
                    report.latency_ms = (now - since) * 1000.0
        elif isinstance(event, ev.OutputAudioBufferStopped | ev.OutputAudioBufferCleared):
            self._audio_finished.add(event.response_id)
        elif isinstance(event, ev.ResponseDoneEvent):
            rid = str(event.response.id)
            self._active.discard(rid)
            self._responses_done += 1
            items = event.response.output if isinstance(event.response.output, list) else []
            self._last_called_tools = any(item.type == "function_call" for item in items)
            if any(_has_audio(item) for item in items):
                self._audio_expected.add(rid)
            if event.response.status == "failed":
                report.errors.append(f"response failed: {event.response.status_details}")
        elif isinstance(event, ev.RealtimeErrorEvent):
            report.errors.append(f"{event.error.code or event.error.type}: {event.error.message}")


def _has_audio(item: ev.Item) -> bool:
    return item.type == "message" and isinstance(item.content, list) and any(
        p.type in ("output_audio", "audio") for p in item.content
    )


class DemoCaller:
    """One call to the demo server as ``user_id`` on ``persona`` (see the module docstring). Use
    :meth:`open`; then :meth:`say` (speech) or :meth:`type` (text) one turn at a time."""

    def __init__(self, client: RealtimeClient, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self._clock = clock
        # Every event with its arrival time, stamped as it is dispatched (latency is measured on arrival).
        self._inbox: asyncio.Queue[tuple[Any, float]] = asyncio.Queue(_INBOX)
        self.overflowed = False
        client.on("*", self._note)

    def _note(self, event: Any) -> None:
        try:
            self._inbox.put_nowait((event, self._clock()))
        except asyncio.QueueFull:
            self.overflowed = True  # reported by the next turn, never dropped silently

    @property
    def session(self) -> dict[str, Any]:
        """The session as the service confirmed it (``session.created``/``updated``): the server's config,
        instructions included."""
        return self.client.session

    @classmethod
    @asynccontextmanager
    async def open(
        cls, base_url: str, *, user_id: str, persona: str, loopback: bool = True, open_timeout: float = 20.0
    ) -> AsyncIterator[DemoCaller]:
        """Place the call through ``base_url``'s SDP proxy; hang up (``DELETE``, as the page does) on exit.

        ``loopback`` offers only 127.0.0.1 ICE candidates (the local engine); pass False towards Azure."""
        from ...transport.webrtc import WebRTCTransport

        endpoint = ProxyEndpoint(kind="custom", base_url=base_url.rstrip("/") + "/api", persona=persona)

        async def sign_in() -> str:
            return user_id  # the demo's sign-in: Authorization: Bearer <user id>

        transport = WebRTCTransport(endpoint, EphemeralToken(sign_in), open_timeout=open_timeout,
                                    ice_addresses=["127.0.0.1"] if loopback else None)  # fmt: skip
        client = RealtimeClient(transport, reconnect=None)
        caller = cls(client)
        await client.connect()
        try:
            yield caller
        finally:
            await caller._hang_up(base_url, user_id, transport.call_id)
            await client.close()

    async def _hang_up(self, base_url: str, user_id: str, call_id: str | None) -> None:
        import aiohttp

        if not call_id:
            return
        url = f"{base_url.rstrip('/')}/api/realtime/calls/{quote(call_id)}"
        async with aiohttp.ClientSession() as http, http.delete(
            url, headers={"Authorization": f"Bearer {user_id}"}
        ) as resp:
            await resp.read()

    @property
    def call_id(self) -> str | None:
        transport = self.client.transport
        return getattr(transport, "call_id", None)

    def _settle(self) -> None:
        # Events still queued belong to the turn before (its trailing item and transcript events): read them.
        while not self._inbox.empty():
            self._inbox.get_nowait()

    async def say(self, text: str, pcm: bytes, *, timeout: float = 120.0) -> TurnReport:
        """Speak ``pcm`` (pcm16 24 kHz mono of ``text``) into the call at microphone pace; return the turn."""
        audio = self.client.transport.audio
        if audio is None:
            raise RuntimeError("this call has no audio track")
        self._settle()
        watcher = TurnWatcher()
        watcher.begin(text, spoken=True, now=self._clock())
        await audio.send_audio(pcm)  # the outgoing track plays it in real time, then silence
        return await self._finish(watcher, timeout)

    async def type(self, text: str, *, timeout: float = 120.0) -> TurnReport:
        """Send ``text`` as a typed user message, as the page's text box does: the message only; the server's
        sideband creates the reply (its response arbiter), so no ``response.create`` is sent from here."""
        self._settle()
        watcher = TurnWatcher()
        watcher.begin(text, spoken=False, now=self._clock())
        await self.client.send_text(text, respond=False)
        return await self._finish(watcher, timeout)

    async def _finish(self, watcher: TurnWatcher, timeout: float) -> TurnReport:
        try:
            async with asyncio.timeout(timeout):
                while not watcher.done:
                    event, at = await self._inbox.get()
                    watcher.feed(event, at)
        except TimeoutError:
            watcher.report.errors.append(f"the turn did not finish within {timeout:g} s")
        if self.overflowed:
            watcher.report.errors.append(f"more than {_INBOX} events arrived unread; some were not seen")
        return watcher.report
