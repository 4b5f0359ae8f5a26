"""The index step into the real memory store (SQLite + sqlite-vec, hashed embeddings): the call lands in
memory once, a retry replaces instead of duplicating, and a zombie whose claim was lost writes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import aoai_realtime.memory as memory
from aoai_realtime.llm import LocalLLM, Turn
from aoai_realtime.pipeline import (
    CallRecord,
    FakeClock,
    MemoryIndexer,
    SQLiteStepStore,
    StepState,
    Worker,
    default_pipeline,
)

CALL = CallRecord(
    call_id="mem-1",
    transcript=(Turn("user", "My daughter's recital is on the 14th."), Turn("assistant", "I'll remember that.")),
    metadata={"owner": "alice"},
)


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[SQLiteStepStore, Any]]:
    steps = SQLiteStepStore(tmp_path / "steps.db")
    mem = await memory.SQLiteStore.open(tmp_path / "memory.db", dim=64)
    try:
        yield steps, mem
    finally:
        await mem.close()
        await steps.close()


async def test_call_is_indexed_once_and_a_retry_replaces_it(stores: tuple[SQLiteStepStore, Any]) -> None:
    steps, mem = stores
    indexer = MemoryIndexer(mem, memory.HashEmbedder(64))
    pipeline = default_pipeline(llm=LocalLLM(), indexer=indexer)
    await steps.setup(pipeline)
    await steps.end_call(CALL, pipeline, now=0)
    await Worker(pipeline, steps).run_until_idle()
    scope = memory.Scope(owner="alice")
    assert await mem.count(scope) == 3  # two turns and the summary
    [summary] = await steps.effects("mem-1", "summary")
    await indexer.index_call(CALL, summary.body)  # what a retry after a crash does
    assert await mem.count(scope) == 3


async def test_zombie_index_step_writes_nothing(stores: tuple[SQLiteStepStore, Any]) -> None:
    steps, mem = stores
    pipeline = default_pipeline(llm=LocalLLM(), indexer=MemoryIndexer(mem, memory.HashEmbedder(64)),
                                 lease_seconds=10)
    clock = FakeClock()
    worker = Worker(pipeline, steps, clock=clock)
    await steps.setup(pipeline)
    await steps.end_call(CALL, pipeline, now=clock.now())
    assert (await worker.run_one(step="summary")) is not None
    zombie = await steps.claim(now=clock.now(), step="index")
    assert zombie is not None
    clock.advance(11)
    fresh = await steps.claim(now=clock.now(), step="index")  # the zombie's lease expired: reclaimed
    assert fresh is not None
    outcome = await worker.run_claim(zombie)
    assert (outcome.result, outcome.error) == ("fenced", "ClaimLost: index of call 'mem-1': claim lost before the "
                                                         "memory write")
    assert await mem.count(memory.Scope(owner="alice")) == 0
    assert (await worker.run_claim(fresh)).result == "generated"
    assert await mem.count(memory.Scope(owner="alice")) == 3
    assert {r.step: r.state for r in await steps.steps("mem-1")}["index"] is StepState.GENERATED


async def test_owner_is_required() -> None:
    from aoai_realtime.errors import ConfigError

    indexer = MemoryIndexer(object(), memory.HashEmbedder(64))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="whose call"):
        await indexer.index_call(CallRecord(call_id="x", transcript=()), "s")
