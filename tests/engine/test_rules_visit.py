"""The rules brain conducts a scripted visit through the Visit Agent's own tools, as a model would, and keeps
answering the Memory Agent from its tools. Each test drives the brain with BrainRequests built from a conversation
whose tool calls run through the server's ToolRegistry against the real agents (SQLite in tmp_path, hashed
embeddings): the product's instructions, tool schemas and tool results exactly as a model sees them. No sockets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from aoai_realtime.apps.graph import HeuristicGraphExtractor
from aoai_realtime.apps.memory_agent import MemoryAgent
from aoai_realtime.apps.visit_agent import VisitAgent
from aoai_realtime.apps.visit_script import load_script
from aoai_realtime.engine import BrainRequest, CallTool, RulesBrain, Say
from aoai_realtime.engine.brain.base import ContextItem
from aoai_realtime.engine.brain.interview import interview_tools
from aoai_realtime.memory import HashEmbedder
from aoai_realtime.server.personas import Persona, User
from aoai_realtime.server.tools import ToolContext, ToolRegistry

SCRIPT = load_script(Path(__file__).parents[2] / "src" / "aoai_realtime" / "apps" / "scripts" / "follow_up_visit.yaml")
QUESTIONS = {q.id: q.text for q in SCRIPT.questions}
FOLLOW_UPS = {q.follow_up_id: q.follow_up.ask for q in SCRIPT.questions if q.follow_up is not None}


class Call:
    """One call of ``persona``: the conversation items a model sees, the tools run as the sideband runs them."""

    def __init__(self, persona: Persona, registry: ToolRegistry, user: str, call_id: str) -> None:
        self.instructions = persona.render_instructions(User(id=user, personas=frozenset({persona.id}), name="Bob"))
        self.tools = tuple(registry.definitions(persona.tools))
        self.allowed = persona.tools
        self.registry = registry
        self.context = ToolContext(user_id=user, persona_id=persona.id, call_id=call_id)
        self.items: list[ContextItem] = []
        self.calls: list[tuple[str, dict[str, Any], str]] = []  # (tool, arguments, status) in order
        self.brain = RulesBrain()

    def request(self) -> BrainRequest:
        return BrainRequest(instructions=self.instructions, tools=self.tools, tool_choice="auto",
                            items=tuple(self.items))

    async def respond(self) -> str:
        """One response, and the responses the tool outputs ask for, until the brain speaks. Returns what it said."""
        for _ in range(4):
            (out,) = self.brain.decide(self.request())
            if isinstance(out, Say):
                self.items.append(ContextItem(kind="message", role="assistant", text=out.text))
                return out.text
            assert isinstance(out, CallTool)
            call_id = f"call_{len(self.items)}"
            self.items.append(ContextItem(kind="function_call", name=out.name, arguments=out.arguments,
                                          call_id=call_id))
            result = await self.registry.execute(out.name, out.arguments, self.context, allowed=self.allowed)
            self.calls.append((out.name, json.loads(out.arguments), result.status))
            self.items.append(ContextItem(kind="function_call_output", call_id=call_id, output=result.output))
        raise AssertionError("the brain kept calling tools without speaking")

    async def say(self, text: str) -> str:
        self.items.append(ContextItem(kind="message", role="user", text=text))
        return await self.respond()


@pytest.fixture
async def visit_agent(tmp_path: Path) -> AsyncIterator[VisitAgent]:
    agent = await VisitAgent.open(tmp_path, script=SCRIPT, embedder=HashEmbedder(), resume=False)
    yield agent
    await agent.close()


def visit_call(agent: VisitAgent, call_id: str = "call-1") -> Call:
    return Call(agent.personas()[0], ToolRegistry(agent.tools()), "bob", call_id)


async def test_the_visit_tools_are_recognised_from_their_schemas(visit_agent: VisitAgent) -> None:
    kit = interview_tools(list(visit_call(visit_agent).tools))
    assert kit is not None
    assert (kit.record, kit.id_param, kit.answer_param) == ("record_answer", "question_id", "answer")
    assert kit.ids[0] == "general_wellbeing" and "pain_level_follow_up" in kit.ids
    assert (kit.end, kit.reason_param, kit.completed, kit.declined) == (
        "end_visit", "reason", "completed", "subject_declined")
    assert kit.declined_param == "declined" and kit.note_param == "note"


async def test_the_rules_brain_conducts_the_whole_visit_through_the_tools(visit_agent: VisitAgent) -> None:
    call = visit_call(visit_agent)
    opening = await call.say("Hello, I am ready for the visit.")
    # The purpose mentions "medication" before the list: the first listed question is asked, no tool called.
    assert opening.endswith(QUESTIONS["general_wellbeing"]) and call.calls == []
    # An answer that happens to name other questions' ids ("sleep", "medication") does not steer the visit.
    reply = await call.say("I can't sleep well and I keep forgetting my medication, but I feel better.")
    assert reply.endswith(QUESTIONS["pain_level"])
    assert await call.say("About a seven.") == "Thank you. " + FOLLOW_UPS["pain_level_follow_up"]
    assert (await call.say("My left knee, getting better.")).endswith(QUESTIONS["medication"])
    # A closed question: the accepted answer the words name is recorded, as a model maps "Yes, I do." to "yes".
    assert (await call.say("Yes, I do.")).endswith(QUESTIONS["sleep"])
    assert (await call.say("I would rather not say.")).endswith(QUESTIONS["concerns"])
    assert "anything else" in await call.say("Please ask the nurse to call me about my tablets.")
    # Goodbye with the closing words the end result gives (the script's closing).
    assert await call.say("No, that is all.") == f"{SCRIPT.closing} Goodbye."
    assert [(name, args) for name, args, _ in call.calls] == [
        ("record_answer", {"question_id": "general_wellbeing",
                           "answer": "I can't sleep well and I keep forgetting my medication, but I feel better."}),
        ("record_answer", {"question_id": "pain_level", "answer": "About a seven."}),
        ("record_answer", {"question_id": "pain_level_follow_up", "answer": "My left knee, getting better."}),
        ("record_answer", {"question_id": "medication", "answer": "yes"}),
        ("record_answer", {"question_id": "sleep", "answer": "", "declined": True}),
        ("record_answer", {"question_id": "concerns", "answer": "Please ask the nurse to call me about my tablets."}),
        ("end_visit", {"reason": "completed"}),
    ]
    assert all(status == "ok" for _, _, status in call.calls)
    # What the product stored: every answer under its question, the visit completed.
    answers = await visit_agent.records.answers("call-1", "bob")
    assert {q: (a.answer, a.status) for q, a in answers.items()} == {
        "general_wellbeing": ("I can't sleep well and I keep forgetting my medication, but I feel better.", "answered"),
        "pain_level": ("About a seven.", "answered"),
        "pain_level_follow_up": ("My left knee, getting better.", "answered"),
        "medication": ("yes", "answered"),
        "sleep": ("", "declined"),
        "concerns": ("Please ask the nurse to call me about my tablets.", "answered"),
    }
    assert (await visit_agent.records.outcome("call-1", "bob") or ("",))[0] == "completed"
    # After the end, nothing more is recorded.
    assert "ended" in await call.say("One more thing.") and len(call.calls) == 7


async def test_a_refused_answer_is_asked_again_and_then_recorded(visit_agent: VisitAgent) -> None:
    call = visit_call(visit_agent)
    await call.say("Hello.")
    for answer in ("Fine.", "Two."):
        await call.say(answer)
    # "Sometimes" is not one of the accepted answers: the tool refuses, the brain asks the same question again.
    reply = await call.say("Sometimes.")
    assert call.calls[-1][0] == "record_answer" and call.calls[-1][2] == "tool_error"
    assert reply.startswith("Sorry") and reply.endswith(QUESTIONS["medication"])
    assert await call.say("Partly.") == "Thank you. " + FOLLOW_UPS["medication_follow_up"]
    assert call.calls[-1][1] == {"question_id": "medication", "answer": "partly"} and call.calls[-1][2] == "ok"


async def test_the_visit_ends_as_declined_when_the_subject_wants_to_stop(visit_agent: VisitAgent) -> None:
    call = visit_call(visit_agent)
    await call.say("Hello.")
    reply = await call.say("Actually, I want to stop the visit now.")
    assert call.calls == [("end_visit", {"reason": "subject_declined"}, "ok")] and "Goodbye" in reply
    assert (await visit_agent.records.outcome("call-1", "bob") or ("",))[0] == "declined"


async def test_a_refused_end_asks_the_first_missing_question(visit_agent: VisitAgent) -> None:
    call = visit_call(visit_agent)
    await call.say("Hello.")
    await call.say("Fine, thanks.")
    # A model ended too early: the tool refuses and names what is missing; the brain asks the first of those.
    result = await call.registry.execute("end_visit", json.dumps({"reason": "completed"}), call.context,
                                         allowed=call.allowed)
    call.items += [ContextItem(kind="function_call", name="end_visit", arguments='{"reason": "completed"}',
                               call_id="early"),
                   ContextItem(kind="function_call_output", call_id="early", output=result.output)]
    assert result.output.startswith("Not ended")
    assert await call.respond() == "Thank you. " + QUESTIONS["pain_level"]
    await call.say("Zero.")
    assert call.calls[-1][1] == {"question_id": "pain_level", "answer": "Zero."}


async def test_tool_choice_none_never_calls_a_visit_tool(visit_agent: VisitAgent) -> None:
    call = visit_call(visit_agent)
    await call.say("Hello.")
    call.items.append(ContextItem(kind="message", role="user", text="Fine."))
    request = call.request()
    none = BrainRequest(instructions=request.instructions, tools=request.tools, tool_choice="none",
                        items=request.items)
    assert all(isinstance(o, Say) for o in RulesBrain().decide(none))


async def test_the_memory_agent_still_saves_statements_and_answers_questions_from_its_notes(tmp_path: Path) -> None:
    agent = await MemoryAgent.open(tmp_path, embedder=HashEmbedder(), extractor=HeuristicGraphExtractor(),
                                   resume=False)
    try:
        personas = {p.id: p for p in agent.personas()}
        registry = ToolRegistry(agent.tools())
        assert interview_tools(list(registry.definitions(personas["capture"].tools))) is None
        capture = Call(personas["capture"], registry, "ann", "c1")
        confirmed = await capture.say("Please remember that the quarterly review moves to Thursday at three.")
        assert [(n, s) for n, _, s in capture.calls] == [("save_insight", "ok")]
        assert confirmed == "Got it, I will remember that."
        assistant = Call(personas["assistant"], registry, "ann", "c2")
        reply = await assistant.say("When is the quarterly review?")
        assert [(n, s) for n, _, s in assistant.calls] == [("retrieve_knowledge", "ok")]
        # Spoken from the notes: the fact, without the list's markup, tags or the tool's own guidance.
        assert "thursday" in reply.lower()
        assert not any(mark in reply for mark in ("{", "- ", "Remembered (", "Answer from these notes"))
    finally:
        await agent.close()


def test_a_failed_save_is_said_not_confirmed() -> None:
    save = {"type": "function", "name": "save_note", "description": "Store a fact the user wants remembered.",
            "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}}
    items = (ContextItem(kind="message", role="user", text="Remember that my sister is Ana."),
             ContextItem(kind="function_call", name="save_note", arguments='{"text": "x"}', call_id="c1"),
             ContextItem(kind="function_call_output", call_id="c1",
                         output=json.dumps({"error": {"type": "tool_error", "message": "disk full"}})))
    (reply,) = RulesBrain().decide(BrainRequest(instructions="", tools=(save,), tool_choice="auto", items=items))
    assert isinstance(reply, Say) and reply.text.startswith("Sorry, I could not save that")
