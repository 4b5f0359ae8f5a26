"""The rules that keep a visit on its script, as pure functions of the script and the answers so far (no I/O):
what is still to ask, what to tell the model next, and how a visit's answers read for a reviewer and for memory.

An answer is anything with ``answer`` and ``status`` (``"answered"`` or ``"declined"``), keyed by question id
(a follow-up's answer under its follow-up id).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .visit_script import Question, VisitScript

__all__ = ["AnswerLike", "Pending", "answer_rows", "answer_text", "next_step", "pending", "record_text"]


class AnswerLike(Protocol):
    @property
    def answer(self) -> str: ...

    @property
    def status(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Pending:
    """A question still to ask: ``id`` is the question's or its follow-up's id."""

    id: str
    text: str
    question: Question
    required: bool

    @property
    def is_follow_up(self) -> bool:
        return self.id != self.question.id


def _follow_up_due(q: Question, got: AnswerLike | None) -> bool:
    return q.follow_up is not None and got is not None and got.status == "answered" and q.triggers_follow_up(got.answer)


def pending(script: VisitScript, answers: Mapping[str, AnswerLike]) -> list[Pending]:
    """Every question still to ask, in script order, each triggered follow-up right after its question. A
    declined question counts as settled (and triggers no follow-up)."""
    out: list[Pending] = []
    for q in script.questions:
        got = answers.get(q.id)
        if got is None:
            out.append(Pending(q.id, q.text, q, q.required))
        elif _follow_up_due(q, got) and q.follow_up is not None and q.follow_up_id not in answers:
            out.append(Pending(q.follow_up_id, q.follow_up.ask, q, q.follow_up.required))
    return out


def next_step(script: VisitScript, answers: Mapping[str, AnswerLike]) -> str:
    """What the model should do next, as one or two sentences for a tool result."""
    remaining = pending(script, answers)
    if not remaining:
        return ("Every question is answered. Ask whether there is anything else they want to mention, then call "
                "end_visit with reason 'completed'.")
    first = remaining[0]
    q = first.question
    kind = "Follow-up to ask now" if first.is_follow_up else "Next question"
    expects = q.follow_up.expects if first.is_follow_up and q.follow_up else q.expects
    line = f"{kind} ({first.id}{'' if first.required else ', optional'}): {first.text}"
    if expects:
        line += f" Counts as an answer: {expects}."
    if not first.is_follow_up and q.choices:
        line += f" Accepted answers: {', '.join(q.choices)}."
    if not any(p.required for p in remaining):
        line += " All required answers are in; this one is optional."
    return line


def answer_text(a: AnswerLike) -> str:
    """The answer as shown to people: the words, or ``(declined)``."""
    return "(declined)" if a.status == "declined" else a.answer


def record_text(script: VisitScript, answers: Mapping[str, AnswerLike], status: str) -> str:
    """The visit's answers as text, question by question (what the index step writes into memory)."""
    lines = [f"Visit status: {status}."]
    for q in script.questions:
        for qid, label in ((q.id, q.text), (q.follow_up_id, q.follow_up.ask if q.follow_up else "")):
            if qid and qid in answers:
                lines.append(f"{label} -> {answer_text(answers[qid])}")
    return "\n".join(lines)


def answer_rows(script: VisitScript, answers: Mapping[str, AnswerLike]) -> list[dict[str, Any]]:
    """Every question (and every follow-up that was due or answered) with its answer and status
    (``answered``, ``declined`` or ``missing``), for a reviewer."""
    rows: list[dict[str, Any]] = []
    for q in script.questions:
        got = answers.get(q.id)
        rows.append({"question_id": q.id, "question": q.text, "answer": got.answer if got else None,
                     "status": got.status if got else "missing", "required": q.required})
        if q.follow_up is not None and (q.follow_up_id in answers or _follow_up_due(q, got)):
            fu = answers.get(q.follow_up_id)
            rows.append({"question_id": q.follow_up_id, "question": q.follow_up.ask,
                         "answer": fu.answer if fu else None, "status": fu.status if fu else "missing",
                         "required": q.follow_up.required})
    return rows
