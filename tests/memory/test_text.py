"""Query terms and entity extraction: the offline NLP behind BM25 queries and the graph."""

from __future__ import annotations

from aoai_realtime.memory.store import chunk_entities
from aoai_realtime.memory.text import entity_pairs, extract_entities, query_terms, words


def test_query_terms_drop_stop_words_and_question_scaffolding() -> None:
    assert query_terms("What did Caroline research?") == ["caroline", "research"]
    assert query_terms("When is Melanie's birthday?") == ["melanie", "birthday"]
    # Nothing but stop words: fall back to every word rather than searching nothing.
    assert query_terms("what is it?") == ["what", "is", "it"]
    assert query_terms("") == []


def test_words_keep_possessives_together() -> None:
    assert words("Mel's dog, Max!") == ["mel's", "dog", "max"]


def test_names_are_capitalised_runs_not_sentence_openers() -> None:
    text = "Thanks Mel! We visited the Grand Canyon with my dog Max. Great trip."
    names = extract_entities(text, extra_noun_phrases=False)
    assert names == ["mel", "grand canyon", "max"]


def test_noun_phrases_are_adjacent_content_words() -> None:
    ents = extract_entities("She joined an adoption agency support group", extra_noun_phrases=True)
    assert "adoption agency" in ents and "support group" in ents
    assert all(" she" not in e for e in ents)


def test_relations_link_names_only_and_stay_bounded() -> None:
    ents, pairs = chunk_entities("Alice met Bob and Carol in Lisbon; pottery class was fun.")
    assert {"alice", "bob", "carol", "lisbon", "pottery class"} <= set(ents)
    assert ("alice", "bob") in pairs and all("pottery class" not in p for p in pairs)
    many = [f"name{i}" for i in range(30)]
    assert len(entity_pairs(many)) == 12 * 11 // 2
