"""The Visit Agent's question script: what an operator writes (YAML or JSON) and how it is checked.

A script is a list of questions, each with an id, the text the agent asks, whether an answer is required, what
counts as an answer (``expects``, optionally a closed list of ``choices``) and an optional follow-up asked when the
answer matches a pattern::

    id: follow-up-visit
    title: Follow-up visit after discharge
    purpose: Check how the person is doing one week after leaving hospital.
    questions:
      - id: pain_level
        text: On a scale from 0 to 10, how much pain are you in today?
        expects: a number from 0 to 10
        follow_up:
          if_answer_matches: '\\b([5-9]|10)\\b'
          ask: Where is the pain, and is it getting better or worse?

:func:`load_script` reads a file; :func:`parse_script` reads text. Both raise :class:`ScriptError` whose message
names the file, the question id and the field, e.g.
``follow_up_visit.yaml: question 'pain_level': follow_up.if_answer_matches: not a valid regular expression
(unbalanced parenthesis at position 3)``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import yaml

from ..errors import ConfigError

__all__ = ["FollowUp", "Question", "ScriptError", "VisitScript", "load_script", "parse_script"]

_ID = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
MAX_QUESTIONS = 50
MAX_TEXT = 500


class ScriptError(ConfigError):
    """A question script that cannot be used. The message names the file, the question and the field."""


class FollowUp(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Asked right after its question when the answer matches ``if_answer_matches`` (a regular expression,
    case-insensitive, searched anywhere in the answer). Its answer is recorded under ``id`` (default
    ``<question id>_follow_up``) and is required when ``required`` is true and the follow-up was triggered."""

    if_answer_matches: str
    ask: str
    id: str = ""
    required: bool = True
    expects: str = ""


