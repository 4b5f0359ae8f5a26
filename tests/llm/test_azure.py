"""The Azure OpenAI provider against a fake chat-completions server on 127.0.0.1 (aiohttp): the request it
sends (path, api-version, auth header, temperature, JSON-schema response format) and how each kind of answer
or error maps to a result or an :class:`LLMError`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from aoai_realtime.errors import ConfigError
from aoai_realtime.llm import ACTION_ITEMS_SCHEMA, AzureOpenAIChat, LLMError, LLMOutputError, Turn

pytestmark = pytest.mark.integration

CALL = [Turn("user", "Please call Bob on Monday."), Turn("assistant", "I will.")]
KEY = "0123456789abcdef0123456789abcdef"

Reply = Callable[[dict[str, Any]], web.Response]


class FakeAzure:
    def __init__(self) -> None:
        self.requests: list[tuple[web.Request, dict[str, Any]]] = []
        self.reply: Reply = lambda body: _answer("## Summary\n- ok")

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append((request, body))
        return self.reply(body)


def _answer(content: str | None, *, finish: str = "stop", refusal: str | None = None) -> web.Response:
    message = {"role": "assistant", "content": content, "refusal": refusal}
    return web.json_response({"choices": [{"index": 0, "finish_reason": finish, "message": message}]})


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeAzure, str]]:
    server = FakeAzure()
    app = web.Application()
    app.router.add_post("/openai/deployments/{deployment}/chat/completions", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_summary_request_and_answer(fake: tuple[FakeAzure, str]) -> None:
    server, url = fake
    async with AzureOpenAIChat(endpoint=url, deployment="gpt-4o-mini", api_key=KEY) as llm:
        assert await llm.summarize(CALL) == "## Summary\n- ok"
    [(request, body)] = server.requests
    assert request.path == "/openai/deployments/gpt-4o-mini/chat/completions"
    assert request.query["api-version"] == "2024-10-21"
    assert request.headers["api-key"] == KEY
    assert body["temperature"] == 0.3 and "response_format" not in body
    assert body["messages"][1] == {"role": "user", "content": "user: Please call Bob on Monday.\nassistant: I will."}


async def test_action_items_use_the_json_schema_and_validate(fake: tuple[FakeAzure, str]) -> None:
    server, url = fake
    answer = {"action_items": [{"description": "Call Bob", "owner": "user", "due": "Monday", "priority": "medium"}]}
    server.reply = lambda body: _answer(json.dumps(answer))
    async with AzureOpenAIChat(endpoint=url, api_key=KEY) as llm:
        items = await llm.extract_action_items(CALL)
    assert [(i.description, i.due) for i in items.action_items] == [("Call Bob", "Monday")]
    [(_, body)] = server.requests
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "action_items", "strict": True, "schema": ACTION_ITEMS_SCHEMA},
    }


async def test_entra_id_token_is_sent_as_bearer(fake: tuple[FakeAzure, str]) -> None:
    server, url = fake

    async def token() -> str:
        return "entra-token"

    async with AzureOpenAIChat(endpoint=url, token_provider=token) as llm:
        await llm.summarize(CALL)
    [(request, _)] = server.requests
    assert request.headers["Authorization"] == "Bearer entra-token" and "api-key" not in request.headers


@pytest.mark.parametrize(
    ("reply", "error", "retryable", "match"),
    [
        (lambda b: web.json_response({"error": {"message": "bad key"}}, status=401), LLMError, False, "401"),
        (lambda b: web.json_response({"error": {"message": "slow down"}}, status=429), LLMError, True, "slow down"),
        (lambda b: web.Response(status=503, text="unavailable"), LLMError, True, "503"),
        (lambda b: web.json_response({"error": {"message": "bad request"}}, status=400), LLMError, False, "400"),
        (lambda b: _answer("{not json"), LLMOutputError, True, "not valid JSON"),
        (lambda b: _answer('{"action_items": [{"description": "x"}]}'), LLMOutputError, True, "owner"),
        (lambda b: _answer(None, refusal="no"), LLMOutputError, True, "refused"),
        (lambda b: _answer('{"action_items": [', finish="length"), LLMOutputError, True, "max_tokens"),
        (lambda b: web.json_response({"unexpected": True}), LLMOutputError, True, "shape"),
    ],
)
async def test_errors_say_what_went_wrong(
    fake: tuple[FakeAzure, str], reply: Reply, error: type[LLMError], retryable: bool, match: str
) -> None:
    server, url = fake
    server.reply = reply
    async with AzureOpenAIChat(endpoint=url, api_key=KEY) as llm:
        with pytest.raises(error, match=match) as info:
            await llm.extract_action_items(CALL)
    assert info.value.retryable is retryable
    assert KEY not in str(info.value)


async def test_unreachable_endpoint_is_a_retryable_error() -> None:
    async with AzureOpenAIChat(endpoint="http://127.0.0.1:9", api_key=KEY, timeout=5) as llm:
        with pytest.raises(LLMError, match="request failed") as info:
            await llm.summarize(CALL)
    assert info.value.retryable


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="exactly one"):
        AzureOpenAIChat(endpoint="https://x.openai.azure.com")
    with pytest.raises(ConfigError, match="temperature"):
        AzureOpenAIChat(endpoint="https://x.openai.azure.com", api_key=KEY, temperature=3)
    with pytest.raises(ConfigError, match="URL"):
        AzureOpenAIChat(endpoint="x.openai.azure.com", api_key=KEY)
