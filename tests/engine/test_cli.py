"""``aoai-realtime engine`` as a real process: prints its URL and a generated key, serves WebSocket sessions."""

from __future__ import annotations

import contextlib
import json
import re
import ssl
import subprocess
import sys
from collections.abc import Iterator

import pytest
from websockets.sync.client import connect

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def engine_process(*args: str, env: dict[str, str]) -> Iterator[dict[str, str]]:
    """``aoai-realtime engine --port 0 --speech fake ARGS`` as a process; yields what it printed before uvicorn
    was up: ``url``, and ``key`` / ``cert`` when it printed a generated key or a self-signed certificate."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "from aoai_realtime.cli import main; main()",
         "engine", "--port", "0", "--speech", "fake", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={"PATH": "/usr/bin:/bin",
                                                                          "PYTHONUNBUFFERED": "1", **env},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        seen: dict[str, str] = {}
        patterns = {"url": r"engine on (https?://127\.0\.0\.1:\d+)", "key": r"API key \(generated\): (\S+)",
                    "cert": r"self-signed certificate: (\S+)"}  # fmt: skip
        for line in proc.stdout:
            for name, pattern in patterns.items():
                if m := re.search(pattern, line):
                    seen[name] = m.group(1)
            if "Application startup complete" in line:
                break
        yield seen
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_engine_command_generates_a_key_and_serves() -> None:
    with engine_process(env={}) as seen:
        url, key = seen.get("url"), seen.get("key")
        assert url and url.startswith("http://") and key and key.startswith("sk-local-")
        ws_url = url.replace("http://", "ws://") + "/v1/realtime?model=gpt-realtime"
        with connect(ws_url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "session.created"


def test_engine_command_serves_tls_with_a_self_signed_certificate() -> None:
    with engine_process("--tls-self-signed", env={"AOAI_ENGINE_API_KEY": "tls-key"}) as seen:
        url, cert = seen.get("url"), seen.get("cert")
        assert url and url.startswith("https://") and cert and "key" not in seen
        context = ssl.create_default_context(cafile=cert)
        ws_url = url.replace("https://", "wss://") + "/v1/realtime?model=gpt-realtime"
        with connect(ws_url, additional_headers={"Authorization": "Bearer tls-key"}, ssl=context) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "session.created"
