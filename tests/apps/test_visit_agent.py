"""The Visit Agent as the server runs it: the script-keeping tools through the server's ToolRegistry, the post-call
results through call_ended, the reviewer API, and the history the next visit starts with. SQLite in tmp_path,
the real offline embedder, the offline LLM."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from aoai_realtime.apps.base import AppHooks
from aoai_realtime.apps.visit_agent import VisitAgent
from aoai_realtime.apps.visit_script import load_script
from aoai_realtime.llm.types import LLMError, parse_action_items
from aoai_realtime.memory import CachedEmbedder, LocalEmbedder
from aoai_realtime.pipeline import ACTION_ITEMS, INDEX, REVIEW_THREAD, SUMMARY
from aoai_realtime.server.hooks import CallRecord, CallStart, TranscriptTurn
from aoai_realtime.server.personas import User
from aoai_realtime.server.tools import ToolContext, ToolRegistry

EXAMPLE = Path(__file__).parents[2] / "src" / "aoai_realtime" / "apps" / "scripts" / "follow_up_visit.yaml"
EMBEDDER = CachedEmbedder(LocalEmbedder())
STEPS = (SUMMARY, ACTION_ITEMS, INDEX, REVIEW_THREAD)


@pytest.fixture
async def agent(tmp_path: Path) -> Any:
    agent = await VisitAgent.open(tmp_path, script=load_script(EXAMPLE), embedder=EMBEDDER, resume=False)
    yield agent
    await agent.close()


class Visit:
    """One call's tool calls, as the sideband would run them."""

    def __init__(self, agent: VisitAgent, user: str, call: str) -> None:
        self.registry = ToolRegistry(agent.tools())
        self.allowed = agent.personas()[0].tools
        self.context = ToolContext(user_id=user, persona_id="visit", call_id=call)

    async def __call__(self, name: str, **args: Any) -> tuple[str, str]:
        out = await self.registry.execute(name, json.dumps(args), self.context, allowed=self.allowed)
        return out.status, out.output


def error(output: str) -> str:
    return str(json.loads(output)["error"]["message"])


TRANSCRIPT = [
    ("assistant", "Hello, this is the follow-up call from the clinic. How have you been feeling since you got home?"),
    ("user", "Tired, but better every day."),
    ("assistant", "On a scale from 0 to 10, how much pain do you have today?"),
    ("user", "About a 7, in my left knee, and it is getting worse."),
    ("assistant", "Are you taking your medication as prescribed?"),
    ("user", "Yes."),
    ("assistant", "Is there anything you would like the nurse to know?"),
    ("user", "Please call my daughter about the next appointment. I'll call the pharmacy tomorrow."),
]


def record(call_id: str, user: str, *, started: float = 1_700_000_000.0) -> CallRecord:
    return CallRecord(call_id=call_id, user_id=user, persona_id="visit", started_at=started, ended_at=started + 300,
                      ended_reason="hangup",
                      turns=tuple(TranscriptTurn(role=r, text=t) for r, t in TRANSCRIPT),  # type: ignore[arg-type]
                      tool_calls=())


async def complete_visit(visit: Visit) -> None:
    for qid, answer in [("general_wellbeing", "tired but better every day"), ("pain_level", "7"),
                        ("pain_level_follow_up", "left knee, getting worse"), ("medication", "yes"),
                        ("concerns", "call my daughter about the next appointment")]:
        status, out = await visit("record_answer", question_id=qid, answer=answer)
        assert status == "ok", out
    status, out = await visit("end_visit", reason="completed")
    assert status == "ok" and out.startswith("Visit ended"), out


def test_persona_uses_server_vad_and_names_the_script_tools(agent: VisitAgent) -> None:
    [persona] = agent.personas()
    assert persona.id == "visit" and type(persona.turn_detection).__name__ == "ServerVad"
    assert persona.tools == ("record_answer", "end_visit", "visit_progress")
    text = persona.render_instructions(User(id="ann", personas=frozenset({"visit"}), name="Ann"))
    assert "with Ann" in text and "[pain_level] (required)" in text and "[sleep] (optional)" in text