class Question(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One scripted question. ``expects`` says what counts as an answer (shown to the model); ``choices``, when
    given, is the closed list of accepted answers (matched case-insensitively)."""

    id: str
    text: str
    required: bool = True
    expects: str = ""
    choices: tuple[str, ...] = ()
    follow_up: FollowUp | None = None

    @property
    def follow_up_id(self) -> str:
        """The id the follow-up's answer is recorded under ("" without a follow-up)."""
        if self.follow_up is None:
            return ""
        return self.follow_up.id or f"{self.id}_follow_up"

    def accepts(self, answer: str) -> str | None:
        """The answer as recorded (the canonical choice when ``choices`` is set, matched ignoring case and the
        punctuation around it: "Yes." is "yes"), or None if it is not one of the choices."""
        if not self.choices:
            return answer
        folded = answer.strip().strip(".,;:!?'\"").strip().casefold()
        for choice in self.choices:
            if choice.casefold() == folded:
                return choice
        return None

    def triggers_follow_up(self, answer: str) -> bool:
        """Whether ``answer`` calls for the follow-up."""
        return self.follow_up is not None and re.search(self.follow_up.if_answer_matches, answer, re.I) is not None


class _Document(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: str
    title: str
    questions: list[Any]
    purpose: str = ""
    greeting: str = ""
    closing: str = ""


class VisitScript(msgspec.Struct, frozen=True):
    """A checked script. ``source`` is where it was read from (for messages)."""

    id: str
    title: str
    questions: tuple[Question, ...]
    purpose: str = ""
    greeting: str = ""
    closing: str = ""
    source: str = "<script>"

    def question(self, question_id: str) -> Question | None:
        """The question with this id, or None."""
        for q in self.questions:
            if q.id == question_id:
                return q
        return None

    def parent_of(self, follow_up_id: str) -> Question | None:
        """The question whose follow-up is recorded under ``follow_up_id``, or None."""
        for q in self.questions:
            if q.follow_up is not None and q.follow_up_id == follow_up_id:
                return q
        return None


def load_script(path: Path | str) -> VisitScript:
    """Read and check the script at ``path`` (``.yaml``/``.yml`` or ``.json``). Raises :class:`ScriptError`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScriptError(f"{p}: no such question script; check the path", field="path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScriptError(f"{p}: cannot read the question script ({exc})", field="path") from None
    return parse_script(text, source=str(p), json_format=p.suffix.lower() == ".json")


def parse_script(text: str, *, source: str = "<script>", json_format: bool = False) -> VisitScript:
    """Check a script given as YAML (or JSON with ``json_format``) text; ``source`` names it in messages."""
    name = Path(source).name if source != "<script>" else source
    data = _decode(text, name, json_format)
    if not isinstance(data, Mapping):
        raise ScriptError(f"{name}: a question script is a mapping with id, title and questions; got "
                          f"{type(data).__name__}")
    try:
        doc = msgspec.convert(dict(data), _Document)
    except msgspec.ValidationError as exc:
        raise ScriptError(f"{name}: {_describe(exc)}", field=_path(exc)) from None
    _check_id(doc.id, name, "id")
    _check_text(doc.title, f"{name}: title")
    if not doc.questions:
        raise ScriptError(f"{name}: questions: the script has no questions; add at least one", field="questions")
    if len(doc.questions) > MAX_QUESTIONS:
        raise ScriptError(f"{name}: questions: {len(doc.questions)} questions, at most {MAX_QUESTIONS}",
                          field="questions")
    questions = tuple(_question(raw, i, name) for i, raw in enumerate(doc.questions, start=1))
    seen: dict[str, str] = {}
    for q in questions:
        for qid, what in ((q.id, "id"), (q.follow_up_id, "follow_up.id")):
            if not qid:
                continue
            if qid in seen:
                raise ScriptError(f"{name}: question {q.id!r}: {what}: {qid!r} is already used by question "
                                  f"{seen[qid]!r}; ids must be unique", field=what)
            seen[qid] = q.id
    return VisitScript(id=doc.id, title=doc.title, questions=questions, purpose=doc.purpose.strip(),
                       greeting=doc.greeting.strip(), closing=doc.closing.strip(), source=source)


def _decode(text: str, name: str, json_format: bool) -> Any:
    if json_format:
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ScriptError(f"{name}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ScriptError(f"{name}: not valid YAML{where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ScriptError(f"{name}: not valid YAML: {exc}") from None


def _question(raw: Any, index: int, name: str) -> Question:
    label = f"question #{index}"
    if isinstance(raw, Mapping) and isinstance(raw.get("id"), str) and raw["id"]:
        label = f"question {raw['id']!r}"
    if not isinstance(raw, Mapping):
        raise ScriptError(f"{name}: {label}: a question is a mapping with id and text; got {type(raw).__name__}",
                          field="questions")
    try:
        q = msgspec.convert(dict(raw), Question)
    except msgspec.ValidationError as exc:
        raise ScriptError(f"{name}: {label}: {_describe(exc)}", field=_path(exc)) from None
    where = f"{name}: {label}"
    _check_id(q.id, where, "id")
    _check_text(q.text, f"{where}: text")
    if any(not c.strip() for c in q.choices):
        raise ScriptError(f"{where}: choices: a choice is empty", field="choices")
    if q.follow_up is not None:
        if q.follow_up.id:
            _check_id(q.follow_up.id, where, "follow_up.id")
        _check_text(q.follow_up.ask, f"{where}: follow_up.ask")
        try:
            re.compile(q.follow_up.if_answer_matches, re.I)
        except re.error as exc:
            raise ScriptError(f"{where}: follow_up.if_answer_matches: not a valid regular expression ({exc})",
                              field="follow_up.if_answer_matches") from None
        if not q.follow_up.if_answer_matches.strip():
            raise ScriptError(f"{where}: follow_up.if_answer_matches: empty pattern (it would match every answer)",
                              field="follow_up.if_answer_matches")
    return q


def _check_id(value: str, where: str, field: str) -> None:
    if not _ID.match(value):
        raise ScriptError(f"{where}: {field}: {value!r} is not a valid id; use lowercase letters, digits and '_', "
                          "starting with a letter (e.g. pain_level)", field=field)


def _check_text(value: str, where: str) -> None:
    if not value.strip():
        raise ScriptError(f"{where}: is empty; write what the agent should say")
    if len(value) > MAX_TEXT:
        raise ScriptError(f"{where}: {len(value)} characters, at most {MAX_TEXT}; keep it to what is said aloud")


def _field_and_problem(exc: msgspec.ValidationError) -> tuple[str, str]:
    """msgspec's message split into the dotted field and the problem, e.g. ``("follow_up.ask", "expected `str`,
    got `int`")``."""
    text = str(exc)
    m = re.match(r"(.*?)(?: - at `\$\.?([^`]*)`)?$", text)
    problem, at = (m.group(1), m.group(2) or "") if m else (text, "")
    prefix = f"{at}." if at else ""
    if mm := re.match(r"Object missing required field `([^`]*)`", problem):
        return f"{prefix}{mm.group(1)}", "missing (it is required)"
    if mm := re.match(r"Object contains unknown field `([^`]*)`", problem):
        return f"{prefix}{mm.group(1)}", "unknown field (check its spelling)"
    return at, problem[:1].lower() + problem[1:]


def _describe(exc: msgspec.ValidationError) -> str:
    field, problem = _field_and_problem(exc)
    if problem.startswith("expected `str`, got `bool`"):
        problem += " (YAML reads a bare yes/no/on/off as true/false: put it in quotes)"
    return f"{field}: {problem}" if field else problem


def _path(exc: msgspec.ValidationError) -> str:
    return _field_and_problem(exc)[0]
