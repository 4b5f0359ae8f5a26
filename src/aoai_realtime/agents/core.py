"""The voice assistant's brain, sans I/O: server events and player progress in, actions out.

:class:`VoiceCore` owns the state machine, the responses, the tool call book and its response arbiter
(:mod:`aoai_realtime.protocol.arbiter`, shared with the server's sideband and ``talk``), the conversation's
transcript and the turn metrics. What the user has heard of the assistant's audio, the transcript's timing and
the barge-in cut (reference 4.4: truncate at what was played over WebSocket, ``output_audio_buffer.clear`` and
the service's truncation over WebRTC) belong to its :class:`~aoai_realtime.agents.heard.HeardAudio`.

It never awaits and never reads a clock it was not given; the driver
(:class:`~aoai_realtime.agents.voice.VoiceAssistant`) performs the :data:`Action` values it returns, in order.
Tests drive it directly, with no sockets and no sleeps.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import get_logger
from ..protocol import events as ev
from ..protocol.arbiter import ResponseArbiter, ToolCallBook
from .actions import (
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
)
from .heard import HeardAudio
from .metrics import TurnMetrics, Usage
from .playback import PlaybackClock
from .state import AssistantState, StateMachine, Trigger
from .tools import ToolCall, ToolPolicy, ToolResult
from .track import TrackTimeline
from .transcript import Transcript, TranscriptEntry

__all__ = [
    "Action",
    "CancelTool",
    "CoreConfig",
    "Mode",
    "Play",
    "RunTool",
    "Send",
    "StateChanged",
    "StopPlayback",
    "TranscriptChanged",
    "TurnCompleted",
    "VoiceCore",
]

log = get_logger(__name__)


@dataclass(slots=True)
class _Response:
    id: str
    interrupted: bool = False
    audio_items: list[str] = field(default_factory=list)


class VoiceCore:
    """Feed it with :meth:`handle` (every server event, in order), :meth:`played` (player progress),
    :meth:`audio_sent` (microphone audio sent), :meth:`tool_settled` and :meth:`tick` (WebRTC, ~20 Hz while
    speaking). Perform the returned actions in order.

    ``clock`` returns seconds (monotonic). ``item_audio_ms`` may give an item's audio length as the
    conversation state knows it (used to clamp ``audio_end_ms``).
    """

    def __init__(
        self,
        config: CoreConfig | None = None,
        *,
        clock: Callable[[], float],
        item_audio_ms: Callable[[str], float | None] | None = None,
    ) -> None:
        self.config = config or CoreConfig()
        self._clock = clock
        self.machine = StateMachine()
        self.transcript = Transcript()
        self.heard = HeardAudio(
            self.config, self.transcript, changed=self._transcript_changed, clock=clock, item_audio_ms=item_audio_ms
        )
        self.book = ToolCallBook()
        self._responses: dict[str, _Response] = {}
        self._sent_audio: collections.deque[tuple[float, float]] = collections.deque(maxlen=512)
        self._sent_ms = 0.0
        self._turn: TurnMetrics | None = None
        self._turn_count = 0
        self.turns: list[TurnMetrics] = []
        self.usage = Usage()
        self._last_entries: tuple[TranscriptEntry, ...] = ()
        self._seed_pending: list[tuple[str, str]] = []
        self._seed_ids: set[str] = set()

    # -- views ---------------------------------------------------------------------------------------------

    @property
    def writer(self) -> ResponseArbiter:
        """The session's one writer of ``response.create`` (ask it for a response with ``request()``)."""
        return self.book.arbiter

    @property
    def playback(self) -> PlaybackClock:
        """WebSocket: what the local player has played of each item."""
        return self.heard.playback

    @property
    def track(self) -> TrackTimeline:
        """WebRTC: the media track's audio per item."""
        return self.heard.track

    @property
    def truncations(self) -> list[tuple[str, int]]:
        """``(item, audio_end_ms)`` of every truncate sent (0: the item was deleted instead)."""
        return self.heard.truncations

    @property
    def state(self) -> AssistantState:
        return self.machine.state

    @property
    def tools_in_flight(self) -> list[ToolCall]:
        """Tool calls started and not yet answered."""
        return self.book.open_calls

    @property
    def turn(self) -> TurnMetrics | None:
        return self._turn

    @property
    def busy(self) -> bool:
        """A response is active or wanted, or tools are running."""
        return self._pending_work()

    @property
    def idle(self) -> bool:
        """Nothing going on: no response, no tools, nothing playing or arriving (a silence boundary)."""
        return not self._pending_work() and self.heard.drained

    def new_session(self) -> None:
        """Another session took over (rollover): forget the old session's responses and calls; keep the
        transcript, the turns and the usage."""
        self.book.new_session()  # open calls are abandoned: their call_ids mean nothing to the new session
        self._responses.clear()
        self.heard.new_session()
        # VAD positions (audio_end_ms) count from the start of the new session's input audio
        self._sent_ms = 0.0
        self._sent_audio.clear()

    def _fire(self, trigger: Trigger, out: list[Action]) -> None:
        old, new = self.machine.fire(trigger)  # an undeclared pair raises IllegalTransition (see state.NO_EFFECT)
        if old is not new or trigger is Trigger.SPEECH_STARTED:
            out.append(StateChanged(old, new, trigger))

    def _transcript_changed(self, out: list[Action]) -> None:
        entries = tuple(self.transcript.entries())
        if entries != self._last_entries:
            self._last_entries = entries
            out.append(TranscriptChanged(entries))

    # -- lifecycle -----------------------------------------------------------------------------------------

    def connecting(self) -> list[Action]:
        out: list[Action] = []
        self._fire(Trigger.CONNECT, out)
        return out

    def connected(self) -> list[Action]:
        out: list[Action] = []
        self._fire(Trigger.CONNECTED, out)
        self._fire(Trigger.READY, out)
        return out

    def failed(self) -> list[Action]:
        out: list[Action] = []
        self._fire(Trigger.FAILED, out)
        return out

    def closed(self) -> list[Action]:
        out: list[Action] = []
        self._fire(Trigger.CLOSE, out)
        return out

    # -- microphone ----------------------------------------------------------------------------------------

    def audio_sent(self, samples: int) -> None:
        """``samples`` of microphone audio were just sent (``input_audio_buffer.append``)."""
        self._sent_ms += samples * 1000.0 / self.config.sample_rate
        self._sent_audio.append((self._sent_ms, self._clock()))

    def _when_sent(self, audio_ms: float) -> float | None:
        # The wall time at which buffer position ``audio_ms`` was sent: the end of user speech as the user
        # experienced it (the VAD's silence wait is part of the latency they feel).
        for end_ms, at in self._sent_audio:
            if end_ms >= audio_ms:
                return at
        return None

    # -- server events -------------------------------------------------------------------------------------

    def handle(self, event: Any) -> list[Action]:
        """React to one server event. Unknown events are ignored."""
        step = self.book.on_event(event)
        out: list[Action] = [Send(e) for e in step.send]
        out.extend(RunTool(call) for call in step.calls)
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event, out)
        return out

    def _on_speech_started(self, event: ev.InputAudioBufferSpeechStartedEvent, out: list[Action]) -> None:
        playing = self.state is AssistantState.SPEAKING or not self.heard.playback.empty or bool(self.tools_in_flight)
        if playing or self.writer.active_response_id is not None:
            self._barge_in(out)
        self._fire(Trigger.SPEECH_STARTED, out)

    def interrupt(self) -> list[Action]:
        """The app interrupts the assistant (a button): the same as the user speaking over it."""
        out: list[Action] = []
        self._barge_in(out)
        if self.writer.active_response_id is not None and not self.config.cancel_response_on_barge_in:
            out.append(Send(ev.ResponseCancelEvent()))
        self._fire(Trigger.SPEECH_STARTED, out)
        return out

    def _barge_in(self, out: list[Action]) -> None:
        rid = self.writer.active_response_id
        self.heard.barge_in(out)
        if rid is not None:
            if self.config.cancel_response_on_barge_in:
                out.append(Send(ev.ResponseCancelEvent()))
            resp = self._responses.get(rid)
            if resp is not None:
                resp.interrupted = True
        self.book.interrupt()
        if self.config.tool_policy is ToolPolicy.CANCEL:
            out.extend(CancelTool(c.call_id) for c in self.tools_in_flight)
        if self._turn is not None:
            self._turn.interrupted = True
            self._finish_turn(out)

    def _on_speech_stopped(self, event: ev.InputAudioBufferSpeechStoppedEvent, out: list[Action]) -> None:
        self._turn_count += 1
        end = self._when_sent(float(event.audio_end_ms))
        self._turn = TurnMetrics(
            turn=self._turn_count, user_item_id=event.item_id, speech_end_at=end if end is not None else self._clock()
        )
        self._fire(Trigger.SPEECH_STOPPED, out)

    def _on_committed(self, event: ev.InputAudioBufferCommittedEvent, out: list[Action]) -> None:
        prev = event.previous_item_id if isinstance(event.previous_item_id, str) else None
        if self.transcript.add_item(event.item_id, "user", prev):
            self._transcript_changed(out)

    def expect_seed(self, items: list[tuple[str, str]]) -> None:
        """``(role, text)`` messages about to be re-created in a new session (reseeding after a reconnect):
        they are already in the transcript, so their ``conversation.item.*`` events are not added again."""
        self._seed_pending.extend(items)

    def _is_seed(self, item: ev.Item) -> bool:
        if item.id in self._seed_ids:
            return True
        if not self._seed_pending or item.type != "message" or not isinstance(item.role, str):
            return False
        key = (item.role, item.transcript)
        if key in self._seed_pending:
            self._seed_pending.remove(key)
            self._seed_ids.add(str(item.id))
            return True
        return False

    def _on_item(self, event: Any, out: list[Action]) -> None:
        item: ev.Item = event.item
        if not isinstance(item.id, str) or self._is_seed(item):
            return
        prev = event.previous_item_id if isinstance(event.previous_item_id, str) else None
        role: Any = item.role if item.type == "message" and isinstance(item.role, str) else "system"
        changed = self.transcript.add_item(item.id, role, prev)
        if item.type == "message" and role == "user" and isinstance(item.content, list):
            texts = [p.text for p in item.content if p.type == "input_text" and isinstance(p.text, str)]
            if texts:
                changed = self.transcript.user_text(item.id, "".join(texts)) or changed
        if changed:
            self._transcript_changed(out)

    def _on_output_item_added(self, event: ev.ResponseOutputItemAddedEvent, out: list[Action]) -> None:
        item = event.item
        if isinstance(item.id, str):
            self.heard.item_response[item.id] = event.response_id
            if item.type == "message" and self.transcript.add_item(item.id, "assistant"):
                self._transcript_changed(out)

    def _on_item_deleted(self, event: ev.ConversationItemDeletedEvent, out: list[Action]) -> None:
        if self.transcript.remove_item(event.item_id):
            self._transcript_changed(out)

    def _on_user_delta(self, event: ev.ConversationItemInputAudioTranscriptionDeltaEvent, out: list[Action]) -> None:
        if isinstance(event.delta, str) and self.transcript.user_delta(event.item_id, event.delta):
            self._transcript_changed(out)

    def _on_user_done(
        self, event: ev.ConversationItemInputAudioTranscriptionCompletedEvent, out: list[Action]
    ) -> None:
        if self.transcript.user_completed(event.item_id, event.transcript):
            self._transcript_changed(out)

    def _on_response_created(self, event: ev.ResponseCreatedEvent, out: list[Action]) -> None:
        rid = event.response.id if isinstance(event.response.id, str) else "?"
        self._responses[rid] = _Response(rid)
        if self._turn is None:
            self._turn_count += 1
            self._turn = TurnMetrics(turn=self._turn_count)
        self._turn.responses += 1
        self._fire(Trigger.RESPONSE_STARTED, out)

    def _on_session(self, event: ev.SessionCreatedEvent | ev.SessionUpdatedEvent, out: list[Action]) -> None:
        self.session_changed(event.session)

    def session_changed(self, session: dict[str, Any]) -> None:
        """Note the session's output audio format (from a session event, or the client's session when the core
        attaches to a client that is already connected)."""
        self.heard.session_changed(session)

    def _on_audio_delta(self, event: ev.ResponseAudioDeltaEvent, out: list[Action]) -> None:
        resp = self._responses.get(event.response_id)
        kept = self.heard.audio_delta(event, resp is not None and resp.interrupted, out)
        if kept and resp is not None and event.item_id not in resp.audio_items:
            resp.audio_items.append(event.item_id)

    def _on_audio_done(self, event: ev.ResponseAudioDoneEvent, out: list[Action]) -> None:
        self.heard.audio_done(event.item_id)
        if self.config.mode == "websocket":
            self._check_drained(out)
        # WebRTC: the service has generated the audio, not played it; its length is known at
        # output_audio_buffer.stopped

    def track_audio(self, pcm: bytes) -> list[Action]:
        """WebRTC: audio received on the media track (what the user hears, as it plays). It times the
        transcript words of the item playing now."""
        out: list[Action] = []
        self.heard.track_audio(pcm, out)
        return out

    def _on_transcript_delta(self, event: ev.ResponseAudioTranscriptDeltaEvent, out: list[Action]) -> None:
        self.heard.transcript_delta(event.item_id, event.delta, out)

    def _on_transcript_done(self, event: ev.ResponseAudioTranscriptDoneEvent, out: list[Action]) -> None:
        self.heard.transcript_done(event.item_id, event.transcript, out)

    def _on_text_delta(self, event: ev.ResponseTextDeltaEvent, out: list[Action]) -> None:
        if self.transcript.assistant_delta(event.item_id, event.delta, audio=False):
            self._transcript_changed(out)

    def _on_text_done(self, event: ev.ResponseTextDoneEvent, out: list[Action]) -> None:
        if self.transcript.assistant_done(event.item_id, event.text, audio=False):
            self._transcript_changed(out)

    def _on_response_done(self, event: ev.ResponseDoneEvent, out: list[Action]) -> None:
        rid = event.response.id if isinstance(event.response.id, str) else "?"
        resp = self._responses.setdefault(rid, _Response(rid))
        if event.response.status == "cancelled":
            resp.interrupted = True
        usage = Usage.from_response_usage(event.response.usage if isinstance(event.response.usage, dict) else None)
        self.usage = self.usage + usage
        if self._turn is not None:
            self._turn.usage = self._turn.usage + usage
            self._turn.cost = self._turn.usage.cost(self.config.prices)
        has_audio = bool(resp.audio_items) and not resp.interrupted
        if self.state is AssistantState.THINKING and not has_audio and not self._pending_work():
            self._fire(Trigger.RESPONSE_FINISHED_SILENT, out)
            self._finish_turn(out)

    def _pending_work(self) -> bool:
        return bool(self.tools_in_flight) or self.writer.busy or self.writer.wanted

    def _on_rtc_started(self, event: ev.OutputAudioBufferStarted, out: list[Action]) -> None:
        resp = self._responses.get(event.response_id)
        first = resp.audio_items[0] if resp is not None and resp.audio_items else None
        self.heard.rtc_started(event.response_id, first)
        self._first_audio(self._clock(), out)
        self._fire(Trigger.PLAYBACK_STARTED, out)

    def _on_rtc_stopped(self, event: ev.OutputAudioBufferStopped, out: list[Action]) -> None:
        self.heard.rtc_stopped(event.response_id, out)
        self._drained(out)

    def _on_rtc_cleared(self, event: ev.OutputAudioBufferCleared, out: list[Action]) -> None:
        self.heard.rtc_cleared(out)

    def _on_truncated(self, event: ev.ConversationItemTruncatedEvent, out: list[Action]) -> None:
        self.heard.server_truncated(event, out)

    def _on_error(self, event: ev.RealtimeErrorEvent, out: list[Action]) -> None:
        log.info("server error %s: %s", event.error.code, event.error.message)

    # -- playback (WebSocket) ------------------------------------------------------------------------------

    def played(self, samples: int) -> list[Action]:
        """The local player finished playing ``samples`` more samples (call it from the player, in order)."""
        out: list[Action] = []
        now = self._clock()
        started, changed = self.heard.played(samples)
        if started:
            self._first_audio(now - samples / self.config.sample_rate, out)
            self._fire(Trigger.PLAYBACK_STARTED, out)
        if changed:
            self._transcript_changed(out)
        self._check_drained(out)
        return out

    def _check_drained(self, out: list[Action]) -> None:
        if self.state is not AssistantState.SPEAKING or not self.heard.drained:
            return
        self.heard.flush_current(out)
        self._drained(out)

    def _drained(self, out: list[Action]) -> None:
        was_speaking = self.state is AssistantState.SPEAKING
        self._fire(Trigger.PLAYBACK_DRAINED, out)
        if not was_speaking:
            return  # a late end of playback after a barge-in (state.NO_EFFECT): the barge-in settled the turn
        if self._pending_work():
            self._fire(Trigger.RESPONSE_STARTED, out)  # tools or a follow-up answer still to come
        else:
            self._finish_turn(out)

    def _first_audio(self, at: float, out: list[Action]) -> None:
        if self._turn is not None and self._turn.first_audio_at is None:
            self._turn.first_audio_at = at

    def _finish_turn(self, out: list[Action]) -> None:
        if self._turn is None:
            return
        self.turns.append(self._turn)
        out.append(TurnCompleted(self._turn))
        self._turn = None

    def tick(self) -> list[Action]:
        """WebRTC: reveal transcript words by elapsed time (no local player reports progress)."""
        out: list[Action] = []
        self.heard.tick(out)
        return out

    # -- tools ---------------------------------------------------------------------------------------------

    def tool_settled(self, result: ToolResult) -> list[Action]:
        """A tool call finished (any outcome). Sends its one output; asks for the follow-up answer when the
        last call of a finished response settles. A second result for the same call_id is refused (counted in
        ``book.refused``)."""
        cid = result.call.call_id
        sends = self.book.settle(cid, result.output)
        if not sends:
            return []
        if self._turn is not None:
            self._turn.tool_latency_ms[cid] = result.latency_ms
        return [Send(e) for e in sends]


