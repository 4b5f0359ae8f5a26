"""The embedded back end: one SQLite file with FTS5 (BM25) and sqlite-vec (vectors).

The standard ``sqlite3`` module of this Python cannot load extensions, so the store uses ``sqlean`` (the
sqlean.py wheel: a drop-in ``sqlite3`` built with extension loading). The file runs in WAL mode: one writer
connection (writes are serialised by a lock) and a small pool of reader connections, so readers never wait
for a writer. All blocking work runs in worker threads; the event loop is never blocked.

Scopes: sqlite-vec partitions vectors by ``scope_key`` (owner + tenant), so a scoped nearest-neighbour query
only scans its own scope and returns ``min(k, rows)`` rows. Scopes larger than ``exact_limit`` rows are searched
through an in-memory index (see :mod:`.vector_cache`). Full-text queries carry a scope token, so FTS5 intersects
posting lists instead of filtering afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import get_logger
from .sqlite_search import SQLiteTextSearch, search_entities
from .store import (
    CHUNK_COLUMNS,
    ScoredIds,
    chunk_entities,
    row_to_chunk,
    scope_key,
    scope_token,
)
from .types import (
    Chunk,
    InvalidChunkError,
    NewChunk,
    Scope,
    StoreError,
    Vector,
    check_name,
    check_session_chunks,
    check_texts,
    validate_new_chunks,
)
from .vector_cache import ScopeVectors

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]

_log = get_logger(__name__)

SCHEMA_VERSION = 2


def _connect(path: Path) -> Any:
    import sqlean
    import sqlite_vec

    conn = sqlean.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30.0)
    conn.enable_load_extension(True)
    sqlite_vec.load(conn)
    conn.enable_load_extension(False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def _v1(conn: Any, dim: int) -> None:
    conn.execute("CREATE TABLE memory_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("INSERT INTO memory_settings VALUES ('dim', ?)", (str(dim),))
    conn.execute(
        """CREATE TABLE chunks (
            id INTEGER PRIMARY KEY AUTOINCREMENT, scope_key TEXT NOT NULL, owner TEXT NOT NULL,
            tenant TEXT NOT NULL, session_id TEXT NOT NULL, speaker TEXT NOT NULL, ts REAL NOT NULL,
            seq INTEGER NOT NULL, source TEXT NOT NULL, kind TEXT NOT NULL, ref TEXT NOT NULL,
            text TEXT NOT NULL, meta TEXT NOT NULL, created REAL NOT NULL)"""
    )
    conn.execute("CREATE INDEX chunks_scope_session ON chunks (scope_key, session_id, seq)")
    conn.execute("CREATE INDEX chunks_scope_ts ON chunks (scope_key, ts)")
    conn.execute(
        "CREATE VIRTUAL TABLE chunks_fts USING fts5(text, speaker, context, scope, session, "
        "tokenize='porter unicode61')"
    )
    conn.execute(
        f"CREATE VIRTUAL TABLE chunks_vec USING vec0(scope_key text partition key, session_id text, "
        f"embedding float[{dim}] distance_metric=cosine)"
    )
    conn.execute("CREATE TABLE scope_stats (scope_key TEXT PRIMARY KEY, n INTEGER NOT NULL, version INTEGER NOT NULL)")


def _v2(conn: Any, dim: int) -> None:
    # The entity graph. Existing chunks are backfilled, so an upgraded store answers graph queries at once.
    conn.execute(
        "CREATE TABLE entities (id INTEGER PRIMARY KEY, scope_key TEXT NOT NULL, name TEXT NOT NULL, "
        "df INTEGER NOT NULL DEFAULT 0, UNIQUE (scope_key, name))"
    )
    conn.execute(
        "CREATE TABLE mentions (entity_id INTEGER NOT NULL, chunk_id INTEGER NOT NULL, "
        "PRIMARY KEY (entity_id, chunk_id)) WITHOUT ROWID"
    )
    conn.execute("CREATE INDEX mentions_chunk ON mentions (chunk_id)")
    conn.execute(
        "CREATE TABLE relations (src INTEGER NOT NULL, dst INTEGER NOT NULL, weight INTEGER NOT NULL, "
        "PRIMARY KEY (src, dst)) WITHOUT ROWID"
    )
    rows = conn.execute("SELECT id, scope_key, text FROM chunks ORDER BY id").fetchall()
    for cid, skey, text in rows:
        _index_entities(conn, cid, skey, text)


# Each migration runs in the same transaction as the version bump: a failed upgrade leaves the old schema.
MIGRATIONS: list[tuple[int, Callable[[Any, int], None]]] = [(1, _v1), (2, _v2)]


def _index_entities(conn: Any, chunk_id: int, skey: str, text: str, meta: Mapping[str, Any] | None = None) -> None:
    ents, pairs = chunk_entities(text, meta)
    if not ents:
        return
    ids: dict[str, int] = {}
    for name in ents:
        conn.execute(
            "INSERT INTO entities (scope_key, name, df) VALUES (?, ?, 1) "
            "ON CONFLICT (scope_key, name) DO UPDATE SET df = df + 1",
            (skey, name),
        )
        ids[name] = conn.execute("SELECT id FROM entities WHERE scope_key = ? AND name = ?", (skey, name)).fetchone()[0]
    conn.executemany("INSERT OR IGNORE INTO mentions VALUES (?, ?)", [(eid, chunk_id) for eid in ids.values()])
    edges = [(ids[a], ids[b]) for a, b in pairs] + [(ids[b], ids[a]) for a, b in pairs]
    conn.executemany(
        "INSERT INTO relations VALUES (?, ?, 1) ON CONFLICT (src, dst) DO UPDATE SET weight = weight + 1", edges
    )


class SQLiteStore:
    """Memory store in one SQLite file. Create with ``await SQLiteStore.open(path, dim=384)``.

    ``exact_limit``: scopes with more rows than this are searched through the in-memory index.
    ``text_exact_limit``: in scopes with more rows than this, BM25 keeps only the rarest query terms, up to
    ``text_budget`` matching rows (exact BM25 below the limit).
    ``readers``: size of the reader connection pool (parallel queries).
    """

    def __init__(
        self,
        path: Path,
        dim: int,
        writer: Any,
        *,
        readers: int,
        exact_limit: int,
        text_exact_limit: int = 20_000,
        text_budget: int = 8_000,
        schema: int = SCHEMA_VERSION,
    ) -> None:
        self._path = path
        self._graph = schema >= 2  # a store held at schema 1 (upgrade tests) has no graph tables
        self._dim = dim
        self._writer = writer
        self._write_lock = threading.Lock()
        self._readers: queue.Queue[Any] = queue.Queue()
        self._reader_budget = readers
        self._reader_lock = threading.Lock()
        self._exact_limit = exact_limit
        self._vec_cache: dict[str, ScopeVectors] = {}
        self._text = SQLiteTextSearch(text_exact_limit=text_exact_limit, text_budget=text_budget)
        self._cache_lock = threading.Lock()
        self._all: list[Any] = [writer]
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: Path | str,
        *,
        dim: int,
        readers: int = 4,
        exact_limit: int = 5000,
        text_exact_limit: int = 20_000,
        text_budget: int = 8_000,
        migrate_to: int | None = None,
    ) -> SQLiteStore:
        """Open (creating or upgrading) the store at ``path``. ``dim`` must match an existing store's dimension.

        ``migrate_to`` stops migrations at that version (for upgrade tests); leave it ``None``.
        """
        p = Path(path)

        def _open() -> SQLiteStore:
            writer = _connect(p)
            try:
                schema = _migrate(writer, dim, SCHEMA_VERSION if migrate_to is None else migrate_to)
            except BaseException:
                writer.close()
                raise
            return cls(
                p,
                dim,
                writer,
                readers=readers,
                exact_limit=exact_limit,
                text_exact_limit=text_exact_limit,
                text_budget=text_budget,
                schema=schema,
            )

        return await asyncio.to_thread(_open)

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def path(self) -> Path:
        return self._path

    # -- connections -------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _reader(self) -> Iterator[Any]:
        if self._closed:
            raise StoreError("the memory store is closed")
        try:
            conn = self._readers.get_nowait()
        except queue.Empty:
            with self._reader_lock:
                if self._reader_budget > 0:
                    self._reader_budget -= 1
                    conn = _connect(self._path)
                    self._all.append(conn)
                else:
                    conn = None
            if conn is None:
                conn = self._readers.get()
        try:
            yield conn
        finally:
            self._readers.put(conn)

    @contextlib.contextmanager
    def _write(self) -> Iterator[Any]:
        if self._closed:
            raise StoreError("the memory store is closed")
        with self._write_lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    async def close(self) -> None:
        def _close() -> None:
            self._closed = True
            with self._write_lock:
                for conn in self._all:
                    conn.close()

        await asyncio.to_thread(_close)

    # -- writes ------------------------------------------------------------------------------------------------

    async def add_chunks(self, chunks: Sequence[NewChunk]) -> list[int]:
        vecs = validate_new_chunks(chunks, self._dim)

        def _add() -> list[int]:
            with self._write() as conn:
                return self._insert(conn, chunks, vecs)

        return await asyncio.to_thread(_add)

    async def replace_session(self, scope: Scope, session_id: str, chunks: Sequence[NewChunk]) -> list[int]:
        check_name(session_id, "session_id")
        check_session_chunks(scope, session_id, chunks)
        vecs = validate_new_chunks(chunks, self._dim)
        skey = scope_key(scope.owner, scope.tenant)

        def _replace() -> list[int]:
            # One write transaction (BEGIN IMMEDIATE): concurrent replacements run one after the other.
            with self._write() as conn:
                self._delete(conn, skey, session_id)
                return self._insert(conn, chunks, vecs)

        return await asyncio.to_thread(_replace)

    def _insert(self, conn: Any, chunks: Sequence[NewChunk], vecs: list[np.ndarray[Any, Any]]) -> list[int]:
        ids: list[int] = []
        now = time.time()
        touched: dict[str, int] = defaultdict(int)
        for c, v in zip(chunks, vecs, strict=True):
            skey = scope_key(c.owner, c.tenant)
            cur = conn.execute(
                "INSERT INTO chunks (scope_key, owner, tenant, session_id, speaker, ts, seq, source, kind, ref, "
                "text, meta, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    skey,
                    c.owner,
                    c.tenant,
                    c.session_id,
                    c.speaker,
                    float(c.ts),
                    int(c.seq),
                    c.source,
                    str(c.kind),
                    c.ref,
                    c.text,
                    json.dumps(dict(c.meta)),
                    now,
                ),
            )
            cid = int(cur.lastrowid)
            conn.execute(
                "INSERT INTO chunks_fts (rowid, text, speaker, context, scope, session) VALUES (?, ?, ?, ?, ?, ?)",
                (cid, c.text, c.speaker, c.context, scope_token(skey), scope_token(c.session_id)),
            )
            conn.execute(
                "INSERT INTO chunks_vec (rowid, scope_key, session_id, embedding) VALUES (?, ?, ?, ?)",
                (cid, skey, c.session_id, v.tobytes()),
            )
            if self._graph:
                _index_entities(conn, cid, skey, c.text, c.meta)
            touched[skey] += 1
            ids.append(cid)
        for skey, n in touched.items():
            conn.execute(
                "INSERT INTO scope_stats VALUES (?, ?, 1) ON CONFLICT (scope_key) DO UPDATE "
                "SET n = n + excluded.n, version = version + 1",
                (skey, n),
            )
        return ids

    async def delete_session(self, scope: Scope, session_id: str) -> int:
        check_name(session_id, "session_id")
        def _delete_session() -> int:
            with self._write() as conn:
                return self._delete(conn, scope_key(scope.owner, scope.tenant), session_id)

        return await asyncio.to_thread(_delete_session)

    def _delete(self, conn: Any, skey: str, session_id: str) -> int:
        ids = [
            r[0]
            for r in conn.execute("SELECT id FROM chunks WHERE scope_key = ? AND session_id = ?", (skey, session_id))
        ]
        for cid in ids:
            conn.execute("DELETE FROM chunks_fts WHERE rowid = ?", (cid,))
            conn.execute("DELETE FROM chunks_vec WHERE rowid = ?", (cid,))
            conn.execute(
                "UPDATE entities SET df = df - 1 WHERE id IN (SELECT entity_id FROM mentions WHERE chunk_id = ?)",
                (cid,),
            )
            conn.execute("DELETE FROM mentions WHERE chunk_id = ?", (cid,))
            conn.execute("DELETE FROM chunks WHERE id = ?", (cid,))
        if ids:
            conn.execute(
                "UPDATE scope_stats SET n = n - ?, version = version + 1 WHERE scope_key = ?", (len(ids), skey)
            )
        return len(ids)

    # -- reads -------------------------------------------------------------------------------------------------

    async def get_chunks(self, ids: Sequence[int]) -> list[Chunk]:
        return await asyncio.to_thread(self._get_sync, list(ids))

    def _get_sync(self, ids: list[int]) -> list[Chunk]:
        if not ids:
            return []
        with self._reader() as conn:
            rows = conn.execute(
                f"SELECT {CHUNK_COLUMNS} FROM chunks WHERE id IN ({','.join('?' * len(ids))})", ids
            ).fetchall()
        by_id = {int(r[0]): row_to_chunk(r) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    async def count(self, scope: Scope) -> int:
        def _count() -> int:
            skey = scope_key(scope.owner, scope.tenant)
            with self._reader() as conn:
                if scope.session_id is None:
                    row = conn.execute("SELECT n FROM scope_stats WHERE scope_key = ?", (skey,)).fetchone()
                    return int(row[0]) if row else 0
                return int(
                    conn.execute(
                        "SELECT count(*) FROM chunks WHERE scope_key = ? AND session_id = ?", (skey, scope.session_id)
                    ).fetchone()[0]
                )

        return await asyncio.to_thread(_count)

    async def search_dense(self, scope: Scope, vector: Vector, k: int) -> ScoredIds:
        q = np.asarray(vector, dtype=np.float32)
        if q.shape != (self._dim,):
            raise InvalidChunkError(f"query vector has shape {q.shape}, the store expects ({self._dim},)")
        return await asyncio.to_thread(self._dense_sync, scope, q, k)

    def _dense_sync(self, scope: Scope, q: np.ndarray[Any, Any], k: int) -> ScoredIds:
        if k <= 0:
            return []
        skey = scope_key(scope.owner, scope.tenant)
        with self._reader() as conn:
            stats = conn.execute("SELECT n, version FROM scope_stats WHERE scope_key = ?", (skey,)).fetchone()
            if stats is None:
                return []
            n, version = int(stats[0]), int(stats[1])
            if n > self._exact_limit:
                cache = self._scope_vectors(conn, skey, n, version)
                return cache.search(q, k, session=scope.session_id)
            if scope.session_id is None:
                rows = conn.execute(
                    "SELECT rowid, distance FROM chunks_vec WHERE embedding MATCH ? AND k = ? AND scope_key = ?",
                    (q.tobytes(), k, skey),
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT rowid, distance FROM chunks_vec WHERE embedding MATCH ? AND k = ? AND scope_key = ? "
                    "AND session_id = ?",
                    (q.tobytes(), k, skey, scope.session_id),
                ).fetchall()
        return [(int(r[0]), 1.0 - float(r[1])) for r in rows]

    def _scope_vectors(self, conn: Any, skey: str, n: int, version: int) -> ScopeVectors:
        def load(after: int) -> tuple[list[int], list[str], np.ndarray[Any, Any]]:
            rows = conn.execute(
                "SELECT c.id, c.session_id, v.embedding FROM chunks c JOIN chunks_vec v ON v.rowid = c.id "
                "WHERE c.scope_key = ? AND c.id > ? ORDER BY c.id",
                (skey, after),
            ).fetchall()
            vecs = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(len(rows), self._dim)
            return [int(r[0]) for r in rows], [str(r[1]) for r in rows], vecs

        with self._cache_lock:
            cached = self._vec_cache.get(skey)
            if cached is not None and cached.version == version:
                return cached
            after = int(cached.ids.max()) if cached is not None and len(cached.ids) else 0
            ids, sessions, vecs = load(after)
            if cached is not None and len(cached.ids) + len(ids) == n:
                fresh = cached.extended(version, ids, sessions, vecs)
            else:  # first load, or rows were deleted since: rebuild from scratch
                if after:
                    ids, sessions, vecs = load(0)
                fresh = ScopeVectors.build(version, ids, sessions, vecs)
            self._vec_cache[skey] = fresh
            return fresh

    async def search_text(
        self, scope: Scope, terms: Sequence[str], k: int, *, speaker_weight: float = 0.5, context_weight: float = 0.3
    ) -> ScoredIds:
        check_texts(terms, "search term")
        weights = (1.0, float(speaker_weight), float(context_weight))
        return await asyncio.to_thread(self._text_sync, scope, list(terms), k, weights)

    def _text_sync(self, scope: Scope, terms: list[str], k: int, weights: tuple[float, float, float]) -> ScoredIds:
        clean = SQLiteTextSearch.clean(terms)
        if not clean or k <= 0:
            return []
        with self._reader() as conn:
            return self._text.search(conn, scope, clean, k, weights)

    async def search_entities(self, scope: Scope, names: Sequence[str], k: int, *, hops: int = 1) -> ScoredIds:
        check_texts(names, "entity name")
        return await asyncio.to_thread(self._entities_sync, scope, list(dict.fromkeys(names)), k, hops)

    def _entities_sync(self, scope: Scope, names: list[str], k: int, hops: int) -> ScoredIds:
        if not names or k <= 0:
            return []
        with self._reader() as conn:
            return search_entities(conn, scope, names, k, hops)

    async def recent(self, scope: Scope, k: int) -> ScoredIds:
        def _recent() -> ScoredIds:
            skey = scope_key(scope.owner, scope.tenant)
            with self._reader() as conn:
                if scope.session_id is None:
                    rows = conn.execute(
                        "SELECT id, ts FROM chunks WHERE scope_key = ? ORDER BY ts DESC, id DESC LIMIT ?", (skey, k)
                    ).fetchall()
                else:
                    rows = conn.execute(
                        "SELECT id, ts FROM chunks WHERE scope_key = ? AND session_id = ? ORDER BY ts DESC, id DESC "
                        "LIMIT ?",
                        (skey, scope.session_id, k),
                    ).fetchall()
            return [(int(r[0]), float(r[1])) for r in rows]

        return await asyncio.to_thread(_recent)

    async def neighbours(self, ids: Sequence[int], window: int) -> dict[int, list[Chunk]]:
        def _neighbours() -> dict[int, list[Chunk]]:
            out: dict[int, list[Chunk]] = {}
            with self._reader() as conn:
                for cid in ids:
                    row = conn.execute("SELECT scope_key, session_id, seq FROM chunks WHERE id = ?", (cid,)).fetchone()
                    if row is None:
                        continue
                    rows = conn.execute(
                        f"SELECT {CHUNK_COLUMNS} FROM chunks WHERE scope_key = ? AND session_id = ? "
                        "AND seq BETWEEN ? AND ? AND id != ? ORDER BY seq",
                        (row[0], row[1], row[2] - window, row[2] + window, cid),
                    ).fetchall()
                    out[cid] = [row_to_chunk(r) for r in rows]
            return out

        return await asyncio.to_thread(_neighbours)

    async def schema_version(self) -> int:
        """The schema version of the open file."""

        def _v() -> int:
            with self._reader() as conn:
                return int(conn.execute("SELECT max(version) FROM memory_schema").fetchone()[0])

        return await asyncio.to_thread(_v)


def _migrate(conn: Any, dim: int, target: int) -> int:
    conn.execute("CREATE TABLE IF NOT EXISTS memory_schema (version INTEGER NOT NULL)")
    current = conn.execute("SELECT coalesce(max(version), 0) FROM memory_schema").fetchone()[0]
    if current > SCHEMA_VERSION:
        raise StoreError(
            f"the memory store has schema version {current}, newer than this code ({SCHEMA_VERSION}): upgrade "
            "aoai-realtime"
        )
    if current >= 1:
        stored = int(conn.execute("SELECT value FROM memory_settings WHERE key = 'dim'").fetchone()[0])
        if stored != dim:
            raise StoreError(
                f"the memory store holds {stored}-d vectors but dim={dim} was requested: use the embedding model "
                "the store was built with, or a new file"
            )
    for version, step in MIGRATIONS:
        if current < version <= target:
            conn.execute("BEGIN IMMEDIATE")
            try:
                step(conn, dim)
                conn.execute("INSERT INTO memory_schema VALUES (?)", (version,))
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            _log.info("memory store migrated to schema version %d", version)
    return int(conn.execute("SELECT max(version) FROM memory_schema").fetchone()[0])
