"""``aoai-realtime demo --headless``: both agents end to end, no browser, with a verdict per agent.

Through the same server, agents and post-call pipeline as the page (:class:`~.caller.DemoCaller` places WebRTC
calls through the server's SDP proxy, so the sideband runs the tools as for a browser), with the user's lines
synthesised by the engine's own voice and spoken at microphone pace (``speech="full"``), or typed
(``speech="fake"``, a quick run with no speech models).

Expectations (any failure makes the run exit non-zero):

- Memory Agent: session 1 (persona ``capture``) saves the fact the user states; session 2 (persona
  ``assistant``, a new call with an empty conversation) answers a question about it with the fact in the reply.
- Visit Agent: visit 1 (persona ``visit``) goes through the question script to its end; after the call its four
  post-call results (summary, action items, search index, review thread) exist exactly once; visit 2 of the
  same subject starts with visit 1's history in its instructions.

Each turn is printed as it ends; the last line per agent starts ``memory-agent:`` or ``visit-agent:`` and ends
``ok`` or ``FAILED``.
"""

from __future__ import annotations

import asyncio
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..visit_script import VisitScript
from .caller import DemoCaller, TurnReport
from .stack import Demo

__all__ = ["Check", "HeadlessRun", "answer_for", "run_headless"]

MEMORY_USER = "ann"
VISIT_USER = "bob"
FACT = "Please remember that the quarterly review moves to Thursday at three."
FACT_KEY = "thursday"
QUESTION = "When is the quarterly review?"
VISIT_OPENING = "Hello, I am ready for the visit."
# What the headless subject answers, by question id of the packaged script; other scripts get a choice or a
# plain answer (see answer_for).
ANSWERS = {
    "general_wellbeing": "I have been feeling a bit tired, but better every day.",
    "pain_level": "About a three.",
    "pain_level_follow_up": "In my lower back, and it is getting better.",
    "medication": "Yes.",
    "medication_follow_up": "I sometimes forget the evening tablet.",
    "sleep": "I sleep about seven hours, better than last week.",
    "concerns": "Please move my check-up appointment to next Tuesday.",
}
HISTORY_KEY = "tuesday"


@dataclass(kw_only=True)
class Check:
    """One expectation and whether it held."""

    what: str
    ok: bool
    detail: str = ""


@dataclass(kw_only=True)
class HeadlessRun:
    """What a headless run saw: the checks per agent and every turn."""

    checks: dict[str, list[Check]] = field(default_factory=dict)
    turns: dict[str, list[TurnReport]] = field(default_factory=dict)

    def ok(self, agent: str) -> bool:
        return bool(self.checks.get(agent)) and all(c.ok for c in self.checks[agent])

    @property
    def all_ok(self) -> bool:
        return all(self.ok(agent) for agent in ("memory-agent", "visit-agent"))

    def latencies(self) -> list[float]:
        return [t.latency_ms for turns in self.turns.values() for t in turns if t.latency_ms is not None]


def answer_for(script: VisitScript, question_id: str) -> str:
    """The headless subject's answer to the question (or follow-up) ``question_id`` of ``script``."""
    if question_id in ANSWERS:
        return ANSWERS[question_id]
    question = script.question(question_id)
    if question is not None and question.choices:
        return question.choices[0]
    return "Nothing new to report on that."


def _line(text: str, width: int = 240) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z']+", text.lower()) if len(w) > 3}


