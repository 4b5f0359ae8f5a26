"""Record a session to JSONL: every client and server message with its time, plus WebRTC audio.

One line per message: ``{"t": seconds since the recording started, "dir": "client"|"server", "msg": {...}}``;
WebRTC media (which travels beside the messages) as ``{"t", "dir": "audio_in"|"audio_out", "pcm": base64}``.
Audio sent as events (``input_audio_buffer.append``, ``response.output_audio.delta``) is inside ``msg``.
A message that is not JSON the recorder can hold (not JSON, nested deeper than the codec accepts, integers
past 64 bits) is kept as ``{"raw": text}``. One recording holds at most ``max_bytes``: past that, one line
``{"t", "dir": "truncated", "bytes": N}`` marks where it stopped and the rest of the session is not written
(the session itself goes on). :mod:`.replay` plays a recording back as a scripted server.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import IO, Any

import msgspec

from ..errors import ProtocolError, get_logger
from ..protocol.codec import check_depth
from .clock import Clock

__all__ = ["DEFAULT_MAX_RECORD_BYTES", "Recorder", "read_recording"]

log = get_logger(__name__)

DEFAULT_MAX_RECORD_BYTES = 256 * 1024 * 1024  # about half an hour of WebRTC audio both ways


class Recorder:
    """Appends one session's traffic to a JSONL file. Call :meth:`close` when the session ends."""

    def __init__(self, stream: IO[str], *, clock: Clock, max_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> None:
        self._stream = stream
        self._clock = clock
        self._t0: float | None = None
        self.max_bytes = max_bytes
        self.written = 0  # bytes written
        self.truncated = False

    @classmethod
    def open(cls, path: str | Path, *, clock: Clock, max_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> Recorder:
        """Record to ``path`` (its directory is created), at most ``max_bytes`` of it."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        return cls(
            target.open("w", encoding="utf-8", buffering=1), clock=clock, max_bytes=max_bytes
        )  # line-buffered: a crash keeps what was seen

    def _t(self) -> float:
        now = self._clock.now()
        if self._t0 is None:
            self._t0 = now
        return round(now - self._t0, 4)

    def _write(self, line: dict[str, Any]) -> None:
        if self._stream.closed or self.truncated:
            return
        data = msgspec.json.encode(line) + b"\n"  # C speed: a recorded 8 MiB append costs milliseconds
        if self.written + len(data) > self.max_bytes:
            self.truncated = True
            name = getattr(self._stream, "name", "the recording")
            log.warning("recording %s reached its limit of %d bytes; the rest of this session is not recorded",
                        name, self.max_bytes)  # fmt: skip
            self._stream.write(json.dumps({"t": line["t"], "dir": "truncated", "bytes": self.written}) + "\n")
            return
        self.written += len(data)
        self._stream.write(data.decode("utf-8"))

    def client(self, message: bytes | str) -> None:
        self._message("client", message)

    def server(self, message: bytes | str) -> None:
        self._message("server", message)

    def _message(self, direction: str, message: bytes | str) -> None:
        if self.truncated or self._stream.closed:
            return
        msg: Any
        try:
            check_depth(message)
            msg = msgspec.json.decode(message)
        except (ProtocolError, msgspec.MsgspecError, RecursionError):
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
    """The lines of a recording, in order. ValueError naming the line when one is not JSON."""
    lines = []
    with Path(path).open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                try:
                    lines.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"line {number} is not JSON; expected a recording made with --record") from exc
    return lines
