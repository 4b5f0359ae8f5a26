"""The llm brain against the real packaged model (Qwen2.5-Coder 0.5B through llama.cpp), and its loader.

``scripts/setup.sh`` installs the model, so these run everywhere the suite runs; they skip, saying why, only
where it is not installed. Decoding is greedy, so each reply is the same run after run; the assertions still
check meaning (a tool chosen, a word used), never exact wording or time.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from aoai_realtime.engine.brain import llm as llm_module
from aoai_realtime.engine.brain.base import BrainRequest, CallTool, ContextItem, Say
from aoai_realtime.engine.brain.llm import (
    ANSWER_TOOL,
    LLMBrain,
    answer_messages,
    call_grammar,
    chat_messages,
    function_tools,
    llm_available,
    shared_brain,
    verify_sha256,
)
from aoai_realtime.engine.errors import EngineError
from aoai_realtime.engine.factory import brain_factory, describe_brain
from aoai_realtime.errors import ConfigError

needs_model = pytest.mark.skipif(
    not llm_available(), reason="the local language model is not installed (run: bash scripts/setup.sh)"
)

RETRIEVE = {
    "type": "function", "name": "retrieve_knowledge",
    "description": "MANDATORY: call this tool immediately when the user asks any question about earlier "
                   "conversations, about themselves, or about anything they may have mentioned before (people, "
                   "pets, places, plans, meetings, dates), before you answer. Returns the most relevant things "
                   "remembered, as short notes; answer from them in your own words.",
    "parameters": {"type": "object", "required": ["query"], "properties": {
        "query": {"type": "string", "description": "What to look for: the question or its key words."}}},
}  # fmt: skip
SAVE = {
    "type": "function", "name": "save_insight",
    "description": "Save one fact the user wants remembered (about themselves, people, pets, places, plans, "
                   "dates, preferences or decisions) so it can be recalled in later conversations.",
    "parameters": {"type": "object", "required": ["text"], "properties": {
        "text": {"type": "string", "description": "The fact as one self-contained sentence."}}},
}  # fmt: skip
CONTEXT = {
    "type": "function", "name": "get_session_context",
    "description": "Get what was saved during this call, as short text. Use it when the user asks what you "
                   "have noted.",
    "parameters": {"type": "object", "properties": {}},
}  # fmt: skip
ALARM = {
    "type": "function", "name": "set_alarm", "description": "Set an alarm.",
    "parameters": {"type": "object", "required": ["time"], "properties": {
        "time": {"type": "string", "description": "The time, as HH:MM on a 24-hour clock."}}},
}  # fmt: skip
MEMORY = (
    "You are Sam's voice assistant with a memory. Call retrieve_knowledge before answering questions about "
    "Sam's own life, plans or meetings; call save_insight when Sam tells you something to remember; answer "
    "anything else yourself. You are talking, not writing: answer in one or two short spoken sentences."
)


def user(text: str) -> ContextItem:
    return ContextItem(kind="message", role="user", text=text)


def assistant(text: str) -> ContextItem:
    return ContextItem(kind="message", role="assistant", text=text)


def request(*items: ContextItem, tools: tuple[dict[str, Any], ...] = (RETRIEVE, SAVE), tool_choice: Any = "auto",
            instructions: str = MEMORY) -> BrainRequest:  # fmt: skip
    return BrainRequest(instructions=instructions, tools=tools, tool_choice=tool_choice, items=items)


async def reply(brain: LLMBrain, req: BrainRequest) -> tuple[list[Say], list[CallTool]]:
    says: list[Say] = []
    calls: list[CallTool] = []
    async for output in brain.respond(req):
        if isinstance(output, Say):
            says.append(output)
        elif isinstance(output, CallTool):
            calls.append(output)
    return says, calls


def spoken(says: list[Say]) -> str:
    return "".join(s.text for s in says)


@pytest.fixture(scope="module")
def brain() -> LLMBrain:
    return shared_brain()


# ------------------------------------------------------------------------------------ without the model


def test_chat_messages_keep_the_conversation_and_group_one_turns_calls() -> None:
    req = request(
        user("Where is my car and when is the review?"),
        ContextItem(kind="function_call", name="retrieve_knowledge", arguments='{"query": "car"}', call_id="a"),
        ContextItem(kind="function_call", name="retrieve_knowledge", arguments='{"query": "review"}', call_id="b"),
        ContextItem(kind="function_call_output", call_id="a", output="Level 3."),
        ContextItem(kind="function_call_output", call_id="b", output="Thursday."),
        ContextItem(kind="message", role="user", text=""),  # audio nobody transcribed: left out
    )
    messages = chat_messages(req)
    assert messages[0]["role"] == "system" and messages[0]["content"].startswith(MEMORY)
    assert "spoken aloud" in messages[0]["content"]  # audio replies are told they are spoken
    assert "spoken aloud" not in chat_messages(req, spoken=False)[0]["content"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "tool"]
    calls = messages[2]["tool_calls"]
    assert [c["function"]["arguments"] for c in calls] == [{"query": "car"}, {"query": "review"}]
    assert messages[3] == {"role": "tool", "tool_call_id": "a", "content": "Level 3."}


def test_a_reply_from_tool_outputs_sees_each_output_in_the_user_turn_it_answers() -> None:
    req = request(
        user("Where is my car?"),
        ContextItem(kind="function_call", name="retrieve_knowledge", arguments='{"query": "car"}', call_id="a"),
        ContextItem(kind="function_call_output", call_id="a", output='{"results": [{"text": "Level 3."}]}'),
        assistant("On level 3."),
        user("And the review?"),
        ContextItem(kind="function_call", name="retrieve_knowledge", arguments='{"query": "review"}', call_id="b"),
        ContextItem(kind="function_call_output", call_id="b", output="Thursday at 3 pm."),
    )
    messages = answer_messages(req)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]  # no tool list, no call turns
    assert messages[1]["content"] == "Where is my car?\n\n(Result of retrieve knowledge: results:\n  - text: Level 3.)"
    assert messages[3]["content"] == "And the review?\n\n(Result of retrieve knowledge: Thursday at 3 pm.)"
    # An output nobody asked for in words still reaches the model, as a turn of its own.
    alone = answer_messages(request(
        ContextItem(kind="function_call", name="get_time", arguments="{}", call_id="c"),
        ContextItem(kind="function_call_output", call_id="c", output="12:00"),
    ))  # fmt: skip
    assert alone[-1] == {"role": "user", "content": "(Result of get time: 12:00)"}


def test_a_call_that_only_copies_its_parameters_description_is_recognised() -> None:
    tools = function_tools(request(tools=(RETRIEVE, CONTEXT)))
    copied = CallTool("retrieve_knowledge", json.dumps({"query": "What to look for: the question or its key words"}))
    assert llm_module._copies_schema(copied, tools)
    assert not llm_module._copies_schema(CallTool("retrieve_knowledge", '{"query": "key words of the review"}'), tools)
    assert not llm_module._copies_schema(CallTool("get_session_context", "{}"), tools)


@needs_model
def test_the_call_grammar_allows_only_the_offered_tools_with_their_parameters() -> None:
    grammar = call_grammar(function_tools(request(tools=(RETRIEVE, ALARM))))
    root = next(line for line in grammar.splitlines() if line.startswith("root ::= "))
    assert root.count(" | ") == 1 and "retrieve_knowledge" in root and "set_alarm" in root
    assert "save_insight" not in grammar
    assert '"\\"query\\""' in grammar and '"\\"time\\""' in grammar  # each tool's own parameters


def test_sha256_check_accepts_the_right_file_and_names_the_fix_for_a_wrong_one(tmp_path: Path) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF" + bytes(range(256)) * 40)
    good = hashlib.sha256(model.read_bytes()).hexdigest()
    verify_sha256(model, good)
    assert (tmp_path / "model.gguf.sha256-ok").is_file()  # later loads skip the full read
    verify_sha256(model, good)
    with pytest.raises(EngineError, match=r"sha256 mismatch.*bash scripts/setup\.sh"):
        verify_sha256(model, "0" * 64)
    model.write_bytes(b"GGUF truncated")  # changed after it was verified: checked again
    with pytest.raises(EngineError, match="sha256 mismatch"):
        verify_sha256(model, good)
    with pytest.raises(EngineError, match=r"missing.*bash scripts/setup\.sh"):
        verify_sha256(tmp_path / "absent.gguf", good)


def test_a_missing_install_is_one_line_naming_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llm_module, "_shared", None)
    monkeypatch.setattr(llm_module, "llm_available", lambda: False)
    with pytest.raises(ConfigError, match=r"not installed: run: bash scripts/setup\.sh") as info:
        brain_factory("llm")
    assert "\n" not in str(info.value)
    assert describe_brain("auto") == "rules (no language model installed: run bash scripts/setup.sh)"
    assert brain_factory("auto")().__class__.__name__ == "RulesBrain"


def test_brain_specs_for_the_language_model() -> None:
    with pytest.raises(ConfigError, match="takes no path"):
        brain_factory("llm:/x.gguf")
    with pytest.raises(ConfigError, match="llama needs a GGUF"):
        brain_factory("llama:")
    assert describe_brain("rules").startswith("rules")
    assert describe_brain("llama:/models/x.gguf") == "x.gguf (llama.cpp, local)"


def test_a_file_that_is_not_a_model_is_refused_clearly(tmp_path: Path) -> None:
    if not llm_available():
        pytest.skip("the local language model is not installed (run: bash scripts/setup.sh)")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"this is not a GGUF file")
    with pytest.raises(ConfigError, match="cannot load GGUF model"):
        brain_factory(f"llama:{bad}")


# --------------------------------------------------------------------------------------- with the model


@needs_model
def test_llm_and_auto_specs_share_the_one_loaded_model(brain: LLMBrain) -> None:
    assert brain_factory("llm")() is brain
    assert brain_factory("auto")() is brain
    assert describe_brain("llm") == describe_brain("auto") == llm_module.MODEL_LABEL


@needs_model
async def test_a_plain_question_is_answered_in_streamed_text(brain: LLMBrain) -> None:
    says, calls = await reply(brain, request(user("What is the capital of France?"), tools=()))
    assert calls == []
    assert "Paris" in spoken(says)
    assert len(says) > 3  # token by token, not one block at the end
    assert not spoken(says).lstrip().startswith(("{", "[", "`"))


@needs_model
async def test_a_question_about_the_users_life_calls_retrieve_and_the_answer_uses_its_output(
    brain: LLMBrain,
) -> None:
    question = user("When is the quarterly review?")
    says, calls = await reply(brain, request(question))
    assert [c.name for c in calls] == ["retrieve_knowledge"]
    arguments = json.loads(calls[0].arguments)
    assert isinstance(arguments["query"], str) and "review" in arguments["query"].lower()
    output = json.dumps({"results": [{"text": "The quarterly review is on Thursday at 3 pm.", "date": "2026-11-20"}]})
    follow = request(
        question,
        ContextItem(kind="function_call", name="retrieve_knowledge", arguments=calls[0].arguments, call_id="c1"),
        ContextItem(kind="function_call_output", call_id="c1", output=output),
    )
    says, calls = await reply(brain, follow)
    assert calls == []  # it speaks from the output instead of asking again
    text = spoken(says)
    assert "Thursday" in text
    assert "{" not in text and '"results"' not in text  # put into words, not read out as JSON


@needs_model
async def test_a_joke_saves_nothing(brain: LLMBrain) -> None:
    says, calls = await reply(brain, request(user("Tell me a joke.")))
    assert [c.name for c in calls if c.name == "save_insight"] == []
    assert spoken(says).strip()


@needs_model
async def test_a_fact_to_remember_is_saved_with_its_content(brain: LLMBrain) -> None:
    # The Memory Agent's capture persona: it saves; questions go to the assistant persona, which retrieves.
    capture = ("You are Sam's memory companion: you listen and remember. When Sam tells you something worth "
               "remembering, call save_insight with it as one self-contained sentence, then confirm briefly.")
    req = request(user("Please remember that my sister's birthday is on May 4th."), tools=(SAVE, CONTEXT),
                  instructions=capture)  # fmt: skip
    _, calls = await reply(brain, req)
    assert [c.name for c in calls] == ["save_insight"]
    assert "may 4" in json.loads(calls[0].arguments)["text"].lower()


@needs_model
async def test_a_named_tool_choice_always_gives_a_call_matching_the_schema(brain: LLMBrain) -> None:
    req = request(user("Wake me up at six thirty."), tools=(ALARM, SAVE),
                  tool_choice={"type": "function", "name": "set_alarm"})  # fmt: skip
    says, calls = await reply(brain, req)
    assert says == [] and [c.name for c in calls] == ["set_alarm"]
    arguments = json.loads(calls[0].arguments)
    assert set(arguments) == {"time"} and isinstance(arguments["time"], str)


@needs_model
async def test_the_conversation_is_kept_across_turns(brain: LLMBrain) -> None:
    req = request(user("Hi, my name is Priya."), assistant("Nice to meet you, Priya!"), user("What is my name?"),
                  tools=())  # fmt: skip
    says, _ = await reply(brain, req)
    assert "Priya" in spoken(says)


def count_evaluated(brain: LLMBrain, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """From now on, the length of each token batch any of the brain's contexts evaluates, in order."""
    import llama_cpp

    evaluated: list[int] = []
    real_eval = llama_cpp.Llama.eval

    def counting_eval(self: Any, tokens: Any) -> None:
        evaluated.append(len(tokens))
        real_eval(self, tokens)

    monkeypatch.setattr(llama_cpp.Llama, "eval", counting_eval)
    return evaluated


