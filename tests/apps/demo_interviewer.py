"""A stand-in for a language model on the Visit Agent's ``visit`` persona, for the demo's end-to-end tests.

The rules brain cannot conduct a scripted interview. ``Interviewer`` reads only what a model reads (the session's
instructions, the user's words, the tools' results) and does what the instructions ask: it asks the scripted
questions, records each answer with ``record_answer``, asks what the tool says to ask next, and ends the visit with
``end_visit`` once the tool says every answer is in. Every other persona gets the rules brain.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

from aoai_realtime.engine.brain.base import BrainOutput, BrainRequest, CallTool, Say
from aoai_realtime.engine.brain.rules import RulesBrain

__all__ = ["ANYTHING_ELSE", "Interviewer"]

ANYTHING_ELSE = "Is there anything else you would like to mention?"


class Interviewer:
    """Asks the scripted questions the instructions list, records each answer with record_answer, asks what the
    tool says to ask next, and ends the visit with end_visit when the tool says every answer is in."""

    needs_transcripts = True

    def __init__(self) -> None:
        self.rules = RulesBrain()

    async def respond(self, request: BrainRequest) -> AsyncIterator[BrainOutput]:
        if not any(t.get("name") == "record_answer" for t in request.tools):
            async for output in self.rules.respond(request):
                yield output
            return
        for output in self.decide(request):
            yield output

    @staticmethod
    def decide(request: BrainRequest) -> list[BrainOutput]:
        # The questions as the instructions list them, follow-ups included: text -> id.
        listed = re.findall(r"^\d+\. \[(\w+)\] \(\w+\) (.+)$", request.instructions, re.M)
        listed += re.findall(r"Follow-up \[(\w+)\][^:]*: (.+)$", request.instructions, re.M)
        questions = {text: qid for qid, text in listed}
        said = [i.text for i in request.items if i.kind == "message" and i.role == "assistant"]
        asked = next(((q, t) for s in reversed(said) for t, q in questions.items() if s.endswith(t)), None)
        calls = {i.call_id: i.name for i in request.items if i.kind == "function_call"}
        outputs = request.pending_tool_outputs
        if outputs:
            last = outputs[-1]
            if calls.get(last.call_id) == "end_visit":
                return [Say("Thank you, goodbye.")]
            if "Every question is answered" in last.output:
                return [Say(ANYTHING_ELSE)]
            found = re.search(r"(?:Next question|Follow-up to ask now) \([^)]*\): ([^?]+\?)", last.output)
            if found and '"error"' not in last.output:
                return [Say(found.group(1))]
            # Refused (e.g. not one of the accepted answers): ask the same question again.
            return [Say(f"Sorry, I did not catch that. {asked[1] if asked else ''}".strip())]
        if not said:
            return [Say(f"Hello, this is your follow-up visit. {next(iter(questions))}")]
        if said[-1] == ANYTHING_ELSE:
            return [CallTool("end_visit", json.dumps({"reason": "completed"}))]
        qid = asked[0] if asked else next(iter(questions.values()))
        answer = request.last_user_text
        # A closed question: record the accepted answer the user's words name, as a model would.
        block = re.search(rf"\[{qid}\].*?(?:\n\d+\. |\Z)", request.instructions, re.S)
        choices = re.search(r"Accepted answers: ([^.\n]+)\.", block.group(0)) if block else None
        if choices:
            words = re.findall(r"[a-z]+", answer.lower())
            answer = next((c for c in choices.group(1).split(", ") if c.lower() in words), answer)
        return [CallTool("record_answer", json.dumps({"question_id": qid, "answer": answer}))]
