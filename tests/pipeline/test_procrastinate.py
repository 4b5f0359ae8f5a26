"""procrastinate on a real PostgreSQL: End Call deliveries enqueue one job per call (queueing lock), worker
PROCESSES started with ``aoai-realtime worker`` run the four real steps (offline LLM, in-store index), and
every effect exists exactly once. Plus, in-process: a failing step is retried through a scheduled job."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator

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
