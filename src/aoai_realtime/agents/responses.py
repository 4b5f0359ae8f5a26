"""The single writer of ``response.create``: never while a response is active, once per need.

Only one response may write to the default conversation at a time (reference 2.3, 4.5); a second
``response.create`` gets ``conversation_already_has_active_response``. Server VAD creates responses on its
own, so a client that sends ``response.create`` whenever it likes races it (section 6 item 4). This module
tracks the active response from events and decides when to send, sans I/O: every method returns the
events to send (zero or one ``response.create``).

A *need* is registered by :meth:`ResponseWriter.request` (e.g. after all tool outputs of a response are
sent). It is satisfied by the next response created once the conversation holds every tool output sent so
far (counted from ``conversation.item.added`` / ``.created`` of ``function_call_output`` items), whoever
created it: a VAD response that already sees the outputs makes ours unnecessary, so the model never
answers twice and never stays mute.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import get_logger
from ..protocol import events as ev

__all__ = ["ResponseWriter"]

log = get_logger(__name__)

_RESP_ID = re.compile(r"\bresp_[A-Za-z0-9_\-]+")


class ResponseWriter:
    """Tracks the active response; emits ``response.create`` only when it is safe and needed."""

    def __init__(self) -> None:
        self.active_response_id: str | None = None
        self._in_flight = False  # a response.create is on the wire, no response.created/error yet
        self._wanted = False
        self._wanted_params: dict[str, Any] | None = None
        self._unacked_outputs = 0
        self.sent = 0
        self.conflicts = 0

    @property
    def busy(self) -> bool:
        """A response is active or one has been asked for and not started yet."""
        return self.active_response_id is not None or self._in_flight

    @property
    def wanted(self) -> bool:
        return self._wanted

    def output_sent(self) -> None:
        """A ``function_call_output`` item was sent (its ack is counted by :meth:`on_event`)."""
        self._unacked_outputs += 1

    def request(self, params: dict[str, Any] | None = None) -> list[ev.ClientEvent]:
        """Ask for one response (``params`` = ``response.create.response``). Sent now or when safe."""
        self._wanted = True
        self._wanted_params = params
        return self._maybe_send()

    def withdraw(self) -> None:
        """Forget a pending need (the user interrupted: their turn will bring its own response)."""
        self._wanted = False
        self._wanted_params = None

    def _maybe_send(self) -> list[ev.ClientEvent]:
        if not self._wanted or self.busy:
            return []
        self._in_flight = True
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
            self._in_flight = False
            if self._unacked_outputs == 0:
                self._wanted = False  # this response sees every output: it is the answer we wanted
                self._wanted_params = None
            return []
        if isinstance(event, ev.ResponseDoneEvent):
            rid = event.response.id
            if self.active_response_id in (None, "?", rid) or not isinstance(rid, str):
                self.active_response_id = None
            return self._maybe_send()
        if isinstance(event, ev.ConversationItemAdded | ev.ConversationItemCreatedEvent):
            if event.item.type == "function_call_output" and self._unacked_outputs > 0:
                self._unacked_outputs -= 1
            return []
        if isinstance(event, ev.RealtimeErrorEvent):
            code = event.error.code
            if code == "conversation_already_has_active_response":
                # Benign race with a VAD (or other) response: wait for it to finish, then decide again.
                self.conflicts += 1
                self._in_flight = False
                if self.active_response_id is None:
                    found = _RESP_ID.search(event.error.message)
                    self.active_response_id = found.group() if found else "?"
                log.info("response.create collided with an active response; will retry after it ends")
            elif self._in_flight and code in (None, "invalid_value", "unknown_parameter", "invalid_type"):
                # Our response.create was rejected for another reason: do not loop on it.
                param = event.error.param
                if isinstance(param, str) and param.startswith("response"):
                    self._in_flight = False
                    self._wanted = False
            return []
        return []
