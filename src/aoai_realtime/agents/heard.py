"""What the user has heard of each assistant item, in either mode, and the transcript in step with it. Sans I/O.

:class:`HeardAudio` is the audio half of :class:`~aoai_realtime.agents.core.VoiceCore`: it receives the
assistant's audio (``response.output_audio.delta`` over WebSocket, decoded from G.711 when the session says so;
the media track over WebRTC, through :class:`~aoai_realtime.agents.track.TrackTimeline`), knows how much of each
item was played (:class:`~aoai_realtime.agents.playback.PlaybackClock` over WebSocket, the track over WebRTC),
reveals transcript words as they are heard and, at a barge-in, cuts the item where the user stopped hearing it:

- over WebSocket it empties the local player (:class:`StopPlayback`) and sends ``conversation.item.truncate`` at
  the audio played (rounded down, clamped to the item's audio), or deletes an item nothing of which was heard;
- over WebRTC it sends ``output_audio_buffer.clear``; the service truncates, and its ``audio_end_ms`` is applied
  once the audio it played has arrived on the track (the cut is provisional until then).

The core owns the state machine, responses, turns and tools, and calls these methods as events arrive; each
appends the actions it produces to ``out`` and reports transcript changes through ``changed(out)``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from ..audio.g711 import WireAudio
from ..protocol import events as ev
from ..protocol.state import session_audio_format
from .actions import Action, CoreConfig, Play, Send, StopPlayback
from .playback import PlaybackClock, truncate_position_ms
from .track import TrackTimeline
from .transcript import Transcript

__all__ = ["HeardAudio"]


class HeardAudio:
    """See the module docstring. ``clock`` (monotonic seconds) times WebRTC playback without a track;
    ``item_audio_ms`` may give an item's audio length as the conversation state knows it."""

    def __init__(
        self,
        config: CoreConfig,
        transcript: Transcript,
        *,
        changed: Callable[[list[Action]], None],
        clock: Callable[[], float],
        item_audio_ms: Callable[[str], float | None] | None = None,
    ) -> None:
        self.config = config
        self.transcript = transcript
        self._changed = changed
        self._clock = clock
        self._item_audio_ms = item_audio_ms
        self.playback = PlaybackClock(config.sample_rate)  # WebSocket: what the local player played
        self.track = TrackTimeline(config.sample_rate)  # WebRTC: media-track audio per item
        self.audio_open: set[str] = set()  # items whose audio is still arriving (WebSocket)
        self.item_response: dict[str, str] = {}
        self.cut_items: set[str] = set()
        self.truncations: list[tuple[str, int]] = []  # (item, audio_end_ms) sent; 0: the item was deleted
        self.rtc_item: str | None = None  # WebRTC: the item output_audio_buffer.started announced
        self._received_ms: dict[str, float] = {}
        self._output_format = "audio/pcm"  # from session events; G.711 deltas are decoded per item
        self._decoders: dict[str, WireAudio] = {}
        self._rtc_started_at: dict[str, float] = {}

    @property
    def websocket(self) -> bool:
        return self.config.mode == "websocket"

    def new_session(self) -> None:
        """A new session took over: its audio starts afresh; cuts awaiting the old call's audio settle now."""
        self.audio_open.clear()
        self.rtc_item = None
        self.track.stop()
        self.settle_cuts(self.track.abandon(), [])

    def session_changed(self, session: dict[str, Any]) -> None:
        """Note the session's output audio format."""
        fmt = session_audio_format(session)
        if fmt is not None and fmt != self._output_format:
            self._output_format = fmt
            self._decoders.clear()

    # -- barge-in ------------------------------------------------------------------------------------------

    def barge_in(self, out: list[Action]) -> None:
        """The user interrupted: stop what plays and cut the item at what was heard."""
        if self.websocket:
            item = self.playback.current_item
            if item is not None and item not in self.cut_items and (
                not self.playback.empty or item in self.audio_open
            ):
                out.append(StopPlayback())
                self.playback.clear()
                self._truncate(item, self.playback.played_ms(item), out)
        else:
            item = self.rtc_item
            if item is not None and item not in self.cut_items:
                out.append(Send(ev.OutputAudioBufferClearEvent()))
                # provisional: the service's conversation.item.truncated gives the exact position
                self.cut(item, self.position(item), out, provisional=True)

    def _truncate(self, item: str, played_ms: float, out: list[Action]) -> None:
        known = self._received_ms.get(item, 0.0)
        if self._item_audio_ms is not None:
            state_ms = self._item_audio_ms(item)
            if state_ms is not None and state_ms > 0:
                known = min(known, state_ms) if known > 0 else state_ms
        position = truncate_position_ms(played_ms, known)
        if known <= 0:
            pass  # the service has no audio for this item: nothing to truncate (it would be rejected)
        elif position <= 0:
            out.append(Send(ev.ConversationItemDeleteEvent(item_id=item)))
            self.truncations.append((item, 0))
        else:
            out.append(
                Send(ev.ConversationItemTruncateEvent(
                    item_id=item, content_index=self.playback.content_index(item), audio_end_ms=position
                ))
            )
            self.truncations.append((item, position))
        self.cut(item, float(position), out)

    def cut(self, item: str, heard_ms: float, out: list[Action], *, provisional: bool = False) -> None:
        self.cut_items.add(item)
        self.audio_open.discard(item)
        if self.transcript.cut(item, heard_ms, provisional=provisional):
            self._changed(out)

    def position(self, item: str) -> float:
        """WebRTC: how much of ``item`` was heard. Audio received on the track is audio played; without the
        track, the time since its playback started."""
        if item in self.track.received_ms:
            return self.track.received_ms[item]
        if item in self._received_ms:
            return self._received_ms[item]
        started = self._rtc_started_at.get(item)
        if started is None:
            return 0.0
        return (self._clock() - started) * 1000.0

    # -- audio in ------------------------------------------------------------------------------------------

    def audio_delta(self, event: ev.ResponseAudioDeltaEvent, interrupted: bool, out: list[Action]) -> bool:
        """An audio delta of a response (``interrupted``: that response was cut). Returns whether it was kept."""
        wire = base64.b64decode(event.delta)
        if self._output_format != "audio/pcm":
            # G.711 on the wire: players, transcript timing and truncation all work in pcm16 24 kHz.
            decoder = self._decoders.get(event.item_id)
            if decoder is None:
                decoder = self._decoders[event.item_id] = WireAudio(self._output_format)
            wire = decoder.to_pcm(wire)
        item = event.item_id
        if item in self.cut_items or interrupted:
            return False  # audio of an interrupted answer still in flight: never play it
        samples = len(wire) // 2
        ms = samples * 1000.0 / self.config.sample_rate
        self._received_ms[item] = self._received_ms.get(item, 0.0) + ms
        self.item_response[item] = event.response_id
        self.transcript.audio_received(item, ms, wire if self.config.audio_onsets else None)
        if self.websocket:
            self.audio_open.add(item)
            self.playback.enqueue(item, samples, content_index=event.content_index)
            out.append(Play(wire))
        return True

    def audio_done(self, item: str) -> None:
        """``response.output_audio.done``. Over WebRTC the audio was generated, not played: nothing to do."""
        self._decoders.pop(item, None)
        if self.websocket:
            self.audio_open.discard(item)
            self.transcript.audio_done(item)

    def track_audio(self, pcm: bytes, out: list[Action]) -> None:
        """WebRTC: audio received on the media track (what the user hears, as it plays)."""
        pieces, settled = self.track.feed(pcm)
        for item, piece in pieces:
            ms = len(piece) / 2 * 1000.0 / self.config.sample_rate
            # The text came on the data channel, on its own schedule: its arrival marks no place in this audio.
            self.transcript.audio_received(item, ms, piece if self.config.audio_onsets else None, in_step=False)
            if item not in self.cut_items:
                self.reveal(item, out)
        self.settle_cuts(settled, out)

    def settle_cuts(self, settled: list[tuple[str, int]], out: list[Action]) -> None:
        """The service's cut, with all the audio it played arrived: the words heard, final."""
        for item, audio_end_ms in settled:
            self.cut_items.add(item)
            if self.transcript.cut(item, float(audio_end_ms), again=True):
                self._changed(out)

    # -- transcript ----------------------------------------------------------------------------------------

    def transcript_delta(self, item: str, delta: str, out: list[Action]) -> None:
        if item not in self.cut_items:
            self.transcript.assistant_delta(item, delta, audio=True)
            self.reveal(item, out)

    def transcript_done(self, item: str, text: str, out: list[Action]) -> None:
        if item not in self.cut_items:
            if self.transcript.assistant_done(item, text, audio=True):
                self._changed(out)
            else:
                self.reveal(item, out)

    def reveal(self, item: str, out: list[Action]) -> None:
        if self.websocket:
            position = self.playback.played_ms(item)
        else:
            position = self.position(item) if item in self._rtc_started_at else 0.0
        if position > 0 and self.transcript.played(item, position):
            self._changed(out)

    def tick(self, out: list[Action]) -> None:
        """WebRTC: reveal words by elapsed time (no local player reports progress)."""
        if self.rtc_item is not None:
            self.reveal(self.rtc_item, out)

    # -- playback ------------------------------------------------------------------------------------------

    def played(self, samples: int) -> tuple[bool, bool]:
        """WebSocket: the local player played ``samples`` more. Returns whether an item started playing and
        whether the transcript changed (the caller reports both, in that order)."""
        started = False
        changed = False
        for progress in self.playback.advance(samples):
            started = started or progress.started
            changed = self.transcript.played(progress.item_id, progress.played_ms) or changed
            current = self.playback.current_item
            if current != progress.item_id and progress.item_id not in self.audio_open:
                changed = self.transcript.flush(progress.item_id) or changed
        return started, changed

    @property
    def drained(self) -> bool:
        """WebSocket: nothing left to play or arriving."""
        return self.playback.empty and not self.audio_open

    def flush_current(self, out: list[Action]) -> None:
        item = self.playback.current_item
        if item is not None and self.transcript.flush(item):
            self._changed(out)

    def rtc_started(self, response_id: str, first_item: str | None) -> None:
        """``output_audio_buffer.started``: the response's (first audio) item plays now."""
        item = first_item
        if item is None:
            item = next((i for i, r in self.item_response.items() if r == response_id), None)
        if item is not None:
            self.rtc_item = item
            self._rtc_started_at[item] = self._clock()
            self.track.start(item)

    def rtc_stopped(self, response_id: str, out: list[Action]) -> None:
        """``output_audio_buffer.stopped``: the response's items have played to the end (or were cut)."""
        for item, rid in self.item_response.items():
            if rid == response_id and item not in self.cut_items:  # a cut item's audio did not end here
                self.transcript.audio_done(item)
        for item, rid in self.item_response.items():
            if rid == response_id and item not in self.cut_items and self.transcript.flush(item):
                self._changed(out)
        self.rtc_item = None
        self.track.stop()
        # A later answer finished playing: audio of an earlier cut item that has not arrived yet never will.
        stale = {i for i in self.track.awaited if self.item_response.get(i) != response_id}
        if stale:
            self.settle_cuts(self.track.abandon(stale), out)

    def rtc_cleared(self, out: list[Action]) -> None:
        """``output_audio_buffer.cleared``."""
        item = self.rtc_item
        if item is not None and item not in self.cut_items:
            self.cut(item, self.position(item), out)
        elif item is not None and not self.track.awaiting(item) and self.transcript.confirm(item):
            self._changed(out)  # the service cleared without a truncation: our cut stands
        self.rtc_item = None
        self.track.stop()

    def server_truncated(self, event: ev.ConversationItemTruncatedEvent, out: list[Action]) -> None:
        """Over WebRTC the service truncates at what it played: the exact position, applied once the audio it
        played has arrived on the track (the word timings then cover all of it)."""
        if not self.websocket:
            self.cut_items.add(event.item_id)
            if self.track.server_cut(event.item_id, event.audio_end_ms):
                self.settle_cuts([(event.item_id, event.audio_end_ms)], out)
