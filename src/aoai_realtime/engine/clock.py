"""Clocks for the engine: the session's timers (VAD idle timeout, maximum session duration, real-time audio
pacing over WebRTC, scripted pauses) all go through a :class:`Clock`, so tests drive time by hand.

:class:`SystemClock` is the event loop's monotonic clock. :class:`FakeClock` moves only when a test calls
:meth:`FakeClock.advance`; sleepers wake in deadline order, and ``advance`` lets woken tasks run before it
returns. Nothing here sleeps on the wall clock in tests.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "FakeClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """Monotonic time in seconds and a sleep that honours it."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The running event loop's monotonic clock."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock that only moves when :meth:`advance` is called.

    ``await clock.sleep(s)`` parks the caller until the clock has been advanced past its deadline.
    ``await clock.advance(s)`` moves time forward step by step, waking each sleeper in deadline order and
    letting the event loop run the woken tasks before it moves on (so a timer that schedules another timer
    inside the advanced window fires too).
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), fut))
        await fut

    @property
    def pending(self) -> int:
        """How many sleepers are waiting (cancelled ones excluded)."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    async def settle(self, rounds: int = 20) -> None:
        """Let ready tasks run without moving time (a few loop iterations)."""
        for _ in range(rounds):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, firing due sleepers in order."""
        target = self._now + seconds
        await self.settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            when, _, fut = heapq.heappop(self._sleepers)
            self._now = max(self._now, when)
            if not fut.done():
                fut.set_result(None)
                await self.settle()
        self._now = target
        await self.settle()