async def test_the_tools_keep_the_model_on_the_script(agent: VisitAgent) -> None:
    visit = Visit(agent, "ann", "v1")
    status, out = await visit("record_answer", question_id="general_wellbeing", answer="tired but better")
    assert status == "ok" and "Next question (pain_level)" in out
    status, out = await visit("record_answer", question_id="pain_level", answer="about a 7")
    assert "Follow-up to ask now (pain_level_follow_up): Where is the pain" in out
    # ending now is refused, naming what is missing; the visit goes on
    status, out = await visit("end_visit", reason="completed")
    assert status == "ok" and out.startswith("Not ended: required answers are missing")
    assert "pain_level_follow_up" in out and "medication" in out and "concerns" in out and "sleep" not in out
    # an answer outside the accepted choices is refused: the model asks again
    status, out = await visit("record_answer", question_id="pain_level_follow_up", answer="left knee, worse")
    assert "Next question (medication)" in out
    status, out = await visit("record_answer", question_id="medication", answer="sometimes")
    assert status == "tool_error" and "not one of the accepted answers" in error(out)
    status, out = await visit("record_answer", question_id="medication", answer="Partly")
    assert "Follow-up to ask now (medication_follow_up)" in out
    status, out = await visit("record_answer", question_id="medication_follow_up", answer="", declined=True)
    assert status == "ok" and "Next question (sleep, optional)" in out
    status, out = await visit("end_visit", reason="completed")
    assert out.startswith("Not ended") and "concerns" in out
    await visit("record_answer", question_id="concerns", answer="nothing")
    status, out = await visit("visit_progress")
    assert "medication_follow_up: (declined)" in out and "sleep" in out
    status, out = await visit("end_visit", reason="completed")
    assert out.startswith("Visit ended (completed)")
    status, out = await visit("record_answer", question_id="sleep", answer="badly")
    assert status == "tool_error" and "already ended" in error(out)


async def test_wrong_ids_and_empty_answers_are_refused_with_the_next_step(agent: VisitAgent) -> None:
    visit = Visit(agent, "ann", "v1")
    status, out = await visit("record_answer", question_id="pain_level_follow_up", answer="knee")
    assert status == "tool_error" and "does not call for" in error(out) and "general_wellbeing" in error(out)
    status, out = await visit("record_answer", question_id="general_wellbeing", answer="  ")
    assert status == "tool_error" and "empty" in error(out)
    status, out = await visit("end_visit", reason="bored")
    assert status == "tool_error"


async def test_a_subject_who_declines_can_end_the_visit(agent: VisitAgent) -> None:
    visit = Visit(agent, "ben", "v1")
    await visit("record_answer", question_id="general_wellbeing", answer="fine")
    _, out = await visit("end_visit", reason="subject_declined", note="busy, call back tomorrow")
    assert out.startswith("Visit ended (subject_declined)")
    await agent.call_ended(record("v1", "ben"))
    [v] = await agent.visits("ben")
    assert v["visit_status"] == "declined" and v["answers"] == {"general_wellbeing": "fine"}


async def test_answers_are_scoped_to_the_subject(agent: VisitAgent) -> None:
    await Visit(agent, "ann", "v1")("record_answer", question_id="general_wellbeing", answer="secret")
    _, out = await Visit(agent, "eve", "v1")("visit_progress")
    assert "secret" not in out and out.startswith("Nothing recorded yet")


async def test_post_call_results_exist_once_and_a_reviewer_reads_and_marks(agent: VisitAgent) -> None:
    await complete_visit(Visit(agent, "ann", "v1"))
    rec = record("v1", "ann")
    await agent.call_ended(rec)
    await asyncio.gather(agent.call_ended(rec), agent.call_ended(rec))
    for step in STEPS:
        assert len(await agent.postcall.store.effects("v1", step)) == 1, step
    [head] = await agent.threads()
    assert head["thread_id"] == "v1" and head["status"] == "open" and head["visit_status"] == "completed"
    assert await agent.threads("someone-else") == []
    thread = await agent.thread("v1")
    assert thread is not None
    assert thread["transcript"][1] == {"role": "user", "text": "Tired, but better every day."}
    assert thread["summary"].startswith("## Summary")
    items = parse_action_items(json.dumps({"action_items": thread["action_items"]}))  # schema-valid
    assert any("pharmacy" in i.description for i in items.action_items)
    answers = {a["question_id"]: a for a in thread["answers"]}
    assert answers["pain_level"]["answer"] == "7" and answers["sleep"]["status"] == "missing"
    assert thread["steps"] == dict.fromkeys(STEPS, "generated")
    # reviews: one per reviewer; a second mark by the same reviewer without notes keeps the notes
    await agent.mark_reviewed("v1", reviewer="nurse.kim", notes="Pain 7 and worse: call today.")
    await agent.mark_reviewed("v1", reviewer="nurse.kim")
    view = await agent.mark_reviewed("v1", reviewer="dr.ortiz", notes="Agree.")
    assert [(r["reviewer"], r["notes"]) for r in view["reviews"]] == [
        ("nurse.kim", "Pain 7 and worse: call today."), ("dr.ortiz", "Agree.")]
    assert view["status"] == "reviewed"
    assert await agent.threads(status="open") == []
    with pytest.raises(KeyError):
        await agent.mark_reviewed("nope", reviewer="x")
    with pytest.raises(ValueError, match="reviewer"):
        await agent.mark_reviewed("v1", reviewer=" ")


