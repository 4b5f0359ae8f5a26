"""The scale-out steps store on PostgreSQL (psycopg 3, async pool). Same SQL and semantics as the SQLite
store; the claim adds ``FOR UPDATE SKIP LOCKED`` so many workers on many machines take different rows
without queueing on one. Transactions run at READ COMMITTED: the fence (``claim_token = :token AND state =
'generating'``) is re-checked on the latest row version after any row-lock wait, so a zombie's update
matches nothing. A deadlock or serialization failure is retried a few times before it is an error."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar

import psycopg
import psycopg.errors
from psycopg_pool import AsyncConnectionPool

from . import _sql
from .model import CallRecord, Claim, Effect, Pipeline, StepRow, StepState, StepStoreError, StoredEffect
from .store import (
    EffectCount,
    decode_call,
    dependency_rows,
    encode_call,
    missing_call,
    row_to_claim,
    row_to_step,
    step_rows,
)

__all__ = ["PostgresStepStore"]

T = TypeVar("T")
Conn = psycopg.AsyncConnection[tuple[Any, ...]]

_RETRIES: Final = 5
_SCHEMA_LOCK: Final = 0x414F4149  # pg_advisory_xact_lock key: concurrent setup() calls run DDL one at a time


def _q(sql: str) -> str:
    return _sql.to_pyformat(sql)


_CLAIM = _q(_sql.claim("postgres"))
_REAP = _q(_sql.reap("postgres"))
_CASCADE = _q(_sql.CASCADE_FAILED)
_FAIL_CORRUPT = [_q(s) for s in _sql.fail_corrupt("postgres")]


class PostgresStepStore:
    """A :class:`~aoai_realtime.pipeline.StepStore` on PostgreSQL. ``conninfo`` is a libpq URL or DSN.
    Use ``async with`` or call :meth:`open` before use and :meth:`close` after. ``reap_interval``: how often
    (in the callers' clock) a claim also fails steps whose lease expired on their last attempt."""

    def __init__(
        self, conninfo: str, *, min_connections: int = 1, max_connections: int = 8, reap_interval: float = 1.0
    ) -> None:
        self._conninfo = conninfo
        self._reap_interval = reap_interval
        self._next_reap = float("-inf")
        self._pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            conninfo,
            min_size=min_connections,
            max_size=max_connections,
            kwargs={"autocommit": True},
            open=False,
        )

    @property
    def conninfo(self) -> str:
        """The connection string this store was given (it may hold a password: never log it)."""
        return self._conninfo

    async def open(self) -> None:
        try:
            await self._pool.open(wait=True)
        except psycopg.Error as exc:
            raise StepStoreError(f"cannot connect to the PostgreSQL steps store: {exc}") from exc

    async def __aenter__(self) -> PostgresStepStore:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._pool.close()

    async def _tx(self, body: Callable[[Conn], Awaitable[T]], *, single_statement: bool = False) -> T:
        # A single statement runs in autocommit (its own transaction): one round trip instead of three.
        for attempt in range(_RETRIES):
            try:
                async with self._pool.connection() as conn:
                    if single_statement:
                        return await body(conn)
                    async with conn.transaction():
                        return await body(conn)
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                if attempt == _RETRIES - 1:
                    raise StepStoreError("PostgreSQL steps store: transaction kept conflicting") from None
            except psycopg.Error as exc:
                raise StepStoreError(f"PostgreSQL steps store failed: {exc}") from exc
        raise AssertionError("unreachable")

    async def _fetchall(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        async def body(conn: Conn) -> list[tuple[Any, ...]]:
            cur = await conn.execute(_q(sql), params)
            return await cur.fetchall()

        return await self._tx(body, single_statement=True)

    # -- StepStore ----------------------------------------------------------------------------------------

    async def setup(self, pipeline: Pipeline) -> None:
        async def body(conn: Conn) -> None:
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for stmt in _sql.schema("postgres"):
                await conn.execute(stmt)
            async with conn.cursor() as cur:
                await cur.executemany(_q(_sql.INSERT_DEP), dependency_rows(pipeline))

        await self._tx(body)

    async def end_call(self, call: CallRecord, pipeline: Pipeline, *, now: float) -> bool:
        transcript, metadata = encode_call(call)

        async def body(conn: Conn) -> bool:
            cur = await conn.execute(
                _q(_sql.INSERT_CALL),
                {"call_id": call.call_id, "transcript": transcript, "metadata": metadata, "now": now},
            )
            inserted = cur.rowcount == 1
            async with conn.cursor() as c:
                await c.executemany(_q(_sql.INSERT_STEP), step_rows(call, pipeline, now))
            return inserted

        return await self._tx(body)

    async def claim(self, *, now: float, call_id: str | None = None, step: str | None = None) -> Claim | None:
        token = uuid.uuid4().hex

        if now >= self._next_reap:
            # Failing steps whose lease expired on their last attempt needs no exactness (the claim skips them
            # anyway): do it at most every reap_interval, not on every claim.
            self._next_reap = now + self._reap_interval

            async def reap(conn: Conn) -> None:
                failed = (await conn.execute(_REAP, {"now": now})).rowcount
                for stmt in _FAIL_CORRUPT:
                    failed += (await conn.execute(stmt, {"now": now})).rowcount
                if failed:
                    await _cascade(conn, now, None)

            await self._tx(reap)

        async def body(conn: Conn) -> Claim | None:
            cur = await conn.execute(_CLAIM, {"token": token, "now": now, "call_id": call_id, "step": step})
            row = await cur.fetchone()
            return None if row is None else row_to_claim(row)

        return await self._tx(body, single_statement=True)

    async def extend_lease(self, claim: Claim, *, now: float, lease_seconds: float) -> bool:
        params = {**_fence(claim), "now": now, "lease_seconds": lease_seconds}

        async def body(conn: Conn) -> bool:
            cur = await conn.execute(_q(_sql.EXTEND), params)
            return await cur.fetchone() is not None

        return await self._tx(body, single_statement=True)

    async def complete(self, claim: Claim, effect: Effect, *, now: float) -> bool:
        params = {**_fence(claim), "now": now}

        async def body(conn: Conn) -> bool:
            cur = await conn.execute(_q(_sql.MARK_GENERATED), params)
            if await cur.fetchone() is None:
                return False  # fenced: the claim is not current; nothing is written
            await conn.execute(
                _q(_sql.INSERT_EFFECT), {**params, "content_type": effect.content_type, "body": effect.body}
            )
            return True

        return await self._tx(body)

    async def fail(
        self, claim: Claim, *, error: str, now: float, retry_at: float, permanent: bool = False
    ) -> StepState | None:
        params = {**_fence(claim), "now": now, "retry_at": retry_at, "error": error, "permanent": int(permanent)}

        async def body(conn: Conn) -> StepState | None:
            cur = await conn.execute(_q(_sql.MARK_FAILED_ATTEMPT), params)
            row = await cur.fetchone()
            if row is None:
                return None
            state = StepState(row[0])
            if state is StepState.FAILED:
                await _cascade(conn, now, claim.call_id)
            return state

        return await self._tx(body)

    async def load_call(self, call_id: str) -> CallRecord:
        rows = await self._fetchall(_sql.SELECT_CALL, {"call_id": call_id})
        if not rows:
            raise missing_call(call_id)
        return decode_call(call_id, rows[0][0], rows[0][1])

    async def effects(self, call_id: str, step: str) -> list[StoredEffect]:
        rows = await self._fetchall(_sql.SELECT_EFFECTS, {"call_id": call_id, "step": step})
        return [StoredEffect(*r) for r in rows]

    async def steps(self, call_id: str | None = None) -> list[StepRow]:
        return [row_to_step(r) for r in await self._fetchall(_sql.SELECT_STEPS, {"call_id": call_id})]

    async def effect_counts(self) -> dict[str, EffectCount]:
        rows = await self._fetchall(_sql.EFFECT_COUNTS)
        return {r[0]: EffectCount(rows=r[1], calls=r[2]) for r in rows}

    async def state_counts(self) -> dict[StepState, int]:
        return {StepState(r[0]): r[1] for r in await self._fetchall(_sql.STATE_COUNTS)}

    async def due_calls(self, *, until: float, limit: int = 100) -> list[tuple[str, float]]:
        rows = await self._fetchall(_sql.DUE_CALLS, {"until": until, "limit": limit})
        return [(r[0], float(r[1])) for r in rows]

    async def replace_index_chunks(self, call_id: str, key: str, texts: Sequence[str]) -> None:
        async def body(conn: Conn) -> None:
            await conn.execute(_q(_sql.DELETE_CHUNKS), {"call_id": call_id, "key": key})
            async with conn.cursor() as cur:
                await cur.executemany(
                    _q(_sql.INSERT_CHUNK),
                    [{"call_id": call_id, "key": key, "seq": i, "text": t} for i, t in enumerate(texts)],
                )

        await self._tx(body)

    async def index_chunks(self, call_id: str) -> list[tuple[str, int, str]]:
        rows = await self._fetchall(_sql.SELECT_CHUNKS, {"call_id": call_id})
        return [(r[0], r[1], r[2]) for r in rows]


def _fence(claim: Claim) -> dict[str, Any]:
    return {"call_id": claim.call_id, "step": claim.step, "token": claim.token}


async def _cascade(conn: Conn, now: float, call_id: str | None) -> None:
    while (await conn.execute(_CASCADE, {"now": now, "call_id": call_id})).rowcount:
        pass
