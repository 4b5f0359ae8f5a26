"""procrastinate on a real PostgreSQL: End Call deliveries enqueue one job per call (queueing lock), worker
PROCESSES started with ``aoai-realtime worker`` run the four real steps (offline LLM, in-store index), and
every effect exists exactly once. Plus, in-process: a failing step is retried through a scheduled job."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from aoai_realtime.llm import Turn
from aoai_realtime.pipeline import (
    CallRecord,
    Effect,
    Pipeline,
    PostgresStepStore,
    RetryPolicy,
    StepContext,
    StepSpec,
    StepState,
)
from aoai_realtime.pipeline.cli import build_pipeline
from aoai_realtime.pipeline.procrastinate_runner import ProcrastinateRunner
from aoai_realtime.pipeline.store import EffectCount

pytestmark = pytest.mark.integration

CALLS = 40


@pytest.fixture
async def pg_store(pg_dsn: str) -> AsyncIterator[PostgresStepStore]:
    store = PostgresStepStore(pg_dsn)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def _call(i: int) -> CallRecord:
    return CallRecord(
        call_id=f"pc-{i}",
        transcript=(
            Turn("user", f"Can you send me the invoice number {i} by Monday?"),
            Turn("assistant", "Yes. I will email it to you tomorrow morning."),
        ),
    )


async def _jobs(dsn: str, status: str) -> int:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute("SELECT count(*) FROM procrastinate_jobs WHERE status = %s", (status,))
        row = await cur.fetchone()
        return int(row[0]) if row else 0


async def _wait_for_states(store: PostgresStepStore, expected: dict[StepState, int], timeout: float) -> None:
    """Synchronize on the store: poll its state counts until they are ``expected``."""
    for _ in range(int(timeout / 0.2)):
        if await store.state_counts() == expected:
            return
        await asyncio.sleep(0.2)
    assert await store.state_counts() == expected


async def test_worker_processes_run_every_step_exactly_once(pg_store: PostgresStepStore, pg_dsn: str) -> None:
    pipeline = build_pipeline(pg_store, "local")
    runner = ProcrastinateRunner(pipeline, pg_store)
    await runner.setup()
    await runner.setup()  # idempotent (each worker process runs it too)
    async with runner:
        news = [await runner.end_call(_call(i)) for _ in range(3) for i in range(CALLS)]
    assert sum(news) == CALLS
    assert await _jobs(pg_dsn, "todo") == CALLS  # three deliveries per call, one waiting job per call

    cmd = [sys.executable, "-c", "from aoai_realtime.cli import main; main()", "worker", "--store", pg_dsn,
           "--concurrency", "2", "--poll-interval", "0.5"]
    workers = [await asyncio.create_subprocess_exec(*cmd, stderr=asyncio.subprocess.DEVNULL) for _ in range(2)]
    try:
        await _wait_for_states(pg_store, {StepState.GENERATED: 4 * CALLS}, timeout=120)
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        codes = [await asyncio.wait_for(w.wait(), timeout=60) for w in workers]
    assert codes == [0, 0]  # graceful shutdown on SIGTERM

    assert await pg_store.effect_counts() == {
        s: EffectCount(rows=CALLS, calls=CALLS) for s in ("summary", "action_items", "index", "review_thread")
    }
    assert await _jobs(pg_dsn, "todo") == 0
    [items] = await pg_store.effects("pc-7", "action_items")
    assert "Send me the invoice number 7" in items.body or "invoice number 7" in items.body
    chunks = await pg_store.index_chunks("pc-7")
    assert chunks and chunks[0][2].startswith("## Summary")  # indexed after the summary, with it


async def test_failed_step_is_retried_by_a_scheduled_job(pg_store: PostgresStepStore, pg_dsn: str) -> None:
    attempts: list[int] = []

    async def flaky(ctx: StepContext) -> Effect:
        attempts.append(ctx.claim.attempt)
        if ctx.claim.attempt == 1:
            raise RuntimeError("first attempt fails")
        return Effect("text/plain", "ok")

    pipeline = Pipeline(
        steps=(StepSpec("flaky", flaky),), retry=RetryPolicy(max_attempts=3, base_delay=0.2, jitter=0.0)
    )
    runner = ProcrastinateRunner(pipeline, pg_store, queue="flaky")
    await runner.setup()
    async with runner:
        await runner.end_call(_call(1))
        # The sweeper waits an hour: only the scheduled retry job can bring the second attempt.
        worker = asyncio.create_task(runner.run_worker(concurrency=1, sweep_interval=3600, fetch_interval=0.2,
                                                       install_signal_handlers=False))
        try:
            await _wait_for_states(pg_store, {StepState.GENERATED: 1}, timeout=60)
        finally:
            worker.cancel()
            await asyncio.wait([worker])
    assert attempts == [1, 2]
    [row] = await pg_store.steps("pc-1")
    assert (row.attempts, row.last_error) == (2, "RuntimeError: first attempt fails")


async def test_a_sigkilled_worker_process_is_recovered_by_the_sweeper_exactly_once(
    pg_store: PostgresStepStore, pg_dsn: str
) -> None:
    # A procrastinate worker process is killed mid-step: its job stays "doing" forever (procrastinate does not
    # retry stalled jobs by itself) and its step stays generating under a lease. The sweeper of another worker
    # finds the step due once the lease has expired, defers a new job, and the step completes exactly once.
    lease = 2.0
    crash_worker = Path(__file__).with_name("crash_worker.py")

    async def finish(ctx: StepContext) -> Effect:
        return Effect("text/plain", f"done by attempt {ctx.claim.attempt}")

    pipeline = Pipeline(steps=(StepSpec("summary", finish, lease_seconds=lease),))
    runner = ProcrastinateRunner(pipeline, pg_store, queue="crash")
    await runner.setup()
    async with runner:
        await runner.end_call(_call(1))
    child = await asyncio.create_subprocess_exec(
        sys.executable, str(crash_worker), "procrastinate", pg_dsn, "crash", str(lease), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), timeout=60)
        _, call_id, step, token = line.decode().split()
        [row] = await pg_store.steps(call_id)
        assert (row.state, row.claim_token) == (StepState.GENERATING, token)
    finally:
        child.send_signal(signal.SIGKILL)
        assert await child.wait() == -signal.SIGKILL
    assert await _jobs(pg_dsn, "doing") == 1  # the dead worker's job: stalled, nobody will run it again

    async with runner:
        rescuer = asyncio.create_task(
            runner.run_worker(concurrency=1, sweep_interval=0.2, fetch_interval=0.2, install_signal_handlers=False)
        )
        try:
            await _wait_for_states(pg_store, {StepState.GENERATED: 1}, timeout=60)
        finally:
            rescuer.cancel()
            await asyncio.wait([rescuer])
    [effect] = await pg_store.effects(call_id, step)
    assert effect.body == "done by attempt 2" and effect.claim_token != token
    [row] = await pg_store.steps(call_id)
    assert (row.state, row.attempts) == (StepState.GENERATED, 2)
