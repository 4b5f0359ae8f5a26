"""The Memory Agent: a voice agent that remembers what a user tells it, across calls (the seed's first agent).

Two personas share one memory, with tool sets chosen server-side when the session is made:

- ``capture`` listens and saves: tools ``save_insight`` and ``get_session_context``;
- ``assistant`` answers from memory: tools ``retrieve_knowledge`` (mandatory for questions, by its description;
  ``tool_choice`` stays ``auto``) and ``get_session_context``.

Both use semantic turn detection (noisy rooms). Every tool scopes its reads and writes to
``Scope(owner=context.user_id, session_id=context.call_id)`` through :class:`~aoai_realtime.memory.MemoryToolkit`,
so one user never reads another's memory. Tool outputs are short text a model can speak from.

After each call (``call_ended``) the post-call pipeline writes, each exactly once: the session summary
(``summary``), the knowledge graph (``graph``: entities and relations, see :mod:`aoai_realtime.apps.graph`) and
the transcript with its summary indexed into memory (``index``).

Memory is read into a knowledge graph as it is written (``chunk_graph``, ``"auto"`` by default): with the ``graph``
extra installed, the spaCy parser reads each saved insight, call turn, summary and fact into entities and
subject-verb-object relations, and ``retrieve_knowledge`` reads the question with the same parser and follows the
relations one hop, so a question reaches notes that share a person or thing with it but few words. One parser is
loaded per process and shared by the tools, the retriever and the index step; without the extra the agent logs
one line and uses the stores' capitalised-name rule.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ..errors import ToolError
from ..llm import LocalLLM
from ..llm.types import LLMProvider
from ..memory import (
    CachedEmbedder,
    ChunkKind,
    EmbeddingProvider,
    LocalEmbedder,
    MemoryStore,
    MemoryToolkit,
    Scope,
    SQLiteStore,
    text_chunks,
)
from ..memory.graph_llm import chunk_graph_for
from ..pipeline import SUMMARY, ClaimLost, Effect, Pipeline, RetryPolicy, StepContext, StepSpec
from ..pipeline.memory_indexer import ChunkGraphOption, resolve_chunk_graph
from ..protocol.session import SemanticVad
from ..server.hooks import CallRecord, CallStart
from ..server.personas import Persona
from ..server.tools import ServerTool, ToolContext
from .graph import Extraction, GraphExtractor, default_extractor
from .postcall import CALL_SESSION_SUFFIX, CallIndexer, PostCall, pipeline_call, search_memory
from .records import AppRecords

if TYPE_CHECKING:
    from ..memory.graph import ChunkGraph

__all__ = ["ASSISTANT_INSTRUCTIONS", "CAPTURE_INSTRUCTIONS", "GRAPH", "INDEX", "MemoryAgent"]

GRAPH: Final = "graph"
INDEX: Final = "index"
STEPS: Final = (SUMMARY, GRAPH, INDEX)
GRAPH_SESSION_SUFFIX: Final = "#graph"

_STYLE = (
    "You are talking, not writing: answer in one or two short spoken sentences, warmly and plainly, in the "
    "user's language. Never read tool results, lists, scores or JSON aloud, and never mention your tools, "
    "searching or 'my memory system'; just say what you know."
)

CAPTURE_INSTRUCTIONS: Final = (
    "You are the memory companion of {user_name}: you listen, and remember what matters.\n"
    "When the user tells you something worth remembering (about their life, people, pets, places, plans, dates, "
    "preferences, health or decisions, or anything they ask you to remember), call save_insight once per fact, as "
    "one self-contained sentence that will still make sense months from now: names instead of 'she' or 'he', "
    "dates instead of 'tomorrow'. Then confirm in a few words what you will remember. Do not save small talk, "
    "questions, or a fact already saved in this call. If saving fails, say so and ask them to repeat it later.\n"
    "If the user asks what you have noted, call get_session_context and sum it up in one sentence.\n"
    + _STYLE
)

ASSISTANT_INSTRUCTIONS: Final = (
    "You are the personal assistant of {user_name}, with a long-term memory of your earlier conversations.\n"
    "Before you answer any question about the user, their people, pets, places, plans, preferences, or anything "
    "they may have told you before, call retrieve_knowledge first, silently, with the question's key words. "
    "Answer from what it returns. If it returns nothing relevant, say plainly that you don't remember them "
    "telling you that; never guess or invent a memory. For general questions that are not about the user, "
    "answer from your own knowledge. Use get_session_context when the user refers to 'what we just talked "
    "about' or to recent notes.\n"
    + _STYLE
)

SAVE_INSIGHT_DESCRIPTION: Final = (
    "Save one fact the user wants remembered (about themselves, people, pets, places, plans, dates, preferences "
    "or decisions) so it can be recalled in later conversations. Call it once per fact, as soon as the user "
    "states it, without asking for permission. Returns a short confirmation."
)
RETRIEVE_DESCRIPTION: Final = (
    "MANDATORY: call this tool silently and immediately when the user asks any question about earlier "
    "conversations, about themselves, or about anyone or anything they may have mentioned before (people, pets, "
    "places, plans, dates, preferences, decisions), before you answer and without announcing it. Returns the "
    "most relevant things remembered, as short notes with their date; answer from them in your own words."
)
SESSION_CONTEXT_DESCRIPTION: Final = (
    "Get what was saved during this call and the most recent notes from earlier calls, as short text. Use it "
    "when the user refers to what was just discussed or asks what you have noted."
)

_MAX_NOTE_CHARS = 280


class MemoryAgent:
    """Personas ``capture`` and ``assistant`` over one memory store. Build with :meth:`open`; the stores live
    under ``data_dir`` (``memory.sqlite``, ``steps.sqlite``, ``records.sqlite``)."""

    name = "memory-agent"

    def __init__(self, *, memory: MemoryStore, embedder: EmbeddingProvider, llm: LLMProvider,
                 extractor: GraphExtractor, data_dir: Path, owns_memory: bool, resume: bool = True,
                 clock: Callable[[], float] = time.time, chunk_graph: ChunkGraph | None = None) -> None:
        """Use :meth:`open`, which also starts the post-call driver and warms the embedder and the parser."""
        self._clock = clock
        self.memory = memory
        self.embedder = embedder
        self.llm = llm
        self.extractor = extractor
        self.chunk_graph = chunk_graph
        """The parser reading memory into the graph (tools, retriever and index step share it), or None."""
        self.index_graph = chunk_graph_for(llm, chunk_graph)
        """What reads a finished call's turns at indexing: the chat model when ``llm`` has one (an Azure chat
        deployment; spaCy reads what it fails on, and every query), else :attr:`chunk_graph`. ``save_insight``
        keeps the parser: it answers inside a tool's time budget, which a model round trip could exceed."""
        self.records = AppRecords(data_dir / "records.sqlite")
        self.postcall = PostCall.at(data_dir / "steps.sqlite", self._pipeline(), resume=resume)
        self._owns_memory = owns_memory

    @classmethod
    async def open(
        cls,
        data_dir: Path | str,
        *,
        embedder: EmbeddingProvider | None = None,
        llm: LLMProvider | None = None,
        extractor: GraphExtractor | None = None,
        memory: MemoryStore | None = None,
        resume: bool = True,
        chunk_graph: ChunkGraphOption = "auto",
    ) -> MemoryAgent:
        """Open (creating) the agent's stores under ``data_dir``.

        ``embedder`` defaults to the offline MiniLM (``CachedEmbedder(LocalEmbedder())``); ``llm`` (summaries)
        to the offline :class:`~aoai_realtime.llm.LocalLLM`; ``extractor`` to :func:`default_extractor` of
        ``llm`` (the chat model, else spaCy, else the heuristic); ``memory`` to a :class:`SQLiteStore` in
        ``data_dir`` (pass a :class:`~aoai_realtime.memory.PostgresStore` to use PostgreSQL; it is not closed
        by :meth:`close`). ``resume`` also finishes post-call steps an earlier process left. ``chunk_graph``
        reads what is saved and indexed into entities and relations for retrieval: ``"auto"`` (the default) is
        the spaCy parser when the ``graph`` extra is installed, else the stores' name rule (logged once); None
        turns the parser graph off; or pass a :class:`~aoai_realtime.memory.graph.ChunkGraph`. Keep the same
        choice for a store's lifetime: queries are read as the memory was indexed. Raises
        ``ModelIntegrityError`` when the spaCy model's files were altered (see :func:`~.graph.load_spacy`)."""
        root = Path(data_dir)
        await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)
        embedder = embedder or CachedEmbedder(LocalEmbedder())
        await embedder.embed(["warm up"])  # load the model now, not inside the first tool call's budget
        llm = llm or LocalLLM()
        # spaCy's files are hashed and its pipeline loaded (a second or two): off the event loop.
        if extractor is None:
            extractor = await asyncio.to_thread(default_extractor, llm)
        graph = await resolve_chunk_graph(chunk_graph, user=cls.name)
        if graph is not None:
            await graph.query_entities("warm up")  # the parser's first call is slower: not in a tool's budget
        owns = memory is None
        store = memory or await SQLiteStore.open(root / "memory.sqlite", dim=embedder.dim)
        agent = cls(memory=store, embedder=embedder, llm=llm, extractor=extractor, data_dir=root, owns_memory=owns,
                    resume=resume, chunk_graph=graph)
        await agent.postcall.start()
        return agent

    # -- server side -------------------------------------------------------------------------------------

    def personas(self) -> list[Persona]:
        vad = SemanticVad(eagerness="auto")  # semantic: fewer false turns in noisy rooms; auto: no extra wait
        return [
            Persona(id="capture", title="Memory Agent: capture", instructions=CAPTURE_INSTRUCTIONS,
                    tools=("save_insight", "get_session_context"), voice="cedar", turn_detection=vad),
            Persona(id="assistant", title="Memory Agent: assistant", instructions=ASSISTANT_INSTRUCTIONS,
                    tools=("retrieve_knowledge", "get_session_context"), voice="cedar", turn_detection=vad),
        ]

    def tools(self) -> list[ServerTool]:
        return [
            ServerTool(
                name="save_insight", description=SAVE_INSIGHT_DESCRIPTION, handler=self._save_insight,
                parameters={
                    "type": "object",
                    "properties": {
                        "text": {"type": "string",
                                 "description": "The fact as one self-contained sentence (who, what, when)."},
                        "topic": {"type": "string",
                                  "description": "Optional one- or two-word label, e.g. 'family' or 'health'."},
                    },
                    "required": ["text"],
                },
            ),
            ServerTool(
                name="retrieve_knowledge", description=RETRIEVE_DESCRIPTION, handler=self._retrieve,
                parameters={
                    "type": "object",
                    "properties": {"query": {"type": "string",
                                             "description": "What to look for: the question or its key words."}},
                    "required": ["query"],
                },
            ),
            ServerTool(name="get_session_context", description=SESSION_CONTEXT_DESCRIPTION,
                       handler=self._session_context_tool),
        ]

    async def session_context(self, start: CallStart) -> str | None:
        """Today's date only (so "tomorrow" can be saved as a date): the Memory Agent recalls through its tools,
        so only what is asked about enters the call."""
        return time.strftime("Today is %A, %Y-%m-%d (UTC).", time.gmtime(self._clock()))

    async def call_ended(self, record: CallRecord) -> None:
        """Store the call and run its post-call steps (summary, graph, index) until settled."""
        await self.records.add_call(record)
        await self.postcall.run(pipeline_call(record))

    async def close(self) -> None:
        await self.postcall.close()
        await self.records.close()
        if self._owns_memory:
            await self.memory.close()

    # -- tools -------------------------------------------------------------------------------------------

    def _kit(self, context: ToolContext) -> MemoryToolkit:
        return MemoryToolkit(store=self.memory, embedder=self.embedder, graph=self.chunk_graph,
                             scope=Scope(owner=context.user_id, session_id=context.call_id or None))

    async def _save_insight(self, args: dict[str, Any], context: ToolContext) -> str:
        text, topic = args.get("text"), args.get("topic", "")
        if not isinstance(text, str) or not isinstance(topic, str):
            raise ToolError("text (and topic, if given) must be strings")
        result = _checked(await self._kit(context).save_insight(text, topic.strip()))
        return f"Saved: {result['saved']}"

    async def _retrieve(self, args: dict[str, Any], context: ToolContext) -> str:
        query = args.get("query")
        if not isinstance(query, str):
            raise ToolError("query must be a string: say what to look for")
        result = _checked(await self._kit(context).retrieve_knowledge(query))
        notes = [_note(r) for r in result["results"]]
        if not notes:
            return (f"Nothing remembered about {query.strip()!r}. Tell the user you don't remember them telling you "
                    "that; do not guess.")
        lines = "\n".join(f"- {n}" for n in dict.fromkeys(notes))
        return f"Remembered (most relevant first):\n{lines}\nAnswer from these notes only if they answer the question."

    async def _session_context_tool(self, args: dict[str, Any], context: ToolContext) -> str:
        result = _checked(await self._kit(context).get_session_context())
        this_call = [_note(c) for c in result["session"]]
        recent = [_note(c) for c in result["recent_insights"] if _note(c) not in this_call]
        parts = [("Saved in this call:\n" + "\n".join(f"- {n}" for n in this_call)) if this_call
                 else "Nothing saved in this call yet."]
        if recent:
            parts.append("Recent notes from earlier calls:\n" + "\n".join(f"- {n}" for n in recent))
        return "\n".join(parts)

    # -- post-call ---------------------------------------------------------------------------------------

    def _pipeline(self) -> Pipeline:
        indexer = CallIndexer(self.memory, self.embedder, source=self.name, graph=self.index_graph)

        async def summary(ctx: StepContext) -> Effect:
            return Effect("text/markdown", await self.llm.summarize(ctx.call.transcript))

        async def graph(ctx: StepContext) -> Effect:
            extraction = await self.extractor.extract(ctx.call.transcript)
            if not await ctx.still_holds():
                raise ClaimLost(f"graph of call {ctx.call.call_id!r}: claim lost before the write")
            await self._write_graph(ctx.call.call_id, ctx.call.metadata, extraction)
            return Effect("application/json", extraction.to_json())

        async def index(ctx: StepContext) -> Effect:
            summary_text = ctx.dependencies[SUMMARY].body
            if not await ctx.still_holds():
                raise ClaimLost(f"index of call {ctx.call.call_id!r}: claim lost before the memory write")
            await indexer.index_call(ctx.call, summary_text)
            return Effect("application/json", json.dumps({"session": ctx.call.call_id + CALL_SESSION_SUFFIX,
                                                          "turns": len(ctx.call.transcript)}))

        return Pipeline(steps=(StepSpec(SUMMARY, summary, lease_seconds=120.0),
                               StepSpec(GRAPH, graph, lease_seconds=120.0),
                               StepSpec(INDEX, index, depends_on=(SUMMARY,), lease_seconds=120.0)),
                        retry=RetryPolicy(max_attempts=4))

    async def _write_graph(self, call_id: str, metadata: Any, extraction: Extraction) -> None:
        """Both writes replace what this call wrote before, so a retried step adds nothing."""
        owner = metadata["owner"]
        await self.records.replace_graph(owner, call_id, extraction.entities, extraction.relations)
        facts = extraction.sentences()
        session = call_id + GRAPH_SESSION_SUFFIX
        chunks = await text_chunks(self.embedder, facts, owner=owner, session_id=session, kind=ChunkKind.FACT,
                                   source=f"graph:{extraction.extractor}", ts=float(metadata.get("ended_at", "0")),
                                   graph=self.chunk_graph) if facts else []
        await self.memory.replace_session(Scope(owner=owner), session, chunks)

    # -- browse (JSON-able, for the demo UI) -------------------------------------------------------------

    async def insights(self, user_id: str, *, limit: int = 50) -> list[dict[str, Any]]:
        """Saved insights, newest first: ``[{"id": int, "text": str, "topic": str, "call_id": str,
        "saved_at": float}]``."""
        recent = await self.memory.recent(Scope(owner=user_id), max(limit * 10, 200))
        chunks = await self.memory.get_chunks([cid for cid, _ in recent])
        saved = sorted((c for c in chunks if c.kind is ChunkKind.INSIGHT), key=lambda c: (-c.ts, -c.id))
        return [
            {"id": c.id, "text": c.text, "topic": c.source.partition(":")[2], "call_id": c.session_id,
             "saved_at": c.ts}
            for c in saved[:limit]
        ]

    async def graph(self, user_id: str) -> dict[str, Any]:
        """The user's knowledge graph: ``{"extractor": str, "entities": [{"name": str, "type": str,
        "mentions": int}], "relations": [{"source": str, "relation": str, "target": str, "call_id": str}]}``.
        ``mentions`` counts the calls that named the entity; the node ``"user"`` is the user."""
        return {"extractor": self.extractor.name, **await self.records.graph(user_id)}

    async def search(self, user_id: str, query: str, *, k: int = 5) -> list[dict[str, Any]]:
        """What ``retrieve_knowledge`` would find for ``user_id``, unformatted: ``[{"text": str, "kind": "turn" |
        "insight" | "summary" | "fact", "speaker": str, "call_id": str, "ts": float, "score": float}]``."""
        return await search_memory(self.memory, self.embedder, user_id, query, k, graph=self.chunk_graph)

    async def sessions(self, user_id: str) -> list[dict[str, Any]]:
        """Past calls, newest first: ``[{"call_id": str, "persona": str, "started_at": float, "ended_at": float,
        "ended_reason": str, "turns": int, "summary": str | None, "steps": {step: state}}]``."""
        return [await self._session_view(r) for r in await self.records.calls(user_id)]

    async def session(self, user_id: str, call_id: str) -> dict[str, Any] | None:
        """One past call of ``user_id`` as in :meth:`sessions`, plus ``"transcript": [{"role", "text"}]``,
        ``"tool_calls": [{"name", "arguments", "output", "status"}]`` and ``"graph"`` (its entities and
        relations); None if the user has no such call."""
        calls = await self.records.calls(user_id, call_id=call_id)
        if not calls:
            return None
        record = calls[0]
        view = await self._session_view(record)
        view["transcript"] = [{"role": t.role, "text": t.text} for t in record.turns]
        view["tool_calls"] = [{"name": c.name, "arguments": c.arguments, "output": c.output, "status": c.status}
                              for c in record.tool_calls]
        view["graph"] = await self.records.graph(user_id, call_id)
        return view

    async def _session_view(self, record: CallRecord) -> dict[str, Any]:
        summary = await self.postcall.effect(record.call_id, SUMMARY)
        return {
            "call_id": record.call_id, "persona": record.persona_id, "started_at": record.started_at,
            "ended_at": record.ended_at, "ended_reason": record.ended_reason, "turns": len(record.turns),
            "summary": summary.body if summary else None, "steps": await self.postcall.states(record.call_id),
        }


def _checked(result: dict[str, Any]) -> dict[str, Any]:
    """The toolkit's result, or a :class:`ToolError` carrying its message (the server's one error shape)."""
    if not result.get("ok"):
        raise ToolError(str(result.get("error") or "memory failed"))
    return result


def _note(view: dict[str, Any]) -> str:
    # Summaries are markdown: the model gets the words, not the markup.
    plain = re.sub(r"#+|^\s*- ", " ", str(view.get("text", "")).replace("*", ""), flags=re.M)
    text = " ".join(plain.split())
    if len(text) > _MAX_NOTE_CHARS:
        text = text[: _MAX_NOTE_CHARS - 1].rstrip() + "…"
    kind = view.get("kind", "")
    who = f"{view['speaker']} said: " if kind == "turn" and view.get("speaker") else ""
    label = {"insight": "saved note", "summary": "call summary", "fact": "fact"}.get(kind, "")
    when = str(view.get("time", ""))[:10]
    tag = ", ".join(x for x in (label, when) if x)
    return f"{who}{text}" + (f" ({tag})" if tag else "")

