"""A Hypothesis state machine over end-call / claim / crash / clock / complete / fail / renew, checking the
SQLite store (and, with fewer examples, the PostgreSQL store) against a plain-Python model of the step table
after every action: the same claims in the same order, the same states, tokens, leases and attempts, and never
more than one effect per call and step.

A "crash" drops a held claim without a word (the worker died); any claim still held after its lease expired
and the step was reclaimed is a zombie, and its later complete/fail/renew must change nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from aoai_realtime.pipeline import (
    Claim,
    Effect,
    FakeClock,
    PostgresStepStore,
    SQLiteStepStore,
    StepEvent,
    StepState,
    StepStore,
    transition,
)
from aoai_realtime.pipeline._sql import DEPENDENCY_MESSAGE, EXPIRED_MESSAGE

from .helpers import call, echo_pipeline

P = echo_pipeline(max_attempts=3, lease=10.0)
DEPS = {s.name: s.depends_on for s in P.steps}
CALL_IDS = ["call-0", "call-1", "call-2"]


@dataclasses.dataclass
class Row:
    state: StepState = StepState.PENDING
    token: str | None = None
    lease: float | None = None
    attempts: int = 0
    next_at: float = 0.0
    error: str | None = None
    effects: int = 0


class StepTableMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.Runner()
        self.dir: str | None = None  # the SQLite store's folder
        self.store: StepStore = self.loop.run(self.open_store())
        self.clock = FakeClock()
        self.rows: dict[tuple[str, str], Row] = {}
        self.held: list[Claim] = []
        self.loop.run(self.store.setup(P))

    async def open_store(self) -> StepStore:
        self.dir = tempfile.mkdtemp(prefix="aoai-stateful-")
        return SQLiteStepStore(Path(self.dir) / "steps.db")

    def teardown(self) -> None:
        self.loop.run(self.store.close())
        self.loop.close()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- model helpers --------------------------------------------------------------------------------------

    def _apply(self, key: tuple[str, str], event: StepEvent) -> None:
        row = self.rows[key]
        row.state = transition(row.state, event)  # an illegal move in the model is a test bug: raises

    def _cascade(self, call_id: str | None) -> None:
        changed = True
        while changed:
            changed = False
            for (c, s), row in self.rows.items():
                if call_id not in (None, c) or row.state is not StepState.PENDING:
                    continue
                if any(self.rows[(c, d)].state is StepState.FAILED for d in DEPS[s]):
                    self._apply((c, s), StepEvent.DEPENDENCY_FAILED)
                    row.error = DEPENDENCY_MESSAGE
                    changed = True

    def _claimable(self, call_id: str | None) -> list[tuple[str, str]]:
        now = self.clock.now()
        out = []
        for (c, s), row in self.rows.items():
            if call_id not in (None, c):
                continue
            leased_out = row.state is StepState.GENERATING and row.lease is not None and row.lease <= now
            ok_state = row.state is StepState.PENDING or leased_out
            deps_done = all(self.rows[(c, d)].state is StepState.GENERATED for d in DEPS[s])
            if ok_state and row.next_at <= now and row.attempts < P.max_attempts(P.step(s)) and deps_done:
                out.append((c, s))
        return sorted(out, key=lambda k: (self.rows[k].next_at, k[0], k[1]))

    # -- rules ----------------------------------------------------------------------------------------------

    @rule(i=st.integers(0, len(CALL_IDS) - 1))
    def end_call(self, i: int) -> None:
        new = self.loop.run(self.store.end_call(call(i), P, now=self.clock.now()))
        assert new == ((f"call-{i}", "summary") not in self.rows)
        for spec in P.steps:
            self.rows.setdefault((f"call-{i}", spec.name), Row(next_at=self.clock.now()))

    @rule(only_call=st.none() | st.sampled_from(CALL_IDS))
    def claim(self, only_call: str | None) -> None:
        now = self.clock.now()
        reaped = False
        for key, row in self.rows.items():
            if row.state is StepState.GENERATING and row.lease is not None and row.lease <= now \
                    and row.attempts >= P.max_attempts(P.step(key[1])):
                self._apply(key, StepEvent.EXPIRE)
                row.lease, row.error, reaped = None, EXPIRED_MESSAGE, True
        if reaped:
            self._cascade(None)
        expected = self._claimable(only_call)
        got = self.loop.run(self.store.claim(now=now, call_id=only_call))
        if not expected:
            assert got is None
            return
        assert got is not None and (got.call_id, got.step) == expected[0]
        row = self.rows[expected[0]]
        self._apply(expected[0], StepEvent.CLAIM if row.state is StepState.PENDING else StepEvent.RECLAIM)
        row.token, row.lease, row.attempts = got.token, now + 10.0, row.attempts + 1
        row.next_at = row.lease  # in flight: next looked at when the lease expires
        assert (got.attempt, got.lease_expires_at) == (row.attempts, row.lease)
        self.held.append(got)

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def crash(self, data: st.DataObject) -> None:
        self.held.pop(data.draw(st.integers(0, len(self.held) - 1)))

    @rule(dt=st.sampled_from([0.5, 3.0, 9.99, 10.0, 25.0]))
    def advance_clock(self, dt: float) -> None:
        self.clock.advance(dt)

    def _current(self, claim: Claim) -> Row | None:
        row = self.rows[(claim.call_id, claim.step)]
        return row if row.state is StepState.GENERATING and row.token == claim.token else None

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def complete(self, data: st.DataObject) -> None:
        claim = self.held.pop(data.draw(st.integers(0, len(self.held) - 1)))
        row = self._current(claim)
        ok = self.loop.run(self.store.complete(claim, Effect("text/plain", claim.token), now=self.clock.now()))
        assert ok == (row is not None)
        if row is not None:
            self._apply((claim.call_id, claim.step), StepEvent.COMPLETE)
            row.lease, row.effects = None, row.effects + 1

    @precondition(lambda self: self.held)
    @rule(data=st.data(), permanent=st.booleans(), delay=st.sampled_from([0.0, 2.0, 30.0]))
    def fail(self, data: st.DataObject, permanent: bool, delay: float) -> None:
        claim = self.held.pop(data.draw(st.integers(0, len(self.held) - 1)))
        row = self._current(claim)
        now = self.clock.now()
        got = self.loop.run(self.store.fail(claim, error="e", now=now, retry_at=now + delay, permanent=permanent))
        if row is None:
            assert got is None
            return
        exhausted = permanent or row.attempts >= P.max_attempts(P.step(claim.step))
        self._apply((claim.call_id, claim.step), StepEvent.FAIL if exhausted else StepEvent.RETRY)
        row.next_at, row.lease, row.error = now + delay, None, "e"
        assert got is row.state
        if exhausted:
            self._cascade(claim.call_id)

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def renew(self, data: st.DataObject) -> None:
        claim = self.held[data.draw(st.integers(0, len(self.held) - 1))]
        row = self._current(claim)
        ok = self.loop.run(self.store.extend_lease(claim, now=self.clock.now(), lease_seconds=10.0))
        assert ok == (row is not None)
        if row is not None:
            row.lease = row.next_at = self.clock.now() + 10.0

    # -- invariants -----------------------------------------------------------------------------------------

    @invariant()
    def store_matches_model(self) -> None:
        stored = {(r.call_id, r.step): r for r in self.loop.run(self.store.steps())}
        assert stored.keys() == self.rows.keys()
        for key, row in self.rows.items():
            s = stored[key]
            assert (s.state, s.claim_token, s.lease_expires_at, s.attempts, s.last_error) == (
                row.state, row.token, row.lease, row.attempts, row.error), key

    @invariant()
    def at_most_one_effect_and_only_when_generated(self) -> None:
        counts = self.loop.run(self.store.effect_counts())
        assert all(c.duplicates == 0 for c in counts.values())
        assert sum(c.rows for c in counts.values()) == sum(r.effects for r in self.rows.values())
        for row in self.rows.values():
            assert row.effects == (1 if row.state is StepState.GENERATED else 0)


StepTableMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestStepTable = StepTableMachine.TestCase


class PostgresStepTableMachine(StepTableMachine):
    """The same machine on PostgreSQL (its claim is ``FOR UPDATE SKIP LOCKED``, its clock the caller's): each
    example gets a fresh schema on the test session's server."""

    dsn = ""

    async def open_store(self) -> StepStore:
        import psycopg

        self.schema = f"s_{uuid.uuid4().hex[:12]}"
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            await conn.execute(f"CREATE SCHEMA {self.schema}")
        sep = "&" if "?" in self.dsn else "?"
        store = PostgresStepStore(f"{self.dsn}{sep}options=-csearch_path%3D{self.schema}", max_connections=2)
        await store.open()
        return store

    def teardown(self) -> None:
        import psycopg

        super().teardown()
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {self.schema} CASCADE")


@pytest.mark.integration
def test_postgres_step_store_matches_the_model(pg_dsn: str) -> None:
    PostgresStepTableMachine.dsn = pg_dsn
    run_state_machine_as_test(
        PostgresStepTableMachine, settings=settings(max_examples=40, stateful_step_count=30, deadline=None)
    )
