"""The embedded steps store: one SQLite file in WAL mode. Every write transaction starts with
``BEGIN IMMEDIATE``, which takes the database's single write lock up front: a claim's read and write cannot
interleave with another writer's, in this process or any other. Calls run on worker threads
(``asyncio.to_thread``) over a small pool of connections, so the event loop never waits on a lock."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

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

__all__ = ["SQLiteStepStore"]

T = TypeVar("T")

_FAIL_CORRUPT = _sql.fail_corrupt("sqlite")


class SQLiteStepStore:
    """A :class:`~aoai_realtime.pipeline.StepStore` on a SQLite file. ``path`` must be a file (several
    connections share it; ``:memory:`` would give each its own database). ``busy_timeout`` is how long a
    writer waits for the lock before :class:`StepStoreError`."""

    def __init__(self, path: str | os.PathLike[str], *, max_connections: int = 4, busy_timeout: float = 30.0) -> None:
        if str(path) == ":memory:":
            raise StepStoreError("SQLiteStepStore needs a file path, not ':memory:'")
        self._path = os.fspath(path)
        self._busy_timeout = busy_timeout
        self._slots = threading.BoundedSemaphore(max_connections)
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    # -- connections --------------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives a process crash (SIGKILL); only an OS crash may lose the last
        # commits, never corrupt the file.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise StepStoreError("the store is closed")
        with self._slots:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                conn = self._connect()
            try:
                return fn(conn)
            except sqlite3.Error as exc:
                raise StepStoreError(f"SQLite steps store {self._path!r} failed: {exc}") from exc
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                with self._lock:
                    self._idle.append(conn)

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.to_thread(self._call, fn)

    @staticmethod
    def _write(conn: sqlite3.Connection, body: Callable[[sqlite3.Connection], T]) -> T:
        conn.execute("BEGIN IMMEDIATE")
        result = body(conn)
        conn.execute("COMMIT")
        return result

    # -- StepStore ----------------------------------------------------------------------------------------

    async def setup(self, pipeline: Pipeline) -> None:
        def body(conn: sqlite3.Connection) -> None:
            for stmt in _sql.schema("sqlite"):
                conn.execute(stmt)
            conn.executemany(_sql.INSERT_DEP, dependency_rows(pipeline))

        await self._run(lambda c: self._write(c, body))

    async def end_call(self, call: CallRecord, pipeline: Pipeline, *, now: float) -> bool:
        transcript, metadata = encode_call(call)

        def body(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                _sql.INSERT_CALL,
                {"call_id": call.call_id, "transcript": transcript, "metadata": metadata, "now": now},
            )
            conn.executemany(_sql.INSERT_STEP, step_rows(call, pipeline, now))
            return cur.rowcount == 1

        return await self._run(lambda c: self._write(c, body))

    async def claim(self, *, now: float, call_id: str | None = None, step: str | None = None) -> Claim | None:
        token = uuid.uuid4().hex

        def body(conn: sqlite3.Connection) -> Claim | None:
            failed = conn.execute(_sql.reap("sqlite"), {"now": now}).rowcount
            for stmt in _FAIL_CORRUPT:
                failed += conn.execute(stmt, {"now": now}).rowcount
            if failed:
                _cascade(conn, now, None)
            row = conn.execute(
                _sql.claim("sqlite"), {"token": token, "now": now, "call_id": call_id, "step": step}
            ).fetchone()
            return None if row is None else row_to_claim(row)

        return await self._run(lambda c: self._write(c, body))

    async def extend_lease(self, claim: Claim, *, now: float, lease_seconds: float) -> bool:
        params = {**_fence(claim), "now": now, "lease_seconds": lease_seconds}
        row = await self._run(lambda c: self._write(c, lambda c: c.execute(_sql.EXTEND, params).fetchone()))
        return row is not None

    async def complete(self, claim: Claim, effect: Effect, *, now: float) -> bool:
        params = {**_fence(claim), "now": now}

        def body(conn: sqlite3.Connection) -> bool:
            if conn.execute(_sql.MARK_GENERATED, params).fetchone() is None:
                return False  # fenced: the claim is not current; nothing is written
            conn.execute(_sql.INSERT_EFFECT, {**params, "content_type": effect.content_type, "body": effect.body})
            return True

        return await self._run(lambda c: self._write(c, body))

    async def fail(
        self, claim: Claim, *, error: str, now: float, retry_at: float, permanent: bool = False
    ) -> StepState | None:
        params = {**_fence(claim), "now": now, "retry_at": retry_at, "error": error, "permanent": int(permanent)}

        def body(conn: sqlite3.Connection) -> StepState | None:
            row = conn.execute(_sql.MARK_FAILED_ATTEMPT, params).fetchone()
            if row is None:
                return None
            state = StepState(row[0])
            if state is StepState.FAILED:
                _cascade(conn, now, claim.call_id)
            return state

        return await self._run(lambda c: self._write(c, body))

    async def load_call(self, call_id: str) -> CallRecord:
        row = await self._run(lambda c: c.execute(_sql.SELECT_CALL, {"call_id": call_id}).fetchone())
        if row is None:
            raise missing_call(call_id)
        return decode_call(call_id, row[0], row[1])

    async def effects(self, call_id: str, step: str) -> list[StoredEffect]:
        rows = await self._run(lambda c: c.execute(_sql.SELECT_EFFECTS, {"call_id": call_id, "step": step}).fetchall())
        return [StoredEffect(*r) for r in rows]

    async def steps(self, call_id: str | None = None) -> list[StepRow]:
        rows = await self._run(lambda c: c.execute(_sql.SELECT_STEPS, {"call_id": call_id}).fetchall())
        return [row_to_step(r) for r in rows]

    async def effect_counts(self) -> dict[str, EffectCount]:
        rows = await self._run(lambda c: c.execute(_sql.EFFECT_COUNTS).fetchall())
        return {r[0]: EffectCount(rows=r[1], calls=r[2]) for r in rows}

    async def state_counts(self) -> dict[StepState, int]:
        rows = await self._run(lambda c: c.execute(_sql.STATE_COUNTS).fetchall())
        return {StepState(r[0]): r[1] for r in rows}

    async def due_calls(self, *, until: float, limit: int = 100) -> list[tuple[str, float]]:
        rows = await self._run(lambda c: c.execute(_sql.DUE_CALLS, {"until": until, "limit": limit}).fetchall())
        return [(r[0], float(r[1])) for r in rows]

    async def replace_index_chunks(self, call_id: str, key: str, texts: Sequence[str]) -> None:
        def body(conn: sqlite3.Connection) -> None:
            conn.execute(_sql.DELETE_CHUNKS, {"call_id": call_id, "key": key})
            conn.executemany(
                _sql.INSERT_CHUNK, [{"call_id": call_id, "key": key, "seq": i, "text": t} for i, t in enumerate(texts)]
            )

        await self._run(lambda c: self._write(c, body))

    async def index_chunks(self, call_id: str) -> list[tuple[str, int, str]]:
        rows = await self._run(lambda c: c.execute(_sql.SELECT_CHUNKS, {"call_id": call_id}).fetchall())
        return [(r[0], r[1], r[2]) for r in rows]

    async def close(self) -> None:
        """Close idle connections. Idempotent; later calls raise :class:`StepStoreError`."""
        self._closed = True
        with self._lock:
            conns, self._idle = self._idle, []
        for conn in conns:
            conn.close()


def _fence(claim: Claim) -> dict[str, Any]:
    return {"call_id": claim.call_id, "step": claim.step, "token": claim.token}


def _cascade(conn: sqlite3.Connection, now: float, call_id: str | None) -> None:
    while conn.execute(_sql.CASCADE_FAILED, {"now": now, "call_id": call_id}).rowcount:
        pass
