"""The input audio buffer and turn detection, in session audio time (reference 4.2, 7).

All positions are milliseconds of audio written to the session since it started (pcm16 24 kHz: 48 bytes per
ms), which is what ``audio_start_ms``/``audio_end_ms`` mean on the wire. Nothing here reads a clock: the
audio itself is the time base, so tests feed bytes and get exact, repeatable events.

:class:`InputBuffer` holds the uncommitted audio and where it starts. :class:`TurnDetector` turns per-frame
speech probabilities into ``started``/``stopped`` decisions:

- ``server_vad``: speech starts when a frame's probability reaches ``threshold`` (``audio_start_ms`` goes
  back ``prefix_padding_ms``, not before the buffer start); it stops after ``silence_duration_ms`` of frames
  below the threshold (``audio_end_ms`` is where that silence began).
- ``semantic_vad`` with an end-of-turn model (``judged=True``): after :data:`CHECK_SILENCE_MS` of silence the
  detector asks (a ``check`` decision); the session scores the turn's audio and calls :meth:`TurnDetector.end_turn`
  when the score reaches the eagerness' threshold (:data:`EAGERNESS_THRESHOLD`). Otherwise the turn stays open
  until the speaker goes on or the eagerness' longest wait passes (:data:`EAGERNESS_MAX_SILENCE_MS`).
- ``semantic_vad`` without a model: a silence wait picked by ``eagerness`` (:data:`EAGERNESS_SILENCE_MS`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from .conversation import BYTES_PER_MS

__all__ = [
    "CHECK_SILENCE_MS",
    "EAGERNESS_MAX_SILENCE_MS",
    "EAGERNESS_SILENCE_MS",
    "EAGERNESS_THRESHOLD",
    "InputBuffer",
    "TurnDecision",
    "TurnDetector",
    "VadState",
]

# Silence (ms) that ends a turn under semantic_vad without an end-of-turn model; "auto" is "medium".
EAGERNESS_SILENCE_MS = {"high": 300, "medium": 700, "auto": 700, "low": 1500}
# With a model: silence before it is asked, the score that ends the turn, and the longest wait (the service's
# documented maximum timeouts for low, medium and high: 8, 4 and 2 s).
CHECK_SILENCE_MS = 200
EAGERNESS_THRESHOLD = {"high": 0.3, "medium": 0.5, "auto": 0.5, "low": 0.7}
EAGERNESS_MAX_SILENCE_MS = {"high": 2000, "medium": 4000, "auto": 4000, "low": 8000}


class InputBuffer:
    """Uncommitted input audio (pcm16 24 kHz) and its position in session audio time."""

    def __init__(self) -> None:
        self._pcm = bytearray()
        self.start_ms = 0  # session time of the first byte in the buffer
        self.total_bytes = 0  # everything ever appended (session audio time)

    @property
    def now_ms(self) -> int:
        """Session audio time: ms of audio appended so far."""
        return self.total_bytes // BYTES_PER_MS

    @property
    def buffered_ms(self) -> float:
        return len(self._pcm) / BYTES_PER_MS

    def __len__(self) -> int:
        """Bytes buffered."""
        return len(self._pcm)

    def append(self, pcm: bytes) -> None:
        self._pcm += pcm
        self.total_bytes += len(pcm)

    def drop_before(self, ms: int) -> None:
        """Forget the audio before session time ``ms`` (silence no turn will include)."""
        cut = min(len(self._pcm), max(0, ms - self.start_ms) * BYTES_PER_MS)
        del self._pcm[:cut]
        self.start_ms += cut // BYTES_PER_MS

    def peek(self, from_ms: int, to_ms: int) -> bytes:
        """A copy of the buffered audio between session times ``from_ms`` and ``to_ms`` (the buffer is unchanged)."""
        start = (max(self.start_ms, from_ms) - self.start_ms) * BYTES_PER_MS
        end = max(start, (to_ms - self.start_ms) * BYTES_PER_MS)
        return bytes(self._pcm[start:end])

    def take(self, from_ms: int | None = None, to_ms: int | None = None) -> tuple[bytes, int]:
        """Remove and return the buffered audio between ``from_ms`` and ``to_ms`` (default: all), with its start.

        Audio before ``from_ms`` is dropped (silence before a detected turn); audio after ``to_ms`` stays in
        the buffer (it arrived in the same chunk as the end of the turn but belongs to the next one).
        """
        start = self.start_ms if from_ms is None else max(self.start_ms, from_ms)
        offset = (start - self.start_ms) * BYTES_PER_MS
        end = len(self._pcm) if to_ms is None else max(offset, (to_ms - self.start_ms) * BYTES_PER_MS)
        pcm = bytes(self._pcm[offset:end])
        rest = self._pcm[end:]
        self._pcm = bytearray(rest)
        self.start_ms = self.now_ms - len(rest) // BYTES_PER_MS
        return pcm, start

    def clear(self) -> None:
        self._pcm.clear()
        self.start_ms = self.now_ms


class VadState(enum.Enum):
    SILENCE = "silence"
    SPEECH = "speech"


@dataclass(frozen=True)
class TurnDecision:
    """A change the detector decided: ``kind`` is ``started``, ``stopped`` or ``check`` (ask the end-of-turn
    model); ``ms`` is the wire value (for ``check``: where the silence began); ``at_ms`` is when it was decided."""

    kind: str
    ms: int
    at_ms: int = 0


class TurnDetector:
    """Speech start/stop from per-frame probabilities. Configure with the session's ``turn_detection``."""

    def __init__(self, config: dict[str, Any], frame_ms: int, *, judged: bool = False) -> None:
        self.config = config
        self.frame_ms = frame_ms
        self.state = VadState.SILENCE
        self._silence_run_ms = 0
        self._silence_began_ms = 0
        self._checked = False
        self.judged = judged and config["type"] == "semantic_vad"
        self.end_threshold = 0.5
        if config["type"] == "semantic_vad":
            eagerness = str(config.get("eagerness", "auto"))
            self.threshold = 0.5
            self.prefix_ms = 300
            if self.judged:
                self.silence_ms = EAGERNESS_MAX_SILENCE_MS.get(eagerness, 4000)
                self.end_threshold = EAGERNESS_THRESHOLD.get(eagerness, 0.5)
            else:
                self.silence_ms = EAGERNESS_SILENCE_MS.get(eagerness, 700)
        else:
            self.threshold = float(config.get("threshold", 0.5))
            self.prefix_ms = int(config.get("prefix_padding_ms", 300))
            self.silence_ms = int(config.get("silence_duration_ms", 200))

    def step(self, probability: float, frame_start_ms: int, buffer_start_ms: int) -> TurnDecision | None:
        """Feed one frame (starting at ``frame_start_ms`` session time); returns a decision or None."""
        speech = probability >= self.threshold
        if self.state is VadState.SILENCE:
            if speech:
                self.state = VadState.SPEECH
                self._silence_run_ms = 0
                return TurnDecision("started", max(buffer_start_ms, frame_start_ms - self.prefix_ms))
            return None
        if speech:
            self._silence_run_ms = 0
            self._checked = False
            return None
        if self._silence_run_ms == 0:
            self._silence_began_ms = frame_start_ms
        self._silence_run_ms += self.frame_ms
        if self._silence_run_ms >= self.silence_ms:
            return self.end_turn()
        if self.judged and not self._checked and self._silence_run_ms >= CHECK_SILENCE_MS:
            self._checked = True
            return TurnDecision("check", self._silence_began_ms, self._silence_began_ms + self._silence_run_ms)
        return None

    def pause_began_ms(self, at_least_ms: int) -> int | None:
        """Where the current pause inside a turn began (session time), once it has lasted ``at_least_ms``;
        None while nobody speaks or the speaker is talking."""
        if self.state is VadState.SPEECH and self._silence_run_ms >= max(at_least_ms, 1):
            return self._silence_began_ms
        return None

    def end_turn(self) -> TurnDecision:
        """End the current turn now (the end-of-turn model said so, or the silence ran out)."""
        waited = min(self._silence_run_ms, self.silence_ms)
        self.state = VadState.SILENCE
        self._silence_run_ms = 0
        self._checked = False
        return TurnDecision("stopped", self._silence_began_ms, self._silence_began_ms + waited)
