"""The pipeline's values: step states and their transition table, step specifications, claims, effects,
retry policy, clocks, and the pipeline error tree.

::

    RealtimeError
     └── PipelineError              the pipeline refused or failed to do something
          ├── IllegalTransition     a step event that the state machine does not allow (names state and event)
          ├── PermanentStepError    raised BY a step: fail now, a retry cannot help
          ├── ClaimLost             raised BY a step: its claim is no longer current (a zombie); nothing written
          └── StepStoreError        the steps database failed or is in an unexpected state
               └── CorruptRow       one step's rows are damaged (missing call or effect, a time that is not
                                    a number): that step is failed with the reason, the others carry on

A step's life (the table below is the contract both stores implement in SQL, and what the tests check)::

    pending ──claim──▶ generating ──complete──▶ generated
       ▲                 │  │  ▲
       └─────retry───────┘  │  └── reclaim (lease expired, attempts left)
                            ├──fail / expire (no attempts left)──▶ failed
    pending ──dependency failed──────────────────────────────────▶ failed
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import random
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Final

from ..clock import Clock, SystemClock
from ..errors import ConfigError, RealtimeError
from ..llm.types import Turn

__all__ = [
    "TRANSITIONS",
    "CallRecord",
    "Claim",
    "ClaimLost",
    "Clock",
    "CorruptRow",
    "Effect",
    "FakeClock",
    "IllegalTransition",
    "PermanentStepError",
    "Pipeline",
    "PipelineError",
    "RetryPolicy",
    "StepContext",
    "StepEvent",
    "StepRow",
    "StepSpec",
    "StepState",
    "StepStoreError",
    "StoredEffect",
    "SystemClock",
    "transition",
]


class PipelineError(RealtimeError):
    """Root of the pipeline's errors."""


class IllegalTransition(PipelineError):
    """A step event that its current state does not allow."""

    def __init__(self, state: StepState, event: StepEvent) -> None:
        super().__init__(f"step event {event.value!r} is not allowed in state {state.value!r}")
        self.state = state
        self.event = event


class PermanentStepError(PipelineError):
    """Raise this from a step when retrying cannot help (bad input): the step goes to ``failed`` at once."""


class ClaimLost(PipelineError):
    """Raised by a step that found (via ``StepContext.still_holds``) that its claim is no longer current."""


class StepStoreError(PipelineError):
    """The steps database failed or holds something this code does not understand."""


class CorruptRow(StepStoreError):
    """A step's own rows are damaged: its call record is missing or unreadable, an effect it depends on is
    missing, or one of its times is not a number. Retrying cannot help, so the worker fails that step with this
    message (``last_error``) and carries on with the others; repair or delete the rows, then re-deliver the call."""


class StepState(enum.StrEnum):
    PENDING = "pending"
    GENERATING = "generating"
    GENERATED = "generated"
    FAILED = "failed"


class StepEvent(enum.StrEnum):
    CLAIM = "claim"  # a worker takes a pending step whose dependencies are generated and whose time has come
    RECLAIM = "reclaim"  # a worker takes a generating step whose lease expired (its worker died or hung)
    COMPLETE = "complete"  # the claim holder commits the effect
    RETRY = "retry"  # the claim holder failed and attempts are left: back to pending after a backoff
    FAIL = "fail"  # the claim holder failed with no attempts left, or permanently
    EXPIRE = "expire"  # the lease expired on the last attempt
    DEPENDENCY_FAILED = "dependency_failed"  # a step this one depends on failed


S, E = StepState, StepEvent
TRANSITIONS: Final[Mapping[tuple[StepState, StepEvent], StepState]] = {
    (S.PENDING, E.CLAIM): S.GENERATING,
    (S.PENDING, E.DEPENDENCY_FAILED): S.FAILED,
    (S.GENERATING, E.RECLAIM): S.GENERATING,
    (S.GENERATING, E.COMPLETE): S.GENERATED,
    (S.GENERATING, E.RETRY): S.PENDING,
    (S.GENERATING, E.FAIL): S.FAILED,
    (S.GENERATING, E.EXPIRE): S.FAILED,
}
del S, E


def transition(state: StepState, event: StepEvent) -> StepState:
    """The state after ``event``; raises :class:`IllegalTransition` if the table has no such edge."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(state, event) from None


class FakeClock:
    """The pipeline's simulation clock: the one :class:`~aoai_realtime.clock.Clock` protocol, moved only by hand.

    The pipeline reads :meth:`wall` (leases and retry times are compared across processes, so they are wall
    time). :meth:`now` and :meth:`wall` read the same fake time; :meth:`advance` moves it synchronously (stateful
    tests step it between rules), and :meth:`sleep` moves it by the slept time at once (a simulation, not a
    wait)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._now += seconds


