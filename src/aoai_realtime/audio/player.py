"""Audio output for an assistant: the :class:`AudioSink` protocol and a headless real-time player.

A sink takes pcm16 mono 24 kHz (:meth:`AudioSink.write`), can be emptied at once (:meth:`AudioSink.clear`,
barge-in), and reports every block it has *finished playing* to the listener set with
:meth:`AudioSink.set_listener`, called on the event loop with the number of samples. That report is what
advances the assistant's playback clock: audio heard, not audio received.

:class:`PacedPlayer` plays in real time without a device: frames of ``frame_ms`` are "played" on an absolute
schedule (no drift) and appended to :attr:`PacedPlayer.played`. Use it headless, in tests and benchmarks;
inject ``clock``/``sleep`` to run it on virtual time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from ..errors import ConfigError
from .pcm import BYTES_PER_SAMPLE, SAMPLE_RATE

__all__ = ["AudioSink", "PacedPlayer", "PlayedListener"]

PlayedListener = Callable[[int], None]


@runtime_checkable
class AudioSink(Protocol):
    """Where assistant audio goes. Implementations must call the listener only on the event loop thread."""

    def set_listener(self, listener: PlayedListener | None) -> None:
        """``listener(samples)`` after each block has finished playing, in order."""
        ...

    def write(self, pcm: bytes) -> None:
        """Queue pcm16 mono 24 kHz for playback after what is queued. Never blocks."""
        ...

    def clear(self) -> int:
        """Drop everything not yet played, at once. Returns the samples dropped."""
        ...

    @property
    def queued_samples(self) -> int:
        """Samples written and not yet played."""
        ...

    async def run(self) -> None:
        """Play until cancelled. The owner runs it as a task for as long as it uses the sink."""
        ...


class PacedPlayer:
    """A real-time player without a device (see the module docstring).

    ``record=False`` skips keeping :attr:`played` (long sessions).
    """

    def __init__(
        self,
        *,
        frame_ms: float = 20.0,
        sample_rate: int = SAMPLE_RATE,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        record: bool = True,
    ) -> None:
        if frame_ms <= 0:
            raise ConfigError(f"frame_ms must be > 0, got {frame_ms}", field="frame_ms")
        self.frame_ms = frame_ms
        self.sample_rate = sample_rate
        self._frame_bytes = max(1, int(sample_rate * frame_ms / 1000)) * BYTES_PER_SAMPLE
        self._clock = clock
        self._sleep = sleep
        self._record = record
        self._buffer = bytearray()
        self._listener: PlayedListener | None = None
        self._wake = asyncio.Event()
        self.played = bytearray()
        self.played_samples = 0
        self._frame_started: float | None = None
        self._frame_samples = 0
        self._cut_at: int | None = None  # samples of the current frame played when clear() cut it
        self.clears: list[int] = []  # exact playback position (samples) at each clear()

    def set_listener(self, listener: PlayedListener | None) -> None:
        self._listener = listener

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    def write(self, pcm: bytes) -> None:
        self._buffer += pcm
        self._wake.set()

    def clear(self) -> int:
        dropped = len(self._buffer) // BYTES_PER_SAMPLE
        self._buffer.clear()
        if self._frame_started is not None and self._cut_at is None:
            # the frame being played stops where it is now
            elapsed = round((self._now() - self._frame_started) * self.sample_rate)
            self._cut_at = max(0, min(self._frame_samples, elapsed))
        self.clears.append(self.position_samples())
        return dropped

    @property
    def queued_samples(self) -> int:
        return len(self._buffer) // BYTES_PER_SAMPLE

    def position_samples(self) -> int:
        """Samples played so far, counting the part of the current frame already played."""
        position = self.played_samples
        if self._cut_at is not None:
            return position + self._cut_at
        if self._frame_started is not None:
            elapsed = round((self._now() - self._frame_started) * self.sample_rate)
            position += max(0, min(self._frame_samples, elapsed))
        return position

    async def run(self) -> None:
        deadline: float | None = None
        while True:
            if not self._buffer:
                deadline = None
                self._wake.clear()
                await self._wake.wait()
                continue
            frame = bytes(self._buffer[: self._frame_bytes])
            del self._buffer[: self._frame_bytes]
            n = len(frame) // BYTES_PER_SAMPLE
            now = self._now()
            if deadline is None or deadline < now:
                deadline = now  # start (or restart after an underrun) from now
            self._frame_started = deadline
            self._frame_samples = n
            deadline += n / self.sample_rate
            if self._record:
                self.played += frame
            await self._sleep(max(0.0, deadline - self._now()))
            self._frame_started = None
            cut, self._cut_at = self._cut_at, None
            if cut is not None:
                # Cleared while this frame played: only its first ``cut`` samples were heard. Not reported to
                # the listener: its clock was cleared too, and new audio may already be queued behind.
                self.played_samples += cut
                if self._record:
                    del self.played[len(self.played) - (n - cut) * BYTES_PER_SAMPLE :]
                deadline = None
                continue
            self.played_samples += n
            if self._listener is not None:
                self._listener(n)
