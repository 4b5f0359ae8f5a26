"""The store interface both back ends implement (:class:`SQLiteStore`, :class:`PostgresStore`).

A store keeps chunks (text + metadata), their vectors, a full-text index and the entity graph, and answers
the primitive queries hybrid retrieval fuses. Every query takes a :class:`Scope` and returns only rows of that
scope; with ``k`` given it returns ``min(k, rows in scope that match)`` rows, however selective the scope is.
Results are ``(chunk_id, score)`` pairs, best first; higher scores are better.

Every entry point refuses input a database cannot hold (a NUL character, a lone surrogate; any control character
in an owner, tenant or session id) with :class:`InvalidChunkError` before it reaches the driver.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from .text import entity_pairs, extract_entities
from .types import Chunk, ChunkKind, NewChunk, Scope, Vector, check_name

__all__ = ["MemoryStore", "ScoredIds", "chunk_entities", "scope_key"]

ScoredIds = list[tuple[int, float]]

# In a large scope where even the rarest query term matches more rows than the ranking budget, a full-text match
# must hold the rarest term and one of this many next rarest terms (see prune_terms).
NARROW_TERMS = 2

# Graph search follows at most this many entities (the highest weighted): a query naming more is pathological, and
# SQLite refuses a compound SELECT of over 500 terms.
MAX_GRAPH_ENTITIES = 256


@runtime_checkable
class MemoryStore(Protocol):
    """What hybrid retrieval and the agent tools need from a back end."""

    @property
    def dim(self) -> int:
        """The vector dimension the store was created with."""
        ...

    async def add_chunks(self, chunks: Sequence[NewChunk]) -> list[int]:
        """Validate, then write all chunks in one transaction; return their ids in input order.

        Raises :class:`InvalidChunkError` (nothing written) for empty/huge text or a wrong vector dimension.
        """
        ...

    async def get_chunks(self, ids: Sequence[int]) -> list[Chunk]:
        """The chunks with these ids, in the given order (missing ids are skipped)."""
        ...

    async def search_dense(self, scope: Scope, vector: Vector, k: int) -> ScoredIds:
        """Nearest chunks by cosine similarity (score = cosine similarity)."""
        ...

    async def search_text(
        self, scope: Scope, terms: Sequence[str], k: int, *, speaker_weight: float = 0.5, context_weight: float = 0.3
    ) -> ScoredIds:
        """Full-text ranking (BM25 on SQLite, ``ts_rank_cd`` on PostgreSQL) of chunks matching any term in their
        text (weight 1), speaker name or search-only context; a weight of 0 leaves that field out."""
        ...

    async def search_entities(self, scope: Scope, names: Sequence[str], k: int, *, hops: int = 1) -> ScoredIds:
        """Chunks that mention the named entities (and, with ``hops=2``, entities that co-occur with them),
        scored by inverse document frequency."""
        ...

    async def recent(self, scope: Scope, k: int) -> ScoredIds:
        """The newest chunks by ``ts`` (score = ts)."""
        ...

    async def neighbours(self, ids: Sequence[int], window: int) -> dict[int, list[Chunk]]:
        """For each id, the chunks of the same scope and session with ``seq`` within ``window`` (itself excluded)."""
        ...

    async def count(self, scope: Scope) -> int:
        """Number of chunks in the scope."""
        ...

    async def delete_session(self, scope: Scope, session_id: str) -> int:
        """Delete a session's chunks (and their graph mentions); return how many were deleted."""
        ...

    async def replace_session(self, scope: Scope, session_id: str, chunks: Sequence[NewChunk]) -> list[int]:
        """Replace every chunk of the session with ``chunks`` in one transaction; return the new ids.

        Every chunk must carry ``scope``'s owner and tenant and ``session_id`` (:class:`InvalidChunkError`
        otherwise, nothing written). Concurrent replacements of one session serialise: the session ends up
        holding exactly one of them, never a mix or two copies. This is what makes re-indexing idempotent.
        """
        ...

    async def close(self) -> None:
        """Release connections. The store cannot be used afterwards."""
        ...


def scope_key(owner: str, tenant: str) -> str:
    """The single string both back ends partition and filter on: ``tenant``, U+001F, ``owner``.

    The encoding is unambiguous because neither part may hold a control character (:func:`check_name`, also
    enforced by :class:`Scope` and :func:`validate_new_chunks`): the key has exactly one U+001F, so no two
    ``(owner, tenant)`` pairs share a key. Keys written before that rule stay readable unchanged; a row whose
    tenant or owner held a control character (possible only then) can no longer be reached by any scope.
    """
    check_name(owner, "owner")
    check_name(tenant, "tenant")
    return f"{tenant}\x1f{owner}"