@dataclasses.dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter: attempt ``n`` (1-based) that fails waits
    ``min(max_delay, base_delay * 2**(n-1)) * (1 - jitter * U[0,1))`` before the next claim."""

    max_attempts: int = 5
    base_delay: float = 2.0
    max_delay: float = 300.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError("max_attempts must be at least 1", field="max_attempts")
        if self.base_delay < 0 or self.max_delay < self.base_delay:
            raise ConfigError("need 0 <= base_delay <= max_delay", field="base_delay")
        if not 0.0 <= self.jitter <= 1.0:
            raise ConfigError("jitter must be within 0..1", field="jitter")

    def delay(self, attempt: int, rng: random.Random) -> float:
        base = min(self.max_delay, self.base_delay * 2.0 ** max(0, attempt - 1))
        return base * (1.0 - self.jitter * rng.random())


@dataclasses.dataclass(frozen=True, slots=True)
class CallRecord:
    """What the app records when a call ends. ``call_id`` is the app's own id (an End Call delivery carries
    it, so duplicates of one delivery name the same call)."""

    call_id: str
    transcript: tuple[Turn, ...]
    metadata: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class Effect:
    """What a step produces; the store writes it in the same transaction as the step's ``generated`` mark."""

    content_type: str
    body: str


@dataclasses.dataclass(frozen=True, slots=True)
class StoredEffect:
    call_id: str
    step: str
    claim_token: str
    content_type: str
    body: str
    created_at: float


@dataclasses.dataclass(frozen=True, slots=True)
class Claim:
    """Proof that a worker holds a step until ``lease_expires_at``. ``token`` fences every later write."""

    call_id: str
    step: str
    token: str
    attempt: int
    max_attempts: int
    lease_expires_at: float


@dataclasses.dataclass(frozen=True, slots=True)
class StepRow:
    """One row of the steps table, for inspection (``aoai-realtime worker --status``, tests, dashboards)."""

    call_id: str
    step: str
    state: StepState
    claim_token: str | None
    lease_expires_at: float | None
    attempts: int
    max_attempts: int
    next_attempt_at: float
    last_error: str | None
    created_at: float
    updated_at: float
    problem: str | None = None
    """Set when the row is damaged (e.g. ``next_attempt_at 'soon' is not a time``); its numbers are then NaN.
    A worker's next claim fails such a row with this reason."""


async def _always_held() -> bool:
    return True


@dataclasses.dataclass(frozen=True, slots=True)
class StepContext:
    """What a step's ``run`` receives: the call, its claim, and the effects of the steps it depends on.

    ``still_holds()`` renews the lease and says whether this claim is still current. A step that writes
    outside the store (the index step) calls it right before that write and raises :class:`ClaimLost` if
    not, so a zombie that wakes up late does not write at all."""

    call: CallRecord
    claim: Claim
    dependencies: Mapping[str, StoredEffect]
    still_holds: Callable[[], Awaitable[bool]] = _always_held


StepFn = Callable[[StepContext], Awaitable[Effect]]

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclasses.dataclass(frozen=True, slots=True)
class StepSpec:
    """One post-call step. ``run`` must be safe to run more than once for the same call (a crash after it
    ran but before its effect committed means it runs again); only its returned :class:`Effect` is written
    exactly once. Anything ``run`` writes elsewhere must be an overwrite keyed by the call (see the index
    step). ``lease_seconds`` must exceed the step's worst-case run time; the runner renews it while running.
    Step names are global within a store."""

    name: str
    run: StepFn
    depends_on: tuple[str, ...] = ()
    max_attempts: int | None = None
    lease_seconds: float = 60.0

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigError(f"step name {self.name!r} must match {_NAME.pattern}", field="name")
        if self.lease_seconds <= 0:
            raise ConfigError("lease_seconds must be positive", field="lease_seconds")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ConfigError("max_attempts must be at least 1", field="max_attempts")


@dataclasses.dataclass(frozen=True, slots=True)
class Pipeline:
    """The steps to run for every ended call, with their dependencies and retry policy. Validated on
    construction: unique names, known dependencies, no cycles."""

    steps: tuple[StepSpec, ...]
    retry: RetryPolicy = RetryPolicy()

    def __post_init__(self) -> None:
        names = [s.name for s in self.steps]
        if not names:
            raise ConfigError("a pipeline needs at least one step", field="steps")
        if len(set(names)) != len(names):
            raise ConfigError(f"duplicate step names in {names}", field="steps")
        for s in self.steps:
            for d in s.depends_on:
                if d not in names:
                    raise ConfigError(f"step {s.name!r} depends on unknown step {d!r}", field="depends_on")
        _check_acyclic({s.name: s.depends_on for s in self.steps})

    def step(self, name: str) -> StepSpec:
        for s in self.steps:
            if s.name == name:
                return s
        raise PipelineError(f"step {name!r} is not in this pipeline ({[s.name for s in self.steps]})")

    def max_attempts(self, spec: StepSpec) -> int:
        return spec.max_attempts if spec.max_attempts is not None else self.retry.max_attempts

    @property
    def dependencies(self) -> Mapping[str, Sequence[str]]:
        return {s.name: s.depends_on for s in self.steps}


def _check_acyclic(graph: Mapping[str, Sequence[str]]) -> None:
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            raise ConfigError(f"step dependencies form a cycle: {' -> '.join((*path, name))}", field="depends_on")
        if name in done:
            return
        for d in graph[name]:
            visit(d, (*path, name))
        done.add(name)

    for n in graph:
        visit(n, ())