def _norm(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def asked(
    reply: str, questions: list[tuple[str, str]], pending: list[tuple[str, str]], *, answered: str = ""
) -> tuple[str, str] | None:
    """The ``(question id, text)`` the agent's ``reply`` asks: one of ``questions`` it reads out word for word
    (asked again when it did not take an answer), else the one of ``pending`` with most words in common (not
    counting the words of the user's last line ``answered``, which the reply may repeat); None when neither."""
    said = _norm(reply)
    for question in questions:
        if _norm(question[1]) in said:
            return question
    words = _words(reply) - _words(answered)
    best, score = None, 0
    for question in pending:
        common = len(words & _words(question[1]))
        if common > score:
            best, score = question, common
    return best if score >= 2 else None


def _questions(script: VisitScript) -> list[tuple[str, str]]:
    """Every question the agent may ask, follow-ups included, as ``(id, text)`` in script order."""
    out: list[tuple[str, str]] = []
    for q in script.questions:
        out.append((q.id, q.text))
        if q.follow_up is not None:
            out.append((q.follow_up_id, q.follow_up.ask))
    return out


class _Printer:
    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say

    def turn(self, who: str, turn: TurnReport) -> None:
        how = "spoken" if turn.spoken else "typed"
        self.say(f"  {who} ({how}): {turn.said}")
        if turn.spoken:
            self.say(f"    heard: {turn.heard or '(nothing)'}")
        for tool in turn.tools:
            self.say(f"    tool {tool.name} -> {'ok' if tool.ok else 'ERROR'}: {tool.short()}")
        self.say(f"  assistant: {_line(turn.reply) or '(no reply)'}")
        self.say(f"    latency: {turn.latency_label}")
        for error in turn.errors:
            self.say(f"    error: {error}")

    def check(self, check: Check) -> None:
        detail = f" ({check.detail})" if check.detail else ""
        self.say(f"  check: {check.what}: {'ok' if check.ok else 'FAILED'}{detail}")


class _Scenario:
    def __init__(self, demo: Demo, run: HeadlessRun, printer: _Printer, *, spoken: bool, loopback: bool) -> None:
        self.demo = demo
        self.run = run
        self.printer = printer
        self.spoken = spoken
        self.loopback = loopback

    def speak(self, text: str) -> bytes:
        """The caller's line as audio: the engine's piper voice without its random variation, so every run of the
        check speaks the same audio and a verdict can be reproduced (another TTS is used as it is)."""
        from ...engine.speech.tts import PiperTts

        tts = self.demo.speech.tts
        chunks = tts.synthesize(text, steady=True) if isinstance(tts, PiperTts) else tts.synthesize(text)
        return b"".join(chunks)

    async def turn(self, agent: str, caller: DemoCaller, who: str, text: str) -> TurnReport:
        if self.spoken:
            pcm = await asyncio.to_thread(self.speak, text)
            # Half a second of silence before the words, as a person takes a breath; the track adds silence after.
            report = await caller.say(text, bytes(24000) + pcm)
        else:
            report = await caller.type(text)
        self.run.turns.setdefault(agent, []).append(report)
        self.printer.turn(who, report)
        return report

    def check(self, agent: str, what: str, ok: bool, detail: str = "") -> bool:
        check = Check(what=what, ok=ok, detail=detail)
        self.run.checks.setdefault(agent, []).append(check)
        self.printer.check(check)
        return ok

    async def settled(self, caller: DemoCaller) -> None:
        """Wait until the server handed the call to the agents and their post-call work is done."""
        if caller.call_id:
            await self.demo.calls.settled(caller.call_id)

    def open(self, user: str, persona: str) -> Any:
        return DemoCaller.open(self.demo.url, user_id=user, persona=persona, loopback=self.loopback)

    async def memory_agent(self) -> None:
        agent, say = "memory-agent", self.printer.say
        say(f"== {agent}: session 1, {MEMORY_USER} on persona capture (a new call)")
        async with self.open(MEMORY_USER, "capture") as caller:
            turn = await self.turn(agent, caller, MEMORY_USER, FACT)
        await self.settled(caller)
        saved = [t for t in turn.tools if t.name == "save_insight" and t.ok]
        self.check(agent, "session 1 saved the fact with save_insight", bool(saved),
                   "" if saved else f"tools called: {[t.name for t in turn.tools] or 'none'}")  # fmt: skip
        insights = await self.demo.memory.insights(MEMORY_USER)
        stored = [i for i in insights if FACT_KEY in str(i.get("text", "")).lower()]
        self.check(agent, f"the memory holds the fact for {MEMORY_USER}", bool(stored),
                   f"{len(insights)} insights")  # fmt: skip
        say(f"== {agent}: session 2, {MEMORY_USER} on persona assistant (a new call, an empty conversation)")
        async with self.open(MEMORY_USER, "assistant") as caller:
            turn = await self.turn(agent, caller, MEMORY_USER, QUESTION)
        await self.settled(caller)
        self.check(agent, f"session 2 answered with the fact ({FACT_KEY!r} in the reply)",
                   FACT_KEY in turn.reply.lower(), f"reply: {_line(turn.reply, 80)!r}")  # fmt: skip
        sessions = await self.demo.memory.sessions(MEMORY_USER)
        self.check(agent, "both sessions are in the user's past sessions", len(sessions) >= 2, f"{len(sessions)} found")

    async def visit(self, agent: str, script: VisitScript, *, answer: bool) -> tuple[str | None, list[TurnReport], str]:
        """One visit: open it, then (``answer``) answer what the agent asks until it ends the visit. Returns the
        call id, the turns and the instructions the call started with."""
        everything = _questions(script)
        pending = list(everything)
        follow_ups = {qid for q in script.questions if (qid := q.follow_up_id)}
        async with self.open(VISIT_USER, "visit") as caller:
            call_id, instructions = caller.call_id, str(caller.session.get("instructions", ""))
            turns = [await self.turn(agent, caller, VISIT_USER, VISIT_OPENING)]
            closed = False
            for _ in range(2 * len(script.questions) + 2 if answer else 0):
                last = turns[-1]
                if any(t.name == "end_visit" for t in last.tools) or last.errors or closed:
                    break
                # What the agent asked (again, when it did not take an answer); else the next scripted question,
                # never a follow-up it did not ask.
                question = asked(last.reply, everything, pending, answered=last.said)
                question = question or next((q for q in pending if q[0] not in follow_ups), None)
                if question is None:
                    text, closed = "No, that is everything from me, thank you.", True
                else:
                    text = answer_for(script, question[0])
                    if question in pending:
                        pending.remove(question)
                turns.append(await self.turn(agent, caller, VISIT_USER, text))
        await self.settled(caller)
        return call_id, turns, instructions

    async def visit_agent(self) -> None:
        agent, say, script = "visit-agent", self.printer.say, self.demo.script
        say(f"== {agent}: visit 1, {VISIT_USER} on persona visit, script {script.id!r} "
            f"({len(script.questions)} questions)")  # fmt: skip
        call_id, turns, first = await self.visit(agent, script, answer=True)
        ended = any(t.name == "end_visit" for turn in turns for t in turn.tools)
        self.check(agent, "visit 1 went through the script and ended the visit (end_visit)", ended,
                   f"{len(turns)} turns")  # fmt: skip
        threads = [t for t in await self.demo.visit.threads(VISIT_USER) if t.get("call_id") == call_id]
        self.check(agent, "visit 1 has exactly one review thread", len(threads) == 1, f"{len(threads)} found")
        thread = await self.demo.visit.thread(threads[0]["thread_id"]) if threads else None
        if thread is not None:
            self.check(agent, "visit 1 is completed", thread.get("visit_status") == "completed",
                       f"visit_status {thread.get('visit_status')!r}")  # fmt: skip
            steps = thread.get("steps") or {}
            self.check(agent, "its four post-call results were made once each (summary, action items, index, "
                       "thread)", len(steps) == 4 and all(s in ("generated", "done") for s in steps.values()),
                       ", ".join(f"{k}: {v}" for k, v in steps.items()))  # fmt: skip
            self.check(agent, "the summary is written", bool(thread.get("summary")))
            self.check(agent, "the action items are a list", isinstance(thread.get("action_items"), list),
                       f"{len(thread.get('action_items') or [])} items")  # fmt: skip
        say(f"== {agent}: visit 2, {VISIT_USER} again (a new call)")
        _, _, instructions = await self.visit(agent, script, answer=False)
        # What the server added for visit 2 beyond the persona's instructions (which visit 1 got alone) must carry
        # what the subject said in visit 1: the concern they raised, or (a visit cut short) their own words.
        added = instructions[len(first):] if instructions.startswith(first) else ""
        said = " ".join(t.heard or t.said for t in turns)
        key = HISTORY_KEY if HISTORY_KEY in said.lower() else None
        seen = key in added.lower() if key else bool(_words(added) & (_words(said) - _words(VISIT_OPENING)))
        self.check(agent, "visit 2 starts with visit 1's history in its instructions", seen,
                   f"looked for {key!r}" if key else "looked for the subject's words")  # fmt: skip


async def run_headless(demo: Demo, *, say: Callable[[str], None] = print, spoken: bool = True) -> HeadlessRun:
    """Play both agents against a running ``demo`` (see the module docstring) and return what happened.
    The caller decides the exit status from :attr:`HeadlessRun.all_ok`."""
    if spoken and demo.speech is None:
        raise ValueError("spoken turns need the local engine's voice; use spoken=False towards Azure")
    run = HeadlessRun()
    printer = _Printer(say)
    scenario = _Scenario(demo, run, printer, spoken=spoken, loopback=demo.local_engine)
    for agent, play in (("memory-agent", scenario.memory_agent), ("visit-agent", scenario.visit_agent)):
        try:
            await play()
        except Exception as exc:  # noqa: BLE001 - one agent's crash is its FAILED line, not the end of the run
            scenario.check(agent, "the run finished", False, f"{type(exc).__name__}: {exc}")
        latencies = [t.latency_ms for t in run.turns.get(agent, []) if t.latency_ms is not None]
        median = f", median latency {statistics.median(latencies):.0f} ms" if latencies else ""
        failed = [c.what for c in run.checks.get(agent, []) if not c.ok]
        verdict = "ok" if run.ok(agent) else "FAILED"
        say(f"{agent}: {len(run.turns.get(agent, []))} turns{median}"
            f"{'; failed: ' + '; '.join(failed) if failed else ''} ... {verdict}")  # fmt: skip
    return run
