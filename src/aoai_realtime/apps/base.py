"""What an agent application is, and the server hooks that run several of them.

An :class:`AgentApp` is a voice agent built on the public layers: it contributes server personas and tools to a
:class:`~aoai_realtime.server.RealtimeServer`, text to append to a call's instructions (``session_context``) and
the post-call work of a call (``call_ended``). :class:`AppHooks` is the server's
:class:`~aoai_realtime.server.hooks.CallHooks` over a list of apps: it routes each call to the app that owns the
call's persona, runs post-call work in the background (the server must not wait for a summary to forget a call)
and lets a caller wait for that work with :meth:`AppHooks.drain`::

    memory = await MemoryAgent.open(data_dir / "memory-agent")
    visit = await VisitAgent.open(data_dir / "visit-agent", script=load_script(path))
    hooks = AppHooks([memory, visit])
    server = RealtimeServer(..., personas=hooks.personas(), tools=ToolRegistry(hooks.tools()), hooks=hooks)
    ...
    await hooks.drain()   # every call's post-call results are written (or failed for good)
    await hooks.close()   # closes the apps
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ..errors import ConfigError, get_logger, redact
from ..server.hooks import CallRecord, CallStart
from ..server.personas import Persona
from ..server.tools import ServerTool

__all__ = ["AgentApp", "AppHooks"]

logger = get_logger(__name__)


@runtime_checkable
class AgentApp(Protocol):
    """A voice agent application. ``name`` is its stable id (``"memory-agent"``, ``"visit-agent"``)."""

    name: str

    def personas(self) -> list[Persona]:
        """The server personas this app owns (their ids route calls back to it)."""
        ...

    def tools(self) -> list[ServerTool]:
        """The server tools its personas name. Handlers scope every read and write to ``context.user_id``."""
        ...

    async def session_context(self, start: CallStart) -> str | None:
        """Text appended to the persona's instructions for this call (``None`` for nothing)."""
        ...

    async def call_ended(self, record: CallRecord) -> None:
        """Run the post-call work of ``record`` and return when it is settled. Safe to call twice for one call:
        every result is written once."""
        ...

    async def close(self) -> None:
        """Release stores and models. Call once, after :meth:`AppHooks.drain`."""
        ...


class AppHooks:
    """:class:`~aoai_realtime.server.hooks.CallHooks` over ``apps``, dispatching by persona id.

    Persona ids must be unique across the apps (:class:`ConfigError` otherwise), and so must tool names (the
    server's :class:`~aoai_realtime.server.tools.ToolRegistry` refuses duplicates). A call whose persona no app
    owns gets no context and no post-call work (logged)."""

    def __init__(self, apps: Sequence[AgentApp]) -> None:
        self.apps: tuple[AgentApp, ...] = tuple(apps)
        self._by_persona: dict[str, AgentApp] = {}
        for app in self.apps:
            for persona in app.personas():
                other = self._by_persona.get(persona.id)
                if other is not None:
                    raise ConfigError(
                        f"persona {persona.id!r} is defined by both {other.name!r} and {app.name!r}; "
                        "give one of them another id",
                        field="personas",
                    )
                self._by_persona[persona.id] = app
        self._tasks: set[asyncio.Task[None]] = set()
        self.failures = 0  # post-call runs that raised (each one is logged)

    def app_for(self, persona_id: str) -> AgentApp | None:
        """The app that owns ``persona_id``, or None."""
        return self._by_persona.get(persona_id)

    def personas(self) -> list[Persona]:
        """Every app's personas, in app order (pass to ``RealtimeServer(personas=...)``)."""
        return [p for app in self.apps for p in app.personas()]

    def tools(self) -> list[ServerTool]:
        """Every app's tools, in app order (pass to ``ToolRegistry(...)``)."""
        return [t for app in self.apps for t in app.tools()]

    async def session_context(self, start: CallStart) -> str | None:
        app = self.app_for(start.persona.id)
        return None if app is None else await app.session_context(start)

    async def call_ended(self, record: CallRecord) -> None:
        """Start the owning app's post-call work in the background and return at once."""
        app = self.app_for(record.persona_id)
        if app is None:
            logger.warning("call %s ended on persona %r that no app owns; no post-call work", record.call_id,
                           record.persona_id)
            return
        task = asyncio.create_task(self._run(app, record), name=f"post-call-{app.name}-{record.call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, app: AgentApp, record: CallRecord) -> None:
        try:
            await app.call_ended(record)
        except Exception as exc:  # noqa: BLE001 - a background task: the failure is logged and counted
            self.failures += 1
            logger.error("post-call work of %s for call %s failed: %s: %s", app.name, record.call_id,
                         type(exc).__name__, redact(str(exc)))

    async def drain(self) -> None:
        """Wait until the post-call work of every call ended so far has settled (its results written, or failed
        for good). Calls ending while it waits are waited for too."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def close(self) -> None:
        """Cancel post-call work still running (its steps are picked up again on the next start), then close
        every app."""
        tasks = set(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        for app in self.apps:
            await app.close()
