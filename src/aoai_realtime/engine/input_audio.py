"""A session's input audio: the buffer, turn detection, commits and the idle timeout (reference 3.3, 4.1, 4.5).

:class:`InputAudio` is owned by :class:`~.session.EngineSession`: the session hands it ``input_audio_buffer.*``
events and WebRTC audio, and it emits ``speech_started/stopped``, ``committed`` and the user's audio items. What
a turn means for responses (cancel the one running, start one when the turn ends) it asks its owner
(:class:`InputOwner`), so this module knows nothing of response runs.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Protocol

from ..audio.g711 import WireAudio, wire_format
from ..errors import get_logger
from ..protocol import events as ev
from .conversation import BYTES_PER_MS, Entry
from .errors import RequestRejected
from .host import SessionHost
from .ports import EndOfTurnPort, VadPort
from .transcripts import Transcripts
from .turns import InputBuffer, TurnDecision, TurnDetector, VadState

__all__ = ["MAX_APPEND_BYTES", "InputAudio", "InputOwner"]

log = get_logger(__name__)

MAX_APPEND_BYTES = 15 * 1024 * 1024  # the service's limit on one input_audio_buffer.append (reference 3.3)
_KEEP_SILENCE_MS = 1000  # silence kept before the VAD prefix when turn detection trims the buffer


class InputOwner(SessionHost, Protocol):
    """What the input audio needs of its session beyond :class:`SessionHost`."""

    transcripts: Transcripts

    @property
    def transcribing(self) -> bool: ...

    @property
    def response_active(self) -> bool:
        """A response is writing to the default conversation now."""

    async def reject(self, exc: RequestRejected, client_event_id: str | None) -> None: ...

    async def interrupt(self) -> None:
        """The user started speaking and turn detection interrupts: cancel the reply, cut its playback."""

    async def respond(self) -> None:
        """A turn ended and turn detection creates responses: start one."""


class InputAudio:
    """The input audio buffer with its turn detector. ``max_bytes`` bounds the uncommitted audio."""

    def __init__(self, owner: InputOwner, *, max_bytes: int) -> None:
        self.s = owner
        self.max_bytes = max_bytes
        self.buffer = InputBuffer()
        self._odd_byte = b""  # half a sample carried to the next append
        self._buffer_full_reported = False
        self._wire_in: WireAudio | None = None
        self._vad: VadPort | None = None
        self._detector: TurnDetector | None = None
        self._vad_origin_ms = 0
        self._vad_frames = 0
        self._speech_item_id: str | None = None
        self._speech_start_ms = 0
        self._idle_task: asyncio.Task[None] | None = None

    @property
    def speaking(self) -> bool:
        return self._speech_item_id is not None

    # -- configuration --------------------------------------------------------------------------------------

    def configure(self) -> None:
        """Follow the session's turn_detection (call after it changed)."""
        td = self.s.session["audio"]["input"]["turn_detection"]
        if td is None or self.s.speech.new_vad is None:
            self._vad = None
            self._detector = None
            return
        if self._vad is None:
            self._vad = self.s.speech.new_vad()
        self._detector = TurnDetector(dict(td), self._vad.frame_ms, judged=self._end_of_turn() is not None)
        self.reset_vad()

    def reset_vad(self) -> None:
        if self._vad is not None:
            self._vad.reset()
        if self._detector is not None:
            self._detector = TurnDetector(self._detector.config, self._detector.frame_ms, judged=self._detector.judged)
        self._vad_origin_ms = self.buffer.now_ms
        self._vad_frames = 0
        self._speech_item_id = None

    # -- client events --------------------------------------------------------------------------------------

    async def append(self, audio_b64: str) -> None:
        """``input_audio_buffer.append``. Raises RequestRejected as the service does."""
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
        await self.push(pcm)

    async def clear(self) -> None:
        """``input_audio_buffer.clear``."""
        self.buffer.clear()
        self._odd_byte = b""
        self._buffer_full_reported = False
        self.reset_vad()
        await self.s.emit(ev.InputAudioBufferClearedEvent())

    def _room_for(self, nbytes: int) -> bool:
        return len(self.buffer) + nbytes <= self.max_bytes

    def _buffer_full(self) -> RequestRejected:
        limit_s = self.max_bytes / (BYTES_PER_MS * 1000)
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
        fmt = wire_format(self.s.session["audio"]["input"]["format"]["type"])
        if self._wire_in is None or self._wire_in.format != fmt:
            self._wire_in = WireAudio(fmt)
        return self._wire_in

    async def push(self, pcm: bytes) -> None:
        """Input audio (pcm16 24 kHz mono) from ``input_audio_buffer.append`` or a WebRTC track."""
        if self.s.closed:
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
                await self.s.reject(self._buffer_full(), None)
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
        early_after = self.s.transcripts.early_after_ms
        pause = None if early_after is None or self._detector is None else self._detector.pause_began_ms(early_after)
        if pause is not None:
            self.s.transcripts.pause(self._speech_start_ms, pause)

    # -- turns ----------------------------------------------------------------------------------------------

    def _end_of_turn(self) -> EndOfTurnPort | None:
        judge = getattr(self.s.speech, "end_of_turn", None)  # optional member of the speech bundle
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
        self.cancel_idle()
        self._speech_item_id = self.s.ids.new("item")
        self._speech_start_ms = start_ms
        await self.s.emit(ev.InputAudioBufferSpeechStartedEvent(item_id=self._speech_item_id,
                                                                audio_start_ms=start_ms))  # fmt: skip
        td = self.s.session["audio"]["input"]["turn_detection"]
        if td and td.get("interrupt_response", True):
            await self.s.interrupt()

    async def _on_speech_stopped(self, end_ms: int, decided_at: int) -> None:
        item_id = self._speech_item_id or self.s.ids.new("item")
        self._speech_item_id = None
        await self.s.emit(ev.InputAudioBufferSpeechStoppedEvent(item_id=item_id, audio_end_ms=end_ms))
        await self.commit(item_id, manual=False, from_ms=self._speech_start_ms, to_ms=decided_at, pause_ms=end_ms)
        td = self.s.session["audio"]["input"]["turn_detection"]
        if td and td.get("create_response", True) and not self.s.response_active and not self.s.transcribing:
            await self.s.respond()

    async def commit(
        self,
        item_id: str | None,
        *,
        manual: bool,
        from_ms: int | None = None,
        to_ms: int | None = None,
        pause_ms: int | None = None,
    ) -> str:
        """Commit the buffer (or the part ``from_ms``..``to_ms`` of it) as a user audio item."""
        if manual and self.buffer.buffered_ms < 100:
            raise RequestRejected(
                "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, "
                f"but buffer only has {self.buffer.buffered_ms:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty",
            )
        pcm, _start = self.buffer.take(from_ms, to_ms)
        self._buffer_full_reported = False
        if manual:
            self.reset_vad()
        item_id = item_id or self.s.ids.new("item")
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
        previous = self.s.conversation.add(entry)
        await self.s.emit(ev.InputAudioBufferCommittedEvent(item_id=item_id, previous_item_id=previous))
        await self.s.emit(ev.ConversationItemAdded(item=entry.to_item(), previous_item_id=previous))
        await self.s.emit(ev.ConversationItemDone(item=entry.to_item(), previous_item_id=previous))
        self.s.transcripts.start(entry, pcm, from_ms=from_ms, pause_ms=pause_ms)
        return item_id

    # -- idle timeout (server_vad ``idle_timeout_ms``) ------------------------------------------------------

    def schedule_idle(self, reply_audio_ms: int) -> None:
        """A reply finished: start the idle timeout, if the session has one."""
        td = self.s.session["audio"]["input"]["turn_detection"]
        timeout_ms = td.get("idle_timeout_ms") if td and td.get("type") == "server_vad" else None
        if not timeout_ms:
            return
        self.cancel_idle()
        # the service starts counting when the reply's audio has finished playing
        delay = timeout_ms / 1000 + reply_audio_ms / 1000
        self._idle_task = self.s.spawn(self._idle_after(delay))

    def cancel_idle(self) -> None:
        if self._idle_task is not None and self._idle_task is not asyncio.current_task():
            self._idle_task.cancel()
        self._idle_task = None

    async def _idle_after(self, delay: float) -> None:
        await self.s.clock.sleep(delay)
        if self._speech_item_id is not None or self.s.response_active:
            return
        self._idle_task = None
        item_id = self.s.ids.new("item")
        start = self.buffer.start_ms
        await self.s.emit(
            ev.InputAudioBufferTimeoutTriggered(item_id=item_id, audio_start_ms=start, audio_end_ms=self.buffer.now_ms)
        )
        await self.commit(item_id, manual=False)
        self.reset_vad()
        if not self.s.transcribing:
            await self.s.respond()
