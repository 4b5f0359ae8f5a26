"""How the rules brain conducts a scripted interview kept by tools (a questionnaire, a visit), as a model would.

The tools are recognised from their schemas and names, as a model reads them:

- a *record* tool: a function whose name or description says record/answer/save/log/store, with a string
  parameter limited to an ``enum`` (the question ids) and a required free-text string (the answer); a boolean
  whose name or description speaks of declining (optional) marks a question the user does not want to answer;
- an *end* tool (optional): a function named end/finish/close/stop/complete/conclude with a string ``enum``
  parameter (the reason) and no required free text; an optional free-text string is a note.

The brain keeps no state: where the interview is comes from the conversation. The question being asked is the
one the latest record or end result names next (the first question id it mentions, set off by brackets or
parentheses as ids are written, other than the one just recorded), else the one the result refused (asked
again), else, before anything was recorded, the question the instructions list first. A record result that
names no next question means every question is settled: the brain asks whether there is anything else, and on
the user's reply calls the end tool with its "completed" reason (the reply as the note, unless it is a no).
A user who wants to stop gets the end tool's declining reason; one who does not want to answer a question gets
it recorded as declined. An end result that names questions was refused: the first of them is asked. Any other
end result ended the interview: the brain says goodbye (with the closing words the result gives after
"close with:", if any). A question's words and its accepted answers are read from
the text after its id, in the latest result or else the instructions.

Entry points: :func:`interview_tools` (None when the tools are not an interview) and :func:`interview_reply`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

from .base import BrainOutput, BrainRequest, CallTool, ContextItem, Say

__all__ = ["ANYTHING_ELSE", "InterviewTools", "interview_reply", "interview_tools"]

ANYTHING_ELSE: Final = "Thank you. Is there anything else you would like to mention?"
GOODBYE: Final = "Thank you for your time. Goodbye."

_RECORD_WORDS = re.compile(r"record|answer|save|log|store", re.IGNORECASE)
_END_WORDS = frozenset({"end", "finish", "close", "stop", "complete", "conclude"})
_DECLINE_PARAM = re.compile(r"declin|refus|skip", re.IGNORECASE)
_COMPLETED = re.compile(r"complet|done|finish|success", re.IGNORECASE)
_DECLINED = re.compile(r"declin|refus|stop|abort|cancel", re.IGNORECASE)
_WANTS_TO_STOP = re.compile(
    r"\b((stop|end|finish)\s+(the|this)\s+(visit|call|interview|conversation)|(do not|don't|dont)\s+want\s+to\s+"
    r"(continue|go on)|hang up)\b",
    re.IGNORECASE,
)
_DECLINES = re.compile(
    r"\b(rather not|prefer not|(do not|don't|dont)\s+want\s+to\s+(answer|say|talk about)|skip\s+(this|that|it)|"
    r"pass on (this|that))\b",
    re.IGNORECASE,
)
_NOTHING = re.compile(r"^\s*(no|nope|nothing|none|that's all|that is all)\b", re.IGNORECASE)
_CHOICES = re.compile(
    r"\b(?:accepted|allowed|valid|possible)\s+(?:answers|values|choices|options)\s*(?:are)?\s*[:(]\s*([^.\n)]+)",
    re.IGNORECASE,
)
_CLOSE_WITH = re.compile(r"\b(?:close|end|finish|sign off) with:\s*(.+?)\s*$", re.IGNORECASE | re.DOTALL)
_ANNOTATION = re.compile(r"^[\s\]\[(),:.-]*(?:(?:required|optional)\b[\s\]\[(),:.-]*)*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class InterviewTools:
    """The interview's tools and their parameters, as read from the schemas."""

    record: str
    id_param: str
    ids: tuple[str, ...]
    answer_param: str
    declined_param: str | None = None
    end: str | None = None
    reason_param: str = ""
    completed: str = ""
    declined: str | None = None
    note_param: str | None = None


