"""A worker process for the crash tests: it claims the ``summary`` step, says so on stdout, and hangs in the
step until it is killed. Usage: ``python crash_worker.py sqlite PATH``, ``python crash_worker.py postgres DSN``, or
``python crash_worker.py procrastinate DSN QUEUE LEASE`` (a procrastinate worker process taking the call's job)."""

from __future__ import annotations

import asyncio
import sys

from aoai_realtime.pipeline import (
    Effect,
    Pipeline,
    PostgresStepStore,
    SQLiteStepStore,
    StepContext,
    StepSpec,
    StepStore,
    Worker,
)

LEASE = 30.0


async def hang(ctx: StepContext) -> Effect:
    print(f"started {ctx.claim.call_id} {ctx.claim.step} {ctx.claim.token}", flush=True)
    await asyncio.Event().wait()  # killed here, mid-step
    raise AssertionError("unreachable")


PIPELINE = Pipeline(steps=(StepSpec("summary", hang, lease_seconds=LEASE),))


async def procrastinate_worker(dsn: str, queue: str, lease: float) -> None:
    from aoai_realtime.pipeline.procrastinate_runner import ProcrastinateRunner

    store = PostgresStepStore(dsn)
    await store.open()
    runner = ProcrastinateRunner(Pipeline(steps=(StepSpec("summary", hang, lease_seconds=lease),)), store, queue=queue)
    async with runner:
        await runner.run_worker(concurrency=1, sweep_interval=3600, fetch_interval=0.2, install_signal_handlers=False)


async def main(kind: str, target: str, *extra: str) -> None:
    if kind == "procrastinate":
        await procrastinate_worker(target, extra[0], float(extra[1]))
        return
    store: StepStore
    if kind == "sqlite":
        store = SQLiteStepStore(target)
    else:
        pg = PostgresStepStore(target)
        await pg.open()
        store = pg
    await store.setup(PIPELINE)
    await Worker(PIPELINE, store).run_until_idle()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
