"""The server's tool registry always answers the model with a string, whatever the handler does."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from aoai_realtime.errors import ConfigError, ToolError
from aoai_realtime.server import ServerTool, ToolContext, ToolRegistry

CTX = ToolContext(user_id="u1", persona_id="assistant", call_id="rtc_1")


def err(kind: str, message: str) -> dict[str, Any]:
    """The one error shape every side sends to a model (protocol.arbiter.tool_error_output)."""
    return {"error": {"type": kind, "message": message}}


def registry(handler: Any, *, timeout_s: float = 1.0) -> ToolRegistry:
    return ToolRegistry([ServerTool(name="t", description="d", handler=handler, timeout_s=timeout_s)])


async def run(reg: ToolRegistry, arguments: str = "{}", *, allowed: tuple[str, ...] = ("t",)) -> Any:
    out = await reg.run("t", arguments, CTX, allowed=allowed)
    assert isinstance(out, str)
    return json.loads(out) if out.startswith(("{", "[")) else out


async def test_results_are_passed_as_text_or_json() -> None:
    assert await run(registry(lambda args, ctx: "plain words")) == "plain words"

    async def answer(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
        return {"echo": args, "user": ctx.user_id}

    assert await run(registry(answer), '{"q": 1}') == {"echo": {"q": 1}, "user": "u1"}


async def test_every_failure_becomes_an_error_answer(caplog: pytest.LogCaptureFixture) -> None:
    async def hangs(args: dict[str, Any], ctx: ToolContext) -> str:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    def raises(args: dict[str, Any], ctx: ToolContext) -> str:
        raise RuntimeError("db password=hunter2 leaked")

    def refuses(args: dict[str, Any], ctx: ToolContext) -> str:
        raise ToolError("the order does not exist")

    def leaks(args: dict[str, Any], ctx: ToolContext) -> str:
        raise ToolError("cannot reach postgres://app:hunter2@db/x")

    assert await run(registry(hangs, timeout_s=0.05)) == err("timeout", "tool 't' timed out")
    with caplog.at_level(logging.ERROR):
        assert await run(registry(raises)) == err("tool_error", "tool 't' failed")  # no exception text for the model
    # The log says what failed, and not the secret the exception text carried.
    assert "RuntimeError" in caplog.text and "password=***" in caplog.text and "hunter2" not in caplog.text
    # a ToolError speaks to the model, redacted
    assert await run(registry(refuses)) == err("tool_error", "the order does not exist")
    assert "hunter2" not in json.dumps(await run(registry(leaks)))
    assert await run(registry(lambda a, c: {1, 2})) == err("tool_error", "tool 't' returned an unusable result")
    outcome = await registry(refuses).execute("t", "{}", CTX, allowed=("t",))
    assert outcome.status == "tool_error"
    assert (await registry(lambda a, c: "x").execute("t", "{}", CTX, allowed=("t",))).status == "ok"


async def test_bad_calls_are_refused_without_running_the_handler() -> None:
    ran: list[Any] = []
    reg = registry(lambda args, ctx: ran.append(args) or "ok")
    assert await run(reg, "not json") == err("invalid_arguments", "arguments for 't' are not valid JSON")
    assert await run(reg, "[1, 2]") == err("invalid_arguments", "arguments for 't' must be a JSON object")
    # outside the persona's allow-list
    assert await run(reg, allowed=()) == err("not_allowed", "tool 't' is not available in this session")
    out = await reg.run("missing", "{}", CTX, allowed=("missing",))
    assert json.loads(out) == err("not_allowed", "tool 'missing' is not available in this session")
    assert ran == []


def test_a_name_registered_twice_is_a_config_error() -> None:
    tool = ServerTool(name="t", description="d", handler=lambda a, c: "x")
    with pytest.raises(ConfigError, match="registered twice"):
        ToolRegistry([tool, tool])
