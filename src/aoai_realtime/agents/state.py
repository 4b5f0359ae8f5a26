"""The speaking state machine of a voice assistant, declared as data.

:data:`TRANSITIONS` maps ``(state, trigger)`` to the next state; nothing else decides a transition. The docs
diagram (:func:`mermaid`) and the exhaustive tests read the same table (the h11 pattern). :data:`NO_EFFECT` lists
the few pairs the service produces that change nothing (each with its reason); any other pair raises
:class:`IllegalTransition`, naming the state and the trigger.

Where the triggers come from (reference, sections 4.2, 4.4, 4.8):

- ``speech_started`` / ``speech_stopped``: ``input_audio_buffer.speech_started`` / ``.speech_stopped``.
  ``speech_started`` while speaking is a barge-in: the assistant goes straight to ``listening``.
- ``response_started``: ``response.created``, or tool calls in flight after playback drained.
- ``playback_started``: audio is actually being heard: ``output_audio_buffer.started`` over WebRTC, the
  first frame played by the local player over WebSocket. Never ``response.output_audio.delta``.
- ``playback_drained``: ``output_audio_buffer.stopped`` over WebRTC, the local player empty after the
  audio ended over WebSocket. Never ``response.done``, which arrives while audio is still playing.
- ``response_finished_silent``: a response ended with nothing to play and nothing pending (text only,
  cancelled before any audio, or failed).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from types import MappingProxyType

from ..errors import RealtimeError

__all__ = [
    "NO_EFFECT",
    "TRANSITIONS",
    "AssistantState",
    "IllegalTransition",
    "StateMachine",
    "Trigger",
    "mermaid",
]


class AssistantState(enum.Enum):
    """What a voice assistant is doing, as the user would describe it."""

    IDLE = "idle"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"
    ERROR = "error"


class Trigger(enum.Enum):
    """Something that happened. Each value is the name used in logs and in the diagram."""

    CONNECT = "connect"
    CONNECTED = "connected"
    READY = "ready"
    SPEECH_STARTED = "speech_started"
    SPEECH_STOPPED = "speech_stopped"
    RESPONSE_STARTED = "response_started"
    PLAYBACK_STARTED = "playback_started"
    PLAYBACK_DRAINED = "playback_drained"
    RESPONSE_FINISHED_SILENT = "response_finished_silent"
    FAILED = "failed"
    CLOSE = "close"


S = AssistantState
T = Trigger

_LIVE = (S.CONNECTED, S.LISTENING, S.THINKING, S.SPEAKING)

_TABLE: dict[tuple[AssistantState, Trigger], AssistantState] = {
    (S.IDLE, T.CONNECT): S.CONNECTING,
    (S.ERROR, T.CONNECT): S.CONNECTING,
    (S.CONNECTING, T.CONNECTED): S.CONNECTED,
    (S.CONNECTED, T.READY): S.LISTENING,
    # The user talks: from anywhere live, the assistant listens (barge-in from speaking).
    (S.CONNECTED, T.SPEECH_STARTED): S.LISTENING,
    (S.LISTENING, T.SPEECH_STARTED): S.LISTENING,
    (S.THINKING, T.SPEECH_STARTED): S.LISTENING,
    (S.SPEAKING, T.SPEECH_STARTED): S.LISTENING,
    (S.LISTENING, T.SPEECH_STOPPED): S.THINKING,
    (S.CONNECTED, T.SPEECH_STOPPED): S.THINKING,
    # A response without a preceding user turn (a greeting, a tool follow-up, a text message).
    (S.CONNECTED, T.RESPONSE_STARTED): S.THINKING,
    (S.LISTENING, T.RESPONSE_STARTED): S.THINKING,
    (S.THINKING, T.RESPONSE_STARTED): S.THINKING,
    (S.SPEAKING, T.RESPONSE_STARTED): S.SPEAKING,
    (S.THINKING, T.PLAYBACK_STARTED): S.SPEAKING,
    (S.LISTENING, T.PLAYBACK_STARTED): S.SPEAKING,
    (S.CONNECTED, T.PLAYBACK_STARTED): S.SPEAKING,
    (S.SPEAKING, T.PLAYBACK_STARTED): S.SPEAKING,
    (S.SPEAKING, T.PLAYBACK_DRAINED): S.LISTENING,
    (S.THINKING, T.RESPONSE_FINISHED_SILENT): S.LISTENING,
    **{(state, T.FAILED): S.ERROR for state in (S.CONNECTING, *_LIVE)},
    **{(state, T.CLOSE): S.IDLE for state in AssistantState},
}

TRANSITIONS: Mapping[tuple[AssistantState, Trigger], AssistantState] = MappingProxyType(_TABLE)
"""Every legal transition. A ``(state, trigger)`` pair that is not a key (nor in :data:`NO_EFFECT`) is illegal."""

NO_EFFECT: frozenset[tuple[AssistantState, Trigger]] = frozenset({
    # WebRTC: the ``output_audio_buffer.stopped`` of a response the user talked over arrives after the barge-in
    # has already moved the assistant to listening (or, once the user stopped, to thinking).
    (S.LISTENING, T.PLAYBACK_DRAINED),
    (S.THINKING, T.PLAYBACK_DRAINED),
})
"""Pairs that are legal and change nothing. Disjoint from :data:`TRANSITIONS`."""


class IllegalTransition(RealtimeError):
    """A trigger arrived in a state where the table has no transition for it. Names both."""

    def __init__(self, state: AssistantState, trigger: Trigger) -> None:
        super().__init__(
            f"no transition from state {state.value!r} on trigger {trigger.value!r}; "
            f"legal triggers here: {', '.join(t.value for t in legal_triggers(state)) or 'none'}"
        )
        self.state = state
        self.trigger = trigger


def legal_triggers(state: AssistantState) -> list[Trigger]:
    """The triggers that have a transition from ``state``, in declaration order."""
    return [t for t in Trigger if (state, t) in TRANSITIONS]


class StateMachine:
    """The current state plus the table. No I/O, no clock: ``fire(trigger)`` and read ``state``."""

    def __init__(self, initial: AssistantState = AssistantState.IDLE) -> None:
        self._state = initial

    @property
    def state(self) -> AssistantState:
        return self._state

    def can(self, trigger: Trigger) -> bool:
        """Whether ``trigger`` is legal in the current state (a transition, or a declared no-op)."""
        return (self._state, trigger) in TRANSITIONS or (self._state, trigger) in NO_EFFECT

    def fire(self, trigger: Trigger) -> tuple[AssistantState, AssistantState]:
        """Apply ``trigger``; return ``(old, new)`` (equal for a :data:`NO_EFFECT` pair). Raises
        :class:`IllegalTransition` for any other pair not in :data:`TRANSITIONS`; the state is then unchanged."""
        old = self._state
        if (old, trigger) in NO_EFFECT:
            return old, old
        try:
            new = TRANSITIONS[(old, trigger)]
        except KeyError:
            raise IllegalTransition(old, trigger) from None
        self._state = new
        return old, new


def _edges() -> Iterator[tuple[AssistantState, Trigger, AssistantState]]:
    for (state, trigger), target in TRANSITIONS.items():
        yield state, trigger, target


def mermaid() -> str:
    """The table as a mermaid ``stateDiagram-v2``, for the docs. ``close`` (any state -> idle) is one note."""
    lines = ["stateDiagram-v2", "    [*] --> idle"]
    for state, trigger, target in _edges():
        if trigger is Trigger.CLOSE:
            continue
        lines.append(f"    {state.value} --> {target.value}: {trigger.value}")
    lines.append("    note right of idle: close, from any state, returns here")
    return "\n".join(lines) + "\n"
