"""One Realtime session on the engine: the service's semantics, with no sockets.

:class:`EngineSession` drives the protocol core's :class:`~aoai_realtime.protocol.connection.ServerConnection`
(decoding and refusing client messages, the session schema and dialect, the lifecycle) and adds what needs
time and tasks: responses (:mod:`.responses`), transcription passes (:mod:`.transcripts`) and the input audio
with its turn detection (:mod:`.input_audio`). It takes client messages and puts server events in a bounded
outbox, in the order the service sends them (reference 4). Drivers (WebSocket, WebRTC, in-memory) only move
bytes: they feed :meth:`EngineSession.receive` and send what :meth:`EngineSession.next_event` returns until it
returns ``None`` (then close with :attr:`EngineSession.close_code` / ``close_reason``).

Use it as an async context manager: entering sends ``session.created`` and starts the session's timers;
leaving cancels whatever is still running (responses, transcriptions, timers). Responses run as tasks of the
session; every timer (maximum duration, idle timeout, scripted pauses, WebRTC pacing) uses the injected
:class:`~aoai_realtime.engine.clock.Clock`, so tests advance a :class:`~.clock.FakeClock` instead of sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from ..audio.g711 import WireAudio
from ..errors import get_logger
from ..protocol import events as ev
from ..protocol.connection import ServerConnection, ServerState
from ..protocol.schema import RealtimeSession, apply_update, default_transcription_session, validate_response_params
from .brain.base import Brain
from .clock import Clock
from .config import default_session
from .conversation import Conversation, Entry, pcm_ms, validate_new_item
from .errors import RequestRejected
from .host import AudioOut
from .ids import Ids
from .input_audio import MAX_APPEND_BYTES, InputAudio
from .pacing import TtsPace
from .ports import SpeechPort
from .responses import ResponseRun, prepare_brain, run_response
from .transcripts import Transcripts
from .turns import InputBuffer
from .workers import WorkQueue, transcription_workers

__all__ = ["MAX_APPEND_BYTES", "AudioOut", "EngineSession", "SessionOptions"]

log = get_logger(__name__)


@dataclass(frozen=True, kw_only=True)
class SessionOptions:
    """How one session is set up. ``initial`` is a GA session (client_secrets / calls) applied at creation."""

    model: str = "gpt-realtime"
    kind: Literal["realtime", "transcription"] = "realtime"  # a token minted for a transcription session wins
    dialect: Literal["ga", "beta"] = "ga"
    transport: Literal["websocket", "webrtc"] = "websocket"
    max_duration_s: float = 3600.0
    initial: dict[str, Any] | None = None
    outbox_size: int = 512
    created_at: int = 0  # unix seconds, for expires_at
    # Uncommitted input audio kept at most (pcm16 24 kHz bytes; 15 MiB is about 5.5 minutes). With turn
    # detection on, silence is trimmed long before that; with it off, an append past this is refused.
    max_input_buffer_bytes: int = MAX_APPEND_BYTES


class EngineSession:
    """The session core's asyncio driver. See the module docstring for the driver contract."""

    def __init__(
        self,
        options: SessionOptions,
        *,
        brain: Brain,
        speech: SpeechPort,
        clock: Clock,
        ids: Ids | None = None,
        audio_out: AudioOut | None = None,
        synthesis: WorkQueue | None = None,
        transcription: WorkQueue | None = None,
    ) -> None:
        self.options = options
        self.brain = brain
        self.speech = speech
        self.clock = clock
        self.ids = ids or Ids()
        self.audio_out = audio_out
        self.tts_pace = TtsPace()
        self.synthesis = synthesis or WorkQueue()
        self.transcription = transcription or WorkQueue(transcription_workers(speech.stt))
        self.id = self.ids.new("sess")
        self.conversation_id = self.ids.new("conv")
        expires = options.created_at + int(options.max_duration_s) if options.created_at else 0
        session: RealtimeSession
        if options.kind == "transcription" or (options.initial or {}).get("type") == "transcription":
            session = default_transcription_session(session_id=self.id, expires_at=expires)
        else:
            session = default_session(model=options.model, session_id=self.id, expires_at=expires)
        if options.initial:
            session = apply_update(session, options.initial, require_type=False)
        self.core = ServerConnection(session, dialect=options.dialect)
        self.conversation = Conversation()
        self._outbox: asyncio.Queue[ev.ServerEvent | None] = asyncio.Queue(options.outbox_size)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._responses: dict[str, ResponseRun] = {}
        self._default_response: ResponseRun | None = None
        self.transcripts = Transcripts(self)
        self.input = InputAudio(self, max_bytes=options.max_input_buffer_bytes)
        self.input.configure()

    @property
    def session(self) -> RealtimeSession:
        """The effective session (typed GA shape; the wire dict is :attr:`wire_session`)."""
        return self.core.session

    @property
    def wire_session(self) -> dict[str, Any]:
        return self.core.wire_session

    @property
    def buffer(self) -> InputBuffer:
        return self.input.buffer

    @property
    def voice_locked(self) -> bool:
        return self.core.voice_locked

    @voice_locked.setter
    def voice_locked(self, value: bool) -> None:
        self.core.voice_locked = value

    @property
    def close_code(self) -> int | None:
        return self.core.close_code

    @property
    def close_reason(self) -> str:
        return self.core.close_reason

    @property
    def transcribing(self) -> bool:
        """A transcription session (``?intent=transcription``): input audio is turn-detected, committed and
        transcribed; there are no responses."""
        return self.session.get("type") == "transcription"

    @property
    def response_active(self) -> bool:
        return self._default_response is not None

    # ---------------------------------------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> EngineSession:
        await self.emit(self.core.start())
        self.spawn(self._expire_after(self.options.max_duration_s))
        prepare_brain(self)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def closed(self) -> bool:
        return self.core.state in (ServerState.EXPIRED, ServerState.CLOSED)

    async def aclose(self) -> None:
        """Stop everything the session runs and end the outbox. Idempotent."""
        if self.core.state is ServerState.CLOSED:
            return
        self.core.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        end = getattr(self.brain, "end", None)  # a brain keeping per-conversation state (the llm brain) may drop it
        if end is not None:
            try:
                end(self.conversation_id)
            except Exception as exc:  # noqa: BLE001  # the session still closes; the brain only keeps state longer
                log.warning("the brain could not forget the ended conversation: %s", exc)
        self._end_outbox()

    def _end_outbox(self) -> None:
        while True:
            try:
                self._outbox.put_nowait(None)
                return
            except asyncio.QueueFull:
                self._outbox.get_nowait()  # the reader is gone; drop the oldest to end the stream

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` as a task owned by this session (cancelled when the session closes)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("engine session task failed", exc_info=task.exception())

    async def next_event(self) -> ev.ServerEvent | None:
        """The next server event to send, or ``None`` once the session has ended (then close the socket)."""
        return await self._outbox.get()

    def pending_events(self) -> list[ev.ServerEvent]:
        """Take every event queued now (tests)."""
        events: list[ev.ServerEvent] = []
        while not self._outbox.empty():
            item = self._outbox.get_nowait()
            if item is None:
                self._outbox.put_nowait(None)  # the end marker stays for next_event()
                break
            events.append(item)
        return events

    async def emit(self, event: ev.ServerEvent) -> None:
        """Queue a server event with a fresh ``event_id`` (waits while the outbox is full)."""
        if not self.closed:
            await self._put(event)

    async def _put(self, event: ev.ServerEvent) -> None:
        await self._outbox.put(msgspec.structs.replace(event, event_id=self.ids.new("event")))

    async def reject(self, exc: RequestRejected, client_event_id: str | None) -> None:
        await self.emit(ServerConnection.error_event(exc, client_event_id))

    async def _expire_after(self, seconds: float) -> None:
        await self.clock.sleep(seconds)
        await self._put(self.core.expire(seconds))  # the last event: the session is expired from here on
        self._end_outbox()
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()

    # ---------------------------------------------------------------------------------------------- inbound

    async def receive(self, data: bytes | str) -> None:
        """Handle one raw client message (JSON). A message the service would refuse becomes an ``error`` event."""
        if self.closed:
            return
        try:
            event = self.core.receive_data(data)
        except RequestRejected as exc:
            await self.reject(exc, None)
            return
        await self.handle(event)

    async def handle(self, event: ev.ClientEvent | ev.UnknownEvent) -> None:
        """Handle one decoded client event."""
        if self.closed:
            return
        event_id = event.event_id if isinstance(event.event_id, str) else None
        try:
            await self._dispatch(event)
        except RequestRejected as exc:
            await self.reject(exc, event_id or None)

    async def _dispatch(self, event: ev.ClientEvent | ev.UnknownEvent) -> None:
        if isinstance(event, ev.UnknownEvent):
            raise ServerConnection.refusal(event)
        elif isinstance(event, ev.InputAudioBufferAppendEvent):
            await self.input.append(event.audio)
        elif isinstance(event, ev.SessionUpdateEvent):
            old_td = self.session["audio"]["input"]["turn_detection"]
            updated = self.core.update_session(event.session)
            if self.session["audio"]["input"]["turn_detection"] != old_td:
                self.input.configure()
            await self.emit(updated)
            prepare_brain(self)
        elif isinstance(event, ev.InputAudioBufferCommitEvent):
            await self.input.commit(None, manual=True)
        elif isinstance(event, ev.InputAudioBufferClearEvent):
            await self.input.clear()
        elif isinstance(event, ev.ConversationItemCreateEvent):
            await self._on_item_create(event)
        elif isinstance(event, ev.ConversationItemDeleteEvent):
            self.conversation.delete(event.item_id)
            await self.emit(ev.ConversationItemDeletedEvent(item_id=event.item_id))
        elif isinstance(event, ev.ConversationItemRetrieveEvent):
            entry = self.conversation.retrieve(event.item_id)
            await self.emit(ev.ConversationItemRetrieved(item=entry.to_item(with_audio=self.wire_audio)))
        elif isinstance(event, ev.ConversationItemTruncateEvent):
            self.conversation.truncate(event.item_id, event.content_index, event.audio_end_ms)
            await self.emit(ev.ConversationItemTruncatedEvent(item_id=event.item_id, content_index=event.content_index,
                                                              audio_end_ms=event.audio_end_ms))  # fmt: skip
        elif isinstance(event, ev.ResponseCreateEvent):
            if self.transcribing:
                # The service's exact wording for this is not documented; the meaning is.
                raise RequestRejected(
                    "Responses are not available in a transcription session: it only transcribes input audio. "
                    "Use a realtime session to get answers.",
                    code="response_not_supported",
                    param="type",
                )
            await self.create_response(event.response if isinstance(event.response, dict) else {})
        elif isinstance(event, ev.ResponseCancelEvent):
            await self._on_cancel(event.response_id if isinstance(event.response_id, str) else None)
        elif isinstance(event, ev.OutputAudioBufferClearEvent):
            if self.audio_out is None:
                raise RequestRejected("output_audio_buffer.clear is only supported for WebRTC and SIP sessions.",
                                      code="invalid_value", param="type")  # fmt: skip
            await self.clear_output_audio()

    # ---------------------------------------------------------------------------------------------- audio

    async def push_audio(self, pcm: bytes) -> None:
        """Input audio (pcm16 24 kHz mono) from a WebRTC track."""
        await self.input.push(pcm)

    def wire_audio(self, pcm: bytes, content_type: str) -> bytes:
        """Stored pcm16 24 kHz as the wire format of its direction (input audio: the input format)."""
        audio = self.session["audio"]
        settings = audio["input"] if content_type == "input_audio" else audio.get("output")  # transcription: none
        codec = WireAudio(settings["format"]["type"] if settings else "audio/pcm")
        return codec.from_pcm(pcm)

    async def transcript_of(self, entry: Entry) -> str:
        """The user's words in an audio item (waits for the engine's own STT; "" without one)."""
        return await self.transcripts.text_of(entry)

    async def _on_item_create(self, event: ev.ConversationItemCreateEvent) -> None:
        entry = validate_new_item(msgspec.to_builtins(event.item), self.ids.new("item"))
        for index, audio in entry.audio.items():  # given in the session's input format; kept as pcm16 24 kHz
            codec = WireAudio(self.session["audio"]["input"]["format"]["type"])
            entry.audio[index] = bytearray(codec.to_pcm(bytes(audio)))
        if entry.id in self.conversation:
            raise RequestRejected(
                f"Item with id '{entry.id}' already exists.", code="item_already_exists", param="item.id"
            )
        previous_id = event.previous_item_id if isinstance(event.previous_item_id, str) else None
        previous = self.conversation.add(entry, previous_id)
        await self.emit(ev.ConversationItemAdded(item=entry.to_item(), previous_item_id=previous))
        await self.emit(ev.ConversationItemDone(item=entry.to_item(), previous_item_id=previous))

    # ---------------------------------------------------------------------------------------------- responses

    async def create_response(self, params: dict[str, Any]) -> ResponseRun:
        """Start a response (``response.create`` or VAD). Raises RequestRejected like the service."""
        params = validate_response_params(params)
        out_of_band = params.get("conversation") == "none"
        if not out_of_band and self._default_response is not None and not self._default_response.finished:
            active_id = self._default_response.id
            raise RequestRejected(
                f"Conversation already has an active response in progress: {active_id}. Wait until the response "
                "is finished before creating a new one.",
                code="conversation_already_has_active_response",
            )
        self.input.cancel_idle()
        run = ResponseRun(id=self.ids.new("resp"), params=params, out_of_band=out_of_band)
        self._responses[run.id] = run
        if not out_of_band:
            self._default_response = run
        run.task = self.spawn(self._run(run))
        # response.created is the response task's first event; let it go out before later client events
        await run.created.wait()
        return run

    async def respond(self) -> None:
        """Turn detection ended a turn (or the idle timeout fired): start a response."""
        await self.create_response({})

    async def _run(self, run: ResponseRun) -> None:
        try:
            await run_response(self, run)
        finally:
            self._responses.pop(run.id, None)
            if self._default_response is run:
                self._default_response = None
                if run.status in ("completed", "incomplete") and not self.closed:
                    self.input.schedule_idle(run.audio_ms)

    async def cancel_response(self, run: ResponseRun, reason: str) -> None:
        """Cancel a running response; returns once its ``response.done`` (cancelled) is queued."""
        if run.finished or run.task is None:
            return
        run.cancel_reason = reason
        run.task.cancel()
        await asyncio.wait({run.task})

    async def interrupt(self) -> None:
        """The user started speaking (turn detection with ``interrupt_response``)."""
        active = self._default_response
        if active is not None and not active.finished:
            await self.cancel_response(active, "turn_detected")
        # WebRTC: the reply may be fully generated but still playing; the service cuts it off too
        await self.clear_output_audio()

    async def _on_cancel(self, response_id: str | None) -> None:
        if response_id is not None:
            run = self._responses.get(response_id)
        else:
            run = self._default_response
            if run is None and self._responses:
                run = list(self._responses.values())[-1]
        if run is None or run.finished:
            raise RequestRejected("Cancellation failed: no active response found", code="response_cancel_not_active")
        await self.cancel_response(run, "client_cancelled")

    async def clear_output_audio(self) -> None:
        """Drop unplayed WebRTC audio, truncate its item to what was heard, emit ``output_audio_buffer.cleared``."""
        if self.audio_out is None:
            return
        cleared = self.audio_out.clear()
        if cleared is None:
            return
        response_id, item_id, played_ms = cleared
        entry = self.conversation.get(item_id)
        if entry is not None and entry.audio:
            played_ms = min(played_ms, pcm_ms(len(entry.audio.get(0, b""))))
            self.conversation.cut_audio(entry, 0, played_ms)
            await self.emit(ev.ConversationItemTruncatedEvent(item_id=item_id, content_index=0, audio_end_ms=played_ms))
        await self.emit(ev.OutputAudioBufferCleared(response_id=response_id))
