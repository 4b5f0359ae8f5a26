"""Knowledge-graph indexing of chunks with a parser: entities and subject-verb-object relations per turn.

:class:`SpacyChunkGraph` reads each turn with the pinned spaCy English pipeline (:mod:`.spacy_model`): named
entities (people, places, organisations, events, works...), noun phrases (lemmatised, with their compound
modifiers: "pottery classes" -> ``pottery class``), and relations from the dependency parse: subject -
verb (+ preposition) - object, with first-person subjects resolved to the turn's speaker ("I signed up for a
pottery class", said by Melanie -> ``(melanie, sign up for, pottery class)``). The result goes into the chunk's
``meta["graph"]`` (``{"entities": [...], "relations": [[source, relation, target], ...]}``), which the stores index
instead of their capitalisation rule; the retriever's graph signal then starts from the query's entities (found by
the same reader) and follows the relations one hop further (``RetrievalConfig.graph_hops``), which is how a
multi-hop question reaches turns that never name what it asks about.

Heuristic parts, said plainly: pronouns other than the first person are not resolved; "you" is skipped.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any, Final, Protocol

from .spacy_model import load_spacy
from .text import STOP_WORDS

__all__ = ["ChunkGraph", "SpacyChunkGraph", "default_chunk_graph"]

_SKIP_LABELS: Final = frozenset({"CARDINAL", "ORDINAL", "QUANTITY", "PERCENT", "MONEY", "TIME", "DATE"})
_FIRST_PERSON: Final = frozenset({"i", "me", "my", "mine", "myself", "we", "us", "our"})
_SUBJECTS: Final = frozenset({"nsubj", "nsubjpass"})
_OBJECTS: Final = frozenset({"dobj", "attr", "oprd"})
_MODIFIERS: Final = frozenset({"compound"})
# Nouns too general to link anything (every conversation has them).
_GENERIC: Final = frozenset(
    "thing things time times lot lots way day days today tonight week weeks month months year years bit kind "
    "sort stuff something anything everything nothing one ones people guy guys moment idea part place point "
    "fun chance yesterday tomorrow morning evening night weekend hey hi wow yeah".split()
)
MAX_ENTITIES: Final = 24
MAX_RELATIONS: Final = 16


class ChunkGraph(Protocol):
    """Extracts a turn's entities and relations at indexing time, and a query's entities at search time, with
    the same reader (so both sides name things alike)."""

    name: str

    async def annotate(self, turns: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        """One ``{"entities": [...], "relations": [[s, r, t], ...]}`` per ``(speaker, text)``, in order."""
        ...

    async def query_entities(self, query: str) -> list[str]:
        """The entities a query names (normalised as the indexed ones)."""
        ...


class SpacyChunkGraph:
    """Graph indexing with a spaCy pipeline ``nlp`` (e.g. from :func:`~.spacy_model.load_spacy`). Parsing runs
    in a worker thread (about 100 short turns a second on one busy core)."""

    name = "spacy"

    def __init__(self, nlp: Any) -> None:
        self._nlp = nlp
        self._lock = threading.Lock()  # a spaCy pipeline is not meant for concurrent calls

    async def annotate(self, turns: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.annotate_sync, turns)

    async def query_entities(self, query: str) -> list[str]:
        return await asyncio.to_thread(self.query_entities_sync, query)

    def annotate_sync(self, turns: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        with self._lock:
            docs = list(self._nlp.pipe([text for _, text in turns], batch_size=64))
        return [_annotate(doc, speaker) for (speaker, _), doc in zip(turns, docs, strict=True)]

    def query_entities_sync(self, query: str) -> list[str]:
        with self._lock:
            doc = self._nlp(query)
        return list(_entities(doc))


def _norm(text: str) -> str:
    text = " ".join(text.lower().replace("’", "'").split()).strip(" .,!?'\"-")
    return text[:-2] if text.endswith("'s") else text


def _first_name(speaker: str) -> str:
    parts = speaker.split()
    return _norm(parts[0]) if parts else ""


def _phrase(tok: Any) -> str | None:
    """The noun phrase a noun or name heads, lemmatised: compounds and adjectives before it, then its lemma."""
    if tok.pos_ == "PROPN":
        words = [t for t in tok.subtree if t.dep_ == "compound" and t.i < tok.i and t.pos_ == "PROPN"] + [tok]
        return _norm(" ".join(t.text for t in words)) or None
    if tok.pos_ != "NOUN":
        return None
    # Compound nouns only ("pottery class"); adjectives vary with how it is said ("great counselor").
    mods = [t for t in tok.children if t.dep_ == "compound" and t.i < tok.i and t.lower_ not in STOP_WORDS]
    lemma = tok.lemma_.lower()
    if not mods and (lemma in _GENERIC or lemma in STOP_WORDS or len(lemma) < 3):
        return None
    return _norm(" ".join([*(t.lemma_.lower() if t.pos_ == "NOUN" else t.lower_ for t in mods), lemma]))


def _entities(doc: Any) -> dict[str, None]:
    found: dict[str, None] = {}
    for ent in doc.ents:
        if ent.label_ in _SKIP_LABELS:
            continue
        words = [t for t in ent if t.dep_ not in ("det", "poss") and t.tag_ != "POS"]
        name = _norm(" ".join(t.text for t in words))
        if len(name) > 1 and name not in STOP_WORDS:
            found.setdefault(name, None)
    for tok in doc:
        if tok.pos_ in ("NOUN", "PROPN") and tok.dep_ not in _MODIFIERS:
            phrase = _phrase(tok)
            if phrase and phrase not in STOP_WORDS:
                found.setdefault(phrase, None)
                # "lgbtq support group" also links as "support group".
                parts = phrase.split()
                if len(parts) > 2:
                    found.setdefault(" ".join(parts[-2:]), None)
    return found


def _named(tok: Any) -> Any:
    """"my sister Maria": the name (the apposition) stands for the phrase."""
    for child in tok.children:
        if child.dep_ == "appos" and child.pos_ == "PROPN":
            return child
    return tok


def _annotate(doc: Any, speaker: str) -> dict[str, Any]:
    entities = _entities(doc)
    me = _first_name(speaker)
    relations: dict[tuple[str, str, str], None] = {}

    def node(tok: Any) -> str | None:
        if tok.lower_ in _FIRST_PERSON:
            return me or None
        for ent in doc.ents:
            if ent.start <= tok.i < ent.end and ent.label_ not in _SKIP_LABELS:
                name = _norm(" ".join(t.text for t in ent if t.dep_ not in ("det", "poss") and t.tag_ != "POS"))
                return name if name in entities else None
        phrase = _phrase(tok)
        return phrase if phrase in entities else None

    for tok in doc:
        if tok.dep_ == "appos" and tok.head.pos_ == "NOUN":  # "my friend Jon": (speaker, has friend, jon)
            owners = [node(c) for c in tok.head.children if c.dep_ == "poss"]
            name = node(tok)
            for owner in owners:
                if owner and name and owner != name:
                    relations[(owner, f"have {tok.head.lemma_.lower()}", name)] = None
        if tok.pos_ not in ("VERB", "AUX"):
            continue
        subjects = [_named(c) for c in tok.children if c.dep_ in _SUBJECTS]
        if not subjects and tok.dep_ in ("conj", "xcomp"):
            subjects = [_named(c) for c in tok.head.children if c.dep_ in _SUBJECTS]
        sources = [s for s in (node(c) for c in subjects) if s]
        if not sources:
            continue
        verb = " ".join([tok.lemma_.lower(), *(c.lower_ for c in tok.children if c.dep_ == "prt")])
        targets: list[tuple[str, str]] = []
        for child in tok.children:
            if child.dep_ in _OBJECTS:
                targets.append((verb, _named(child)))
            elif child.dep_ in ("prep", "dative"):
                targets += [(f"{verb} {child.lower_}", _named(p)) for p in child.children if p.dep_ == "pobj"]
            elif child.dep_ == "acomp":  # "I'm keen on counseling": keen on -> counseling
                targets += [(f"{verb} {child.lower_} {p.lower_}", o) for p in child.children if p.dep_ == "prep"
                            for o in p.children if o.dep_ == "pobj"]  # fmt: skip
            elif child.dep_ == "xcomp":  # "I love to paint landscapes": love paint -> landscape
                xverb = f"{verb} {child.lemma_.lower()}"
                targets += [(xverb, o) for o in child.children if o.dep_ in _OBJECTS]
        for label, target in targets:
            t = node(target)
            for s in sources:
                if t and t != s:
                    relations[(s, label, t)] = None
    if me and any(s == me for s, _, _ in relations):
        entities = {me: None, **entities}
    ents = list(entities)[:MAX_ENTITIES]
    kept = set(ents)
    rels = [[s, r, t] for s, r, t in relations if s in kept and t in kept][:MAX_RELATIONS]
    return {"entities": ents, "relations": rels}


_default: list[SpacyChunkGraph | None] = []
_default_lock = threading.Lock()


def default_chunk_graph() -> SpacyChunkGraph | None:
    """The spaCy chunk graph when the ``graph`` extra is installed (loaded once per process), else None.
    Blocking on first call (verifies and loads the model, about two seconds): call it at start-up or in a
    worker thread. Raises ``ModelIntegrityError`` when the model's files were altered."""
    with _default_lock:
        if not _default:
            nlp = load_spacy()
            _default.append(SpacyChunkGraph(nlp) if nlp is not None else None)
        return _default[0]
