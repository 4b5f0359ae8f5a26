"""The sideband: the server's own WebSocket onto a browser's WebRTC call (``?call_id=``, reference 3.1).

It runs the persona's tools (each call checked against the persona's allow-list) through the one tool loop
(:class:`~aoai_realtime.protocol.arbiter.ToolCallBook` and its
:class:`~aoai_realtime.protocol.arbiter.ResponseArbiter`: every call answered once, one ``response.create`` per
response that called tools, retried when it collides with a VAD response; a message the user typed on the
data channel gets its one reply from the same arbiter, so browsers never send ``response.create``), keeps the
session on the server's config (a browser can send ``session.update`` on its data channel; the sideband puts the
instructions and tools back), records the call (transcript turns and tool calls, for the server's ``call_ended``
hook), and enforces the call's limits: a maximum length and a spend ceiling computed from the live ``usage`` of
every ``response.done``. When a limit is reached the server hangs up.

The session is held to the persona's whole config (:class:`~aoai_realtime.server.session_policy.SessionGuard`):
a ``session.updated`` that changes any guarded field is logged and, by :attr:`CallPolicy.on_tamper`, either put
back (``"restore"``; after ``max_tampering`` attempts the call is hung up) or ends the call at once
(``"hang_up"``); a response created with an override the persona does not allow (another voice, other output
modalities, more output tokens) is cancelled with ``response.cancel`` and counts as an attempt too.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp

from ..clock import Clock, as_clock
from ..errors import ProtocolError, get_logger
from ..pricing import PriceTable, Usage
from ..protocol import codec
from ..protocol import events as ev
from ..protocol.arbiter import ToolCall, ToolCallBook
from .hooks import CallRecord, ToolCallRecord
from .recording import CallTranscript
from .session_policy import SessionGuard
from .tools import ToolContext, ToolRegistry
from .upstream import UpstreamClient

__all__ = ["CallPolicy", "Sideband"]

logger = get_logger(__name__)


@dataclass(frozen=True, kw_only=True)
class CallPolicy:
    """Per-call limits: ``max_seconds`` of call time and ``max_usd`` of spend (``None`` = no ceiling).

    ``on_tamper``: what a change to the persona's session from outside the server does: ``"restore"`` puts the
    config back (and hangs up after ``max_tampering`` attempts in one call), ``"hang_up"`` ends the call at once.
    """

    max_seconds: float = 600.0
    max_usd: float | None = 1.0
    prices: PriceTable = field(default_factory=PriceTable)
    on_tamper: Literal["restore", "hang_up"] = "restore"
    max_tampering: int = 3


class Sideband:
    """Runs one call's sideband until the call ends or a limit hangs it up.

    Create it after the upstream answered the SDP offer and await :meth:`run` in a task the server keeps.
    ``ended_reason`` tells why it stopped: ``"closed"`` (the sideband closed: the call ended, or the socket dropped;
    either way the server then hangs the call up so it cannot run unpoliced), ``"max_duration"``, ``"spend"``,
    ``"tampered"``, ``"hangup"`` (:meth:`hang_up` was called) or ``"error"``. After :meth:`run` returned,
    :meth:`record` is what the call said and did; :attr:`attached` is set once the sideband socket is open (it
    sees the call's events from then on). ``clock`` (an :class:`aoai_realtime.clock.Clock`;
    the event loop's by default) times tool calls with ``now`` and stamps the record with ``wall``.
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
        clock: Clock | None = None,
    ) -> None:
        self._upstream = upstream
        self._registry = registry
        self.context = context
        self._allowed = allowed_tools
        self.guard = SessionGuard(session)
        self._policy = policy
        self._clock = as_clock(clock)
        self.spent_usd = 0.0
        self.tool_calls = 0
        self.ended_reason: str | None = None
        self.book = ToolCallBook()
        self.transcript = CallTranscript()
        self.tool_records: list[ToolCallRecord] = []
        self.started_at = self._clock.wall()
        self.ended_at: float | None = None
        self._send_lock = asyncio.Lock()
        self.tampering = 0
        self._stop = asyncio.Event()
        self.attached = asyncio.Event()
        self._tool_tasks: set[asyncio.Task[None]] = set()
        self._typed: set[str] = set()  # ids of typed user messages already answered (added and created both come)

    async def hang_up(self) -> None:
        """Ask :meth:`run` to end the call now."""
        if self.ended_reason is None:
            self.ended_reason = "hangup"
        self._stop.set()

    def record(self) -> CallRecord:
        """What the call said and did (complete once :meth:`run` has returned)."""
        return CallRecord(
            call_id=self.context.call_id,
            user_id=self.context.user_id,
            persona_id=self.context.persona_id,
            started_at=self.started_at,
            ended_at=self.ended_at if self.ended_at is not None else self._clock.wall(),
            ended_reason=self.ended_reason or "closed",
            turns=self.transcript.turns(),
            tool_calls=tuple(self.tool_records),
        )

    async def run(self) -> str:
        call_id = self.context.call_id
        hung_up = False
        try:
            async with self._upstream.sideband(call_id) as ws:
                self.attached.set()
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
        self.ended_at = self._clock.wall()
        return self.ended_reason or "closed"

    async def _hang_up_if_limited(self) -> bool:
        reason = self.ended_reason = self.ended_reason or "closed"
        if reason == "closed":
            # The sideband closed without the server ending the call. Usually the call is over (the hang-up then
            # answers 404), but a dropped socket would leave it running with nobody enforcing its limits: end it.
            logger.info("sideband of call %s closed; ending the call so it cannot run unpoliced", self.context.call_id)
            await self._upstream.hangup(self.context.call_id, missing_ok=True)
            return True
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
            self.transcript.on_event(event)
            step = self.book.on_event(event)  # every event, `error` included: a collided create is retried
            send = [*step.send, *self._answer_typed(event)]
            for call in step.calls:
                task = tg.create_task(self._run_tool(ws, call))
                self._tool_tasks.add(task)
                task.add_done_callback(self._tool_tasks.discard)
            if isinstance(event, ev.RealtimeErrorEvent):
                logger.info("call %s: server error %s", self.context.call_id, event.error.code)
            elif isinstance(event, ev.ResponseDoneEvent):
                self._count_spend(event)
            elif isinstance(event, ev.SessionUpdatedEvent):
                await self._check_session(ws, event.session)
            elif isinstance(event, ev.ResponseCreatedEvent):
                await self._check_response(ws, event.response)
            if self.ended_reason is not None:
                self._stop.set()
                return
            await self._send(ws, send)
        self.ended_reason = self.ended_reason or "closed"
        self._stop.set()

    def _answer_typed(self, event: Any) -> list[ev.ClientEvent]:
        """A user message typed in the browser (``input_text``, added on its data channel) asks the arbiter for one
        reply: created when no response is active, else after it ends. The page never sends ``response.create``,
        so it cannot choose a response's instructions, tools or voice."""
        if not isinstance(event, ev.ConversationItemAdded | ev.ConversationItemCreatedEvent):
            return []
        item = event.item
        if item.type != "message" or item.role != "user" or not isinstance(item.id, str) or item.id in self._typed:
            return []
        if not isinstance(item.content, list) or not any(p.type == "input_text" for p in item.content):
            return []
        self._typed.add(item.id)
        return self.book.arbiter.request()

    async def _send(self, ws: aiohttp.ClientWebSocketResponse, events: list[ev.ClientEvent]) -> None:
        # One batch under one lock: the book's order (outputs before the response.create that needs them) holds
        # across the reader and every tool task.
        if not events:
            return
        async with self._send_lock:
            for event in events:
                await ws.send_str(codec.encode(event).decode("utf-8"))

    async def _run_tool(self, ws: aiohttp.ClientWebSocketResponse, call: ToolCall) -> None:
        self.tool_calls += 1
        started = self._clock.now()
        outcome = await self._registry.execute(call.name, call.arguments, self.context, allowed=self._allowed)
        self.tool_records.append(
            ToolCallRecord(
                name=call.name,
                arguments=call.arguments,
                output=outcome.output,
                status=outcome.status,
                latency_ms=(self._clock.now() - started) * 1000.0,
            )
        )
        await self._send(ws, self.book.settle(call.call_id, outcome.output))

    def _count_spend(self, event: ev.ResponseDoneEvent) -> None:
        usage = event.response.usage if isinstance(event.response.usage, dict) else None
        if usage:
            self.spent_usd += Usage.from_response_usage(usage).cost(self._policy.prices)
        ceiling = self._policy.max_usd
        if ceiling is not None and self.spent_usd >= ceiling:
            self.ended_reason = "spend"

    def _tampered(self, what: str) -> bool:
        """Count one attempt; ``True`` when the policy ends the call for it."""
        self.tampering += 1
        policy = self._policy
        if policy.on_tamper == "hang_up" or self.tampering > policy.max_tampering:
            logger.warning("call %s: %s; hanging up (attempt %d)", self.context.call_id, what, self.tampering)
            self.ended_reason = "tampered"
            return True
        logger.warning("call %s: %s; restoring the persona's config", self.context.call_id, what)
        return False

    async def _check_session(self, ws: aiohttp.ClientWebSocketResponse, session: dict[str, Any]) -> None:
        changed = self.guard.drift(session)
        if not changed or self._tampered(f"session changed from outside the server ({', '.join(changed)})"):
            return
        await self._send(ws, [ev.SessionUpdateEvent(session=self.guard.restore())])

    async def _check_response(self, ws: aiohttp.ClientWebSocketResponse, response: ev.Response) -> None:
        overrides = self.guard.response_overrides(response)
        if not overrides or not isinstance(response.id, str):
            return
        self._tampered(f"response {response.id} overrides {', '.join(overrides)}")
        # Cancelled in either case: a hang-up takes a moment, and the response must not play meanwhile.
        await self._send(ws, [ev.ResponseCancelEvent(response_id=response.id)])
