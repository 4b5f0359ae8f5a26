"""The language-model chunk graph: what it asks a chat model, how it reads the answer into the stores' graph format,
and what happens when the model fails. A fake chat model answers (no sockets)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any

import pytest

from aoai_realtime.llm import LocalLLM
from aoai_realtime.llm.types import LLMError, LLMOutputError
from aoai_realtime.memory import HashEmbedder, RetrievalConfig, Scope
from aoai_realtime.memory.graph_llm import CHUNK_GRAPH_SCHEMA, LLMChunkGraph, chunk_graph_for
from aoai_realtime.memory.indexing import TranscriptTurn, index_texts, index_transcript
from aoai_realtime.memory.retrieval import HybridRetriever

from .conftest import DIM, StoreFactory


class FakeChat:
    """Answers each request with the next of ``answers`` (a dict is sent as JSON, an exception is raised)."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[list[dict[str, str]], dict[str, Any] | None]] = []

    async def chat(self, messages: list[dict[str, str]], *, response_format: dict[str, Any] | None = None) -> str:
        self.requests.append((messages, response_format))
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer if isinstance(answer, str) else json.dumps(answer)


class Lemmas:
    """A stand-in reader that lemmatises plurals the way the spaCy graph does ("classes" -> "class")."""

    name = "lemmas"

    def __init__(self) -> None:
        self.annotated: list[tuple[str, str]] = []

    async def annotate(self, turns: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        self.annotated += turns
        return [{"entities": ["from fallback"], "relations": []} for _ in turns]

    async def query_entities(self, query: str) -> list[str]:
        return [w[:-2] if w.endswith("es") else w for w in query.lower().replace("?", "").split() if len(w) > 3]


def _turn(n: int, entities: list[str], relations: list[list[str]]) -> dict[str, Any]:
    return {"turn": n, "entities": entities,
            "relations": [{"source": s, "relation": r, "target": t} for s, r, t in relations]}  # fmt: skip


async def test_reads_each_turn_into_entities_and_relations_with_the_speaker_for_i() -> None:
    chat = FakeChat({"turns": [
        _turn(1, ["I", "My Pottery Class"], [["I", "Signed  up for", "the pottery class"]]),
        _turn(3, ["Jon", "Boston"], [["Jon", "moved to", "Boston"], ["Jon", "is", "Jon"]]),
    ]})  # fmt: skip
    graph = LLMChunkGraph(chat)
    read = await graph.annotate([("Melanie Smith", "I signed up for a pottery class."), ("Caroline", "Nice!"),
                                 ("Caroline", "My friend Jon moved to Boston.")])  # fmt: skip
    assert read[0] == {"entities": ["melanie", "pottery class"],
                       "relations": [["melanie", "signed up for", "pottery class"]]}  # fmt: skip
    assert read[1] == {"entities": [], "relations": []}  # the model found nothing in that turn
    assert read[2] == {"entities": ["jon", "boston"], "relations": [["jon", "moved to", "boston"]]}  # no self-loop
    [(messages, fmt)] = chat.requests
    assert messages[1]["content"].splitlines() == [
        "[1] Melanie Smith: I signed up for a pottery class.", "[2] Caroline: Nice!",
        "[3] Caroline: My friend Jon moved to Boston.",
    ]  # fmt: skip
    assert fmt is not None and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"] is CHUNK_GRAPH_SCHEMA


async def test_model_names_are_normalised_by_the_query_reader() -> None:
    chat = FakeChat({"turns": [_turn(1, ["pottery classes"], [])]})
    graph = LLMChunkGraph(chat, query_reader=Lemmas())
    [read] = await graph.annotate([("Mel", "We both go to pottery classes.")])
    assert read["entities"] == ["pottery classes", "pottery", "class"]  # the model's name and the reader's
    assert await graph.query_entities("Which classes?") == ["which", "class"]  # queries: the reader alone


async def test_turns_are_sent_in_batches_and_stay_in_order() -> None:
    turns = [("Ann", f"I like topic{i}.") for i in range(5)]
    chat = FakeChat({"turns": [_turn(i, [f"topic{i - 1}"], []) for i in (1, 2)]},
                    {"turns": [_turn(i, [f"topic{i + 1}"], []) for i in (1, 2)]},
                    {"turns": [_turn(1, ["topic4"], [])]})  # fmt: skip
    read = await LLMChunkGraph(chat, batch=2).annotate(turns)
    assert [r["entities"] for r in read] == [[f"topic{i}"] for i in range(5)]
    assert len(chat.requests) == 3


@pytest.mark.parametrize("answer", ["not json", {"turns": [{"turn": 1}]}, {"turns": [_turn(7, ["x"], [])]}])
async def test_an_answer_off_the_schema_is_an_output_error(answer: Any) -> None:
    with pytest.raises(LLMOutputError):
        await LLMChunkGraph(FakeChat(answer)).annotate([("Ann", "I moved to Porto.")])


async def test_a_failed_batch_is_read_by_the_fallback_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    fallback = Lemmas()
    chat = FakeChat(LLMError("HTTP 503 from the chat deployment"), {"turns": [_turn(1, ["porto"], [])]})
    graph = LLMChunkGraph(chat, fallback=fallback, batch=1)
    with caplog.at_level(logging.WARNING, logger="aoai_realtime.memory.graph_llm"):
        read = await graph.annotate([("Ann", "I moved to Lisbon."), ("Ann", "Then to Porto.")])
    assert read == [{"entities": ["from fallback"], "relations": []}, {"entities": ["porto"], "relations": []}]
    assert fallback.annotated == [("Ann", "I moved to Lisbon.")]
    assert len(caplog.records) == 1 and "HTTP 503" in caplog.records[0].getMessage()


class SilentChat:
    """A chat model that never answers."""

    async def chat(self, messages: list[dict[str, str]], *, response_format: dict[str, Any] | None = None) -> str:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_model_slower_than_the_timeout_counts_as_failed() -> None:
    fallback = Lemmas()
    read = await LLMChunkGraph(SilentChat(), fallback=fallback, timeout=0.01).annotate([("Ann", "I moved to Porto.")])
    assert read == [{"entities": ["from fallback"], "relations": []}]
    with pytest.raises(LLMError, match=r"did not answer within 0\.01 s"):
        await LLMChunkGraph(SilentChat(), timeout=0.01).annotate([("Ann", "I moved to Porto.")])


async def test_the_relation_graph_lets_a_query_reach_a_turn_that_never_names_the_person(
    make_store: StoreFactory,
) -> None:
    a, b = "I signed up for a pottery class.", "The pottery class meets on Fridays in the old mill."
    chat = FakeChat(
        {"turns": [_turn(1, ["pottery class"], [["I", "signed up for", "pottery class"]]), _turn(2, [], [])]},
        {"turns": [_turn(1, ["pottery class", "old mill"], [["pottery class", "meets in", "old mill"]])]},
    )
    graph = LLMChunkGraph(chat)
    store = await make_store(dim=DIM)
    embedder = HashEmbedder(DIM)
    turns = [TranscriptTurn(speaker="Melanie", text=a), TranscriptTurn(speaker="Caroline", text="Nice!")]
    ids = await index_transcript(store, embedder, owner="o", session_id="s1", turns=turns, graph=graph)
    [other] = await index_texts(store, embedder, [b], owner="o", session_id="s2", graph=graph)
    retriever = HybridRetriever(store, embedder, RetrievalConfig.only("graph"), graph=graph)
    hits = await retriever.retrieve("Where does Melanie's class meet?", Scope(owner="o"), k=5)
    assert {h.chunk.id for h in hits} == {ids[0], other}  # melanie -> pottery class -> the turn about the class


def test_chunk_graph_for_uses_the_model_only_when_it_can_chat() -> None:
    offline = Lemmas()
    assert isinstance(chunk_graph_for(FakeChat(), offline), LLMChunkGraph)
    assert chunk_graph_for(LocalLLM(), offline) is offline
    assert chunk_graph_for(LocalLLM(), None) is None


async def test_the_bench_graph_llm_needs_an_azure_chat_deployment() -> None:
    from aoai_realtime.bench.memory_run import bench_chunk_graph
    from aoai_realtime.memory.types import EmbeddingError

    with pytest.raises(EmbeddingError, match="AZURE_OPENAI_CHAT_DEPLOYMENT"):
        await bench_chunk_graph("llm", environ={})
    env = {"AZURE_OPENAI_ENDPOINT": "https://example.invalid", "AZURE_OPENAI_CHAT_DEPLOYMENT": "gpt",
           "AZURE_OPENAI_API_KEY": "k"}  # fmt: skip
    graph = await bench_chunk_graph("llm", environ=env)
    assert isinstance(graph, LLMChunkGraph)
    await graph.close()
