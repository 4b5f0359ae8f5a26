"""Workers and the in-process runner on a SQLite store: the four real steps end to end with the offline LLM,
retries with backoff, permanent failures, invalid LLM output, redaction, fencing and lease renewal."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from aoai_realtime.llm import ActionItems, LLMError, LLMOutputError, LocalLLM, Turn, parse_action_items
from aoai_realtime.pipeline import (
    CallRecord,
    Effect,
    FakeClock,
    InProcessRunner,
    Pipeline,
    RetryPolicy,
    SQLiteStepStore,
    StepContext,
    StepSpec,
    StepState,
    StoreIndexer,
    Worker,
    chunk_call,
    default_pipeline,
)

from .helpers import call, echo_pipeline

CALL = CallRecord(
    call_id="visit-1",
    transcript=(
        Turn("user", "The heating is broken again. Can you send a technician by Thursday?"),
        Turn("assistant", "I'll book a technician for Thursday morning. Please keep the boiler room open."),
        Turn("user", "Thanks, that works."),
    ),
    metadata={"persona": "visit"},
)


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SQLiteStepStore]:
    store = SQLiteStepStore(tmp_path / "steps.db")
    yield store
    await store.close()


async def test_default_pipeline_end_to_end(sqlite_store: SQLiteStepStore) -> None:
    store = sqlite_store
    pipeline = default_pipeline(llm=LocalLLM(), indexer=StoreIndexer(store))
    await store.setup(pipeline)
    await store.end_call(CALL, pipeline, now=0)
    outcomes = await Worker(pipeline, store).run_until_idle()
    assert sorted((o.step, o.result) for o in outcomes) == [
        ("action_items", "generated"), ("index", "generated"), ("review_thread", "generated"), ("summary", "generated")]
    assert outcomes[-1].step == "index"  # only after the summary

    [summary] = await store.effects("visit-1", "summary")
    assert summary.content_type == "text/markdown" and summary.body.startswith("## Summary")
    [items] = await store.effects("visit-1", "action_items")
    parsed = parse_action_items(items.body)
    assert [i.description for i in parsed.action_items] == [
        "Send a technician by Thursday", "Book a technician for Thursday morning", "Keep the boiler room open"]
    [thread] = await store.effects("visit-1", "review_thread")
    assert json.loads(thread.body)["messages"] == [{"author": t.role, "text": t.text} for t in CALL.transcript]
    chunks = [text for _, _, text in await store.index_chunks("visit-1")]
    assert chunks == chunk_call(CALL.transcript, summary.body)


async def test_in_process_runner_is_woken_by_end_call(sqlite_store: SQLiteStepStore) -> None:
    done = asyncio.Event()
    seen: list[str] = []

    async def step(ctx: StepContext) -> Effect:
        seen.append(ctx.call.call_id)
        if len(seen) == 3:
            done.set()
        return Effect("text/plain", "x")

    pipeline = Pipeline(steps=(StepSpec("only", step),))
    await sqlite_store.setup(pipeline)
    # An hour-long poll interval: only end_call's wake-up can make the workers look.
    async with InProcessRunner(pipeline, sqlite_store, concurrency=2, poll_interval=3600) as runner:
        for i in range(3):
            assert await runner.end_call(call(i))
        assert not await runner.end_call(call(0))
        await asyncio.wait_for(done.wait(), timeout=30)
    assert sorted(seen) == ["call-0", "call-1", "call-2"]


async def test_failure_is_retried_after_exponential_backoff_with_jitter(sqlite_store: SQLiteStepStore) -> None:
    async def flaky(ctx: StepContext) -> Effect:
        if ctx.claim.attempt < 3:
            raise RuntimeError(f"transient {ctx.claim.attempt}")
        return Effect("text/plain", "ok")

    policy = RetryPolicy(max_attempts=5, base_delay=10.0, max_delay=100.0, jitter=0.5)
    pipeline = Pipeline(steps=(StepSpec("flaky", flaky),), retry=policy)
    clock = FakeClock()
    worker = Worker(pipeline, sqlite_store, clock=clock, rng=random.Random(1))
    await sqlite_store.setup(pipeline)
    await sqlite_store.end_call(call(1), pipeline, now=clock.now())
    delays = []
    for attempt, base in ((1, 10.0), (2, 20.0)):
        [outcome] = await worker.run_until_idle()
        expected = (attempt, "retry", f"RuntimeError: transient {attempt}")
        assert (outcome.attempt, outcome.result, outcome.error) == expected
        [row] = await sqlite_store.steps("call-1")
        delay = row.next_attempt_at - clock.now()
        assert base * 0.5 <= delay <= base  # exponential, jittered down by at most half
        delays.append(delay)
        clock.advance(delay - 0.01)
        assert await worker.run_until_idle() == []  # not before its time
        clock.advance(0.01)
    [outcome] = await worker.run_until_idle()
    assert (outcome.attempt, outcome.result) == (3, "generated")
    assert delays[0] != 10.0 or delays[1] != 20.0  # jitter is applied


async def test_poison_step_ends_failed_and_visible(sqlite_store: SQLiteStepStore) -> None:
    async def poison(ctx: StepContext) -> Effect:
        raise ValueError("cannot parse this transcript")

    pipeline = echo_pipeline(max_attempts=3, run=poison)
    clock = FakeClock()
    worker = Worker(pipeline, sqlite_store, clock=clock)
    await sqlite_store.setup(pipeline)
    await sqlite_store.end_call(call(1), pipeline, now=clock.now())
    results = []
    for _ in range(3):
        results += [o.result for o in await worker.run_until_idle() if o.step == "summary"]
        clock.advance(1000)
    assert results == ["retry", "retry", "failed"]
    rows = {r.step: r for r in await sqlite_store.steps("call-1")}
    assert rows["summary"].state is StepState.FAILED and rows["summary"].attempts == 3
    assert rows["summary"].last_error == "ValueError: cannot parse this transcript"
    assert rows["index"].state is StepState.FAILED  # it depended on the summary


class _FakeLLM:
    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    async def summarize(self, transcript: Sequence[Turn]) -> str:
        return "## Summary"

    async def extract_action_items(self, transcript: Sequence[Turn]) -> ActionItems:
        self.calls += 1
        raise self.error


async def test_non_retryable_llm_error_fails_at_once(sqlite_store: SQLiteStepStore) -> None:
    llm = _FakeLLM(LLMError("refused the credentials (HTTP 401)", retryable=False, status=401))
    pipeline = default_pipeline(llm=llm, indexer=StoreIndexer(sqlite_store))
    await sqlite_store.setup(pipeline)
    await sqlite_store.end_call(CALL, pipeline, now=0)
    outcomes = await Worker(pipeline, sqlite_store).run_until_idle()
    assert [(o.result, o.attempt) for o in outcomes if o.step == "action_items"] == [("failed", 1)]
    assert llm.calls == 1


async def test_invalid_action_items_fail_with_the_reason(sqlite_store: SQLiteStepStore) -> None:
    try:
        parse_action_items('{"action_items": [{"description": "", "owner": null, "due": null, "priority": "low"}]}')
    except LLMOutputError as exc:
        invalid = exc
    llm = _FakeLLM(invalid)
    pipeline = default_pipeline(llm=llm, indexer=StoreIndexer(sqlite_store), retry=RetryPolicy(max_attempts=2))
    clock = FakeClock()
    await sqlite_store.setup(pipeline)
    await sqlite_store.end_call(CALL, pipeline, now=clock.now())
    worker = Worker(pipeline, sqlite_store, clock=clock)
    await worker.run_until_idle()
    clock.advance(1000)
    await worker.run_until_idle()
    row = next(r for r in await sqlite_store.steps("visit-1") if r.step == "action_items")
    assert row.state is StepState.FAILED and row.attempts == 2 and llm.calls == 2
    assert "description" in (row.last_error or "") and "LLMOutputError" in (row.last_error or "")
    assert await sqlite_store.effects("visit-1", "action_items") == []


async def test_secrets_in_step_errors_are_redacted(sqlite_store: SQLiteStepStore) -> None:
    async def leaky(ctx: StepContext) -> Effect:
        raise RuntimeError("POST failed with api-key=0123456789abcdef0123456789abcdef")

    pipeline = Pipeline(steps=(StepSpec("leaky", leaky),))
    await sqlite_store.setup(pipeline)
    await sqlite_store.end_call(call(1), pipeline, now=0)
    [outcome] = await Worker(pipeline, sqlite_store).run_until_idle()
    [row] = await sqlite_store.steps("call-1")
    assert "0123456789abcdef" not in (row.last_error or "") and "***" in (row.last_error or "")
    assert outcome.error == row.last_error


async def test_zombie_worker_outcome_is_fenced(sqlite_store: SQLiteStepStore) -> None:
    pipeline = echo_pipeline(lease=10)
    clock = FakeClock()
    await sqlite_store.setup(pipeline)
    await sqlite_store.end_call(call(1), pipeline, now=clock.now())
    zombie = await sqlite_store.claim(now=clock.now(), step="summary")
    assert zombie is not None
    clock.advance(11)
    worker = Worker(pipeline, sqlite_store, clock=clock)
    fresh = await worker.run_one(step="summary")
    assert fresh is not None and fresh.result == "generated"
    late = await worker.run_claim(zombie)  # the zombie finishes its work after all
    assert late.result == "fenced"
    assert len(await sqlite_store.effects("call-1", "summary")) == 1


async def test_lease_is_renewed_while_a_long_step_runs(sqlite_store: SQLiteStepStore) -> None:
    release = asyncio.Event()
    started = asyncio.Event()

    async def slow(ctx: StepContext) -> Effect:
        started.set()
        await release.wait()
        return Effect("text/plain", "slow")

    pipeline = Pipeline(steps=(StepSpec("slow", slow, lease_seconds=0.3),))
    await sqlite_store.setup(pipeline)
    await sqlite_store.end_call(call(1), pipeline, now=0)
    task = asyncio.create_task(Worker(pipeline, sqlite_store).run_one())
    await asyncio.wait_for(started.wait(), timeout=30)
    [first] = await sqlite_store.steps("call-1")
    for _ in range(300):  # synchronize on the store: wait until the renewer has moved the lease
        [row] = await sqlite_store.steps("call-1")
        if row.lease_expires_at != first.lease_expires_at:
            break
        await asyncio.sleep(0.05)
    assert row.lease_expires_at is not None and first.lease_expires_at is not None
    assert row.lease_expires_at > first.lease_expires_at and row.claim_token == first.claim_token
    release.set()
    outcome = await task
    assert outcome is not None and outcome.result == "generated"
