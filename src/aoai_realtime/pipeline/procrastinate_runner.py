"""Running steps on many processes and machines with procrastinate (PostgreSQL).

procrastinate delivers jobs at least once; here a job only *wakes* a worker for one call. The worker then
claims that call's steps from the steps table, exactly as the in-process runner does, so duplicate jobs, a
job redelivered after a crash, or two workers on one call change nothing: the claim and the fenced commit
decide. Jobs carry only the call id.

- :meth:`ProcrastinateRunner.end_call` records the call and defers ``aoai_pipeline.run_call`` with the
  call id as queueing lock (many deliveries of one call -> one waiting job).
- A step that failed with attempts left gets a job scheduled at its retry time.
- Each worker process also sweeps every ``sweep_interval`` seconds for calls with a step due (a retry whose
  job was lost, or a lease left behind by a killed worker) and defers a job for them. So the time from a
  worker's death to its step running again is at most the lease plus the sweep interval.
"""

from __future__ import annotations

import asyncio
import datetime
import random
from typing import Any, Final

import procrastinate
import psycopg
from procrastinate.exceptions import AlreadyEnqueued

from ..errors import get_logger
from .model import CallRecord, Clock, Pipeline, StepState, StepStoreError
from .postgres_store import PostgresStepStore
from .runner import StepOutcome, Worker

__all__ = ["TASK_NAME", "ProcrastinateRunner"]

log = get_logger(__name__)

TASK_NAME: Final = "aoai_pipeline.run_call"
_SCHEMA_LOCK: Final = 0x414F4150


class ProcrastinateRunner:
    """Drives :class:`Worker` from procrastinate jobs. ``store`` must be open; the procrastinate app is built
    on the same database (its own tables, ``procrastinate_*``). Use ``async with runner:`` around
    :meth:`end_call` and :meth:`run_worker` (it opens the procrastinate app)."""

    def __init__(
        self,
        pipeline: Pipeline,
        store: PostgresStepStore,
        *,
        queue: str = "aoai_pipeline",
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.worker = Worker(pipeline, store, clock=clock, rng=rng)
        self.store = store
        self.queue = queue
        self.app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=store.conninfo))
        self._task = self.app.task(name=TASK_NAME, queue=queue, retry=False)(self._run_call)
        self._app_context: Any = None

    async def __aenter__(self) -> ProcrastinateRunner:
        self._app_context = self.app.open_async()
        await self._app_context.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        ctx, self._app_context = self._app_context, None
        if ctx is not None:
            await ctx.__aexit__(None, None, None)

    async def setup(self) -> None:
        """Create the steps tables and procrastinate's schema if missing. Safe from many processes at once."""
        await self.store.setup(self.worker.pipeline)
        async with await psycopg.AsyncConnection.connect(self.store.conninfo, autocommit=True) as conn:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                cur = await conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
                row = await cur.fetchone()
                exists = bool(row and row[0])
            if not exists:
                await conn.execute(self.app.schema_manager.get_schema())

    async def end_call(self, call: CallRecord) -> bool:
        """Record the ended call (idempotently) and defer a job for it. True if the call was new. A repeated
        delivery defers again when no job is waiting, which also recovers a job lost before it was saved."""
        new = await self.store.end_call(call, self.worker.pipeline, now=self.worker.clock.wall())
        await self.defer(call.call_id)
        return new

    async def defer(self, call_id: str, *, at: float | None = None) -> bool:
        """Defer a wake-up job for ``call_id`` now (deduplicated per call) or at ``at`` (epoch seconds)."""
        if at is None:
            deferrer = self._task.configure(queueing_lock=call_id)
        else:
            deferrer = self._task.configure(schedule_at=datetime.datetime.fromtimestamp(at, tz=datetime.UTC))
        try:
            await deferrer.defer_async(call_id=call_id)
        except AlreadyEnqueued:
            return False
        return True

    async def _run_call(self, call_id: str) -> None:
        outcomes: list[StepOutcome] = await self.worker.process_call(call_id)
        retries = [r.next_attempt_at for r in await self.store.steps(call_id) if r.state is StepState.PENDING]
        if retries and any(o.result == "retry" for o in outcomes):
            await self.defer(call_id, at=min(retries))

    async def sweep(self, *, limit: int = 500) -> int:
        """Defer jobs for calls with a step due now. Returns how many jobs were deferred."""
        due = await self.store.due_calls(until=self.worker.clock.wall(), limit=limit)
        return sum([await self.defer(call_id) for call_id, _ in due])

    async def run_worker(
        self,
        *,
        concurrency: int = 4,
        sweep_interval: float = 5.0,
        fetch_interval: float = 1.0,
        install_signal_handlers: bool = True,
    ) -> None:
        """Run a procrastinate worker on this runner's queue, plus the sweeper, until the worker stops
        (SIGINT/SIGTERM when ``install_signal_handlers``, or cancellation). New jobs arrive by LISTEN/NOTIFY;
        ``fetch_interval`` bounds how late a scheduled (retry) job starts."""
        sweeper = asyncio.create_task(self._sweep_forever(sweep_interval))
        try:
            await self.app.run_worker_async(
                queues=[self.queue],
                concurrency=concurrency,
                install_signal_handlers=install_signal_handlers,
                delete_jobs="successful",
                fetch_job_polling_interval=fetch_interval,
            )
        finally:
            sweeper.cancel()
            await asyncio.wait([sweeper])

    async def _sweep_forever(self, interval: float) -> None:
        while True:
            try:
                n = await self.sweep()
            except (StepStoreError, psycopg.Error, procrastinate.exceptions.ProcrastinateException):
                log.warning("pipeline sweeper failed; trying again in %.1fs", interval, exc_info=True)
            else:
                if n:
                    log.info("pipeline sweeper deferred %d job(s) for due steps", n)
            await asyncio.sleep(interval)
