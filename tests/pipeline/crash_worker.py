"""A worker process for the crash test: it claims the ``summary`` step, says so on stdout, and hangs in the
step until it is killed. Usage: ``python crash_worker.py sqlite PATH`` or ``python crash_worker.py postgres DSN``."""

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


async def main(kind: str, target: str) -> None:
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
    asyncio.run(main(sys.argv[1], sys.argv[2]))
