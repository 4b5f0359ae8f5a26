from __future__ import annotations

import asyncio
import enum
import json
from typing import Annotated, Literal

import pytest

from aoai_realtime.agents.schema import parse_docstring, validate
from aoai_realtime.agents.tools import ToolCall, ToolRunner, ToolSet, tool
from aoai_realtime.errors import ConfigError, ToolError


class Unit(enum.Enum):
    C = "celsius"
    F = "fahrenheit"


@tool
async def get_weather(
    city: str, unit: Unit = Unit.C, days: int = 1, tags: list[str] | None = None
) -> dict[str, object]:
    """Get the weather forecast.

    Args:
        city: The city name,
            e.g. Oslo.
        unit: Temperature unit.
        days (int): How many days.
    """
    return {"city": city, "unit": unit.value, "days": days}


def test_google_docstring_and_hints_build_the_schema() -> None:
    d = get_weather.definition()
    assert d["type"] == "function" and d["name"] == "get_weather"
    assert d["description"] == "Get the weather forecast."
    p = d["parameters"]
    assert p["required"] == ["city"]
    assert p["additionalProperties"] is False
    assert p["properties"]["city"] == {"type": "string", "description": "The city name, e.g. Oslo."}
    assert p["properties"]["unit"]["enum"] == ["celsius", "fahrenheit"]
    assert p["properties"]["days"] == {"type": "integer", "description": "How many days."}
    assert p["properties"]["tags"]["anyOf"] == [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]


def test_numpy_docstring_literal_and_annotated() -> None:
    def book(room: Literal["a", "b"], note: Annotated[str, "free text"], seats: float) -> str:
        """Book a room.

        Parameters
        ----------
        room : str
            Which room.
        seats : float
            How many.
        """
        return room

    t = tool(book)
    props = t.parameters["properties"]
    assert props["room"] == {"type": "string", "enum": ["a", "b"], "description": "Which room."}
    assert props["note"] == {"type": "string", "description": "free text"}
    assert props["seats"] == {"type": "number", "description": "How many."}
    assert t.description == "Book a room."


def test_unsupported_types_and_missing_hints_are_config_errors() -> None:
    def no_hint(x):  # type: ignore[no-untyped-def]
        return x

    with pytest.raises(ConfigError, match="'x' needs a type hint"):
        tool(no_hint)

    def bad(x: object) -> None: ...

    with pytest.raises(ConfigError, match="parameter 'x'"):
        tool(bad)
    with pytest.raises(ConfigError, match="already"):
        ToolSet([get_weather, get_weather])


def test_parse_docstring_summary_spans_lines() -> None:
    summary, params = parse_docstring("First line\ncontinues.\n\nArgs:\n    a: A.\n\nReturns:\n    x")
    assert summary == "First line continues."
    assert params == {"a": "A."}


def test_validate_reports_every_problem_with_its_path() -> None:
    schema = get_weather.parameters
    assert validate(schema, {"city": "Oslo"}) == []
    problems = validate(schema, {"unit": "kelvin", "days": True, "extra": 1, "tags": ["x", 2]})
    joined = "; ".join(problems)
    assert "missing required property 'city'" in joined
    assert "arguments.unit" in joined and "arguments.days: expected integer" in joined
    assert "unexpected property 'extra'" in joined
    assert "arguments.tags" in joined


async def run(runner: ToolRunner, name: str, args: str, call_id: str = "c1") -> tuple[str, dict[str, object]]:
    result = await runner.run(ToolCall(call_id, name, args))
    return result.status, json.loads(result.output) if result.output.startswith("{") else {"raw": result.output}


async def test_runner_answers_every_outcome() -> None:
    @tool(timeout=0.05)
    async def hang() -> str:
        """Never returns."""
        await asyncio.Event().wait()
        return "never"

    @tool
    def boom(x: int) -> str:
        """Raises."""
        raise ValueError(f"bad {x}")

    @tool
    async def refuse() -> str:
        """Raises a ToolError."""
        raise ToolError("not allowed today")

    @tool
    def plain() -> str:
        """A sync tool returning text."""
        return "plain text"

    runner = ToolRunner(ToolSet([get_weather, hang, boom, refuse, plain]), default_timeout=5)
    status, out = await run(runner, "get_weather", '{"city": "Oslo", "unit": "fahrenheit"}')
    assert status == "ok" and out == {"city": "Oslo", "unit": "fahrenheit", "days": 1}
    status, out = await run(runner, "nope", "{}")
    assert status == "unknown_tool" and out["error"]["available"] == runner.tools.names  # type: ignore[index]
    status, out = await run(runner, "get_weather", '{"town": 1}')
    assert status == "invalid_arguments" and "city" in out["error"]["message"]  # type: ignore[index]
    status, out = await run(runner, "get_weather", "{not json")
    assert status == "invalid_arguments"
    status, out = await run(runner, "hang", "")
    assert status == "timeout" and "0.05" in out["error"]["message"]  # type: ignore[index]
    status, out = await run(runner, "boom", '{"x": 3}')
    assert status == "error" and out["error"]["message"] == "ValueError: bad 3"  # type: ignore[index]
    status, out = await run(runner, "refuse", "")
    assert status == "error" and out["error"]["message"] == "not allowed today"  # type: ignore[index]
    assert await run(runner, "plain", "") == ("ok", {"raw": "plain text"})
    assert runner.running == []


async def test_cancel_reports_cancelled_and_shutdown_propagates() -> None:
    started = asyncio.Event()

    @tool
    async def slow() -> str:
        """Slow."""
        started.set()
        await asyncio.Event().wait()
        return "x"

    runner = ToolRunner(ToolSet([slow]))
    task = asyncio.create_task(runner.run(ToolCall("c1", "slow", "")))
    await started.wait()
    assert runner.cancel("c1")
    result = await task
    assert result.status == "cancelled"
    assert not runner.cancel("c1")

    task = asyncio.create_task(runner.run(ToolCall("c2", "slow", "")))
    started.clear()
    await started.wait()
    task.cancel()  # the runner itself is being shut down: that is not a tool result
    with pytest.raises(asyncio.CancelledError):
        await task


def test_secrets_in_tool_errors_are_redacted() -> None:
    @tool
    def leaky() -> str:
        """Leaks."""
        raise RuntimeError("failed with api-key=sk-abcdefghijklmnop")

    result = asyncio.run(ToolRunner(ToolSet([leaky])).run(ToolCall("c", "leaky", "")))
    assert "abcdefghijklmnop" not in result.output


async def test_timeouts_run_on_the_injected_clock() -> None:
    from aoai_realtime.clock import FakeClock

    @tool(timeout=2.0)
    async def stuck() -> str:
        """Never answers."""
        await asyncio.Event().wait()
        return "never"

    clock = FakeClock()
    runner = ToolRunner(ToolSet([stuck]), clock=clock)
    running = asyncio.ensure_future(runner.run(ToolCall("c1", "stuck", "")))
    await clock.advance(1.999)
    assert not running.done()  # not before the tool's 2 s on the clock the runner was given
    await clock.advance(0.001)
    result = await running
    assert result.status == "timeout" and result.latency_ms == 2000.0
