"""The one tool loop, sans I/O: server events in (as wire text, decoded by the codec), client events out.

No event loop, no sockets, no clock. The stateful test runs the book and its arbiter against a model of the
service (one active response in the default conversation, a second ``response.create`` refused with
``conversation_already_has_active_response``, VAD starting responses on its own, both directions in flight
at once) and checks the rules, not the implementation: the client never sends a ``response.create`` while it
knows a response is active; every call_id gets exactly one output; every finished response that called tools
is followed by a response that sees all their outputs (so a collided create was retried); and the service
accepts no more of our creates than there were such needs (the model never answers twice because of us).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from aoai_realtime.agents.responses import ResponseWriter
from aoai_realtime.protocol import codec
from aoai_realtime.protocol import events as ev
from aoai_realtime.protocol.arbiter import (
    ERROR_KINDS,
    ResponseArbiter,
    ToolCall,
    ToolCallBook,
    tool_error_output,
)

# -- wire helpers: every event reaches the book as the text a socket would carry ----------------------------


def wire(**event: Any) -> Any:
    return codec.decode_server_event(json.dumps({"event_id": "event_x", **event}))


def created(rid: str) -> Any:
    return wire(type="response.created", response={"id": rid, "object": "realtime.response", "status": "in_progress"})


def done(rid: str, status: str = "completed", output: list[dict[str, Any]] | None = None) -> Any:
    response: dict[str, Any] = {"id": rid, "object": "realtime.response", "status": status}
    if output is not None:
        response["output"] = output
    return wire(type="response.done", response=response)


def args_done(call_id: str, rid: str, name: str | None = "lookup", arguments: str = "{}") -> Any:
    event: dict[str, Any] = {"type": "response.function_call_arguments.done", "response_id": rid,
                             "item_id": f"item_{call_id}", "output_index": 0, "call_id": call_id,
                             "arguments": arguments}
    if name is not None:
        event["name"] = name
    return wire(**event)


def fc_item(call_id: str, name: str = "lookup") -> dict[str, Any]:
    return {"id": f"item_{call_id}", "type": "function_call", "call_id": call_id, "name": name, "arguments": "{}"}


def item_done(call_id: str, rid: str, name: str = "lookup") -> Any:
    return wire(type="response.output_item.done", response_id=rid, output_index=0, item=fc_item(call_id, name))


def output_added(call_id: str) -> Any:
    return wire(type="conversation.item.added", previous_item_id=None,
                item={"id": f"item_out_{call_id}", "type": "function_call_output", "call_id": call_id, "output": "x"})


def busy_error(active: str | None) -> Any:
    message = "Conversation already has an active response in progress"
    message += f": {active}. Wait until the response is finished before creating a new one." if active else "."
    code = "conversation_already_has_active_response"
    return wire(type="error", error={"type": "invalid_request_error", "code": code, "message": message})


def creates(events: list[Any]) -> int:
    return sum(isinstance(e, ev.ResponseCreateEvent) for e in events)


def outputs(events: list[Any]) -> list[tuple[str, str]]:
    return [(e.item.call_id, e.item.output) for e in events if isinstance(e, ev.ConversationItemCreateEvent)]


# -- examples ------------------------------------------------------------------------------------------------


def test_two_calls_of_one_response_get_one_output_each_then_one_create() -> None:
    book = ToolCallBook()
    assert book.on_event(created("resp_1")).send == []
    step = book.on_event(args_done("call_a", "resp_1"))
    assert [c.call_id for c in step.calls] == ["call_a"]
    assert book.on_event(item_done("call_a", "resp_1")).calls == []  # the same call announced twice: runs once
    assert [c.call_id for c in book.on_event(args_done("call_b", "resp_1")).calls] == ["call_b"]
    assert book.on_event(done("resp_1", output=[fc_item("call_a"), fc_item("call_b")])).send == []  # still open
    first = book.settle("call_a", "A")
    assert outputs(first) == [("call_a", "A")] and creates(first) == 0
    last = book.settle("call_b", "B")
    assert outputs(last) == [("call_b", "B")]
    assert isinstance(last[-1], ev.ResponseCreateEvent) and creates(last) == 1


def test_a_second_settle_is_refused_and_counted() -> None:
    book = ToolCallBook()
    book.on_event(created("resp_1"))
    book.on_event(args_done("call_a", "resp_1"))
    book.on_event(done("resp_1"))
    assert creates(book.settle("call_a", "A")) == 1
    assert book.settle("call_a", "again") == []
    assert book.settle("call_never_seen", "x") == []
    assert book.refused == 2


def test_calls_settled_before_the_response_is_done_wait_for_it() -> None:
    book = ToolCallBook()
    book.on_event(created("resp_1"))
    book.on_event(args_done("call_a", "resp_1"))
    assert creates(book.settle("call_a", "A")) == 0  # the model may still be emitting calls
    assert creates(book.on_event(done("resp_1")).send) == 1


def test_beta_events_without_a_name_wait_for_the_item() -> None:
    book = ToolCallBook()
    book.on_event(created("resp_1"))
    assert book.on_event(args_done("call_a", "resp_1", name=None)).calls == []
    [call] = book.on_event(item_done("call_a", "resp_1", name="lookup")).calls
    assert call == ToolCall("call_a", "lookup", "{}", "resp_1", "item_call_a")


def test_a_call_only_in_response_done_is_still_run() -> None:
    book = ToolCallBook()
    book.on_event(created("resp_1"))
    step = book.on_event(done("resp_1", output=[fc_item("call_z")]))
    assert [c.call_id for c in step.calls] == ["call_z"] and step.send == []
    assert creates(book.settle("call_z", "Z")) == 1


def test_collision_with_a_vad_response_is_retried_after_it_ends() -> None:
    book = ToolCallBook()
    book.on_event(created("resp_1"))
    book.on_event(args_done("call_a", "resp_1"))
    book.on_event(done("resp_1"))
    assert creates(book.settle("call_a", "A")) == 1
    book.on_event(output_added("call_a"))
    # VAD started resp_2 after our output was added and before our create arrived: the service refuses the
    # create. resp_2 sees the output, so it is the answer: no second create after it.
    assert book.on_event(created("resp_2")).send == []
    assert book.on_event(busy_error("resp_2")).send == []
    assert book.arbiter.conflicts == 1
    assert creates(book.on_event(done("resp_2")).send) == 0
    assert book.idle


def test_collision_when_the_active_response_does_not_see_the_outputs() -> None:
    book = ToolCallBook()
    book.on_event(created("resp_1"))
    book.on_event(args_done("call_a", "resp_1"))
    book.on_event(done("resp_1"))
    assert creates(book.settle("call_a", "A")) == 1
    book.on_event(created("resp_vad"))  # VAD: created before our output reached the conversation
    book.on_event(output_added("call_a"))
    assert book.on_event(busy_error("resp_vad")).send == []
    assert creates(book.on_event(done("resp_vad")).send) == 1  # retried once the VAD response ended
    assert book.arbiter.sent == 2


def test_collision_reported_after_the_colliding_response_ended_retries_at_once() -> None:
    arbiter = ResponseArbiter()
    assert creates(arbiter.request()) == 1
    arbiter.on_event(created("resp_other"))
    arbiter.on_event(done("resp_other"))
    arbiter.output_sent()  # keeps the need alive across the created above
    assert creates(arbiter.request()) == 1
    assert creates(arbiter.on_event(busy_error("resp_other"))) == 1  # resp_other is over: retry now


def test_cancelled_response_gets_its_outputs_but_no_follow_up() -> None:
    book = ToolCallBook()
    book.on_event(created("resp_1"))
    book.on_event(args_done("call_a", "resp_1"))
    book.on_event(done("resp_1", status="cancelled"))  # the user barged in: their turn brings a response
    sent = book.settle("call_a", "A")
    assert outputs(sent) == [("call_a", "A")] and creates(sent) == 0


def test_interrupt_withdraws_and_new_session_abandons_open_calls() -> None:
    book = ToolCallBook()
    book.on_event(created("resp_1"))
    book.on_event(args_done("call_a", "resp_1"))
    book.interrupt()
    book.on_event(done("resp_1"))
    assert creates(book.settle("call_a", "A")) == 0
    book.on_event(created("resp_2"))
    book.on_event(args_done("call_b", "resp_2"))
    book.new_session()
    assert book.open_calls == [] and book.settle("call_b", "B") == [] and book.refused == 0
    assert not book.arbiter.busy


def test_response_writer_is_the_arbiter() -> None:
    assert ResponseWriter is ResponseArbiter


def test_the_arbiter_imports_no_io_libraries() -> None:
    code = (
        "import sys; import aoai_realtime.protocol.arbiter;"
        "print([m for m in ('asyncio', 'websockets', 'aiortc', 'aiohttp') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("kind", sorted(ERROR_KINDS))
def test_tool_error_output_is_one_shape_and_redacted(kind: str) -> None:
    text = tool_error_output(kind, "failed with api_key=abcdef123456 Bearer eyJabc.def.ghi", available=["a"])
    assert json.loads(text) == {"error": {"type": kind, "message": "failed with api_key=*** Bearer ***",
                                          "available": ["a"]}}


def test_tool_error_output_refuses_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown tool error kind"):
        tool_error_output("oops", "x")


# -- the rule, against a model of the service ----------------------------------------------------------------


@dataclass
class _ServerResponse:
    by_client: bool
    sees: frozenset[str]  # function_call_output call_ids in the conversation when it was created
    calls: list[str] = field(default_factory=list)


class BookAgainstModelService(RuleBasedStateMachine):
    """Both directions in flight: Hypothesis picks which side moves next."""

    def __init__(self) -> None:
        super().__init__()
        self.book = ToolCallBook()
        self.to_client: deque[Any] = deque()
        self.to_server: deque[ev.ClientEvent] = deque()
        self.n = 0
        # the service
        self.active: str | None = None
        self.responses: dict[str, _ServerResponse] = {}
        self.in_conversation: set[str] = set()
        self.answered: Counter[str] = Counter()
        self.cancelled: set[str] = set()
        # what the client has seen (the harness's own reading of the delivered events)
        self.seen_active: set[str] = set()
        self.running: list[ToolCall] = []
        self.settled: list[str] = []
        self.violations: list[str] = []

    # the service's side

    def _start(self, by_client: bool) -> None:
        self.n += 1
        rid = f"resp_{self.n}"
        self.active = rid
        self.responses[rid] = _ServerResponse(by_client, frozenset(self.in_conversation))
        self.to_client.append(created(rid))

    @rule()
    def vad_starts_a_response(self) -> None:
        if self.active is None:
            self._start(by_client=False)

    @precondition(lambda self: self.active is not None)
    @rule(calls=st.integers(0, 2), cancelled=st.booleans(), announce_item=st.booleans())
    def active_response_finishes(self, calls: int, cancelled: bool, announce_item: bool) -> None:
        rid = self.active
        assert rid is not None
        for _ in range(calls):
            self.n += 1
            cid = f"call_{self.n}"
            self.responses[rid].calls.append(cid)
            self.to_client.append(args_done(cid, rid))
            if announce_item:
                self.to_client.append(item_done(cid, rid))
        if cancelled:
            self.cancelled.add(rid)
        self.to_client.append(done(rid, "cancelled" if cancelled else "completed"))
        self.active = None

    @precondition(lambda self: bool(self.to_server))
    @rule()
    def service_reads(self) -> None:
        event = self.to_server.popleft()
        if isinstance(event, ev.ConversationItemCreateEvent):
            cid = event.item.call_id
            assert isinstance(cid, str)
            self.answered[cid] += 1
            self.in_conversation.add(cid)
            self.to_client.append(output_added(cid))
        elif isinstance(event, ev.ResponseCreateEvent):
            if self.active is not None:
                self.to_client.append(busy_error(self.active))
            else:
                self._start(by_client=True)

    # the client's side

    def _sent(self, events: list[ev.ClientEvent]) -> None:
        for event in events:
            if isinstance(event, ev.ResponseCreateEvent) and self.seen_active:
                self.violations.append(f"response.create while {sorted(self.seen_active)} is active")
            self.to_server.append(event)

    @precondition(lambda self: bool(self.to_client))
    @rule()
    def client_reads(self) -> None:
        event = self.to_client.popleft()
        if isinstance(event, ev.ResponseCreatedEvent):
            self.seen_active.add(str(event.response.id))
        elif isinstance(event, ev.ResponseDoneEvent):
            self.seen_active.discard(str(event.response.id))
        step = self.book.on_event(event)
        self.running.extend(step.calls)
        self._sent(step.send)

    @precondition(lambda self: bool(self.running))
    @rule(data=st.data())
    def a_tool_finishes(self, data: st.DataObject) -> None:
        call = self.running.pop(data.draw(st.integers(0, len(self.running) - 1)))
        self.settled.append(call.call_id)
        self._sent(self.book.settle(call.call_id, f"out {call.call_id}"))

    @precondition(lambda self: bool(self.settled))
    @rule(data=st.data())
    def a_tool_answers_twice(self, data: st.DataObject) -> None:
        cid = data.draw(st.sampled_from(self.settled))
        refused = self.book.refused
        if self.book.settle(cid, "again") != [] or self.book.refused != refused + 1:
            self.violations.append(f"second settle of {cid} not refused")

    @invariant()
    def no_violation_and_never_two_outputs(self) -> None:
        assert self.violations == []
        assert all(n == 1 for n in self.answered.values()), self.answered

    def teardown(self) -> None:
        # Let everything settle: tools finish, both directions drain, responses end with no more calls.
        for _ in range(10_000):
            if self.running:
                self.a_tool_finishes_all()
            elif self.to_server:
                self.service_reads()
            elif self.to_client:
                self.client_reads()
            elif self.active is not None:
                self.active_response_finishes(calls=0, cancelled=False, announce_item=False)
            else:
                break
        assert self.violations == []
        called = [c for r in self.responses.values() for c in r.calls]
        assert sorted(self.answered) == sorted(called) and set(self.answered.values()) <= {1}, "each call once"
        needs = [r for rid, r in self.responses.items() if r.calls and rid not in self.cancelled]
        for need in needs:  # someone answered after every output was in (a collided create was retried)
            assert any(set(need.calls) <= r.sees for r in self.responses.values()), "a need was lost"
        accepted = sum(r.by_client for r in self.responses.values())
        assert accepted <= len(needs), "the service accepted more of our creates than there were needs"

    def a_tool_finishes_all(self) -> None:
        while self.running:
            call = self.running.pop(0)
            self.settled.append(call.call_id)
            self._sent(self.book.settle(call.call_id, f"out {call.call_id}"))


BookAgainstModelService.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
test_book_against_model_service = BookAgainstModelService.TestCase
