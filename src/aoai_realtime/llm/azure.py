"""Azure OpenAI chat completions over aiohttp: a markdown summary, and action items with a JSON-schema
response format (structured outputs, ``strict: true``) validated again on our side.

Request: ``POST {endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...`` with an
``api-key`` header or an Entra ID bearer token. Errors map to :class:`LLMError`: 401/403 are not retryable,
429 and 5xx are; an answer that does not validate is an :class:`LLMOutputError` naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Final

import aiohttp

from ..errors import ConfigError, get_logger
from .types import ACTION_ITEMS_SCHEMA, ActionItems, LLMError, LLMOutputError, Turn, parse_action_items

__all__ = ["AzureOpenAIChat"]

log = get_logger(__name__)

SUMMARY_PROMPT: Final = (
    "You summarize a voice call for the people who were in it. Write concise markdown: a '## Summary' section "
    "of 3-6 bullet points with the decisions and facts, then '## Open questions' if any. Do not invent facts."
)
ACTION_ITEMS_PROMPT: Final = (
    "Extract the action items agreed in this voice call: what must be done, by whom (owner as named in the "
    "call, or null), by when (due as said, or null), and a priority (low, medium, high). Return only items "
    "someone committed to or was asked to do. Return an empty list if there are none."
)


def _transcript_text(transcript: Sequence[Turn]) -> str:
    return "\n".join(f"{t.role}: {t.text}" for t in transcript)


class AzureOpenAIChat:
    """An :class:`~aoai_realtime.llm.LLMProvider` on Azure OpenAI chat completions.

    Give exactly one of ``api_key`` or ``token_provider`` (an async callable returning an Entra ID access
    token for ``https://cognitiveservices.azure.com/.default``). Pass ``session`` to share an
    ``aiohttp.ClientSession``; otherwise one is created on first use and closed by :meth:`close` (or
    ``async with``). ``endpoint`` is the resource URL, e.g. ``https://my-resource.openai.azure.com``.
    """

    def __init__(
        self,
        *,
        endpoint: str,
        deployment: str = "gpt-4o-mini",
        api_key: str | None = None,
        token_provider: Callable[[], Awaitable[str]] | None = None,
        api_version: str = "2024-10-21",
        temperature: float = 0.3,
        max_tokens: int = 1024,
        timeout: float = 60.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        if (api_key is None) == (token_provider is None):
            raise ConfigError("give exactly one of api_key or token_provider", field="api_key")
        if not endpoint.startswith(("https://", "http://")):
            raise ConfigError(f"endpoint must be an http(s) URL, got {endpoint!r}", field="endpoint")
        if not 0.0 <= temperature <= 2.0:
            raise ConfigError(f"temperature must be within 0..2, got {temperature}", field="temperature")
        self._url = f"{endpoint.rstrip('/')}/openai/deployments/{deployment}/chat/completions"
        self._params = {"api-version": api_version}
        self._api_key = api_key
        self._token_provider = token_provider
        self._temperature = temperature
        self._max_tokens = max_tokens
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session = session
        self._owns_session = session is None

    async def __aenter__(self) -> AzureOpenAIChat:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session if this object created it. Idempotent."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def summarize(self, transcript: Sequence[Turn]) -> str:
        text = await self.chat(
            [{"role": "system", "content": SUMMARY_PROMPT}, {"role": "user", "content": _transcript_text(transcript)}]
        )
        if not text.strip():
            raise LLMOutputError("the summary is empty")
        return text

    async def extract_action_items(self, transcript: Sequence[Turn]) -> ActionItems:
        text = await self.chat(
            [
                {"role": "system", "content": ACTION_ITEMS_PROMPT},
                {"role": "user", "content": _transcript_text(transcript)},
            ],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "action_items", "strict": True, "schema": ACTION_ITEMS_SCHEMA},
            },
        )
        return parse_action_items(text)

    async def chat(self, messages: list[dict[str, str]], *, response_format: dict[str, Any] | None = None) -> str:
        """One chat completion; returns the assistant message's content. Raises :class:`LLMError`."""
        body: dict[str, Any] = {
            "messages": messages,
            "temperature": self._temperature,
            "max_tokens": self._max_tokens,
        }
        if response_format is not None:
            body["response_format"] = response_format
        headers = await self._headers()
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.post(
                self._url, params=self._params, json=body, headers=headers, timeout=self._timeout
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise LLMError(f"chat completion request failed: {type(exc).__name__}: {exc}") from exc
        if status != 200:
            raise _status_error(status, raw)
        return _content(raw)

    async def _headers(self) -> dict[str, str]:
        if self._api_key is not None:
            return {"api-key": self._api_key}
        assert self._token_provider is not None
        return {"Authorization": f"Bearer {await self._token_provider()}"}


def _status_error(status: int, raw: bytes) -> LLMError:
    try:
        detail = json.loads(raw)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        detail = raw[:200].decode("utf-8", "replace")
    if status in (401, 403):
        return LLMError(f"Azure OpenAI refused the credentials (HTTP {status}): {detail}. Check the key or "
                        "the identity's role on the resource.", retryable=False, status=status)
    retryable = status in (408, 409, 429) or status >= 500
    return LLMError(f"chat completion failed with HTTP {status}: {detail}", retryable=retryable, status=status)


def _content(raw: bytes) -> str:
    try:
        choice = json.loads(raw)["choices"][0]
        message = choice["message"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise LLMOutputError(f"unexpected chat completion response shape: {exc!r}") from exc
    if message.get("refusal"):
        raise LLMOutputError(f"the model refused: {message['refusal']}")
    if choice.get("finish_reason") == "length":
        raise LLMOutputError("the answer was cut at max_tokens; raise max_tokens")
    content = message.get("content")
    if not isinstance(content, str):
        raise LLMOutputError("the answer has no text content")
    return content
