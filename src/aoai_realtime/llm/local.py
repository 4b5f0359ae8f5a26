"""An offline provider that needs no model: an extractive summary (the highest-scoring sentences by word
frequency, kept in call order) and rule-based action items (commitments and requests such as "I'll ...",
"can you ...", "we need to ...").

It is deterministic, fast, and its action items always validate. It is the default so that the pipeline,
the demo and the tests run without a cloud; its quality is that of a heuristic, not of a model.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Final

from .types import MAX_DESCRIPTION_CHARS, MAX_ITEMS, ActionItem, ActionItems, Priority, Turn

__all__ = ["LocalLLM"]

_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]+")
_STOPWORDS_TEXT: Final = """
a about above after again against all am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have
having he her here hers herself him himself his how i i'm i'll i've if in into is it it's its itself
just let's me more most my myself no nor not now of off on once only or other our ours ourselves out
over own same she should so some such than that that's the their theirs them themselves then there
these they this those through to too under until up very was we we'll we're were what when where
which while who whom why will with would you you'll you're your yours yourself yourselves yes yeah
okay ok oh um uh hi hello thanks thank sure right well also get got go going really
"""
_STOPWORDS: Final = frozenset(_STOPWORDS_TEXT.split())

# (pattern, who owns the item: "speaker", "listener" or "group"). The captured group is the task.
_COMMITMENTS: Final = (
    (re.compile(r"\b(?:i'll|i will|i am going to|i'm going to|i need to|i have to|i should|let me)\s+(.+)", re.I),
     "speaker"),
    (re.compile(r"\b(?:remind me to|don't let me forget to)\s+(.+)", re.I), "speaker"),
    (re.compile(r"\b(?:could you|can you|would you|will you|please)\s+(.+)", re.I), "listener"),
    (re.compile(r"\b(?:you should|you need to|make sure (?:you|to)|don't forget to)\s+(.+)", re.I), "listener"),
    (re.compile(r"\b(?:we'll|we will|we need to|we should|we have to|let's)\s+(.+)", re.I), "group"),
    (re.compile(r"\b(?:action item|todo|to-do|follow up)\s*[:\-]?\s*(.+)", re.I), "group"),
    (re.compile(r"\b([A-Z][a-z]+) (?:will|is going to|needs to)\s+(.+)"), "named"),
)
_DUE: Final = re.compile(
    r"\b(?:by|before|on|until)\s+((?:next\s+)?(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
    r"week|month|tomorrow|tonight|noon|end of (?:the )?(?:day|week|month)|eod|eow|\d{4}-\d{2}-\d{2}|"
    r"\d{1,2}(?::\d{2})?\s*(?:am|pm)))\b|\b(today|tomorrow|tonight|next week|next month|this week|asap)\b",
    re.I,
)
_HIGH: Final = re.compile(r"\b(?:urgent|urgently|asap|immediately|right away|critical|as soon as possible)\b", re.I)
_LOW: Final = re.compile(r"\b(?:eventually|when you can|at some point|no rush|someday|if you have time)\b", re.I)
_QUESTION_ONLY: Final = re.compile(r"^(?:tell me|explain|help me understand)\b", re.I)


def _sentences(transcript: Sequence[Turn]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for turn in transcript:
        for m in _SENTENCE.finditer(turn.text):
            s = m.group(0).strip()
            if len(_WORD.findall(s)) >= 2:
                out.append((turn.role, s))
    return out


class LocalLLM:
    """Offline :class:`~aoai_realtime.llm.LLMProvider`. ``max_sentences`` bounds the summary's length."""

    def __init__(self, *, max_sentences: int = 5) -> None:
        if max_sentences < 1:
            raise ValueError("max_sentences must be at least 1")
        self._max_sentences = max_sentences

    async def summarize(self, transcript: Sequence[Turn]) -> str:
        return self.summarize_sync(transcript)

    async def extract_action_items(self, transcript: Sequence[Turn]) -> ActionItems:
        return self.extract_action_items_sync(transcript)

    def summarize_sync(self, transcript: Sequence[Turn]) -> str:
        """The markdown summary: key sentences, then who spoke and how much."""
        sentences = _sentences(transcript)
        freq = Counter(w for _, s in sentences for w in (x.lower() for x in _WORD.findall(s)) if w not in _STOPWORDS)

        def score(s: str) -> float:
            words = [w.lower() for w in _WORD.findall(s)]
            content = [w for w in words if w not in _STOPWORDS]
            # Mean frequency of content words, so long rambling sentences don't win by length alone.
            return sum(freq[w] for w in content) / (len(words) ** 0.5) if words else 0.0

        ranked = sorted(range(len(sentences)), key=lambda i: (-score(sentences[i][1]), i))
        chosen = sorted(ranked[: self._max_sentences])
        lines = ["## Summary", ""]
        if chosen:
            lines += [f"- **{sentences[i][0]}**: {sentences[i][1]}" for i in chosen]
        else:
            lines.append("_The call had no content to summarize._")
        topics = [w for w, _ in freq.most_common(5)]
        if topics:
            lines += ["", "## Topics", "", ", ".join(topics)]
        turns = Counter(t.role for t in transcript)
        lines += ["", "## Participants", ""]
        lines += [f"- {role}: {n} turn{'s' if n != 1 else ''}" for role, n in sorted(turns.items())] or ["- none"]
        return "\n".join(lines) + "\n"

    def extract_action_items_sync(self, transcript: Sequence[Turn]) -> ActionItems:
        """Commitments and requests found by rule. The result always validates against the schema."""
        roles = [t.role for t in transcript]
        items: list[ActionItem] = []
        seen: set[str] = set()
        for index, turn in enumerate(transcript):
            for m in _SENTENCE.finditer(turn.text):
                sentence = m.group(0).strip()
                item = self._match(sentence, turn.role, _other_role(roles, index))
                if item is None or item.description.lower() in seen:
                    continue
                seen.add(item.description.lower())
                items.append(item)
                if len(items) == MAX_ITEMS:
                    return ActionItems(action_items=items)
        return ActionItems(action_items=items)

    @staticmethod
    def _match(sentence: str, speaker: str, listener: str | None) -> ActionItem | None:
        if sentence.endswith("?") and _QUESTION_ONLY.search(sentence):
            return None
        for pattern, who in _COMMITMENTS:
            m = pattern.search(sentence)
            if m is None:
                continue
            if who == "named":
                owner: str | None = m.group(1)
                task = m.group(2)
            else:
                owner = {"speaker": speaker, "listener": listener, "group": None}[who]
                task = m.group(1)
            description = task.strip().rstrip(".!?").strip()
            if len(_WORD.findall(description)) < 2:
                continue
            due_m = _DUE.search(sentence)
            due = (due_m.group(1) or due_m.group(2)) if due_m else None
            priority: Priority = "high" if _HIGH.search(sentence) else "low" if _LOW.search(sentence) else "medium"
            description = description[0].upper() + description[1:]
            return ActionItem(
                description=description[:MAX_DESCRIPTION_CHARS], owner=owner, due=due, priority=priority
            )
        return None


def _other_role(roles: list[str], index: int) -> str | None:
    """The party spoken to: the nearest different role before, else after, this turn."""
    me = roles[index]
    for r in reversed(roles[:index]):
        if r != me:
            return r
    for r in roles[index + 1 :]:
        if r != me:
            return r
    return None
