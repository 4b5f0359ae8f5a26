"""Function tools: the ``@tool`` decorator, per-session tool sets, and a runner that always answers.

Every ``call_id`` the model emits gets exactly one ``function_call_output`` (reference 4.3), whatever happens:

====================  ===========================================================================
outcome               output sent to the model (JSON text)
====================  ===========================================================================
success               the return value (a ``str`` as is, anything else ``json.dumps``-ed)
tool raised           ``{"error": {"type": "tool_error", "message": ...}}``
unknown tool          ``{"error": {"type": "unknown_tool", ...}}`` naming the tools that exist
invalid arguments     ``{"error": {"type": "invalid_arguments", ...}}`` with every schema violation
timeout               ``{"error": {"type": "timeout", ...}}`` (per-tool ``timeout`` or the default)
cancelled             ``{"error": {"type": "cancelled", ...}}`` (barge-in with ``ToolPolicy.CANCEL``)
====================  ===========================================================================

Error outputs have the one shape every side sends (:func:`~aoai_realtime.protocol.arbiter.tool_error_output`,
messages redacted). The runner produces the result; the assistant sends it, once, and asks for one response
when every call of the response has settled (see :mod:`aoai_realtime.protocol.arbiter`).
"""

from __future__ import annotations

import asyncio
import enum
import functools
import inspect
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, overload

from ..clock import Clock, as_clock
from ..errors import ConfigError, ToolError, get_logger
from ..protocol.arbiter import ToolCall, tool_error_output
from .schema import JsonSchema, parse_docstring, schema_for_function, validate

__all__ = [
    "Tool",
    "ToolCall",
    "ToolPolicy",
    "ToolResult",
    "ToolRunner",
    "ToolSet",
    "tool",
]

log = get_logger(__name__)

ToolStatus = Literal["ok", "error", "unknown_tool", "invalid_arguments", "timeout", "cancelled"]


class ToolPolicy(enum.Enum):
    """What happens to tool calls still running when the user interrupts (barge-in).

    ``FINISH``: let them finish and deliver their result (the model sees it on its next turn).
    ``CANCEL``: cancel them and report ``{"error": {"type": "cancelled"}}`` at once.
    """

    FINISH = "finish"
    CANCEL = "cancel"


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call. Build one with :func:`tool`."""

    name: str
    description: str
    parameters: JsonSchema
    fn: Callable[..., Any]
    timeout: float | None = None
    converters: dict[str, Callable[[Any], Any]] = field(default_factory=dict)

    def definition(self) -> dict[str, Any]:
        """The session ``tools`` entry (reference 2.1)."""
        return {"type": "function", "name": self.name, "description": self.description, "parameters": self.parameters}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...
@overload
def tool(
    *, name: str | None = None, description: str | None = None, timeout: float | None = None
) -> Callable[[Callable[..., Any]], Tool]: ...
def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a :class:`Tool` of a function (sync or async). Use as ``@tool`` or ``@tool(timeout=2.0)``.

    The JSON Schema comes from the type hints; the description from the docstring summary, each parameter's
    description from its ``Args:`` (Google) or ``Parameters`` (numpy) entry. Parameters without a default are
    required. Sync functions run in a worker thread so they never block audio.
    """

    def build(f: Callable[..., Any]) -> Tool:
        summary, param_docs = parse_docstring(f.__doc__)
        if timeout is not None and timeout <= 0:
            raise ConfigError(f"tool {f.__name__!r}: timeout must be > 0 seconds, got {timeout}", field="timeout")
        hints = _enum_converters(f)
        return Tool(
            name=name or f.__name__,
            description=description if description is not None else summary,
            parameters=schema_for_function(f, param_docs=param_docs),
            fn=f,
            timeout=timeout,
            converters=hints,
        )

    return build(fn) if fn is not None else build


def _enum_converters(fn: Callable[..., Any]) -> dict[str, Callable[[Any], Any]]:
    import typing

    converters: dict[str, Callable[[Any], Any]] = {}
    for pname, hint in typing.get_type_hints(fn).items():
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            converters[pname] = hint
    return converters


