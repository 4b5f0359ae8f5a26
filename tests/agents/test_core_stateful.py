"""Hypothesis drives the assistant core with a model server: random user turns, barge-ins, audio, tool calls,
player progress and tool completions, in any interleaving the service allows. Invariants checked after every
step: the state machine agrees with what is audible, no response.create is sent while the model server has a
response active, every call_id gets at most one output (and, once everything settles, exactly one), and the
transcript never duplicates an item."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from aoai_realtime.agents.core import CoreConfig, Send, VoiceCore
from aoai_realtime.agents.state import AssistantState
from aoai_realtime.agents.tools import ToolCall, ToolPolicy, ToolResult
from aoai_realtime.protocol import events as ev

from . import builders as b

S = AssistantState


class CoreAgainstModelServer(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.core = VoiceCore(CoreConfig(tool_policy=ToolPolicy.FINISH), clock=lambda: self.now)
        self.core.connecting()
        self.core.connected()
        self.n = 0
        self.active: str | None = None  # the model server's active response
        self.active_item: str | None = None
        self.outputs: Counter[str] = Counter()
        self.calls: list[str] = []
        self.running: list[ToolCall] = []
        self.violations: list[str] = []
        self.creates_pending = 0

    def _id(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def _deliver(self, *events: Any) -> None:
        for event in events:
            self._perform(self.core.handle(event))

    def _perform(self, actions: list[Any]) -> None:
        for action in actions:
            if not isinstance(action, Send):
                if type(action).__name__ == "RunTool":
                    self.running.append(action.call)
                continue
            event = action.event
            if isinstance(event, ev.ResponseCreateEvent):
                if self.active is not None:
                    self.violations.append("response.create while a response is active")
                self.creates_pending += 1
            elif isinstance(event, ev.ConversationItemCreateEvent) and event.item.type == "function_call_output":
                assert isinstance(event.item.call_id, str)
                self.outputs[event.item.call_id] += 1
                self._deliver(b.output_added(event.item.call_id))

    @rule()
    def start_requested_response(self) -> None:
        if self.creates_pending and self.active is None:
            self.creates_pending -= 1
            self._start()

    def _start(self) -> None:
        self.active = self._id("r")
        self.active_item = None
        self._deliver(b.response_created(self.active))

    @rule()
    def user_turn(self) -> None:
        item = self._id("u")
        self._deliver(b.speech_started(item))
        if self.active is not None:  # interrupt_response: the service cancels the active response
            self._finish("cancelled")
        self._deliver(b.speech_stopped(item), b.committed(item))
        self._start()  # VAD create_response

    @precondition(lambda self: self.active is not None)
    @rule(ms=st.sampled_from([20, 100, 400]), text=st.sampled_from(["hi ", "there ", "friend. "]))
    def audio_chunk(self, ms: int, text: str) -> None:
        assert self.active is not None
        if self.active_item is None:
            self.active_item = self._id("a")
            self._deliver(b.message_added(self.active, self.active_item))
        self._deliver(b.said(self.active, self.active_item, text), b.audio(self.active, self.active_item, ms))

    @precondition(lambda self: self.active is not None)
    @rule()
    def tool_call(self) -> None:
        assert self.active is not None
        call_id = self._id("c")
        self.calls.append(call_id)
        self._deliver(b.call(self.active, call_id, "t"))

    @precondition(lambda self: self.active is not None)
    @rule()
    def finish(self) -> None:
        self._finish("completed")

    def _finish(self, status: str) -> None:
        assert self.active is not None
        rid, self.active = self.active, None  # the service is done with it before it says so
        if self.active_item is not None:
            self._deliver(b.audio_done(rid, self.active_item))
        self._deliver(b.response_done(rid, status=status))

    @rule(samples=st.sampled_from([480, 2400, 24000]))
    def play(self, samples: int) -> None:
        self.now += samples / 24000
        self._perform(self.core.played(samples))

    @precondition(lambda self: bool(self.running))
    @rule(index=st.integers(0, 10), status=st.sampled_from(["ok", "error", "timeout", "cancelled"]))
    def settle(self, index: int, status: str) -> None:
        call = self.running.pop(index % len(self.running))
        self._perform(self.core.tool_settled(ToolResult(call, status, "{}", 1.0)))  # type: ignore[arg-type]

    @invariant()
    def never_creates_over_an_active_response(self) -> None:
        assert self.violations == []

    @invariant()
    def speaking_means_audio_is_playing_or_coming(self) -> None:
        if self.core.state is S.SPEAKING:
            assert not self.core.playback.empty or self.core.heard.audio_open

    @invariant()
    def at_most_one_output_per_call(self) -> None:
        assert all(count == 1 for count in self.outputs.values())

    @invariant()
    def transcript_has_no_duplicates(self) -> None:
        ids = [e.item_id for e in self.core.transcript.entries(include_empty=True)]
        assert len(ids) == len(set(ids))

    def teardown(self) -> None:
        # Let everything finish: every call is answered exactly once and the model gets to speak.
        while self.running:
            self.settle(0, "ok")
        if self.active is not None:
            self._finish("completed")
        for _ in range(5):
            self.start_requested_response()
            if self.active is not None:
                self._finish("completed")
        assert self.outputs == Counter(self.calls)
        assert self.creates_pending == 0
        assert not self.core.writer.wanted


CoreAgainstModelServer.TestCase.settings = settings(max_examples=150, stateful_step_count=40)
TestCoreAgainstModelServer = CoreAgainstModelServer.TestCase
