"""The steps-store contract, run on SQLite and on a real PostgreSQL: idempotent end of call, atomic claim
with dependencies and leases, token-fenced commit (zombies change nothing), retries and failure."""

from __future__ import annotations

import pytest

from aoai_realtime.pipeline import Effect, FakeClock, Pipeline, StepSpec, StepState, StepStore, StepStoreError

from .helpers import call, echo, echo_pipeline

P = echo_pipeline(max_attempts=3, lease=30.0)


async def _claims(store: StepStore, clock: FakeClock, **kw: str) -> list[tuple[str, str]]:
    out = []
    while (c := await store.claim(now=clock.now(), **kw)) is not None:
        out.append((c.call_id, c.step))
    return out


async def test_end_call_is_idempotent(store: StepStore) -> None:
    clock = FakeClock()
    await store.setup(P)
    await store.setup(P)  # setup is idempotent too
    assert await store.end_call(call(1), P, now=clock.now()) is True
    changed = call(1).__class__(call_id="call-1", transcript=(), metadata={})
    assert await store.end_call(changed, P, now=clock.now()) is False
    rows = await store.steps("call-1")
    assert sorted(r.step for r in rows) == ["action_items", "index", "review_thread", "summary"]
    assert {r.state for r in rows} == {StepState.PENDING}
    assert (await store.load_call("call-1")).transcript == call(1).transcript  # the first delivery wins
    with pytest.raises(StepStoreError, match="no call"):
        await store.load_call("nope")


async def test_claim_respects_dependencies_and_is_exclusive(store: StepStore) -> None:
    clock = FakeClock()
    await store.setup(P)
    await store.end_call(call(1), P, now=clock.now())
    first = await _claims(store, clock)
    # index waits for summary; each step is claimed once
    assert sorted(s for _, s in first) == ["action_items", "review_thread", "summary"]
    claim = next(c for c in await store.steps("call-1") if c.step == "summary")
    assert claim.state is StepState.GENERATING and claim.attempts == 1
    assert claim.lease_expires_at == clock.now() + 30.0


async def test_complete_unlocks_dependents_and_writes_one_effect(store: StepStore) -> None:
    clock = FakeClock()
    await store.setup(P)
    await store.end_call(call(1), P, now=clock.now())
    summary = await store.claim(now=clock.now(), step="summary")
    assert summary is not None
    assert await store.claim(now=clock.now(), step="index") is None
    assert await store.complete(summary, Effect("text/markdown", "# s"), now=clock.now())
    assert not await store.complete(summary, Effect("text/markdown", "# again"), now=clock.now())
    index = await store.claim(now=clock.now(), step="index")
    assert index is not None and index.call_id == "call-1"
    effects = await store.effects("call-1", "summary")
    assert [(e.body, e.claim_token) for e in effects] == [("# s", summary.token)]


async def test_zombie_is_fenced_after_reclaim(store: StepStore) -> None:
    clock = FakeClock()
    await store.setup(P)
    await store.end_call(call(1), P, now=clock.now())
    zombie = await store.claim(now=clock.now(), step="summary")
    assert zombie is not None
    clock.advance(29.9)
    assert await store.claim(now=clock.now(), step="summary") is None  # lease still held
    clock.advance(0.2)
    fresh = await store.claim(now=clock.now(), step="summary")
    assert fresh is not None and fresh.token != zombie.token and fresh.attempt == 2
    # The zombie wakes up: it can neither renew, nor commit, nor record a failure.
    assert not await store.extend_lease(zombie, now=clock.now(), lease_seconds=30)
    assert not await store.complete(zombie, Effect("text/plain", "zombie"), now=clock.now())
    assert await store.fail(zombie, error="x", now=clock.now(), retry_at=clock.now()) is None
    assert await store.complete(fresh, Effect("text/plain", "fresh"), now=clock.now())
    assert [e.body for e in await store.effects("call-1", "summary")] == ["fresh"]
    # ... and after the fresh worker committed, the zombie still changes nothing.
    assert not await store.complete(zombie, Effect("text/plain", "zombie"), now=clock.now())
    assert [e.body for e in await store.effects("call-1", "summary")] == ["fresh"]


async def test_a_late_worker_whose_lease_expired_unclaimed_may_still_commit(store: StepStore) -> None:
    # The token is the fence, the lease only permits a reclaim: nobody else took the step, so the commit is
    # still the only one.
    clock = FakeClock()
    await store.setup(P)
    await store.end_call(call(1), P, now=clock.now())
    late = await store.claim(now=clock.now(), step="summary")
    assert late is not None
    clock.advance(100)
    assert await store.complete(late, Effect("text/plain", "late"), now=clock.now())
    assert await store.claim(now=clock.now(), step="summary") is None


async def test_renewed_lease_is_not_reclaimed(store: StepStore) -> None:
    clock = FakeClock()
    await store.setup(P)
    await store.end_call(call(1), P, now=clock.now())
    c = await store.claim(now=clock.now(), step="summary")
    assert c is not None
    clock.advance(20)
    assert await store.extend_lease(c, now=clock.now(), lease_seconds=30)
    clock.advance(20)  # 40 s after the claim, 20 s after the renewal
    assert await store.claim(now=clock.now(), step="summary") is None