@needs_model
async def test_the_fixed_prefix_is_reused_on_the_next_turn(brain: LLMBrain, monkeypatch: pytest.MonkeyPatch) -> None:
    evaluated = count_evaluated(brain, monkeypatch)
    first = request(user("What is the capital of Italy?"))
    await reply(brain, first)
    prompt = len(brain._prompt(brain.llm, chat_messages(first), [*function_tools(first), ANSWER_TOOL]))
    evaluated.clear()
    await reply(brain, request(user("And the capital of Spain?")))
    # Only the new user turn is evaluated before the reply, not the system prompt and tools again.
    assert 0 < evaluated[0] < prompt // 4


@needs_model
async def test_prepare_evaluates_a_sessions_prefix_before_its_first_turn(
    brain: LLMBrain, monkeypatch: pytest.MonkeyPatch
) -> None:
    persona = "You are Ann's assistant with a memory of earlier calls. " + MEMORY  # a prefix no test used before
    await brain.prepare(request(tools=(RETRIEVE, CONTEXT), instructions=persona))
    evaluated = count_evaluated(brain, monkeypatch)
    first = request(user("Where did I park?"), tools=(RETRIEVE, CONTEXT), instructions=persona)
    await reply(brain, first)
    prompt = len(brain._prompt(brain.llm, chat_messages(first), [*function_tools(first), ANSWER_TOOL]))
    assert 0 < evaluated[0] < prompt // 4  # the session's first turn evaluates only its own tokens


