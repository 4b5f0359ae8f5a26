"""Hybrid retrieval: fusion arithmetic (no store), then the full pipeline on both back ends."""

from __future__ import annotations

import dataclasses

import pytest

from aoai_realtime.memory import HybridRetriever, InvalidChunkError, RetrievalConfig, Scope, index_transcript
from aoai_realtime.memory.embeddings import HashEmbedder
from aoai_realtime.memory.indexing import TranscriptTurn, embedding_text
from aoai_realtime.memory.retrieval import fuse_for_test

from .conftest import StoreFactory


def test_rrf_rewards_agreement_between_signals() -> None:
    cfg = RetrievalConfig(fusion="rrf", dense_weight=1.0, bm25_weight=1.0, graph=False)
    fused = fuse_for_test({"dense": [(1, 0.9), (2, 0.8), (3, 0.1)], "bm25": [(2, 9.0), (4, 5.0)]}, cfg)
    assert max(fused, key=lambda c: fused[c]) == 2
    assert fused[1] == pytest.approx(1 / 61) and fused[2] == pytest.approx(1 / 62 + 1 / 61)


def test_weighted_fusion_uses_normalised_scores_and_weights() -> None:
    cfg = RetrievalConfig(fusion="weighted", dense_weight=0.5, bm25_weight=1.0, graph=False)
    fused = fuse_for_test({"dense": [(1, 0.9), (2, 0.5)], "bm25": [(2, 12.0), (3, 2.0)]}, cfg)
    assert fused == pytest.approx({1: 0.5, 2: 1.0, 3: 0.0})


def test_config_needs_a_signal() -> None:
    with pytest.raises(InvalidChunkError):
        RetrievalConfig(dense=False, bm25=False, graph=False)
    only = RetrievalConfig.only("bm25")
    assert not only.dense and only.bm25 and not only.neighbours and only.bm25_context_weight == 0


def test_embedding_text_prefixes_speaker_and_previous_turn() -> None:
    assert embedding_text("Ann", "Yes!") == "Ann: Yes!"
    assert embedding_text("Ann", "Yes!", ("Bob", "Did you go?")) == "Bob: Did you go?\nAnn: Yes!"


CALL = [
    ("Caroline", "Hey Mel, how are you?"),
    ("Melanie", "Busy with the kids. Did you do anything fun?"),
    ("Caroline", "I researched adoption agencies all weekend."),
    ("Melanie", "That is wonderful news."),
    ("Melanie", "I signed up for a pottery class in Lisbon."),
    ("Caroline", "Lisbon sounds great, send photos of the pottery!"),
]


async def indexed(store: object, emb: HashEmbedder) -> list[int]:
    turns = [TranscriptTurn(speaker=s, text=t, ts=1.7e9 + i * 60, ref=f"D1:{i + 1}") for i, (s, t) in enumerate(CALL)]
    return await index_transcript(store, emb, owner="u", session_id="call-1", turns=turns)  # type: ignore[arg-type]


@pytest.mark.integration
async def test_hybrid_finds_the_turn_and_reports_its_signals(make_store: StoreFactory, embedder: HashEmbedder) -> None:
    store = await make_store()
    ids = await indexed(store, embedder)
    r = HybridRetriever(store, embedder)
    hits = await r.retrieve("What did Caroline research?", Scope(owner="u"), 3)
    assert hits[0].chunk.id == ids[2]
    assert {"bm25", "dense"} <= set(hits[0].signals)
    assert "speaker" in hits[0].signals  # the question names Caroline, who said it
    # Each switch removes its signal.
    no_bm25 = await r.retrieve(
        "What did Caroline research?", Scope(owner="u"), 3, config=dataclasses.replace(r.config, bm25=False)
    )
    assert all("bm25" not in h.signals for h in no_bm25)
    only_text = await r.retrieve("pottery Lisbon", Scope(owner="u"), 2, config=RetrievalConfig.only("bm25"))
    assert {h.chunk.id for h in only_text} == {ids[4], ids[5]}
    assert all(set(h.signals) == {"bm25"} for h in only_text)


@pytest.mark.integration
async def test_neighbours_lift_the_answer_next_to_a_match(make_store: StoreFactory, embedder: HashEmbedder) -> None:
    store = await make_store()
    ids = await indexed(store, embedder)
    cfg = RetrievalConfig(dense=False, graph=False, speaker_boost=False, neighbour_weight=0.5, bm25_context_weight=0)
    r = HybridRetriever(store, None, cfg)
    hits = await r.retrieve("anything fun", Scope(owner="u"), 3)
    assert hits[0].chunk.id == ids[1]
    assert (
        ids[2] in [h.chunk.id for h in hits] and "neighbours" in next(h for h in hits if h.chunk.id == ids[2]).signals
    )
    plain = await r.retrieve("anything fun", Scope(owner="u"), 3, config=dataclasses.replace(cfg, neighbours=False))
    assert [h.chunk.id for h in plain] == [ids[1]]


@pytest.mark.integration
async def test_context_window_and_recency(make_store: StoreFactory, embedder: HashEmbedder) -> None:
    store = await make_store()
    ids = await indexed(store, embedder)
    cfg = RetrievalConfig(context_window=1, recency=True, recency_weight=1.0, recency_half_life=60.0)
    r = HybridRetriever(store, embedder, cfg)
    hits = await r.retrieve("pottery", Scope(owner="u"), 2)
    # Both pottery turns match; the later one wins once recency counts.
    assert [h.chunk.id for h in hits] == [ids[5], ids[4]]
    assert [c.id for c in hits[0].context] == [ids[4]]
    assert "recency" in hits[0].signals


@pytest.mark.integration
async def test_empty_query_and_missing_embedder(make_store: StoreFactory, embedder: HashEmbedder) -> None:
    store = await make_store()
    with pytest.raises(InvalidChunkError, match="empty"):
        await HybridRetriever(store, embedder).retrieve("  ", Scope(owner="u"))
    with pytest.raises(InvalidChunkError, match="embedder"):
        HybridRetriever(store, None)
    assert await HybridRetriever(store, embedder).retrieve("nothing stored yet", Scope(owner="u")) == []
