"""Credentials, injected into transports and HTTP calls. Each gives the headers for the next request.

- :class:`ApiKey`: the ``api-key`` header (Azure) or ``Authorization: Bearer`` (OpenAI, the local engine).
- :class:`EntraId`: a Microsoft Entra ID token from an ``azure-identity`` credential, refreshed before it expires.
- :class:`EphemeralToken`: a short-lived ``ek_...`` token from a provider callable (your server minted it), as
  ``Authorization: Bearer``; fetched again when it is about to expire.

Secrets never appear in ``repr``, logs or exception text.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from .errors import AuthenticationError, ConfigError

__all__ = ["AZURE_SCOPE", "ApiKey", "Auth", "EntraId", "EphemeralToken", "Token"]

AZURE_SCOPE = "https://cognitiveservices.azure.com/.default"


@runtime_checkable
class Auth(Protocol):
    async def headers(self) -> dict[str, str]:
        """Headers that authenticate the next request."""
        ...


class ApiKey:
    """A static key. ``style="api-key"`` (Azure) sends ``api-key: KEY``; ``"bearer"`` sends a Bearer header."""

    def __init__(self, key: str, *, style: Literal["api-key", "bearer"] = "api-key") -> None:
        if not isinstance(key, str) or not key.strip():
            raise ConfigError("the API key is empty; set it from your secret store", field="api_key")
        self._key = key
        self.style = style

    async def headers(self) -> dict[str, str]:
        if self.style == "bearer":
            return {"Authorization": f"Bearer {self._key}"}
        return {"api-key": self._key}

    @property
    def secret(self) -> str:
        """The key itself, for a transport that must place it elsewhere (a query parameter, a subprotocol)."""
        return self._key

    def __repr__(self) -> str:
        return f"ApiKey(style={self.style!r}, key=***)"


@dataclass(frozen=True)
class Token:
    value: str = field(repr=False)
    expires_at: float  # unix seconds


class _TokenCredential(Protocol):
    def get_token(self, *scopes: str) -> Any: ...


class EntraId:
    """A bearer token from an azure-identity credential (sync or ``azure.identity.aio``), cached until
    ``refresh_margin`` seconds before it expires. Concurrent callers share one refresh."""

    def __init__(
        self,
        credential: Any,
        *,
        scope: str = AZURE_SCOPE,
        refresh_margin: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not hasattr(credential, "get_token"):
            raise ConfigError("credential must be an azure-identity credential with get_token()", field="credential")
        self._credential = credential
        self._scope = scope
        self._margin = refresh_margin
        self._clock = clock
        self._token: Token | None = None
        self._lock = asyncio.Lock()

    async def token(self) -> Token:
        async with self._lock:
            if self._token is None or self._clock() >= self._token.expires_at - self._margin:
                try:
                    if inspect.iscoroutinefunction(self._credential.get_token):
                        result = await self._credential.get_token(self._scope)
                    else:
                        # A sync credential does network I/O: keep the event loop free.
                        result = await asyncio.to_thread(self._credential.get_token, self._scope)
                except Exception as exc:  # boundary: azure-identity raises its own tree
                    raise AuthenticationError(f"Entra ID token request failed: {type(exc).__name__}") from exc
                self._token = Token(value=str(result.token), expires_at=float(result.expires_on))
            return self._token

    async def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {(await self.token()).value}"}

    def __repr__(self) -> str:
        return f"EntraId(scope={self._scope!r})"


TokenProvider = Callable[[], Awaitable["Token | str"]]


class EphemeralToken:
    """An ephemeral ``ek_...`` token from ``fetch()`` (an async callable returning a :class:`Token` or a string).

    A string is used once per connection (``refresh_margin`` does not apply); a :class:`Token` is reused until
    ``refresh_margin`` seconds before ``expires_at``.
    """

    def __init__(
        self, fetch: TokenProvider, *, refresh_margin: float = 5.0, clock: Callable[[], float] = time.time
    ) -> None:
        if not callable(fetch):
            raise ConfigError("fetch must be an async callable returning a token", field="fetch")
        self._fetch = fetch
        self._margin = refresh_margin
        self._clock = clock
        self._token: Token | None = None
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        async with self._lock:
            if self._token is not None and self._clock() < self._token.expires_at - self._margin:
                return self._token.value
            try:
                got = await self._fetch()
            except Exception as exc:  # boundary: the provider is user code
                raise AuthenticationError(f"the ephemeral token provider failed: {type(exc).__name__}") from exc
            if isinstance(got, Token):
                self._token = got
                return got.value
            if not isinstance(got, str) or not got:
                raise AuthenticationError("the ephemeral token provider returned no token")
            self._token = None
            return got

    async def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.token()}"}

    def __repr__(self) -> str:
        return "EphemeralToken(...)"
