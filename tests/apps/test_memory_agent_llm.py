"""The demo's Memory Agent flow with the language model, spoken: a fact saved in an earlier session is asked about
aloud in a new call, and the answer comes from memory through the llm brain (issue 15 item 5).

Everything is the demo's own wiring (:func:`~aoai_realtime.apps.demo.stack.open_demo`: the local engine with full
speech and ``--brain llm``, the server's SDP proxy and sideband running the Memory Agent's tools, a WebRTC call on
127.0.0.1). The earlier session's fact is saved by the Memory Agent's own ``save_insight`` tool, run by the
server's tool registry for the same user in another call. The question is spoken by piper without its random
noise and streamed at microphone pace, so the audio, the transcript and (the model decoding greedily) the reply
are the same on every run; the assertions still check meaning (the tool called, the fact in the reply), never
wording or time.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from aoai_realtime.apps.demo.caller import DemoCaller
from aoai_realtime.apps.demo.headless import FACT_KEY, MEMORY_USER, QUESTION
from aoai_realtime.apps.demo.stack import DemoOptions, open_demo
from aoai_realtime.engine.brain.llm import llm_available
from aoai_realtime.server.tools import ToolContext
from aoai_realtime.testing.audio import speak_piper

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(not llm_available(), reason="the local language model is not installed: bash scripts/setup.sh"),
]

EARLIER_FACT = "Ann's quarterly review moves to Thursday at three pm."


async def test_a_spoken_question_is_answered_from_an_earlier_sessions_memory_through_the_llm_brain(
    tmp_path: Path,
) -> None:
    out = io.StringIO()
    options = DemoOptions(data_dir=tmp_path, port=0, speech="full", upstream="local", brain="llm")
    async with open_demo(options, say=lambda line: print(line, file=out)) as demo:
        # An earlier session (persona capture, another call) saved the fact through the agent's own tool.
        saved = await demo.server.tools.execute(
            "save_insight", json.dumps({"text": EARLIER_FACT, "topic": "work"}),
            ToolContext(user_id=MEMORY_USER, persona_id="capture", call_id="earlier-call"),
            allowed=("save_insight",),
        )  # fmt: skip
        assert saved.status == "ok", saved.output
        # A new call on the assistant persona: the question, spoken (no random noise: the same audio every run).
        pcm = speak_piper(QUESTION)
        async with DemoCaller.open(demo.url, user_id=MEMORY_USER, persona="assistant") as caller:
            turn = await caller.say(QUESTION, bytes(24000) + pcm)
        if caller.call_id:
            await demo.calls.settled(caller.call_id)
    story = f"heard {turn.heard!r}; tools {[(t.name, t.arguments, t.output) for t in turn.tools]}; reply {turn.reply!r}"
    assert not turn.errors, f"{turn.errors}; {story}"
    assert "quarterly review" in turn.heard.lower(), story
    retrievals = [t for t in turn.tools if t.name == "retrieve_knowledge" and t.ok]
    assert retrievals, f"the llm brain did not call retrieve_knowledge: {story}"
    assert any(FACT_KEY in t.output.lower() for t in retrievals), f"the memory did not return the fact: {story}"
    assert FACT_KEY in turn.reply.lower(), f"the spoken answer lacks the fact: {story}"
    assert turn.latency_ms is not None, f"the answer was not spoken: {story}"
    assert "{" not in turn.reply and "retrieve" not in turn.reply.lower(), f"the reply reads the tool aloud: {story}"
    print(f"{story}; end of speech -> first audio {turn.latency_ms:.0f} ms")  # shown with -s
