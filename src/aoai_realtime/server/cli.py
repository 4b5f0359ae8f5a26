"""``aoai-realtime serve``: the browser server on its own (token route, SDP proxy, demo page)."""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``bench server`` to the CLI."""
    from ..cli import bench_app

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
        typer.Option(help='JSON file: [{"id", "title", "instructions", "voice", "tools"}]. Default: one assistant.'),
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
    from . import Persona, RateLimitSettings, RealtimeServer, ServerSettings, UpstreamClient, User, create_app

    if users is None and not ipaddress.ip_address(host).is_loopback:
        raise typer.BadParameter("binding beyond loopback needs --users (the dev user is for this machine only)")
    if base_url:
        endpoint = Endpoint.local(base_url, model=deployment)
    elif resource:
        endpoint = Endpoint.azure(resource=resource, deployment=deployment)
    else:
        raise typer.BadParameter("give --resource (Azure) or --base-url (e.g. the local engine)")
    auth: Auth
    if entra:
        from azure.identity.aio import DefaultAzureCredential

        auth = EntraId(DefaultAzureCredential())
    else:
        key = os.environ.get(api_key_env, "")
        if not key and base_url:
            key = "local-engine"  # the local engine accepts any key
        if not key:
            raise typer.BadParameter(f"set {api_key_env} or pass --entra")
        auth = ApiKey(key)

    persona_list = (
        [Persona(**_persona_fields(p)) for p in json.loads(personas.read_text())]
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
        table = {
            token: User(
                id=u["id"],
                name=u.get("name", ""),
                role=u.get("role", ""),
                context=u.get("context", ""),
                personas=frozenset(u.get("personas", ())),
            )
            for token, u in json.loads(users.read_text()).items()
        }

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
    server = RealtimeServer(
        settings=settings, upstream=UpstreamClient(endpoint, auth), auth=hook, personas=persona_list
    )
    typer.echo(f"serving on http://{host}:{port}/ (API under {settings.prefix}, schema at /docs)")
    # proxy_headers=False: uvicorn would otherwise rewrite the peer address from X-Forwarded-For sent by
    # 127.0.0.1; the router decides itself which proxies to believe (--trusted-proxy).
    uvicorn.run(create_app(server), host=host, port=port, proxy_headers=False, log_level="info")


def _persona_fields(raw: dict[str, Any]) -> dict[str, Any]:
    allowed = {"id", "title", "instructions", "voice", "tools"}
    unknown = set(raw) - allowed
    if unknown:
        raise typer.BadParameter(f"persona fields {sorted(unknown)} are not supported; use {sorted(allowed)}")
    fields = dict(raw)
    if "tools" in fields:
        fields["tools"] = tuple(fields["tools"])
    return fields
