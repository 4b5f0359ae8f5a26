"""End to end in the real headless Chromium: a spoken turn through the SDP proxy with the local engine, answered
through a server-side tool.

The run happens in a network namespace this test creates (``unshare -n``: ``lo`` plus a veth pair with the
test's own addresses 10.99.0.1/10.99.0.2, browser-testing.md pitfall 4), so no packet can leave it. The
screenshot and what the page saw are kept in ``var/browser-e2e/`` (or ``$AOAI_E2E_ARTIFACTS``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("e2e_driver.py")
NETNS_SETUP = (
    "ip link set lo up && ip link add e2e0 type veth peer name e2e1 "
    "&& ip addr add 10.99.0.1/24 dev e2e0 && ip addr add 10.99.0.2/24 dev e2e1 "
    "&& ip link set e2e0 up && ip link set e2e1 up"
)


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root for its network namespace (unshare -n)"
    for tool in ("unshare", "ip", "flite"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/setup.sh --test)"
    if not Path("/usr/bin/chromium").exists():
        return "Debian's chromium is not installed (apt-get install chromium)"
    return None


def run_driver(scenario: str) -> tuple[dict[str, Any], Path]:
    missing = _missing()
    if missing:
        pytest.skip(missing)
    outdir = Path(os.environ.get("AOAI_E2E_ARTIFACTS", ROOT / "var" / "browser-e2e")) / scenario
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "result.json").unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "PWDEBUG"}  # PWDEBUG would launch a headed browser
    command = f"{NETNS_SETUP} && exec {sys.executable} {DRIVER} {outdir} 90 {scenario}"
    done = subprocess.run(
        ["unshare", "-n", "--", "sh", "-c", command], env=env, capture_output=True, text=True, timeout=240
    )
    assert (outdir / "result.json").exists(), done.stderr[-3000:]
    result = json.loads((outdir / "result.json").read_text())
    assert result["completed"], result
    assert result["errors"] == []
    return result, outdir


def test_spoken_turn_in_chromium_through_the_sdp_proxy() -> None:
    result, outdir = run_driver("tool")
    states = result["states"]
    assert states[:3] == ["connecting", "connected", "listening"]
    # speaking comes after thinking and ends back in listening (at output_audio_buffer.stopped)
    assert states.index("thinking") < states.index("speaking") < len(states) - 1
    assert states[-1] == "listening"
    user = [e for e in result["transcript"] if e["role"] == "user"]
    assistant = [e for e in result["transcript"] if e["role"] == "assistant"]
    assert "weather" in user[0]["text"].lower()
    # The persona's tool ran on the server (the sideband), for this user and persona, with the user's words; the
    # spoken answer came from its result.
    [call] = result["server_tool_calls"]
    assert (call["user"], call["persona"]) == ("e2e", "assistant") and "weather" in call["arguments"]["query"].lower()
    answer = next(e for e in assistant if e["final"] and e["text"])
    assert "sunny" in answer["text"]
    assert result["latencies"][0]["speechStoppedToAudioMs"] > 0
    assert (outdir / "browser-call.png").stat().st_size > 10_000


def test_barge_in_in_chromium_cuts_the_answer_at_what_was_heard() -> None:
    result, outdir = run_driver("bargein")
    transcript = result["transcript"]
    cut = next(i for i, e in enumerate(transcript) if e["role"] == "assistant" and e["interrupted"])
    # What the user heard of the forecast, and no more: a real, non-empty part of the long answer.
    heard = transcript[cut]["text"]
    full = "Here is what I found: forecast: " + result["server_tool_calls"][0]["forecast"]
    assert heard and len(heard) < len(full) / 2 and full.startswith(heard.rstrip())
    interruption = next(e for e in transcript[cut:] if e["role"] == "user")
    assert "stop" in interruption["text"].lower()
    assert any(e["role"] == "assistant" and e["final"] and e["text"] for e in transcript[cut + 1 :])
    states = result["states"]
    assert "speaking" in states and states[-1] == "listening"
    assert (outdir / "browser-call.png").stat().st_size > 10_000
