"""``aoai-realtime engine``: serve the local Realtime engine (and ``bench engine``)."""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from collections.abc import Callable

    from .brain.base import Brain
    from .ports import SpeechPort

__all__ = ["register"]


def register(app: typer.Typer, bench_app: typer.Typer | None = None) -> None:
    """Add the ``engine`` command to ``app`` (and ``engine`` to the bench sub-app when given)."""

    @app.command("engine")
    def engine_command(
        port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0 picks a free one).")] = 8765,
        host: Annotated[str, typer.Option(help="Address to bind; keep 127.0.0.1 unless you mean it.")] = "127.0.0.1",
        api_key: Annotated[
            str | None, typer.Option(help="Accepted API key (else AOAI_ENGINE_API_KEY, else random).")
        ] = None,
        brain: Annotated[
            str, typer.Option(help="rules | llm (local model) | auto (llm if installed) | scripted:PATH | llama:PATH "
                                   "| relay:URL")
        ] = "rules",
        speech: Annotated[str, typer.Option(help="full (silero+whisper+piper) | light | fake")] = "full",
        record: Annotated[Path | None, typer.Option(help="Record every session to DIR/<session>.jsonl")] = None,
        record_max_mb: Annotated[
            float, typer.Option(min=1, help="Most one session's recording may hold (MB); past it, it stops.")
        ] = 256,
        cors_origin: Annotated[
            list[str] | None,
            typer.Option(metavar="ORIGIN", help="A browser origin allowed to call the HTTP routes (repeat it; "
                         "'*' for any). Default: any origin on a loopback --host, none otherwise."),
        ] = None,
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
        from .factory import relay_target

        if (tls_cert is None) != (tls_key is None):
            raise typer.BadParameter("give both --tls-cert and --tls-key", param_hint="--tls-cert/--tls-key")
        if speech not in ("full", "light", "fake"):
            raise typer.BadParameter(f"{speech!r} is not one of full, light, fake", param_hint="--speech")
        if tls_cert is not None and tls_key is not None:
            _check_tls(tls_cert, tls_key)
        if replay is not None:
            from .replay import Replay

            try:
                Replay.load(replay)
            except (OSError, ValueError) as exc:
                raise typer.BadParameter(f"cannot replay {replay}: {exc}", param_hint="--replay") from exc
        # Listen before printing anything as started: a port in use is one clear line and exit code 1.
        listener = _listen(host, port)
        port = listener.getsockname()[1]
        if tls_self_signed:
            import tempfile

            from .tls import self_signed

            tls_cert, tls_key = self_signed(tempfile.mkdtemp(prefix="aoai-engine-tls-"))
            typer.echo(f"self-signed certificate: {tls_cert}  (trust it: aoai-realtime talk --ca-file {tls_cert}; "
                       f"node: NODE_EXTRA_CA_CERTS={tls_cert})")
        key = api_key or os.environ.get("AOAI_ENGINE_API_KEY")
        generated = key is None
        key = key or "sk-local-" + secrets.token_urlsafe(18)
        try:
            brains, speech_port = _load(brain, speech)
        except BaseException:
            listener.close()
            raise
        config = EngineConfig(
            api_key=key,
            brain=brains,
            relay=relay_target(brain),
            speech=speech_port,
            max_session_s=max_session_minutes * 60,
            record_dir=record,
            record_max_bytes=int(record_max_mb * 1024 * 1024),
            cors_origins=tuple(cors_origin) if cors_origin else None,
            replay=replay,
        )
        engine = Engine(config)
        http, ws = ("https", "wss") if tls_cert else ("http", "ws")
        base = f"{http}://{host}:{port}"
        typer.echo(
            f"engine on {base}  (WebSocket {ws}://{host}:{port}/v1/realtime, preview {ws}://{host}:{port}/openai/realtime)"
        )
        if generated:
            typer.echo(f"API key (generated): {key}")
        server = uvicorn.Server(uvicorn.Config(
            create_app(engine), host=host, port=port, log_level="info", ws="websockets-sansio", lifespan="on",
            ssl_certfile=str(tls_cert) if tls_cert else None, ssl_keyfile=str(tls_key) if tls_key else None,
        ))  # fmt: skip
        server.run(sockets=[listener])


def _load(brain: str, speech: str) -> tuple[Callable[[], Brain], SpeechPort]:
    """The brain factory and the speech bundle, with progress while models load."""
    from ..progress import activity
    from .factory import brain_factory, speech_for

    if brain.partition(":")[0] in ("auto", "llm", "llama"):
        with activity(f"loading the brain ({brain})"):
            brains = brain_factory(brain)
    else:
        brains = brain_factory(brain)
    with activity(f"loading speech ({speech})"):
        return brains, speech_for(speech)


def _check_tls(cert: Path, key: Path) -> None:
    """Refuse (usage error naming the file) a certificate or key that is missing or not a PEM pair."""
    import ssl

    for path, option in ((cert, "--tls-cert"), (key, "--tls-key")):
        if not path.is_file():
            raise typer.BadParameter(f"no such file: {path}", param_hint=option)
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise typer.BadParameter(f"{cert} and {key} are not a PEM certificate and its private key ({exc})",
                                 param_hint="--tls-cert/--tls-key") from None


def _listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port`` (bound as uvicorn binds), or one line on stderr and exit code 1."""
    from ..listen import ListenError, listen

    try:
        sock = listen(host, port)  # connections made once the URL is printed wait in its backlog
    except ListenError as exc:
        typer.echo(f"error: {exc}; pick another --port (0 picks a free one) or --host", err=True)
        raise typer.Exit(1) from None
    sock.set_inheritable(True)
    return sock
