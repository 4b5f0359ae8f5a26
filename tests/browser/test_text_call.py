"""A text-only call from the demo page in the real headless Chromium, with no microphone permission: through the
server's SDP proxy to the local engine, typed turns answered by the server (its response arbiter creates each
reply; the page sends no ``response.create``), the memory agent's tools run on the sideband.

Runs in a network namespace this test creates (``unshare -n``, browser-testing.md pitfall 4), as
test_browser_call.py does. What the page saw is kept in ``var/browser-e2e/text-call/`` (or
``$AOAI_E2E_ARTIFACTS/text-call``)."""

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

DRIVER = Path(__file__).with_name("text_call_driver.py")


@pytest.fixture(scope="module")
def run() -> dict[str, Any]:
    missing = _missing()
    if missing:
        pytest.skip(missing)
    outdir = Path(os.environ.get("AOAI_E2E_ARTIFACTS", ROOT / "var" / "browser-e2e")) / "text-call"
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "result.json").unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "PWDEBUG"}
    env |= {"ORT_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "1"}
    command = f"{NETNS_SETUP} && cd {DRIVER.parent} && exec {sys.executable} {DRIVER} {outdir}"
    done = subprocess.run(
        ["unshare", "-n", "--", "sh", "-c", command], env=env, capture_output=True, text=True, timeout=300
    )
    assert (outdir / "result.json").exists(), done.stderr[-4000:]
    result: dict[str, Any] = json.loads((outdir / "result.json").read_text())
    return result


def _step(result: dict[str, Any], name: str) -> dict[str, Any]:
    step = next(s for s in result["steps"] if s["name"] == name)
    assert step["completed"], step
    return step


def _audio_direction(offer: str) -> str | None:
    """The direction of the offer's audio section (None: no audio section)."""
    sections = offer.split("\nm=")
    audio = next((s for s in sections if s.startswith("audio ")), None)
    if audio is None:
        return None
    return next((d for d in ("sendrecv", "sendonly", "recvonly", "inactive") if f"a={d}" in audio), "sendrecv")


def _replies_after(call: dict[str, Any], text: str) -> list[str]:
    entries = call["transcript"]
    at = next(i for i, e in enumerate(entries) if e["role"] == "user" and e["text"] == text)
    return [e["text"] for e in entries[at + 1 :] if e["role"] == "assistant" and e["final"]]


def test_type_only_call_never_asks_for_the_microphone_and_gets_a_reply(run: dict[str, Any]) -> None:
    step = _step(run, "type-only")
    assert step["getUserMedia_calls"] == 0 and step["permission"] != "granted"
    assert _audio_direction(step["offer"]) == "recvonly"  # the assistant is heard; nothing is sent
    assert step["mic_line_visible"] and step["mic_line"].startswith("Microphone off (type only)")
    call = step["call"]
    assert call["microphone"] == {"on": False, "reason": "off"}
    assert len(_replies_after(call, call["typed"][0])) == 1  # one reply to one typed turn
    # The server's sideband ran the persona's tool on the typed words, and the fact is in the memory.
    assert [t["name"] for t in call["tools"]] == ["save_insight"]
    assert any("thursday" in i["text"].lower() for i in run["insights"])
    assert step["errors"] == []


def test_a_refused_microphone_leaves_a_typed_call_that_answers_from_memory(run: dict[str, Any]) -> None:
    step = _step(run, "refused")
    assert step["getUserMedia_calls"] == 1 and step["permission"] != "granted"
    assert step["mic_line_visible"] and step["mic_line"].startswith("Microphone off: access to it was refused")
    call = step["call"]
    assert call["microphone"] == {"on": False, "reason": "refused"}
    assert _audio_direction(step["offer"]) == "recvonly"
    [reply] = _replies_after(call, call["typed"][0])
    assert "thursday" in reply.lower()  # a new call: the fact can only come from the memory (retrieve_knowledge)
    assert [t["name"] for t in call["tools"]] == ["retrieve_knowledge"]
    assert {"listening", "thinking"} <= set(call["states"]) and step["errors"] == []


def test_with_no_microphone_at_all_the_call_goes_on_by_typing(run: dict[str, Any]) -> None:
    step = _step(run, "no-microphone")
    assert step["getUserMedia_calls"] == 1 and step["call"]["microphone"] == {"on": False, "reason": "none"}
    assert step["mic_line_visible"] and step["mic_line"].startswith("Microphone off: no microphone was found")
    call = step["call"]
    assert len(_replies_after(call, call["typed"][0])) == 1
    assert [t["name"] for t in call["tools"]] == ["save_insight"] and step["errors"] == []


def test_a_data_channel_only_offer_through_the_proxy_gets_a_text_reply(run: dict[str, Any]) -> None:
    call = run["data_channel_only"]
    assert call["error"] is None and _audio_direction(call["offer"]) is None
    assert call["errors"] == []  # the sideband cancelled nothing
    assert any(e["role"] == "assistant" and e["final"] and e["text"] for e in call["transcript"])