class ToolSet:
    """The tools of one session. Tools are looked up by name when a call arrives, so a set can change
    between sessions (e.g. per persona) without touching the runner."""

    def __init__(self, tools: Iterable[Tool | Callable[..., Any]] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.add(t)

    def add(self, t: Tool | Callable[..., Any]) -> Tool:
        """Add a tool (a plain function is decorated with :func:`tool`). Names must be unique."""
        built = t if isinstance(t, Tool) else tool(t)
        if built.name in self._tools:
            raise ConfigError(f"a tool named {built.name!r} is already in this set; tool names must be unique")
        self._tools[built.name] = built
        return built

    def remove(self, name: str) -> Tool | None:
        """Remove a tool; calls to it are then answered as ``unknown_tool``. Returns it (None if absent)."""
        return self._tools.pop(name, None)

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def definitions(self) -> list[dict[str, Any]]:
        """The ``tools`` list for ``session.update``."""
        return [t.definition() for t in self._tools.values()]

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)


@dataclass(frozen=True, slots=True)
class ToolResult:
    """How a call settled. ``output`` is exactly what goes into the ``function_call_output`` item."""

    call: ToolCall
    status: ToolStatus
    output: str
    latency_ms: float


def _ok_output(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


class ToolRunner:
    """Runs tool calls and turns every outcome into a :class:`ToolResult`. :meth:`run` never raises except
    when the task running it is itself cancelled (shutdown).

    ``default_timeout`` (seconds) applies to tools without their own ``timeout``. ``clock`` (a
    :class:`~aoai_realtime.clock.Clock`, or a function giving monotonic seconds) times the calls and their
    timeouts; default: the event loop's.
    """

    def __init__(
        self,
        tools: ToolSet,
        *,
        default_timeout: float = 10.0,
        clock: Clock | Callable[[], float] | None = None,
    ) -> None:
        if default_timeout <= 0:
            raise ConfigError(f"default_timeout must be > 0 seconds, got {default_timeout}", field="default_timeout")
        self.tools = tools
        self.default_timeout = default_timeout
        self._clock = as_clock(clock)
        self._running: dict[str, asyncio.Task[Any]] = {}

    @property
    def running(self) -> list[str]:
        """call_ids of tools executing now."""
        return list(self._running)

    def cancel(self, call_id: str) -> bool:
        """Cancel a running call; its :meth:`run` returns a ``cancelled`` result. False if not running."""
        task = self._running.get(call_id)
        if task is None or task.done():
            return False
        task.cancel()
        return True

    def timeout_for(self, name: str) -> float:
        t = self.tools.get(name)
        return t.timeout if t is not None and t.timeout is not None else self.default_timeout

    async def run(self, call: ToolCall) -> ToolResult:
        started = self._clock.now()

        def result(status: ToolStatus, output: str) -> ToolResult:
            return ToolResult(call, status, output, (self._clock.now() - started) * 1000.0)

        t = self.tools.get(call.name)
        if t is None:
            return result(
                "unknown_tool",
                tool_error_output(
                    "unknown_tool", f"there is no tool named {call.name!r}", available=self.tools.names
                ),
            )
        try:
            args = json.loads(call.arguments) if call.arguments.strip() else {}
        except ValueError as exc:
            return result("invalid_arguments", tool_error_output("invalid_arguments", f"arguments are not JSON: {exc}"))
        problems = validate(t.parameters, args)
        if problems:
            return result("invalid_arguments", tool_error_output("invalid_arguments", "; ".join(problems)))
        kwargs = {k: t.converters[k](v) if k in t.converters else v for k, v in args.items()}
        task = asyncio.ensure_future(self._invoke(t, kwargs))
        self._running[call.call_id] = task
        timeout = self.timeout_for(call.name)
        timer = asyncio.ensure_future(self._clock.sleep(timeout))
        try:
            # CancelledError here is our own task being shut down (not the tool): it propagates
            await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._running.pop(call.call_id, None)
            timer.cancel()
            if not task.done():
                task.cancel()
        if not task.done():
            return result("timeout", tool_error_output("timeout", f"tool {call.name!r} took longer than {timeout:g} s"))
        if task.cancelled():
            message = f"tool {call.name!r} was cancelled (the user interrupted)"
            return result("cancelled", tool_error_output("cancelled", message))
        failure = task.exception()
        if isinstance(failure, ToolError):
            return result("error", tool_error_output("tool_error", str(failure)))
        if failure is not None:  # a tool's bug must still answer the model
            log.warning("tool %r raised %s", call.name, type(failure).__name__, exc_info=failure)
            return result("error", tool_error_output("tool_error", f"{type(failure).__name__}: {failure}"))
        return result("ok", _ok_output(task.result()))

    @staticmethod
    async def _invoke(t: Tool, kwargs: dict[str, Any]) -> Any:
        if inspect.iscoroutinefunction(t.fn):
            return await t.fn(**kwargs)
        value = await asyncio.to_thread(functools.partial(t.fn, **kwargs))
        if inspect.isawaitable(value):
            return await value
        return value


