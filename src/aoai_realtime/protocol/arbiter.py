"""The one tool loop's bookkeeping and the one writer of ``response.create``, sans I/O.

Every side that answers function calls (the agents' :class:`~aoai_realtime.agents.core.VoiceCore`, the server's
sideband, ``talk``) drives these two objects and nothing else decides when to send a ``response.create``:

- :class:`ResponseArbiter`: only one response may write to the default conversation at a time (reference 2.3,
  4.5); a second ``response.create`` gets ``conversation_already_has_active_response``. Server VAD creates
  responses on its own, so a client that sends ``response.create`` whenever it likes races it (section 6 item 4).
  The arbiter tracks the active response from events and sends a ``response.create`` only when none is active,
  once per *need*, and again after the active one ends when one collided.
- :class:`ToolCallBook`: records each function call (``response.function_call_arguments.done``,
  ``response.output_item.done``, or the ``response.done`` output), answers each ``call_id`` exactly once
  (:meth:`ToolCallBook.settle`), and asks the arbiter for one ``response.create`` when every call of a response
  is settled and that response is done.
- :func:`tool_error_output`: the one error shape a model is sent when a call fails.

A *need* (:meth:`ResponseArbiter.request`) is satisfied by the next response created once the conversation holds
every tool output sent so far (counted from ``conversation.item.added`` / ``.created`` of
``function_call_output`` items), whoever created it: a VAD response that already sees the outputs makes ours
unnecessary, so the model never answers twice and never stays mute.

Nothing here does I/O, awaits or reads a clock: feed every server event, in order, to
:meth:`ToolCallBook.on_event` (or :meth:`ResponseArbiter.on_event` when there are no tools) and send the client
events returned, in order, before anything returned later.
"""

from __future__ import annotations

import json
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final

from ..errors import get_logger, redact
from . import events as ev

__all__ = [
    "ERROR_KINDS",
    "BookStep",
    "ResponseArbiter",
    "ToolCall",
    "ToolCallBook",
    "tool_error_output",
]

log = get_logger(__name__)

ERROR_KINDS: Final = frozenset(
    {"tool_error", "unknown_tool", "invalid_arguments", "timeout", "cancelled", "not_allowed"}
)

_RESP_ID = re.compile(r"\bresp_[A-Za-z0-9_\-]+")
_ACTIVE = "conversation_already_has_active_response"
_MAX_BLIND_RETRIES = 3  # collisions in a row with no active response known: then wait for the next response.done


def tool_error_output(kind: str, message: str, **extra: Any) -> str:
    """The ``function_call_output`` text for a failed call: ``{"error": {"type": kind, "message": ..., **extra}}``.

    ``kind`` is one of :data:`ERROR_KINDS`; ``message`` is redacted (no key or token reaches a model).
    ``extra`` values must be JSON-serialisable (e.g. ``available=[...]``, the tools that exist).
    """
    if kind not in ERROR_KINDS:
        raise ValueError(f"unknown tool error kind {kind!r}; use one of {sorted(ERROR_KINDS)}")
    return json.dumps({"error": {"type": kind, "message": redact(message), **extra}})


