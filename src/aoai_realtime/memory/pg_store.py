"""The scale-out back end: PostgreSQL with pgvector (HNSW, cosine) and built-in full-text search.

Open with ``await PostgresStore.open(conninfo, dim=384)``; it holds a psycopg async connection pool.

Scoped nearest-neighbour queries return ``min(k, rows in scope)`` rows. An HNSW scan filters after it walks
the graph, so a selective scope can starve it: with pgvector 0.8+ the store turns on iterative scans
(``hnsw.iterative_scan = relaxed_order``); on older pgvector (pgserver 0.1.4 bundles 0.6.2) it raises
``hnsw.ef_search`` in proportion to the scope's selectivity and, if the scan still comes back short, runs an exact
scan over the scope's rows (a B-tree range, then a sort). Scopes up to ``exact_limit`` rows always use the exact
scan, which is complete and, at that size, faster than the graph.

Full-text ranking uses ``ts_rank`` (weights: text A, speaker B, search-only context C) with an IDF factor
per term computed from the scope's own counts, which brings it close to BM25's ordering (:mod:`.pg_search`).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import get_logger
from .pg_search import PgTextSearch, scope_count
from .store import (
    CHUNK_COLUMNS,
    ScoredIds,
    chunk_entities,
    hop_weight,
    idf,
    row_to_chunk,
    scope_key,
    strongest,
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

__all__ = ["PG_SCHEMA_VERSION", "PostgresStore"]

_log = get_logger(__name__)

PG_SCHEMA_VERSION = 2
_MENTION_CAP = 400


def _v1(dim: int) -> list[str]:
    return [
        "CREATE EXTENSION IF NOT EXISTS vector",
        "CREATE TABLE memory_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        f"INSERT INTO memory_settings VALUES ('dim', '{int(dim)}')",
        """CREATE TABLE chunks (
            id BIGSERIAL PRIMARY KEY, scope_key TEXT NOT NULL, owner TEXT NOT NULL, tenant TEXT NOT NULL,
            session_id TEXT NOT NULL, speaker TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL, seq INTEGER NOT NULL,
            source TEXT NOT NULL, kind TEXT NOT NULL, ref TEXT NOT NULL, text TEXT NOT NULL, meta JSONB NOT NULL,
            context TEXT NOT NULL DEFAULT '', created DOUBLE PRECISION NOT NULL,
            tsv tsvector GENERATED ALWAYS AS (
                setweight(to_tsvector('english', text), 'A') || setweight(to_tsvector('english', speaker), 'B')
                || setweight(to_tsvector('english', context), 'C')) STORED)""",
        # Vectors (1.5 kB at 384-d) get their own table: full-text and metadata scans over chunks then read
        # about ten times fewer pages than if every row carried its vector.
        f"""CREATE TABLE chunk_vectors (
            id BIGINT PRIMARY KEY REFERENCES chunks (id) ON DELETE CASCADE, scope_key TEXT NOT NULL,
            session_id TEXT NOT NULL, embedding vector({int(dim)}) NOT NULL)""",
        "CREATE INDEX chunk_vectors_scope ON chunk_vectors (scope_key, session_id)",
        "CREATE INDEX chunks_scope_session ON chunks (scope_key, session_id, seq)",
        "CREATE INDEX chunks_scope_ts ON chunks (scope_key, ts)",
        "CREATE INDEX chunks_tsv ON chunks USING gin (tsv)",
        "CREATE INDEX chunk_vectors_hnsw ON chunk_vectors USING hnsw (embedding vector_cosine_ops)",
        "CREATE TABLE scope_stats (scope_key TEXT PRIMARY KEY, n BIGINT NOT NULL, version BIGINT NOT NULL)",
    ]


def _v2(dim: int) -> list[str]:
    return [
        "CREATE TABLE entities (id BIGSERIAL PRIMARY KEY, scope_key TEXT NOT NULL, name TEXT NOT NULL, "
        "df INTEGER NOT NULL DEFAULT 0, UNIQUE (scope_key, name))",
        "CREATE TABLE mentions (entity_id BIGINT NOT NULL, chunk_id BIGINT NOT NULL, "
        "PRIMARY KEY (entity_id, chunk_id))",
        "CREATE INDEX mentions_chunk ON mentions (chunk_id)",
        "CREATE TABLE relations (src BIGINT NOT NULL, dst BIGINT NOT NULL, weight INTEGER NOT NULL, "
        "PRIMARY KEY (src, dst))",
    ]


# (version, DDL, backfill entities afterwards?) Each step commits with its version row, or not at all.
MIGRATIONS: list[tuple[int, Callable[[int], list[str]], bool]] = [(1, _v1, False), (2, _v2, True)]


async def _index_entities(
    cur: Any, rows: Sequence[tuple[int, str, str]], metas: Sequence[Mapping[str, Any]] | None = None
) -> None:
    """Batch-write entities, mentions and relations for ``(chunk_id, scope_key, text)`` rows (``metas``: the
    chunks' meta, in the same order, for a parser's graph; see :func:`~.store.chunk_entities`)."""
    df: dict[tuple[str, str], int] = defaultdict(int)
    per_chunk: list[tuple[int, str, list[str], list[tuple[str, str]]]] = []
    for i, (cid, skey, text) in enumerate(rows):
        ents, pairs = chunk_entities(text, metas[i] if metas else None)
        for e in ents:
            df[(skey, e)] += 1
        per_chunk.append((cid, skey, ents, pairs))
    if not df:
        return
    keys = list(df)
    await cur.execute(
        "INSERT INTO entities (scope_key, name, df) SELECT * FROM unnest(%s::text[], %s::text[], %s::int[]) "
        "ON CONFLICT (scope_key, name) DO UPDATE SET df = entities.df + excluded.df RETURNING id, scope_key, name",
        ([k[0] for k in keys], [k[1] for k in keys], [df[k] for k in keys]),
    )
    ids = {(r[1], r[2]): int(r[0]) for r in await cur.fetchall()}
    mentions: set[tuple[int, int]] = set()
    edges: dict[tuple[int, int], int] = defaultdict(int)
    for cid, skey, ents, pairs in per_chunk:
        mentions.update((ids[(skey, e)], cid) for e in ents)
        for a, b in pairs:
            ia, ib = ids[(skey, a)], ids[(skey, b)]
            edges[(ia, ib)] += 1
            edges[(ib, ia)] += 1
    m = sorted(mentions)
    await cur.execute(
        "INSERT INTO mentions SELECT * FROM unnest(%s::bigint[], %s::bigint[]) ON CONFLICT DO NOTHING",
        ([x[0] for x in m], [x[1] for x in m]),
    )
    if edges:
        pairs_sorted = sorted(edges)
        await cur.execute(
            "INSERT INTO relations SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::int[]) "
            "ON CONFLICT (src, dst) DO UPDATE SET weight = relations.weight + excluded.weight",
            ([x[0] for x in pairs_sorted], [x[1] for x in pairs_sorted], [edges[x] for x in pairs_sorted]),
        )


class PostgresStore:
    """Memory store on PostgreSQL + pgvector. Create with :meth:`open`; close with :meth:`close`."""

    def __init__(
        self,
        pool: Any,
        dim: int,
        *,
        exact_limit: int,
        iterative_scan: bool,
        text_exact_limit: int = 5_000,
        text_budget: int = 3_000,
    ) -> None:
        self._pool = pool
        self._graph = True
        self._text = PgTextSearch(text_exact_limit=text_exact_limit, text_budget=text_budget)
        self._dim = dim
        self._exact_limit = exact_limit
        self.iterative_scan = iterative_scan

    @classmethod
    async def open(
        cls,
        conninfo: str,
        *,
        dim: int,
        min_size: int = 1,
        max_size: int = 8,
        exact_limit: int = 2_000,
        text_exact_limit: int = 5_000,
        text_budget: int = 3_000,
        migrate_to: int | None = None,
    ) -> PostgresStore:
        """Connect a pool to ``conninfo``, create or upgrade the schema, and return the store.

        ``exact_limit``: scopes up to this many rows get exact nearest-neighbour scans. ``text_exact_limit``: in
        larger scopes, full-text ranking keeps only the rarest query terms, up to ``text_budget`` matching rows.
        The role needs ``CREATE`` on the database the first time (``CREATE EXTENSION vector``). ``migrate_to``
        stops migrations at that version (for upgrade tests); leave it ``None``.
        """
        from pgvector.psycopg import register_vector_async
        from psycopg_pool import AsyncConnectionPool

        async def _setup(conn: Any) -> None:
            async with conn.cursor() as cur:
                await cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
            await conn.commit()
            await register_vector_async(conn)

        # Autocommit: reads need no BEGIN/ROLLBACK round trips; writes open explicit transactions.
        pool = AsyncConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            configure=_setup,
            kwargs={"autocommit": True},
            open=False,
        )
        try:
            await pool.open(wait=True, timeout=30.0)
            async with pool.connection() as conn:
                schema = await _migrate(conn, dim, PG_SCHEMA_VERSION if migrate_to is None else migrate_to)
                cur = await conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
                row = await cur.fetchone()
            version = tuple(int(x) for x in re.findall(r"\d+", str(row[0] if row else "0"))[:2])
        except BaseException:
            await pool.close()
            raise
        store = cls(
            pool,
            dim,
            exact_limit=exact_limit,
            iterative_scan=version >= (0, 8),
            text_exact_limit=text_exact_limit,
            text_budget=text_budget,
        )
        store._graph = schema >= 2  # a database held at schema 1 (upgrade tests) has no graph tables
        return store

    @property
    def dim(self) -> int:
        return self._dim

    async def close(self) -> None:
        await self._pool.close()

    async def analyze(self) -> None:
        """Vacuum and refresh planner statistics, as autovacuum eventually does; call it after a bulk load.

        The statistics tell the planner how selective scopes and terms are. The vacuum sets hint bits and the
        visibility map, which queries over freshly loaded rows otherwise pay for (graph lookups also become
        index-only scans): at 10k rows the benchmark's bm25 p50 was 6.6 ms after ANALYZE alone, 3.7 ms after this.
        """
        async with self._pool.connection() as conn:
            await conn.execute("VACUUM (ANALYZE) chunks, chunk_vectors, entities, mentions, relations, scope_stats")

    async def schema_version(self) -> int:
        """The schema version of the database."""
        async with self._pool.connection() as conn:
            cur = await conn.execute("SELECT max(version) FROM memory_schema")
            row = await cur.fetchone()
            return int(row[0])

    async def add_chunks(self, chunks: Sequence[NewChunk]) -> list[int]:
        vecs = validate_new_chunks(chunks, self._dim)
        if not chunks:
            return []
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            return await self._insert(cur, chunks, vecs)

    async def replace_session(self, scope: Scope, session_id: str, chunks: Sequence[NewChunk]) -> list[int]:
        check_name(session_id, "session_id")
        check_session_chunks(scope, session_id, chunks)
        vecs = validate_new_chunks(chunks, self._dim)
        skey = scope_key(scope.owner, scope.tenant)
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            # Under READ COMMITTED two replacements could each delete the (same) old rows and both insert: a lock
            # on the session, held to commit, makes the second one wait and then delete the first one's rows.
            await cur.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 7263502))", (f"{skey}\x1f{session_id}",)
            )
            await self._delete(cur, skey, session_id)
            return await self._insert(cur, chunks, vecs) if chunks else []

    async def _insert(self, cur: Any, chunks: Sequence[NewChunk], vecs: Sequence[Any]) -> list[int]:
        now = time.time()
        touched: dict[str, int] = defaultdict(int)
        params = []
        for c in chunks:
            skey = scope_key(c.owner, c.tenant)
            meta = json.dumps(dict(c.meta))
            params.append(
                (skey, c.owner, c.tenant, c.session_id, c.speaker, float(c.ts), int(c.seq), c.source,
                 str(c.kind), c.ref, c.text, meta, c.context, now)
            )  # fmt: skip
            touched[skey] += 1
        # executemany pipelines the rows: one network round trip per batch, not one per row.
        await cur.executemany(
            "INSERT INTO chunks (scope_key, owner, tenant, session_id, speaker, ts, seq, source, kind, ref, "
            "text, meta, context, created) VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            params,
            returning=True,
        )
        ids: list[int] = []
        while True:
            row = await cur.fetchone()
            ids.append(int(row[0]))
            if not cur.nextset():
                break
        await cur.executemany(
            "INSERT INTO chunk_vectors (id, scope_key, session_id, embedding) VALUES (%s, %s, %s, %s)",
            [(cid, p[0], p[3], v) for cid, p, v in zip(ids, params, vecs, strict=True)],
        )
        if self._graph:
            await _index_entities(
                cur,
                [(cid, scope_key(c.owner, c.tenant), c.text) for cid, c in zip(ids, chunks, strict=True)],
                [c.meta for c in chunks],
            )
        for skey, n in touched.items():
            await cur.execute(
                "INSERT INTO scope_stats VALUES (%s, %s, 1) ON CONFLICT (scope_key) DO UPDATE "
                "SET n = scope_stats.n + excluded.n, version = scope_stats.version + 1",
                (skey, n),
            )
        return ids

    async def delete_session(self, scope: Scope, session_id: str) -> int:
        check_name(session_id, "session_id")
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            return await self._delete(cur, scope_key(scope.owner, scope.tenant), session_id)

    async def _delete(self, cur: Any, skey: str, session_id: str) -> int:
        await cur.execute("SELECT id FROM chunks WHERE scope_key = %s AND session_id = %s", (skey, session_id))
        ids = [int(r[0]) for r in await cur.fetchall()]
        if ids:
            await cur.execute(
                "UPDATE entities e SET df = e.df - m.cnt FROM (SELECT entity_id, count(*) AS cnt FROM mentions "
                "WHERE chunk_id = ANY(%s) GROUP BY entity_id) m WHERE e.id = m.entity_id",
                (ids,),
            )
            await cur.execute("DELETE FROM mentions WHERE chunk_id = ANY(%s)", (ids,))
            await cur.execute("DELETE FROM chunks WHERE id = ANY(%s)", (ids,))
            await cur.execute(
                "UPDATE scope_stats SET n = n - %s, version = version + 1 WHERE scope_key = %s", (len(ids), skey)
            )
        return len(ids)

    async def get_chunks(self, ids: Sequence[int]) -> list[Chunk]:
        if not ids:
            return []
        async with self._pool.connection() as conn:
            cur = await conn.execute(f"SELECT {CHUNK_COLUMNS} FROM chunks WHERE id = ANY(%s)", (list(ids),))
            rows = await cur.fetchall()
        by_id = {int(r[0]): row_to_chunk(r) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    async def count(self, scope: Scope) -> int:
        skey = scope_key(scope.owner, scope.tenant)
        async with self._pool.connection() as conn:
            return await scope_count(conn, skey, scope.session_id)

    async def search_dense(self, scope: Scope, vector: Vector, k: int) -> ScoredIds:
        q = np.asarray(vector, dtype=np.float32)
        if q.shape != (self._dim,):
            raise InvalidChunkError(f"query vector has shape {q.shape}, the store expects ({self._dim},)")
        if k <= 0:
            return []
        skey = scope_key(scope.owner, scope.tenant)
        where = "scope_key = %s" + ("" if scope.session_id is None else " AND session_id = %s")
        params: tuple[Any, ...] = (skey,) if scope.session_id is None else (skey, scope.session_id)
        async with self._pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "SELECT (SELECT n FROM scope_stats WHERE scope_key = %s), (SELECT sum(n) FROM scope_stats)", (skey,)
            )
            n_scope, total = ((int(x) if x is not None else 0) for x in await cur.fetchone())
            if scope.session_id is not None and n_scope:
                n_scope = await scope_count(conn, skey, scope.session_id)
            if n_scope == 0:
                return []
            want = min(k, n_scope)
            if n_scope > self._exact_limit:
                settings = f"SET LOCAL hnsw.ef_search = {_ef_search(k, n_scope / max(total, n_scope))}"
                if self.iterative_scan:
                    settings += "; SET LOCAL hnsw.iterative_scan = relaxed_order"
                await conn.execute(settings)
                cur = await conn.execute(
                    f"SELECT id, embedding <=> %b AS d FROM chunk_vectors WHERE {where} ORDER BY d LIMIT %s",
                    (q, *params, k),
                )
                rows = await cur.fetchall()
                if len(rows) >= want:
                    rows.sort(key=lambda r: r[1])  # relaxed_order may return rows slightly out of order
                    return [(int(r[0]), 1.0 - float(r[1])) for r in rows]
            # Exact scan over the scope: the "+ 0" keeps the planner off the HNSW index.
            cur = await conn.execute(
                f"SELECT id, (embedding <=> %b) + 0 AS d FROM chunk_vectors WHERE {where} ORDER BY d LIMIT %s",
                (q, *params, k),
            )
            rows = await cur.fetchall()
        return [(int(r[0]), 1.0 - float(r[1])) for r in rows]

    async def search_text(
        self, scope: Scope, terms: Sequence[str], k: int, *, speaker_weight: float = 0.5, context_weight: float = 0.3
    ) -> ScoredIds:
        check_texts(terms, "search term")
        clean = PgTextSearch.clean(terms)
        if not clean or k <= 0:
            return []
        async with self._pool.connection() as conn:
            return await self._text.search(
                conn, scope, clean, k, speaker_weight=speaker_weight, context_weight=context_weight
            )

    async def search_entities(self, scope: Scope, names: Sequence[str], k: int, *, hops: int = 1) -> ScoredIds:
        check_texts(names, "entity name")
        names = list(dict.fromkeys(names))
        if not names or k <= 0:
            return []
        skey = scope_key(scope.owner, scope.tenant)
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT e.id, e.df, s.n FROM scope_stats s JOIN entities e ON e.scope_key = s.scope_key "
                "WHERE s.scope_key = %s AND e.name = ANY(%s) AND e.df > 0",
                (skey, names),
            )
            rows = await cur.fetchall()
            if not rows:
                return []
            total = int(rows[0][2])
            frontier = [(int(r[0]), idf(int(r[1]), total)) for r in rows]
            if hops >= 2:
                weight_of = dict(frontier)
                cur = await conn.execute(
                    "SELECT s.src, r.dst, r.weight, e.df FROM unnest(%s::bigint[]) AS s(src), LATERAL ("
                    "SELECT r.dst, r.weight FROM relations r JOIN entities e2 ON e2.id = r.dst "
                    "WHERE r.src = s.src AND e2.df > 0 ORDER BY r.weight DESC LIMIT 5) r "
                    "JOIN entities e ON e.id = r.dst",
                    ([e for e, _ in frontier],),
                )
                seen = set(weight_of)
                for src, dst, weight, df in await cur.fetchall():
                    if int(dst) not in seen:
                        seen.add(int(dst))
                        w = weight_of[int(src)]
                        frontier.append((int(dst), hop_weight(w, int(weight), int(df), total)))
            frontier = strongest(frontier)
            # Join chunks only to filter by session: a join per mention costs a heap visit each.
            source = (
                "mentions m WHERE m.entity_id = s.eid"
                if scope.session_id is None
                else "mentions m JOIN chunks c ON c.id = m.chunk_id WHERE m.entity_id = s.eid AND c.session_id = %s"
            )
            # Sum per chunk in the database and ship only the top k: a common entity brings _MENTION_CAP rows, and
            # turning thousands of rows into Python objects cost more than the query (5.3 ms against 2.4 at 100k).
            cur = await conn.execute(
                "SELECT m.chunk_id, sum(s.w) AS score FROM unnest(%s::bigint[], %s::float8[]) AS s(eid, w), LATERAL ("
                f"SELECT m.chunk_id FROM {source} ORDER BY m.chunk_id DESC LIMIT %s) m "
                "GROUP BY m.chunk_id ORDER BY score DESC, m.chunk_id DESC LIMIT %s",
                (
                    [e for e, _ in frontier],
                    [w for _, w in frontier],
                    *(() if scope.session_id is None else (scope.session_id,)),
                    _MENTION_CAP,
                    k,
                ),
            )
            return [(int(r[0]), float(r[1])) for r in await cur.fetchall()]

    async def recent(self, scope: Scope, k: int) -> ScoredIds:
        skey = scope_key(scope.owner, scope.tenant)
        async with self._pool.connection() as conn:
            if scope.session_id is None:
                cur = await conn.execute(
                    "SELECT id, ts FROM chunks WHERE scope_key = %s ORDER BY ts DESC, id DESC LIMIT %s", (skey, k)
                )
            else:
                cur = await conn.execute(
                    "SELECT id, ts FROM chunks WHERE scope_key = %s AND session_id = %s ORDER BY ts DESC, id DESC "
                    "LIMIT %s",
                    (skey, scope.session_id, k),
                )
            return [(int(r[0]), float(r[1])) for r in await cur.fetchall()]

    async def neighbours(self, ids: Sequence[int], window: int) -> dict[int, list[Chunk]]:
        if not ids:
            return {}
        cols = ", ".join(f"c.{c.strip()}" for c in CHUNK_COLUMNS.split(","))
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT a.id, {cols} FROM chunks a JOIN chunks c ON c.scope_key = a.scope_key "
                "AND c.session_id = a.session_id AND c.seq BETWEEN a.seq - %s AND a.seq + %s AND c.id <> a.id "
                "WHERE a.id = ANY(%s) ORDER BY a.id, c.seq",
                (window, window, list(ids)),
            )
            rows = await cur.fetchall()
        out: dict[int, list[Chunk]] = {int(i): [] for i in ids}
        for r in rows:
            out[int(r[0])].append(row_to_chunk(r[1:]))
        return out


def _ef_search(k: int, fraction: float) -> int:
    """``hnsw.ef_search`` for a scan that should keep ``k`` rows after a filter passing ``fraction`` of them.

    pgvector before 0.8 filters the ``ef_search`` nearest rows it found, so the number kept is binomial with mean
    ``ef * fraction``: ask for enough that ``k`` survive with three standard deviations to spare (115 for
    k=100 in a scope holding 99% of the rows; 253 at 50%). The cap is pgvector's limit; a scan that still comes
    back short is redone exactly.
    """
    spare = 3.0 * math.sqrt(k * max(0.0, 1.0 - fraction))
    return int(min(1000, max(40, math.ceil((k + spare) / max(fraction, 1e-6)) + 10)))


async def _migrate(conn: Any, dim: int, target: int) -> int:
    # An advisory lock serialises concurrent first starts of several processes on one database.
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(7263501)")
        await conn.execute("CREATE TABLE IF NOT EXISTS memory_schema (version INTEGER NOT NULL)")
        cur = await conn.execute("SELECT coalesce(max(version), 0) FROM memory_schema")
        current = int((await cur.fetchone())[0])
        if current > PG_SCHEMA_VERSION:
            raise StoreError(
                f"the memory database has schema version {current}, newer than this code ({PG_SCHEMA_VERSION}): "
                "upgrade aoai-realtime"
            )
        if current >= 1:
            cur = await conn.execute("SELECT value FROM memory_settings WHERE key = 'dim'")
            stored = int((await cur.fetchone())[0])
            if stored != dim:
                raise StoreError(
                    f"the memory database holds {stored}-d vectors but dim={dim} was requested: use the embedding "
                    "model it was built with, or another database"
                )
        for version, ddl, backfill in MIGRATIONS:
            if current < version <= target:
                async with conn.transaction(), conn.cursor() as cur:
                    for stmt in ddl(dim):
                        await cur.execute(stmt)
                    if backfill:
                        await cur.execute("SELECT id, scope_key, text FROM chunks ORDER BY id")
                        rows = [(int(r[0]), str(r[1]), str(r[2])) for r in await cur.fetchall()]
                        for start in range(0, len(rows), 1000):
                            await _index_entities(cur, rows[start : start + 1000])
                    await cur.execute("INSERT INTO memory_schema VALUES (%s)", (version,))
                _log.info("memory database migrated to schema version %d", version)
        cur = await conn.execute("SELECT max(version) FROM memory_schema")
        return int((await cur.fetchone())[0])