async def test_the_next_visit_starts_with_the_subjects_history(agent: VisitAgent) -> None:
    user = User(id="ann", personas=frozenset({"visit"}), name="Ann")
    [persona] = agent.personas()
    hooks = AppHooks([agent])
    assert await hooks.session_context(CallStart(call_id="", user=user, persona=persona)) is None
    await complete_visit(Visit(agent, "ann", "v1"))
    await hooks.call_ended(record("v1", "ann"))
    await hooks.drain()
    history = await hooks.session_context(CallStart(call_id="", user=user, persona=persona))
    assert history is not None
    assert "Visit on 2023-11-14" in history
    assert "how much pain do you have today? -> 7" in history
    assert "Visit status: completed." in history
    assert "pharmacy" in history  # the open action item
    [hit, *_] = await agent.search("ann", "knee pain getting worse")
    assert hit["call_id"] == "v1" and "knee" in hit["text"]
    assert await agent.search("bob", "knee pain getting worse") == []
    other = User(id="bob", personas=frozenset({"visit"}), name="Bob")
    assert await hooks.session_context(CallStart(call_id="", user=other, persona=persona)) is None


class BrokenLLM:
    """A model that refuses for good (e.g. bad credentials)."""

    async def summarize(self, transcript: Any) -> str:
        raise LLMError("refused (HTTP 401)", retryable=False, status=401)

    async def extract_action_items(self, transcript: Any) -> Any:
        raise LLMError("refused (HTTP 401)", retryable=False, status=401)


async def test_when_the_model_fails_the_reviewer_still_gets_the_visit(tmp_path: Path) -> None:
    agent = await VisitAgent.open(tmp_path, script=load_script(EXAMPLE), embedder=EMBEDDER, llm=BrokenLLM(),
                                  resume=False)
    try:
        await complete_visit(Visit(agent, "ann", "v1"))
        await agent.call_ended(record("v1", "ann"))  # returns: every step settled, some failed for good
        thread = await agent.thread("v1")
        assert thread is not None and thread["summary"] is None and thread["action_items"] == []
        assert thread["steps"] == {SUMMARY: "failed", ACTION_ITEMS: "failed", INDEX: "failed",
                                   REVIEW_THREAD: "generated"}
        assert thread["transcript"] and thread["answers"][0]["answer"] == "tired but better every day"
    finally:
        await agent.close()


async def _indexed_metas(agent: VisitAgent, user: str, call: str) -> list[dict[str, Any]]:
    from aoai_realtime.apps.postcall import CALL_SESSION_SUFFIX
    from aoai_realtime.memory import Scope

    turns = await agent.memory.recent(Scope(owner=user, session_id=call + CALL_SESSION_SUFFIX), 20)
    return [c.meta for c in await agent.memory.get_chunks([cid for cid, _ in turns])]


async def test_the_visit_index_is_read_by_the_parser_graph_unless_turned_off(agent: VisitAgent, tmp_path: Path) -> None:
    # The fixture's agent takes the default (chunk_graph="auto": the spaCy parser, installed here).
    assert agent.chunk_graph is not None
    await complete_visit(Visit(agent, "ann", "v1"))
    await agent.call_ended(record("v1", "ann"))
    metas = await _indexed_metas(agent, "ann", "v1")
    assert metas and all("graph" in m for m in metas)
    assert any("daughter" in m["graph"]["entities"] for m in metas)
    hits = await agent.search("ann", "the daughter's appointment")
    assert hits and "daughter" in hits[0]["text"]

    plain = await VisitAgent.open(tmp_path / "plain", script=load_script(EXAMPLE), embedder=EMBEDDER, resume=False,
                                  chunk_graph=None)
    try:
        assert plain.chunk_graph is None
        await complete_visit(Visit(plain, "ann", "v1"))
        await plain.call_ended(record("v1", "ann"))
        metas = await _indexed_metas(plain, "ann", "v1")
        assert metas and not any("graph" in m for m in metas)
    finally:
        await plain.close()
