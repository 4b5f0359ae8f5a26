"""``aoai-realtime engine`` start-up refusals and its log lines, as a real process (issue 13 items 8, 11): a bad
port, a missing or broken replay file and a port in use are one clear line and a non-zero exit before anything
is printed as started; a key sent as ``?api-key=`` never reaches the log."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from websockets.sync.client import connect

pytestmark = pytest.mark.integration

ENV = {"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1", "AOAI_ENGINE_API_KEY": "query-secret-4711"}
COMMAND = [sys.executable, "-c", "from aoai_realtime.cli import main; main()", "engine", "--speech", "fake"]


def refused(*args: str) -> str:
    """Run the engine with ``args``; it must exit non-zero without starting. Returns what it printed."""
    done = subprocess.run([*COMMAND, *args], capture_output=True, text=True, env=ENV, timeout=60)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "engine on" not in output and "API key" not in output and "startup complete" not in output
    assert "Traceback" not in output
    return output


def test_a_port_out_of_range_is_refused() -> None:
    output = refused("--port", "99999")
    assert "--port" in output and "65535" in output


def test_a_missing_or_broken_replay_file_is_refused(tmp_path: Path) -> None:
    assert "cannot replay" in refused("--port", "0", "--replay", str(tmp_path / "missing.jsonl"))
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"t": 0, "dir": "server", "msg": {"type": "session.created"}}\nnot json\n')
    assert "line 2 is not JSON" in refused("--port", "0", "--replay", str(broken))


def test_a_port_in_use_is_one_line_and_exit_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        output = refused("--port", str(port))
    (line,) = [line for line in output.splitlines() if line.strip() and "loading" not in line]
    assert f"cannot listen on 127.0.0.1:{port}" in line and "--port" in line


def test_a_query_string_key_never_reaches_the_log() -> None:
    proc = subprocess.Popen([*COMMAND, "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=ENV)  # fmt: skip
    assert proc.stdout is not None
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if "Application startup complete" in line:
                break
        url = next(line.split()[2] for line in lines if line.startswith("engine on "))
        key = ENV["AOAI_ENGINE_API_KEY"]
        with connect(url.replace("http://", "ws://") + f"/v1/realtime?model=gpt-realtime&api-key={key}") as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "session.created"
        request = urllib.request.Request(url + f"/v1/realtime/client_secrets?api-key={key}", data=b"{}",
                                         headers={"Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200
    finally:
        proc.terminate()
        rest, _ = proc.communicate(timeout=10)
    log = "".join(lines) + rest
    assert "api-key=***" in log and "client_secrets?api-key=***" in log  # the lines are there, masked
    assert key not in log
