"""The pipeline's index step with a parser graph: each chunk carries the reader's entities and relations, and
without the graph extra the indexer says so once and indexes as before."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import aoai_realtime.memory as memory
import aoai_realtime.memory.graph as memory_graph
from aoai_realtime.errors import ConfigError
from aoai_realtime.llm import Turn
from aoai_realtime.pipeline import CallRecord, MemoryIndexer

CALL = CallRecord(
    call_id="mem-1",
    transcript=(Turn("user", "My daughter Mia takes violin lessons."), Turn("assistant", "I'll remember that.")),
    metadata={"owner": "alice"},
)


class Reader:
    """A parser with one fixed reading per text; counts what it was asked to read."""

    name = "fixed"

    def __init__(self) -> None:
        self.read: list[tuple[str, str]] = []

    async def annotate(self, turns: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        self.read += turns
        return [{"entities": [text.split()[0].lower()], "relations": []} for _, text in turns]

    async def query_entities(self, query: str) -> list[str]:
        return []


@pytest.fixture
async def mem(tmp_path: Path) -> AsyncIterator[Any]:
    store = await memory.SQLiteStore.open(tmp_path / "memory.db", dim=64)
    try:
        yield store
    finally:
        await store.close()


async def _metas(mem: Any) -> list[dict[str, Any]]:
    recent = await mem.recent(memory.Scope(owner="alice"), 10)
    return [c.meta for c in await mem.get_chunks([cid for cid, _ in recent])]


async def test_the_turns_and_the_summary_carry_the_parsers_reading(mem: Any) -> None:
    reader = Reader()
    await MemoryIndexer(mem, memory.HashEmbedder(64), graph=reader).index_call(CALL, "Summary: Mia plays violin.")
    assert reader.read == [("user", "My daughter Mia takes violin lessons."), ("assistant", "I'll remember that."),
                           ("", "Summary: Mia plays violin.")]  # fmt: skip
    assert sorted(m["graph"]["entities"][0] for m in await _metas(mem)) == ["i'll", "my", "summary:"]


async def test_without_the_graph_extra_it_logs_once_and_indexes_with_the_name_rule(
    mem: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[None] = []
    monkeypatch.setattr(memory_graph, "default_chunk_graph", lambda: calls.append(None))
    indexer = MemoryIndexer(mem, memory.HashEmbedder(64))  # graph="auto"
    with caplog.at_level("INFO"):
        await indexer.index_call(CALL, "summary")
        await indexer.index_call(CALL, "summary")  # a retry: no second load, no second line
    assert len(calls) == 1
    assert len([r for r in caplog.records if "graph extra" in r.getMessage()]) == 1
    metas = await _metas(mem)
    assert len(metas) == 3 and not any("graph" in m for m in metas)
    assert await mem.search_entities(memory.Scope(owner="alice"), ["mia"], 5)  # the name rule indexed "Mia"


async def test_an_unknown_graph_option_is_refused(mem: Any) -> None:
    indexer = MemoryIndexer(mem, memory.HashEmbedder(64), graph="spacy")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="graph='spacy' is not an option"):
        await indexer.index_call(CALL, "summary")