@needs_model
async def test_a_second_session_at_once_starts_from_the_prepared_prefix(
    brain: LLMBrain, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    persona = "You are Bo's assistant, who keeps notes of his calls. " + MEMORY  # a prefix no test used before
    await brain.prepare(request(instructions=persona))
    evaluated = count_evaluated(brain, monkeypatch)
    story = request(user("Tell me a long story about a dragon."), instructions=persona)
    sum_ = request(user("What is two plus two?"), instructions=persona)
    await asyncio.gather(reply(brain, story), reply(brain, sum_))
    prompt = len(brain._prompt(brain.llm, chat_messages(sum_), [*function_tools(sum_), ANSWER_TOOL]))
    # Whichever lane each took, neither evaluated the persona and its tools again: the lane that did not hold
    # them started from the prefix prepare() kept.
    assert evaluated and max(evaluated) < prompt // 4


@needs_model
async def test_a_reply_closed_early_frees_the_model_for_the_next(brain: LLMBrain) -> None:
    gen = brain.respond(request(user("Tell me a long story about a dragon."), tools=()))
    first = await anext(gen)
    assert isinstance(first, Say)
    await gen.aclose()  # barge-in: the engine stops reading
    says, _ = await reply(brain, request(user("What is the capital of France?"), tools=()))
    assert "Paris" in spoken(says)


@needs_model
async def test_two_sessions_are_answered_at_the_same_time_on_two_lanes(
    brain: LLMBrain, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import contextlib
    import threading
    from collections.abc import Iterator

    from aoai_realtime.engine.brain.lanes import Lane

    real_take = brain.lanes.take
    held: list[Lane] = []
    both = threading.Event()
    lock = threading.Lock()

    @contextlib.contextmanager
    def take(kind: str, tokens: list[int], owner: str = "") -> Iterator[Lane]:
        # Each reply holds its lane until the other reply holds one too: with one lane for both (replies taking
        # turns), the second would never get it and the first would give up after 60 s.
        with real_take(kind, tokens, owner) as lane:
            with lock:
                held.append(lane)
                if len(held) == 2:
                    both.set()
            if not both.wait(timeout=60):
                raise AssertionError("the second reply got no lane while the first held one")
            yield lane

    monkeypatch.setattr(brain.lanes, "take", take)
    france = request(user("What is the capital of France?"), tools=())
    italy = request(user("Hi, I am Luca. What is the capital of Italy?"), tools=())
    one, two = await asyncio.gather(reply(brain, france), reply(brain, italy))
    assert "Paris" in spoken(one[0]) and "Rome" in spoken(two[0])
    assert len(held) == 2 and held[0] is not held[1]


@needs_model
def test_the_same_request_from_the_same_state_gives_the_same_reply(brain: LLMBrain) -> None:
    # Greedy decoding. (A cached prefix evaluated in other batches may round a near tie the other way, so the
    # comparison starts both runs from an empty context.)
    req = request(user("Give me one tip for sleeping better."), tools=())
    replies = []
    for _ in range(2):
        for lane in brain.lanes.lanes:
            for context in lane.contexts.values():
                context.reset()
        replies.append(list(brain.write(req)))
    assert replies[0] == replies[1] and replies[0]


@needs_model
async def test_a_tool_turn_through_the_engine_with_the_llm_brain(brain: LLMBrain) -> None:
    from aoai_realtime.client import RealtimeClient
    from aoai_realtime.testing.engine import EngineHarness

    async with EngineHarness(brain=brain) as harness, RealtimeClient(harness.connect(), reconnect=None) as client:
        await client.update_session({"type": "realtime", "instructions": MEMORY, "tools": [RETRIEVE, SAVE]})
        await client.send_text("When is the quarterly review?")
        done = await client.wait_for("response.done", timeout=300)
        call = done.response.output[0]
        assert call.type == "function_call" and call.name == "retrieve_knowledge"
        note = json.dumps({"results": [{"text": "The quarterly review is on Thursday at 3 pm.", "date": "2026-11-20"}]})
        await client.create_item({"type": "function_call_output", "call_id": call.call_id, "output": note})
        await client.create_response()
        done = await client.wait_for("response.done", timeout=300)
        assert done.response.status == "completed"
        assert "Thursday" in (done.response.output[0].transcript or "")
