"""Shared test data: users, personas, tools, an auth hook, an SDP offer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request

from aoai_realtime.server import (
    Persona,
    ServerTool,
    ToolContext,
    ToolRegistry,
    User,
)

UPSTREAM_KEY = "upstream-secret-7f3a9c41d2e8b6"  # must never show up in a response or a log line

USERS = {
    "alice-token": User(
        id="alice", name="Alice Moreau", role="nurse", context="works nights", personas=frozenset({"assistant"})
    ),
    "bob-token": User(id="bob", name="Bob", role="admin", personas=frozenset({"assistant", "capture"})),
}


def auth_hook(request: Request) -> User | None:
    header = request.headers.get("authorization", "")
    return USERS.get(header.removeprefix("Bearer ").strip()) if header.startswith("Bearer ") else None


def alice() -> dict[str, str]:
    return {"Authorization": "Bearer alice-token"}


def bob() -> dict[str, str]:
    return {"Authorization": "Bearer bob-token"}


class ToolLog:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], ToolContext]] = []


def make_tools(log: ToolLog) -> ToolRegistry:
    async def lookup(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
        log.calls.append(("lookup", args, ctx))
        return {"answer": f"found {args.get('q')}"}

    def save(args: dict[str, Any], ctx: ToolContext) -> str:
        log.calls.append(("save", args, ctx))
        return "saved"

    return ToolRegistry(
        [
            ServerTool(
                name="lookup",
                description="Look something up.",
                handler=lookup,
                parameters={"type": "object", "properties": {"q": {"type": "string"}}},
            ),
            ServerTool(name="save", description="Save an insight.", handler=save),
        ]
    )


PERSONAS = [
    Persona(
        id="assistant",
        title="Assistant",
        instructions="You help {user_name}, a {user_role}. Context: {user_context}.",
        tools=("lookup",),
        voice="cedar",
        token_route=True,  # the token-route tests use it; tools and the ceiling then do not apply to tokens
    ),
    Persona(id="capture", title="Capture", instructions="Capture insights for {user_name}.", tools=("save",)),
]


MakeServer = Callable[..., Any]

OFFER = (
    "v=0\r\no=- 4611 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\n"
)
