"""``aoai-realtime serve``: the browser server on its own (token route, SDP proxy, demo page).

Configuration errors (no credential, no endpoint, an unreadable users or personas file) are one or two lines on
stderr naming the cause and the fix, with exit code 2, before anything listens. ``docs/server.md`` documents
the command.
"""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["register"]


def _refuse(message: str) -> typer.Exit:
    """Print a configuration error (cause and fix) and return the exit to raise: code 2, no traceback."""
    typer.echo(f"error: {message}", err=True)  # as aoai_realtime.cli_errors prints every command's errors
    return typer.Exit(2)


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _refuse(f"the {what} file {path} does not exist; pass an existing JSON file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _refuse(f"cannot read the {what} file {path} ({type(exc).__name__}); check its permissions") from None
    except json.JSONDecodeError as exc:
        raise _refuse(f"the {what} file {path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``serve`` to ``app`` and ``server`` to its ``bench`` sub-app ``bench_app``."""
    app.command("serve")(serve)
    bench_app.command("server")(bench_server)


def bench_server(seconds: Annotated[float, typer.Option(help="Measured seconds per row.")] = 5.0) -> None:
    """Token route under load, ours vs the TypeScript SDK's Express server (runs bench/bench_server.py)."""
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[3] / "bench" / "bench_server.py"
    if not script.is_file():
        raise typer.BadParameter("bench/bench_server.py is in the source checkout only")
    raise typer.Exit(subprocess.call([sys.executable, str(script), "--seconds", str(seconds)]))


def serve(
    host: Annotated[str, typer.Option(help="Address to bind. Anything but loopback needs --users.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8080,
    base_url: Annotated[
        str, typer.Option(help="A GA-compatible API root, e.g. the local engine http://127.0.0.1:8765/v1.")
    ] = "",
    resource: Annotated[str, typer.Option(help="Azure OpenAI resource name (GA endpoint).")] = "",
    deployment: Annotated[str, typer.Option(help="Azure deployment / model name.")] = "gpt-realtime",
    entra: Annotated[bool, typer.Option(help="Authenticate to Azure with Entra ID (DefaultAzureCredential).")] = False,
    api_key_env: Annotated[
        str, typer.Option(help="Environment variable holding the API key.")
    ] = "AZURE_OPENAI_API_KEY",
    users: Annotated[
        Path | None,
        typer.Option(help='JSON file: {"<bearer token>": {"id", "name", "role", "context", "personas": [...]}}.'),
    ] = None,
    personas: Annotated[
        Path | None,
        typer.Option(help='JSON file: [{"id", "title", "instructions", "voice", "tools", "max_output_tokens", '
                     '"max_usd", "token_route"}]. Default: one assistant.'),
    ] = None,
    cors_origin: Annotated[
        list[str] | None, typer.Option(help="An origin allowed to call from another site (repeatable).")
    ] = None,
    trusted_proxy: Annotated[
        list[str] | None, typer.Option(help="Reverse-proxy address/network whose X-Forwarded-For counts.")
    ] = None,
    redis_url: Annotated[
        str, typer.Option(help="redis://host:port/db to share budgets and call caps between processes.")
    ] = "",
) -> None:
    """Serve the token route, the SDP proxy, the OpenAPI schema and the demo page."""
    import uvicorn

    from ..auth import ApiKey, Auth, EntraId
    from ..endpoints import Endpoint
    from ..errors import ConfigError
    from . import Persona, RateLimitSettings, RealtimeServer, ServerSettings, UpstreamClient, User, create_app

    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if users is None and not loopback:
        raise _refuse(f"binding {host} (beyond this machine) needs --users FILE; the dev user is for loopback only")
    if base_url:
        endpoint = Endpoint.local(base_url, model=deployment)
    elif resource:
        endpoint = Endpoint.azure(resource=resource, deployment=deployment)
    else:
        raise _refuse("no voice service: pass --resource NAME (Azure OpenAI) or --base-url URL (e.g. the local "
                      "engine, http://127.0.0.1:8765/v1)")
    auth: Auth
    if entra:
        from azure.identity.aio import DefaultAzureCredential

        auth = EntraId(DefaultAzureCredential())
    else:
        key = os.environ.get(api_key_env, "")
        if not key and base_url and api_key_env == "AZURE_OPENAI_API_KEY":
            key = os.environ.get("AOAI_ENGINE_API_KEY", "")  # the local engine's own variable
        if not key:
            hint = " or AOAI_ENGINE_API_KEY (the key the engine printed at start)" if base_url else ""
            raise _refuse(f"no credential for the voice service: set {api_key_env}{hint}, or pass --entra "
                          "(every session would fail without one)")
        auth = ApiKey(key)

    persona_list = (
        [_persona(p) for p in _as_list(_read_json(personas, "personas"), personas)]
        if personas
        else [
            Persona(
                id="assistant",
                title="Assistant",
                instructions="You are a friendly voice assistant. The user is {user_name}. Keep answers short.",
            )
        ]
    )
    if users is not None:
        table = _users(_read_json(users, "users"), users)

        def hook(request: Any) -> User | None:
            header = request.headers.get("authorization", "")
            return table.get(header[7:]) if header.startswith("Bearer ") else None
    else:
        dev = User(id="local", name="Local user", personas=frozenset(p.id for p in persona_list))

        def hook(request: Any) -> User | None:
            return dev

    limits = RateLimitSettings(storage_uri=redis_url) if redis_url else RateLimitSettings()
    settings = ServerSettings(
        cors_origins=tuple(cors_origin or ()),
        trusted_proxies=tuple(trusted_proxy or ()),
        rate_limits=limits,
        call_gate_url=redis_url or None,
    )
    try:
        server = RealtimeServer(
            settings=settings, upstream=UpstreamClient(endpoint, auth), auth=hook, personas=persona_list
        )
    except ConfigError as exc:
        raise _refuse(str(exc)) from None
    typer.echo(f"serving on http://{host}:{port}/ (API under {settings.prefix}, schema at /docs)")
    # proxy_headers=False: uvicorn would otherwise rewrite the peer address from X-Forwarded-For sent by
    # 127.0.0.1; the router decides itself which proxies to believe (--trusted-proxy).
    uvicorn.run(create_app(server), host=host, port=port, proxy_headers=False, log_level="info")


_PERSONA_FIELDS = frozenset({"id", "title", "instructions", "voice", "tools", "max_output_tokens", "max_usd",
                             "token_route"})


def _as_list(data: Any, path: Path) -> list[Any]:
    if not isinstance(data, list):
        raise _refuse(f"the personas file {path} must hold a JSON list of persona objects")
    return data


def _persona(raw: Any) -> Any:
    from ..errors import ConfigError
    from . import Persona

    if not isinstance(raw, dict):
        raise _refuse("each persona must be a JSON object with at least 'id' and 'instructions'")
    unknown = set(raw) - _PERSONA_FIELDS
    if unknown:
        raise _refuse(f"persona fields {sorted(unknown)} are not supported; use {sorted(_PERSONA_FIELDS)}")
    fields = dict(raw)
    if "tools" in fields:
        fields["tools"] = tuple(fields["tools"])
    try:
        return Persona(**fields)
    except ConfigError as exc:
        raise _refuse(str(exc)) from None
    except TypeError:
        raise _refuse(f"persona {raw.get('id')!r} lacks 'id' or 'instructions'") from None


def _users(data: Any, path: Path) -> dict[str, Any]:
    from ..errors import ConfigError
    from . import User

    if not isinstance(data, dict):
        raise _refuse(f'the users file {path} must map bearer tokens to users: {{"<token>": {{"id": ...}}}}')
    table = {}
    for token, u in data.items():
        if not isinstance(u, dict) or not isinstance(u.get("id"), str):
            raise _refuse(f"a user in {path} is not an object with an 'id' string (the token is not shown)")
        try:
            table[token] = User(id=u["id"], name=u.get("name", ""), role=u.get("role", ""),
                                context=u.get("context", ""), personas=frozenset(u.get("personas", ())))
        except ConfigError as exc:
            raise _refuse(str(exc)) from None
    return table