async def test_failed_attempt_backs_off_then_retries(store: StepStore) -> None:
    clock = FakeClock()
    await store.setup(P)
    await store.end_call(call(1), P, now=clock.now())
    c = await store.claim(now=clock.now(), step="summary")
    assert c is not None
    state = await store.fail(c, error="boom", now=clock.now(), retry_at=clock.now() + 5)
    assert state is StepState.PENDING
    row = next(r for r in await store.steps("call-1") if r.step == "summary")
    assert (row.last_error, row.next_attempt_at, row.claim_token) == ("boom", clock.now() + 5, c.token)
    clock.advance(4.9)
    assert await store.claim(now=clock.now(), step="summary") is None
    clock.advance(0.1)
    again = await store.claim(now=clock.now(), step="summary")
    assert again is not None and again.attempt == 2


async def test_poison_step_fails_after_max_attempts_and_fails_its_dependents(store: StepStore) -> None:
    clock = FakeClock()
    await store.setup(P)
    await store.end_call(call(1), P, now=clock.now())
    states = []
    for _ in range(3):
        c = await store.claim(now=clock.now(), step="summary")
        assert c is not None
        states.append(await store.fail(c, error=f"bad {c.attempt}", now=clock.now(), retry_at=clock.now()))
    assert states == [StepState.PENDING, StepState.PENDING, StepState.FAILED]
    assert await store.claim(now=clock.now(), step="summary") is None
    rows = {r.step: r for r in await store.steps("call-1")}
    assert (rows["summary"].state, rows["summary"].attempts, rows["summary"].last_error) == (
        StepState.FAILED, 3, "bad 3")
    assert rows["index"].state is StepState.FAILED and "depends on failed" in (rows["index"].last_error or "")
    assert rows["action_items"].state is StepState.PENDING  # independent steps are unaffected
    assert await store.effects("call-1", "summary") == []


async def test_permanent_failure_skips_retries(store: StepStore) -> None:
    clock = FakeClock()
    await store.setup(P)
    await store.end_call(call(1), P, now=clock.now())
    c = await store.claim(now=clock.now(), step="review_thread")
    assert c is not None
    assert await store.fail(c, error="bad input", now=clock.now(), retry_at=0, permanent=True) is StepState.FAILED


async def test_lease_expiring_on_last_attempt_fails_the_step(store: StepStore) -> None:
    clock = FakeClock()
    await store.setup(P)
    await store.end_call(call(1), P, now=clock.now())
    for _ in range(3):  # three workers die mid-step, one after the other
        c = await store.claim(now=clock.now(), step="summary")
        assert c is not None
        clock.advance(31)
    assert await store.claim(now=clock.now(), call_id="call-1", step="summary") is None
    rows = {r.step: r for r in await store.steps("call-1")}
    assert rows["summary"].state is StepState.FAILED and "lease expired" in (rows["summary"].last_error or "")
    assert rows["index"].state is StepState.FAILED
    assert (await store.state_counts())[StepState.FAILED] == 2


async def test_claim_filters_by_call(store: StepStore) -> None:
    clock = FakeClock()
    await store.setup(P)
    for i in range(3):
        await store.end_call(call(i), P, now=clock.now())
    got = await _claims(store, clock, call_id="call-2")
    assert {c for c, _ in got} == {"call-2"} and len(got) == 3


async def test_index_chunks_are_replaced_not_appended(store: StepStore) -> None:
    await store.setup(P)
    await store.end_call(call(1), P, now=0)
    await store.replace_index_chunks("call-1", "index", ["a", "b", "c"])
    await store.replace_index_chunks("call-1", "index", ["a", "b"])
    assert await store.index_chunks("call-1") == [("index", 0, "a"), ("index", 1, "b")]


async def test_due_calls_reports_retry_times_and_lease_expiries(store: StepStore) -> None:
    clock = FakeClock()
    one = Pipeline(steps=(StepSpec("only", echo, lease_seconds=10),))
    await store.setup(one)
    for i in range(3):
        await store.end_call(call(i), one, now=clock.now())
    a = await store.claim(now=clock.now(), call_id="call-0")
    b = await store.claim(now=clock.now(), call_id="call-1")
    assert a is not None and b is not None
    await store.fail(b, error="x", now=clock.now(), retry_at=clock.now() + 3)
    t0 = clock.now()
    assert await store.due_calls(until=t0) == [("call-2", t0)]
    assert await store.due_calls(until=t0 + 5) == [("call-2", t0), ("call-1", t0 + 3)]
    assert await store.due_calls(until=t0 + 10, limit=10) == [("call-2", t0), ("call-1", t0 + 3), ("call-0", t0 + 10)]
    assert await store.due_calls(until=t0 + 10, limit=1) == [("call-2", t0)]
