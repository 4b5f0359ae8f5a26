"""Damaged rows, on SQLite and on a real PostgreSQL: a step whose time is not a number, whose call record was
deleted, or whose dependency's effect is gone is failed with the reason; every other call carries on, and
``worker --status`` reports the damage instead of raising."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aoai_realtime.pipeline import (
    CorruptRow,
    FakeClock,
    PostgresStepStore,
    SQLiteStepStore,
    StepState,
    StepStore,
    StepStoreError,
    Worker,
)
from aoai_realtime.pipeline.cli import _print_status

from .helpers import call, echo_pipeline

P = echo_pipeline(max_attempts=3, lease=30.0)
Damage = Callable[[str], Awaitable[None]]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
async def damaged(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[StepStore, Damage, str]]:
    """A store, a function that runs raw SQL on its database behind its back, and the store's target."""
    if request.param == "sqlite":
        path = tmp_path / "steps.db"
        store: StepStore = SQLiteStepStore(path)

        async def damage(sql: str) -> None:
            conn = sqlite3.connect(path, isolation_level=None)  # foreign keys off, as in any other tool
            try:
                conn.execute(sql)
            finally:
                conn.close()

        target = str(path)
    else:
        import psycopg

        target = request.getfixturevalue("pg_dsn")
        pg = PostgresStepStore(target, reap_interval=0.0)
        await pg.open()
        store = pg

        async def damage(sql: str) -> None:
            async with await psycopg.AsyncConnection.connect(target, autocommit=True) as conn:
                await conn.execute("SET session_replication_role = replica")  # what a restore or a DBA can do
                await conn.execute(sql)  # type: ignore[arg-type]

    try:
        await store.setup(P)
        yield store, damage, target
    finally:
        await store.close()


async def _states(store: StepStore, call_id: str) -> dict[str, tuple[StepState, str | None]]:
    return {r.step: (r.state, r.last_error) for r in await store.steps(call_id)}


async def _ended(store: StepStore, clock: FakeClock, n: int) -> None:
    for i in range(1, n + 1):
        await store.end_call(call(i), P, now=clock.now())


@pytest.mark.parametrize("bad", ["'soon'", "'9e999'", "x'00'"])
async def test_a_time_that_is_not_a_number_fails_that_step_and_the_rest_runs(
    damaged: tuple[StepStore, Damage, str], bad: str
) -> None:
    store, damage, _ = damaged
    clock = FakeClock()
    await _ended(store, clock, 2)
    if isinstance(store, PostgresStepStore):
        bad = "'NaN'" if bad != "'9e999'" else "'Infinity'"  # a float8 column holds no text: its bad values
    await damage(f"UPDATE pipeline_steps SET next_attempt_at = {bad} WHERE call_id = 'call-1' AND step = 'summary'")
    [row] = [r for r in await store.steps("call-1") if r.step == "summary"]
    assert row.problem is not None and "next_attempt_at" in row.problem and "is not a time" in row.problem

    outcomes = await Worker(P, store, clock=clock, renew_leases=False).run_until_idle()

    assert {(o.call_id, o.step) for o in outcomes} == {
        ("call-1", "action_items"), ("call-1", "review_thread"),
        ("call-2", "summary"), ("call-2", "action_items"), ("call-2", "index"), ("call-2", "review_thread"),
    }  # fmt: skip
    assert all(o.result == "generated" for o in outcomes)
    states = await _states(store, "call-1")
    state, error = states["summary"]
    assert state is StepState.FAILED
    assert error is not None and error.startswith("CorruptRow: next_attempt_at ") and "is not a time" in error
    assert states["index"] == (StepState.FAILED, "a step this one depends on failed")
    assert all(r.problem is None for r in await store.steps())  # the failed row holds a real time again


async def test_a_deleted_call_fails_its_steps_with_the_reason(damaged: tuple[StepStore, Damage, str]) -> None:
    store, damage, _ = damaged
    clock = FakeClock()
    await _ended(store, clock, 2)
    await damage("DELETE FROM pipeline_calls WHERE call_id = 'call-1'")
    with pytest.raises(CorruptRow, match=r"no call 'call-1'.*deleted"):
        await store.load_call("call-1")

    outcomes = await Worker(P, store, clock=clock, renew_leases=False).run_until_idle()

    # No retry loop: each step of the damaged call fails once, permanently; the other call completes.
    by_call = {(o.call_id, o.step): o.result for o in outcomes}
    assert by_call == {
        ("call-1", "summary"): "failed", ("call-1", "action_items"): "failed", ("call-1", "review_thread"): "failed",
        ("call-2", "summary"): "generated", ("call-2", "action_items"): "generated",
        ("call-2", "index"): "generated", ("call-2", "review_thread"): "generated",
    }  # fmt: skip
    states = await _states(store, "call-1")
    assert states["summary"][0] is StepState.FAILED
    assert states["summary"][1] == (
        "CorruptRow: no call 'call-1' in the steps store: its steps outlived the call record (deleted?)"
    )
    assert states["index"] == (StepState.FAILED, "a step this one depends on failed")


