"""Replay a recording (:mod:`.record`) as a scripted server.

:func:`serve_replay` plays the recorded server messages to a client over any
:class:`~aoai_realtime.engine.engine.Channel`, in order. Where the recording has client messages, it waits for
the client to send messages of the same ``type`` before going on, so a client under test drives the replay
exactly as the original client drove the real session. A client message of another type is answered with an
``error`` (code ``replay_mismatch``) and does not advance the replay. With ``pace=True`` the recorded gaps
between server messages are kept (on the given clock); otherwise the replay runs as fast as the client goes.

Recorded WebRTC audio lines are skipped (a replay speaks WebSocket).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConnectionClosed
from .clock import Clock, SystemClock
from .engine import Channel
from .record import read_recording

__all__ = ["Replay", "serve_replay"]


class Replay:
    """A recording ready to serve. ``lines`` are the parsed JSONL lines of :func:`~.record.read_recording`."""

    def __init__(self, lines: Sequence[dict[str, Any]]) -> None:
        self.lines = [line for line in lines if line.get("dir") in ("client", "server")]

    @classmethod
    def load(cls, path: str | Path) -> Replay:
        """Read a recording. OSError when it cannot be read; ValueError (naming the line) when a line is not a
        recorded message, or when it holds no server message to play."""
        lines = read_recording(path)
        for number, line in enumerate(lines, 1):
            if not isinstance(line, dict) or not isinstance(line.get("dir"), str):
                raise ValueError(f"line {number} is not a recorded message; expected a recording made with --record")
            if line["dir"] in ("client", "server") and not isinstance(line.get("msg"), dict):
                raise ValueError(f"line {number} has no message object ('msg')")
        replay = cls(lines)
        if not replay.server_messages():
            raise ValueError("it holds no server message to play")
        return replay

    def server_messages(self) -> list[dict[str, Any]]:
        return [line["msg"] for line in self.lines if line["dir"] == "server"]

    def client_messages(self) -> list[dict[str, Any]]:
        return [line["msg"] for line in self.lines if line["dir"] == "client"]


async def serve_replay(replay: Replay, channel: Channel, *, clock: Clock | None = None, pace: bool = False) -> None:
    """Serve ``replay`` over ``channel``; returns when the recording ends (then closes 1000) or the client leaves."""
    clock = clock or SystemClock()
    last_t: float | None = None
    mismatches = 0
    try:
        for line in replay.lines:
            if line["dir"] == "server":
                if pace and last_t is not None:
                    await clock.sleep(max(0.0, float(line["t"]) - last_t))
                last_t = float(line["t"])
                await channel.send(json.dumps(line["msg"], separators=(",", ":")).encode())
                continue
            expected = line["msg"].get("type")
            while True:
                raw = await channel.recv()
                try:
                    got = json.loads(raw).get("type")
                except (json.JSONDecodeError, AttributeError):
                    got = None
                if got == expected:
                    break
                mismatches += 1
                error = {"type": "error", "event_id": f"event_replay_{mismatches}",
                         "error": {"type": "invalid_request_error", "code": "replay_mismatch",
                                   "message": f"Replay expected a '{expected}' event here, got '{got}'.",
                                   "param": "type", "event_id": None}}  # fmt: skip
                await channel.send(json.dumps(error).encode())
        await channel.close(1000, "replay finished")
    except ConnectionClosed:
        return
