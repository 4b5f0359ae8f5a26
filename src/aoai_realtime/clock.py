"""The one clock abstraction: every timer, deadline and pacing loop in the library takes a :class:`Clock`, so tests
drive time by hand and nothing reads ``time.time()`` beside an injected clock.

- :meth:`Clock.now`: monotonic seconds (timers, latencies, pacing);
- :meth:`Clock.wall`: Unix time, for values the service states in wall-clock time (``expires_at``, ``created_at``);
- :meth:`Clock.sleep`: a sleep that honours :meth:`now`.

:class:`SystemClock` is the running event loop's clock (so a virtual-time loop,
:func:`aoai_realtime.testing.virtual_time.run_virtual`, moves it too) and the system's wall clock.
:class:`FakeClock` moves only when a test calls :meth:`FakeClock.advance`; sleepers wake in deadline order, and
``advance`` lets woken tasks run before it returns. :func:`as_clock` turns a plain ``() -> float`` (the older
``clock=`` arguments) into a clock.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "FakeClock", "SystemClock", "as_clock"]


@runtime_checkable
class Clock(Protocol):
    """Monotonic time in seconds, the wall-clock time, and a sleep that honours ``now``."""

    def now(self) -> float: ...

    def wall(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The running event loop's monotonic clock and the system's wall clock."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class _FunctionClock(SystemClock):
    """``now`` from a given function; sleeps on the event loop (so give it the loop's own time, or use a Clock)."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now

    def now(self) -> float:
        return self._now()


def as_clock(clock: Clock | Callable[[], float] | None) -> Clock:
    """``clock`` itself if it is a :class:`Clock`; a function ``() -> float`` as a clock's ``now`` (sleeping on
    the event loop, wall time from the system); ``None``: :class:`SystemClock`."""
    if clock is None:
        return SystemClock()
    if isinstance(clock, Clock):
        return clock
    return _FunctionClock(clock)


class FakeClock:
    """A clock that only moves when :meth:`advance` is called.

    ``await clock.sleep(s)`` parks the caller until the clock has been advanced past its deadline.
    ``await clock.advance(s)`` moves time forward step by step, waking each sleeper in deadline order and
    letting the event loop run the woken tasks before it moves on (so a timer that schedules another timer
    inside the advanced window fires too). :meth:`wall` moves with :meth:`now`, from ``wall_start``.
    """

    def __init__(self, start: float = 0.0, *, wall_start: float = 1_700_000_000.0) -> None:
        self._start = start
        self._now = start
        self._wall_start = wall_start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._wall_start + (self._now - self._start)

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
