"""One Realtime session on the engine: the service's semantics, with no sockets.

:class:`EngineSession` takes decoded client events (or raw messages) and puts server events in a bounded
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
import base64
import binascii
import re
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast

from ..audio.g711 import WireAudio, wire_format
from ..errors import ProtocolError, get_logger
from ..protocol import decode_client_event
from ..protocol import events as ev
from ..protocol.dialect import session_update_to_ga
from ..protocol.schema import RealtimeSession, apply_update, default_transcription_session, validate_response_params
from .brain.base import Brain
from .clock import Clock
from .config import default_session
from .conversation import BYTES_PER_MS, Conversation, Entry, pcm_ms, validate_new_item
from .errors import RequestRejected
from .ids import Ids
from .ports import EndOfTurnPort, SpeechPort, VadPort
from .responses import ResponseRun, run_response
from .transcripts import Transcripts
from .turns import InputBuffer, TurnDecision, TurnDetector, VadState

__all__ = ["AudioOut", "EngineSession", "SessionOptions"]

log = get_logger(__name__)

_CLIENT_TYPES = tuple(sorted(cls.TYPE for cls in ev.CLIENT_EVENT_TYPES))
MAX_APPEND_BYTES = 15 * 1024 * 1024  # the service's limit on one input_audio_buffer.append (reference 3.3)
_KEEP_SILENCE_MS = 1000  # silence kept before the VAD prefix when turn detection trims the buffer


class AudioOut(Protocol):
    """Where assistant audio goes on WebRTC (a paced media track) instead of ``output_audio.delta`` events.

    ``write`` queues audio (may wait when the queue is full); ``clear`` drops what is unplayed and returns
    ``(response_id, item_id, played_ms_of_that_item)`` or None; ``wait_drained`` returns once everything
    queued so far has been played.
    """

    async def write(self, response_id: str, item_id: str, pcm: bytes) -> None: ...

    def clear(self) -> tuple[str, str, int] | None: ...

    async def wait_drained(self) -> None: ...


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
    """The session core. See the module docstring for the driver contract."""

    def __init__(
        self,
        options: SessionOptions,
        *,
        brain: Brain,
        speech: SpeechPort,
        clock: Clock,
        ids: Ids | None = None,
        audio_out: AudioOut | None = None,
    ) -> None:
        self.options = options
        self.brain = brain
        self.speech = speech
        self.clock = clock
        self.ids = ids or Ids()
        self.audio_out = audio_out
        self.id = self.ids.new("sess")
        self.conversation_id = self.ids.new("conv")
        expires = options.created_at + int(options.max_duration_s) if options.created_at else 0
        if options.kind == "transcription" or (options.initial or {}).get("type") == "transcription":
            session = default_transcription_session(session_id=self.id, expires_at=expires)
        else:
            session = default_session(model=options.model, session_id=self.id, expires_at=expires)
        if options.initial:
            session = apply_update(session, options.initial, require_type=False)
        self.session: RealtimeSession = session
        self.conversation = Conversation()
        self.buffer = InputBuffer()
        self._odd_byte = b""  # half a sample carried to the next append
        self._buffer_full_reported = False
        self._wire_in: WireAudio | None = None
        self.voice_locked = False
        self.close_code: int | None = None
        self.close_reason = ""
        self._outbox: asyncio.Queue[ev.ServerEvent | None] = asyncio.Queue(options.outbox_size)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._responses: dict[str, ResponseRun] = {}
        self._default_response: ResponseRun | None = None
        self._vad: VadPort | None = None
        self._detector: TurnDetector | None = None
        self._vad_origin_ms = 0
        self._vad_frames = 0
        self._speech_item_id: str | None = None
        self._speech_start_ms = 0
        self._idle_task: asyncio.Task[None] | None = None
        self.transcripts = Transcripts(self)
        self._closed = False
        self._configure_vad()

    @property
    def wire_session(self) -> dict[str, Any]:
        """The effective session as the wire carries it (``session.created/updated``)."""
        return cast(dict[str, Any], self.session)

    @property
    def transcribing(self) -> bool:
        """A transcription session (``?intent=transcription``): input audio is turn-detected, committed and
        transcribed; there are no responses."""
        return bool(self.session.get("type") == "transcription")

    # ---------------------------------------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> EngineSession:
        await self.emit(ev.SessionCreatedEvent(session=self.wire_session))
        self.spawn(self._expire_after(self.options.max_duration_s))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop everything the session runs and end the outbox. Idempotent."""
        if self._closed:
            return
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._put_nowait_sentinel()

    def _put_nowait_sentinel(self) -> None:
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

    @property
    def closed(self) -> bool:
        return self._closed

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
        if self._closed:
            return
        import msgspec

        await self._outbox.put(msgspec.structs.replace(event, event_id=self.ids.new("event")))

    async def reject(self, exc: RequestRejected, client_event_id: str | None) -> None:
        await self.emit(
            ev.RealtimeErrorEvent(
                error=ev.ErrorDetails(
                    type=exc.type, code=exc.code, message=exc.message, param=exc.param, event_id=client_event_id
                )
            )
        )

    async def _expire_after(self, seconds: float) -> None:
        await self.clock.sleep(seconds)
        minutes = round(seconds / 60)
        reason = f"Your session hit the maximum duration of {minutes} minutes."
        await self.emit(
            ev.RealtimeErrorEvent(
                error=ev.ErrorDetails(type="invalid_request_error", code="session_expired", message=reason)
            )
        )
        self.close_code, self.close_reason = 1001, reason
        self._closed = True
        self._put_nowait_sentinel()
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()

    # ---------------------------------------------------------------------------------------------- inbound

    async def receive(self, data: bytes | str) -> None:
        """Handle one raw client message (JSON). Malformed input becomes an ``error`` event."""
        try:
            event = decode_client_event(data)
        except ProtocolError as exc:
            await self.reject(_decode_rejection(str(exc), exc.event_type), _event_id_of(data))
            return
        await self.handle(event)

    async def handle(self, event: ev.ClientEvent | ev.UnknownEvent) -> None:
        """Handle one decoded client event."""
        if self._closed:
            return
        event_id = event.event_id if isinstance(event.event_id, str) else None
        try:
            await self._dispatch(event)
        except RequestRejected as exc:
            await self.reject(exc, event_id or None)

    async def _dispatch(self, event: ev.ClientEvent | ev.UnknownEvent) -> None:
        if isinstance(event, ev.UnknownEvent):
            options = ", ".join(f"'{t}'" for t in _CLIENT_TYPES)
            raise RequestRejected(
                f"Invalid value: '{event.type}'. Supported values are: {options}.", code="invalid_value", param="type"
            )
        if isinstance(event, ev.InputAudioBufferAppendEvent):
            await self._on_append(event.audio)
        elif isinstance(event, ev.SessionUpdateEvent):
            await self._on_session_update(event.session)
        elif isinstance(event, ev.InputAudioBufferCommitEvent):
            await self._commit(None, manual=True)
        elif isinstance(event, ev.InputAudioBufferClearEvent):
            self.buffer.clear()
            self._odd_byte = b""
            self._buffer_full_reported = False
            self._reset_vad()
            await self.emit(ev.InputAudioBufferClearedEvent())
        elif isinstance(event, ev.ConversationItemCreateEvent):
            await self._on_item_create(event)
        elif isinstance(event, ev.ConversationItemDeleteEvent):
            self.conversation.delete(event.item_id)
            await self.emit(ev.ConversationItemDeletedEvent(item_id=event.item_id))
        elif isinstance(event, ev.ConversationItemRetrieveEvent):
            entry = self.conversation.get(event.item_id)
            if entry is None:
                raise RequestRejected(
                    f"Error retrieving item: the item with id '{event.item_id}' does not exist.",
                    code="item_retrieve_invalid_item_id",
                    param="item_id",
                )
            await self.emit(ev.ConversationItemRetrieved(item=entry.to_item(with_audio=self.wire_audio)))
        elif isinstance(event, ev.ConversationItemTruncateEvent):
            await self._on_truncate(event.item_id, event.content_index, event.audio_end_ms)
        elif isinstance(event, ev.ResponseCreateEvent):
            if self.transcribing:
                # The service's exact wording for this is not documented; the meaning is.
                raise RequestRejected(
                    "Responses are not available in a transcription session: it only transcribes input audio. "
                    "Use a realtime session to get answers.",
                    code="response_not_supported",
                    param="type",
                )
            params = event.response if isinstance(event.response, dict) else {}
            await self.create_response(params)
        elif isinstance(event, ev.ResponseCancelEvent):
            await self._on_cancel(event.response_id if isinstance(event.response_id, str) else None)
        elif isinstance(event, ev.OutputAudioBufferClearEvent):
            await self._on_output_clear()

    # ---------------------------------------------------------------------------------------------- session

    async def _on_session_update(self, update: dict[str, Any]) -> None:
        if self.options.dialect == "beta":
            update = session_update_to_ga(update)
        old_td = self.session["audio"]["input"]["turn_detection"]
        self.session = apply_update(
            self.session, update, voice_locked=self.voice_locked, require_type=self.options.dialect == "ga"
        )
        if self.session["audio"]["input"]["turn_detection"] != old_td:
            self._configure_vad()
        await self.emit(ev.SessionUpdatedEvent(session=self.wire_session))

    def _configure_vad(self) -> None:
        td = self.session["audio"]["input"]["turn_detection"]
        if td is None or self.speech.new_vad is None:
            self._vad = None
            self._detector = None
            return
        if self._vad is None:
            self._vad = self.speech.new_vad()
        self._detector = TurnDetector(dict(td), self._vad.frame_ms, judged=self._end_of_turn() is not None)
        self._reset_vad()

    def _reset_vad(self) -> None:
        if self._vad is not None:
            self._vad.reset()
        if self._detector is not None:
            self._detector = TurnDetector(self._detector.config, self._detector.frame_ms, judged=self._detector.judged)
        self._vad_origin_ms = self.buffer.now_ms
        self._vad_frames = 0
        self._speech_item_id = None

    # ---------------------------------------------------------------------------------------------- input audio

    async def _on_append(self, audio_b64: str) -> None:
        if len(audio_b64) > MAX_APPEND_BYTES:
            raise RequestRejected(
                f"Invalid 'audio': string too long. Expected a string with maximum length {MAX_APPEND_BYTES}, but "
                f"got a string with length {len(audio_b64)} instead. Send audio in smaller appends.",
                code="string_above_max_length",
                param="audio",
            )
        try:
            pcm = base64.b64decode(audio_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise RequestRejected(
                "Invalid 'audio'. Expected base64-encoded audio bytes.", code="invalid_value", param="audio"
            ) from exc
        pcm = self._input_codec().to_pcm(pcm)
        self._trim_silence()
        if not self._room_for(len(pcm)):
            raise self._buffer_full()
        await self.push_audio(pcm)

    def _room_for(self, nbytes: int) -> bool:
        return len(self.buffer) + nbytes <= self.options.max_input_buffer_bytes

    def _buffer_full(self) -> RequestRejected:
        limit_s = self.options.max_input_buffer_bytes / (BYTES_PER_MS * 1000)
        return RequestRejected(
            f"The input audio buffer is full: it holds {self.buffer.buffered_ms / 1000:.1f} s of uncommitted audio "
            f"and keeps at most {limit_s:.1f} s. Commit it (input_audio_buffer.commit) or clear it before "
            "appending more, or turn on turn detection.",
            code="input_audio_buffer_full",
            param="audio",
        )

    def _trim_silence(self) -> None:
        """With turn detection on and nobody speaking, drop silence no turn can reach (keeps memory bounded on a
        long WebRTC call; the service commits speech only)."""
        if self._detector is None or self._detector.state is not VadState.SILENCE or self._speech_item_id:
            return
        keep_ms = self._detector.prefix_ms + _KEEP_SILENCE_MS
        if self.buffer.buffered_ms > keep_ms + 5 * _KEEP_SILENCE_MS:
            self.buffer.drop_before(self.buffer.now_ms - keep_ms)

    def _input_codec(self) -> WireAudio:
        """The decoder for the session's input format (G.711 becomes pcm16 24 kHz), kept across appends so its
        resampler state carries over; a new one when ``session.update`` changes the format."""
        fmt = wire_format(self.session["audio"]["input"]["format"]["type"])
        if self._wire_in is None or self._wire_in.format != fmt:
            self._wire_in = WireAudio(fmt)
        return self._wire_in

    def wire_audio(self, pcm: bytes, content_type: str) -> bytes:
        """Stored pcm16 24 kHz as the wire format of its direction (input audio: the input format)."""
        direction = "input" if content_type == "input_audio" else "output"
        audio = self.session["audio"]
        settings = audio["input"] if direction == "input" else audio.get("output")  # transcription: no output
        codec = WireAudio(settings["format"]["type"] if settings else "audio/pcm")
        return codec.from_pcm(pcm)

    async def push_audio(self, pcm: bytes) -> None:
        """Input audio (pcm16 24 kHz mono) from ``input_audio_buffer.append`` or a WebRTC track."""
        if self._closed:
            return
        if self._odd_byte:
            pcm = self._odd_byte + pcm
        self._odd_byte = pcm[-1:] if len(pcm) % 2 else b""
        if self._odd_byte:
            pcm = pcm[:-1]
        self._trim_silence()
        if not self._room_for(len(pcm)):
            # WebRTC audio (appends are checked before they get here): report once, then drop until a commit
            if not self._buffer_full_reported:
                self._buffer_full_reported = True
                await self.reject(self._buffer_full(), None)
            return
        self.buffer.append(pcm)
        if self._vad is None or self._detector is None:
            return
        for probability in self._vad.process(pcm):
            frame_start = self._vad_origin_ms + self._vad_frames * self._vad.frame_ms
            self._vad_frames += 1
            decision = self._detector.step(probability, frame_start, self.buffer.start_ms)
            if decision is not None and decision.kind == "check":
                decision = await self._judge_turn(decision)
            if decision is None:
                continue
            if decision.kind == "started":
                await self._on_speech_started(decision.ms)
            else:
                await self._on_speech_stopped(decision.ms, decision.at_ms)
        early_after = self.transcripts.early_after_ms
        pause = None if early_after is None or self._detector is None else self._detector.pause_began_ms(early_after)
        if pause is not None:
            self.transcripts.pause(self._speech_start_ms, pause)

    def _end_of_turn(self) -> EndOfTurnPort | None:
        judge = getattr(self.speech, "end_of_turn", None)  # optional member of the speech bundle
        return judge if isinstance(judge, EndOfTurnPort) else None

    async def _judge_turn(self, check: TurnDecision) -> TurnDecision | None:
        """semantic_vad: end the turn if the end-of-turn model hears a finished phrase (``None``: keep listening)."""
        judge = self._end_of_turn()
        detector = self._detector
        if judge is None or detector is None:
            return None
        pcm = self.buffer.peek(self._speech_start_ms, check.at_ms)
        try:
            score = await asyncio.to_thread(judge.probability, pcm)
        except Exception as exc:  # noqa: BLE001  # a broken model must not end the session: the silence timeout decides
            log.warning("end-of-turn model failed; waiting for the silence timeout instead: %s", exc)
            return None
        if self._detector is not detector or detector.state is not VadState.SPEECH:
            return None  # the session was reconfigured or cleared meanwhile
        return detector.end_turn() if score >= detector.end_threshold else None

    async def _on_speech_started(self, start_ms: int) -> None:
        self._cancel_idle()
        self._speech_item_id = self.ids.new("item")
        self._speech_start_ms = start_ms
        await self.emit(ev.InputAudioBufferSpeechStartedEvent(item_id=self._speech_item_id, audio_start_ms=start_ms))
        td = self.session["audio"]["input"]["turn_detection"]
        active = self._default_response
        if td and td.get("interrupt_response", True):
            if active is not None and not active.finished:
                await self.cancel_response(active, "turn_detected")
            # WebRTC: the reply may be fully generated but still playing; the service cuts it off too
            await self.clear_output_audio()

    async def _on_speech_stopped(self, end_ms: int, decided_at: int) -> None:
        item_id = self._speech_item_id or self.ids.new("item")
        self._speech_item_id = None
        await self.emit(ev.InputAudioBufferSpeechStoppedEvent(item_id=item_id, audio_end_ms=end_ms))
        await self._commit(item_id, manual=False, from_ms=self._speech_start_ms, to_ms=decided_at, pause_ms=end_ms)
        td = self.session["audio"]["input"]["turn_detection"]
        if td and td.get("create_response", True) and self._default_response is None and not self.transcribing:
            await self.create_response({})

    async def _commit(
        self,
        item_id: str | None,
        *,
        manual: bool,
        from_ms: int | None = None,
        to_ms: int | None = None,
        pause_ms: int | None = None,
    ) -> str:
        if manual and self.buffer.buffered_ms < 100:
            raise RequestRejected(
                "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, "
                f"but buffer only has {self.buffer.buffered_ms:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty",
            )
        pcm, _start = self.buffer.take(from_ms, to_ms)
        self._buffer_full_reported = False
        if manual:
            self._reset_vad()
        item_id = item_id or self.ids.new("item")
        entry = Entry(
            wire={
                "id": item_id,
                "object": "realtime.item",
                "type": "message",
                "role": "user",
                "status": "completed",
                "content": [{"type": "input_audio", "transcript": None}],
            },
            audio={0: bytearray(pcm)},
        )
        previous = self.conversation.add(entry)
        await self.emit(ev.InputAudioBufferCommittedEvent(item_id=item_id, previous_item_id=previous))
        await self.emit(ev.ConversationItemAdded(item=entry.to_item(), previous_item_id=previous))
        await self.emit(ev.ConversationItemDone(item=entry.to_item(), previous_item_id=previous))
        self.transcripts.start(entry, pcm, from_ms=from_ms, pause_ms=pause_ms)
        return item_id

    # ---------------------------------------------------------------------------------------------- transcription

    async def transcript_of(self, entry: Entry) -> str:
        """The user's words in an audio item (waits for the engine's own STT; "" without one)."""
        return await self.transcripts.text_of(entry)

    # ---------------------------------------------------------------------------------------------- items

    async def _on_item_create(self, event: ev.ConversationItemCreateEvent) -> None:
        import msgspec

        raw = msgspec.to_builtins(event.item)
        entry = validate_new_item(raw, self.ids.new("item"))
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

    async def _on_truncate(self, item_id: str, content_index: int, audio_end_ms: int) -> None:
        entry = self.conversation.get(item_id)
        if entry is None:
            raise RequestRejected(
                f"Error truncating item: the item with id '{item_id}' does not exist.",
                code="item_truncate_invalid_item_id",
                param="item_id",
            )
        content = entry.wire.get("content") or []
        if entry.wire.get("role") != "assistant" or not any(p.get("type") == "output_audio" for p in content):
            raise RequestRejected(
                "Only model output audio messages can be truncated", code="unsupported_content_type", param="item_id"
            )
        if not 0 <= content_index < len(content) or content[content_index].get("type") != "output_audio":
            raise RequestRejected(
                f"Invalid value: {content_index}. No audio content at this index.",
                code="invalid_value",
                param="content_index",
            )
        if audio_end_ms < 0:
            raise RequestRejected(
                f"Invalid 'audio_end_ms': integer below minimum value. Expected a value >= 0, but got {audio_end_ms}"
                " instead.",
                code="integer_below_min_value",
                param="audio_end_ms",
            )
        self.truncate_entry(entry, content_index, audio_end_ms)
        await self.emit(
            ev.ConversationItemTruncatedEvent(item_id=item_id, content_index=content_index, audio_end_ms=audio_end_ms)
        )

    def truncate_entry(self, entry: Entry, content_index: int, audio_end_ms: int) -> None:
        """Cut an assistant item's audio at ``audio_end_ms`` and drop its transcript (as the service does)."""
        pcm = entry.audio.get(content_index, bytearray())
        duration = pcm_ms(len(pcm))
        if audio_end_ms > duration:
            raise RequestRejected(
                f"Audio content of {duration}ms is already shorter than {audio_end_ms}ms",
                code="invalid_value",
                param="audio_end_ms",
            )
        del pcm[audio_end_ms * 48 :]
        entry.wire["content"][content_index]["transcript"] = ""
        entry.audio_ms_played = audio_end_ms

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
        self._cancel_idle()
        run = ResponseRun(id=self.ids.new("resp"), params=params, out_of_band=out_of_band)
        self._responses[run.id] = run
        if not out_of_band:
            self._default_response = run
        run.task = self.spawn(self._run(run))
        # response.created is the response task's first event; let it go out before later client events
        await run.created.wait()
        return run

    async def _run(self, run: ResponseRun) -> None:
        try:
            await run_response(self, run)
        finally:
            self._responses.pop(run.id, None)
            if self._default_response is run:
                self._default_response = None
                if run.status in ("completed", "incomplete") and not self._closed:
                    self._schedule_idle(run)

    async def cancel_response(self, run: ResponseRun, reason: str) -> None:
        """Cancel a running response; returns once its ``response.done`` (cancelled) is queued."""
        if run.finished or run.task is None:
            return
        run.cancel_reason = reason
        run.task.cancel()
        await asyncio.wait({run.task})

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

    async def _on_output_clear(self) -> None:
        if self.audio_out is None:
            raise RequestRejected(
                "output_audio_buffer.clear is only supported for WebRTC and SIP sessions.",
                code="invalid_value",
                param="type",
            )
        await self.clear_output_audio()

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
            self.truncate_entry(entry, 0, played_ms)
            await self.emit(ev.ConversationItemTruncatedEvent(item_id=item_id, content_index=0, audio_end_ms=played_ms))
        await self.emit(ev.OutputAudioBufferCleared(response_id=response_id))

    # ---------------------------------------------------------------------------------------------- idle timeout

    def _schedule_idle(self, run: ResponseRun) -> None:
        td = self.session["audio"]["input"]["turn_detection"]
        timeout_ms = td.get("idle_timeout_ms") if td and td.get("type") == "server_vad" else None
        if not timeout_ms:
            return
        self._cancel_idle()
        # the service starts counting when the reply's audio has finished playing
        delay = timeout_ms / 1000 + run.audio_ms / 1000
        self._idle_task = self.spawn(self._idle_after(delay))

    def _cancel_idle(self) -> None:
        if self._idle_task is not None and self._idle_task is not asyncio.current_task():
            self._idle_task.cancel()
        self._idle_task = None

    async def _idle_after(self, delay: float) -> None:
        await self.clock.sleep(delay)
        if self._speech_item_id is not None or self._default_response is not None:
            return
        self._idle_task = None
        item_id = self.ids.new("item")
        start = self.buffer.start_ms
        await self.emit(
            ev.InputAudioBufferTimeoutTriggered(item_id=item_id, audio_start_ms=start, audio_end_ms=self.buffer.now_ms)
        )
        await self._commit(item_id, manual=False)
        self._reset_vad()
        if not self.transcribing:
            await self.create_response({})


def _event_id_of(data: bytes | str) -> str | None:
    match = re.search(rb'"event_id"\s*:\s*"([^"]{1,128})"', data.encode() if isinstance(data, str) else data)
    return match.group(1).decode(errors="replace") if match else None


def _decode_rejection(message: str, event_type: str | None) -> RequestRejected:
    missing = re.search(r"missing required field `([^`]+)`", message)
    if missing:
        name = missing.group(1)
        return RequestRejected(f"Missing required parameter: '{name}'.", code="missing_required_parameter", param=name)
    wrong = re.search(r"Expected `([^`]+)`, got `([^`]+)`(?: - at `\$\.([^`]+)`)?", message)
    if wrong and event_type:
        param = wrong.group(3) or "type"
        return RequestRejected(
            f"Invalid type for '{param}': expected {wrong.group(1)}, but got {wrong.group(2)} instead.",
            code="invalid_type",
            param=param,
        )
    return RequestRejected(
        "We could not parse the JSON body of your request. Send one JSON object per message, with a 'type'.",
        code="invalid_json",
    )
