"""Record and replay (issue item 6), and relay mode against a second local engine.

``data/scripted_session.jsonl`` was recorded from the engine (scripted brain, tone speech, deterministic ids)
by running this module: ``.venv/bin/python -m tests.engine.test_record_replay``. The regression test runs the
same client script against today's engine and requires the same server messages (event ids aside).
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any, Protocol

import pytest
import websockets

from aoai_realtime.engine import CallTool, Engine, EngineConfig, Say, ScriptedBrain
from aoai_realtime.engine.record import read_recording
from aoai_realtime.engine.relay import RelayTarget
from aoai_realtime.engine.replay import Replay, serve_replay
from aoai_realtime.testing.engine import EngineHarness, load_test_speech, serve_engine
from aoai_realtime.transport.memory import memory_pair

RECORDING = Path(__file__).parent / "data" / "scripted_session.jsonl"
TOOL = {"type": "function", "name": "lookup", "description": "Look things up.",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}
CLIENT_SCRIPT: list[dict[str, Any]] = [
    {"type": "session.update", "session": {"type": "realtime", "tools": [TOOL], "instructions": "Be brief."}},
    {"type": "conversation.item.create", "item": {"type": "message", "role": "user",
                                                  "content": [{"type": "input_text", "text": "Hello!"}]}},
    {"type": "response.create"},
    {"type": "conversation.item.create", "item": {"type": "message", "role": "user",
                                                  "content": [{"type": "input_text", "text": "Look up tea."}]}},
    {"type": "response.create", "response": {"output_modalities": ["text"]}},
]


def scripted_brain() -> ScriptedBrain:
    return ScriptedBrain([[Say("Hi! Nice to meet you.")], [Say("Looking."), CallTool("lookup", '{"query": "tea"}')]])


class Pipe(Protocol):
    async def send(self, message: bytes) -> None: ...
    async def recv(self) -> bytes: ...


async def drive(pipe: Pipe) -> list[dict[str, Any]]:
    """Run CLIENT_SCRIPT, waiting for each response; returns every server message."""
    received: list[dict[str, Any]] = []

    async def until(kind: str) -> None:
        while True:
            msg = json.loads(await pipe.recv())
            received.append(msg)
            if msg["type"] == kind:
                return

    await until("session.created")
    for event in CLIENT_SCRIPT:
        await pipe.send(json.dumps(event).encode())
        await until({"session.update": "session.updated", "conversation.item.create": "conversation.item.done",
                     "response.create": "rate_limits.updated"}[event["type"]])
    return received


def without_event_ids(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for m in messages:
        m = dict(m)
        m.pop("event_id", None)
        if m["type"] in ("session.created", "session.updated"):
            m["session"] = {k: v for k, v in m["session"].items() if k != "expires_at"}
        out.append(m)
    return out


async def record(path: Path) -> None:
    engine = Engine(EngineConfig(api_key="k", brain=scripted_brain, speech=load_test_speech("fake"),
                                 deterministic_ids=True, record_dir=path.parent))
    async with EngineHarness(engine) as harness:
        await drive(harness.connect())
    session_file = next(path.parent.glob("sess_*.jsonl"))
    session_file.replace(path)


async def test_engine_still_sends_what_it_recorded() -> None:
    recorded = [line["msg"] for line in read_recording(RECORDING) if line["dir"] == "server"]
    engine = Engine(EngineConfig(api_key="k", brain=scripted_brain, speech=load_test_speech("fake"),
                                 deterministic_ids=True))
    async with EngineHarness(engine) as harness:
        now = await drive(harness.connect())
    assert without_event_ids(now) == without_event_ids(recorded)


async def test_replay_serves_the_recording_to_the_same_client_script() -> None:
    replay = Replay.load(RECORDING)
    client, server = memory_pair()
    task = asyncio.create_task(serve_replay(replay, server))
    got = await drive(client)
    await task
    assert got == replay.server_messages()
    assert [m["type"] for m in replay.client_messages()] == [m["type"] for m in CLIENT_SCRIPT]


async def test_replay_answers_a_diverging_client_with_an_error() -> None:
    client, server = memory_pair()
    task = asyncio.create_task(serve_replay(Replay.load(RECORDING), server))
    assert json.loads(await client.recv())["type"] == "session.created"
    await client.send(b'{"type": "response.cancel"}')
    error = json.loads(await client.recv())
    assert error["error"]["code"] == "replay_mismatch" and "session.update" in error["error"]["message"]
    await client.close()
    await task


async def test_recording_has_timing_and_both_directions(tmp_path: Path) -> None:
    await record(tmp_path / "r.jsonl")
    lines = read_recording(tmp_path / "r.jsonl")
    assert {line["dir"] for line in lines} == {"client", "server"}
    times = [line["t"] for line in lines]
    assert times == sorted(times) and times[0] == 0
    deltas = [line for line in lines if line["msg"]["type"] == "response.output_audio.delta"]
    assert deltas, "audio travels inside the recorded events"


@pytest.mark.integration
async def test_relay_forwards_to_an_upstream_engine_and_records(tmp_path: Path) -> None:
    upstream = Engine(EngineConfig(api_key="upstream-key", brain=scripted_brain, speech=load_test_speech("fake"),
                                   deterministic_ids=True))
    async with serve_engine(upstream) as up_url:
        target = RelayTarget(url=up_url.replace("http://", "ws://") + "/v1/realtime", api_key="upstream-key")
        relay = Engine(EngineConfig(api_key="relay-key", brain=scripted_brain, speech=load_test_speech("fake"),
                                    relay=target, record_dir=tmp_path))
        async with serve_engine(relay) as relay_url:
            url = relay_url.replace("http://", "ws://") + "/v1/realtime?model=gpt-realtime"
            async with websockets.connect(url, additional_headers={"api-key": "relay-key"}) as ws:
                got = await drive(ws)  # type: ignore[arg-type]
    recorded = [line["msg"] for line in read_recording(RECORDING) if line["dir"] == "server"]
    assert without_event_ids(got) == without_event_ids(recorded)  # the upstream engine answered, unchanged
    (recording,) = [p for p in os.listdir(tmp_path) if p.startswith("relay_")]
    lines = read_recording(tmp_path / recording)
    assert [line["msg"]["type"] for line in lines if line["dir"] == "client"] == [m["type"] for m in CLIENT_SCRIPT]
    assert "upstream-key" not in json.dumps(lines)


if __name__ == "__main__":
    asyncio.run(record(RECORDING))
