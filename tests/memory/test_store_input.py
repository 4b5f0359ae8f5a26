"""Input the databases cannot hold, and scopes that must never share rows: both back ends (SQLite, PostgreSQL).

Every store entry point refuses NUL characters and lone surrogates with :class:`InvalidChunkError` (never a
``sqlite3``/``psycopg`` error, never a ``UnicodeEncodeError``), and writes nothing. Scope fields refuse every
control character, so the scope key (tenant U+001F owner) is unambiguous.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aoai_realtime.memory import InvalidChunkError, MemoryError_, NewChunk, Scope
from aoai_realtime.memory.store import scope_key

from .conftest import DIM, StoreFactory

pytestmark = pytest.mark.integration

# Strings no store may pass to its driver: NUL, each kind of lone surrogate, and both at the edges.
BAD_TEXT = ["a\x00b", "\x00", "x\ud800", "\udfff tail", "mid\udc80dle", "caf\u00e9\x00"]
# Control characters scope fields refuse on top of those (the scope key's separator first).
BAD_NAME = [*BAD_TEXT, "t\x1fu", "\x1f", "line\nbreak", "tab\t", "del\x7f", "c1\x85"]


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def test_colliding_scopes_are_refused_before_any_store_sees_them() -> None:
    # These two scopes had the same key, so each read the other's rows.
    for tenant, owner in [("t\x1fu", "v"), ("t", "u\x1fv")]:
        with pytest.raises(InvalidChunkError, match="U\\+001F"):
            Scope(owner=owner, tenant=tenant)
        with pytest.raises(InvalidChunkError, match="U\\+001F"):
            scope_key(owner, tenant)
    for bad in BAD_NAME:
        for field in ("owner", "tenant", "session_id"):
            kw: dict[str, Any] = {"owner": "ann", field: bad}
            with pytest.raises(InvalidChunkError, match=f"Scope.{field} contains"):
                Scope(**kw)


def test_scope_keys_are_distinct_for_distinct_scopes() -> None:
    parts = ["", "a", "ab", "b", "a b", "é", "a:b", "1:a", "0", "\u2028"]
    keys = {(o, t): scope_key(o, t) for o in parts if o for t in parts}
    assert len(set(keys.values())) == len(keys)


async def test_scopes_that_differ_only_in_the_split_share_nothing(make_store: StoreFactory) -> None:
    store = await make_store()
    pairs = [("tu", "v"), ("t", "uv"), ("", "tuv"), ("tuv", "x")]
    for i, (tenant, owner) in enumerate(pairs):
        await store.add_chunks(
            [NewChunk(owner=owner, tenant=tenant, session_id="s", text=f"Lisbon trip number {i}", embedding=unit(i))]
        )
    for i, (tenant, owner) in enumerate(pairs):
        scope = Scope(owner=owner, tenant=tenant)
        assert await store.count(scope) == 1
        for ids in (
            await store.search_text(scope, ["lisbon", "trip"], 10),
            await store.search_dense(scope, unit(0), 10),
            await store.recent(scope, 10),
            await store.search_entities(scope, ["lisbon"], 10),
        ):
            [c] = await store.get_chunks([cid for cid, _ in ids])
            assert (c.tenant, c.owner, c.text) == (tenant, owner, f"Lisbon trip number {i}")


def _entry_points(bad: str) -> list[tuple[str, Callable[[Any], Awaitable[object]]]]:
    scope = Scope(owner="ann")

    def new(**kw: Any) -> list[NewChunk]:
        fields: dict[str, Any] = {"owner": "ann", "session_id": "s1", "text": "I moved to Lisbon.", **kw}
        return [NewChunk(embedding=unit(1), **fields)]

    return [
        ("search_text", lambda s: s.search_text(scope, ["lisbon", bad], 5)),
        ("search_entities", lambda s: s.search_entities(scope, ["lisbon", bad], 5, hops=2)),
        ("add_chunks text", lambda s: s.add_chunks(new(text=f"I moved {bad}"))),
        ("add_chunks speaker", lambda s: s.add_chunks(new(speaker=bad))),
        ("add_chunks context", lambda s: s.add_chunks(new(context=bad))),
        ("add_chunks source", lambda s: s.add_chunks(new(source=bad))),
        ("add_chunks ref", lambda s: s.add_chunks(new(ref=bad))),
        ("add_chunks meta", lambda s: s.add_chunks(new(meta={"note": bad}))),
        ("add_chunks meta key", lambda s: s.add_chunks(new(meta={bad: 1}))),
        ("add_chunks owner", lambda s: s.add_chunks(new(owner=bad))),
        ("add_chunks tenant", lambda s: s.add_chunks(new(tenant=bad))),
        ("add_chunks session", lambda s: s.add_chunks(new(session_id=bad))),
        ("replace_session id", lambda s: s.replace_session(scope, bad, [])),
        ("replace_session text", lambda s: s.replace_session(scope, "s1", new(text=bad))),
        ("delete_session", lambda s: s.delete_session(scope, bad)),
    ]


async def test_every_entry_point_refuses_unstorable_text_with_the_memory_error(make_store: StoreFactory) -> None:
    store = await make_store()
    [kept] = await store.add_chunks(
        [NewChunk(owner="ann", session_id="s1", text="I moved to Lisbon.", embedding=unit(1))]
    )
    for bad in BAD_TEXT:
        for name, call in _entry_points(bad):
            with pytest.raises(InvalidChunkError, match=r"contains a (NUL character|lone surrogate)") as info:
                await call(store)
            assert isinstance(info.value, MemoryError_), name
    # Nothing was written or deleted, and the store still answers.
    assert await store.count(Scope(owner="ann")) == 1
    assert [cid for cid, _ in await store.search_text(Scope(owner="ann"), ["lisbon"], 5)] == [kept]


async def test_scope_fields_refuse_control_characters_in_chunks(make_store: StoreFactory) -> None:
    store = await make_store()
    for bad in BAD_NAME:
        for field in ("owner", "tenant", "session_id"):
            fields: dict[str, Any] = {"owner": "ann", "text": "I moved to Lisbon.", field: bad}
            with pytest.raises(InvalidChunkError, match=f"chunk 0 {field} contains"):
                await store.add_chunks([NewChunk(embedding=unit(2), **fields)])
    assert await store.count(Scope(owner="ann")) == 0


async def test_meta_that_is_not_json_is_refused(make_store: StoreFactory) -> None:
    store = await make_store()
    for meta in ({"x": float("nan")}, {"x": object()}):
        with pytest.raises(InvalidChunkError, match="meta is not plain JSON"):
            await store.add_chunks([NewChunk(owner="ann", text="hello there", embedding=unit(3), meta=meta)])
    # Ordinary control characters are fine in prose.
    await store.add_chunks(
        [NewChunk(owner="ann", text="line one\nline\ttwo", embedding=unit(3), meta={"k": "a\nb"}, speaker="Ann\t")]
    )
    assert await store.count(Scope(owner="ann")) == 1


@given(owner=st.text(min_size=1), tenant=st.text())
def test_scope_key_is_refused_or_splits_back_into_its_parts(owner: str, tenant: str) -> None:
    try:
        key = scope_key(owner, tenant)
    except InvalidChunkError:
        assert any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or 0xD800 <= ord(c) <= 0xDFFF for c in owner + tenant)
        return
    assert key.split("\x1f") == [tenant, owner]
