"""A virtual-time event loop for tests and benchmarks: when nothing is ready, time jumps to the next timer
instead of waiting, so real-time pacing (players, microphones, the engine clock, tool timeouts) runs instantly and
deterministically. Only for code without real I/O (the in-memory transport); work in threads takes real time,
which is waited for (it appears instant on the virtual clock)."""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["VirtualTimeLoop", "run_virtual"]

T = TypeVar("T")


class _VirtualSelector(selectors.DefaultSelector):
    loop: VirtualTimeLoop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            return super().select(None)  # nothing scheduled: only a thread can wake us
        if self.loop.threads_busy:
            # work in a thread takes real time: wait for it (briefly) instead of jumping past it
            return super().select(min(timeout, 0.01))
        self.loop.advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        selector = _VirtualSelector()
        super().__init__(selector)
        selector.loop = self
        self._virtual_now = 1000.0
        self._threads = 0

    def time(self) -> float:
        return self._virtual_now

    @property
    def threads_busy(self) -> bool:
        return self._threads > 0

    def run_in_executor(self, executor: Any, func: Any, *args: Any) -> asyncio.Future[Any]:  # type: ignore[override]
        future = super().run_in_executor(executor, func, *args)
        self._threads += 1

        def done(_: asyncio.Future[Any]) -> None:
            self._threads -= 1

        future.add_done_callback(done)
        return future

    def advance(self, seconds: float) -> None:
        self._virtual_now += max(0.0, seconds)


def run_virtual(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a fresh virtual-time loop."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
