"""A worker PROCESS killed with SIGKILL in the middle of a step: the step stays ``generating`` (the flaw of
the flag pair), its lease expires, another worker reclaims it and the step completes exactly once.

No sleeping: the test waits for the child's "started" line, checks the store, kills, and then moves a fake
clock past the lease instead of waiting for it."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from aoai_realtime.pipeline import Effect, FakeClock, Pipeline, StepContext, StepSpec, StepState, StepStore, Worker

from .crash_worker import LEASE

pytestmark = pytest.mark.integration

CHILD = Path(__file__).with_name("crash_worker.py")


async def finish(ctx: StepContext) -> Effect:
    return Effect("text/plain", f"done by attempt {ctx.claim.attempt}")


P = Pipeline(steps=(StepSpec("summary", finish, lease_seconds=LEASE),))


async def test_sigkilled_worker_step_is_recovered_after_its_lease_exactly_once(
    store: StepStore, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from .helpers import call

    await store.setup(P)
    await store.end_call(call(1), P, now=0.0)  # due since the epoch: the child's real clock can claim it
    target = str(tmp_path / "steps.db") if request.node.callspec.params["store"] == "sqlite" else (
        request.getfixturevalue("pg_dsn"))
    kind = request.node.callspec.params["store"]
    child = await asyncio.create_subprocess_exec(
        sys.executable, str(CHILD), kind, target, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), timeout=60)
        _, call_id, step, token = line.decode().split()
        [row] = await store.steps(call_id)
        assert (row.state, row.claim_token, row.attempts) == (StepState.GENERATING, token, 1)
    finally:
        child.send_signal(signal.SIGKILL)
        assert await child.wait() == -signal.SIGKILL

    # The dead worker left the step generating, with its lease.
    [row] = await store.steps(call_id)
    assert row.state is StepState.GENERATING and row.lease_expires_at is not None
    clock = FakeClock(start=row.lease_expires_at - 1.0)
    worker = Worker(P, store, clock=clock)
    assert await worker.run_until_idle() == []  # still leased: nobody may take it
    clock.advance(1.0)
    [outcome] = await worker.run_until_idle()
    assert (outcome.step, outcome.attempt, outcome.result) == ("summary", 2, "generated")
    effects = await store.effects(call_id, step)
    assert [e.body for e in effects] == ["done by attempt 2"] and effects[0].claim_token != token
    [row] = await store.steps(call_id)
    assert (row.state, row.attempts) == (StepState.GENERATED, 2)
