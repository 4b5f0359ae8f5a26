"""The demo page in the real headless Chromium with a fake microphone: two Memory Agent calls (the fact said in the
first is answered in the second), a whole Visit Agent visit (the rules brain conducts it) through to a thread
marked reviewed in the page, and the ``useVoiceAssistant`` hook (start, a turn, unmount hangs up).

Runs in a network namespace this test creates (``unshare -n``, browser-testing.md pitfall 4), as
test_browser_call.py does. Screenshots and what the page saw are kept in ``var/browser-e2e/agents/`` (or
``$AOAI_E2E_ARTIFACTS/agents``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .test_browser_call import NETNS_SETUP, ROOT, _missing

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DRIVER = Path(__file__).with_name("agents_driver.py")


@pytest.fixture(scope="module")
def run() -> tuple[dict[str, Any], Path]:
    missing = _missing()
    if missing:
        pytest.skip(missing)
    outdir = Path(os.environ.get("AOAI_E2E_ARTIFACTS", ROOT / "var" / "browser-e2e")) / "agents"
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "result.json").unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "PWDEBUG"}
    env |= {"ORT_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "1"}
    command = f"{NETNS_SETUP} && exec {sys.executable} {DRIVER} {outdir}"
    done = subprocess.run(
        ["unshare", "-n", "--", "sh", "-c", command], env=env, capture_output=True, text=True, timeout=420
    )
    assert (outdir / "result.json").exists(), done.stderr[-4000:]
    return json.loads((outdir / "result.json").read_text()), outdir


def _step(result: dict[str, Any], name: str) -> dict[str, Any]:
    step = next(s for s in result["steps"] if s["name"] == name)
    assert step["completed"], step
    return step


def _texts(call: dict[str, Any], role: str) -> list[str]:
    return [e["text"] for e in call["transcript"] if e["role"] == role and e["final"]]


def test_memory_agent_saves_in_one_call_and_answers_from_it_in_the_next(run: tuple[dict[str, Any], Path]) -> None:
    result, outdir = run
    capture = _step(result, "capture")["call"]
    assert "quarterly review" in _texts(capture, "user")[0].lower()
    # The page showed the tool the server's sideband ran, with its result.
    [saved] = [t for t in capture["tools"] if t["name"] == "save_insight"]
    assert saved["output"] and "error" not in json.loads(saved["output"]) if saved["output"].startswith("{") else True
    assert any("thursday" in i["text"].lower() for i in result["insights"])
    assistant = _step(result, "assistant")["call"]
    assert assistant["persona"] == "assistant" and "quarterly review" in _texts(assistant, "user")[0].lower()
    # A new call with an empty conversation: the fact can only come from the memory.
    assert any("thursday" in t.lower() for t in _texts(assistant, "assistant"))
    assert [t["name"] for t in assistant["tools"]] == ["retrieve_knowledge"]
    assert assistant["latencies"] and assistant["latencies"][0]["ms"] > 0
    assert {"listening", "thinking", "speaking"} <= set(assistant["states"])
    assert len(result["sessions"]) == 2
    assert (outdir / "demo-memory.png").stat().st_size > 20_000


def test_visit_agent_visit_ends_in_a_thread_the_reviewer_marks_reviewed(run: tuple[dict[str, Any], Path]) -> None:
    result, outdir = run
    visit = _step(result, "visit")["call"]
    assert visit["persona"] == "visit" and len(_texts(visit, "user")) >= 6
    # The page showed the script's tools as the server ran them: answers recorded, then the visit ended.
    names = [t["name"] for t in visit["tools"]]
    assert names.count("record_answer") >= 5 and names[-1] == "end_visit"
    thread = result["thread"]
    assert thread["subject_id"] == "bob" and thread["status"] == "reviewed" and thread["visit_status"] == "completed"
    answers = {a["question_id"]: a for a in thread["answers"]}
    assert answers["medication"]["answer"] == "yes" and answers["general_wellbeing"]["status"] == "answered"
    assert thread["summary"] and isinstance(thread["action_items"], list)
    assert [(r["reviewer"], r["notes"]) for r in thread["reviews"]] == [("Dr. Rivera", "Called back; all fine.")]
    # What the server holds agrees with the page, and the transcript of the visit is in the thread.
    server = result["server_thread"]
    assert server["status"] == "reviewed" and server["reviews"] == thread["reviews"]
    assert any("tired" in t["text"].lower() for t in server["transcript"] if t["role"] == "user")
    assert result["errors"] == []
    assert (outdir / "demo-visit.png").stat().st_size > 20_000


def test_use_voice_assistant_hook_starts_talks_and_hangs_up_on_unmount(run: tuple[dict[str, Any], Path]) -> None:
    result, _ = run
    hook = result["hook"]
    assert hook["states"][:2] == ["idle", "connecting"] and hook["states"][-2:] == ["speaking", "listening"]
    assert any(e["role"] == "user" and e["text"] == "Hello there." for e in hook["transcript"])
    assert any(e["role"] == "assistant" and e["final"] and e["text"] for e in hook["transcript"])
    assert hook["live_calls_during"] == 1
    assert hook["live_calls_after_unmount"] == 0  # the unmount's cleanup hung the call up on the server
