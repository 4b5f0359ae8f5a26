"""``VoiceAssistant``: a voice agent over a :class:`~aoai_realtime.client.RealtimeClient`.

::

    async with VoiceAssistant(client, player=Speaker(), tools=[get_weather]) as assistant:
        assistant.on("state_change", lambda change: print(change.new))
        assistant.on("transcript", render)
        await assistant.stream_audio(Microphone().frames())

It drives :class:`~aoai_realtime.agents.core.VoiceCore` (the sans-I/O brain: state machine, playback clock,
transcript, single response writer, tool book, metrics) with the client's events and the player's progress,
and performs what the core decides. Everything runs in one task group owned by the assistant: the sender,
the player, tool calls, the rollover monitor; ``close()`` (or leaving ``async with``) ends them all.

Over WebSocket the assistant plays the audio itself, through the injected :class:`~aoai_realtime.audio.AudioSink`
(default: a headless :class:`~aoai_realtime.audio.PacedPlayer`). Over WebRTC the service plays it on the media
track and reports ``output_audio_buffer.*``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self

from ..audio.g711 import WireAudio
from ..audio.player import AudioSink, PacedPlayer
from ..errors import ConfigError, ConnectionClosed, RealtimeError, SessionExpired, get_logger
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
from .rollover import RolloverPolicy, Seed, build_seed
from .state import AssistantState
from .tools import Tool, ToolCall, ToolPolicy, ToolRunner, ToolSet
from .transcript import TranscriptEntry

if TYPE_CHECKING:
    from ..client import RealtimeClient

__all__ = ["AssistantConfig", "VoiceAssistant"]

log = get_logger(__name__)

EventName = Literal["state_change", "transcript", "turn", "tool_result", "rollover", "error"]
_EVENT_NAMES = ("state_change", "transcript", "turn", "tool_result", "rollover", "error")
Callback = Callable[[Any], Awaitable[None] | None]


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

    Callbacks (``on``): ``state_change`` (:class:`~aoai_realtime.agents.core.StateChanged`), ``transcript``
    (``list[TranscriptEntry]``), ``turn`` (:class:`TurnMetrics`), ``tool_result`` (:class:`ToolResult`),
    ``rollover`` (the new client), ``error`` (an exception that ended the session).
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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if client is None and connect is None:
            raise ConfigError("give VoiceAssistant a client or a connect() factory", field="client")
        self.config = config or AssistantConfig()
        if self.config.rollover is not None and connect is None:
            raise ConfigError("session rollover needs connect=, a factory of new clients", field="rollover")
        self._client: RealtimeClient | None = client
        self._connect = connect
        self._owns_client = False
        self.tools = tools if isinstance(tools, ToolSet) else ToolSet(tools or ())
        self.instructions = instructions
        self._clock = clock
        self._player: AudioSink = player if player is not None else PacedPlayer(record=False, clock=clock)
        self._player_given = player is not None
        self._call_changed = asyncio.Event()  # WebRTC: the client placed a new call, or a new client took over
        self._encoder: WireAudio | None = None  # pcm16 -> G.711 when the session's input format is G.711
        self._runner = ToolRunner(self.tools, default_timeout=self.config.tool_timeout, clock=clock)
        self.core: VoiceCore = self._new_core("websocket")
        self._callbacks: dict[str, list[Callback]] = {}
        self._subscribers: set[Channel[tuple[str, Any]]] = set()
        self._locals: list[Channel[Any]] = []
        self._idle_waiters: list[asyncio.Future[None]] = []
        self._state_waiters: list[tuple[frozenset[AssistantState], asyncio.Future[AssistantState]]] = []
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._outbox: Channel[ev.ClientEvent] = Channel(self.config.outbox_size, overflow="error")
        self._handler: Callable[[Any], None] | None = None
        self._session_started = 0.0
        self._rolling = False
        self._old_session_gone = asyncio.Event()
        self.rollovers = 0
        self.failure: BaseException | None = None

    def _new_core(self, mode: Mode) -> VoiceCore:
        cfg = CoreConfig(
            mode=mode,
            tool_policy=self.config.tool_policy,
            cancel_response_on_barge_in=self.config.cancel_response_on_barge_in,
            prices=self.config.prices,
            audio_onsets=self.config.audio_onsets,
        )
        return VoiceCore(cfg, clock=self._clock, item_audio_ms=self._item_audio_ms)

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

    # -- callbacks and streams -----------------------------------------------------------------------------

    def on(self, name: EventName, callback: Callback) -> Callback:
        """Call ``callback(value)`` on every ``name`` event (sync or async). Returns it (decorator use)."""
        if name not in _EVENT_NAMES:
            raise ConfigError(f"unknown assistant event {name!r}; one of {', '.join(_EVENT_NAMES)}", field="name")
        self._callbacks.setdefault(name, []).append(callback)
        return callback

    def off(self, name: EventName, callback: Callback) -> None:
        with contextlib.suppress(ValueError):
            self._callbacks.get(name, []).remove(callback)

    def subscribe(self, *, maxsize: int = 256) -> Channel[tuple[str, Any]]:
        """A channel of ``(name, json-ready payload)`` for ``state``, ``transcript``, ``tools``, ``turn``.
        Drops the oldest when full (each payload is a full snapshot). Ends when the assistant closes."""
        channel: Channel[tuple[str, Any]] = Channel(maxsize, overflow="drop_oldest")
        self._subscribers.add(channel)
        channel.send_nowait(("state", {"state": self.state.value, "previous": None}))
        return channel

    def unsubscribe(self, channel: Channel[tuple[str, Any]]) -> None:
        self._subscribers.discard(channel)
        channel.close()

    async def state_changes(self) -> AsyncIterator[StateChanged]:
        """Every state change from now on, until the assistant closes."""
        channel = self._local_channel("state_change")
        try:
            async for item in channel:
                yield item
        finally:
            self.off("state_change", channel.send_nowait)

    async def transcript_updates(self) -> AsyncIterator[list[TranscriptEntry]]:
        """The transcript each time it changes (a slow consumer skips to the latest)."""
        channel = self._local_channel("transcript")
        try:
            async for item in channel:
                yield item
        finally:
            self.off("transcript", channel.send_nowait)

    def _local_channel(self, name: EventName) -> Channel[Any]:
        channel: Channel[Any] = Channel(256, overflow="drop_oldest")
        self.on(name, channel.send_nowait)
        self._locals.append(channel)
        return channel

    async def wait_for_state(self, *states: AssistantState, timeout: float | None = None) -> AssistantState:
        """Wait until the state is one of ``states`` (returns at once if it already is)."""
        if self.state in states:
            return self.state
        fut: asyncio.Future[AssistantState] = asyncio.get_running_loop().create_future()
        entry = (frozenset(states), fut)
        self._state_waiters.append(entry)
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            with contextlib.suppress(ValueError):
                self._state_waiters.remove(entry)

    @property
    def idle(self) -> bool:
        """Listening with nothing pending: no response, no tools, no audio playing, the last turn complete."""
        return self.state is AssistantState.LISTENING and self.core.idle and self.core.turn is None

    async def wait_until_idle(self, timeout: float | None = None) -> None:
        """Wait until :attr:`idle` (the assistant has finished answering and been heard)."""
        if self.idle:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._idle_waiters.append(fut)
        try:
            await asyncio.wait_for(fut, timeout)
        finally:
            with contextlib.suppress(ValueError):
                self._idle_waiters.remove(fut)

    def _emit(self, name: str, value: Any) -> None:
        for callback in list(self._callbacks.get(name, ())):
            try:
                result = callback(value)
                if inspect.isawaitable(result):
                    self._spawn(_await(result))
            except Exception:  # boundary: an app callback must not break the session
                log.exception("assistant %s callback raised", name)

    def _publish(self, name: str, payload: Any) -> None:
        for channel in list(self._subscribers):
            channel.send_nowait((name, payload))

    # -- lifecycle -----------------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Connect (if needed), send instructions and tools, and start listening."""
        if self._tg is not None:
            return
        self._perform(self.core.connecting())
        client = self._client
        if client is None:
            assert self._connect is not None
            client = self._client = self._connect()
        tg = asyncio.TaskGroup()
        await tg.__aenter__()
        self._tg = tg
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
        except BaseException as exc:
            self._perform(self.core.failed())
            await self._shutdown(exc)
            raise
        self._session_started = self._clock()
        self._attach(client)
        self._perform(self.core.connected())
        self._spawn(self._sender())
        self._spawn(self._watch(client))
        if self.core.config.mode == "websocket":
            self._player.set_listener(self._on_played)
            self._spawn(self._player.run())
        else:
            self._spawn(self._ticker())
            self._spawn(self._play_track(client))
            if self._player_given:
                # the service plays on the media track; the player only makes it audible here
                self._spawn(self._player.run())
        if self.config.rollover is not None:
            self._spawn(self._rollover_monitor())

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
            if getattr(event, "type", None) == "client.reconnected":
                # The client reconnected by itself after a drop: a new, empty session. Seed it, or the
                # assistant would forget the whole conversation.
                self._call_changed.set()  # over WebRTC, a new call: the track player follows it
                self.core.new_session()
                self._spawn(self._reseed(client))
                return
            self._perform(self.core.handle(event))

        self._handler = handler
        client.on("*", handler)
        self.core.session_changed(client.session)  # its session.created/updated went by before the handler

    def _detach(self, client: RealtimeClient) -> None:
        if self._handler is not None:
            client.off("*", self._handler)

    async def close(self) -> None:
        """Stop everything, close the client if the assistant opened it. Idempotent."""
        if self._tg is None:
            return
        self._perform(self.core.closed())
        await self._shutdown(None)

    async def _shutdown(self, exc: BaseException | None) -> None:
        tg, self._tg = self._tg, None
        client = self._client
        if client is not None:
            self._detach(client)
        for task in list(self._tasks):
            task.cancel()
        self._outbox.close()
        if tg is not None:
            with contextlib.suppress(Exception):
                await tg.__aexit__(None, None, None)
        if client is not None and self._owns_client:
            await client.close()
        for channel in [*self._subscribers, *self._locals]:
            channel.close()
        self._subscribers.clear()
        waiters: list[asyncio.Future[Any]] = [f for _, f in self._state_waiters]
        waiters.extend(self._idle_waiters)
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(ConnectionClosed("the assistant closed", code=1000))
        self._outbox = Channel(self.config.outbox_size, overflow="error")

    def _spawn(self, coro: Awaitable[Any]) -> None:
        if self._tg is None:
            if inspect.iscoroutine(coro):
                coro.close()
            return
        task = self._tg.create_task(_await(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- performing actions --------------------------------------------------------------------------------

    def _perform(self, actions: list[Action]) -> None:
        self._run_actions(actions)
        if self._idle_waiters and self.idle:
            for fut in self._idle_waiters:
                if not fut.done():
                    fut.set_result(None)

    def _run_actions(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                self._outbox.send_nowait(action.event)
            elif isinstance(action, Play):
                self._player.write(action.pcm)
            elif isinstance(action, StopPlayback):
                self._player.clear()
            elif isinstance(action, RunTool):
                self._spawn(self._run_tool(action.call))
            elif isinstance(action, CancelTool):
                self._runner.cancel(action.call_id)
            elif isinstance(action, StateChanged):
                self._on_state(action)
            elif isinstance(action, TranscriptChanged):
                entries = list(action.entries)
                self._emit("transcript", entries)
                self._publish("transcript", [_entry_dict(e) for e in entries])
            elif isinstance(action, TurnCompleted):
                self._emit("turn", action.metrics)
                self._publish("turn", _turn_dict(action.metrics))

    def _on_state(self, change: StateChanged) -> None:
        self._emit("state_change", change)
        self._publish("state", {
            "state": change.new.value,
            "previous": change.old.value,
            "trigger": change.trigger.value,
            "tools_in_flight": [c.name for c in self.tools_in_flight],
        })
        for states, fut in list(self._state_waiters):
            if change.new in states and not fut.done():
                fut.set_result(change.new)

    def _on_played(self, samples: int) -> None:
        self._perform(self.core.played(samples))

    async def _sender(self) -> None:
        async for event in self._outbox:
            try:
                await self.client.send(event)
            except ConnectionClosed as exc:
                log.info("could not send %s: %s", event.type, exc)

    async def _run_tool(self, call: ToolCall) -> None:
        self._publish("tools", {"in_flight": [c.name for c in self.tools_in_flight]})
        result = await self._runner.run(call)
        self._perform(self.core.tool_settled(result))
        self._emit("tool_result", result)
        self._publish("tools", {"in_flight": [c.name for c in self.tools_in_flight]})

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
            await asyncio.sleep(self.config.webrtc_tick_s)
            self._perform(self.core.tick())

    async def _watch(self, client: RealtimeClient) -> None:
        """Notice the end of the client's session: roll over on expiry, else report the error."""
        try:
            async for _ in client.events():
                pass
        except SessionExpired as exc:
            if self._client is client and self.config.rollover is not None:
                if self._rolling:
                    self._old_session_gone.set()  # a planned rollover is waiting for silence: switch now
                    return
                await self._roll_over(boundary=False)
                return
            self._fail(exc)
        except ConnectionClosed as exc:
            if self._client is client:
                self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        self.failure = exc
        self._perform(self.core.failed())
        self._emit("error", exc)

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

    # -- rollover ------------------------------------------------------------------------------------------

    def _deadline(self) -> float:
        policy = self.config.rollover
        assert policy is not None
        limit = policy.max_session_s
        expires = self.client.session.get("expires_at")
        if policy.use_expires_at and isinstance(expires, int | float) and expires > 0:
            # expires_at is wall-clock unix time; convert to the assistant's clock
            limit = min(limit, max(0.0, expires - time.time()) + (self._clock() - self._session_started))
        return self._session_started + max(limit - policy.margin_s, limit / 2)

    async def _rollover_monitor(self) -> None:
        while True:
            await asyncio.sleep(max(0.0, self._deadline() - self._clock()))
            await self._roll_over(boundary=True)

    async def roll_over(self) -> None:
        """Switch to a new session now (at the next silence boundary)."""
        await self._roll_over(boundary=True)

    async def _roll_over(self, *, boundary: bool) -> None:
        policy = self.config.rollover
        if policy is None or self._connect is None or self._rolling:
            return
        self._rolling = True
        self._old_session_gone = asyncio.Event()
        try:
            seed = await build_seed(self.core.transcript.entries(), instructions=self._base_instructions(),
                                    policy=policy)
            new = self._connect()
            await new.connect()
            await self._seed(new, seed)
            if boundary:
                await self._silence_boundary(policy.boundary_timeout_s)
            old = self.client
            self._detach(old)
            self._client = new
            self._owns_client = True
            self.core.new_session()
            self._session_started = self._clock()
            self._attach(new)
            self._spawn(self._watch(new))
            if self.core.config.mode == "webrtc":
                self._spawn(self._play_track(new))  # the new call's media; the old call's task ends
                self._call_changed.set()
            self.rollovers += 1
            self._emit("rollover", new)
            self._publish("rollover", {"rollovers": self.rollovers})
            with contextlib.suppress(Exception):
                await old.close()
        finally:
            self._rolling = False

    def _base_instructions(self) -> str:
        if self.instructions is not None:
            return self.instructions
        value = self.client.session.get("instructions")
        return value if isinstance(value, str) else ""

    async def _seed(self, client: RealtimeClient, seed: Seed) -> None:
        """Give ``client``'s (new) session the instructions, tools and earlier turns; wait until it has them."""
        acked = 0
        all_acked = asyncio.Event()
        if not seed.items:
            all_acked.set()

        def ack(event: Any) -> None:
            nonlocal acked
            acked += 1
            if acked >= len(seed.items):
                all_acked.set()

        client.on("conversation.item.added", ack)  # before sending: the acks may come back at once
        try:
            update = self._session_update(seed.instructions or None)
            if update:
                await client.update_session(update)
            for item in seed.items:
                await client.create_item(item)
            await asyncio.wait_for(all_acked.wait(), 10.0)
        finally:
            client.off("conversation.item.added", ack)

    async def _reseed(self, client: RealtimeClient) -> None:
        policy = self.config.rollover or RolloverPolicy()
        seed = await build_seed(self.core.transcript.entries(), instructions=self._base_instructions(),
                                policy=policy)
        self.core.expect_seed([(str(i.role), i.transcript) for i in seed.items])
        await self._seed(client, seed)
        self._emit("rollover", client)

    async def _silence_boundary(self, timeout: float) -> None:
        # the next silence, unless the old session ends first (then there is nothing to wait for)
        idle = asyncio.ensure_future(self.wait_until_idle(timeout))
        gone = asyncio.ensure_future(self._old_session_gone.wait())
        try:
            await asyncio.wait({idle, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (idle, gone):
                task.cancel()
            await asyncio.gather(idle, gone, return_exceptions=True)


async def _await(awaitable: Awaitable[Any]) -> Any:
    try:
        return await awaitable
    except asyncio.CancelledError:
        raise
    except Exception:  # boundary: a background task's failure is logged, never lost
        log.exception("assistant background task failed")
        return None


def _entry_dict(entry: TranscriptEntry) -> dict[str, Any]:
    return {"item_id": entry.item_id, "role": entry.role, "text": entry.text, "final": entry.final,
            "interrupted": entry.interrupted}


def _turn_dict(turn: TurnMetrics) -> dict[str, Any]:
    return {"turn": turn.turn, "latency_ms": turn.response_latency_ms, "tool_latency_ms": turn.tool_latency_ms,
            "tokens": turn.usage.total, "cost": turn.cost, "interrupted": turn.interrupted}


