"""The README's main job, run as a user would (in-process, with the model-free speech bundle)."""

from __future__ import annotations

import io

from rich.console import Console

from aoai_realtime.demo import run_demo


async def test_demo_conversation_uses_tools_and_hears_the_spoken_question() -> None:
    out = io.StringIO()
    turns = await run_demo(speech="fake", console=Console(file=out, width=200))
    assert len(turns) == 3
    saved, spoken = turns[1], turns[2]
    assert any(t.startswith("save_note(") for t in saved.tools)
    assert spoken.spoken
    assert spoken.heard.strip().lower().rstrip("?") == "when is the quarterly review"
    assert any(t.startswith("search_notes(") and "Thursday" in t for t in spoken.tools)
    assert all(t.latency_ms is not None for t in turns)  # every turn was answered with audio
    assert "summary" in out.getvalue()
