"""Headless Chromium against the local engine from a page on another origin (issue 13 items 1-3): a data-channel
only text call (CORS, no audio m-line), and the project's own browser client with ``webrtcfilter`` off and on.
Runs in a network namespace of its own, as test_browser_call.py does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aoai_realtime.engine.calls import WEBRTC_FILTER

from .test_browser_call import NETNS_SETUP, ROOT, _missing

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DRIVER = Path(__file__).with_name("engine_driver.py")


def run(scenario: str) -> dict[str, Any]:
    missing = _missing()
    if missing:
        pytest.skip(missing)
    outdir = Path(os.environ.get("AOAI_E2E_ARTIFACTS", ROOT / "var" / "browser-e2e")) / f"engine-{scenario}"
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "result.json").unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "PWDEBUG"}
    command = f"{NETNS_SETUP} && cd {DRIVER.parent} && exec {sys.executable} {DRIVER} {outdir} 60 {scenario}"
    done = subprocess.run(["unshare", "-n", "--", "sh", "-c", command], env=env, capture_output=True, text=True,
                          timeout=180)  # fmt: skip
    assert (outdir / "result.json").exists(), done.stderr[-3000:]
    result: dict[str, Any] = json.loads((outdir / "result.json").read_text())
    assert result["completed"], result
    page: dict[str, Any] = result["page"]
    return page


def test_a_page_on_another_origin_makes_a_data_channel_only_text_call() -> None:
    page = run("textchat")
    assert page["offerHasAudio"] is False and page["status"] == 201
    assert page["session"]["output_modalities"] == ["text"]
    assert "response.output_audio.delta" not in page["events"]
    assert page["text"] == "It is sunny and warm today."
    assert page["hangup"] == 200  # its own secret may hang up its own call, cross-origin


@pytest.mark.parametrize("scenario", ["voice", "voice-filtered"])
def test_the_project_browser_client_completes_a_spoken_turn(scenario: str) -> None:
    page = run(scenario)
    states = page["states"]
    assert states[:3] == ["connecting", "connected", "listening"]
    assert states.index("thinking") < states.index("speaking") and states[-2:] == ["listening", "idle"]
    assert any(e["role"] == "user" and "weather" in e["text"].lower() for e in page["transcript"])
    assert any(e["role"] == "assistant" and "sunny" in e["text"] for e in page["transcript"])
    if scenario == "voice-filtered":
        assert set(page["events"]) <= WEBRTC_FILTER
    else:
        assert {"session.created", "response.created", "response.done"} <= set(page["events"])


def test_a_filtered_text_reply_brings_the_project_client_back_to_listening() -> None:
    page = run("text-reply-filtered")  # no response.done reaches the page: the text's end ends the reply
    assert page["states"][-2:] == ["listening", "idle"] and "thinking" in page["states"]
    assert set(page["events"]) <= WEBRTC_FILTER and "response.output_text.done" in page["events"]