_HANDLERS: dict[type, Callable[[VoiceCore, Any, list[Action]], None]] = {
    ev.InputAudioBufferSpeechStartedEvent: VoiceCore._on_speech_started,
    ev.InputAudioBufferSpeechStoppedEvent: VoiceCore._on_speech_stopped,
    ev.InputAudioBufferCommittedEvent: VoiceCore._on_committed,
    ev.ConversationItemAdded: VoiceCore._on_item,
    ev.ConversationItemCreatedEvent: VoiceCore._on_item,
    ev.ConversationItemDone: VoiceCore._on_item,
    ev.ConversationItemDeletedEvent: VoiceCore._on_item_deleted,
    ev.ConversationItemInputAudioTranscriptionDeltaEvent: VoiceCore._on_user_delta,
    ev.ConversationItemInputAudioTranscriptionCompletedEvent: VoiceCore._on_user_done,
    ev.ResponseCreatedEvent: VoiceCore._on_response_created,
    ev.ResponseOutputItemAddedEvent: VoiceCore._on_output_item_added,
    ev.SessionCreatedEvent: VoiceCore._on_session,
    ev.SessionUpdatedEvent: VoiceCore._on_session,
    ev.ResponseAudioDeltaEvent: VoiceCore._on_audio_delta,
    ev.ResponseAudioDoneEvent: VoiceCore._on_audio_done,
    ev.ResponseAudioTranscriptDeltaEvent: VoiceCore._on_transcript_delta,
    ev.ResponseAudioTranscriptDoneEvent: VoiceCore._on_transcript_done,
    ev.ResponseTextDeltaEvent: VoiceCore._on_text_delta,
    ev.ResponseTextDoneEvent: VoiceCore._on_text_done,
    ev.ResponseDoneEvent: VoiceCore._on_response_done,
    ev.OutputAudioBufferStarted: VoiceCore._on_rtc_started,
    ev.OutputAudioBufferStopped: VoiceCore._on_rtc_stopped,
    ev.OutputAudioBufferCleared: VoiceCore._on_rtc_cleared,
    ev.ConversationItemTruncatedEvent: VoiceCore._on_truncated,
    ev.RealtimeErrorEvent: VoiceCore._on_error,
}
