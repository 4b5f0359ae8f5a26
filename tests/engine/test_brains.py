"""Brains: rules (the offline default), scripted (JSON scripts), llama (against a fake Llama object)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aoai_realtime.engine import BrainRequest, CallTool, Pause, RulesBrain, Say, ScriptedBrain
from aoai_realtime.engine.brain.base import ContextItem
from aoai_realtime.engine.brain.llama import LlamaBrain, chat_messages
from aoai_realtime.engine.brain.rules import is_question
from aoai_realtime.engine.factory import brain_factory, relay_target
from aoai_realtime.errors import ConfigError

SEARCH = {"type": "function", "name": "search_memory", "description": "You must always call this for questions.",
          "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}
SAVE = {"type": "function", "name": "save_note", "description": "Store a fact the user wants remembered.",
        "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}}
OTHER = {"type": "function", "name": "get_time", "description": "Current time.", "parameters": {}}


def request(*items: ContextItem, tools: tuple[dict[str, Any], ...] = (), tool_choice: Any = "auto") -> BrainRequest:
    return BrainRequest(instructions="Be brief.", tools=tools, tool_choice=tool_choice, items=items)


def user(text: str) -> ContextItem:
    return ContextItem(kind="message", role="user", text=text)


async def collect(brain: Any, req: BrainRequest) -> list[Any]:
    return [o async for o in brain.respond(req)]


def test_rules_questions_call_the_mandatory_tool_with_the_users_words() -> None:
    out = RulesBrain().decide(request(user("Where did I park the car?"), tools=(OTHER, SEARCH, SAVE)))
    assert out == [CallTool("search_memory", json.dumps({"query": "Where did I park the car?"}))]


def test_rules_statements_to_remember_call_the_save_tool() -> None:
    out = RulesBrain().decide(request(user("Remember that my sister is called Ana."), tools=(SEARCH, SAVE)))
    assert out == [CallTool("save_note", json.dumps({"text": "Remember that my sister is called Ana."}))]


def test_rules_speak_from_tool_results_and_answer_plainly_otherwise() -> None:
    items = (user("Where is it?"), ContextItem(kind="function_call", name="search_memory", call_id="c1"),
             ContextItem(kind="function_call_output", call_id="c1", output=json.dumps({"answer": "Level 2."})))
    (say,) = RulesBrain().decide(request(*items, tools=(SEARCH,)))
    assert isinstance(say, Say) and say.text == "Here is what I found: Level 2."
    (plain,) = RulesBrain().decide(request(user("I had a nice day."), tools=(OTHER,)))
    assert isinstance(plain, Say) and "nice day" in plain.text
    assert RulesBrain().decide(request(user("Where is it?"), tools=(SEARCH,), tool_choice="none"))[0] != CallTool(
        "search_memory", json.dumps({"query": "Where is it?"}))


def test_rules_honour_a_forced_tool_choice() -> None:
    out = RulesBrain().decide(request(user("hello"), tools=(OTHER, SAVE),
                                      tool_choice={"type": "function", "name": "save_note"}))
    assert out == [CallTool("save_note", json.dumps({"text": "hello"}))]
    assert is_question("can you help") and is_question("ok?") and not is_question("I like tea")


async def test_scripted_json_script_and_fallback(tmp_path: Path) -> None:
    path = tmp_path / "script.json"
    turns = [{"say": "One two."}, [{"pause_ms": 250}, {"call": "f", "arguments": {"a": 1}}]]
    path.write_text(json.dumps({"turns": turns, "fallback": "Done."}))
    brain = ScriptedBrain.from_json(path)
    assert await collect(brain, request()) == [Say("One"), Say(" two.")]
    assert await collect(brain, request()) == [Pause(0.25), CallTool("f", '{"a": 1}')]
    assert await collect(brain, request()) == [Say("Done.")]
    bad = tmp_path / "bad.json"
    bad.write_text('{"turns": [{"shout": "x"}]}')
    with pytest.raises(ConfigError, match="unknown step"):
        ScriptedBrain.from_json(bad)


class FakeLlama:
    """Stands in for llama_cpp.Llama: records the call, answers like create_chat_completion does."""

    def __init__(self, message: dict[str, Any]) -> None:
        self.message = message
        self.calls: list[dict[str, Any]] = []

    def create_chat_completion(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"choices": [{"index": 0, "message": self.message, "finish_reason": "stop"}]}


async def test_llama_brain_sends_chat_messages_and_tools_and_maps_the_answer() -> None:
    llm = FakeLlama({"role": "assistant", "content": "Let me check.",
                     "tool_calls": [{"id": "t1", "type": "function",
                                     "function": {"name": "search_memory", "arguments": '{"query": "car"}'}}]})
    items = (user("Where is my car?"), ContextItem(kind="function_call", name="x", arguments="{}", call_id="c0"),
             ContextItem(kind="function_call_output", call_id="c0", output="none"))
    out = await collect(LlamaBrain(llm), request(*items, tools=(SEARCH,)))
    assert out == [Say("Let"), Say(" me"), Say(" check."), CallTool("search_memory", '{"query": "car"}')]
    sent = llm.calls[0]
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["messages"][1] == {"role": "user", "content": "Where is my car?"}
    assert sent["messages"][2]["tool_calls"][0]["id"] == "c0"
    assert sent["messages"][3] == {"role": "tool", "tool_call_id": "c0", "content": "none"}
    assert sent["tools"][0]["function"]["name"] == "search_memory" and sent["tool_choice"] == "auto"
    assert chat_messages(request()) == [{"role": "system", "content": "Be brief."}]


def test_brain_specs() -> None:
    assert isinstance(brain_factory("rules")(), RulesBrain)
    with pytest.raises(ConfigError):
        brain_factory("scripted:/nonexistent.json")
    with pytest.raises(ConfigError, match="unknown brain"):
        brain_factory("gpt")
    with pytest.raises(ConfigError, match="WebSocket URL"):
        relay_target("relay:http://x")
    assert relay_target("rules") is None
