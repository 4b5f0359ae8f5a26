"""WebRTC: which conversation item the audio arriving on the call's media track belongs to, sans I/O.

Over WebRTC the service plays the assistant's audio on the media track and reports it on the data channel
(``output_audio_buffer.started`` / ``.stopped`` / ``.cleared``, ``conversation.item.truncated``). The two paths
are not synchronised: the track runs behind or ahead of the events, and carries idle silence between answers.
:class:`TrackTimeline` turns the track into per-item audio, on three rules that hold whatever the delays:

- the item playing is the one ``output_audio_buffer.started`` announced (the service sends that event before the
  item's first frame); frames of digital silence before the item's first sound are the track's idle fill, not the
  item's audio;
- after a barge-in the item keeps the audio still in flight: the service's ``conversation.item.truncated`` says
  how much of the item it played (``audio_end_ms``), so exactly that much of what follows on the track is the
  item's (the service sent it before anything else);
- a server cut is *settled* once that much of the item's audio has arrived: only then do the item's word timings
  rest on all the audio the user heard, so the transcript cut at ``audio_end_ms`` keeps exactly the words heard.

No clock and no I/O: the owner (:class:`~aoai_realtime.agents.core.VoiceCore`) calls :meth:`start`,
:meth:`stop`, :meth:`server_cut` and :meth:`feed` as events and frames arrive, in order.
"""

from __future__ import annotations

import numpy as np

from .playback import SAMPLE_RATE

__all__ = ["SILENCE_PEAK", "TrackTimeline", "is_silent"]

SILENCE_PEAK = 16
"""A frame whose samples all stay within this level (of 32768, about -66 dBFS) is digital silence."""


def is_silent(pcm: bytes) -> bool:
    """Whether pcm16 ``pcm`` is digital silence (the track's idle fill)."""
    usable = len(pcm) - len(pcm) % 2
    if usable == 0:
        return True
    return int(np.abs(np.frombuffer(pcm[:usable], dtype="<i2").astype(np.int32)).max()) <= SILENCE_PEAK


class TrackTimeline:
    """Attributes media-track audio to items (see the module docstring). ``received_ms`` is each item's audio
    counted so far."""

    def __init__(self, sample_rate: int = SAMPLE_RATE) -> None:
        self._bytes_per_ms = sample_rate * 2 / 1000.0
        self.playing: str | None = None
        self.received_ms: dict[str, float] = {}
        self._sounded: set[str] = set()
        self._owed: dict[str, int] = {}  # item -> bytes of its played audio still in flight (server cut known)
        self._cut_at: dict[str, int] = {}  # item -> the service's audio_end_ms, until settled

    def start(self, item: str) -> None:
        """``output_audio_buffer.started``: ``item`` plays now."""
        self.playing = item

    def stop(self) -> None:
        """``output_audio_buffer.stopped`` or ``.cleared``: nothing plays (audio in flight still arrives)."""
        self.playing = None

    def server_cut(self, item: str, audio_end_ms: int) -> bool:
        """The service truncated ``item`` at ``audio_end_ms``, what it played. Returns ``True`` when that much has
        already arrived (settled now); else the rest is awaited on the track and :meth:`feed` settles it."""
        owed = int((audio_end_ms - self.received_ms.get(item, 0.0)) * self._bytes_per_ms)
        owed -= owed % 2
        if owed <= 0:
            self._owed.pop(item, None)
            self._cut_at.pop(item, None)
            return True
        self._owed[item] = owed
        self._cut_at[item] = audio_end_ms
        if self.playing == item:
            self.playing = None  # what follows its played audio on the track is idle fill or the next item
        return False

    def awaiting(self, item: str) -> bool:
        """Whether a server cut of ``item`` waits for audio still in flight."""
        return item in self._cut_at

    @property
    def awaited(self) -> list[str]:
        """Items whose server cut waits for audio still in flight, oldest first."""
        return list(self._cut_at)

    def abandon(self, items: set[str] | None = None) -> list[tuple[str, int]]:
        """Settle the awaited cuts of ``items`` (all when ``None``) with the audio that did arrive: the rest will
        not (a new call, or a later answer has finished playing). Returns ``(item, audio_end_ms)`` for each."""
        settled = [(i, end) for i, end in self._cut_at.items() if items is None or i in items]
        for item, _ in settled:
            self._owed.pop(item, None)
            del self._cut_at[item]
        return settled

    def feed(self, pcm: bytes) -> tuple[list[tuple[str, bytes]], list[tuple[str, int]]]:
        """Audio received on the track, in order. Returns the pieces that belong to items, in order, and the
        server cuts this audio settled, as ``(item, audio_end_ms)``."""
        pieces: list[tuple[str, bytes]] = []
        settled: list[tuple[str, int]] = []
        while pcm and self._owed:
            item, owed = next(iter(self._owed.items()))
            piece, pcm = pcm[:owed], pcm[owed:]
            pieces.append((item, piece))
            self._count(item, piece)
            if owed > len(piece):
                self._owed[item] = owed - len(piece)
            else:
                del self._owed[item]
                settled.append((item, self._cut_at.pop(item)))
        playing = self.playing
        if pcm and playing is not None:
            if playing not in self._sounded:
                if is_silent(pcm):
                    return pieces, settled  # idle fill before the item's first sound
                self._sounded.add(playing)
            pieces.append((playing, pcm))
            self._count(playing, pcm)
        return pieces, settled

    def _count(self, item: str, pcm: bytes) -> None:
        self.received_ms[item] = self.received_ms.get(item, 0.0) + len(pcm) / self._bytes_per_ms
