"""Exactly-once under concurrency, on SQLite and a real PostgreSQL.

1. 5000 "End Call" deliveries over 1000 calls (five per call, shuffled, many in flight at once, each one
   recording the call and then running whatever steps of that call it can claim): every step has exactly
   one effect per call.
2. The race, forced (300 calls, to keep the suite short; the outcome does not depend on the size): five
   deliverers per call meet at a barrier between "check" and "act". The naive
   check-then-set flags (the production system's pattern) then double-process every call, deterministically;
   the atomic claim lets exactly one of the five through.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from aoai_realtime.pipeline import (
    FakeClock,
    PostgresStepStore,
    SQLiteStepStore,
    StepState,
    StepStore,
    Worker,
)
from aoai_realtime.pipeline.store import EffectCount

from .helpers import call, echo_pipeline

pytestmark = pytest.mark.integration

CALLS = 1000
RACE_CALLS = 300
DELIVERIES_PER_CALL = 5
P = echo_pipeline()


async def test_5000_deliveries_over_1000_calls_give_one_effect_per_step(store: StepStore) -> None:
    await store.setup(P)
    worker = Worker(P, store)
    deliveries = [call(i) for i in range(CALLS) for _ in range(DELIVERIES_PER_CALL)]
    random.Random(7).shuffle(deliveries)
    in_flight = asyncio.Semaphore(32)
    new_calls = 0

    async def deliver(c: Any) -> None:
        nonlocal new_calls
        async with in_flight:
            # (not `new_calls += await ...`: that reads new_calls before the await and loses updates)
            inserted = await store.end_call(c, P, now=worker.clock.now())
            new_calls += inserted
            await worker.process_call(c.call_id)

    async with asyncio.TaskGroup() as tg:
        for c in deliveries:
            tg.create_task(deliver(c))
    await worker.run_until_idle()

    assert new_calls == CALLS
    counts = await store.effect_counts()
    assert counts == {s: EffectCount(rows=CALLS, calls=CALLS) for s in ("summary", "action_items", "index",
                                                                         "review_thread")}
    assert await store.state_counts() == {StepState.GENERATED: 4 * CALLS}
    # index ran after summary and saw its effect
    effects = await store.effects("call-17", "index")
    assert [e.body for e in effects] == ["call-17/index[summary=call-17/summary[]]"]


# -- the forced race -------------------------------------------------------------------------------------

Execute = Callable[[str, dict[str, Any]], Awaitable[list[tuple[Any, ...]]]]


async def _raw_connections(store: StepStore, n: int) -> tuple[list[Execute], Callable[[], Awaitable[None]]]:
    """``n`` independent autocommit connections to the store's database, as plain SQL executors."""
    if isinstance(store, SQLiteStepStore):
        conns = [sqlite3.connect(store._path, isolation_level=None, timeout=30) for _ in range(n)]
        for c in conns:
            c.execute("PRAGMA synchronous=NORMAL")  # as the store's own connections: no fsync per commit

        def sqlite_exec(conn: sqlite3.Connection) -> Execute:
            async def run(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
                return conn.execute(sql, params).fetchall()

            return run

        async def close_sqlite() -> None:
            for c in conns:
                c.close()

        return [sqlite_exec(c) for c in conns], close_sqlite
    assert isinstance(store, PostgresStepStore)
    import psycopg

    from aoai_realtime.pipeline._sql import to_pyformat

    info = store.conninfo
    pconns = [await psycopg.AsyncConnection.connect(info, autocommit=True) for _ in range(n)]

    def pg_exec(conn: psycopg.AsyncConnection[Any]) -> Execute:
        async def run(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
            cur = await conn.execute(to_pyformat(sql), params)
            return await cur.fetchall() if cur.description else []

        return run

    async def close_pg() -> None:
        for c in pconns:
            await c.close()

    return [pg_exec(c) for c in pconns], close_pg


async def _forced_race(
    store: StepStore, act: Callable[[int, str, asyncio.Barrier], Awaitable[None]]
) -> EffectCount:
    """Five deliverers per call, in lockstep: every one runs ``act`` for the same call at the same time."""
    barrier = asyncio.Barrier(DELIVERIES_PER_CALL)

    async def deliverer(k: int) -> None:
        for i in range(RACE_CALLS):
            await act(k, f"call-{i}", barrier)
            await barrier.wait()  # next call only when all five are done with this one

    async with asyncio.TaskGroup() as tg:
        for k in range(DELIVERIES_PER_CALL):
            tg.create_task(deliverer(k))
    return (await store.effect_counts())["summary"]


async def test_forced_race_naive_check_then_set_duplicates_but_atomic_claim_does_not(store: StepStore) -> None:
    clock = FakeClock()
    await store.setup(P)
    for i in range(RACE_CALLS):
        await store.end_call(call(i), P, now=clock.now())
    executors, close = await _raw_connections(store, DELIVERIES_PER_CALL)
    check = "SELECT state FROM pipeline_steps WHERE call_id = :call_id AND step = 'summary'"
    set_generating = "UPDATE pipeline_steps SET state = 'generating' WHERE call_id = :call_id AND step = 'summary'"
    effect = ("INSERT INTO pipeline_effects (call_id, step, claim_token, content_type, body, created_at) "
              "VALUES (:call_id, 'summary', 'naive', 'text/plain', 'x', 0)")
    set_generated = "UPDATE pipeline_steps SET state = 'generated' WHERE call_id = :call_id AND step = 'summary'"

    async def naive(k: int, call_id: str, barrier: asyncio.Barrier) -> None:
        run = executors[k]
        [(state,)] = await run(check, {"call_id": call_id})
        await barrier.wait()  # everyone has checked before anyone sets: the race, forced
        if state == "pending":
            await run(set_generating, {"call_id": call_id})
            await run(effect, {"call_id": call_id})
            await run(set_generated, {"call_id": call_id})

    try:
        naive_counts = await _forced_race(store, naive)
    finally:
        await close()
    # The control must fail: every deliverer saw "pending", so every call was processed five times.
    assert naive_counts == EffectCount(rows=RACE_CALLS * DELIVERIES_PER_CALL, calls=RACE_CALLS)
    assert naive_counts.duplicates == RACE_CALLS * (DELIVERIES_PER_CALL - 1)

    # Same interleaving, the real claim, on the action_items step of the same calls.
    winners: list[str] = []

    async def atomic(k: int, call_id: str, barrier: asyncio.Barrier) -> None:
        await store.end_call(call(call_id.removeprefix("call-")), P, now=clock.now())  # a repeated delivery
        await barrier.wait()  # everyone claims at once
        claim = await store.claim(now=clock.now(), call_id=call_id, step="action_items")
        if claim is not None:
            winners.append(call_id)
            assert await store.complete(claim, _effect(), now=clock.now())

    await _forced_race(store, atomic)
    assert sorted(winners) == sorted(f"call-{i}" for i in range(RACE_CALLS))
    assert (await store.effect_counts())["action_items"] == EffectCount(rows=RACE_CALLS, calls=RACE_CALLS)


def _effect() -> Any:
    from aoai_realtime.pipeline import Effect

    return Effect("text/plain", "once")
