"""One suite for both back ends (SQLite and PostgreSQL): the same cases, the same expectations."""

from __future__ import annotations

import asyncio
import itertools
import math
import string

import numpy as np
import pytest

from aoai_realtime.memory import ChunkKind, InvalidChunkError, NewChunk, Scope, StoreError
from aoai_realtime.memory.embeddings import HashEmbedder

from .conftest import DIM, StoreFactory

pytestmark = pytest.mark.integration


def unit(seed: int, dim: int = DIM) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def chunk(owner: str, text: str, seed: int, **kw: object) -> NewChunk:
    return NewChunk(owner=owner, text=text, embedding=unit(seed), **kw)  # type: ignore[arg-type]


async def test_roundtrip_keeps_text_and_metadata(make_store: StoreFactory) -> None:
    store = await make_store()
    [cid] = await store.add_chunks(
        [
            NewChunk(
                owner="ann", tenant="acme", session_id="call-1", speaker="Ann", text="I moved to Lisbon in May.",
                embedding=unit(1), ts=1700000000.5, seq=3, source="call", kind=ChunkKind.INSIGHT, ref="D1:3",
                meta={"lang": "en", "n": 2},
            )
        ]
    )  # fmt: skip
    [got] = await store.get_chunks([cid])
    assert (got.owner, got.tenant, got.session_id, got.speaker) == ("ann", "acme", "call-1", "Ann")
    assert (got.ts, got.seq, got.source, got.kind, got.ref) == (1700000000.5, 3, "call", ChunkKind.INSIGHT, "D1:3")
    assert got.text == "I moved to Lisbon in May." and dict(got.meta) == {"lang": "en", "n": 2}
    assert await store.get_chunks([cid + 999]) == []


async def test_queries_never_cross_scopes(make_store: StoreFactory) -> None:
    store = await make_store()
    same_vec = unit(5)
    a = await store.add_chunks([NewChunk(owner="a", text="Max the dog loves Berlin", embedding=same_vec)])
    b = await store.add_chunks([NewChunk(owner="b", text="Max the dog loves Berlin", embedding=same_vec)])
    t = await store.add_chunks(
        [NewChunk(owner="a", tenant="other", text="Max the dog loves Berlin", embedding=same_vec)]
    )
    scope = Scope(owner="a")
    assert [i for i, _ in await store.search_dense(scope, same_vec, 10)] == a
    assert [i for i, _ in await store.search_text(scope, ["max", "berlin"], 10)] == a
    assert [i for i, _ in await store.search_entities(scope, ["max", "berlin"], 10, hops=2)] == a
    assert [i for i, _ in await store.recent(scope, 10)] == a
    assert [i for i, _ in await store.search_dense(Scope(owner="b"), same_vec, 10)] == b
    assert [i for i, _ in await store.search_dense(Scope(owner="a", tenant="other"), same_vec, 10)] == t


async def test_dense_ranks_by_cosine(make_store: StoreFactory) -> None:
    store = await make_store()
    q = unit(0)
    noise = unit(1)
    near = (q + 0.3 * noise) / np.linalg.norm(q + 0.3 * noise)
    far = (q + 2.0 * noise) / np.linalg.norm(q + 2.0 * noise)
    ids = await store.add_chunks(
        [NewChunk(owner="u", text="far", embedding=far), NewChunk(owner="u", text="near", embedding=near)]
    )
    hits = await store.search_dense(Scope(owner="u"), q, 2)
    assert [i for i, _ in hits] == [ids[1], ids[0]]
    assert math.isclose(hits[0][1], float(near @ q), abs_tol=1e-3)