class ResponseArbiter:
    """Tracks the active response; returns a ``response.create`` only when it is safe and needed."""

    def __init__(self) -> None:
        self.active_response_id: str | None = None
        self._in_flight = False  # a response.create is on the wire, no response.created/error yet
        self._wanted = False
        self._wanted_params: dict[str, Any] | None = None
        self._unacked_outputs = 0
        self._unacked_at_request = 0  # outputs sent before the need and not yet in the conversation
        self._unacked_at_send = 0  # outputs sent before our response.create and not yet in the conversation
        self._finished: deque[str] = deque(maxlen=64)  # ids of responses seen done
        self._blind_retries = 0
        self.sent = 0
        self.conflicts = 0

    @property
    def busy(self) -> bool:
        """A response is active or one has been asked for and not started yet."""
        return self.active_response_id is not None or self._in_flight

    @property
    def wanted(self) -> bool:
        """A response is needed and not created yet."""
        return self._wanted

    def output_sent(self) -> None:
        """A ``function_call_output`` item was sent (its ack is counted by :meth:`on_event`)."""
        self._unacked_outputs += 1

    def request(self, params: dict[str, Any] | None = None) -> list[ev.ClientEvent]:
        """Ask for one response (``params`` = ``response.create.response``). Returns it now, or later from
        :meth:`on_event` when no response is active."""
        self._wanted = True
        self._wanted_params = params
        self._unacked_at_request = self._unacked_outputs
        return self._maybe_send()

    def withdraw(self) -> None:
        """Forget a pending need (the user interrupted: their turn will bring its own response)."""
        self._wanted = False
        self._wanted_params = None

    def _maybe_send(self) -> list[ev.ClientEvent]:
        if not self._wanted or self.busy:
            return []
        self._in_flight = True
        self._unacked_at_send = self._unacked_outputs
        self.sent += 1
        params = self._wanted_params
        if params:
            return [ev.ResponseCreateEvent(response=params)]
        return [ev.ResponseCreateEvent()]

    def on_event(self, event: Any) -> list[ev.ClientEvent]:
        """Feed every server event, in order. Returns a ``response.create`` to send, if now is the time."""
        if isinstance(event, ev.ResponseCreatedEvent):
            rid = event.response.id
            self.active_response_id = rid if isinstance(rid, str) else "?"
            # The service adds items in the order it reads them: the response our create made sees every output
            # sent before it. A response created while one of those is still missing is a VAD response, and
            # ours is still on its way (it will be created or refused after this one).
            if self._unacked_at_send == 0:
                self._in_flight = False
            self._blind_retries = 0
            if self._unacked_at_request == 0:
                self._wanted = False  # this response sees every output the need was for: it is the answer
                self._wanted_params = None
            return []
        if isinstance(event, ev.ResponseDoneEvent):
            rid = event.response.id
            if isinstance(rid, str):
                self._finished.append(rid)
            if self.active_response_id in (None, "?", rid) or not isinstance(rid, str):
                self.active_response_id = None
            return self._maybe_send()
        if isinstance(event, ev.ConversationItemAdded | ev.ConversationItemCreatedEvent):
            if event.item.type == "function_call_output":
                self._acked()
            return []
        if isinstance(event, ev.RealtimeErrorEvent):
            return self._on_error(event.error)
        return []

    def _acked(self) -> None:
        # The service adds items in the order we send them, so acks come oldest first.
        if self._unacked_outputs > 0:
            self._unacked_outputs -= 1
        if self._unacked_at_request > 0:
            self._unacked_at_request -= 1
        if self._unacked_at_send > 0:
            self._unacked_at_send -= 1

    def _on_error(self, error: ev.ErrorDetails) -> list[ev.ClientEvent]:
        code = error.code
        param = error.param
        if code != _ACTIVE and isinstance(param, str) and param.startswith("item") and self._unacked_outputs:
            # An output item was refused (e.g. an unknown call_id): it will never be added; do not wait for it.
            log.warning("a conversation item was refused (%s): %s", param, redact(error.message))
            self._acked()
        if code == _ACTIVE:
            # A benign race with a VAD (or other) response: retry once the active response has ended.
            self.conflicts += 1
            self._in_flight = False
            if self.active_response_id is not None:
                log.info("response.create collided with response %s; will retry after it ends", self.active_response_id)
                return []
            found = _RESP_ID.search(error.message)
            named = found.group() if found else None
            if named is not None and named not in self._finished:
                self.active_response_id = named  # its response.created was not seen (we joined late)
                return []
            # The response it collided with has ended already (its response.done came before this error).
            self._blind_retries += 1
            if self._blind_retries > _MAX_BLIND_RETRIES:
                log.warning("response.create keeps colliding with an unseen response; waiting for a response.done")
                self.active_response_id = "?"
                return []
            return self._maybe_send()
        in_flight_refused = self._in_flight and code in (None, "invalid_value", "unknown_parameter", "invalid_type")
        if in_flight_refused and isinstance(param, str) and param.startswith("response"):
            # Our response.create was rejected for another reason: do not loop on it.
            log.warning("response.create was refused (%s): %s", param, redact(error.message))
            self._in_flight = False
            self._wanted = False
        return []


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call the model made."""

    call_id: str
    name: str
    arguments: str
    response_id: str = ""
    item_id: str = ""


@dataclass(frozen=True, slots=True)
class BookStep:
    """What one server event asks of the driver: ``calls`` to start (each exactly once, ever) and ``send``
    (client events to send now, in order)."""

    calls: list[ToolCall] = field(default_factory=list)
    send: list[ev.ClientEvent] = field(default_factory=list)


@dataclass(slots=True)
class _Response:
    calls: list[str] = field(default_factory=list)
    done: bool = False
    no_follow_up: bool = False  # cancelled or interrupted: the user's turn brings its own response
    followed_up: bool = False


class ToolCallBook:
    """Which function calls are open, per response; each answered exactly once; one follow-up per response.

    Feed every server event to :meth:`on_event` and start the calls it returns; report each call's output to
    :meth:`settle` and send what it returns. ``arbiter`` is the session's one :class:`ResponseArbiter` (other
    needs, e.g. after a user's text message, go to ``book.arbiter.request()``).
    """

    def __init__(self, arbiter: ResponseArbiter | None = None) -> None:
        self.arbiter = arbiter if arbiter is not None else ResponseArbiter()
        self._calls: dict[str, ToolCall] = {}
        self._settled: set[str] = set()
        self._abandoned: set[str] = set()
        self._responses: dict[str, _Response] = {}
        self.refused = 0  # settles refused: a call_id answered before, or one never seen

    # -- views ---------------------------------------------------------------------------------------------

    @property
    def open_calls(self) -> list[ToolCall]:
        """Calls started and not answered yet."""
        return [c for cid, c in self._calls.items() if cid not in self._settled]

    def call(self, call_id: str) -> ToolCall | None:
        return self._calls.get(call_id)

    def is_settled(self, call_id: str) -> bool:
        return call_id in self._settled

    @property
    def idle(self) -> bool:
        """No call open, no response active, none wanted: the model has nothing left to say on its own."""
        return not self.open_calls and not self.arbiter.busy and not self.arbiter.wanted

    # -- events --------------------------------------------------------------------------------------------

    def on_event(self, event: Any) -> BookStep:
        """Feed every server event, in order (the arbiter sees it too)."""
        step = BookStep(send=self.arbiter.on_event(event))
        if isinstance(event, ev.ResponseFunctionCallArgumentsDoneEvent):
            name = event.name if isinstance(event.name, str) else ""
            self._add(ToolCall(event.call_id, name, event.arguments, event.response_id, event.item_id), step)
        elif isinstance(event, ev.ResponseOutputItemDoneEvent):
            self._add_item(event.item, event.response_id, step)
        elif isinstance(event, ev.ResponseCreatedEvent):
            rid = event.response.id if isinstance(event.response.id, str) else "?"
            self._responses.setdefault(rid, _Response())
        elif isinstance(event, ev.ResponseDoneEvent):
            rid = event.response.id if isinstance(event.response.id, str) else "?"
            resp = self._responses.setdefault(rid, _Response())
            for item in event.response.output or []:
                self._add_item(item, rid, step)
            resp.done = True
            if event.response.status == "cancelled":
                resp.no_follow_up = True
            step.send.extend(self._follow_up(resp))
        return step

    def _add_item(self, item: ev.Item, response_id: str, step: BookStep) -> None:
        if item.type == "function_call" and isinstance(item.call_id, str):
            self._add(
                ToolCall(
                    item.call_id,
                    item.name if isinstance(item.name, str) else "",
                    item.arguments if isinstance(item.arguments, str) else "",
                    response_id,
                    item.id if isinstance(item.id, str) else "",
                ),
                step,
            )

    def _add(self, call: ToolCall, step: BookStep) -> None:
        if call.call_id in self._calls or call.call_id in self._abandoned:
            return
        if not call.name:
            return  # beta events carry no name; output_item.done / response.done will (keyed by call_id)
        self._calls[call.call_id] = call
        self._responses.setdefault(call.response_id, _Response()).calls.append(call.call_id)
        step.calls.append(call)

    # -- driver --------------------------------------------------------------------------------------------

    def settle(self, call_id: str, output: str) -> list[ev.ClientEvent]:
        """Call ``call_id`` finished with ``output`` (success or :func:`tool_error_output`). Returns its
        ``function_call_output`` item and, when it was the last open call of a finished response, the one
        ``response.create`` that lets the model answer. A second settle of a call (or of an unknown call) is
        refused: it returns nothing and counts in :attr:`refused`."""
        if call_id in self._abandoned:
            return []  # a call of a session that was replaced: its id means nothing to the new one
        call = self._calls.get(call_id)
        if call is None or call_id in self._settled:
            self.refused += 1
            log.warning("tool output for call %s refused: %s", call_id, "unknown call" if call is None else "answered")
            return []
        self._settled.add(call_id)
        out: list[ev.ClientEvent] = [
            ev.ConversationItemCreateEvent(item=ev.Item(type="function_call_output", call_id=call_id, output=output))
        ]
        self.arbiter.output_sent()
        resp = self._responses.get(call.response_id)
        if resp is not None:
            out.extend(self._follow_up(resp))
        return out

    def _follow_up(self, resp: _Response) -> list[ev.ClientEvent]:
        if not resp.done or not resp.calls or resp.followed_up or resp.no_follow_up:
            return []
        if all(c in self._settled for c in resp.calls):
            resp.followed_up = True
            return self.arbiter.request()
        return []

    def interrupt(self) -> None:
        """The user interrupted: the active response and every response with open calls get no follow-up
        (the user's turn brings its own response); a pending need is withdrawn. Open calls still need their
        one output each."""
        active = self.arbiter.active_response_id
        if active is not None and active in self._responses:
            self._responses[active].no_follow_up = True
        for resp in self._responses.values():
            if any(c not in self._settled for c in resp.calls):
                resp.no_follow_up = True
        self.arbiter.withdraw()

    def new_session(self) -> None:
        """Another session took over (rollover): forget responses and the arbiter's state; open calls are
        abandoned (a later settle of one returns nothing)."""
        self._abandoned.update(c.call_id for c in self.open_calls)
        self._abandoned.update(self._settled)
        self._calls.clear()
        self._settled.clear()
        self._responses.clear()
        self.arbiter = ResponseArbiter()
