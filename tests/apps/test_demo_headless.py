"""``aoai-realtime demo --headless`` in the suite: both agents end to end through the demo's own stack (the local
engine with the rules brain, the server's SDP proxy and sideband, both agents and their post-call pipelines), real
WebRTC on 127.0.0.1: typed turns, then synthesised speech (slow), then the command's exit status when an
expectation fails. The language-model run is not here: on this shared machine it takes minutes (see docs/demo.md).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aoai_realtime.apps.demo.headless import HISTORY_KEY, run_headless
from aoai_realtime.apps.demo.stack import DemoOptions, open_demo

pytestmark = pytest.mark.integration

def _lines(out: io.StringIO) -> list[str]:
    return out.getvalue().splitlines()


async def test_headless_run_with_typed_turns_passes_every_check(tmp_path: Path) -> None:
    out = io.StringIO()
    options = DemoOptions(data_dir=tmp_path, port=0, speech="fake", upstream="local", brain="rules")
    async with open_demo(options, say=lambda line: print(line, file=out)) as demo:
        run = await run_headless(demo, say=lambda line: print(line, file=out), spoken=False)
        threads = await demo.visit.threads("bob")
        ann_insights, bob_insights = await demo.memory.insights("ann"), await demo.memory.insights("bob")
    lines = _lines(out)
    assert run.all_ok, out.getvalue()
    assert [line for line in lines if line.startswith(("memory-agent:", "visit-agent:"))] == [
        line for line in lines if line.endswith(" ... ok")
    ]
    assert lines[-1].startswith("visit-agent:") and lines[-1].endswith("ok")
    assert any(line.startswith("memory-agent:") and line.endswith("ok") for line in lines)
    # Printed readably: who said what, tools by name with their result, latency labelled.
    assert "  ann (typed): Please remember that the quarterly review moves to Thursday at three." in lines
    assert any(line.startswith("    tool save_insight -> ok: ") for line in lines)
    assert any(line.startswith("    tool record_answer -> ok: ") for line in lines)
    assert any(line.startswith("    tool end_visit -> ok: ") for line in lines)
    assert any(line.startswith("    latency: text sent -> first audio ") and line.endswith(" ms") for line in lines)
    # Two visits of one subject: two threads, the first completed; the memory fact belongs to Ann alone.
    assert len(threads) == 2
    assert any("thursday" in i["text"].lower() for i in ann_insights) and bob_insights == []


def test_headless_command_exits_1_with_failed_lines_when_the_brain_cannot_do_the_job(tmp_path: Path) -> None:
    from aoai_realtime.cli import _register_all, app

    _register_all()
    mute = tmp_path / "mute.json"  # a brain that only ever says one thing: no tool is ever called
    mute.write_text(json.dumps({"turns": [], "fallback": "Sorry, I cannot help with that."}))
    result = CliRunner().invoke(app, ["demo", "--headless", "--speech", "fake", "--brain", f"scripted:{mute}",
                                      "--local", "--data-dir", str(tmp_path / "data")])  # fmt: skip
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    verdicts = [line for line in lines if line.startswith(("memory-agent:", "visit-agent:"))]
    assert [v.split(":")[0] for v in verdicts] == ["memory-agent", "visit-agent"]
    assert all(v.endswith("FAILED") for v in verdicts) and lines[-1] == verdicts[-1]
    assert "  check: session 1 saved the fact with save_insight: FAILED (tools called: none)" in lines


@pytest.mark.slow
async def test_headless_run_with_synthesised_speech(tmp_path: Path) -> None:
    out = io.StringIO()
    options = DemoOptions(data_dir=tmp_path, port=0, speech="full", upstream="local", brain="rules")
    async with open_demo(options, say=lambda line: print(line, file=out)) as demo:
        run = await run_headless(demo, say=lambda line: print(line, file=out), spoken=True)
    assert run.all_ok, out.getvalue()
    lines = _lines(out)
    # The engine heard the spoken lines (Whisper on the engine's own voice) and every turn was answered in audio.
    assert "    heard: When is the quarterly review?" in lines
    assert any(line.startswith("    latency: end of speech -> first audio ") for line in lines)
    assert all(t.latency_ms is not None for turns in run.turns.values() for t in turns)
    assert HISTORY_KEY in out.getvalue().lower()


def test_cli_refuses_a_busy_port_and_a_bad_script_in_one_line(tmp_path: Path) -> None:
    import socket

    from aoai_realtime.cli import _register_all, app

    _register_all()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ["demo", "--port", str(port), "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"demo: port {port} on 127.0.0.1 is busy (another demo or server?); pass --port with a free port, "
        "or --port 0 to pick one"
    )
    bad = tmp_path / "visit.yaml"
    bad.write_text("id: x\ntitle: X\nquestions: []\n")
    result = CliRunner().invoke(app, ["demo", "--port", "0", "--script", str(bad), "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    [line] = result.output.strip().splitlines()
    assert line.startswith("demo: visit.yaml: questions: the script has no questions") and "--script" in line
