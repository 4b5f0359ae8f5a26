"""``aoai-realtime engine``: serve the local Realtime engine (and ``bench engine``)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]


def register(app: typer.Typer, bench_app: typer.Typer | None = None) -> None:
    """Add the ``engine`` command to ``app`` (and ``engine`` to the bench sub-app when given)."""

    @app.command("engine")
    def engine_command(
        port: Annotated[int, typer.Option(help="TCP port (0 picks a free one).")] = 8765,
        host: Annotated[str, typer.Option(help="Address to bind; keep 127.0.0.1 unless you mean it.")] = "127.0.0.1",
        api_key: Annotated[
            str | None, typer.Option(help="Accepted API key (else AOAI_ENGINE_API_KEY, else random).")
        ] = None,
        brain: Annotated[str, typer.Option(help="rules | scripted:PATH | llama:PATH | relay:URL")] = "rules",
        speech: Annotated[str, typer.Option(help="full (silero+whisper+piper) | light | fake")] = "full",
        record: Annotated[Path | None, typer.Option(help="Record every session to DIR/<session>.jsonl")] = None,
        max_session_minutes: Annotated[float, typer.Option(help="Maximum session duration.")] = 60.0,
        replay: Annotated[Path | None, typer.Option(help="Serve every session from this JSONL recording.")] = None,
        tls_cert: Annotated[Path | None, typer.Option(help="Serve TLS (https/wss) with this PEM certificate.")] = None,
        tls_key: Annotated[Path | None, typer.Option(help="The certificate's PEM private key.")] = None,
        tls_self_signed: Annotated[
            bool, typer.Option(help="Serve TLS with a new self-signed certificate for 127.0.0.1 (path printed).")
        ] = False,
    ) -> None:
        """Run the local Realtime engine: WebSocket, WebRTC and client_secrets on one port."""
        import uvicorn

        from .app import create_app
        from .engine import Engine, EngineConfig
        from .factory import brain_factory, relay_target, speech_for

        if (tls_cert is None) != (tls_key is None):
            raise typer.BadParameter("give both --tls-cert and --tls-key", param_hint="--tls-cert/--tls-key")
        if tls_self_signed:
            import tempfile

            from ..testing.tls import self_signed

            tls_cert, tls_key = self_signed(tempfile.mkdtemp(prefix="aoai-engine-tls-"))
            typer.echo(f"self-signed certificate: {tls_cert}  (trust it, e.g. NODE_EXTRA_CA_CERTS={tls_cert})")
        key = api_key or os.environ.get("AOAI_ENGINE_API_KEY")
        generated = key is None
        key = key or "sk-local-" + secrets.token_urlsafe(18)
        if speech not in ("full", "light", "fake"):
            raise typer.BadParameter("use full, light or fake", param_hint="--speech")
        typer.echo(f"loading speech ({speech})...")
        config = EngineConfig(
            api_key=key,
            brain=brain_factory(brain),
            relay=relay_target(brain),
            speech=speech_for(speech),
            max_session_s=max_session_minutes * 60,
            record_dir=record,
            replay=replay,
        )
        engine = Engine(config)
        if port == 0:
            import socket

            with socket.socket() as probe:  # pick a free port so the printed URL is usable
                probe.bind((host, 0))
                port = probe.getsockname()[1]
        http, ws = ("https", "wss") if tls_cert else ("http", "ws")
        base = f"{http}://{host}:{port}"
        typer.echo(
            f"engine on {base}  (WebSocket {ws}://{host}:{port}/v1/realtime, preview {ws}://{host}:{port}/openai/realtime)"
        )
        if generated:
            typer.echo(f"API key (generated): {key}")
        uvicorn.run(
            create_app(engine), host=host, port=port, log_level="info", ws="websockets-sansio", lifespan="on",
            ssl_certfile=str(tls_cert) if tls_cert else None, ssl_keyfile=str(tls_key) if tls_key else None,
        )  # fmt: skip

    if bench_app is not None:

        @bench_app.command("engine")
        def bench_engine_command(
            turns: Annotated[int, typer.Option(help="Turns for the latency figure.")] = 50,
        ) -> None:
            """Engine latency overhead, CPU per call-second, concurrent real-time calls."""
            import runpy

            script = Path(__file__).resolve().parents[3] / "bench" / "bench_engine.py"
            if not script.exists():
                raise typer.BadParameter(f"{script} not found: run from a source checkout")
            os.environ["AOAI_BENCH_TURNS"] = str(turns)
            runpy.run_path(str(script), run_name="__main__")
