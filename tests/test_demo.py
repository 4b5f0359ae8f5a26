"""The README's main job, run as a user would (in-process, with the model-free speech bundle)."""

from __future__ import annotations

import io

from rich.console import Console

from aoai_realtime.demo import run_demo


async def test_demo_saves_in_one_call_and_answers_the_spoken_question_from_memory_in_the_next() -> None:
    out = io.StringIO()
    turns = await run_demo(speech="fake", console=Console(file=out, width=200))
    assert len(turns) == 3
    saved, spoken = turns[1], turns[2]
    assert any(t.startswith("save_insight(") and '"ok": true' in t for t in saved.tools)
    assert spoken.spoken
    assert spoken.heard.strip().lower().rstrip("?") == "when is the quarterly review"
    # A new session with an empty conversation: the answer can only come from memory (hybrid retrieval).
    assert "call-2: a new session" in out.getvalue()
    assert any(t.startswith("retrieve_knowledge(") and "Thursday at three" in t for t in spoken.tools)
    assert "Thursday" in spoken.reply
    assert all(t.latency_ms is not None for t in turns)  # every turn was answered with audio
    assert "summary" in out.getvalue()
