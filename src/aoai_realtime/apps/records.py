"""The apps' own records in one SQLite file: ended calls, visit answers and outcomes, reviews, and the labelled
knowledge graph. What retrieval needs lives in the memory store; what a person browses (and what the visit tools
track during a call) lives here.

Every read takes the owner (the user, or the visit's subject) and returns only that owner's rows; writes that a
retry may repeat are keyed so they replace instead of adding (calls: insert once; graph: replace per call;
answers: one per question per call; reviews: one per reviewer per thread).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..server.hooks import CallRecord, ToolCallRecord, TranscriptTurn

__all__ = ["AppRecords", "GraphEntity", "GraphRelation", "Review", "StoredAnswer"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    call_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, persona_id TEXT NOT NULL, started_at REAL NOT NULL,
    ended_at REAL NOT NULL, ended_reason TEXT NOT NULL, turns TEXT NOT NULL, tool_calls TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS calls_user ON calls (user_id, ended_at);
CREATE TABLE IF NOT EXISTS visit_answers (
    call_id TEXT NOT NULL, user_id TEXT NOT NULL, question_id TEXT NOT NULL, answer TEXT NOT NULL,
    status TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (call_id, question_id));
CREATE TABLE IF NOT EXISTS visit_outcomes (
    call_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS reviews (
    thread_id TEXT NOT NULL, reviewer TEXT NOT NULL, notes TEXT NOT NULL, reviewed_at REAL NOT NULL,
    updated_at REAL NOT NULL, PRIMARY KEY (thread_id, reviewer));
CREATE TABLE IF NOT EXISTS graph_entities (
    owner TEXT NOT NULL, call_id TEXT NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL,
    PRIMARY KEY (owner, call_id, name));
CREATE TABLE IF NOT EXISTS graph_relations (
    owner TEXT NOT NULL, call_id TEXT NOT NULL, source TEXT NOT NULL, relation TEXT NOT NULL, target TEXT NOT NULL,
    PRIMARY KEY (owner, call_id, source, relation, target));
"""


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    question_id: str
    answer: str
    status: str  # "answered" | "declined"
    at: float


@dataclass(frozen=True, slots=True)
class Review:
    reviewer: str
    notes: str
    reviewed_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class GraphEntity:
    name: str
    type: str


@dataclass(frozen=True, slots=True)
class GraphRelation:
    source: str
    relation: str
    target: str


