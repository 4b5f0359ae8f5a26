"""Server-side tools for the sideband: a small registry and dispatcher.

The agents package offers a richer ``@tool`` decorator; this module keeps only what the server needs so the
server does not depend on agents' internals (DESIGN: server uses client pieces, never agents' internals). A
:class:`ServerTool` is a name, a description, a JSON Schema for its arguments and an async or sync handler
that receives the parsed arguments and a :class:`ToolContext` (who is calling, on which call).

:meth:`ToolRegistry.run` always returns a string for the model: a handler's exception becomes an error output,
never a hang (a tool that does not answer leaves the model waiting forever). Error outputs have the one shape
every side sends, :func:`~aoai_realtime.protocol.arbiter.tool_error_output`
(``{"error": {"type": kind, "message": ...}}``, kinds ``not_allowed``, ``invalid_arguments``, ``timeout``,
``tool_error``).
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, ToolError, get_logger, redact
from ..protocol.arbiter import tool_error_output

__all__ = ["ServerTool", "ToolContext", "ToolOutcome", "ToolRegistry"]

logger = get_logger(__name__)


@dataclass(frozen=True, kw_only=True)
class ToolContext:
    """Who a tool runs for: the authenticated user's id, the persona and the upstream call id."""

    user_id: str
    persona_id: str
    call_id: str


@dataclass(frozen=True, kw_only=True)
class ToolOutcome:
    """How a call ended: ``status`` is ``"ok"`` or the error kind; ``output`` is the text for the model."""

    status: str
    output: str


ToolHandler = Callable[[dict[str, Any], ToolContext], Awaitable[Any] | Any]


@dataclass(frozen=True, kw_only=True)
class ServerTool:
    """One tool. ``handler(arguments, context)`` returns a string or a JSON-serialisable value."""

    name: str
    description: str
    handler: ToolHandler
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    timeout_s: float = 10.0

    def definition(self) -> dict[str, Any]:
        """The ``{"type": "function", ...}`` entry for the session's ``tools`` list."""
        return {"type": "function", "name": self.name, "description": self.description, "parameters": self.parameters}


class ToolRegistry:
    """Tools by name. Build it once at startup; personas name the tools they may use."""

    def __init__(self, tools: Iterable[ServerTool] = ()) -> None:
        self._tools: dict[str, ServerTool] = {}
        for tool in tools:
            self.add(tool)

    def add(self, tool: ServerTool) -> None:
        """Register ``tool``; a second tool with the same name is a :class:`ConfigError`."""
        if tool.name in self._tools:
            raise ConfigError(f"tool {tool.name!r} is registered twice; tool names must be unique", field="name")
        self._tools[tool.name] = tool

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[ServerTool]:
        return iter(self._tools.values())

    def names(self) -> list[str]:
        return list(self._tools)

    def definitions(self, names: Iterable[str]) -> list[dict[str, Any]]:
        """Session ``tools`` entries for ``names`` (in that order)."""
        return [self._tools[name].definition() for name in names]

    async def run(self, name: str, arguments: str, context: ToolContext, *, allowed: Iterable[str]) -> str:
        """Run tool ``name`` with the model's JSON ``arguments`` and return the output text for the model.
        See :meth:`execute`."""
        return (await self.execute(name, arguments, context, allowed=allowed)).output

    async def execute(
        self, name: str, arguments: str, context: ToolContext, *, allowed: Iterable[str]
    ) -> ToolOutcome:
        """Run tool ``name`` with the model's JSON ``arguments``; never raises (except when the task running it
        is cancelled).

        ``allowed`` is the persona's allow-list: a call outside it is refused (the model may have been handed
        other tools by a tampered ``session.update``), as is an unknown tool or malformed arguments.
        """

        def error(kind: str, message: str) -> ToolOutcome:
            return ToolOutcome(status=kind, output=tool_error_output(kind, message))

        if name not in set(allowed) or name not in self._tools:
            logger.warning("refused tool call %r outside persona %r's allow-list", name, context.persona_id)
            return error("not_allowed", f"tool {name!r} is not available in this session")
        tool = self._tools[name]
        try:
            args = json.loads(arguments or "{}")
        except json.JSONDecodeError:
            return error("invalid_arguments", f"arguments for {name!r} are not valid JSON")
        if not isinstance(args, dict):
            return error("invalid_arguments", f"arguments for {name!r} must be a JSON object")
        try:
            async with asyncio.timeout(tool.timeout_s):
                result = tool.handler(args, context)
                if inspect.isawaitable(result):
                    result = await result
        except TimeoutError:
            logger.warning("tool %r timed out after %.1f s", name, tool.timeout_s)
            return error("timeout", f"tool {name!r} timed out")
        except ToolError as exc:
            return error("tool_error", str(exc))
        except Exception as exc:  # noqa: BLE001 - a boundary: any handler failure becomes an answer to the model
            # No traceback: exception texts may carry connection strings or keys; the redacted text is logged.
            logger.error("tool %r failed: %s: %s", name, type(exc).__name__, redact(str(exc)))
            return error("tool_error", f"tool {name!r} failed")
        if isinstance(result, str):
            return ToolOutcome(status="ok", output=result)
        try:
            return ToolOutcome(status="ok", output=json.dumps(result))
        except (TypeError, ValueError):
            logger.error("tool %r returned a value that is not JSON-serialisable", name)
            return error("tool_error", f"tool {name!r} returned an unusable result")
