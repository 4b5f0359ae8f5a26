"""The pure rules that keep a visit on its script (apps.visit_flow): what is still to ask and what the model is
told next, for any set of answers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from aoai_realtime.apps.visit_flow import answer_rows, next_step, pending, record_text
from aoai_realtime.apps.visit_script import load_script

SCRIPT = load_script(Path(__file__).parents[2] / "src" / "aoai_realtime" / "apps" / "scripts" / "follow_up_visit.yaml")
IDS = [q.id for q in SCRIPT.questions] + [q.follow_up_id for q in SCRIPT.questions if q.follow_up]


@dataclass(frozen=True)
class A:
    answer: str
    status: str = "answered"


def test_a_new_visit_asks_everything_in_order() -> None:
    assert [p.id for p in pending(SCRIPT, {})] == [q.id for q in SCRIPT.questions]
    assert next_step(SCRIPT, {}).startswith("Next question (general_wellbeing): How have you been feeling")


def test_a_triggering_answer_puts_the_follow_up_next_and_a_decline_does_not() -> None:
    answers = {"general_wellbeing": A("fine"), "pain_level": A("eight")}
    assert [p.id for p in pending(SCRIPT, answers)][:2] == ["pain_level_follow_up", "medication"]
    assert next_step(SCRIPT, answers).startswith("Follow-up to ask now (pain_level_follow_up)")
    answers["pain_level"] = A("", "declined")
    assert "pain_level_follow_up" not in [p.id for p in pending(SCRIPT, answers)]
    assert "pain_level_follow_up" not in [r["question_id"] for r in answer_rows(SCRIPT, answers)]


def test_only_optional_questions_left_says_so() -> None:
    answers = {"general_wellbeing": A("fine"), "pain_level": A("1"), "medication": A("yes"), "concerns": A("no")}
    assert [p.id for p in pending(SCRIPT, answers)] == ["sleep"]
    assert next_step(SCRIPT, answers).endswith("All required answers are in; this one is optional.")
    answers["sleep"] = A("well")
    assert pending(SCRIPT, answers) == []
    assert "call end_visit with reason 'completed'" in next_step(SCRIPT, answers)
    assert "How are you sleeping? -> well" in record_text(SCRIPT, answers, "completed")


@given(st.dictionaries(st.sampled_from(IDS), st.builds(A, st.sampled_from(["7", "2", "no", "yes", ""]),
                                                    st.sampled_from(["answered", "declined"]))))
def test_pending_is_exactly_the_unsettled_questions(answers: dict[str, A]) -> None:
    ids = [p.id for p in pending(SCRIPT, answers)]
    assert not set(ids) & set(answers), "nothing settled is asked again"
    for q in SCRIPT.questions:
        assert (q.id in ids) == (q.id not in answers)
        got = answers.get(q.id)
        due = got is not None and got.status == "answered" and q.triggers_follow_up(got.answer)
        assert (q.follow_up_id in ids) == (due and q.follow_up_id not in answers)
    rows = {r["question_id"]: r for r in answer_rows(SCRIPT, answers)}
    assert all(rows[i]["status"] == "missing" for i in ids)
