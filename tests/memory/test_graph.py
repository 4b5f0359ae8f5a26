"""The parser graph: what spaCy reads from a turn, how the stores index it, and the two-hop walk that lets a
multi-hop question reach a turn that never names what it asks about."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

import pytest

from aoai_realtime.memory import HashEmbedder, RetrievalConfig, Scope
from aoai_realtime.memory.graph import SpacyChunkGraph, default_chunk_graph
from aoai_realtime.memory.indexing import TranscriptTurn, index_texts, index_transcript
from aoai_realtime.memory.retrieval import HybridRetriever
from aoai_realtime.memory.spacy_model import SPACY_IMPORT_NAME

from .conftest import DIM, StoreFactory

needs_spacy = pytest.mark.skipif(
    importlib.util.find_spec("spacy") is None or importlib.util.find_spec(SPACY_IMPORT_NAME) is None,
    reason="the graph extra (spaCy and its English model) is not installed",
)


@pytest.fixture(scope="module")
def spacy_graph() -> SpacyChunkGraph:
    graph = default_chunk_graph()
    assert graph is not None
    return graph


@needs_spacy
def test_reads_entities_and_relations_with_the_speaker_as_i(spacy_graph: SpacyChunkGraph) -> None:
    read = spacy_graph.annotate_sync([
        ("Melanie", "I signed up for a pottery class last week."),
        ("Caroline", "I'm keen on counseling, and my friend Jon moved to Boston."),
        ("Melanie", "What pottery classes did you take?"),
    ])  # fmt: skip
    assert read[0]["entities"][:2] == ["melanie", "pottery class"]
    assert ["melanie", "sign up for", "pottery class"] in read[0]["relations"]
    assert ["caroline", "be keen on", "counseling"] in read[1]["relations"]
    assert {"jon", "boston"} <= set(read[1]["entities"])
    assert ["jon", "move to", "boston"] in read[1]["relations"]
    assert ["caroline", "have friend", "jon"] in read[1]["relations"]
    assert "pottery class" in read[2]["entities"]  # plural and singular name one entity
    assert spacy_graph.query_entities_sync("What classes did Melanie sign up for?") == ["melanie", "class"]


class _Reader:
    """A stand-in parser with fixed readings (the store and retriever tests need no model)."""

    name = "fixed"

    def __init__(self, readings: dict[str, dict[str, Any]], query: list[str]) -> None:
        self.readings, self.query = readings, query

    async def annotate(self, turns: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        return [self.readings.get(text, {"entities": [], "relations": []}) for _, text in turns]

    async def query_entities(self, query: str) -> list[str]:
        return self.query


async def test_two_hops_reach_a_turn_through_a_relation(make_store: StoreFactory) -> None:
    a = "I signed up for a pottery class."
    b = "The pottery class meets on Fridays in the old mill."
    reader = _Reader(
        {a: {"entities": ["melanie", "pottery class"], "relations": [["melanie", "sign up for", "pottery class"]]},
         b: {"entities": ["pottery class", "old mill"], "relations": []}},
        query=["melanie"],
    )  # fmt: skip
    store = await make_store(dim=DIM)
    embedder = HashEmbedder(DIM)
    turns = [TranscriptTurn(speaker="Melanie", text=a), TranscriptTurn(speaker="Caroline", text="Nice!")]
    ids = await index_transcript(store, embedder, owner="o", session_id="s1", turns=turns, graph=reader)
    [other] = await index_texts(store, embedder, [b], owner="o", session_id="s2", graph=reader)
    scope = Scope(owner="o")
    one = await store.search_entities(scope, ["melanie"], 10, hops=1)
    two = await store.search_entities(scope, ["melanie"], 10, hops=2)
    assert [cid for cid, _ in one] == [ids[0]]  # the turn that names her (the stored reading, not capitals)
    assert {cid for cid, _ in two} == {ids[0], other}  # melanie -> pottery class -> the turn about the class
    retriever = HybridRetriever(store, embedder, RetrievalConfig.only("graph"), graph=reader)
    hits = await retriever.retrieve("Where does Melanie's class meet?", scope, k=5)
    assert {h.chunk.id for h in hits} == {ids[0], other}
    assert (await store.get_chunks([ids[0]]))[0].meta["graph"]["relations"] == [["melanie", "sign up for",
                                                                                 "pottery class"]]  # fmt: skip


async def test_without_a_reading_the_stores_keep_their_name_rule(make_store: StoreFactory) -> None:
    store = await make_store(dim=DIM)
    await index_texts(store, HashEmbedder(DIM), ["Lena visits Porto in October."], owner="o")
    assert len(await store.search_entities(Scope(owner="o"), ["porto"], 5)) == 1


async def test_save_insight_is_read_into_the_graph(make_store: StoreFactory) -> None:
    from aoai_realtime.memory import memory_tools

    fact = "Her daughter Mia takes violin lessons."
    reader = _Reader({fact: {"entities": ["mia", "violin lesson"], "relations": [["mia", "take", "violin lesson"]]}},
                     query=["violin lesson"])  # fmt: skip
    store = await make_store(dim=DIM)
    retrieve, save, _ = memory_tools(store, HashEmbedder(DIM), Scope(owner="o", session_id="c1"),
                                     config=RetrievalConfig.only("graph"), graph=reader)  # fmt: skip
    saved = await save(fact, topic="family")
    assert saved["ok"] is True
    assert (await store.get_chunks([saved["id"]]))[0].meta["graph"]["entities"] == ["mia", "violin lesson"]
    found = await retrieve("Which instrument does the child play?")  # no name in it: the reader's entity finds it
    assert [r["text"] for r in found["results"]] == [fact]
