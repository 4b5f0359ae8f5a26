"""The rules brain: the engine's offline default. No model; a few rules over the session's tools.

What it does for a response, in order:

0. The tools are a scripted interview (a record tool with an enum of question ids, an end tool: see
   :mod:`.interview`): conduct it as a model would: ask the questions, record each answer, ask what the result
   names next, and end the interview when the result says everything is settled.
1. Tool outputs arrived since the user last spoke: for save tools' results, confirm ("Got it, I will remember
   that.", or say saving failed); for others, speak from them ("Here is what I found: ..."; of a JSON
   object its answer/result/text field, of a text list its first item without its trailing ``(tag)``).
2. The user asked a question and a tool's description says it is mandatory for questions (``must``,
   ``always``, ``mandatory``, ``required``): call it with the user's words as its query (the first string
   parameter of the tool's schema, ``query`` if present).
3. The user stated something to remember ("remember ...", "note that ...", "my ... is ...") and a tool looks
   like a save tool (name or description mentions save/remember/store/note): call it with the statement.
4. Otherwise answer plainly: a short reply that echoes the user's words, shaped by the instructions' language
   when they ask for brevity.

``tool_choice`` is honoured: ``"none"`` never calls, ``"required"`` or ``{"type":"function","name":...}``
always calls (the named tool, else the first).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

from .base import BrainOutput, BrainRequest, CallTool, ContextItem, Say
from .interview import interview_reply, interview_tools
from .scripted import split_words

__all__ = ["RulesBrain"]

_MANDATORY = re.compile(r"\b(must|always|mandatory|required|every question)\b", re.IGNORECASE)
_SAVE_TOOL = re.compile(r"save|remember|store|note|record", re.IGNORECASE)
_LOOKUP_TOOL = re.compile(r"search|retriev|query|lookup|find|get_", re.IGNORECASE)
_QUESTION_WORDS = (
    "what",
    "who",
    "where",
    "when",
    "why",
    "how",
    "which",
    "do",
    "does",
    "did",
    "is",
    "are",
    "can",
    "could",
    "should",
    "will",
    "would",
    "tell",
)
_STATEMENT = re.compile(
    r"^\s*(please\s+)?(remember|note|don't forget|keep in mind)\b|\bmy\s+\w+(\s+\w+)?\s+is\b", re.IGNORECASE
)


def is_question(text: str) -> bool:
    """True for a question: a question mark, or a leading question word."""
    stripped = text.strip().lower()
    if not stripped:
        return False
    if stripped.endswith("?"):
        return True
    first = re.split(r"\W+", stripped, maxsplit=1)[0]
    return first in _QUESTION_WORDS


def _string_param(tool: dict[str, Any]) -> str:
    props = (tool.get("parameters") or {}).get("properties") or {}
    if "query" in props:
        return "query"
    for name, schema in props.items():
        if isinstance(schema, dict) and schema.get("type", "string") == "string":
            return str(name)
    return "query"


def _first_note(text: str) -> str:
    """Text output as a sentence: a list's first item without its trailing ``(tag, date)``, else the text."""
    for line in text.splitlines():
        bullet = re.match(r"\s*[-*\u2022]\s+(.+)", line)
        if bullet:
            return re.sub(r"\s*\([^()]*\)\s*$", "", bullet.group(1)).strip()
    return text.strip()


def _speakable(output: str) -> str:
    """Tool output (often JSON) as a sentence."""
    try:
        value = json.loads(output)
    except (json.JSONDecodeError, TypeError):
        return _first_note(output)
    if isinstance(value, dict):
        for key in ("answer", "result", "text", "summary", "content"):
            if isinstance(value.get(key), str):
                return str(value[key])
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(_speakable(json.dumps(v)) if not isinstance(v, str) else v for v in value[:3])
    return str(value)


def _is_save_tool(name: str, description: str) -> bool:
    return not _LOOKUP_TOOL.search(name) and bool(_SAVE_TOOL.search(f"{name} {description}"))


def _all_saves(request: BrainRequest, outputs: tuple[ContextItem, ...]) -> bool:
    """Whether every output answers a call of a save tool (what the reply confirms instead of reading out)."""
    described = {str(t.get("name", "")): str(t.get("description", "")) for t in request.tools}
    calls = {i.call_id: i.name for i in request.items if i.kind == "function_call"}
    names = [calls.get(o.call_id, "") for o in outputs]
    return all(n in described and _is_save_tool(n, described[n]) for n in names)


def _is_error(output: str) -> bool:
    try:
        value = json.loads(output)
    except (json.JSONDecodeError, TypeError):
        return False
    return isinstance(value, dict) and "error" in value


class RulesBrain:
    """See the module docstring. Stateless: one instance may serve every session."""

    needs_transcripts = True

    def decide(self, request: BrainRequest) -> list[BrainOutput]:
        """The whole reply for ``request`` (no streaming), for callers and tests that want it at once."""
        tools = [t for t in request.tools if t.get("type", "function") == "function"]
        choice = request.tool_choice
        kit = interview_tools(tools)
        if kit is not None and not isinstance(choice, dict) and choice != "required":
            reply = interview_reply(request, kit)
            if reply is not None:
                return reply
        outputs = request.pending_tool_outputs
        if outputs and _all_saves(request, outputs):
            if any(_is_error(o.output) for o in outputs):
                return [Say("Sorry, I could not save that. Please tell me again a bit later.")]
            return [Say("Got it, I will remember that.")]
        if outputs:
            said = " ".join(_speakable(o.output) for o in outputs if o.output)
            return [Say(f"Here is what I found: {said}" if said else "The tool returned nothing.")]
        text = request.last_user_text.strip()
        if tools and choice != "none" and text:
            forced = None
            if isinstance(choice, dict) and choice.get("type") == "function":
                forced = next((t for t in tools if t.get("name") == choice.get("name")), None)
            elif choice == "required":
                forced = tools[0]
            if forced is not None:
                return [CallTool(str(forced["name"]), json.dumps({_string_param(forced): text}))]
            if is_question(text):
                for tool in tools:
                    if _MANDATORY.search(str(tool.get("description", ""))):
                        return [CallTool(str(tool["name"]), json.dumps({_string_param(tool): text}))]
            elif _STATEMENT.search(text):
                for tool in tools:
                    if _is_save_tool(str(tool.get("name", "")), str(tool.get("description", ""))):
                        return [CallTool(str(tool["name"]), json.dumps({_string_param(tool): text}))]
        if not text:
            return [Say("Hello! How can I help you today?")]
        if is_question(text):
            return [Say(f"You asked: {text.rstrip('?')}? I am a local engine without knowledge, so I cannot say.")]
        return [Say(f"I heard you say: {text.rstrip('.')}. Thank you.")]

    async def respond(self, request: BrainRequest) -> AsyncIterator[BrainOutput]:
        for output in self.decide(request):
            if isinstance(output, Say):
                for chunk in split_words(output.text):
                    yield Say(chunk)
            else:
                yield output
