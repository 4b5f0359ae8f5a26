"""Knowledge-graph indexing of chunks by a language model: entities and relations per turn, in a strict JSON schema.

:class:`LLMChunkGraph` is a :class:`~.graph.ChunkGraph` for when a chat model is configured (Azure OpenAI's
:class:`~aoai_realtime.llm.AzureOpenAIChat`, or any object with the same ``chat(messages, response_format=...)``).
At indexing time (the post-call pipeline, ``save_insight``) it sends the turns in batches, numbered, and asks for
each turn's entities and the relations stated between them, with first-person speech resolved to the speaker;
the answer must match :data:`CHUNK_GRAPH_SCHEMA` and is validated again here. It writes the same
``{"entities": [...], "relations": [[s, r, t], ...]}`` as :class:`~.graph.SpacyChunkGraph`, so the stores index
it alike.

At search time a model round trip per query would cost the call hundreds of milliseconds, so the query's entities
are read by ``query_reader`` (the spaCy graph when installed, else the stores' name rule); the model's entity
names are normalised through the same reader (lemmatised noun phrases), so both sides name things alike.

When the model fails (an :class:`~aoai_realtime.llm.types.LLMError`: HTTP, timeout, an answer off the schema), a
batch is read by ``fallback`` (usually the spaCy graph) and one warning says so; without a fallback the error is
raised to the caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Final, Protocol, runtime_checkable

import msgspec

from ..errors import get_logger
from ..llm.types import LLMError, LLMOutputError
from .graph import MAX_ENTITIES, MAX_RELATIONS, ChunkGraph
from .text import STOP_WORDS, extract_entities

__all__ = ["CHUNK_GRAPH_PROMPT", "CHUNK_GRAPH_SCHEMA", "ChatModel", "LLMChunkGraph", "chunk_graph_for"]

log = get_logger(__name__)

BATCH_TURNS: Final = 24
MAX_TURN_CHARS: Final = 2_000

CHUNK_GRAPH_PROMPT: Final = (
    "You read turns of a conversation and build a knowledge graph from them, turn by turn. For every numbered "
    "turn, list (1) the entities it mentions: people, pets, places, organisations, events, works (books, songs, "
    "films), activities and notable things, each as a short lowercase noun phrase in the singular, without "
    'articles or possessives ("pottery class", not "my pottery classes"); no dates, numbers, or vague words '
    'such as "thing" or "time"; and (2) the relations the turn states between them as source, relation, '
    'target, with the relation a short lowercase verb phrase ("sign up for", "adopt", "sister of", '
    '"live in"). When the speaker says I, me or my, use the speaker\'s first name in lowercase as the entity. '
    "Only what the turn says; no guesses. A turn with nothing worth keeping gets empty lists."
)

CHUNK_GRAPH_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["turns"],
    "properties": {
        "turns": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["turn", "entities", "relations"],
                "properties": {
                    "turn": {"type": "integer"},
                    "entities": {"type": "array", "maxItems": MAX_ENTITIES, "items": {"type": "string"}},
                    "relations": {
                        "type": "array",
                        "maxItems": MAX_RELATIONS,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["source", "relation", "target"],
                            "properties": {
                                "source": {"type": "string"},
                                "relation": {"type": "string"},
                                "target": {"type": "string"},
                            },
                        },
                    },
                },
            },
        }
    },
}

_RESPONSE_FORMAT: Final = {
    "type": "json_schema",
    "json_schema": {"name": "turn_knowledge_graph", "strict": True, "schema": CHUNK_GRAPH_SCHEMA},
}
_DROP_WORDS: Final = frozenset({"a", "an", "the", "my", "your", "his", "her", "their", "our", "its", "this", "that"})
_FIRST_PERSON: Final = frozenset({"i", "me", "my", "mine", "myself", "we", "us", "our", "speaker"})


@runtime_checkable
class ChatModel(Protocol):
    """A chat-completion model answering in a JSON-schema response format (``AzureOpenAIChat`` is one)."""

    async def chat(self, messages: list[dict[str, str]], *, response_format: dict[str, Any] | None = None) -> str: ...


class _Relation(msgspec.Struct, frozen=True):
    source: str
    relation: str
    target: str


class _Turn(msgspec.Struct, frozen=True):
    turn: int
    entities: list[str]
    relations: list[_Relation]


class _Answer(msgspec.Struct, frozen=True):
    turns: list[_Turn]


_decoder: Final = msgspec.json.Decoder(_Answer)


class LLMChunkGraph:
    """Graph indexing with a chat model (see the module docstring). ``query_reader`` reads queries and normalises
    the model's entity names (pass the spaCy graph, e.g. :func:`~.graph.default_chunk_graph`, when installed;
    None: the stores' name rule, lowercased); ``fallback`` reads a batch the model failed on (None: the error
    is raised). ``batch`` turns go in one request; ``timeout`` (seconds, None: no limit) bounds each request, and a
    request past it counts as a failure (e.g. ``timeout=1.0`` for ``save_insight``, which runs inside a tool's
    latency budget)."""

    name = "llm"

    def __init__(
        self,
        model: ChatModel,
        *,
        query_reader: ChunkGraph | None = None,
        fallback: ChunkGraph | None = None,
        batch: int = BATCH_TURNS,
        timeout: float | None = None,
    ) -> None:
        if batch < 1 or (timeout is not None and timeout <= 0):
            raise ValueError("LLMChunkGraph: batch must be >= 1 and timeout > 0 (or None)")
        self._model = model
        self._reader = query_reader
        self._fallback = fallback
        self._batch = batch
        self._timeout = timeout

    async def annotate(self, turns: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for start in range(0, len(turns), self._batch):
            part = turns[start : start + self._batch]
            try:
                try:
                    async with asyncio.timeout(self._timeout):
                        out += await self._annotate_batch(part)
                except TimeoutError:
                    raise LLMError(f"the language model did not answer within {self._timeout:g} s") from None
            except LLMError as exc:
                if self._fallback is None:
                    raise
                log.warning("graph extraction by the language model failed for %d turns (%s); read them with "
                            "the %s graph instead", len(part), exc, self._fallback.name)  # fmt: skip
                out += await self._fallback.annotate(part)
        return out

    async def close(self) -> None:
        """Close the chat model when it has a ``close`` (an ``AzureOpenAIChat`` does); call it when done, if this
        graph owns the model."""
        close = getattr(self._model, "close", None)
        if close is not None:
            await close()

    async def query_entities(self, query: str) -> list[str]:
        if self._reader is not None:
            return await self._reader.query_entities(query)
        return [_norm(e) for e in extract_entities(query) if _norm(e)]

    async def _annotate_batch(self, turns: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        lines = [f"[{i}] {speaker or 'Note'}: {' '.join(text.split())[:MAX_TURN_CHARS]}"
                 for i, (speaker, text) in enumerate(turns, 1)]  # fmt: skip
        text = await self._model.chat(
            [{"role": "system", "content": CHUNK_GRAPH_PROMPT}, {"role": "user", "content": "\n".join(lines)}],
            response_format=_RESPONSE_FORMAT,
        )
        try:
            answer = _decoder.decode(text)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise LLMOutputError(f"the turns' knowledge graph does not match its schema: {exc}") from exc
        by_turn: dict[int, _Turn] = {}
        for item in answer.turns:
            if not 1 <= item.turn <= len(turns):
                raise LLMOutputError(f"the turns' knowledge graph names turn {item.turn}, but only 1-{len(turns)} "
                                     "were sent")  # fmt: skip
            by_turn.setdefault(item.turn, item)
        out = []
        for i, (speaker, _) in enumerate(turns, 1):
            found = by_turn.get(i)
            out.append(await self._reading(found, speaker) if found else {"entities": [], "relations": []})
        return out

    async def _reading(self, item: _Turn, speaker: str) -> dict[str, Any]:
        me = _norm(speaker.split()[0]) if speaker.split() else ""
        names: dict[str, list[str]] = {}  # the model's name -> the normalised entities it stands for

        async def resolve(raw: str) -> list[str]:
            key = _norm(raw)
            if key in _FIRST_PERSON:
                return [me] if me else []
            if key not in names:
                found = [key] if key and key not in STOP_WORDS else []
                if self._reader is not None and key:
                    found += [e for e in await self._reader.query_entities(key) if e not in found]
                names[key] = found
            return names[key]

        entities: dict[str, None] = {}
        for raw in item.entities:
            entities.update(dict.fromkeys(await resolve(raw)))
        relations: dict[tuple[str, str, str], None] = {}
        for r in item.relations:
            label = " ".join(r.relation.lower().split())
            sources, targets = await resolve(r.source), await resolve(r.target)
            if not (label and sources and targets):
                continue
            s, t = sources[0], targets[0]
            if s != t:
                relations[(s, label, t)] = None
                entities.setdefault(s, None)
                entities.setdefault(t, None)
        ents = list(entities)[:MAX_ENTITIES]
        kept = set(ents)
        rels = [[s, r, t] for s, r, t in relations if s in kept and t in kept][:MAX_RELATIONS]
        return {"entities": ents, "relations": rels}


def chunk_graph_for(llm: object, offline: ChunkGraph | None) -> ChunkGraph | None:
    """The chunk graph to index with: :class:`LLMChunkGraph` over ``llm`` when it can chat (a configured Azure
    chat deployment), reading queries with ``offline`` and falling back to it; else ``offline`` itself (the
    spaCy graph, or None for the stores' name rule). The offline ``LocalLLM`` has no chat model, so it gets
    ``offline``."""
    if isinstance(llm, ChatModel):
        return LLMChunkGraph(llm, query_reader=offline, fallback=offline)
    return offline


def _norm(text: str) -> str:
    parts = " ".join(text.lower().replace("’", "'").split()).strip(" .,!?'\"-").split()
    while parts and parts[0] in _DROP_WORDS:
        parts = parts[1:]
    out = " ".join(parts)
    return out[:-2] if out.endswith("'s") else out