def _props(tool: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    params = tool.get("parameters") or {}
    props = params.get("properties") or {}
    required = params.get("required") or []
    return ({str(k): v for k, v in props.items() if isinstance(v, dict)},
            [str(r) for r in required if isinstance(r, str)])


def _enum(schema: dict[str, Any]) -> tuple[str, ...]:
    values = schema.get("enum")
    if schema.get("type", "string") != "string" or not isinstance(values, list) or not values:
        return ()
    return tuple(v for v in values if isinstance(v, str))


def _free_text(schema: dict[str, Any]) -> bool:
    return schema.get("type", "string") == "string" and "enum" not in schema


def _as_record(tool: dict[str, Any]) -> InterviewTools | None:
    props, required = _props(tool)
    if not _RECORD_WORDS.search(f"{tool.get('name', '')} {tool.get('description', '')}"):
        return None
    id_param = next((n for n, s in props.items() if _enum(s)), None)
    answer = next((n for n in required if n in props and _free_text(props[n])), None)
    if id_param is None or answer is None:
        return None
    declined = next((n for n, s in props.items() if s.get("type") == "boolean"
                     and _DECLINE_PARAM.search(f"{n} {s.get('description', '')}")), None)
    return InterviewTools(record=str(tool["name"]), id_param=id_param, ids=_enum(props[id_param]),
                          answer_param=answer, declined_param=declined)


def _as_end(tool: dict[str, Any]) -> tuple[str, str, tuple[str, ...], str | None] | None:
    name = str(tool.get("name", ""))
    if not _END_WORDS & set(re.split(r"[^a-z]+", name.lower())):
        return None
    props, required = _props(tool)
    reason = next((n for n, s in props.items() if _enum(s)), None)
    if reason is None or any(n in props and _free_text(props[n]) for n in required):
        return None
    note = next((n for n, s in props.items() if _free_text(s)), None)
    return name, reason, _enum(props[reason]), note


def interview_tools(tools: list[dict[str, Any]]) -> InterviewTools | None:
    """The interview's tools among ``tools`` (function tools as a session lists them), or None."""
    record = next((r for t in tools if (r := _as_record(t)) is not None), None)
    if record is None:
        return None
    end = next((e for t in tools if (e := _as_end(t)) is not None), None)
    if end is None:
        return record
    name, reason, reasons, note = end
    completed = next((r for r in reasons if _COMPLETED.search(r)), reasons[0])
    declined = next((r for r in reasons if _DECLINED.search(r)), None)
    return InterviewTools(record=record.record, id_param=record.id_param, ids=record.ids,
                          answer_param=record.answer_param, declined_param=record.declined_param, end=name,
                          reason_param=reason, completed=completed, declined=declined, note_param=note)


def _mention(qid: str, text: str) -> re.Match[str] | None:
    """The first mention of ``qid`` in ``text`` as an id: set off by brackets or parentheses (``[id]``,
    ``(id)``, ``(id, optional)``, ``(id: ...``). Bare words are not mentions: ids are often English words
    ("medication") that a purpose or a quoted answer may use."""
    return re.search(rf"[\[(]\s*{re.escape(qid)}\s*[\]),:]", text)


def _mentioned(text: str, ids: tuple[str, ...]) -> list[str]:
    """The ids ``text`` mentions (see :func:`_mention`), in order of first mention."""
    found = sorted((hit.start(), qid) for qid in ids if (hit := _mention(qid, text)) is not None)
    return [qid for _, qid in found]


def _is_error(output: str) -> bool:
    try:
        value = json.loads(output)
    except (json.JSONDecodeError, TypeError):
        return False
    return isinstance(value, dict) and "error" in value


def _error_text(output: str) -> str:
    """The error message of an error output (so ids in it read as text), else the output."""
    try:
        value = json.loads(output)
    except (json.JSONDecodeError, TypeError):
        return output
    if isinstance(value, dict) and isinstance(value.get("error"), dict):
        return str(value["error"].get("message", ""))
    return output


@dataclass(frozen=True, slots=True)
class _Where:
    """``stage`` is ``start`` (nothing asked yet), ``asking`` (``qid``), ``wrap_up`` (every question settled)
    or ``ended``; ``source`` is the result that says so ("" when from the instructions); ``refused`` when that
    result was an error."""

    stage: str
    qid: str = ""
    source: str = ""
    refused: bool = False


def _argument(call: ContextItem, name: str) -> str | None:
    try:
        value = json.loads(call.arguments or "{}")
    except json.JSONDecodeError:
        return None
    got = value.get(name) if isinstance(value, dict) else None
    return got if isinstance(got, str) else None


def _first_question(kit: InterviewTools, instructions: str) -> str:
    listed = _mentioned(instructions, kit.ids)
    return listed[0] if listed else kit.ids[0]


def _where(request: BrainRequest, kit: InterviewTools) -> _Where:
    calls = {i.call_id: i for i in request.items if i.kind == "function_call"}
    for item in reversed(request.items):
        call = calls.get(item.call_id) if item.kind == "function_call_output" else None
        if call is None or call.name not in (kit.record, kit.end):
            continue
        text, refused = _error_text(item.output), _is_error(item.output)
        own = _argument(call, kit.id_param) if call.name == kit.record else None
        named = [q for q in _mentioned(text, kit.ids) if q != own]
        if named:
            return _Where("asking", named[0], text, refused)
        if call.name == kit.end:
            return _Where("ended", source=text)
        if refused and own in kit.ids:
            return _Where("asking", own, "", True)
        return _Where("wrap_up", source=text)
    said = any(i.kind == "message" and i.role == "assistant" and i.text.strip() for i in request.items)
    first = _first_question(kit, request.instructions)
    return _Where("asking", first) if said else _Where("start", first)


def _after(qid: str, text: str, ids: tuple[str, ...]) -> str:
    """The text about ``qid`` in ``text``: from its first mention to the next mention of another id."""
    hit = _mention(qid, text)
    if hit is None:
        return ""
    rest = text[hit.end():]
    others = [m.start() for q in ids if q != qid and (m := _mention(q, rest)) is not None]
    return rest[: min(others)] if others else rest


def _question_text(qid: str, sources: list[str], ids: tuple[str, ...]) -> str:
    """The question's words as the first source that mentions ``qid`` gives them."""
    for source in sources:
        about = _after(qid, source, ids)
        line = _ANNOTATION.sub("", about.split("\n", 1)[0]) if about else ""
        if not line.strip():
            continue
        asked = line.split("?", 1)[0] + "?" if "?" in line else re.split(r"(?<=\.)\s", line, maxsplit=1)[0]
        asked = asked.rsplit(":", 1)[-1].strip()
        if asked:
            return asked
    return f"Could you tell me about {qid.replace('_', ' ')}?"


def _choices(qid: str, sources: list[str], ids: tuple[str, ...]) -> list[str]:
    """The accepted answers listed for ``qid`` (empty when it takes any words)."""
    for source in sources:
        found = _CHOICES.search(_after(qid, source, ids))
        if found:
            return [c.strip(" '\"") for c in re.split(r",|\bor\b", found.group(1)) if c.strip(" '\"")]
    return []


def _answer(words: str, choices: list[str]) -> str:
    """The user's words, or the one accepted answer they name (as a model maps 'Yes, I do.' to 'yes')."""
    said = words.lower()
    named = [c for c in choices if re.search(rf"(?<![\w]){re.escape(c.lower())}(?![\w])", said)]
    return named[0] if len(named) == 1 else words


def _call(name: str, arguments: dict[str, Any]) -> list[BrainOutput]:
    return [CallTool(name, json.dumps(arguments))]


def interview_reply(request: BrainRequest, kit: InterviewTools) -> list[BrainOutput] | None:
    """The reply to ``request`` in the interview ``kit`` describes (see the module docstring), or None when it
    is not the interview's to answer (calls not allowed while one is needed)."""
    where = _where(request, kit)
    sources = [where.source, request.instructions] if where.source else [request.instructions]
    may_call = request.tool_choice != "none"
    if request.pending_tool_outputs:
        if where.stage == "ended":
            closing = _CLOSE_WITH.search(where.source)
            return [Say(f"{closing.group(1).strip()} Goodbye." if closing else GOODBYE)]
        if where.stage == "wrap_up":
            return [Say(ANYTHING_ELSE)]
        question = _question_text(where.qid, sources, kit.ids)
        return [Say(f"{'Sorry, let me ask that again.' if where.refused else 'Thank you.'} {question}")]
    text = request.last_user_text.strip()
    if where.stage == "ended":
        return [Say("The visit has ended. " + GOODBYE)]
    if where.stage == "start" or not text:
        return [Say(f"Hello, and thank you for taking the time. {_question_text(where.qid, sources, kit.ids)}")]
    if not may_call:
        return None
    if kit.end is not None and kit.declined is not None and _WANTS_TO_STOP.search(text):
        return _call(kit.end, {kit.reason_param: kit.declined})
    if where.stage == "wrap_up":
        if kit.end is None:
            return [Say(GOODBYE)]
        args = {kit.reason_param: kit.completed}
        if kit.note_param is not None and not _NOTHING.search(text):
            args[kit.note_param] = text
        return _call(kit.end, args)
    if kit.declined_param is not None and _DECLINES.search(text):
        return _call(kit.record, {kit.id_param: where.qid, kit.answer_param: "", kit.declined_param: True})
    answer = _answer(text, _choices(where.qid, sources, kit.ids))
    return _call(kit.record, {kit.id_param: where.qid, kit.answer_param: answer})
