"""The Visit Agent: a structured voice interview from an operator's question script (the seed's second agent).

Persona ``visit`` (server VAD: interviews run in quiet rooms) asks the script's questions and keeps to it through
three tools whose state lives on the server, keyed by the call and scoped to the subject (the call's user id):

- ``record_answer(question_id, answer, declined=false)`` stores an answer (or that the subject declined it) and
  answers with what to ask next: the follow-up when the answer triggers one, else the next open question;
- ``end_visit(reason)`` ends the visit, and refuses ``completed`` while a required answer is missing (the result
  names the questions to ask); ``subject_declined`` always ends it;
- ``visit_progress()`` says what is answered and what is missing.

After the call, the pipeline's four steps run once each: markdown summary, action items (schema-validated JSON),
the visit indexed into memory for search (transcript, summary and answers), and a review thread. Reviewers list
threads, open one (transcript, summary, action items, answers) and mark it reviewed with notes. The next visit of
the same subject starts with the earlier visits' summary, answers and action items appended to its instructions.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ..errors import ToolError
from ..llm import LocalLLM
from ..llm.types import LLMProvider
from ..memory import CachedEmbedder, ChunkKind, EmbeddingProvider, LocalEmbedder, MemoryStore, Scope, SQLiteStore
from ..memory.graph_llm import chunk_graph_for
from ..pipeline import ACTION_ITEMS, INDEX, REVIEW_THREAD, SUMMARY, RetryPolicy, default_pipeline
from ..pipeline.memory_indexer import ChunkGraphOption, resolve_chunk_graph
from ..protocol.session import ServerVad
from ..server.hooks import CallRecord, CallStart
from ..server.personas import Persona
from ..server.tools import ServerTool, ToolContext
from .postcall import CALL_SESSION_SUFFIX, CallIndexer, PostCall, pipeline_call, search_memory
from .records import AppRecords, StoredAnswer
from .visit_flow import answer_rows, answer_text, next_step, pending, record_text
from .visit_script import VisitScript

if TYPE_CHECKING:
    from ..memory.graph import ChunkGraph

__all__ = ["END_REASONS", "VisitAgent", "visit_instructions"]

STEPS: Final = (SUMMARY, ACTION_ITEMS, INDEX, REVIEW_THREAD)
END_REASONS: Final = ("completed", "subject_declined", "cannot_continue")
HISTORY_VISITS: Final = 3
_MAX_ANSWER = 1000


def visit_instructions(script: VisitScript) -> str:
    """The persona's instructions for ``script`` (a template: ``{user_name}`` is the subject's name)."""
    lines = []
    for n, q in enumerate(script.questions, start=1):
        need = "required" if q.required else "optional"
        line = f"{n}. [{q.id}] ({need}) {q.text}"
        if q.expects:
            line += f"\n   Counts as an answer: {q.expects}."
        if q.choices:
            line += f"\n   Accepted answers: {', '.join(q.choices)}."
        if q.follow_up is not None:
            line += (f"\n   Follow-up [{q.follow_up_id}], only when the tool asks for it: {q.follow_up.ask}")
        lines.append(line)
    text = (
        f"You are conducting a short, structured voice visit with {{user_name}}: {script.title}.\n"
        + (f"Purpose: {script.purpose}\n" if script.purpose else "")
        + (f"Open with: {script.greeting}\n" if script.greeting else "Open with a brief, friendly greeting.\n")
        + "Ask the scripted questions below one at a time, in order, in your own warm words but keeping their "
        "meaning. After each answer, call record_answer with the question's id and the answer in the subject's "
        "words, kept short. The tool's result tells you what to ask next: follow it. If an answer is unclear or "
        "does not answer the question, ask again (rephrase it) before recording. If the subject does not want to "
        "answer a question, call record_answer with declined set to true and move on. When the tool says every "
        "required answer is in, ask whether there is anything else they want to mention, then call end_visit "
        "with reason 'completed'. If the subject wants to stop the visit, call end_visit with reason "
        "'subject_declined'. Do not give advice beyond the script; if they raise a concern, note it and say it "
        "will be passed on.\n"
        + (f"Close with: {script.closing}\n" if script.closing else "")
        + "Speak briefly and plainly. Never read question ids, tool results or JSON aloud.\n\n"
        "Questions:\n" + "\n".join(lines)
    )
    return text.replace("{", "{{").replace("}", "}}").replace("{{user_name}}", "{user_name}")


class VisitAgent:
    """Persona ``visit`` following ``script``. Build with :meth:`open`; the stores live under ``data_dir``
    (``memory.sqlite``, ``steps.sqlite``, ``records.sqlite``). The user id of a call is the visit's subject.
    A review thread's id is the visit's call id."""

    name = "visit-agent"

    def __init__(self, *, script: VisitScript, memory: MemoryStore, embedder: EmbeddingProvider, llm: LLMProvider,
                 data_dir: Path, owns_memory: bool, resume: bool = True,
                 clock: Any = time.time, chunk_graph: ChunkGraph | None = None) -> None:
        """Use :meth:`open`, which also starts the post-call driver and warms the embedder."""
        self.script = script
        self.memory = memory
        self.embedder = embedder
        self.llm = llm
        self.chunk_graph = chunk_graph
        self.records = AppRecords(data_dir / "records.sqlite")
        # the visit's turns are read by the chat model when one is configured (spaCy reads queries and failures)
        indexer = CallIndexer(memory, embedder, source=self.name, graph=chunk_graph_for(llm, chunk_graph))
        pipeline = default_pipeline(llm=llm, indexer=indexer,
                                    retry=RetryPolicy(max_attempts=4))
        self.postcall = PostCall.at(data_dir / "steps.sqlite", pipeline, resume=resume)
        self._owns_memory = owns_memory
        self._clock = clock

    @classmethod
    async def open(
        cls,
        data_dir: Path | str,
        *,
        script: VisitScript,
        embedder: EmbeddingProvider | None = None,
        llm: LLMProvider | None = None,
        memory: MemoryStore | None = None,
        resume: bool = True,
        chunk_graph: ChunkGraphOption = "auto",
    ) -> VisitAgent:
        """Open (creating) the agent's stores under ``data_dir``. ``script`` comes from
        :func:`~aoai_realtime.apps.visit_script.load_script`; ``embedder``, ``llm`` and ``memory`` default as for
        :meth:`MemoryAgent.open <aoai_realtime.apps.memory_agent.MemoryAgent.open>`, and so does ``chunk_graph`` (the
        spaCy parser's entities and relations for the visit index and its search when the ``graph`` extra is
        installed; None turns it off)."""
        root = Path(data_dir)
        await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)
        embedder = embedder or CachedEmbedder(LocalEmbedder())
        await embedder.embed(["warm up"])
        graph = await resolve_chunk_graph(chunk_graph, user=cls.name)
        owns = memory is None
        store = memory or await SQLiteStore.open(root / "memory.sqlite", dim=embedder.dim)
        agent = cls(script=script, memory=store, embedder=embedder, llm=llm or LocalLLM(), data_dir=root,
                    owns_memory=owns, resume=resume, chunk_graph=graph)
        await agent.postcall.start()
        return agent

    # -- server side -------------------------------------------------------------------------------------

    def personas(self) -> list[Persona]:
        return [Persona(id="visit", title=f"Visit Agent: {self.script.title}",
                        instructions=visit_instructions(self.script),
                        tools=("record_answer", "end_visit", "visit_progress"), voice="cedar",
                        turn_detection=ServerVad(silence_duration_ms=700))]

    def tools(self) -> list[ServerTool]:
        ids = [q.id for q in self.script.questions] + [q.follow_up_id for q in self.script.questions if q.follow_up]
        return [
            ServerTool(
                name="record_answer",
                description=("Record the subject's answer to one scripted question (or that they declined it), right "
                             "after they answer. Returns what to ask next; follow it."),
                handler=self._record_answer,
                parameters={
                    "type": "object",
                    "properties": {
                        "question_id": {"type": "string", "enum": ids, "description": "The question's id."},
                        "answer": {"type": "string",
                                   "description": "The answer in the subject's words, kept short ('' if declined)."},
                        "declined": {"type": "boolean",
                                     "description": "True when the subject does not want to answer this question."},
                    },
                    "required": ["question_id", "answer"],
                },
            ),
            ServerTool(
                name="end_visit",
                description=("End the visit. Use reason 'completed' once every required answer is recorded (it is "
                             "refused otherwise, with the questions still to ask), 'subject_declined' when the "
                             "subject wants to stop, 'cannot_continue' when the visit cannot go on (e.g. wrong "
                             "person). Then say goodbye in one sentence."),
                handler=self._end_visit,
                parameters={
                    "type": "object",
                    "properties": {
                        "reason": {"type": "string", "enum": list(END_REASONS)},
                        "note": {"type": "string", "description": "Optional short note for the reviewer."},
                    },
                    "required": ["reason"],
                },
            ),
            ServerTool(name="visit_progress",
                       description="What has been answered so far and which questions are still open, as short text.",
                       handler=self._progress),
        ]

    async def session_context(self, start: CallStart) -> str | None:
        """The subject's earlier visits (summary, answers, action items), newest first, from memory."""
        return await self.history(start.user.id)

    async def call_ended(self, record: CallRecord) -> None:
        """Store the visit and run its post-call steps (summary, action items, index, review thread)."""
        await self.records.add_call(record)
        # The first record of the call wins (a repeated delivery finds the same answers anyway).
        answers = await self.records.answers(record.call_id, record.user_id)
        outcome = await self.records.outcome(record.call_id, record.user_id)
        status = outcome[0] if outcome else "incomplete"
        await self.postcall.run(pipeline_call(
            record, visit_status=status, script=self.script.id,
            answers=json.dumps({a.question_id: answer_text(a) for a in answers.values()}),
            record=record_text(self.script, answers, status),
        ))

    async def close(self) -> None:
        await self.postcall.close()
        await self.records.close()
        if self._owns_memory:
            await self.memory.close()

    # -- tools -------------------------------------------------------------------------------------------

    async def _state(self, context: ToolContext) -> dict[str, StoredAnswer]:
        if not context.call_id:
            raise ToolError("this tool works only during a call")
        if await self.records.outcome(context.call_id, context.user_id) is not None:
            raise ToolError("the visit has already ended; say goodbye")
        return await self.records.answers(context.call_id, context.user_id)

    async def _record_answer(self, args: dict[str, Any], context: ToolContext) -> str:
        qid, answer, declined = args.get("question_id"), args.get("answer", ""), args.get("declined", False)
        if not isinstance(qid, str) or not isinstance(answer, str) or not isinstance(declined, bool):
            raise ToolError("question_id and answer must be strings, declined true or false")
        answers = await self._state(context)
        question = self.script.question(qid)
        parent = self.script.parent_of(qid) if question is None else None
        if question is None and parent is None:
            raise ToolError(f"there is no question {qid!r} in this script; {next_step(self.script, answers)}")
        if parent is not None:
            got = answers.get(parent.id)
            if got is None or got.status != "answered" or not parent.triggers_follow_up(got.answer):
                raise ToolError(f"{qid!r} is a follow-up that this visit does not call for. "
                                f"{next_step(self.script, answers)}")
        answer = " ".join(answer.split())[:_MAX_ANSWER]
        if not declined:
            if not answer:
                raise ToolError(f"the answer to {qid!r} is empty: ask the question again, or set declined to true "
                                "if the subject does not want to answer")
            if question is not None:
                accepted = question.accepts(answer)
                if accepted is None:
                    raise ToolError(f"{answer!r} is not one of the accepted answers to {qid!r} "
                                    f"({', '.join(question.choices)}): record the one that matches what they said, "
                                    "or ask again offering them")
                answer = accepted
        status = "declined" if declined else "answered"
        await self.records.put_answer(context.call_id, context.user_id, qid, answer, status, self._clock())
        answers[qid] = StoredAnswer(qid, answer, status, self._clock())
        done = f"Recorded {qid}: {'declined' if declined else repr(answer)}."
        return f"{done} {next_step(self.script, answers)}"

    async def _end_visit(self, args: dict[str, Any], context: ToolContext) -> str:
        reason, note = args.get("reason"), args.get("note", "")
        if reason not in END_REASONS or not isinstance(note, str):
            raise ToolError(f"reason must be one of {', '.join(END_REASONS)}")
        answers = await self._state(context)
        missing = [p for p in pending(self.script, answers) if p.required]
        if reason == "completed" and missing:
            asks = "; ".join(f"{p.id}: {p.text}" for p in missing)
            return (f"Not ended: required answers are missing ({asks}). Ask the first one now. If the subject does not "
                    "want to answer it, call record_answer with declined true; if they want to stop the visit, call "
                    "end_visit with reason 'subject_declined'.")
        status = {"completed": "completed", "subject_declined": "declined"}.get(str(reason), "incomplete")
        await self.records.set_outcome(context.call_id, context.user_id, status,
                                       f"{reason}: {note.strip()}" if note.strip() else str(reason), self._clock())
        closing = f" Close with: {self.script.closing}" if self.script.closing and status == "completed" else ""
        return f"Visit ended ({reason}). Thank them and say goodbye in one short sentence.{closing}"

    async def _progress(self, args: dict[str, Any], context: ToolContext) -> str:
        answers = await self._state(context)
        done = [f"{a.question_id}: {answer_text(a)}" for a in answers.values()]
        head = ("Answered: " + "; ".join(done) + ".") if done else "Nothing recorded yet."
        return f"{head} {next_step(self.script, answers)}"

    # -- history -----------------------------------------------------------------------------------------

    async def history(self, subject_id: str, *, visits: int = HISTORY_VISITS) -> str | None:
        """The text :meth:`session_context` appends: the subject's last ``visits`` visits, from the memory the
        index step wrote (summaries and answers) and the visits' action items. None for a first visit."""
        recent = await self.memory.recent(Scope(owner=subject_id), 500)
        chunks = await self.memory.get_chunks([cid for cid, _ in recent])
        by_call: dict[str, dict[str, Any]] = {}
        for c in chunks:
            if c.kind is not ChunkKind.SUMMARY or not c.source.startswith(self.name):
                continue
            call_id = c.session_id.removesuffix(CALL_SESSION_SUFFIX)
            entry = by_call.setdefault(call_id, {"ts": c.ts, "summary": "", "record": ""})
            entry["record" if c.source.endswith(":record") else "summary"] = c.text
        if not by_call:
            return None
        newest = sorted(by_call.items(), key=lambda kv: -float(kv[1]["ts"]))[:visits]
        parts = [
            "History of this person's earlier visits (newest first). Use it: ask how things changed since, and "
            "check on open action items when relevant. Still ask every scripted question; do not read this aloud."
        ]
        for call_id, entry in newest:
            when = time.strftime("%Y-%m-%d", time.gmtime(float(entry["ts"])))
            parts.append(f"\nVisit on {when}:")
            if entry["record"]:
                parts.append(entry["record"])
            items = await self._action_items(call_id)
            if items:
                parts.append("Action items: " + "; ".join(_item_text(i) for i in items))
            if entry["summary"]:
                parts.append("Summary: " + _squash(entry["summary"], 600))
        return "\n".join(parts)

    async def _action_items(self, call_id: str) -> list[dict[str, Any]]:
        effect = await self.postcall.effect(call_id, ACTION_ITEMS)
        if effect is None:
            return []
        items = json.loads(effect.body).get("action_items", [])
        return [i for i in items if isinstance(i, dict)]

    # -- review and browse (JSON-able, for the demo UI) --------------------------------------------------

    async def threads(self, user_id: str | None = None, *, status: str | None = None) -> list[dict[str, Any]]:
        """Review threads, newest first (of one subject when ``user_id`` is given; ``status`` "open" or
        "reviewed" filters): ``[{"thread_id": str, "call_id": str, "subject_id": str, "title": str,
        "status": "open" | "reviewed", "created_at": float, "visit_status": "completed" | "declined" |
        "incomplete", "reviews": int}]``. Only visits whose review thread step has run are listed."""
        calls = [c for c in await self.records.calls(user_id) if c.persona_id == "visit"]
        reviews = await self.records.reviews([c.call_id for c in calls])
        out = []
        for c in calls:
            thread = await self.postcall.effect(c.call_id, REVIEW_THREAD)
            if thread is None:
                continue
            view = await self._thread_head(c, thread.created_at, len(reviews.get(c.call_id, [])))
            if status is None or view["status"] == status:
                out.append(view)
        return out

    async def _thread_head(self, call: CallRecord, created_at: float, n_reviews: int) -> dict[str, Any]:
        outcome = await self.records.outcome(call.call_id, call.user_id)
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(call.started_at))
        return {"thread_id": call.call_id, "call_id": call.call_id, "subject_id": call.user_id,
                "title": f"{self.script.title}: {call.user_id}, {when} UTC",
                "status": "reviewed" if n_reviews else "open", "created_at": created_at,
                "visit_status": outcome[0] if outcome else "incomplete", "reviews": n_reviews}

    async def thread(self, thread_id: str) -> dict[str, Any] | None:
        """One thread as in :meth:`threads`, plus ``"transcript": [{"role", "text"}]``, ``"summary": str | None``
        (markdown), ``"action_items": [{"description", "owner", "due", "priority"}]``, ``"answers":
        [{"question_id", "question", "answer", "status": "answered" | "declined" | "missing", "required"}]``,
        ``"reviews": [{"reviewer", "notes", "reviewed_at", "updated_at"}]`` and ``"steps": {step: state}``;
        None if there is no such thread."""
        calls = await self.records.calls(call_id=thread_id)
        effect = await self.postcall.effect(thread_id, REVIEW_THREAD)
        if not calls or effect is None or calls[0].persona_id != "visit":
            return None
        call = calls[0]
        reviews = (await self.records.reviews([thread_id])).get(thread_id, [])
        view = await self._thread_head(call, effect.created_at, len(reviews))
        summary = await self.postcall.effect(thread_id, SUMMARY)
        answers = await self.records.answers(call.call_id, call.user_id)
        view.update(
            transcript=[{"role": t.role, "text": t.text} for t in call.turns],
            summary=summary.body if summary else None,
            action_items=await self._action_items(thread_id),
            answers=answer_rows(self.script, answers),
            reviews=[{"reviewer": r.reviewer, "notes": r.notes, "reviewed_at": r.reviewed_at,
                      "updated_at": r.updated_at} for r in reviews],
            steps=await self.postcall.states(thread_id),
        )
        return view

    async def mark_reviewed(self, thread_id: str, *, reviewer: str, notes: str = "") -> dict[str, Any]:
        """Record ``reviewer``'s review with ``notes`` and return the thread (as :meth:`thread`). Idempotent per
        reviewer: the same reviewer marking again keeps their first review time and replaces their notes only
        with non-empty ones; another reviewer's mark is added beside the first, never over it. Raises
        ``KeyError`` for an unknown thread and ``ValueError`` for an empty reviewer name."""
        reviewer = reviewer.strip()
        if not reviewer:
            raise ValueError("reviewer must be a non-empty name")
        if await self.thread(thread_id) is None:
            raise KeyError(f"no review thread {thread_id!r}")
        await self.records.add_review(thread_id, reviewer, notes.strip(), self._clock())
        view = await self.thread(thread_id)
        assert view is not None
        return view

    async def search(self, subject_id: str, query: str, *, k: int = 5) -> list[dict[str, Any]]:
        """Search the subject's indexed visits (transcripts, summaries, answers): ``[{"text": str, "kind": "turn" |
        "summary", "speaker": str, "call_id": str, "ts": float, "score": float}]``, best first."""
        return await search_memory(self.memory, self.embedder, subject_id, query, k, graph=self.chunk_graph)

    async def visits(self, subject_id: str) -> list[dict[str, Any]]:
        """The subject's visits, newest first: ``[{"call_id", "started_at", "ended_at", "visit_status",
        "summary", "answers": {question_id: answer}, "action_items": [...], "thread_id", "review_status"}]``
        (``thread_id`` None until the review thread exists)."""
        out = []
        for call in await self.records.calls(subject_id):
            if call.persona_id != "visit":
                continue
            summary = await self.postcall.effect(call.call_id, SUMMARY)
            thread = await self.postcall.effect(call.call_id, REVIEW_THREAD)
            outcome = await self.records.outcome(call.call_id, subject_id)
            reviews = (await self.records.reviews([call.call_id])).get(call.call_id, [])
            answers = await self.records.answers(call.call_id, subject_id)
            out.append({
                "call_id": call.call_id, "started_at": call.started_at, "ended_at": call.ended_at,
                "visit_status": outcome[0] if outcome else "incomplete",
                "summary": summary.body if summary else None,
                "answers": {a.question_id: answer_text(a) for a in answers.values()},
                "action_items": await self._action_items(call.call_id),
                "thread_id": call.call_id if thread else None,
                "review_status": "reviewed" if reviews else "open",
            })
        return out


def _item_text(item: dict[str, Any]) -> str:
    text = str(item.get("description", ""))
    if item.get("owner"):
        text += f" (owner: {item['owner']})"
    if item.get("due"):
        text += f" (due: {item['due']})"
    return text


def _squash(text: str, limit: int) -> str:
    flat = " ".join(text.replace("#", " ").replace("**", "").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"
