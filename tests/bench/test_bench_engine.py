"""``aoai-realtime bench engine`` runs (fake speech, few turns) and its --json has the documented shape."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from aoai_realtime.cli import _register_all, app


def run(*args: str) -> dict[str, object]:
    _register_all()
    result = CliRunner().invoke(app, ["bench", "engine", "--speech", "fake", "--turns", "2", "--json", *args])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output.strip().splitlines()[-1])
    assert isinstance(out, dict)
    return out


def test_json_has_first_audio_parts_turns_brain_and_speech() -> None:
    out = run("--brain", "rules")
    assert set(out) == {"first_audio_ms", "parts_ms", "turns", "brain", "speech"}
    assert out["turns"] == 2 and out["brain"] == "rules" and out["speech"] == "fake"
    first = out["first_audio_ms"]
    assert isinstance(first, dict) and set(first) == {"p50", "p95"} and first["p50"] <= first["p95"]
    parts = out["parts_ms"]
    assert isinstance(parts, dict)
    assert set(parts) == {"vad_decision", "transcript_ready", "brain_first_token", "first_clause_synthesised",
                          "first_delta"}  # fmt: skip
    assert parts["first_delta"] == first


def test_concurrency_adds_the_largest_k_held() -> None:
    out = run("--brain", "scripted", "--concurrency", "--max-calls", "1")
    assert "transcript_ready" not in out["parts_ms"]  # type: ignore[operator]  # a script does not wait for one
    assert out["max_realtime_calls"] in (0, 1)


def test_an_unknown_brain_is_one_clear_error() -> None:
    _register_all()
    result = CliRunner().invoke(app, ["bench", "engine", "--brain", "smart"])
    assert result.exit_code != 0
    assert "use scripted, rules or llm" in result.output


def test_the_caller_hears_each_answer_out_before_the_next_question() -> None:
    """``response.done`` comes when an answer's last audio is sent, seconds before it is heard; a caller speaking
    then would overlap the answer and load the engine with turns no real call makes."""
    import asyncio

    from aoai_realtime.bench.engine import run_bench

    result = asyncio.run(run_bench(speech="fake", brain="rules", calls=1, turns=2, silence_ms=300))
    first, second = result.turns
    assert first.heard_out > first.marks["first_delta"]  # the answer had audio to play
    assert second.question_sent > first.heard_out
