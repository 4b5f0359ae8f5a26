"""The interface every steps store implements (:class:`SQLiteStepStore`, :class:`PostgresStepStore`), and
the shared encoding of calls. Times are the caller's clock (seconds since the epoch), passed in so a fake
clock drives both stores the same way."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import msgspec

from ..llm.types import Turn
from .model import CallRecord, Claim, CorruptRow, Effect, Pipeline, StepRow, StepState, StoredEffect

__all__ = ["EffectCount", "StepStore"]


@dataclasses.dataclass(frozen=True, slots=True)
class EffectCount:
    """Effects of one step across calls: ``rows`` written, ``calls`` distinct. Exactly-once means equal."""

    rows: int
    calls: int

    @property
    def duplicates(self) -> int:
        return self.rows - self.calls


class StepStore(Protocol):
    """Claims, leases and fenced effects over a steps table. Every method is safe to call concurrently from
    many tasks, threads and processes. Call :meth:`setup` once per process before anything else."""

    async def setup(self, pipeline: Pipeline) -> None:
        """Create the tables if missing and record the pipeline's step dependencies. Idempotent."""
        ...

    async def end_call(self, call: CallRecord, pipeline: Pipeline, *, now: float) -> bool:
        """Record the call and one pending row per step, idempotently: True the first time, False for any
        repeated delivery (which changes nothing, even with a different transcript)."""
        ...

    async def claim(self, *, now: float, call_id: str | None = None, step: str | None = None) -> Claim | None:
        """Claim one claimable step (optionally of one call / one step name) with a fresh token, or None."""
        ...

    async def extend_lease(self, claim: Claim, *, now: float, lease_seconds: float) -> bool:
        """Renew the lease; False if the claim was lost (reclaimed or failed)."""
        ...

    async def complete(self, claim: Claim, effect: Effect, *, now: float) -> bool:
        """Write the effect and the ``generated`` mark in one transaction, fenced by the claim token.
        False (and nothing written) if the claim is no longer current."""
        ...

    async def fail(
        self, claim: Claim, *, error: str, now: float, retry_at: float, permanent: bool = False
    ) -> StepState | None:
        """Record a failed attempt: back to ``pending`` until ``retry_at``, or ``failed`` when attempts are
        exhausted or ``permanent``. Returns the new state, or None if the claim is no longer current."""
        ...

    async def load_call(self, call_id: str) -> CallRecord:
        """The recorded call. Raises :class:`CorruptRow` when it is missing (its steps outlived it) or unreadable."""
        ...

    async def effects(self, call_id: str, step: str) -> list[StoredEffect]: ...

    async def steps(self, call_id: str | None = None) -> list[StepRow]:
        """Every step row (of one call), for inspection. A damaged row comes back with ``problem`` set."""
        ...

    async def effect_counts(self) -> dict[str, EffectCount]: ...

    async def state_counts(self) -> dict[StepState, int]: ...

    async def due_calls(self, *, until: float, limit: int = 100) -> list[tuple[str, float]]:
        """Calls with a pending or generating step due (retry time or lease expiry) at or before ``until``,
        earliest first, with that time. Dependencies are not checked (a woken runner just finds nothing)."""
        ...

    async def replace_index_chunks(self, call_id: str, key: str, texts: Sequence[str]) -> None:
        """Replace the chunks stored under ``(call_id, key)`` in one transaction (an overwrite, so a retry
        never duplicates). Used by :class:`StoreIndexer`."""
        ...

    async def index_chunks(self, call_id: str) -> list[tuple[str, int, str]]: ...

    async def close(self) -> None: ...


def encode_call(call: CallRecord) -> tuple[str, str]:
    return (
        msgspec.json.encode(list(call.transcript)).decode(),
        msgspec.json.encode(dict(call.metadata)).decode(),
    )


def decode_call(call_id: str, transcript: str, metadata: str) -> CallRecord:
    """Decode a stored call; :class:`CorruptRow` if its JSON is damaged."""
    try:
        turns = msgspec.json.decode(transcript, type=list[Turn])
        meta = msgspec.json.decode(metadata, type=dict[str, str])
    except (msgspec.DecodeError, msgspec.ValidationError, TypeError) as exc:
        raise CorruptRow(f"the record of call {call_id!r} cannot be read ({exc})") from None
    return CallRecord(call_id=call_id, transcript=tuple(turns), metadata=meta)


def missing_call(call_id: str) -> CorruptRow:
    return CorruptRow(f"no call {call_id!r} in the steps store: its steps outlived the call record (deleted?)")


def _number(value: Any, column: str, problems: list[str], *, whole: bool = False) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or (whole and not number.is_integer()):
        problems.append(f"{column} {value!r} is not {'a count' if whole else 'a time'}")
        return math.nan
    return number


def row_to_step(row: Sequence[Any]) -> StepRow:
    """A :class:`StepRow`; never raises on damaged numbers (they become NaN and ``problem`` says which)."""
    (call_id, step, state, token, lease, attempts, max_attempts, next_at, error, created, updated) = row
    problems: list[str] = []
    next_attempt_at = _number(next_at, "next_attempt_at", problems)
    lease_at = None if lease is None else _number(lease, "lease_expires_at", problems)
    counts = [_number(v, c, problems, whole=True) for v, c in ((attempts, "attempts"), (max_attempts, "max_attempts"))]
    created_at, updated_at = _number(created, "created_at", problems), _number(updated, "updated_at", problems)
    return StepRow(
        call_id=str(call_id),
        step=str(step),
        state=StepState(state),
        claim_token=None if token is None else str(token),
        lease_expires_at=lease_at,
        attempts=-1 if math.isnan(counts[0]) else int(counts[0]),
        max_attempts=-1 if math.isnan(counts[1]) else int(counts[1]),
        next_attempt_at=next_attempt_at,
        last_error=None if error is None else str(error),
        created_at=created_at,
        updated_at=updated_at,
        problem="; ".join(problems) or None,
    )


def row_to_claim(row: Sequence[Any]) -> Claim:
    call_id, step, token, attempts, max_attempts, lease = row
    return Claim(
        call_id=str(call_id),
        step=str(step),
        token=str(token),
        attempt=int(attempts),
        max_attempts=int(max_attempts),
        lease_expires_at=float(lease),
    )


def dependency_rows(pipeline: Pipeline) -> list[Mapping[str, str]]:
    return [{"step": s, "depends_on": d} for s, deps in pipeline.dependencies.items() for d in deps]


def step_rows(call: CallRecord, pipeline: Pipeline, now: float) -> list[Mapping[str, object]]:
    return [
        {
            "call_id": call.call_id,
            "step": s.name,
            "lease_seconds": s.lease_seconds,
            "max_attempts": pipeline.max_attempts(s),
            "now": now,
        }
        for s in pipeline.steps
    ]
