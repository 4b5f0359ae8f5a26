"""Record a session to JSONL: every client and server message with its time, plus WebRTC audio.

One line per message: ``{"t": seconds since the recording started, "dir": "client"|"server", "msg": {...}}``;
WebRTC media (which travels beside the messages) as ``{"t", "dir": "audio_in"|"audio_out", "pcm": base64}``.
Audio sent as events (``input_audio_buffer.append``, ``response.output_audio.delta``) is inside ``msg``.
:mod:`.replay` plays a recording back as a scripted server.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import IO, Any

from .clock import Clock

__all__ = ["Recorder", "read_recording"]


class Recorder:
    """Appends one session's traffic to a JSONL file. Call :meth:`close` when the session ends."""

    def __init__(self, stream: IO[str], *, clock: Clock) -> None:
        self._stream = stream
        self._clock = clock
        self._t0: float | None = None

    @classmethod
    def open(cls, path: str | Path, *, clock: Clock) -> Recorder:
        """Record to ``path`` (its directory is created)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        return cls(
            target.open("w", encoding="utf-8", buffering=1), clock=clock
        )  # line-buffered: a crash keeps what was seen

    def _t(self) -> float:
        now = self._clock.now()
        if self._t0 is None:
            self._t0 = now
        return round(now - self._t0, 4)

    def _write(self, line: dict[str, Any]) -> None:
        if not self._stream.closed:
            self._stream.write(json.dumps(line, separators=(",", ":")) + "\n")

    def client(self, message: bytes | str) -> None:
        self._message("client", message)

    def server(self, message: bytes | str) -> None:
        self._message("server", message)

    def _message(self, direction: str, message: bytes | str) -> None:
        try:
            msg = json.loads(message)
        except (json.JSONDecodeError, UnicodeDecodeError):
            msg = {"raw": message.decode("utf-8", "replace") if isinstance(message, bytes) else message}
        self._write({"t": self._t(), "dir": direction, "msg": msg})

    def audio_in(self, pcm: bytes) -> None:
        self._write({"t": self._t(), "dir": "audio_in", "pcm": base64.b64encode(pcm).decode("ascii")})

    def audio_out(self, pcm: bytes) -> None:
        self._write({"t": self._t(), "dir": "audio_out", "pcm": base64.b64encode(pcm).decode("ascii")})

    def close(self) -> None:
        if not self._stream.closed:
            self._stream.close()


def read_recording(path: str | Path) -> list[dict[str, Any]]:
    """The lines of a recording, in order."""
    lines = []
    with Path(path).open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                lines.append(json.loads(line))
    return lines