def scope_token(value: str) -> str:
    """A word-like token standing for a scope or session inside a full-text index."""
    return "z" + hashlib.sha1(value.encode()).hexdigest()[:20]


def chunk_entities(text: str, meta: Mapping[str, Any] | None = None) -> tuple[list[str], list[tuple[str, str]]]:
    """Entities (names and two-word phrases) to index for a chunk, and co-occurrence relations between its
    capitalised names (phrases are left out of relations to keep the graph small). When ``meta["graph"]`` holds a
    parser's reading of the chunk (``{"entities": [...], "relations": [[source, relation, target], ...]}``, see
    :mod:`.graph`), its entities and its relations' (source, target) pairs are indexed instead."""
    graph = (meta or {}).get("graph")
    if isinstance(graph, Mapping):
        ents = list(dict.fromkeys(str(e) for e in graph.get("entities", ()) if isinstance(e, str) and e))[:48]
        kept = set(ents)
        rels = [r for r in graph.get("relations", ()) if isinstance(r, list | tuple) and len(r) == 3]
        return ents, [(str(r[0]), str(r[2])) for r in rels if r[0] in kept and r[2] in kept and r[0] != r[2]]
    names = extract_entities(text, extra_noun_phrases=False)
    ents = extract_entities(text, extra_noun_phrases=True)
    return ents, entity_pairs(names)


def prune_terms(dfs: Mapping[str, int], budget: int) -> tuple[list[str], bool]:
    """The query terms to rank in a large scope, rarest first, and whether a match must hold two of them.

    Ranking costs about a microsecond per matching row (FTS5's bm25, PostgreSQL's heap visit and tsvector walk),
    and common terms carry little IDF: keep the rarest terms (document frequency ``dfs[term]``, absent ones
    dropped) whose rows add up to ``budget``. When even the rarest term matches more rows than that, a row must also
    hold one of the next :data:`NARROW_TERMS` rarest terms: the index intersects the posting lists, so far fewer
    rows are read, and they are ranked on all those terms, so rows holding several come first, as under BM25. On a
    100k-row PostgreSQL scope whose terms each match 7% of it, this ranks about 1k rows instead of 7k: search_text
    takes 3.6 ms instead of 7.2 (p50, alone).
    """
    present = sorted((t for t, df in dfs.items() if df > 0), key=lambda t: (dfs[t], t))
    if present and dfs[present[0]] > budget:
        return present[: 1 + NARROW_TERMS], len(present) > 1
    kept: list[str] = []
    total = 0
    for t in present:
        if kept and total + dfs[t] > budget:
            break
        kept.append(t)
        total += dfs[t]
    return kept, False


def hop_weight(source_weight: float, relation_weight: int, df: int, n: int) -> float:
    """The weight of an entity reached in the graph's second hop: half its IDF, scaled down when the relation was
    seen only once and by how strongly its source entity was matched."""
    return 0.5 * source_weight * min(1.0, relation_weight / 2.0) * idf(df, n) / (1 + source_weight)


def strongest(frontier: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """The :data:`MAX_GRAPH_ENTITIES` highest-weighted ``(entity, weight)`` pairs of ``frontier``."""
    return sorted(frontier, key=lambda ew: -ew[1])[:MAX_GRAPH_ENTITIES]


def idf(df: int, n: int) -> float:
    """BM25-style inverse document frequency (never negative)."""
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))


def row_to_chunk(row: Sequence[Any]) -> Chunk:
    """Build a :class:`Chunk` from ``(id, owner, tenant, session_id, speaker, ts, seq, source, kind, ref, text,
    meta)``; ``meta`` may be a JSON string or a mapping."""
    meta = row[11]
    meta_map: Mapping[str, Any] = json.loads(meta) if isinstance(meta, str) else dict(meta or {})
    return Chunk(
        id=int(row[0]),
        owner=row[1],
        tenant=row[2],
        session_id=row[3],
        speaker=row[4],
        ts=float(row[5]),
        seq=int(row[6]),
        source=row[7],
        kind=ChunkKind(row[8]),
        ref=row[9],
        text=row[10],
        meta=meta_map,
    )


CHUNK_COLUMNS = "id, owner, tenant, session_id, speaker, ts, seq, source, kind, ref, text, meta"
