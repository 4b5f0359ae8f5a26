"""Structured concurrency for an object that starts and stops in separate calls (``start()`` / ``close()``): an
:class:`asyncio.TaskGroup` entered and left with ``async with`` inside one supervising task.

Children are the group's tasks. If one raises, the group cancels the others and the supervisor reports the first
exception to ``on_failure`` (once, after every child has ended). An error raised outside the children, in a
callback that has no task of its own, is handed to :meth:`Supervisor.crash` and ends the group the same way.
Nothing is logged and forgotten: the owner decides how the failure shows (the voice assistant fails and raises it
from ``close()``).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import get_logger

__all__ = ["Supervisor"]

log = get_logger(__name__)


class Supervisor:
    """One task group, run by a task named ``name``. Call :meth:`start` before :meth:`spawn`, :meth:`stop` at the
    end (from any task)."""

    def __init__(self, name: str, *, on_failure: Callable[[BaseException], None]) -> None:
        self.name = name
        self._on_failure = on_failure
        self._group: asyncio.TaskGroup | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop: asyncio.Future[None] | None = None
        self._children: set[asyncio.Task[Any]] = set()

    @property
    def running(self) -> bool:
        """Children can be spawned (started, not stopped, not failed)."""
        return self._group is not None

    @property
    def started(self) -> bool:
        """:meth:`start` was called and :meth:`stop` not yet."""
        return self._task is not None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._stop = loop.create_future()
        self._task = loop.create_task(self._run(ready, self._stop), name=self.name)
        await ready

    async def _run(self, ready: asyncio.Future[None], stop: asyncio.Future[None]) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                ready.set_result(None)
                try:
                    await stop  # stop(): a result; crash(): the error, raised in the group's body
                finally:
                    self._group = None
                    for child in list(self._children):
                        child.cancel()
        except Exception as exc:  # noqa: BLE001  # a child's or a crash's error goes to the owner, never dropped
            failures = exc.exceptions if isinstance(exc, BaseExceptionGroup) else (exc,)
            self._on_failure(failures[0])
        finally:
            self._group = None
            if not stop.done():
                stop.cancel()

    def spawn(self, coro: Awaitable[Any]) -> None:
        """Run ``coro`` as a child. When the group is not running (stopped, failed) it is closed unrun."""
        if self._group is None:
            if inspect.iscoroutine(coro):
                coro.close()
            return
        child = self._group.create_task(_as_coroutine(coro))
        self._children.add(child)
        child.add_done_callback(self._children.discard)

    def crash(self, exc: BaseException) -> None:
        """Fail the group with ``exc`` (raised outside any child). After the end it can only be logged."""
        if self._stop is not None and not self._stop.done():
            self._stop.set_exception(exc)
        else:
            log.error("%s: an error after the end: %s", self.name, exc, exc_info=exc)

    async def stop(self) -> None:
        """Cancel the children and wait until every one has ended (and a failure, if any, was reported)."""
        task, self._task = self._task, None
        if self._stop is not None and not self._stop.done():
            self._stop.set_result(None)
        if task is not None:
            await task


async def _as_coroutine(awaitable: Awaitable[Any]) -> Any:
    return await awaitable
