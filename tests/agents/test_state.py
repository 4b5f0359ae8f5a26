"""The state machine: every (state, trigger) pair against a rule-by-rule spec written apart from the table, the
diagram, and a Hypothesis stateful run of the machine against that spec."""

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


_LIVE = {S.CONNECTED, S.LISTENING, S.THINKING, S.SPEAKING}
SAME = "same"


def spec(state: AssistantState, trigger: Trigger) -> AssistantState | str | None:
    """The assistant's behaviour written out rule by rule from docs/agents.md, independently of the table:
    the target state, ``SAME`` for a legal trigger that changes nothing, or ``None`` for an illegal one."""
    if trigger is T.CLOSE:
        return S.IDLE  # closing always returns to idle
    if trigger is T.CONNECT:
        return S.CONNECTING if state in (S.IDLE, S.ERROR) else None
    if trigger is T.CONNECTED:
        return S.CONNECTED if state is S.CONNECTING else None
    if trigger is T.READY:
        return S.LISTENING if state is S.CONNECTED else None
    if trigger is T.FAILED:
        return S.ERROR if state is S.CONNECTING or state in _LIVE else None
    if state not in _LIVE:
        return None  # nothing else happens before the session is up or after it ended
    if trigger is T.SPEECH_STARTED:
        return S.LISTENING  # the user talks: the assistant listens, also over its own speech (barge-in)
    if trigger is T.SPEECH_STOPPED:
        return S.THINKING if state in (S.CONNECTED, S.LISTENING) else None
    if trigger is T.RESPONSE_STARTED:
        return S.SPEAKING if state is S.SPEAKING else S.THINKING
    if trigger is T.PLAYBACK_STARTED:
        return S.SPEAKING  # speaking begins when sound plays, not when the response starts
    if trigger is T.PLAYBACK_DRAINED:
        # the end of playback ends speaking; after a barge-in it arrives late and changes nothing
        return S.LISTENING if state is S.SPEAKING else (SAME if state in (S.LISTENING, S.THINKING) else None)
    if trigger is T.RESPONSE_FINISHED_SILENT:
        return S.LISTENING if state is S.THINKING else None
    raise AssertionError(f"the spec has no rule for {trigger}")


@pytest.mark.parametrize(("state", "trigger"), list(itertools.product(AssistantState, Trigger)))
def test_every_pair_behaves_as_the_spec_says(state: AssistantState, trigger: Trigger) -> None:
    machine = StateMachine(state)
    expected = spec(state, trigger)
    if expected is None:
        assert not machine.can(trigger)
        with pytest.raises(IllegalTransition) as info:
            machine.fire(trigger)
        assert state.value in str(info.value) and trigger.value in str(info.value)
        assert info.value.state is state and info.value.trigger is trigger
        assert machine.state is state  # an illegal trigger changes nothing
    else:
        target = state if expected == SAME else expected
        assert machine.can(trigger)
        assert machine.fire(trigger) == (state, target)
        assert machine.state is target
        assert ((state, trigger) in NO_EFFECT) == (expected == SAME)


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
    """Random trigger sequences: legal ones move exactly as the spec says, illegal ones raise and stay."""

    def __init__(self) -> None:
        super().__init__()
        self.machine = StateMachine()
        self.model = S.IDLE
        self.history: list[AssistantState] = [S.IDLE]

    @rule(trigger=st.sampled_from(list(Trigger)))
    def fire(self, trigger: Trigger) -> None:
        expected = spec(self.model, trigger)
        if expected == SAME:
            assert self.machine.fire(trigger) == (self.model, self.model)
        elif expected is None:
            with pytest.raises(IllegalTransition):
                self.machine.fire(trigger)
        else:
            assert isinstance(expected, AssistantState)
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
                assert spec(before, T.PLAYBACK_STARTED) is S.SPEAKING


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
