"""Tool-call quality and latency of the llm brain on a fixed set of cases (tool chosen, arguments, no tool).

    .venv/bin/python bench/bench_llm_tools.py [--model PATH] [--only N,M] [--json]

Each case is one turn: realistic voice-assistant instructions and tools (the Memory Agent's two personas, a
both-tools mix, and a generic weather/alarm/table set), a user sentence, and what a correct turn does: call
this tool with arguments that mention these words, or call no tool; a few cases give a tool output and
check the spoken answer uses it and reads no JSON. The model runs cold once (the first case), then every
case reuses what it can of the cached prefix, as in a real call. Prints one row per case, the accuracy, the
first-token and per-turn latency, and the machine's load (``uptime``) before and after, since the 2-core
machine is shared. ``--model`` benches another GGUF (default: the packaged one).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from aoai_realtime.engine.brain.base import BrainRequest, CallTool, ContextItem, Say
from aoai_realtime.engine.brain.llm import LLMBrain, shared_brain


def _tool(name: str, description: str, **params: str) -> dict[str, Any]:
    properties = {k: {"type": "string", "description": v} for k, v in params.items()}
    return {"type": "function", "name": name, "description": description,
            "parameters": {"type": "object", "required": list(params)[:1], "properties": properties}}


RETRIEVE = _tool(
    "retrieve_knowledge",
    "MANDATORY: call this tool immediately when the user asks any question about earlier conversations, about "
    "themselves, or about anyone or anything they may have mentioned before (people, pets, places, plans, "
    "meetings, dates, preferences), before you answer. Returns the most relevant things remembered, as short "
    "notes; answer from them in your own words.",
    query="What to look for: the question or its key words.",
)
SAVE = _tool(
    "save_insight",
    "Save one fact the user wants remembered (about themselves, people, pets, places, plans, dates, "
    "preferences or decisions) so it can be recalled in later conversations. Call it once per fact, as soon "
    "as the user states it.",
    text="The fact as one self-contained sentence (who, what, when).",
)
CONTEXT = _tool(
    "get_session_context",
    "Get what was saved during this call and the most recent notes, as short text. Use it when the user "
    "refers to what was just discussed or asks what you have noted.",
)
WEATHER = _tool("get_weather", "Get the weather forecast for a city.", city="The city name.")
ALARM = _tool("set_alarm", "Set an alarm.", time="The time, as HH:MM on a 24-hour clock.")
TABLE = _tool("book_table", "Book a table at a restaurant.", restaurant="The restaurant's name.",
              people="How many people, as a number.")  # fmt: skip

STYLE = ("You are talking, not writing: answer in one or two short spoken sentences. Never read tool results "
         "or JSON aloud.")  # fmt: skip
ASSISTANT = (
    "You are the personal assistant of Sam, with a long-term memory of your earlier conversations. Before you "
    "answer any question about the user, their people, pets, places, plans, meetings or anything they may have "
    "told you before, call retrieve_knowledge first with the question's key words, and answer from what it "
    "returns. For general questions that are not about the user, answer from your own knowledge. Use "
    "get_session_context when the user refers to what you just talked about. " + STYLE
)
CAPTURE = (
    "You are the memory companion of Sam. In this conversation you listen and remember. Whenever the user tells "
    "you something worth remembering about their life, people, pets, places, plans, dates, preferences or "
    "decisions, call save_insight with it as one self-contained sentence, then confirm briefly. Do not save "
    "small talk or questions. If the user asks what you have noted, call get_session_context. " + STYLE
)
MIXED = (
    "You are Sam's voice assistant with a memory. Call retrieve_knowledge before answering questions about "
    "Sam's own life, plans or meetings; call save_insight when Sam tells you something to remember; answer "
    "anything else yourself. " + STYLE
)
GENERIC = "You are a helpful voice assistant. Use the tools when they fit. " + STYLE

SETS: dict[str, tuple[str, tuple[dict[str, Any], ...]]] = {
    "assistant": (ASSISTANT, (RETRIEVE, CONTEXT)),
    "capture": (CAPTURE, (SAVE, CONTEXT)),
    "mixed": (MIXED, (RETRIEVE, SAVE)),
    "generic": (GENERIC, (WEATHER, ALARM, TABLE)),
}


@dataclass(frozen=True)
class Case:
    """One turn: ``tool`` None means no tool call; ``words``: each must appear (any of '|'-alternatives) in
    the arguments (for a call) or in the spoken reply (when ``output`` is given)."""

    set: str
    user: str
    tool: str | None
    words: tuple[str, ...] = ()
    output: str | None = None  # a tool output already given for the expected call: the reply must use it
    call_args: dict[str, str] = field(default_factory=dict)


REVIEW_NOTE = json.dumps({"results": [{"text": "The quarterly review is on Thursday at 3 pm in room 4B.",
                                       "date": "2026-11-20"}]})
DOG_NOTE = json.dumps({"results": [{"text": "Sam's dog is a beagle called Biscuit.", "date": "2026-10-02"}]})

CASES: tuple[Case, ...] = (
    Case("assistant", "When is the quarterly review?", "retrieve_knowledge", ("review",)),
    Case("assistant", "What's my dog's name?", "retrieve_knowledge", ("dog",)),
    Case("assistant", "Where did I park my car yesterday?", "retrieve_knowledge", ("car|park",)),
    Case("assistant", "What did my doctor say about my knee?", "retrieve_knowledge", ("knee|doctor",)),
    Case("assistant", "When is my sister's birthday?", "retrieve_knowledge", ("sister|birthday",)),
    Case("assistant", "Which restaurant did I like in Lisbon?", "retrieve_knowledge", ("restaurant|lisbon",)),
    Case("assistant", "What is the capital of France?", None),
    Case("assistant", "Tell me a joke.", None),
    Case("assistant", "How many minutes are there in two hours?", None),
    Case("assistant", "What did we just talk about?", "get_session_context"),
    Case("capture", "Please remember that my sister's birthday is on May 4th.", "save_insight", ("may 4|4th|fourth",)),
    Case("capture", "My daughter Emma starts school on September 2nd.", "save_insight", ("emma",)),
    Case("capture", "I'm allergic to penicillin.", "save_insight", ("penicillin",)),
    Case("capture", "We decided to move the team offsite to Porto.", "save_insight", ("porto",)),
    Case("capture", "My car is on level 3 of the airport garage.", "save_insight", ("level 3|level three",)),
    Case("capture", "Hi, how are you today?", None),
    Case("capture", "What have you noted so far?", "get_session_context"),
    Case("mixed", "When is the quarterly review?", "retrieve_knowledge", ("review",)),
    Case("mixed", "Remember that the quarterly review moved to Friday.", "save_insight", ("friday",)),
    Case("mixed", "Tell me a joke.", None),
    Case("generic", "Will it rain in Seattle tomorrow?", "get_weather", ("seattle",)),
    Case("generic", "Wake me up at six thirty.", "set_alarm", ("06:30|6:30",)),
    Case("generic", "Book a table for four people at Luigi's.", "book_table", ("luigi", "4|four")),
    Case("generic", "Tell me a fun fact about octopuses.", None),
    Case("mixed", "When is the quarterly review?", None, ("thursday",), output=REVIEW_NOTE,
         call_args={"query": "quarterly review"}),
    Case("assistant", "What's my dog's name?", None, ("biscuit",), output=DOG_NOTE, call_args={"query": "dog's name"}),
)


def request_for(case: Case) -> BrainRequest:
    instructions, tools = SETS[case.set]
    items = [ContextItem(kind="message", role="user", text=case.user)]
    if case.output is not None:
        name = "retrieve_knowledge"
        items += [ContextItem(kind="function_call", name=name, arguments=json.dumps(case.call_args), call_id="c1"),
                  ContextItem(kind="function_call_output", call_id="c1", output=case.output)]  # fmt: skip
    return BrainRequest(instructions=instructions, tools=tools, tool_choice="auto", items=tuple(items))


def _mentions(text: str, words: tuple[str, ...]) -> bool:
    low = text.lower()
    return all(any(alt in low for alt in word.split("|")) for word in words)


@dataclass
class Row:
    case: Case
    got: str
    detail: str
    tool_ok: bool
    args_ok: bool
    first_s: float
    turn_s: float
    route: str


def run_case(brain: LLMBrain, case: Case) -> Row:
    start = time.perf_counter()
    first: float | None = None
    text, calls = "", []
    for output in brain.write(request_for(case)):
        if first is None:
            first = time.perf_counter() - start
        if isinstance(output, Say):
            text += output.text
        elif isinstance(output, CallTool):
            calls.append(output)
    turn = time.perf_counter() - start
    got = calls[0].name if calls else "-"
    tool_ok = (calls[0].name == case.tool) if calls else case.tool is None
    if calls:
        detail = calls[0].arguments
        args_ok = tool_ok and _mentions(calls[0].arguments, case.words)
    else:
        detail = text.strip().replace("\n", " ")
        args_ok = tool_ok and (case.output is None or (_mentions(text, case.words) and "{" not in text))
    return Row(case, got, detail, tool_ok, args_ok, first or turn, turn, brain.last_decision or "(answer)")


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a GGUF with a Qwen-style chat template (default: packaged)")
    parser.add_argument("--only", help="comma-separated case numbers (1-based)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args()
    load_before = _uptime()
    t0 = time.perf_counter()
    brain = LLMBrain.from_path(args.model) if args.model else shared_brain()
    load_s = time.perf_counter() - t0
    picked = [int(n) for n in args.only.split(",")] if args.only else range(1, len(CASES) + 1)
    rows = [run_case(brain, CASES[n - 1]) for n in picked]
    load_after = _uptime()
    tool_acc = sum(r.tool_ok for r in rows) / len(rows)
    full_acc = sum(r.args_ok for r in rows) / len(rows)
    firsts = [r.first_s for r in rows[1:]] or [rows[0].first_s]
    turns = [r.turn_s for r in rows[1:]] or [rows[0].turn_s]
    summary = {
        "model": brain.label, "cases": len(rows),
        "tool_choice_accuracy": round(tool_acc, 3), "full_accuracy": round(full_acc, 3),
        "load_s": round(load_s, 2), "first_token_cold_s": round(rows[0].first_s, 2),
        "first_token_warm_p50_s": round(statistics.median(firsts), 2),
        "turn_p50_s": round(statistics.median(turns), 2), "turn_max_s": round(max(turns), 2),
        "uptime_before": load_before, "uptime_after": load_after,
    }  # fmt: skip
    if args.json:
        print(json.dumps(summary))
        return
    print(f"{'#':>2} {'set':9} {'user':48} {'want':20} {'got':20} {'ok':4} {'first':>6} {'turn':>6}  detail")
    for n, row in zip(picked, rows, strict=True):
        ok = "yes" if row.args_ok else ("tool" if row.tool_ok else "NO")
        want = row.case.tool or ("(answer)" if row.case.output else "-")
        print(f"{n:>2} {row.case.set:9} {row.case.user[:48]:48} {want:20} {row.got:20} {ok:4} "
              f"{row.first_s:6.2f} {row.turn_s:6.2f}  {row.detail[:90]}")  # fmt: skip
    print()
    for key, value in summary.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    sys.exit(main())
