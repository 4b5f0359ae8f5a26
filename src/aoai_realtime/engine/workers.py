"""The engine's CPU-heavy speech work, queued: at most a few jobs in threads at once, the most urgent first.

Every session of an engine shares two queues: synthesis (TTS pieces, each due when its listener would run out of
audio; see :mod:`.pacing`) and transcription (Whisper passes). Without them each session's work went straight to
``asyncio.to_thread``: with a dozen calls, passes waiting for one of Whisper's workers held the loop's default
threads, a TTS piece whose listener was about to run out of audio waited for a thread behind them, and every
job started at once ran slower on the shared cores. A queued job runs in its own worker thread, marked as CPU work
for the language model (:mod:`.cores`).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from typing import TypeVar

from . import cores

__all__ = ["WorkQueue", "transcription_workers"]

T = TypeVar("T")


class WorkQueue:
    """At most ``workers`` jobs at once (in worker threads), the others waiting in deadline order (earliest first;
    equal deadlines in arrival order); a cancelled waiter gives up its place. One worker suits a voice that already
    uses the machine's cores (piper runs two threads); Whisper's queue has one per CTranslate2 worker."""

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError(f"WorkQueue needs at least one worker, got {workers}")
        self.workers = workers
        self._free = workers
        self._waiting: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @property
    def waiting(self) -> int:
        """Jobs waiting for a worker (for tests and metrics)."""
        return sum(1 for _, _, f in self._waiting if not f.done())

    @property
    def busy(self) -> bool:
        """Whether a job runs or waits. Plain reads, so a worker thread may ask (a Whisper pass asks whether
        speech synthesis is busy as it starts)."""
        return self._free < self.workers or bool(self._waiting)

    def idle(self) -> bool:
        """Whether a job queued now would start at once: a worker is free and nothing waits. Work that is only
        worth doing with spare capacity (a speculative transcription pass) asks first."""
        return self._free > 0 and not self.waiting

    async def run(self, job: Callable[[], T], *, deadline: float) -> T:
        """Run ``job`` in a worker thread once a worker is free and no waiting job is due earlier."""
        await self._acquire(deadline)
        try:
            return await asyncio.to_thread(cores.marked, job)  # the language model leaves the core meanwhile
        finally:
            self._release()

    async def _acquire(self, deadline: float) -> None:
        if self.idle():
            self._free -= 1
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (deadline, next(self._order), turn))
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._release()  # the worker was handed over just as the waiter was cancelled: pass it on
            raise

    def _release(self) -> None:
        while self._waiting:
            _, _, turn = heapq.heappop(self._waiting)
            if not turn.done():
                turn.set_result(None)
                return
        self._free += 1


def transcription_workers(stt: object) -> int:
    """How many passes of ``stt`` run at once: one per worker it has (:attr:`.speech.stt.WhisperStt.num_workers`;
    2 for an STT that does not say)."""
    workers = getattr(stt, "num_workers", 2)
    return workers if isinstance(workers, int) and workers >= 1 else 2
