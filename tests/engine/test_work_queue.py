"""The engine's work queues (TTS pieces, transcription passes): one job per worker at once, the most urgent first,
cancellation safe. No clock: jobs block on a gate the test opens, and asyncio starts tasks in the order they were
made."""

from __future__ import annotations

import asyncio
import threading

import pytest

from aoai_realtime.engine.workers import WorkQueue, transcription_workers


async def _queued(queue: WorkQueue, deadlines: list[float]) -> tuple[list[float], threading.Event, list[
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
    queue = WorkQueue()
    ran, gate, tasks = await _queued(queue, [5.0, 1.0, 3.0, 1.0])
    assert queue.waiting == 4
    assert not queue.idle()
    gate.set()
    assert await asyncio.gather(*tasks) == [-1.0, 5.0, 1.0, 3.0, 1.0]  # each caller gets its own result
    assert ran == [-1.0, 1.0, 1.0, 3.0, 5.0]
    assert queue.waiting == 0


async def test_busy_while_a_job_runs_or_waits_and_not_after() -> None:
    queue = WorkQueue()
    assert not queue.busy
    ran, gate, tasks = await _queued(queue, [1.0])
    assert queue.busy
    gate.set()
    await asyncio.gather(*tasks)
    assert not queue.busy and ran == [-1.0, 1.0]


async def test_a_cancelled_waiter_gives_up_its_place() -> None:
    queue = WorkQueue()
    ran, gate, tasks = await _queued(queue, [1.0, 2.0])
    tasks[1].cancel()
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[1], asyncio.CancelledError)
    assert ran == [-1.0, 2.0]
    assert await queue.run(lambda: 7, deadline=0.0) == 7  # the worker is free again, nothing leaked


async def test_two_workers_run_two_jobs_at_once() -> None:
    queue = WorkQueue(workers=2)
    both = threading.Barrier(2, timeout=30)

    def meet() -> int:
        return both.wait()  # only returns when the other job runs at the same time

    assert sorted(await asyncio.gather(queue.run(meet, deadline=0.0), queue.run(meet, deadline=0.0))) == [0, 1]
    with pytest.raises(ValueError, match="at least one worker"):
        WorkQueue(workers=0)


async def test_idle_means_a_job_queued_now_starts_at_once() -> None:
    queue = WorkQueue(workers=2)
    assert queue.idle()
    gate = threading.Event()
    first = asyncio.create_task(queue.run(lambda: gate.wait(timeout=30), deadline=0.0))
    await asyncio.sleep(0)
    assert queue.idle()  # one worker busy, one free
    second = asyncio.create_task(queue.run(lambda: gate.wait(timeout=30), deadline=0.0))
    await asyncio.sleep(0)
    assert not queue.idle()  # both busy
    gate.set()
    assert await asyncio.gather(first, second) == [True, True]
    assert queue.idle()


class _Stt:
    def __init__(self, workers: object) -> None:
        self.num_workers = workers


def test_the_transcription_queue_has_a_worker_per_stt_worker() -> None:
    assert transcription_workers(_Stt(3)) == 3
    assert transcription_workers(object()) == 2  # an STT that does not say
    assert transcription_workers(_Stt(0)) == 2
