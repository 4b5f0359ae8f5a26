"""Read LoCoMo-format conversations (Maharana et al., ACL 2024) for the memory benchmark.

A directory holds ``*.json`` files, each one conversation: ``speaker_a``, ``speaker_b``, ``session_K`` (a list of
turns ``{speaker, dia_id, text}``, some with ``blip_caption`` for a shared photo), ``session_K_date_time``
(e.g. ``"1:56 pm on 8 May, 2023"``) and ``qa`` (``question``, ``evidence``: the ``dia_id``s holding the answer,
``category``: 1 multi-hop, 2 temporal, 3 open-domain, 4 single-hop, 5 adversarial). The loader accepts the
upstream ``locomo10.json`` layout too (a list of samples with a ``conversation`` object). Unknown keys are
ignored; a file that is not a conversation is skipped with a warning.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import get_logger

__all__ = ["Conversation", "Question", "Turn", "load_locomo", "parse_locomo_date"]

_log = get_logger(__name__)
_SESSION = re.compile(r"session_(\d+)")
_DIA_ID = re.compile(r"D\d+:\d+")


@dataclasses.dataclass(frozen=True, slots=True)
class Turn:
    dia_id: str
    session: int
    seq: int
    speaker: str
    text: str
    caption: str
    ts: float
    date_text: str

    @property
    def full_text(self) -> str:
        """The turn as a memory chunk: its words, plus the caption of a photo it shared."""
        return f"{self.text} [shared a photo: {self.caption}]" if self.caption else self.text


@dataclasses.dataclass(frozen=True, slots=True)
class Question:
    question: str
    evidence: tuple[str, ...]
    category: int


@dataclasses.dataclass(frozen=True, slots=True)
class Conversation:
    name: str
    speakers: tuple[str, str]
    turns: tuple[Turn, ...]
    questions: tuple[Question, ...]


def parse_locomo_date(text: str) -> float:
    """``"1:56 pm on 8 May, 2023"`` -> seconds since the epoch (UTC). Returns 0.0 when unparseable."""
    for fmt in ("%I:%M %p on %d %B, %Y", "%I:%M %p on %d %b, %Y", "%d %B, %Y", "%d %B %Y"):
        try:
            return dt.datetime.strptime(text.strip(), fmt).replace(tzinfo=dt.UTC).timestamp()
        except ValueError:
            continue
    return 0.0


def _evidence(raw: Any) -> tuple[str, ...]:
    # Upstream evidence lists sometimes pack several ids in one string ("D8:6; D9:17").
    items = raw if isinstance(raw, list) else [raw]
    out: list[str] = []
    for item in items:
        out.extend(_DIA_ID.findall(str(item)))
    return tuple(dict.fromkeys(out))


def _conversation(name: str, sample: dict[str, Any]) -> Conversation | None:
    conv = sample.get("conversation", sample)
    if not isinstance(conv, dict) or "speaker_a" not in conv:
        return None
    sessions = sorted((int(m.group(1)), k) for k in conv if (m := _SESSION.fullmatch(k)) and isinstance(conv[k], list))
    turns: list[Turn] = []
    for num, key in sessions:
        date_text = str(conv.get(f"{key}_date_time", ""))
        ts = parse_locomo_date(date_text)
        for seq, t in enumerate(conv[key]):
            if not isinstance(t, dict) or not str(t.get("text", "")).strip():
                continue
            turns.append(
                Turn(
                    dia_id=str(t.get("dia_id", f"D{num}:{seq + 1}")),
                    session=num,
                    seq=seq,
                    speaker=str(t.get("speaker", "")),
                    text=str(t["text"]).strip(),
                    caption=str(t.get("blip_caption", "") or "").strip(),
                    # One session's turns share its date; the sequence number keeps them ordered.
                    ts=ts + seq,
                    date_text=date_text,
                )
            )
    qa = sample.get("qa", conv.get("qa")) or []
    questions = tuple(
        Question(question=str(q["question"]), evidence=_evidence(q.get("evidence", [])), category=int(q["category"]))
        for q in qa
        if isinstance(q, dict) and "question" in q and "category" in q
    )
    return Conversation(
        name=name,
        speakers=(str(conv.get("speaker_a", "")), str(conv.get("speaker_b", ""))),
        turns=tuple(turns),
        questions=questions,
    )


def load_locomo(directory: Path) -> Iterator[Conversation]:
    """Yield every conversation found in ``directory``'s ``*.json`` files, in file-name order."""
    for path in sorted(directory.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            _log.warning("skipping %s: %s", path, exc)
            continue
        samples = data if isinstance(data, list) else [data]
        for i, sample in enumerate(samples):
            sample_id = sample.get("sample_id", i) if isinstance(sample, dict) else i
            name = f"{path.stem}-{sample_id}" if isinstance(data, list) else path.stem
            conv = _conversation(name, sample) if isinstance(sample, dict) else None
            if conv is None:
                _log.warning("skipping %s: not a LoCoMo conversation", name)
                continue
            yield conv
