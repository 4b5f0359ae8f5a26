"""The browser module keeps the same speaking state machine as the Python VoiceAssistant (the table is
compared entry by entry, through node), and the server serves it as an ES module with the demo page."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from aoai_realtime.agents.state import TRANSITIONS
from aoai_realtime.server import STATIC_DIR

from .support import MakeServer

MODULE = STATIC_DIR / "realtime-call.js"


@pytest.mark.integration
def test_js_state_table_equals_the_python_one(tmp_path: pytest.TempPathFactory) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    copy = tmp_path / "realtime-call.mjs"  # type: ignore[operator]
    copy.write_text(MODULE.read_text())
    script = f"import('{copy}').then((m) => console.log(JSON.stringify([...m.TRANSITIONS])))"
    out = subprocess.run([node, "-e", script], capture_output=True, text=True, check=True, timeout=30).stdout
    js = {tuple(key.split("|")): value for key, value in json.loads(out)}
    python = {(state.value, trigger.value): target.value for (state, trigger), target in TRANSITIONS.items()}
    assert js == python


@pytest.mark.integration
async def test_the_client_and_demo_page_are_served(make_server: MakeServer) -> None:
    _, client = await make_server()
    module = await client.get("/realtime-call.js")
    assert module.status_code == 200
    assert "javascript" in module.headers["content-type"]
    assert "export class RealtimeCall" in module.text
    page = await client.get("/")
    assert page.status_code == 200
    assert 'type="module"' in page.text
    assert (await client.get("/demo.js")).status_code == 200
