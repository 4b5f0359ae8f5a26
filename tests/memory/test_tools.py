"""Agent tools: results, never exceptions; a latency budget; schema-friendly signatures."""

from __future__ import annotations

import asyncio
import inspect
import typing
from typing import Any

import pytest

from aoai_realtime.memory import ChunkKind, MemoryToolkit, Scope, index_transcript, memory_tools
from aoai_realtime.memory.embeddings import HashEmbedder
from aoai_realtime.memory.indexing import TranscriptTurn

from .conftest import StoreFactory


def test_tools_are_plain_async_callables_with_hints_and_docs() -> None:
    tools = memory_tools(object(), HashEmbedder(8), Scope(owner="u"))  # type: ignore[arg-type]
    assert [t.__name__ for t in tools] == ["retrieve_knowledge", "save_insight", "get_session_context"]
    for tool in tools:
        assert inspect.iscoroutinefunction(tool)
        assert tool.__doc__ and tool.__doc__.strip()
        hints = typing.get_type_hints(tool)
        params = [p for p in inspect.signature(tool).parameters]
        assert all(p in hints for p in params) and "return" in hints
    assert list(inspect.signature(tools[1]).parameters) == ["text", "topic"]


@pytest.mark.integration
async def test_save_then_retrieve_then_session_context(make_store: StoreFactory, embedder: HashEmbedder) -> None:
    store = await make_store()
    scope = Scope(owner="ann", session_id="call-7")
    await index_transcript(
        store, embedder, owner="ann", session_id="call-7",
        turns=[TranscriptTurn(speaker="Ann", text="Book the dentist for Friday", ts=10.0),
               TranscriptTurn(speaker="Agent", text="Done, Friday at nine", ts=20.0)],
    )  # fmt: skip
    retrieve, save, context = memory_tools(store, embedder, scope, clock=lambda: 1000.0)
    saved = await save(text="Ann is allergic to penicillin", topic="health")
    assert saved["ok"] is True
    [stored] = await store.get_chunks([saved["id"]])
    assert stored.kind is ChunkKind.INSIGHT and stored.session_id == "call-7" and stored.ts == 1000.0
    found = await retrieve(query="penicillin allergy")
    assert found["ok"] is True and found["results"][0]["text"] == "Ann is allergic to penicillin"
    ctx = await context()
    assert [t["text"] for t in ctx["session"]] == [
        "Book the dentist for Friday", "Done, Friday at nine", "Ann is allergic to penicillin"
    ]  # fmt: skip
    assert [i["text"] for i in ctx["recent_insights"]] == ["Ann is allergic to penicillin"]
    # Another owner sees none of it.
    other = memory_tools(store, embedder, Scope(owner="bob"))
    assert (await other[0](query="penicillin"))["results"] == []


@pytest.mark.integration
async def test_bad_input_comes_back_as_an_error_result(make_store: StoreFactory, embedder: HashEmbedder) -> None:
    store = await make_store()
    retrieve, save, _ = memory_tools(store, embedder, Scope(owner="u"))
    assert (await retrieve(query="   "))["ok"] is False
    assert "empty" in (await save(text=""))["error"]
    assert "longer" in (await save(text="x" * 5000))["error"]


class Hanging:
    """A store whose searches never finish (a stuck database)."""

    dim = 8

    def __init__(self) -> None:
        self.never = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        async def wait(*args: object, **kwargs: object) -> Any:
            await self.never.wait()

        return wait


class Broken:
    dim = 8

    def __getattr__(self, name: str) -> Any:
        async def fail(*args: object, **kwargs: object) -> Any:
            raise OSError("disk I/O error with api_key=0123456789abcdef0123456789abcdef")

        return fail


async def test_budget_turns_a_stuck_store_into_an_error_result() -> None:
    kit = MemoryToolkit(store=Hanging(), embedder=HashEmbedder(8), scope=Scope(owner="u"), budget=0.05)  # type: ignore[arg-type]
    for result in (await kit.retrieve_knowledge("x"), await kit.save_insight("y"), await kit.get_session_context()):
        assert result["ok"] is False and "within" in result["error"]


async def test_unexpected_failure_is_an_error_result_without_details() -> None:
    kit = MemoryToolkit(store=Broken(), embedder=HashEmbedder(8), scope=Scope(owner="u"))  # type: ignore[arg-type]
    result = await kit.retrieve_knowledge("x")
    assert result == {"ok": False, "error": "memory is unavailable (OSError); go on without it"}
