"""Running steps: :class:`Worker` claims one step, runs it while renewing its lease, and commits the effect
or records the failure, all fenced by the claim token. :class:`InProcessRunner` runs a few workers as
asyncio tasks in the app's process (the default); the procrastinate runner drives the same :class:`Worker`
from many processes."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
from types import TracebackType
from typing import Final, Literal

from ..errors import get_logger, redact
from ..llm.types import LLMError
from .model import (
    CallRecord,
    Claim,
    Clock,
    CorruptRow,
    PermanentStepError,
    Pipeline,
    StepContext,
    StepState,
    StepStoreError,
    StoredEffect,
    SystemClock,
)
from .store import StepStore

__all__ = ["InProcessRunner", "StepOutcome", "Worker"]

log = get_logger(__name__)

_MAX_ERROR_CHARS: Final = 2000

Result = Literal["generated", "retry", "failed", "fenced"]


@dataclasses.dataclass(frozen=True, slots=True)
class StepOutcome:
    """What one claimed attempt came to. ``fenced``: the claim was lost before the commit (lease expired and
    someone else took the step, or it was failed); nothing this attempt did was written."""

    call_id: str
    step: str
    attempt: int
    result: Result
    error: str | None = None


class Worker:
    """Claims and runs steps of ``pipeline`` on ``store``. Cheap; share one per process or make many.
    ``clock`` and ``rng`` (backoff jitter) are injectable for tests."""

    def __init__(
        self,
        pipeline: Pipeline,
        store: StepStore,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        renew_leases: bool = True,
    ) -> None:
        self.pipeline = pipeline
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._renew_leases = renew_leases

    async def run_one(self, *, call_id: str | None = None, step: str | None = None) -> StepOutcome | None:
        """Claim one claimable step (optionally of one call or one step name) and run it; None if none."""
        claim = await self.store.claim(now=self.clock.wall(), call_id=call_id, step=step)
        if claim is None:
            return None
        return await self.run_claim(claim)

    async def process_call(self, call_id: str) -> list[StepOutcome]:
        """Run every step of one call that is claimable now, dependencies included, until none is left."""
        outcomes: list[StepOutcome] = []
        while (outcome := await self.run_one(call_id=call_id)) is not None:
            outcomes.append(outcome)
        return outcomes

    async def run_until_idle(self) -> list[StepOutcome]:
        """Run steps of any call until nothing is claimable now (retries waiting on backoff are not)."""
        outcomes: list[StepOutcome] = []
        while (outcome := await self.run_one()) is not None:
            outcomes.append(outcome)
        return outcomes

    async def run_claim(self, claim: Claim) -> StepOutcome:
        """Run a step this worker has claimed, then commit or record the failure under the claim's fence."""
        spec = self.pipeline.step(claim.step)
        try:
            call = await self.store.load_call(claim.call_id)
            deps = await self._dependencies(call, spec.depends_on)

            async def still_holds() -> bool:
                return await self.store.extend_lease(claim, now=self.clock.wall(), lease_seconds=spec.lease_seconds)

            ctx = StepContext(call=call, claim=claim, dependencies=deps, still_holds=still_holds)
            renewer = asyncio.create_task(self._renew(claim, spec.lease_seconds)) if self._renew_leases else None
            try:
                effect = await spec.run(ctx)
            finally:
                if renewer is not None:
                    renewer.cancel()
                    await asyncio.wait([renewer])
        except CorruptRow as exc:
            return await self._record_failure(claim, exc)  # this step's rows are damaged: fail it, carry on
        except StepStoreError:
            raise  # the store is down: nothing can be recorded; the lease will expire and the step be retried
        except Exception as exc:  # noqa: BLE001 - boundary: a failure of step code is recorded on the step
            return await self._record_failure(claim, exc)
        if await self.store.complete(claim, effect, now=self.clock.wall()):
            log.debug("step %s of call %s generated (attempt %d)", claim.step, claim.call_id, claim.attempt)
            return StepOutcome(claim.call_id, claim.step, claim.attempt, "generated")
        log.warning("step %s of call %s: claim lost before commit; effect discarded", claim.step, claim.call_id)
        return StepOutcome(claim.call_id, claim.step, claim.attempt, "fenced")

    async def _dependencies(self, call: CallRecord, names: tuple[str, ...]) -> dict[str, StoredEffect]:
        deps: dict[str, StoredEffect] = {}
        for name in names:
            effects = await self.store.effects(call.call_id, name)
            if not effects:
                raise CorruptRow(f"step {name!r} of call {call.call_id!r} is generated but its effect is missing")
            deps[name] = effects[0]
        return deps

    async def _record_failure(self, claim: Claim, exc: Exception) -> StepOutcome:
        permanent = isinstance(exc, PermanentStepError | CorruptRow)
        permanent = permanent or (isinstance(exc, LLMError) and not exc.retryable)
        error = redact(f"{type(exc).__name__}: {exc}")[:_MAX_ERROR_CHARS]
        now = self.clock.wall()
        retry_at = now + self.pipeline.retry.delay(claim.attempt, self._rng)
        state = await self.store.fail(claim, error=error, now=now, retry_at=retry_at, permanent=permanent)
        if state is None:
            return StepOutcome(claim.call_id, claim.step, claim.attempt, "fenced", error)
        if state is StepState.FAILED:
            log.error("step %s of call %s failed for good on attempt %d/%d: %s",
                      claim.step, claim.call_id, claim.attempt, claim.max_attempts, error)
            return StepOutcome(claim.call_id, claim.step, claim.attempt, "failed", error)
        log.warning("step %s of call %s failed on attempt %d/%d, retry in %.1fs: %s",
                    claim.step, claim.call_id, claim.attempt, claim.max_attempts, retry_at - now, error)
        return StepOutcome(claim.call_id, claim.step, claim.attempt, "retry", error)

    async def _renew(self, claim: Claim, lease_seconds: float) -> None:
        # Renew at a third of the lease so two missed renewals still leave time before expiry.
        while True:
            await asyncio.sleep(lease_seconds / 3)
            try:
                if not await self.store.extend_lease(claim, now=self.clock.wall(), lease_seconds=lease_seconds):
                    log.warning("step %s of call %s: lease lost; the commit will be fenced", claim.step, claim.call_id)
                    return
            except StepStoreError:
                log.warning("could not renew the lease of step %s of call %s", claim.step, claim.call_id,
                            exc_info=True)


