"""Pipeline benchmark: claim and no-op step throughput per worker on SQLite and PostgreSQL, and the time from
a worker's death (SIGKILL, mid-step) to its step done again by another worker.

    aoai-realtime bench pipeline [--seconds 3] [--calls 2000] [--lease 1.0] [--poll 0.25] [--repeat 5]

Figures (both stores measured side by side in one run; the machine is shared, so compare ratios):

- ``claims/s``: one worker claiming as fast as it can (claim only, nothing completed).
- ``steps/s per worker``: claim + no-op step + fenced commit, sequentially, with 1 and with 4 workers.
- ``recovery``: a child process claims a step and is SIGKILLed; an in-process runner with the given lease and
  poll interval is already running. Time from the kill to the step's commit; it is the lease left at the kill
  (about ``lease``) plus up to one ``poll`` interval, printed next to those two so the split is visible.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import typer

from ..llm.types import Turn
from ..pipeline.model import CallRecord, Effect, Pipeline, RetryPolicy, StepContext, StepSpec
from ..pipeline.postgres_store import PostgresStepStore
from ..pipeline.runner import Worker
from ..pipeline.sqlite_store import SQLiteStepStore
from ..pipeline.store import StepStore


async def _noop(ctx: StepContext) -> Effect:
    return Effect("text/plain", repr(time.time()))


async def _hang(ctx: StepContext) -> Effect:
    print("started", flush=True)
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def _pipeline(run: Callable[[StepContext], object] = _noop, lease: float = 60.0) -> Pipeline:
    return Pipeline(steps=(StepSpec("noop", run, lease_seconds=lease),),  # type: ignore[arg-type]
                    retry=RetryPolicy(max_attempts=3))


def _call(i: int) -> CallRecord:
    return CallRecord(call_id=f"bench-{i}", transcript=(Turn("user", "hello"),))


@contextlib.asynccontextmanager
async def _stores(pg_dsn: str, tmp: Path) -> AsyncIterator[list[tuple[str, Callable[[str], StepStore]]]]:
    """Factories making an empty store of each kind (a fresh SQLite file / PostgreSQL database per name)."""
    server = None
    if not pg_dsn:
        from pgserver import get_server  # type: ignore[attr-defined]

        os.environ.setdefault("XDG_RUNTIME_DIR", str(tmp))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = get_server(tmp / "pg", cleanup_mode="stop")
        pg_dsn = server.get_uri()
    import psycopg

    def sqlite(name: str) -> StepStore:
        return SQLiteStepStore(tmp / f"{name}.db", max_connections=8)

    def postgres(name: str) -> StepStore:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name}")
        base, _, query = pg_dsn.partition("?")
        return PostgresStepStore(f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else ""),
                                 max_connections=8)

    try:
        yield [("sqlite", sqlite), ("postgres", postgres)]
    finally:
        if server is not None:
            server.cleanup()


async def _open(store: StepStore) -> StepStore:
    if isinstance(store, PostgresStepStore):
        await store.open()
    return store


async def _fill(store: StepStore, pipeline: Pipeline, calls: int) -> None:
    await store.setup(pipeline)
    sem = asyncio.Semaphore(16)

    async def one(i: int) -> None:
        async with sem:
            await store.end_call(_call(i), pipeline, now=0.0)

    async with asyncio.TaskGroup() as tg:
        for i in range(calls):
            tg.create_task(one(i))
    if isinstance(store, PostgresStepStore):
        # Steady state: autovacuum has analyzed the table. Right after a bulk load on a fresh table the planner
        # has no statistics and may sort every open step per claim instead of walking the index in order.
        import psycopg

        async with await psycopg.AsyncConnection.connect(store.conninfo, autocommit=True) as conn:
            await conn.execute("ANALYZE pipeline_steps")


async def _claims_per_second(store: StepStore, seconds: float) -> float:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds and await store.claim(now=time.time()) is not None:
        n += 1
    return n / (time.perf_counter() - start)


async def _steps_per_second_per_worker(store: StepStore, pipeline: Pipeline, workers: int, seconds: float) -> float:
    worker = Worker(pipeline, store, renew_leases=False)
    counts = [0] * workers
    start = time.perf_counter()

    async def loop(k: int) -> None:
        while time.perf_counter() - start < seconds:
            outcome = await worker.run_one()
            if outcome is None:
                return
            counts[k] += 1

    async with asyncio.TaskGroup() as tg:
        for k in range(workers):
            tg.create_task(loop(k))
    return sum(counts) / (time.perf_counter() - start) / workers


async def _recovery(store: StepStore, target: str, lease: float, poll: float, run: int) -> float:
    pipeline = _pipeline(_noop, lease)
    call = _call(10_000 + run)
    await store.end_call(call, pipeline, now=0.0)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aoai_realtime.bench.pipeline", "--child", target, call.call_id, str(lease),
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    await child.stdout.readline()  # the child holds the claim and is inside the step

    async def recoverer() -> None:
        # What an idle in-process runner does: look for work, sleep one poll interval when there is none.
        worker = Worker(pipeline, store)
        await asyncio.sleep(random.uniform(0, poll))  # an already running runner is at a random poll phase
        while await worker.run_one(call_id=call.call_id) is None:  # noqa: ASYNC110 - the poll is what we measure
            await asyncio.sleep(poll)

    task = asyncio.create_task(recoverer())
    child.send_signal(signal.SIGKILL)
    killed = time.time()
    await child.wait()
    await asyncio.wait_for(task, timeout=lease + poll + 60)
    [effect] = await store.effects(call.call_id, "noop")
    return effect.created_at - killed


async def run(*, seconds: float, calls: int, lease: float, poll: float, repeat: int, pg_dsn: str = "") -> None:
    tmp = Path(tempfile.mkdtemp(prefix="aoai-bench-pipeline-"))
    print(f"pipeline benchmark: {os.cpu_count()} cpus, {calls} calls per throughput run, {seconds:.1f} s per "
          f"figure; recovery with lease {lease:.2f} s, poll {poll:.2f} s, {repeat} runs")
    async with _stores(pg_dsn, tmp) as kinds:
        rows = []
        for kind, make in kinds:
            pipeline = _pipeline()
            s = await _open(make("bench_claims"))
            await _fill(s, pipeline, calls)
            claims = await _claims_per_second(s, seconds)
            await s.close()
            per_worker = {}
            for workers in (1, 4):
                s = await _open(make(f"bench_steps_{workers}"))
                await _fill(s, pipeline, calls)
                per_worker[workers] = await _steps_per_second_per_worker(s, pipeline, workers, seconds)
                await s.close()
            s = await _open(make("bench_recovery"))
            await s.setup(_pipeline(_noop, lease))
            target = str(tmp / "bench_recovery.db") if kind == "sqlite" else s.conninfo  # type: ignore[attr-defined]
            times = [await _recovery(s, target, lease, poll, r) for r in range(repeat)]
            await s.close()
            rows.append((kind, claims, per_worker[1], per_worker[4], times))
        print(f"{'store':<9} {'claims/s':>9} {'steps/s/worker (1)':>19} {'steps/s/worker (4)':>19}   "
              f"death->done median [min..max] s   (lease {lease:.2f} + poll <= {poll:.2f})")
        for kind, claims, one, four, times in rows:
            med = statistics.median(times)
            print(f"{kind:<9} {claims:>9.0f} {one:>19.0f} {four:>19.0f}   {med:.3f} "
                  f"[{min(times):.3f}..{max(times):.3f}]   (minus lease: median {med - lease:.3f})")


async def _child(target: str, call_id: str, lease: float) -> None:
    store = await _open(PostgresStepStore(target) if target.startswith("postgres") else SQLiteStepStore(target))
    pipeline = _pipeline(_hang, lease)
    await Worker(pipeline, store, renew_leases=False).run_one(call_id=call_id)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--lease", type=float, default=1.0)
    parser.add_argument("--poll", type=float, default=0.25)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pg-dsn", default="")
    parser.add_argument("--child", nargs=3, metavar=("TARGET", "CALL_ID", "LEASE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(_child(args.child[0], args.child[1], float(args.child[2])))
        return
    asyncio.run(run(seconds=args.seconds, calls=args.calls, lease=args.lease, poll=args.poll, repeat=args.repeat,
                    pg_dsn=args.pg_dsn))


if __name__ == "__main__":
    main()


def register(bench_app: typer.Typer) -> None:
    """Add ``pipeline`` to the ``bench`` sub-app."""

    @bench_app.command("pipeline")
    def bench_pipeline(
        seconds: float = typer.Option(3.0, help="Seconds per throughput figure."),
        calls: int = typer.Option(2000, help="Calls enqueued for the throughput figures."),
        lease: float = typer.Option(1.0, help="Lease (s) for the recovery figure."),
        poll: float = typer.Option(0.25, help="Poll interval (s) for the recovery figure."),
        repeat: int = typer.Option(5, help="Recovery runs per store (medians are printed)."),
        pg_dsn: str = typer.Option("", help="PostgreSQL DSN; default: start one with pgserver."),
    ) -> None:
        """Claims and no-op steps per second per worker on SQLite and PostgreSQL; worker death to step done."""
        asyncio.run(run(seconds=seconds, calls=calls, lease=lease, poll=poll, repeat=repeat, pg_dsn=pg_dsn))
