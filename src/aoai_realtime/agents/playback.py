"""How much assistant audio the user has actually heard, per conversation item.

The service sends audio faster than real time, so "audio received" says nothing about "audio heard". The
:class:`PlaybackClock` is told two things: what was handed to the player (:meth:`PlaybackClock.enqueue`)
and how many samples the player has finished playing (:meth:`PlaybackClock.advance`, called by the player).
From those it knows, for each assistant item, the audio actually played: the ``audio_end_ms`` of a
``conversation.item.truncate`` at barge-in (reference 4.4), and the position transcript words are revealed at.

No I/O and no clock of its own: the player is the clock.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

__all__ = ["SAMPLE_RATE", "PlaybackClock", "Progress", "truncate_position_ms"]

SAMPLE_RATE = 24_000
"""pcm16 mono at 24 kHz is the only PCM rate the Realtime API speaks (reference 3.3)."""


@dataclass(frozen=True, slots=True)
class Progress:
    """``item_id`` has now been heard up to ``played_ms``; ``started`` marks its first played sample."""

    item_id: str
    content_index: int
    played_ms: float
    started: bool


@dataclass(slots=True)
class _Segment:
    item_id: str
    content_index: int
    remaining: int


class PlaybackClock:
    """Maps samples played by the player onto the items they came from.

    The caller (the assistant) calls :meth:`enqueue` whenever it writes audio of an item to the player and
    :meth:`clear` whenever it empties the player. The player calls :meth:`advance` with the number of samples it
    has finished playing, in order.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE) -> None:
        self.sample_rate = sample_rate
        self._segments: collections.deque[_Segment] = collections.deque()
        self._played: dict[str, int] = {}
        self._enqueued: dict[str, int] = {}
        self._content_index: dict[str, int] = {}
        self._last_item: str | None = None

    def enqueue(self, item_id: str, samples: int, *, content_index: int = 0) -> None:
        """Record that ``samples`` samples of ``item_id`` were written to the player, after everything else."""
        if samples <= 0:
            return
        self._enqueued[item_id] = self._enqueued.get(item_id, 0) + samples
        self._content_index[item_id] = content_index
        tail = self._segments[-1] if self._segments else None
        if tail is not None and tail.item_id == item_id and tail.content_index == content_index:
            tail.remaining += samples
        else:
            self._segments.append(_Segment(item_id, content_index, samples))

    def advance(self, samples: int) -> list[Progress]:
        """The player finished playing ``samples`` more samples. Returns the items that moved, in order.

        Samples beyond what was enqueued (silence the player filled in) are ignored.
        """
        moved: list[Progress] = []
        while samples > 0 and self._segments:
            head = self._segments[0]
            take = min(samples, head.remaining)
            before = self._played.get(head.item_id, 0)
            self._played[head.item_id] = before + take
            self._last_item = head.item_id
            head.remaining -= take
            samples -= take
            if head.remaining == 0:
                self._segments.popleft()
            moved.append(
                Progress(head.item_id, head.content_index, self.played_ms(head.item_id), started=before == 0)
            )
        return moved

    def clear(self) -> int:
        """Forget everything not yet played (the player was emptied). Returns the samples dropped."""
        dropped = sum(s.remaining for s in self._segments)
        self._segments.clear()
        return dropped

    def played_samples(self, item_id: str) -> int:
        return self._played.get(item_id, 0)

    def played_ms(self, item_id: str) -> float:
        """Audio of ``item_id`` heard so far, in milliseconds."""
        return self._played.get(item_id, 0) * 1000.0 / self.sample_rate

    def enqueued_ms(self, item_id: str) -> float:
        """Audio of ``item_id`` written to the player so far, in milliseconds."""
        return self._enqueued.get(item_id, 0) * 1000.0 / self.sample_rate

    def content_index(self, item_id: str) -> int:
        return self._content_index.get(item_id, 0)

    @property
    def queued_samples(self) -> int:
        """Samples written to the player and not yet played."""
        return sum(s.remaining for s in self._segments)

    @property
    def current_item(self) -> str | None:
        """The item being played now (the head of the queue), else the last item played."""
        if self._segments:
            return self._segments[0].item_id
        return self._last_item

    @property
    def empty(self) -> bool:
        return not self._segments


def truncate_position_ms(played_ms: float, item_audio_ms: float | None) -> int:
    """The ``audio_end_ms`` to send for an item heard up to ``played_ms``.

    Guards (reference 4.4: an ``audio_end_ms`` past the item's audio is an ``error``): never negative, never past
    the item's known audio length, whole milliseconds rounded down (a word not heard is not claimed heard).
    """
    position = max(0, int(played_ms))
    if item_audio_ms is not None:
        position = min(position, max(0, int(item_audio_ms)))
    return position
