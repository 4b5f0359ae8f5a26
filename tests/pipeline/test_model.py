"""The declared step state machine, pipeline validation, backoff, and chunking."""

from __future__ import annotations

import random

import pytest

from aoai_realtime.errors import ConfigError
from aoai_realtime.llm import Turn
from aoai_realtime.pipeline import (
    TRANSITIONS,
    IllegalTransition,
    Pipeline,
    RetryPolicy,
    StepEvent,
    StepSpec,
    StepState,
    chunk_call,
    transition,
)

from .helpers import echo


def test_every_state_event_pair_is_either_in_the_table_or_illegal() -> None:
    for state in StepState:
        for event in StepEvent:
            if (state, event) in TRANSITIONS:
                assert transition(state, event) is TRANSITIONS[(state, event)]
            else:
                with pytest.raises(IllegalTransition, match=f"{event.value!r} is not allowed in state {state.value!r}"):
                    transition(state, event)


def test_generated_and_failed_are_terminal_and_reachable() -> None:
    assert not any(s in (StepState.GENERATED, StepState.FAILED) for s, _ in TRANSITIONS)
    assert set(TRANSITIONS.values()) == set(StepState)  # every state is reachable


@pytest.mark.parametrize(
    ("steps", "match"),
    [
        ((), "at least one step"),
        ((StepSpec("a", echo), StepSpec("a", echo)), "duplicate"),
        ((StepSpec("a", echo, depends_on=("b",)),), "unknown step 'b'"),
        ((StepSpec("a", echo, depends_on=("b",)), StepSpec("b", echo, depends_on=("a",))), "cycle: a -> b -> a"),
    ],
)
def test_invalid_pipelines_are_refused(steps: tuple[StepSpec, ...], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Pipeline(steps=steps)


def test_invalid_steps_and_policies_are_refused() -> None:
    with pytest.raises(ConfigError, match="must match"):
        StepSpec("Bad Name", echo)
    with pytest.raises(ConfigError, match="lease_seconds"):
        StepSpec("a", echo, lease_seconds=0)
    with pytest.raises(ConfigError, match="jitter"):
        RetryPolicy(jitter=2)
    with pytest.raises(ConfigError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


def test_backoff_doubles_up_to_the_cap_and_jitter_only_shortens() -> None:
    rng = random.Random(3)
    policy = RetryPolicy(base_delay=1.0, max_delay=30.0, jitter=0.25)
    for attempt in range(1, 10):
        cap = min(30.0, 2.0 ** (attempt - 1))
        delays = [policy.delay(attempt, rng) for _ in range(50)]
        assert all(0.75 * cap <= d <= cap for d in delays)
        assert len(set(delays)) > 1
    assert RetryPolicy(base_delay=2.0, jitter=0.0).delay(3, rng) == 8.0


def test_chunks_keep_turns_whole_and_summary_first() -> None:
    turns = [Turn("user", "a" * 50), Turn("assistant", "b" * 50), Turn("user", "c" * 250)]
    chunks = chunk_call(turns, "S", max_chars=120)
    assert chunks == ["S", f"user: {'a' * 50}\nassistant: {'b' * 50}", f"user: {'c' * 114}", "c" * 120, "c" * 16]
    assert chunk_call(turns, "S", max_chars=120) == chunks  # deterministic
    assert chunk_call([], "") == []