@pytest.mark.parametrize("exact_limit", [None, 50], ids=["exact", "index"])
async def test_one_percent_scope_returns_min_k_rows(make_store: StoreFactory, exact_limit: int | None) -> None:
    # 1,500 rows, 15 of them (1%) in a second scope. With exact_limit=50 both scopes exceed the exact-scan limit,
    # so the approximate paths (SQLite in-memory index, pgvector HNSW) must still fill k from the small scope.
    store = await make_store(exact_limit=exact_limit)
    rng = np.random.default_rng(3)
    vecs = rng.standard_normal((1500, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    chunks = [
        NewChunk(
            owner="small" if i % 100 == 0 else "big", session_id=f"s{i % 3}", text=f"note {i} about gardening",
            embedding=vecs[i],
        )
        for i in range(1500)
    ]  # fmt: skip
    for start in range(0, 1500, 500):
        await store.add_chunks(chunks[start : start + 500])
    small = Scope(owner="small")
    for k in (5, 10, 15, 40):
        for qi in range(3):
            q = vecs[(qi * 7) % 1500 + 1]
            got = await store.search_dense(small, q, k)
            assert len(got) == min(k, 15)
            assert len(set(i for i, _ in got)) == len(got)
        assert len(await store.search_text(small, ["gardening"], k)) == min(k, 15)
    # The big scope (99% of rows): with exact_limit=50 full-text search takes its large-scope path too.
    big_text = await store.search_text(Scope(owner="big"), ["gardening", "note"], 20)
    assert len(big_text) == 20
    assert {c.owner for c in await store.get_chunks([i for i, _ in big_text])} == {"big"}
    # A session filter inside the big scope: 1/3 of its rows.
    session = Scope(owner="big", session_id="s1")
    got = await store.search_dense(session, vecs[1], 10)
    assert len(got) == 10
    members = {c.id for c in await store.get_chunks([i for i, _ in got]) if c.session_id == "s1"}
    assert members == {i for i, _ in got}
    # The true nearest neighbour of a stored vector is itself, whatever the search path.
    [ids] = [await store.search_dense(Scope(owner="big"), vecs[7], 1)]
    [(top_chunk)] = await store.get_chunks([ids[0][0]])
    assert top_chunk.text == "note 7 about gardening"


async def test_text_search_matches_terms_and_speaker(make_store: StoreFactory) -> None:
    store = await make_store()
    ids = await store.add_chunks(
        [
            chunk("u", "We adopted a puppy from the shelter", 1, speaker="Caroline"),
            chunk("u", "The weather was lovely at the lake", 2, speaker="Melanie"),
            chunk("u", "Pottery class starts on Monday", 3, speaker="Melanie", context="we talked about adoption"),
        ]
    )
    scope = Scope(owner="u")
    assert [i for i, _ in await store.search_text(scope, ["shelter"], 5)] == [ids[0]]
    # Stemming: "adopting" finds "adopted".
    assert ids[0] in [i for i, _ in await store.search_text(scope, ["adopting"], 5)]
    by_speaker = [i for i, _ in await store.search_text(scope, ["melanie"], 5)]
    assert set(by_speaker) == {ids[1], ids[2]}
    assert await store.search_text(scope, ["melanie"], 5, speaker_weight=0.0) == []
    # Search-only context is found with its weight on, and ranks below a match in the text itself.
    assert [i for i, _ in await store.search_text(scope, ["adoption"], 5, context_weight=0.0)] == [ids[0]]
    ranked = [i for i, _ in await store.search_text(scope, ["adoption"], 5, context_weight=0.3)]
    assert ranked == [ids[0], ids[2]]
    assert await store.search_text(scope, ['"', "  "], 5) == []


async def test_entity_graph_one_and_two_hops(make_store: StoreFactory) -> None:
    store = await make_store()
    ids = await store.add_chunks(
        [
            chunk("u", "Caroline went hiking with Melanie in Yosemite.", 1),
            chunk("u", "Melanie bought a new tent.", 2),
            chunk("u", "Yosemite was beautiful in June.", 3),
            chunk("u", "The soup recipe needs garlic.", 4),
        ]
    )
    scope = Scope(owner="u")
    one = [i for i, _ in await store.search_entities(scope, ["caroline"], 10, hops=1)]
    assert one == [ids[0]]
    two = [i for i, _ in await store.search_entities(scope, ["caroline"], 10, hops=2)]
    assert two[0] == ids[0] and set(two) == {ids[0], ids[1], ids[2]}
    assert await store.search_entities(scope, ["nobody"], 10) == []
    # Scores add up per chunk: the chunk naming both Melanie and Yosemite comes first.
    both = await store.search_entities(scope, ["melanie", "yosemite"], 10)
    assert both[0][0] == ids[0] and {i for i, _ in both} == {ids[0], ids[1], ids[2]}
    assert both[0][1] > both[1][1]
    # A session filter keeps only that session's mentions.
    await store.add_chunks([chunk("u", "Melanie called about Yosemite again.", 5, session_id="later")])
    later = await store.search_entities(Scope(owner="u", session_id="later"), ["melanie"], 10, hops=2)
    assert len(later) == 1 and (await store.get_chunks([later[0][0]]))[0].session_id == "later"
    # A query naming 600 known entities is answered, not refused for its size (SQLite caps a compound SELECT at
    # 500 terms).
    names = ["".join(p) for p in itertools.islice(itertools.product(string.ascii_lowercase, repeat=3), 600)]
    crowd = await store.add_chunks([chunk("crowd", f"{n.capitalize()} visited Rome.", i) for i, n in enumerate(names)])
    got = await store.search_entities(Scope(owner="crowd"), names, 10, hops=2)
    assert len(got) == 10 and {i for i, _ in got} <= set(crowd)


async def test_bad_input_is_rejected_and_nothing_is_written(make_store: StoreFactory) -> None:
    store = await make_store()
    good = chunk("u", "a good chunk", 1)
    bad_batches = [
        [good, chunk("u", "   ", 2)],
        [good, chunk("u", "x" * 20_001, 3)],
        [good, NewChunk(owner="u", text="wrong dim", embedding=unit(4, DIM + 1))],
        [good, NewChunk(owner="u", text="nan", embedding=np.full(DIM, np.nan, dtype=np.float32))],
        [good, NewChunk(owner="", text="no owner", embedding=unit(5))],
    ]
    for batch in bad_batches:
        with pytest.raises(InvalidChunkError) as info:
            await store.add_chunks(batch)
        assert info.value.index == 1
    assert await store.count(Scope(owner="u")) == 0
    assert await store.search_text(Scope(owner="u"), ["good"], 5) == []
    with pytest.raises(InvalidChunkError):
        await store.search_dense(Scope(owner="u"), unit(1, DIM + 2), 5)
    with pytest.raises(InvalidChunkError):
        Scope(owner="")


async def test_failed_transaction_leaves_no_rows(make_store: StoreFactory) -> None:
    # A failure inside the write (after validation) rolls back every row of the batch.
    store = await make_store()

    class Boom(str):
        def __str__(self) -> str:
            raise RuntimeError("boom")

    batch = [chunk("u", "first row", 1), NewChunk(owner="u", text="second", embedding=unit(2), kind=Boom("x"))]  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        await store.add_chunks(batch)
    assert await store.count(Scope(owner="u")) == 0
    assert await store.search_text(Scope(owner="u"), ["first"], 5) == []
    await store.add_chunks([chunk("u", "after the failure", 3)])
    assert await store.count(Scope(owner="u")) == 1


async def test_neighbours_and_delete_session(make_store: StoreFactory) -> None:
    store = await make_store()
    ids = await store.add_chunks(
        [chunk("u", f"turn {i} with Dana", i, session_id="s1", seq=i) for i in range(5)]
        + [chunk("u", "other session with Dana", 9, session_id="s2", seq=0)]
    )
    near = await store.neighbours([ids[2]], 1)
    assert [c.id for c in near[ids[2]]] == [ids[1], ids[3]]
    edge = await store.neighbours([ids[0]], 2)
    assert [c.id for c in edge[ids[0]]] == [ids[1], ids[2]]
    assert await store.delete_session(Scope(owner="u"), "s1") == 5
    assert await store.count(Scope(owner="u")) == 1
    assert [i for i, _ in await store.search_entities(Scope(owner="u"), ["dana"], 10)] == [ids[5]]
    assert [i for i, _ in await store.search_text(Scope(owner="u"), ["turn"], 10)] == []


async def test_parallel_writers_and_readers(make_store: StoreFactory) -> None:
    store = await make_store()
    emb = HashEmbedder(DIM)
    scope = Scope(owner="u")

    async def writer(w: int) -> list[int]:
        ids: list[int] = []
        for b in range(5):
            texts = [f"writer {w} batch {b} item {i} talks about sailing" for i in range(8)]
            vecs = await emb.embed(texts)
            ids += await store.add_chunks(
                [NewChunk(owner="u", text=t, embedding=v) for t, v in zip(texts, vecs, strict=True)]
            )
        return ids

    async def reader() -> int:
        seen = 0
        for _ in range(10):
            seen = max(seen, len(await store.search_text(scope, ["sailing"], 500)))
            await store.search_dense(scope, unit(1), 5)
        return seen

    results = await asyncio.gather(*(writer(w) for w in range(4)), *(reader() for _ in range(3)))
    written = [i for r in results[:4] for i in r]  # type: ignore[union-attr]
    assert len(written) == len(set(written)) == 160
    assert await store.count(scope) == 160
    assert len(await store.search_text(scope, ["sailing"], 500)) == 160


async def test_upgrade_from_v1_keeps_data_and_backfills_graph(make_store: StoreFactory) -> None:
    old = await make_store(name="up", migrate_to=1)
    assert await old.schema_version() == 1
    ids = await old.add_chunks([chunk("u", "Priya moved to Osaka last spring.", 1, session_id="s", seq=0)])
    await old.close()
    new = await make_store(name="up")
    assert await new.schema_version() == 2
    [got] = await new.get_chunks(ids)
    assert got.text == "Priya moved to Osaka last spring."
    assert [i for i, _ in await new.search_text(Scope(owner="u"), ["osaka"], 5)] == ids
    assert [i for i, _ in await new.search_entities(Scope(owner="u"), ["priya"], 5)] == ids
    more = await new.add_chunks([chunk("u", "Priya started pottery.", 2)])
    assert [i for i, _ in await new.search_entities(Scope(owner="u"), ["priya"], 5)] == sorted(ids + more, reverse=True)


async def test_reopen_with_other_dimension_is_refused(make_store: StoreFactory) -> None:
    first = await make_store(name="dim")
    await first.add_chunks([chunk("u", "x marks the spot", 1)])
    await first.close()
    with pytest.raises(StoreError, match="dim"):
        await make_store(name="dim", dim=DIM * 2)


async def test_large_scope_text_ranks_rows_holding_several_common_terms_first(make_store: StoreFactory) -> None:
    # exact_limit=50 puts 600 rows over the full-text limits (budget 100 rows): every query term below matches
    # more rows than the budget, so both back ends narrow the match to rows holding the rarest term and another.
    store = await make_store(exact_limit=50)
    texts = []
    for i in range(600):
        words = [w for w, m in (("apple", 2), ("banana", 3), ("cherry", 5)) if i % m == 0]
        words += ["kiwi"] if i % 4 == 1 else ["lime"] if i % 4 == 3 else []
        texts.append(f"row {i} {' '.join(words)}".strip())
    for start in range(0, 600, 200):
        await store.add_chunks([chunk("big", t, i) for i, t in enumerate(texts[start : start + 200], start)])
    scope = Scope(owner="big")
    got = await store.search_text(scope, ["apple", "banana", "cherry"], 10, speaker_weight=0.0, context_weight=0.0)
    assert len(got) == 10
    # The 20 rows holding all three terms outrank the rest (under plain OR ranking on the rarest term alone, any
    # of the 120 "cherry" rows could come first).
    for c in await store.get_chunks([i for i, _ in got]):
        assert {"apple", "banana", "cherry"} <= set(c.text.split()), c.text
    # No row holds both "kiwi" and "lime": the narrowed match finds nothing, and the rarest term alone fills k.
    got = await store.search_text(scope, ["kiwi", "lime"], 10, speaker_weight=0.0, context_weight=0.0)
    assert len(got) == 10
    assert all({"kiwi", "lime"} & set(c.text.split()) for c in await store.get_chunks([i for i, _ in got]))


async def test_concurrent_session_replacements_leave_exactly_one_copy(make_store: StoreFactory) -> None:
    # The post-call pipeline re-indexes a call by replacing its session; a worker stalled past its lease and the
    # one that took over may do it at the same moment. Whatever the interleaving: one version, whole, once.
    store = await make_store()
    scope = Scope(owner="u")
    await store.add_chunks([chunk("u", "an unrelated note about hiking", 99, session_id="other")])

    def version(v: int) -> list[NewChunk]:
        return [
            chunk("u", f"version{v} turn {i} about hiking", 10 * v + i, session_id="call-1", seq=i) for i in range(5)
        ]

    await store.replace_session(scope, "call-1", version(0))
    await asyncio.gather(*(store.replace_session(scope, "call-1", version(v)) for v in range(1, 9)))
    call = Scope(owner="u", session_id="call-1")
    got = await store.get_chunks([i for i, _ in await store.recent(call, 100)])
    assert len(got) == 5 and len({c.text.split()[0] for c in got}) == 1, sorted(c.text for c in got)
    assert await store.count(scope) == 6
    assert len(await store.search_text(scope, ["hiking"], 50)) == 6
    # Chunks of another session are refused, and nothing changes.
    with pytest.raises(InvalidChunkError, match="session being replaced"):
        await store.replace_session(scope, "call-1", [chunk("u", "stray", 1, session_id="call-2")])
    assert await store.count(call) == 5
    # An empty replacement empties the session.
    assert await store.replace_session(scope, "call-1", []) == []
    assert await store.count(call) == 0 and await store.count(scope) == 1
