"""Light, offline text processing shared by both back ends: word tokens, stop words, query terms, and the
entity extraction that feeds the graph (capitalised names and short noun phrases, no model)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable

__all__ = ["STOP_WORDS", "extract_entities", "query_terms", "words"]

STOP_WORDS = frozenset(
    """
    a about above after again against all also am an and any are aren't as at be because been before being
    below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during
    each either few for from further get gets got had hadn't has hasn't have haven't having he he'd he'll he's her
    here here's hers herself him himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself
    just let's like me more most much mustn't my myself no nor not now of off on once only or other ought our ours
    ourselves out over own really same shan't she she'd she'll she's should shouldn't so some such than that
    that's the their theirs them themselves then there there's these they they'd they'll they're they've this
    those through to too under until up upon us very was wasn't we we'd we'll we're we've were weren't what
    what's when when's where where's which while who who's whom why why's will with won't would wouldn't yeah
    yes you you'd you'll you're you've your yours yourself yourselves hey hi oh ok okay wow thanks thank gonna
    wanna kind sort lot lots thing things one ones way something anything everything us 's
    """.split()
)
# Question scaffolding: words that say what kind of answer is wanted, not what it is about.
_QUESTION_WORDS = frozenset(
    "what when where who whom whose which why how many much long ago kind type did does do is are was were "
    "has have had ever would could should might may likely".split()
)

_WORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?")
# A capitalised word, possibly joined to further capitalised words ("Grand Canyon", "New York City").
_NAME = re.compile(r"\b([A-Z][a-zA-Z0-9'\-]*(?:\s+(?:of\s+|the\s+)?[A-Z][a-zA-Z0-9'\-]*)*)")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\"\n]\s*)$")


def words(text: str) -> list[str]:
    """Lower-cased word tokens (``"Mel's"`` -> ``"mel's"``)."""
    return [w.lower() for w in _WORD.findall(text)]


def query_terms(query: str) -> list[str]:
    """The content words of a query: lower-cased, de-duplicated, without stop words and question scaffolding.

    Falls back to every word when the query holds nothing else (so "what now?" still searches something).
    """
    all_words = words(query)
    seen: dict[str, None] = {}
    for w in all_words:
        base = w[:-2] if w.endswith("'s") else w
        if base and base not in STOP_WORDS and base not in _QUESTION_WORDS:
            seen.setdefault(base, None)
    if not seen:
        seen = dict.fromkeys(w for w in all_words if w)
    return list(seen)


def _norm_entity(name: str) -> str:
    name = name.strip(" '-").lower()
    if name.endswith("'s"):
        name = name[:-2]
    return re.sub(r"\s+", " ", name)


def extract_entities(text: str, *, extra_noun_phrases: bool = True) -> list[str]:
    """Entities mentioned in ``text``, normalised (lower case, no possessive), in order of first mention.

    Names are capitalised word runs; a capitalised word that starts a sentence counts only when it is not a
    stop word (so "The" and "What" are not names). With ``extra_noun_phrases``, adjacent pairs of content words
    ("adoption agencies", "pottery class") are added too: they stand in for noun phrases.
    """
    found: dict[str, None] = {}
    for m in _NAME.finditer(text):
        raw = m.group(1)
        first = raw.split()[0].lower().rstrip("'s")
        at_start = bool(_SENTENCE_START.search(text[: m.start()]))
        if first in STOP_WORDS or first in _QUESTION_WORDS:
            rest = raw.split(maxsplit=1)
            if len(rest) < 2:
                continue
            raw = rest[1]
        elif at_start and len(raw.split()) == 1 and first in _COMMON_CAPS:
            continue
        norm = _norm_entity(raw)
        if len(norm) > 1 and norm not in STOP_WORDS:
            found.setdefault(norm, None)
    if extra_noun_phrases:
        content = [w for w in words(text) if w not in STOP_WORDS and w not in _QUESTION_WORDS and len(w) > 2]
        for a, b in itertools.pairwise(content):
            found.setdefault(f"{a} {b}", None)
    return list(found)


# Capitalised at the start of a sentence but almost never a name in conversation.
_COMMON_CAPS = frozenset(
    "thanks thank great sure sounds awesome wow yeah yes no nope hey hi hello good nice cool amazing totally "
    "love glad sorry absolutely definitely anyway well right okay ok haha lol congrats congratulations "
    "hope agreed true exactly look check see".split()
)


def entity_pairs(entities: Iterable[str]) -> list[tuple[str, str]]:
    """Co-occurrence relations: every unordered pair of entities mentioned together (bounded to 12 entities)."""
    ents = list(dict.fromkeys(entities))[:12]
    return [(a, b) for i, a in enumerate(ents) for b in ents[i + 1 :]]
