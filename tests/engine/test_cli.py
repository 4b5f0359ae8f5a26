"""``aoai-realtime engine`` as a real process: prints its URL and a generated key, serves WebSocket sessions."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from websockets.sync.client import connect

pytestmark = pytest.mark.integration


def test_engine_command_generates_a_key_and_serves(tmp_path: object) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from aoai_realtime.cli import main; main()",
         "engine", "--port", "0", "--speech", "fake"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    try:
        assert proc.stdout is not None
        url = key = None
        for line in proc.stdout:
            if m := re.search(r"engine on (http://127\.0\.0\.1:\d+)", line):
                url = m.group(1)
            if m := re.search(r"API key \(generated\): (\S+)", line):
                key = m.group(1)
            if "Uvicorn running" in line:
                break
        assert url and key and key.startswith("sk-local-")
        ws_url = url.replace("http://", "ws://") + "/v1/realtime?model=gpt-realtime"
        with connect(ws_url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "session.created"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_engine_command_serves_tls_with_a_self_signed_certificate() -> None:
    import ssl

    env = {"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1", "AOAI_ENGINE_API_KEY": "tls-key"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from aoai_realtime.cli import main; main()",
         "engine", "--port", "0", "--speech", "fake", "--tls-self-signed"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = cert = None
        for line in proc.stdout:
            if m := re.search(r"self-signed certificate: (\S+)", line):
                cert = m.group(1)
            if m := re.search(r"engine on (https://127\.0\.0\.1:\d+)", line):
                url = m.group(1)
            if "Uvicorn running" in line:
                break
        assert url and cert
        context = ssl.create_default_context(cafile=cert)
        ws_url = url.replace("https://", "wss://") + "/v1/realtime?model=gpt-realtime"
        with connect(ws_url, additional_headers={"Authorization": "Bearer tls-key"}, ssl=context) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "session.created"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
