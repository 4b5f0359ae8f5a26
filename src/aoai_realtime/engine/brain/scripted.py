"""The scripted brain: a fixed list of turns, played one per response, for deterministic tests.

A script is a list of turns; each turn is a list of outputs (:class:`~.base.Say`, :class:`~.base.CallTool`,
:class:`~.base.Pause`). The JSON file form (``--brain scripted:PATH``)::

    {"turns": [
        {"say": "Hello! How can I help?"},
        {"call": "get_weather", "arguments": {"city": "Paris"}},
        [{"pause_ms": 200}, {"say": "It is sunny in Paris."}]
    ],
     "fallback": "I have nothing more to say."}

A turn is an object (one step) or an array of steps. A step is ``{"say": text}``, ``{"call": name,
"arguments": object|string}`` or ``{"pause_ms": n}``. When the script runs out, every further response says
``fallback``. Turns are consumed in order across the whole engine instance's brain object: give each session
its own brain (the engine's brain factory does) to make sessions independent.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from .base import BrainOutput, BrainRequest, CallTool, Pause, Say

__all__ = ["ScriptedBrain", "parse_script", "split_words"]


def split_words(text: str) -> list[str]:
    """Split text into word chunks that keep their leading space ("Hello", " world", "!")."""
    chunks: list[str] = []
    for i, word in enumerate(text.split(" ")):
        chunk = word if i == 0 else " " + word
        if chunk:
            chunks.append(chunk)
    return chunks


def _step(raw: Any, where: str) -> BrainOutput:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: a step must be an object like {{'say': '...'}}", field=where)
    if "say" in raw:
        return Say(str(raw["say"]))
    if "call" in raw:
        args = raw.get("arguments", {})
        return CallTool(str(raw["call"]), args if isinstance(args, str) else json.dumps(args))
    if "pause_ms" in raw:
        return Pause(float(raw["pause_ms"]) / 1000.0)
    raise ConfigError(f"{where}: unknown step {sorted(raw)}; use 'say', 'call' or 'pause_ms'", field=where)


def parse_script(data: Any) -> tuple[list[list[BrainOutput]], str]:
    """Parse the JSON form (see the module docstring) into turns and the fallback text."""
    if isinstance(data, list):
        data = {"turns": data}
    if not isinstance(data, dict) or not isinstance(data.get("turns"), list):
        raise ConfigError("a script is an object with a 'turns' array", field="turns")
    turns: list[list[BrainOutput]] = []
    for i, turn in enumerate(data["turns"]):
        steps = turn if isinstance(turn, list) else [turn]
        turns.append([_step(s, f"turns[{i}]") for s in steps])
    return turns, str(data.get("fallback", "I have nothing more to say."))


class ScriptedBrain:
    """Plays ``turns`` in order, one turn per response; then says ``fallback``.

    ``Say`` text is streamed word by word (the deltas a model would send). Safe for overlapping responses:
    each response takes the next turn when it starts.
    """

    needs_transcripts = False  # a script does not listen: responses do not wait for speech-to-text

    def __init__(
        self, turns: Sequence[Sequence[BrainOutput]], *, fallback: str = "I have nothing more to say."
    ) -> None:
        self._turns = [list(t) for t in turns]
        self._next = 0
        self.fallback = fallback
        self.requests: list[BrainRequest] = []  # what each response saw, for assertions in tests

    @classmethod
    def from_json(cls, path: str | Path) -> ScriptedBrain:
        """Load a script file (JSON, see the module docstring)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read script {path}: {exc}; give a JSON file", field="brain") from exc
        turns, fallback = parse_script(data)
        return cls(turns, fallback=fallback)

    @property
    def remaining(self) -> int:
        """Turns not played yet."""
        return max(0, len(self._turns) - self._next)

    async def respond(self, request: BrainRequest) -> AsyncIterator[BrainOutput]:
        self.requests.append(request)
        if self._next < len(self._turns):
            turn = self._turns[self._next]
            self._next += 1
        else:
            turn = [Say(self.fallback)]
        spoken = False
        for output in turn:
            if isinstance(output, Say):
                text = output.text
                if spoken and text and not text[0].isspace():
                    text = " " + text  # successive sayings of one turn read as one text
                spoken = True
                for chunk in split_words(text):
                    yield Say(chunk)
            else:
                yield output
