"""How much CPU-heavy speech work runs in this process right now, for the language model to choose its threads.

llama.cpp's threads meet at a barrier at every step, so a model running two threads on a 2-core machine while
whisper or piper takes one of the cores waits for the scheduler at every token (1-2 tokens a second measured,
against 14 with one thread). With nothing else running, two threads make it twice as fast (a 0.5B model: 27 ms
a token against 47, a 16-token prompt 153 ms against 296). The engine marks its speech work with :func:`marked`
(or :func:`working`), the llm brain its lanes' passes; each pass asks ``GAUGE.running()`` before each step and
uses its extra threads only while nothing else is marked. Work outside this process is not seen here (the brain
measures it from ``/proc/stat``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")

__all__ = ["GAUGE", "CoreGauge", "marked", "working"]


class CoreGauge:
    """A count of the marked work running now (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0

    @contextmanager
    def working(self) -> Iterator[None]:
        """Mark CPU-heavy work (a transcription pass, a synthesis) for as long as the block runs; any thread."""
        with self._lock:
            self._running += 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1

    def running(self) -> int:
        """How many marked blocks are running now."""
        return self._running


GAUGE = CoreGauge()  # the process's: the engine's speech work and the llm brain's passes
working = GAUGE.working


def marked(job: Callable[[], T]) -> T:
    """Run ``job`` in the calling thread, marked as CPU-heavy work (``asyncio.to_thread(marked, job)``)."""
    with working():
        return job()
