"""Hostile input to one session (issue 13 items 5, 6, 10), each found by sending it: an error event and a
session that goes on, bounded memory, and no byte lost. Driven directly: no sockets, fake clock."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from aoai_realtime.engine import FakeClock, ScriptedBrain
from aoai_realtime.engine.record import Recorder, read_recording
from aoai_realtime.engine.session import MAX_APPEND_BYTES
from aoai_realtime.protocol import events as ev
from aoai_realtime.testing.audio import silence, tone

from .conftest import Probe, make_session, types

VAD_OFF = {"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}}}


def errors(events: list[ev.ServerEvent]) -> list[ev.ErrorDetails]:
    return [e.error for e in events if isinstance(e, ev.RealtimeErrorEvent)]


def append(pcm: bytes, event_id: str = "") -> dict[str, Any]:
    message: dict[str, Any] = {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}
    if event_id:
        message["event_id"] = event_id
    return message


# -- item 5: the input audio buffer is bounded ---------------------------------------------------------------


async def test_appends_past_the_buffer_limit_are_refused_and_the_session_goes_on(probe: Probe) -> None:
    await probe.send(VAD_OFF)
    chunk = b"\x01\x00" * (3 * 1024 * 1024)  # 6 MiB of pcm, 8 MiB of base64: the attack's appends
    refused = []
    for i in range(5):
        refused += errors(await probe.send(append(chunk, f"evt_{i}")))
        assert len(probe.session.buffer) <= probe.session.options.max_input_buffer_bytes
    assert [e.event_id for e in refused] == ["evt_2", "evt_3", "evt_4"]
    assert {e.code for e in refused} == {"input_audio_buffer_full"}
    assert "Commit it" in refused[0].message
    # the session still works: commit what was kept, then appending is possible again
    out = await probe.send({"type": "input_audio_buffer.commit"})
    assert types(out)[0] == "input_audio_buffer.committed"
    assert not errors(await probe.send(append(chunk)))


async def test_one_append_over_15_mib_is_refused_before_decoding(probe: Probe) -> None:
    huge = "A" * (MAX_APPEND_BYTES + 4)
    (error,) = errors(await probe.send({"type": "input_audio_buffer.append", "audio": huge, "event_id": "big"}))
    assert (error.code, error.param, error.event_id) == ("string_above_max_length", "audio", "big")
    assert len(probe.session.buffer) == 0


async def test_with_turn_detection_on_long_silence_is_trimmed(probe: Probe) -> None:
    for _ in range(120):  # two minutes of silence, as a WebRTC caller who never speaks
        assert not errors(await probe.append(silence(1000), chunk_ms=1000))
    assert probe.session.buffer.buffered_ms <= 300 + 1000 + 5000
    # speech after it is still detected and committed with its prefix padding
    out = await probe.append(tone(600) + silence(800), chunk_ms=100)
    started = next(e for e in out if isinstance(e, ev.InputAudioBufferSpeechStartedEvent))
    assert started.audio_start_ms == 120_000 - 300
    assert "input_audio_buffer.committed" in types(out)


async def test_webrtc_audio_past_the_limit_is_reported_once(speech: Any, clock: FakeClock) -> None:
    session = make_session(speech, clock, ScriptedBrain([]), max_input_buffer_bytes=48_000)  # one second
    async with session:
        await session.receive(json.dumps(VAD_OFF))
        session.pending_events()
        for _ in range(5):
            await session.push_audio(silence(400))
        (error,) = errors(session.pending_events())
        assert error.code == "input_audio_buffer_full" and error.event_id is None
        assert session.buffer.buffered_ms == 800  # the appends that fit, none cut in half


# -- item 10: odd-length appends keep every byte -------------------------------------------------------------


async def test_odd_length_appends_carry_the_last_byte_into_the_next(probe: Probe) -> None:
    await probe.send(VAD_OFF)
    pcm = bytes(range(256)) * 40  # 10240 bytes, > 100 ms
    pieces = [pcm[:3], pcm[3:1000], pcm[1000:1001], pcm[1001:5555], pcm[5555:]]
    assert [len(p) % 2 for p in pieces][:4] == [1, 1, 1, 0]
    for piece in pieces:
        await probe.send(append(piece))
    out = await probe.send({"type": "input_audio_buffer.commit"})
    item_id = next(e for e in out if isinstance(e, ev.InputAudioBufferCommittedEvent)).item_id
    entry = probe.session.conversation.get(item_id)
    assert entry is not None and bytes(entry.audio[0]) == pcm


# -- item 6: malformed frames get an error event, never a dead session ---------------------------------------


async def test_deep_nesting_and_huge_integers_get_error_events(probe: Probe) -> None:
    probe.session.pending_events()
    hostile = [
        '{"type": "session.update", "event_id": "deep", "session": {"type": "realtime", "x": '
        + "[" * 100_000
        + "]" * 100_000
        + "}}",
        "[" * 100_000,
        '{"type": "response.create", "event_id": "int", "response": {"max_output_tokens": ' + "9" * 5000 + "}}",
    ]
    for message in hostile:
        await probe.session.receive(message)
    await probe.clock.settle()
    got = errors(probe.session.pending_events())
    assert [e.event_id for e in got] == ["deep", None, "int"]
    assert all(e.type == "invalid_request_error" for e in got)
    out = await probe.send({"type": "session.update", "session": {"type": "realtime", "instructions": "Still here."}})
    assert types(out) == ["session.updated"]


def test_the_recorder_keeps_hostile_messages_as_raw_text(tmp_path: Path, clock: FakeClock) -> None:
    recorder = Recorder.open(tmp_path / "r.jsonl", clock=clock)
    bigint = '{"type": "response.create", "response": {"max_output_tokens": ' + "9" * 5000 + "}}"
    deep = '{"type": "session.update", "session": ' + "[" * 50_000 + "]" * 50_000 + "}"
    recorder.client(bigint)
    recorder.client(deep.encode())
    recorder.server(b'{"type": "session.created"}')
    recorder.close()
    lines = read_recording(tmp_path / "r.jsonl")
    assert [line["msg"].get("raw") for line in lines[:2]] == [bigint, deep]
    assert lines[2]["msg"] == {"type": "session.created"}


def test_a_recording_stops_at_its_limit_and_says_so(tmp_path: Path, clock: FakeClock) -> None:
    recorder = Recorder.open(tmp_path / "r.jsonl", clock=clock, max_bytes=10_000)
    for _ in range(50):
        recorder.client(json.dumps(append(silence(50))))  # ~3.3 kB per line
    recorder.server(b'{"type": "session.updated"}')
    recorder.close()
    assert (tmp_path / "r.jsonl").stat().st_size <= 10_000 + 100
    lines = read_recording(tmp_path / "r.jsonl")
    assert lines[-1]["dir"] == "truncated" and recorder.truncated
    assert all(line["dir"] == "client" for line in lines[:-1]) and len(lines) >= 2
