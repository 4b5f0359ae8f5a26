"""Small pipelines and calls shared by the pipeline tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aoai_realtime.llm import Turn
from aoai_realtime.pipeline import CallRecord, Effect, Pipeline, RetryPolicy, StepContext, StepSpec


async def echo(ctx: StepContext) -> Effect:
    """A no-op step whose effect names its call and step (and the summary it read, if any)."""
    dep = ",".join(f"{k}={v.body}" for k, v in sorted(ctx.dependencies.items()))
    return Effect("text/plain", f"{ctx.call.call_id}/{ctx.claim.step}[{dep}]")


def echo_pipeline(
    *, max_attempts: int = 3, lease: float = 30.0, run: Callable[[StepContext], Awaitable[Effect]] = echo
) -> Pipeline:
    """summary, action_items, review_thread independent; index after summary (the real shape)."""
    return Pipeline(
        steps=(
            StepSpec("summary", run, lease_seconds=lease),
            StepSpec("action_items", run, lease_seconds=lease),
            StepSpec("index", run, depends_on=("summary",), lease_seconds=lease),
            StepSpec("review_thread", run, lease_seconds=lease),
        ),
        retry=RetryPolicy(max_attempts=max_attempts, base_delay=1.0, max_delay=8.0, jitter=0.5),
    )


def call(i: int | str) -> CallRecord:
    return CallRecord(
        call_id=f"call-{i}",
        transcript=(Turn("user", f"Please send the report {i} by Friday."), Turn("assistant", "I will do that.")),
        metadata={"n": str(i)},
    )
