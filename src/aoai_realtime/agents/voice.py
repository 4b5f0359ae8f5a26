"""``VoiceAssistant``: a voice agent over a :class:`~aoai_realtime.client.RealtimeClient`.

::

    async with VoiceAssistant(client, player=Speaker(), tools=[get_weather]) as assistant:
        assistant.on("state_change", lambda change: print(change.new))
        assistant.on("transcript", render)
        await assistant.stream_audio(Microphone().frames())

It drives :class:`~aoai_realtime.agents.core.VoiceCore` (the sans-I/O brain: state machine, playback clock,
transcript, single response writer, tool book, metrics) with the client's events and the player's progress,
and performs what the core decides. Everything runs in one :class:`asyncio.TaskGroup`, held by a supervising task
the assistant owns: the sender, the player, tool calls, the rollover monitor. ``close()`` (or leaving
``async with``) ends them all. If one of them dies (a bug, a player that fails, a rollover that cannot reach the new
session), the others are cancelled, the state becomes ``error``, the ``error`` callbacks run, waiters raise, and
``close()`` (so leaving ``async with``) raises that exception: a failure is never only logged.

The outward side (callbacks, channels, waiters) is :mod:`.notify`; rollover and re-seeding are :mod:`.switchover`.

Over WebSocket the assistant plays the audio itself, through the injected :class:`~aoai_realtime.audio.AudioSink`
(default: a headless :class:`~aoai_realtime.audio.PacedPlayer`). Over WebRTC the service plays it on the media
track and reports ``output_audio_buffer.*``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from ..audio.g711 import WireAudio
from ..audio.player import AudioSink, PacedPlayer
from ..clock import Clock, as_clock
from ..errors import ConfigError, ConnectionClosed, RealtimeError, get_logger
from ..protocol import events as ev
from ..protocol.state import session_audio_format
from ..streaming import Channel
from .core import (
    Action,
    CancelTool,
    CoreConfig,
    Mode,
    Play,
    RunTool,
    Send,
    StateChanged,
    StopPlayback,
    TranscriptChanged,
    TurnCompleted,
    VoiceCore,
)
from .metrics import PriceTable, TurnMetrics, Usage
from .notify import Callback, EventName, Notifier
from .rollover import RolloverPolicy
from .state import AssistantState, Trigger
from .supervisor import Supervisor
from .switchover import Switchover
from .tools import Tool, ToolCall, ToolPolicy, ToolRunner, ToolSet
from .transcript import TranscriptEntry

if TYPE_CHECKING:
    from ..client import RealtimeClient

__all__ = ["AssistantConfig", "VoiceAssistant"]

log = get_logger(__name__)


@dataclass(frozen=True, kw_only=True)
class AssistantConfig:
    """Settings of a :class:`VoiceAssistant`.

    ``mode``: ``None`` picks ``"webrtc"`` when the transport carries media audio, else ``"websocket"``.
    ``tool_timeout``: seconds for tools without their own. ``tool_policy``: running tools at barge-in.
    ``rollover``: a :class:`RolloverPolicy` (needs ``connect=``), or ``None`` for none.
    ``outbox_size``: client events waiting to be sent before :class:`~aoai_realtime.errors.Busy`.
    ``audio_onsets``: time transcript words also by speech onsets found in the received audio.
    """

    mode: Mode | None = None
    tool_timeout: float = 10.0
    tool_policy: ToolPolicy = ToolPolicy.CANCEL
    cancel_response_on_barge_in: bool = False
    prices: PriceTable = field(default_factory=PriceTable)
    rollover: RolloverPolicy | None = None
    outbox_size: int = 4096
    webrtc_tick_s: float = 0.02
    audio_onsets: bool = True


class VoiceAssistant:
    """A voice agent. Give it a connected-or-not ``client``, or ``connect``, a factory of new clients (needed
    for session rollover). ``instructions`` are sent with the tools at start and reused when rolling over.
    ``clock``: a :class:`~aoai_realtime.clock.Clock` for every timer and latency (or a function giving monotonic
    seconds); default: the event loop's.

    Callbacks (``on``): ``state_change`` (:class:`~aoai_realtime.agents.core.StateChanged`), ``transcript``
    (``list[TranscriptEntry]``), ``turn`` (:class:`TurnMetrics`), ``tool_result`` (:class:`ToolResult`),
    ``rollover`` (the new client), ``error`` (an exception that ended the session or failed the assistant).
    Call :meth:`start` and :meth:`close` from the same task, or use ``async with``.
    """

    def __init__(
        self,
        client: RealtimeClient | None = None,
        *,
        connect: Callable[[], RealtimeClient] | None = None,
        player: AudioSink | None = None,
        tools: ToolSet | Iterable[Tool | Callable[..., Any]] | None = None,
        instructions: str | None = None,
        config: AssistantConfig | None = None,
        clock: Clock | Callable[[], float] | None = None,
    ) -> None:
        if client is None and connect is None:
            raise ConfigError("give VoiceAssistant a client or a connect() factory", field="client")
        self.config = config or AssistantConfig()
        if self.config.rollover is not None and connect is None:
            raise ConfigError("session rollover needs connect=, a factory of new clients", field="rollover")
        self._client: RealtimeClient | None = client
        self.connect_factory = connect
        self._owns_client = False
        self.tools = tools if isinstance(tools, ToolSet) else ToolSet(tools or ())
        self.instructions = instructions
        self.clock: Clock = as_clock(clock)
        self._player: AudioSink = player if player is not None else PacedPlayer(
            record=False, clock=self.clock.now, sleep=self.clock.sleep)
        self._player_given = player is not None
        self._call_changed = asyncio.Event()  # WebRTC: the client placed a new call, or a new client took over
        self._encoder: WireAudio | None = None  # pcm16 -> G.711 when the session's input format is G.711
        self._runner = ToolRunner(self.tools, default_timeout=self.config.tool_timeout, clock=self.clock)
        self.core: VoiceCore = self._new_core("websocket")
        self._tasks = Supervisor("voice-assistant", on_failure=self._failed)
        self.notifier = Notifier(state=lambda: self.core.state, idle=lambda: self.idle, spawn=self._tasks.spawn)
        self.switchover = Switchover(self, self.config.rollover)
        self._outbox: Channel[ev.ClientEvent] = Channel(self.config.outbox_size, overflow="error")
        self._handler: Callable[[Any], None] | None = None
        self.failure: BaseException | None = None  # what ended the session or failed the assistant
        self._crashed: BaseException | None = None  # a task's (or handler's) exception: close() raises it

    def _new_core(self, mode: Mode) -> VoiceCore:
        cfg = CoreConfig(
            mode=mode,
            tool_policy=self.config.tool_policy,
            cancel_response_on_barge_in=self.config.cancel_response_on_barge_in,
            prices=self.config.prices,
            audio_onsets=self.config.audio_onsets,
        )
        return VoiceCore(cfg, clock=self.clock.now, item_audio_ms=self._item_audio_ms)

    def _item_audio_ms(self, item_id: str) -> float | None:
        client = self._client
        return client.conversation.audio_ms(item_id) if client is not None else None

    # -- views ---------------------------------------------------------------------------------------------

    @property
    def client(self) -> RealtimeClient:
        if self._client is None:
            raise RealtimeError("the assistant is not started")
        return self._client

    @property
    def state(self) -> AssistantState:
        return self.core.state

    @property
    def tools_in_flight(self) -> list[ToolCall]:
        """Tool calls the model made that have not been answered yet."""
        return self.core.tools_in_flight

    @property
    def transcript(self) -> list[TranscriptEntry]:
        return self.core.transcript.entries()

    @property
    def turns(self) -> list[TurnMetrics]:
        return list(self.core.turns)

    @property
    def usage(self) -> Usage:
        return self.core.usage

    @property
    def cost(self) -> float:
        return self.core.usage.cost(self.config.prices)

    @property
    def player(self) -> AudioSink:
        return self._player

    @property
    def rollovers(self) -> int:
        """Sessions switched to so far (planned rollovers and expiries)."""
        return self.switchover.rollovers

    @property
    def idle(self) -> bool:
        """Listening with nothing pending: no response, no tools, no audio playing, the last turn complete."""
        return self.state is AssistantState.LISTENING and self.core.idle and self.core.turn is None

    # -- callbacks, streams, waiters (see .notify) -------------------------------------------------------------

    def on(self, name: EventName, callback: Callback) -> Callback:
        """Call ``callback(value)`` on every ``name`` event (sync or async). Returns it (decorator use). A callback
        that raises is logged with its traceback; the session goes on."""
        return self.notifier.on(name, callback)

    def off(self, name: EventName, callback: Callback) -> None:
        self.notifier.off(name, callback)

    def subscribe(self, *, maxsize: int = 256) -> Channel[tuple[str, Any]]:
        """A channel of ``(name, json-ready payload)`` for ``state``, ``transcript``, ``tools``, ``turn``.
        Drops the oldest when full (each payload is a full snapshot). Ends when the assistant closes."""
        return self.notifier.subscribe(maxsize)

    def unsubscribe(self, channel: Channel[tuple[str, Any]]) -> None:
        self.notifier.unsubscribe(channel)

    def state_changes(self) -> AsyncIterator[StateChanged]:
        """Every state change from now on, until the assistant closes."""
        return self.notifier.stream("state_change")

    def transcript_updates(self) -> AsyncIterator[list[TranscriptEntry]]:
        """The transcript each time it changes (a slow consumer skips to the latest)."""
        return self.notifier.stream("transcript")

    async def wait_for_state(self, *states: AssistantState, timeout: float | None = None) -> AssistantState:
        """Wait until the state is one of ``states`` (returns at once if it already is). Raises the failure if
        the assistant fails first, :class:`ConnectionClosed` if it closes."""
        return await self.notifier.wait_for_state(states, timeout)

    async def wait_until_idle(self, timeout: float | None = None) -> None:
        """Wait until :attr:`idle` (the assistant has finished answering and been heard); raises as
        :meth:`wait_for_state` does."""
        await self.notifier.wait_until_idle(timeout)

    # -- lifecycle -----------------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        failure = await self._close()
        if failure is not None and exc is None:  # the body's own exception, if any, goes first
            raise failure

    async def start(self) -> None:
        """Connect (if needed), send instructions and tools, and start listening."""
        if self._tasks.started:
            return
        self._perform(self.core.connecting())
        client = self._client
        if client is None:
            assert self.connect_factory is not None
            client = self._client = self.connect_factory()
        await self._tasks.start()
        try:
            if not client.connected:
                self._owns_client = True
                await client.connect()
            # the transport knows whether it carries media audio only once connected (WebRTC)
            mode = self.config.mode or ("webrtc" if client.transport.audio is not None else "websocket")
            if mode != self.core.config.mode:
                self.core = self._new_core(mode)
                self._perform(self.core.connecting())
            update = self._session_update(self.instructions)
            if update:
                await client.update_session(update)
        except BaseException:
            self._perform(self.core.failed())
            await self._shutdown()
            raise
        self.switchover.session_started = self.clock.now()
        self._attach(client)
        self._perform(self.core.connected())
        self._tasks.spawn(self._sender())
        self._tasks.spawn(self.switchover.watch(client))
        if self.core.config.mode == "websocket":
            self._player.set_listener(lambda samples: self._perform(self.core.played(samples)))
            self._tasks.spawn(self._player.run())
        else:
            self._tasks.spawn(self._ticker())
            self._tasks.spawn(self._play_track(client))
            if self._player_given:
                # the service plays on the media track; the player only makes it audible here
                self._tasks.spawn(self._player.run())
        if self.config.rollover is not None:
            self._tasks.spawn(self.switchover.monitor())

    def _failed(self, exc: BaseException) -> None:
        log.error("voice assistant failed: %s: %s", type(exc).__name__, exc, exc_info=exc)
        self.failure = self._crashed = exc
        if self.core.machine.can(Trigger.FAILED):
            self._perform(self.core.failed())
        self.notifier.emit("error", exc)
        self.notifier.close(exc)
        self._outbox.close()

    def _session_update(self, instructions: str | None) -> dict[str, Any]:
        update: dict[str, Any] = {}
        if instructions is not None:
            update["instructions"] = instructions
        if len(self.tools):
            update["tools"] = self.tools.definitions()
            update["tool_choice"] = "auto"
        if update and self.client.transport.dialect == "ga":
            update["type"] = "realtime"
        return update

    def _attach(self, client: RealtimeClient) -> None:
        def handler(event: Any) -> None:
            try:
                if getattr(event, "type", None) == "client.reconnected":
                    # The client reconnected by itself after a drop: a new, empty session. Seed it, or the
                    # assistant would forget the whole conversation.
                    self._call_changed.set()  # over WebRTC, a new call: the track player follows it
                    self.core.new_session()
                    self._tasks.spawn(self.switchover.reseed(client))
                    return
                self._perform(self.core.handle(event))
            except Exception as exc:  # noqa: BLE001  # raised in the client's task: fail the assistant with it
                self._tasks.crash(exc)

        self._handler = handler
        client.on("*", handler)
        self.core.session_changed(client.session)  # its session.created/updated went by before the handler

    def _detach(self, client: RealtimeClient) -> None:
        if self._handler is not None:
            client.off("*", self._handler)

    def _switch_to(self, new: RealtimeClient) -> RealtimeClient:
        """Make ``new`` (connected and seeded) the assistant's client; return the old one (the caller closes it)."""
        old = self.client
        self._detach(old)
        self._client = new
        self._owns_client = True
        self.core.new_session()
        self.switchover.session_started = self.clock.now()
        self._attach(new)
        self._tasks.spawn(self.switchover.watch(new))
        if self.core.config.mode == "webrtc":
            self._tasks.spawn(self._play_track(new))  # the new call's media; the old call's task ends
            self._call_changed.set()
        return old

    async def close(self) -> None:
        """Stop everything, close the client if the assistant opened it. Idempotent. Raises the exception that
        failed the assistant (a task that died), if one did, once."""
        failure = await self._close()
        if failure is not None:
            raise failure

    async def _close(self) -> BaseException | None:
        if not self._tasks.started:
            return None
        self._perform(self.core.closed())
        return await self._shutdown()

    async def _shutdown(self) -> BaseException | None:
        client = self._client
        if client is not None:
            self._detach(client)
        self._outbox.close()
        await self._tasks.stop()
        if client is not None and self._owns_client:
            await client.close()
        self.notifier.close(ConnectionClosed("the assistant closed", code=1000))
        self._outbox = Channel(self.config.outbox_size, overflow="error")
        crashed, self._crashed = self._crashed, None
        return crashed

    # -- performing actions --------------------------------------------------------------------------------

    def _perform(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                self._outbox.send_nowait(action.event)
            elif isinstance(action, Play):
                self._player.write(action.pcm)
            elif isinstance(action, StopPlayback):
                self._player.clear()
            elif isinstance(action, RunTool):
                self._tasks.spawn(self._run_tool(action.call))
            elif isinstance(action, CancelTool):
                self._runner.cancel(action.call_id)
            elif isinstance(action, StateChanged):
                self.notifier.state_changed(action, [c.name for c in self.tools_in_flight])
            elif isinstance(action, TranscriptChanged):
                self.notifier.transcript_changed(list(action.entries))
            elif isinstance(action, TurnCompleted):
                self.notifier.turn_completed(action.metrics)
        self.notifier.check_idle()

    async def _sender(self) -> None:
        async for event in self._outbox:
            try:
                await self.client.send(event)
            except ConnectionClosed as exc:
                # the session is gone (Switchover.watch reports it): say what was not sent
                log.warning("could not send %s: %s", event.type, exc)

    async def _run_tool(self, call: ToolCall) -> None:
        self.notifier.publish("tools", {"in_flight": [c.name for c in self.tools_in_flight]})
        result = await self._runner.run(call)
        self._perform(self.core.tool_settled(result))
        self.notifier.emit("tool_result", result)
        self.notifier.publish("tools", {"in_flight": [c.name for c in self.tools_in_flight]})

    async def _play_track(self, client: RealtimeClient) -> None:
        """WebRTC: the call's media audio, for the transcript timing and the player. A reconnect places a new call
        with a new media channel: follow it. After a rollover the new client has its own task; this one ends."""
        channel = client.transport.audio
        while channel is not None:
            async for pcm in channel.received_audio():
                self._perform(self.core.track_audio(pcm))
                if self._player_given:
                    self._player.write(pcm)
            # This call's media ended. Wait for a new call on the same client (reconnect) or for this client to
            # be replaced (rollover); a client that just fails is cancelled with the assistant.
            while client is self._client and client.transport.audio is channel:
                self._call_changed.clear()
                await self._call_changed.wait()
            if client is not self._client:
                return
            channel = client.transport.audio

    async def _ticker(self) -> None:
        while True:
            await self.clock.sleep(self.config.webrtc_tick_s)
            self._perform(self.core.tick())

    def _session_ended(self, exc: ConnectionClosed) -> None:
        """The session ended under the assistant (not a bug): state ``error``, the ``error`` callbacks run."""
        self.failure = exc
        if self.core.machine.can(Trigger.FAILED):
            self._perform(self.core.failed())
        self.notifier.emit("error", exc)

    # -- input ---------------------------------------------------------------------------------------------

    async def send_audio(self, pcm: bytes) -> None:
        """Send microphone audio (pcm16 mono 24 kHz), encoded to G.711 when the session's input format is."""
        client = self.client
        channel = client.transport.audio
        if channel is not None:
            await channel.send_audio(pcm)
        else:
            fmt = session_audio_format(client.session, "input") or "audio/pcm"
            if fmt == "audio/pcm":
                await client.append_audio(pcm)
            else:
                if self._encoder is None or self._encoder.format != fmt:
                    self._encoder = WireAudio(fmt)  # stateful: one resampler across the frames of the stream
                await client.append_audio(self._encoder.from_pcm(pcm))
        self.core.audio_sent(len(pcm) // 2)

    async def stream_audio(self, source: AsyncIterator[bytes]) -> None:
        """Send every frame of ``source`` (e.g. ``Microphone().frames()`` or ``pcm_source(...)``)."""
        async for frame in source:
            await self.send_audio(frame)

    async def send_text(self, text: str) -> None:
        """Add a user text message and ask for an answer (through the single response writer)."""
        item = ev.Item(type="message", role="user", content=[ev.ContentPart(type="input_text", text=text)])
        self._perform([Send(ev.ConversationItemCreateEvent(item=item))])
        self._perform([Send(e) for e in self.core.writer.request()])

    async def interrupt(self) -> None:
        """Cut the assistant off now, as if the user had started speaking."""
        self._perform(self.core.interrupt())

    async def set_tools(self, tools: ToolSet) -> None:
        """Replace the session's tools (e.g. another persona's)."""
        self.tools = tools
        self._runner.tools = tools
        await self.client.update_session(self._session_update(None) or {"tools": []})

    async def roll_over(self) -> None:
        """Switch to a new session now (at the next silence boundary)."""
        await self.switchover.roll_over(boundary=True)

