"""Question scripts: the shipped example loads; every mistake an operator can make is named with the file, the
question id and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from aoai_realtime.apps.visit_script import ScriptError, load_script, parse_script

EXAMPLE = Path(__file__).parents[2] / "src" / "aoai_realtime" / "apps" / "scripts" / "follow_up_visit.yaml"

GOOD = """
id: check_in
title: Weekly check-in
questions:
  - id: mood
    text: How is your mood this week?
  - id: pain
    text: Any pain today, from 0 to 10?
    expects: a number from 0 to 10
    follow_up:
      if_answer_matches: '\\b([5-9]|10)\\b'
      ask: Where does it hurt?
  - id: meds
    text: Are you taking your medication?
    required: false
    choices: ["yes", "no"]
"""


def test_the_shipped_example_loads() -> None:
    script = load_script(EXAMPLE)
    assert script.id == "follow_up_visit"
    assert [q.id for q in script.questions][:3] == ["general_wellbeing", "pain_level", "medication"]
    pain = script.question("pain_level")
    assert pain is not None and pain.triggers_follow_up("about a 7") and not pain.triggers_follow_up("2")
    med = script.question("medication")
    assert med is not None and med.accepts("Partly") == "partly" and med.accepts("sometimes") is None
    assert med.accepts(" No. ") == "no" and med.accepts("'yes'") == "yes" and med.accepts("yes, mostly") is None
    assert script.parent_of("medication_follow_up") is med


def test_json_scripts_load_too(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text('{"id": "j", "title": "J", "questions": [{"id": "q1", "text": "Hello?"}]}')
    assert load_script(path).questions[0].required is True


def test_a_good_script_parses() -> None:
    script = parse_script(GOOD)
    assert script.question("pain") is not None
    assert script.question("pain").follow_up_id == "pain_follow_up"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "message", "field"),
    [
        (GOOD.replace("text: How is your mood this week?", "txt: How is your mood?"),
         "s.yaml: question 'mood': txt: unknown field", "txt"),
        (GOOD.replace("    text: How is your mood this week?\n", ""),
         "s.yaml: question 'mood': text: missing (it is required)", "text"),
        (GOOD.replace("'\\b([5-9]|10)\\b'", "'([5-9]'"),
         "s.yaml: question 'pain': follow_up.if_answer_matches: not a valid regular expression",
         "follow_up.if_answer_matches"),
        (GOOD.replace("      ask: Where does it hurt?\n", ""),
         "s.yaml: question 'pain': follow_up.ask: missing", "follow_up.ask"),
        (GOOD.replace("required: false", "required: maybe"),
         "s.yaml: question 'meds': required: expected `bool`, got `str`", "required"),
        (GOOD.replace("id: meds", "id: mood"), "s.yaml: question 'mood': id: 'mood' is already used", "id"),
        (GOOD.replace("id: meds", "id: Meds Now"), "s.yaml: question 'Meds Now': id: 'Meds Now' is not a valid id",
         "id"),
        (GOOD.replace("id: meds", "id: pain_follow_up"),
         "s.yaml: question 'pain_follow_up': id: 'pain_follow_up' is already used by question 'pain'", "id"),
        (GOOD.replace("title: Weekly check-in\n", ""), "s.yaml: title: missing", "title"),
        (GOOD.replace('choices: ["yes", "no"]', "choices: [yes, no]"),
         "s.yaml: question 'meds': choices[0]: expected `str`, got `bool` (YAML reads a bare yes/no", "choices[0]"),
        ("id: x\ntitle: X\nquestions: []\n", "s.yaml: questions: the script has no questions", "questions"),
        ("id: x\ntitle: X\nquestions:\n  - just a string\n", "s.yaml: question #1: a question is a mapping",
         "questions"),
        ("- a list\n", "s.yaml: a question script is a mapping", None),
    ],
)
def test_mistakes_name_file_question_and_field(text: str, message: str, field: str | None) -> None:
    with pytest.raises(ScriptError) as info:
        parse_script(text, source="/ops/s.yaml")
    assert str(info.value).startswith(message), str(info.value)
    assert info.value.field == field


def test_yaml_syntax_errors_give_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("id: x\ntitle: X\nquestions:\n  - id: a\n    text: [unclosed\n")
    with pytest.raises(ScriptError, match=r"^broken.yaml: not valid YAML at line \d+, column \d+"):
        load_script(path)


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ScriptError, match="no such question script"):
        load_script(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("answer", "follows_up"),
    [
        ("7 out of 10", True),
        ("About an eight.", True),
        ("seven", True),
        ("10", True),
        ("3 out of 10", False),  # the scale's "10" is not the score
        ("About a three.", False),
        ("two, maybe", False),
    ],
)
def test_the_shipped_pain_follow_up_reads_the_score_not_the_scale(answer: str, follows_up: bool) -> None:
    pain = load_script(EXAMPLE).question("pain_level")
    assert pain is not None
    assert pain.triggers_follow_up(answer) is follows_up
