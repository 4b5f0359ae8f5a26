"""``aoai-realtime serve`` refuses a configuration it cannot serve (one or two lines, exit 2, nothing listening),
and an upstream failure is logged with its status and error code, never its body or the key."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aoai_realtime.cli import _register_all, app
from aoai_realtime.server import UpstreamClient
from aoai_realtime.testing.fake_upstream import FakeUpstream

from .support import MakeServer, alice

_register_all()


def serve(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    clean = {"AZURE_OPENAI_API_KEY": "", "AOAI_ENGINE_API_KEY": "", **(env or {})}
    result = CliRunner().invoke(app, ["serve", *args], env=clean)
    return result.exit_code, result.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--resource", "contoso"], "no credential for the voice service: set AZURE_OPENAI_API_KEY, or pass --entra"),
        (["--base-url", "http://127.0.0.1:9/v1"], "set AZURE_OPENAI_API_KEY or AOAI_ENGINE_API_KEY"),
        ([], "no voice service: pass --resource NAME (Azure OpenAI) or --base-url URL"),
        (["--resource", "x", "--host", "0.0.0.0"], "binding 0.0.0.0 (beyond this machine) needs --users FILE"),
    ],
)
def test_serve_refuses_without_what_it_needs(args: list[str], says: str) -> None:
    code, err = serve(*args)
    assert code == 2
    assert says in err and "Traceback" not in err and len(err.strip().splitlines()) <= 2


def test_serve_names_a_bad_users_or_personas_file(tmp_path: Path) -> None:
    env = {"AZURE_OPENAI_API_KEY": "k"}
    code, err = serve("--resource", "x", "--users", str(tmp_path / "nope.json"), env=env)
    assert code == 2 and f"the users file {tmp_path / 'nope.json'} does not exist" in err
    bad = tmp_path / "personas.json"
    bad.write_text('[{"id": "p", "instructions": "x",}]')
    code, err = serve("--resource", "x", "--personas", str(bad), env=env)
    assert code == 2 and "is not valid JSON (line 1" in err
    bad.write_text('[{"id": "p", "instructions": "x", "temperature": 2}]')
    code, err = serve("--resource", "x", "--personas", str(bad), env=env)
    assert code == 2 and "persona fields ['temperature'] are not supported" in err
    bad.write_text('[{"id": "p", "instructions": "x", "tools": ["shell"]}]')
    code, err = serve("--resource", "x", "--personas", str(bad), env=env)
    assert code == 2 and "names tools ['shell'] that are not registered" in err
    assert "Traceback" not in err


@pytest.mark.integration
async def test_an_upstream_refusal_is_logged_with_status_and_code_only(
    make_server: MakeServer, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    server, client = await make_server()
    wrong = UpstreamClient(fake.endpoint, type(fake.auth)("wrong-key-123"))  # type: ignore[call-arg]
    await wrong.start()
    server.upstream, right = wrong, server.upstream
    try:
        with caplog.at_level(logging.INFO):
            resp = await client.post("/api/realtime/session", json={"persona": "assistant"}, headers=alice())
    finally:
        server.upstream = right
        await wrong.close()
    assert resp.status_code == 502 and resp.json()["error"]["code"] == "upstream_failed"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "answered 401 on client_secrets (error code invalid_api_key)" in logged
    assert "wrong-key-123" not in logged and "bad key" not in logged