class InProcessRunner:
    """Runs ``concurrency`` workers as asyncio tasks until the ``async with`` block ends.

    Use :meth:`end_call` to record an ended call: it wakes the workers at once. Steps waiting on a retry or
    on an expired lease of a dead process are found by polling every ``poll_interval`` seconds. On exit,
    running steps are cancelled; their leases expire and another runner takes them over.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        store: StepStore,
        *,
        concurrency: int = 2,
        poll_interval: float = 1.0,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.worker = Worker(pipeline, store, clock=clock, rng=rng)
        self._concurrency = concurrency
        self._poll_interval = poll_interval
        self._wakeups = [asyncio.Event() for _ in range(concurrency)]
        self._tasks: list[asyncio.Task[None]] = []
        self.completed = 0

    async def __aenter__(self) -> InProcessRunner:
        self._tasks = [
            asyncio.create_task(self._loop(i), name=f"pipeline-worker-{i}") for i in range(self._concurrency)
        ]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def end_call(self, call: CallRecord) -> bool:
        """Record the ended call (idempotently) and wake the workers. True if it was new."""
        new = await self.worker.store.end_call(call, self.worker.pipeline, now=self.worker.clock.wall())
        self.wake()
        return new

    def wake(self) -> None:
        """Make idle workers look for work now instead of at their next poll."""
        for event in self._wakeups:
            event.set()

    async def _loop(self, index: int) -> None:
        wakeup = self._wakeups[index]
        while True:
            wakeup.clear()  # before claiming, so a wake() during the claim is not lost
            try:
                outcome = await self.worker.run_one()
            except StepStoreError:
                log.exception("pipeline worker %d: the steps store failed; retrying after the poll interval", index)
                outcome = None
            if outcome is not None:
                self.completed += outcome.result == "generated"
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), self._poll_interval)
