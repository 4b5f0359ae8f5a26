"""The LoCoMo loader on a tiny directory made here (no LoCoMo data in the repo)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aoai_realtime.bench.memory_locomo import load_locomo, parse_locomo_date


def write_conv(path: Path) -> None:
    conv = {
        "speaker_a": "Ann",
        "speaker_b": "Bob",
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": [
            {"speaker": "Ann", "dia_id": "D1:1", "text": "I adopted a dog named Max."},
            {"speaker": "Bob", "dia_id": "D1:2", "text": "Look!", "blip_caption": "a photo of a red kite"},
            {"speaker": "Bob", "dia_id": "D1:3", "text": "   "},
        ],
        "session_2_date_time": "10:37 am on 27 June, 2023",
        "session_2": [{"speaker": "Bob", "dia_id": "D2:1", "text": "I started pottery in Lisbon."}],
        "session_3_date_time": "1:00 pm on 1 July, 2023",
        "qa": [
            {"question": "What is the dog called?", "answer": "Max", "evidence": ["D1:1"], "category": 4},
            {"question": "Who flies kites?", "evidence": ["D1:2; D2:1"], "category": 1},
            {"question": "Trick?", "evidence": [], "category": 5, "adversarial_answer": "x"},
        ],
    }
    path.write_text(json.dumps(conv))


def test_loads_turns_sessions_and_questions(tmp_path: Path) -> None:
    write_conv(tmp_path / "conv-a.json")
    (tmp_path / "notes.json").write_text(json.dumps({"hello": 1}))
    (tmp_path / "broken.json").write_text("{not json")
    [conv] = list(load_locomo(tmp_path))
    assert conv.name == "conv-a" and conv.speakers == ("Ann", "Bob")
    assert [t.dia_id for t in conv.turns] == ["D1:1", "D1:2", "D2:1"]  # the blank turn is skipped
    assert conv.turns[1].full_text == "Look! [shared a photo: a photo of a red kite]"
    assert conv.turns[2].session == 2 and conv.turns[2].ts > conv.turns[0].ts
    assert [q.evidence for q in conv.questions] == [("D1:1",), ("D1:2", "D2:1"), ()]
    assert [q.category for q in conv.questions] == [4, 1, 5]


def test_accepts_the_upstream_list_layout(tmp_path: Path) -> None:
    write_conv(tmp_path / "one.json")
    sample = json.loads((tmp_path / "one.json").read_text())
    qa = sample.pop("qa")
    (tmp_path / "one.json").unlink()
    (tmp_path / "locomo10.json").write_text(json.dumps([{"sample_id": "s1", "conversation": sample, "qa": qa}]))
    [conv] = list(load_locomo(tmp_path))
    assert conv.name == "locomo10-s1" and len(conv.questions) == 3 and len(conv.turns) == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1:56 pm on 8 May, 2023", 1683554160.0), ("10:37 am on 27 June, 2023", 1687862220.0), ("soon", 0.0)],
)
def test_dates(text: str, expected: float) -> None:
    assert parse_locomo_date(text) == expected
