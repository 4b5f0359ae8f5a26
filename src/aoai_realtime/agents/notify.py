"""What a :class:`~aoai_realtime.agents.voice.VoiceAssistant` tells the application: callbacks (``on``),
subscriber channels of json-ready snapshots (``subscribe``), async iterators, and waiters for a state or for idle.

No I/O of its own. Callbacks are the application's code: one that raises is logged with its traceback and the
session goes on (the boundary is here, once); an ``async`` callback runs as a task of the assistant. When the
assistant ends, every channel is closed and every waiter gets the reason (:meth:`Notifier.close`).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal

from ..errors import ConfigError, get_logger
from ..streaming import Channel
from .actions import StateChanged
from .metrics import TurnMetrics
from .state import AssistantState
from .transcript import TranscriptEntry

__all__ = ["Callback", "EventName", "Notifier"]

log = get_logger(__name__)

EventName = Literal["state_change", "transcript", "turn", "tool_result", "rollover", "error"]
_EVENT_NAMES = ("state_change", "transcript", "turn", "tool_result", "rollover", "error")
Callback = Callable[[Any], Awaitable[None] | None]


class Notifier:
    """The assistant's outward side. ``state()`` and ``idle()`` read the assistant; ``spawn`` runs an async
    callback as one of its tasks."""

    def __init__(self, *, state: Callable[[], AssistantState], idle: Callable[[], bool],
                 spawn: Callable[[Awaitable[Any]], None]) -> None:  # fmt: skip
        self._state = state
        self._idle = idle
        self._spawn = spawn
        self._callbacks: dict[str, list[Callback]] = {}
        self._subscribers: set[Channel[tuple[str, Any]]] = set()
        self._locals: list[Channel[Any]] = []
        self._idle_waiters: list[asyncio.Future[None]] = []
        self._state_waiters: list[tuple[frozenset[AssistantState], asyncio.Future[AssistantState]]] = []

    # -- callbacks -----------------------------------------------------------------------------------------

    def on(self, name: EventName, callback: Callback) -> Callback:
        if name not in _EVENT_NAMES:
            raise ConfigError(f"unknown assistant event {name!r}; one of {', '.join(_EVENT_NAMES)}", field="name")
        self._callbacks.setdefault(name, []).append(callback)
        return callback

    def off(self, name: EventName, callback: Callback) -> None:
        with contextlib.suppress(ValueError):
            self._callbacks.get(name, []).remove(callback)

    def emit(self, name: str, value: Any) -> None:
        for callback in list(self._callbacks.get(name, ())):
            try:
                result = callback(value)
                if inspect.isawaitable(result):
                    self._spawn(_app_callback(name, result))
            except Exception:  # boundary: an application callback must not break the session
                log.exception("assistant %s callback raised", name)

    # -- channels ------------------------------------------------------------------------------------------

    def subscribe(self, maxsize: int) -> Channel[tuple[str, Any]]:
        channel: Channel[tuple[str, Any]] = Channel(maxsize, overflow="drop_oldest")
        self._subscribers.add(channel)
        channel.send_nowait(("state", {"state": self._state().value, "previous": None}))
        return channel

    def unsubscribe(self, channel: Channel[tuple[str, Any]]) -> None:
        self._subscribers.discard(channel)
        channel.close()

    def publish(self, name: str, payload: Any) -> None:
        for channel in list(self._subscribers):
            channel.send_nowait((name, payload))

    async def stream(self, name: EventName) -> AsyncIterator[Any]:
        """Every ``name`` value from now on (a slow consumer skips to the latest), until :meth:`close`."""
        channel: Channel[Any] = Channel(256, overflow="drop_oldest")
        self.on(name, channel.send_nowait)
        self._locals.append(channel)
        try:
            async for item in channel:
                yield item
        finally:
            self.off(name, channel.send_nowait)

    # -- what the assistant reports --------------------------------------------------------------------------

    def state_changed(self, change: StateChanged, tools_in_flight: list[str]) -> None:
        self.emit("state_change", change)
        self.publish("state", {"state": change.new.value, "previous": change.old.value,
                               "trigger": change.trigger.value, "tools_in_flight": tools_in_flight})  # fmt: skip
        for states, fut in list(self._state_waiters):
            if change.new in states and not fut.done():
                fut.set_result(change.new)

    def transcript_changed(self, entries: list[TranscriptEntry]) -> None:
        self.emit("transcript", entries)
        self.publish("transcript", [_entry_dict(e) for e in entries])

    def turn_completed(self, metrics: TurnMetrics) -> None:
        self.emit("turn", metrics)
        self.publish("turn", _turn_dict(metrics))

    def check_idle(self) -> None:
        if self._idle_waiters and self._idle():
            for fut in self._idle_waiters:
                if not fut.done():
                    fut.set_result(None)

    # -- waiting -------------------------------------------------------------------------------------------

    async def wait_for_state(self, states: tuple[AssistantState, ...], timeout: float | None) -> AssistantState:
        if self._state() in states:
            return self._state()
        fut: asyncio.Future[AssistantState] = asyncio.get_running_loop().create_future()
        entry = (frozenset(states), fut)
        self._state_waiters.append(entry)
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            with contextlib.suppress(ValueError):
                self._state_waiters.remove(entry)

    async def wait_until_idle(self, timeout: float | None) -> None:
        if self._idle():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._idle_waiters.append(fut)
        try:
            await asyncio.wait_for(fut, timeout)
        finally:
            with contextlib.suppress(ValueError):
                self._idle_waiters.remove(fut)

    def close(self, reason: BaseException) -> None:
        """End every channel and iterator; every waiter raises ``reason``."""
        for channel in [*self._subscribers, *self._locals]:
            channel.close()
        self._subscribers.clear()
        self._locals.clear()
        waiters: list[asyncio.Future[Any]] = [f for _, f in self._state_waiters]
        waiters.extend(self._idle_waiters)
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(reason)


async def _app_callback(name: str, awaitable: Awaitable[Any]) -> None:
    try:
        await awaitable
    except Exception:  # boundary: as for a sync callback, the application's error is logged, the session goes on
        log.exception("assistant %s callback raised", name)


def _entry_dict(entry: TranscriptEntry) -> dict[str, Any]:
    return {"item_id": entry.item_id, "role": entry.role, "text": entry.text, "final": entry.final,
            "interrupted": entry.interrupted}


def _turn_dict(turn: TurnMetrics) -> dict[str, Any]:
    return {"turn": turn.turn, "latency_ms": turn.response_latency_ms, "tool_latency_ms": turn.tool_latency_ms,
            "tokens": turn.usage.total, "cost": turn.cost, "interrupted": turn.interrupted}
