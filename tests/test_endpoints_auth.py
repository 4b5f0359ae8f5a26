"""URLs for every kind of endpoint, and credentials that never leak."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from aoai_realtime.auth import ApiKey, EntraId, EphemeralToken, Token
from aoai_realtime.endpoints import Endpoint
from aoai_realtime.errors import AuthenticationError, ConfigError, redact


def test_azure_ga_urls() -> None:
    e = Endpoint.azure(resource="my-res", deployment="gpt-realtime")
    assert e.websocket_url() == "wss://my-res.openai.azure.com/openai/v1/realtime?model=gpt-realtime"
    assert e.client_secrets_url == "https://my-res.openai.azure.com/openai/v1/realtime/client_secrets"
    assert e.calls_url == "https://my-res.openai.azure.com/openai/v1/realtime/calls"
    assert e.websocket_url(call_id="rtc_1") == "wss://my-res.openai.azure.com/openai/v1/realtime?call_id=rtc_1"
    assert "api-version" not in e.websocket_url()  # a GA URL with api-version is refused by Azure
    assert e.dialect == "ga"
    same = Endpoint.azure(endpoint="https://my-res.openai.azure.com/openai/v1/", deployment="gpt-realtime")
    assert same.websocket_url() == e.websocket_url()


def test_azure_preview_urls_speak_beta() -> None:
    e = Endpoint.azure_preview(resource="my-res", deployment="dep1", api_version="2025-04-01-preview")
    assert e.websocket_url() == (
        "wss://my-res.openai.azure.com/openai/realtime?api-version=2025-04-01-preview&deployment=dep1"
    )
    assert e.dialect == "beta"
    with pytest.raises(ConfigError):
        _ = e.calls_url
    with pytest.raises(ConfigError):
        e.websocket_url(call_id="rtc_1")


def test_openai_and_local_urls() -> None:
    assert Endpoint.openai(model="gpt-realtime").websocket_url() == "wss://api.openai.com/v1/realtime?model=gpt-realtime"
    local = Endpoint.local("http://127.0.0.1:9000/v1", model="m")
    assert local.websocket_url() == "ws://127.0.0.1:9000/v1/realtime?model=m"
    assert local.calls_url == "http://127.0.0.1:9000/v1/realtime/calls"
    assert local.call_url("rtc_9", "hangup") == "http://127.0.0.1:9000/v1/realtime/calls/rtc_9/hangup"
    assert local.websocket_url(extra_query={"api-key": "k"}).endswith("model=m&api-key=k")


@pytest.mark.parametrize(
    "build",
    [
        lambda: Endpoint.azure(resource="bad name", deployment="d"),
        lambda: Endpoint.azure(deployment="d"),
        lambda: Endpoint.azure(resource="r", endpoint="https://x", deployment="d"),
        lambda: Endpoint.azure(resource="r", deployment="a/b"),
        lambda: Endpoint.local("ftp://host"),
        lambda: Endpoint.local("http://host/v1?x=1"),
        lambda: Endpoint.azure_preview(resource="r", deployment="d", api_version="latest"),
    ],
)
def test_bad_endpoint_settings_fail_clearly(build: Any) -> None:
    with pytest.raises(ConfigError):
        build()


async def test_api_key_headers_and_no_leak_in_repr() -> None:
    key = ApiKey("0123456789abcdef0123456789abcdef")
    assert await key.headers() == {"api-key": "0123456789abcdef0123456789abcdef"}
    assert "0123" not in repr(key)
    assert await ApiKey("sk-x", style="bearer").headers() == {"Authorization": "Bearer sk-x"}
    with pytest.raises(ConfigError):
        ApiKey("  ")


@dataclass
class _AccessToken:
    token: str
    expires_on: int


class _Credential:
    def __init__(self) -> None:
        self.calls = 0

    def get_token(self, *scopes: str) -> _AccessToken:
        self.calls += 1
        assert scopes == ("https://cognitiveservices.azure.com/.default",)
        return _AccessToken(token=f"tok{self.calls}", expires_on=1000 + 3600 * self.calls)


async def test_entra_id_caches_and_refreshes_before_expiry() -> None:
    now = [1000.0]
    cred = _Credential()
    auth = EntraId(cred, clock=lambda: now[0], refresh_margin=300)
    assert await auth.headers() == {"Authorization": "Bearer tok1"}
    assert (await asyncio.gather(*(auth.headers() for _ in range(5))))[0] == {"Authorization": "Bearer tok1"}
    assert cred.calls == 1
    now[0] = 1000 + 3600 - 299  # inside the refresh margin
    assert await auth.headers() == {"Authorization": "Bearer tok2"}
    assert cred.calls == 2


async def test_entra_id_failure_is_an_authentication_error_without_details() -> None:
    class Broken:
        def get_token(self, *scopes: str) -> Any:
            raise RuntimeError("secret-ish internal text")

    with pytest.raises(AuthenticationError) as info:
        await EntraId(Broken()).headers()
    assert "secret-ish" not in str(info.value)


async def test_ephemeral_token_reuses_until_near_expiry() -> None:
    now = [0.0]
    minted: list[str] = []

    async def fetch() -> Token:
        minted.append(f"ek_{len(minted)}")
        return Token(value=minted[-1], expires_at=60.0)

    auth = EphemeralToken(fetch, clock=lambda: now[0], refresh_margin=5)
    assert await auth.headers() == {"Authorization": "Bearer ek_0"}
    now[0] = 50
    assert await auth.headers() == {"Authorization": "Bearer ek_0"}
    now[0] = 56
    assert await auth.headers() == {"Authorization": "Bearer ek_1"}
    assert "ek_" not in repr(Token(value="ek_secret", expires_at=1))


async def test_ephemeral_token_provider_errors_are_authentication_errors() -> None:
    async def broken() -> str:
        raise OSError("upstream down")

    async def empty() -> str:
        return ""

    with pytest.raises(AuthenticationError):
        await EphemeralToken(broken).headers()
    with pytest.raises(AuthenticationError):
        await EphemeralToken(empty).headers()


@pytest.mark.parametrize(
    ("text", "kept", "secret"),
    [
        ("Authorization: Bearer eyJhbGciOiJI.eyJzdWIiOiIx.sig", "Authorization: Bearer ***", "eyJ"),
        ("key sk-proj-abcdefghij1234 refused", "key *** refused", "sk-proj"),
        ("connect failed: postgresql://app:s3cret@db:5432/x", "postgresql://app:***@db:5432/x", "s3cret"),
        ("Server=db;User=app;Password=s3cret;", "Password=***;", "s3cret"),
        ("refresh_token=abc123&scope=x", "refresh_token=***&scope=x", "abc123"),
        ("api-key: 0123456789abcdef0123456789abcdef", "api-key: ***", "0123456789abcdef"),
    ],
)
def test_redact_hides_keys_tokens_and_passwords(text: str, kept: str, secret: str) -> None:
    out = redact(text)
    assert kept in out and secret not in out


def test_redact_leaves_ordinary_text_alone() -> None:
    for text in ("total_tokens: 5", "https://example.com/v1/realtime?model=gpt-realtime", "tokens=12 ok"):
        assert redact(text) == text


def test_package_log_lines_and_tracebacks_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    import aoai_realtime.client
    import aoai_realtime.engine.session
    import aoai_realtime.server.tools  # noqa: F401
    from aoai_realtime.errors import RedactingFilter

    loggers = [lg for name, lg in logging.root.manager.loggerDict.items()
               if name.startswith("aoai_realtime.") and isinstance(lg, logging.Logger) and lg.handlers == []
               and name in ("aoai_realtime.client", "aoai_realtime.engine.session", "aoai_realtime.server.tools")]
    assert len(loggers) == 3 and all(any(isinstance(f, RedactingFilter) for f in lg.filters) for lg in loggers)
    log = logging.getLogger("aoai_realtime.client")
    with caplog.at_level(logging.ERROR, logger="aoai_realtime.client"):
        try:
            raise RuntimeError("cannot reach postgresql://app:s3cret@db/x with Bearer abc.def")
        except RuntimeError:
            log.exception("handler for %s raised (key %s)", "x", "sk-proj-abcdefghij1234")
    assert "s3cret" not in caplog.text and "abc.def" not in caplog.text and "sk-proj" not in caplog.text
    assert "RuntimeError" in caplog.text and "postgresql://app:***@db/x" in caplog.text