async def test_an_unreadable_call_record_fails_its_steps(damaged: tuple[StepStore, Damage, str]) -> None:
    store, damage, _ = damaged
    clock = FakeClock()
    await _ended(store, clock, 1)
    await damage("UPDATE pipeline_calls SET transcript = '[{\"role\": 1' WHERE call_id = 'call-1'")
    outcomes = await Worker(P, store, clock=clock, renew_leases=False).run_until_idle()
    assert {o.result for o in outcomes} == {"failed"} and len(outcomes) == 3
    error = (await _states(store, "call-1"))["summary"][1]
    assert error is not None and error.startswith("CorruptRow: the record of call 'call-1' cannot be read (")


async def test_a_missing_dependency_effect_fails_the_dependent_step(damaged: tuple[StepStore, Damage, str]) -> None:
    store, damage, _ = damaged
    clock = FakeClock()
    await _ended(store, clock, 1)
    worker = Worker(P, store, clock=clock, renew_leases=False)
    assert (await worker.run_one(call_id="call-1", step="summary")) is not None
    await damage("DELETE FROM pipeline_effects WHERE step = 'summary'")

    outcomes = await worker.run_until_idle()

    assert {o.step: o.result for o in outcomes} == {"action_items": "generated", "review_thread": "generated",
                                                     "index": "failed"}  # fmt: skip
    assert (await _states(store, "call-1"))["index"] == (
        StepState.FAILED,
        "CorruptRow: step 'summary' of call 'call-1' is generated but its effect is missing",
    )


async def test_status_reports_damaged_rows_instead_of_raising(
    damaged: tuple[StepStore, Damage, str], capsys: pytest.CaptureFixture[str]
) -> None:
    store, damage, _ = damaged
    clock = FakeClock()
    await _ended(store, clock, 1)
    if isinstance(store, SQLiteStepStore):
        await damage("UPDATE pipeline_steps SET next_attempt_at = 'soon', attempts = 'two' WHERE step = 'summary'")
        expected = "next_attempt_at 'soon' is not a time; attempts 'two' is not a count"
    else:
        await damage("UPDATE pipeline_steps SET next_attempt_at = 'NaN' WHERE step = 'summary'")
        expected = "next_attempt_at nan is not a time"
    await _print_status(store)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "pending=4  generating=0  generated=0  failed=0"
    assert out[1:] == [f"corrupt  call-1  summary  pending: {expected} (a running worker marks it failed)"]


def test_worker_status_command_prints_the_damage(tmp_path: Path) -> None:
    import asyncio

    import typer

    from aoai_realtime.pipeline.cli import register

    path = tmp_path / "steps.db"

    async def prepare() -> None:
        store = SQLiteStepStore(path)
        await store.setup(P)
        await store.end_call(call(1), P, now=FakeClock().now())
        await store.close()

    asyncio.run(prepare())
    conn = sqlite3.connect(path)
    conn.execute("UPDATE pipeline_steps SET next_attempt_at = 'soon' WHERE step = 'index'")
    conn.commit()
    conn.close()
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # a second command, so typer keeps "worker" as a subcommand
    result = CliRunner().invoke(app, ["worker", "--store", str(path), "--status"])
    assert result.exit_code == 0, result.output
    assert "corrupt  call-1  index  pending: next_attempt_at 'soon' is not a time" in result.output


async def test_store_errors_still_mean_the_store_is_down(damaged: tuple[StepStore, Damage, str]) -> None:
    # A corrupt row is a StepStoreError too (callers catching that keep working), but the worker tells them apart.
    assert issubclass(CorruptRow, StepStoreError)
    store, _, _ = damaged
    await store.close()
    with pytest.raises(StepStoreError) as info:
        await Worker(P, store, clock=FakeClock()).run_one()
    assert not isinstance(info.value, CorruptRow)