class AppRecords:
    """One SQLite file, one connection used from worker threads under a lock (the apps write little)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA busy_timeout=30000")
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._closed = False

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def body() -> T:
            with self._lock:
                return fn(self._conn)

        return await asyncio.to_thread(body)

    async def _tx(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def body(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                out = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return out

        return await self._run(body)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._run(lambda conn: conn.close())

    # -- calls -------------------------------------------------------------------------------------------

    async def add_call(self, record: CallRecord) -> bool:
        """Store an ended call once; True the first time (a repeated delivery changes nothing)."""
        turns = json.dumps([{"role": t.role, "text": t.text, "item_id": t.item_id} for t in record.turns])
        tools = json.dumps([
            {"name": c.name, "arguments": c.arguments, "output": c.output, "status": c.status,
             "latency_ms": c.latency_ms}
            for c in record.tool_calls
        ])

        def body(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "INSERT OR IGNORE INTO calls VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (record.call_id, record.user_id, record.persona_id, record.started_at, record.ended_at,
                 record.ended_reason, turns, tools),
            )
            return cur.rowcount == 1

        return await self._run(body)

    async def calls(self, user_id: str | None = None, *, call_id: str | None = None) -> list[CallRecord]:
        """Stored calls, newest first: of ``user_id`` when given, and the one ``call_id`` when given."""
        where, args = [], []
        if user_id is not None:
            where.append("user_id = ?")
            args.append(user_id)
        if call_id is not None:
            where.append("call_id = ?")
            args.append(call_id)
        sql = "SELECT * FROM calls" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY ended_at DESC"
        rows = await self._run(lambda conn: conn.execute(sql, args).fetchall())
        return [_row_to_call(r) for r in rows]

    # -- visits ------------------------------------------------------------------------------------------

    async def put_answer(self, call_id: str, user_id: str, question_id: str, answer: str, status: str,
                         at: float) -> None:
        """Record (or correct) the answer to one question of one call."""
        await self._run(lambda conn: conn.execute(
            "INSERT INTO visit_answers VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (call_id, question_id) DO UPDATE "
            "SET answer = excluded.answer, status = excluded.status, at = excluded.at "
            "WHERE visit_answers.user_id = excluded.user_id",
            (call_id, user_id, question_id, answer, status, at),
        ))

    async def answers(self, call_id: str, user_id: str) -> dict[str, StoredAnswer]:
        rows = await self._run(lambda conn: conn.execute(
            "SELECT question_id, answer, status, at FROM visit_answers WHERE call_id = ? AND user_id = ? ORDER BY at",
            (call_id, user_id),
        ).fetchall())
        return {r[0]: StoredAnswer(r[0], r[1], r[2], float(r[3])) for r in rows}

    async def set_outcome(self, call_id: str, user_id: str, status: str, reason: str, at: float) -> None:
        """Record how a visit ended (the first word stays: a visit ends once)."""
        await self._run(lambda conn: conn.execute(
            "INSERT OR IGNORE INTO visit_outcomes VALUES (?, ?, ?, ?, ?)", (call_id, user_id, status, reason, at)
        ))

    async def outcome(self, call_id: str, user_id: str) -> tuple[str, str] | None:
        row = await self._run(lambda conn: conn.execute(
            "SELECT status, reason FROM visit_outcomes WHERE call_id = ? AND user_id = ?", (call_id, user_id)
        ).fetchone())
        return None if row is None else (str(row[0]), str(row[1]))

    # -- reviews -----------------------------------------------------------------------------------------

    async def add_review(self, thread_id: str, reviewer: str, notes: str, at: float) -> None:
        """One review per reviewer per thread: the first mark stays; a later mark by the same reviewer replaces
        the notes only when it brings some. Other reviewers' reviews are never touched."""
        await self._run(lambda conn: conn.execute(
            "INSERT INTO reviews VALUES (?, ?, ?, ?, ?) ON CONFLICT (thread_id, reviewer) DO UPDATE SET "
            "notes = CASE WHEN excluded.notes != '' THEN excluded.notes ELSE reviews.notes END, "
            "updated_at = excluded.updated_at",
            (thread_id, reviewer, notes, at, at),
        ))

    async def reviews(self, thread_ids: Sequence[str]) -> dict[str, list[Review]]:
        if not thread_ids:
            return {}
        marks = ",".join("?" * len(thread_ids))
        rows = await self._run(lambda conn: conn.execute(
            f"SELECT thread_id, reviewer, notes, reviewed_at, updated_at FROM reviews WHERE thread_id IN ({marks}) "
            "ORDER BY reviewed_at, reviewer",
            list(thread_ids),
        ).fetchall())
        out: dict[str, list[Review]] = {}
        for r in rows:
            out.setdefault(r[0], []).append(Review(r[1], r[2], float(r[3]), float(r[4])))
        return out

    # -- graph -------------------------------------------------------------------------------------------

    async def replace_graph(self, owner: str, call_id: str, entities: Sequence[GraphEntity],
                            relations: Sequence[GraphRelation]) -> None:
        """Replace what one call contributed to ``owner``'s graph, in one transaction (a retry never adds)."""

        def body(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM graph_entities WHERE owner = ? AND call_id = ?", (owner, call_id))
            conn.execute("DELETE FROM graph_relations WHERE owner = ? AND call_id = ?", (owner, call_id))
            conn.executemany("INSERT OR IGNORE INTO graph_entities VALUES (?, ?, ?, ?)",
                             [(owner, call_id, e.name, e.type) for e in entities])
            conn.executemany("INSERT OR IGNORE INTO graph_relations VALUES (?, ?, ?, ?, ?)",
                             [(owner, call_id, r.source, r.relation, r.target) for r in relations])

        await self._tx(body)

    async def graph(self, owner: str, call_id: str | None = None) -> dict[str, Any]:
        """``owner``'s graph (of one call when given): entities with their type and the number of calls that
        mentioned them, and relations with the call that stated them."""
        extra, args = ("AND call_id = ?", [owner, call_id]) if call_id is not None else ("", [owner])

        def body(conn: sqlite3.Connection) -> dict[str, Any]:
            ents = conn.execute(
                "SELECT name, MAX(type), COUNT(*) FROM graph_entities WHERE owner = ? " + extra +
                " GROUP BY name ORDER BY COUNT(*) DESC, name", args,
            ).fetchall()
            rels = conn.execute(
                "SELECT source, relation, target, call_id FROM graph_relations WHERE owner = ? " + extra +
                " ORDER BY source, relation, target", args,
            ).fetchall()
            return {
                "entities": [{"name": n, "type": t, "mentions": int(c)} for n, t, c in ents],
                "relations": [{"source": s, "relation": r, "target": t, "call_id": c} for s, r, t, c in rels],
            }

        return await self._run(body)


def _row_to_call(row: Sequence[Any]) -> CallRecord:
    call_id, user_id, persona_id, started, ended, reason, turns, tools = row
    return CallRecord(
        call_id=call_id, user_id=user_id, persona_id=persona_id, started_at=float(started), ended_at=float(ended),
        ended_reason=reason,
        turns=tuple(TranscriptTurn(role=t["role"], text=t["text"], item_id=t.get("item_id", ""))
                    for t in json.loads(turns)),
        tool_calls=tuple(ToolCallRecord(name=c["name"], arguments=c["arguments"], output=c["output"],
                                        status=c["status"], latency_ms=float(c["latency_ms"]))
                         for c in json.loads(tools)),
    )
