"""The sideband: the server's own WebSocket onto a browser's WebRTC call (``?call_id=``, reference 3.1).

It runs the persona's tools (each call checked against the persona's allow-list), keeps the session on the
server's config (a browser can send ``session.update`` on its data channel; the sideband puts the
instructions and tools back), and enforces the call's limits: a maximum length and a spend ceiling computed
from the live ``usage`` of every ``response.done``. When a limit is reached the server hangs up.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from ..errors import ProtocolError, get_logger
from ..pricing import PriceTable, Usage
from ..protocol import codec
from ..protocol import events as ev
from .tools import ToolContext, ToolRegistry
from .upstream import UpstreamClient

__all__ = ["CallPolicy", "Sideband"]

logger = get_logger(__name__)

_MAX_REASSERTS = 3


@dataclass(frozen=True, kw_only=True)
class CallPolicy:
    """Per-call limits: ``max_seconds`` of call time and ``max_usd`` of spend (``None`` = no ceiling)."""

    max_seconds: float = 600.0
    max_usd: float | None = 1.0
    prices: PriceTable = field(default_factory=PriceTable)


class Sideband:
    """Runs one call's sideband until the call ends or a limit hangs it up.

    Create it after the upstream answered the SDP offer and await :meth:`run` in a task the server keeps.
    ``ended_reason`` tells why it stopped: ``"closed"`` (the call ended), ``"max_duration"``, ``"spend"``,
    ``"tampered"``, ``"hangup"`` (:meth:`hang_up` was called) or ``"error"``.
    """

    def __init__(
        self,
        *,
        upstream: UpstreamClient,
        registry: ToolRegistry,
        context: ToolContext,
        allowed_tools: tuple[str, ...],
        session: dict[str, Any],
        policy: CallPolicy,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._upstream = upstream
        self._registry = registry
        self.context = context
        self._allowed = allowed_tools
        self._session = session
        self._policy = policy
        self._clock = clock
        self.spent_usd = 0.0
        self.tool_calls = 0
        self.ended_reason: str | None = None
        self._send_lock = asyncio.Lock()
        self._pending: dict[str, int] = {}  # response_id -> tool calls still running
        self._done_responses: set[str] = set()
        self._answered: set[str] = set()  # responses whose tool outputs need a response.create
        self._reasserts = 0
        self._stop = asyncio.Event()
        self._tool_tasks: set[asyncio.Task[None]] = set()

    async def hang_up(self) -> None:
        """Ask :meth:`run` to end the call now."""
        if self.ended_reason is None:
            self.ended_reason = "hangup"
        self._stop.set()

    async def run(self) -> str:
        call_id = self.context.call_id
        hung_up = False
        try:
            async with self._upstream.sideband(call_id) as ws:
                try:
                    async with asyncio.timeout(self._policy.max_seconds), asyncio.TaskGroup() as tg:
                        stopper = tg.create_task(self._stop.wait())
                        reader = tg.create_task(self._read(ws, tg))
                        await asyncio.wait({stopper, reader}, return_when=asyncio.FIRST_COMPLETED)
                        # The call is over: tools still running have no one to answer.
                        for task in (stopper, reader, *self._tool_tasks):
                            task.cancel()
                except TimeoutError:
                    self.ended_reason = "max_duration"
                # Hang up while the sideband is still attached, so the call cannot outlive our supervision.
                hung_up = await self._hang_up_if_limited()
        except Exception as exc:  # noqa: BLE001  # a background task's boundary: log once, hang up below
            logger.warning("sideband of call %s failed: %s", call_id, type(exc).__name__)
            self.ended_reason = self.ended_reason or "error"
        if not hung_up:
            await self._hang_up_if_limited()
        return self.ended_reason or "closed"

    async def _hang_up_if_limited(self) -> bool:
        reason = self.ended_reason = self.ended_reason or "closed"
        if reason == "closed":
            return False
        logger.info("hanging up call %s: %s", self.context.call_id, reason)
        await self._upstream.hangup(self.context.call_id)
        return True

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, tg: asyncio.TaskGroup) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                if msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE):
                    break
                continue
            try:
                event = codec.decode_server_event(msg.data)
            except ProtocolError as exc:
                logger.warning("sideband of call %s: undecodable event %s", self.context.call_id, exc.event_type)
                continue
            if isinstance(event, ev.ResponseFunctionCallArgumentsDoneEvent):
                self._pending[event.response_id] = self._pending.get(event.response_id, 0) + 1
                task = tg.create_task(self._run_tool(ws, event))
                self._tool_tasks.add(task)
                task.add_done_callback(self._tool_tasks.discard)
            elif isinstance(event, ev.ResponseDoneEvent):
                await self._on_response_done(ws, event)
                if self.ended_reason is not None:
                    self._stop.set()
                    return
            elif isinstance(event, ev.SessionUpdatedEvent):
                await self._check_session(ws, event.session)
                if self.ended_reason is not None:
                    self._stop.set()
                    return
        self.ended_reason = self.ended_reason or "closed"
        self._stop.set()

    async def _send(self, ws: aiohttp.ClientWebSocketResponse, event: dict[str, Any]) -> None:
        async with self._send_lock:
            await ws.send_str(json.dumps(event))

    async def _run_tool(
        self, ws: aiohttp.ClientWebSocketResponse, event: ev.ResponseFunctionCallArgumentsDoneEvent
    ) -> None:
        name = event.name if isinstance(event.name, str) else ""
        self.tool_calls += 1
        output = await self._registry.run(name, event.arguments, self.context, allowed=self._allowed)
        item = {"type": "function_call_output", "call_id": event.call_id, "output": output}
        await self._send(ws, {"type": "conversation.item.create", "item": item})
        self._pending[event.response_id] -= 1
        self._answered.add(event.response_id)
        await self._maybe_continue(ws, event.response_id)

    async def _maybe_continue(self, ws: aiohttp.ClientWebSocketResponse, response_id: str) -> None:
        # One response.create per response, once its every tool has answered and the response is done: a
        # second one would collide with it (conversation_already_has_active_response, reference 6.4).
        if (
            response_id in self._done_responses
            and response_id in self._answered
            and self._pending.get(response_id, 0) == 0
        ):
            self._answered.discard(response_id)
            self._pending.pop(response_id, None)
            self._done_responses.discard(response_id)
            await self._send(ws, {"type": "response.create"})

    async def _on_response_done(self, ws: aiohttp.ClientWebSocketResponse, event: ev.ResponseDoneEvent) -> None:
        usage = event.response.usage if isinstance(event.response.usage, dict) else None
        if usage:
            self.spent_usd += Usage.from_response_usage(usage).cost(self._policy.prices)
        ceiling = self._policy.max_usd
        if ceiling is not None and self.spent_usd >= ceiling:
            self.ended_reason = "spend"
            return
        response_id = event.response.id if isinstance(event.response.id, str) else ""
        if response_id in self._pending:
            self._done_responses.add(response_id)
            await self._maybe_continue(ws, response_id)

    async def _check_session(self, ws: aiohttp.ClientWebSocketResponse, session: dict[str, Any]) -> None:
        expected_tools = sorted(t["name"] for t in self._session.get("tools", []))
        actual_tools = sorted(str(t.get("name")) for t in session.get("tools") or [] if isinstance(t, dict))
        if session.get("instructions") == self._session.get("instructions") and actual_tools == expected_tools:
            return
        self._reasserts += 1
        logger.warning("call %s: session changed from outside the server; restoring it", self.context.call_id)
        if self._reasserts > _MAX_REASSERTS:
            self.ended_reason = "tampered"
            return
        restore = {
            "type": "realtime",
            "instructions": self._session.get("instructions", ""),
            "tools": self._session.get("tools", []),
            "tool_choice": "auto",
        }
        await self._send(ws, {"type": "session.update", "session": restore})
