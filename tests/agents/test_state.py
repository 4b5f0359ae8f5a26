"""The state machine table: exhaustive over every (state, trigger) pair, the diagram, and a Hypothesis
stateful run of the machine against the table."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from aoai_realtime.agents.state import (
    NO_EFFECT,
    TRANSITIONS,
    AssistantState,
    IllegalTransition,
    StateMachine,
    Trigger,
    legal_triggers,
    mermaid,
)

S, T = AssistantState, Trigger


@pytest.mark.parametrize(("state", "trigger"), list(itertools.product(AssistantState, Trigger)))
def test_every_pair_follows_the_table(state: AssistantState, trigger: Trigger) -> None:
    machine = StateMachine(state)
    if (state, trigger) in TRANSITIONS:
        assert machine.fire(trigger) == (state, TRANSITIONS[(state, trigger)])
        assert machine.state is TRANSITIONS[(state, trigger)]
    elif (state, trigger) in NO_EFFECT:
        assert machine.can(trigger)
        assert machine.fire(trigger) == (state, state)
    else:
        assert not machine.can(trigger)
        with pytest.raises(IllegalTransition) as info:
            machine.fire(trigger)
        assert state.value in str(info.value) and trigger.value in str(info.value)
        assert info.value.state is state and info.value.trigger is trigger
        assert machine.state is state  # an illegal trigger changes nothing


def test_the_issue_transitions_are_declared() -> None:
    assert TRANSITIONS[(S.LISTENING, T.SPEECH_STOPPED)] is S.THINKING
    assert TRANSITIONS[(S.THINKING, T.PLAYBACK_STARTED)] is S.SPEAKING
    assert TRANSITIONS[(S.SPEAKING, T.PLAYBACK_DRAINED)] is S.LISTENING
    # barge-in: user speech from any live state goes to listening
    for state in (S.CONNECTED, S.LISTENING, S.THINKING, S.SPEAKING):
        assert TRANSITIONS[(state, T.SPEECH_STARTED)] is S.LISTENING
    # speaking never ends on its own at response end: only drained playback or the user leave it
    leaving = {t for (s, t), target in TRANSITIONS.items() if s is S.SPEAKING and target is not S.SPEAKING}
    assert leaving == {T.PLAYBACK_DRAINED, T.SPEECH_STARTED, T.FAILED, T.CLOSE}


def test_no_effect_pairs_are_not_transitions_and_are_few() -> None:
    assert not NO_EFFECT & TRANSITIONS.keys()
    assert {t for _, t in NO_EFFECT} == {T.PLAYBACK_DRAINED}  # only a late end of playback is expected to be moot


def test_every_state_is_reachable_from_idle_and_close_always_returns_to_idle() -> None:
    seen = {S.IDLE}
    frontier = [S.IDLE]
    while frontier:
        state = frontier.pop()
        for trigger in legal_triggers(state):
            target = TRANSITIONS[(state, trigger)]
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    assert seen == set(AssistantState)
    assert all(TRANSITIONS[(s, T.CLOSE)] is S.IDLE for s in AssistantState)


def test_mermaid_diagram_is_generated_from_the_table() -> None:
    text = mermaid()
    assert text.startswith("stateDiagram-v2")
    for (state, trigger), target in TRANSITIONS.items():
        if trigger is not T.CLOSE:
            assert f"{state.value} --> {target.value}: {trigger.value}" in text
    assert text.count(" --> ") == 1 + sum(1 for (_, t) in TRANSITIONS if t is not T.CLOSE)


class MachineAgainstTable(RuleBasedStateMachine):
    """Random trigger sequences: legal ones move exactly as the table says, illegal ones raise and stay."""

    def __init__(self) -> None:
        super().__init__()
        self.machine = StateMachine()
        self.model = S.IDLE
        self.history: list[AssistantState] = [S.IDLE]

    @rule(trigger=st.sampled_from(list(Trigger)))
    def fire(self, trigger: Trigger) -> None:
        expected = TRANSITIONS.get((self.model, trigger))
        if (self.model, trigger) in NO_EFFECT:
            assert self.machine.fire(trigger) == (self.model, self.model)
        elif expected is None:
            with pytest.raises(IllegalTransition):
                self.machine.fire(trigger)
        else:
            self.machine.fire(trigger)
            self.model = expected
            self.history.append(expected)

    @invariant()
    def agrees_with_model(self) -> None:
        assert self.machine.state is self.model

    @invariant()
    def speaking_is_only_entered_by_playback(self) -> None:
        for before, after in itertools.pairwise(self.history):
            if after is S.SPEAKING and before is not S.SPEAKING:
                assert (before, T.PLAYBACK_STARTED) in TRANSITIONS


TestMachineAgainstTable = MachineAgainstTable.TestCase


def test_the_docs_diagram_is_the_generated_one() -> None:
    from pathlib import Path

    doc = Path(__file__).parents[2] / "docs" / "agents.md"
    if not doc.exists():
        pytest.skip("docs/agents.md not present")
    text = doc.read_text()
    begin = text.index("```mermaid\n", text.index("mermaid(): begin")) + len("```mermaid\n")
    end = text.index("```", begin)
    assert text[begin:end] == mermaid(), "docs/agents.md is stale: regenerate the diagram with mermaid()"
