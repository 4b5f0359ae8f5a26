"""The engine's TTS queue: one piece at a time (per worker), the most urgent first, cancellation safe. No clock:
jobs block on a gate the test opens, and asyncio starts tasks in the order they were made."""

from __future__ import annotations

import asyncio
import threading

import pytest

from aoai_realtime.engine.pacing import SynthesisQueue


async def _queued(queue: SynthesisQueue, deadlines: list[float]) -> tuple[list[float], threading.Event, list[
        asyncio.Task[float]]]:  # fmt: skip
    """A first job holds the only worker until the gate opens; one job per deadline waits behind it."""
    ran: list[float] = []
    gate = threading.Event()

    def job(tag: float) -> float:
        if tag < 0:
            gate.wait(timeout=30)
        ran.append(tag)
        return tag

    tasks = [asyncio.create_task(queue.run(lambda t=t: job(t), deadline=t)) for t in [-1.0, *deadlines]]
    await asyncio.sleep(0)  # every task runs to its first wait: the first holds the worker, the rest queue
    return ran, gate, tasks


async def test_waiting_pieces_run_earliest_deadline_first() -> None:
    queue = SynthesisQueue()
    ran, gate, tasks = await _queued(queue, [5.0, 1.0, 3.0, 1.0])
    assert queue.waiting == 4
    gate.set()
    assert await asyncio.gather(*tasks) == [-1.0, 5.0, 1.0, 3.0, 1.0]  # each caller gets its own result
    assert ran == [-1.0, 1.0, 1.0, 3.0, 5.0]
    assert queue.waiting == 0


async def test_a_cancelled_waiter_gives_up_its_place() -> None:
    queue = SynthesisQueue()
    ran, gate, tasks = await _queued(queue, [1.0, 2.0])
    tasks[1].cancel()
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[1], asyncio.CancelledError)
    assert ran == [-1.0, 2.0]
    assert await queue.run(lambda: 7, deadline=0.0) == 7  # the worker is free again, nothing leaked


async def test_two_workers_run_two_jobs_at_once() -> None:
    queue = SynthesisQueue(workers=2)
    both = threading.Barrier(2, timeout=30)

    def meet() -> int:
        return both.wait()  # only returns when the other job runs at the same time

    assert sorted(await asyncio.gather(queue.run(meet, deadline=0.0), queue.run(meet, deadline=0.0))) == [0, 1]
    with pytest.raises(ValueError, match="at least one worker"):
        SynthesisQueue(workers=0)
