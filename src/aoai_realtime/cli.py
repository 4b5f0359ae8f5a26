"""The ``aoai-realtime`` command line. Each area registers its own commands (see ``_register_all``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Voice agents on the Azure OpenAI Realtime API.")
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks that print their figures.")
app.add_typer(bench_app, name="bench")


@app.command()
def version() -> None:
    """Print the version."""
    from . import __version__

    typer.echo(__version__)


@app.command()
def talk(
    inputs: Annotated[list[str] | None, typer.Argument(help="Text lines or .wav files; none: interactive.")] = None,
    url: Annotated[str | None, typer.Option(help="An engine base URL, e.g. http://127.0.0.1:8765/v1.")] = None,
    key: Annotated[str | None, typer.Option(envvar="AOAI_ENGINE_API_KEY", help="The engine's or Azure's key.")] = None,
    azure_resource: Annotated[str | None, typer.Option(help="Talk to Azure OpenAI (AZURE_OPENAI_API_KEY).")] = None,
    deployment: Annotated[str, typer.Option(help="The Azure deployment name.")] = "gpt-realtime",
    speech: Annotated[str, typer.Option(help="In-process engine speech: full, light or fake.")] = "full",
    wav_out: Annotated[Path | None, typer.Option(help="Write each reply as DIR/reply-N.wav.")] = None,
) -> None:
    """A conversation from the terminal: text or WAV in, the reply as text (and WAV) out, with latencies."""
    import asyncio

    from .apps.talk import stdin_line
    from .apps.talk import talk as run

    asyncio.run(run(inputs or [], url=url, key=key, azure_resource=azure_resource, deployment=deployment,
                    speech=speech, wav_out=wav_out, read_line=stdin_line))


def _register_all() -> None:
    # One line per area: each module's register() adds its commands. Imports stay light (no heavy deps).
    app.command("demo")(__import__("aoai_realtime.apps.demo.cli", fromlist=["demo_command"]).demo_command)
    __import__("aoai_realtime.server.cli", fromlist=["register"]).register(app, bench_app)
    __import__("aoai_realtime.pipeline.cli", fromlist=["register"]).register(app)
    __import__("aoai_realtime.engine.cli", fromlist=["register"]).register(app, bench_app)
    __import__("aoai_realtime.bench.memory", fromlist=["register"]).register(app, bench_app)
    for bench in ("agents", "speech", "pipeline", "engine"):  # bench.engine after engine's: replaces it
        __import__(f"aoai_realtime.bench.{bench}", fromlist=["register"]).register(bench_app)


def main() -> None:
    _register_all()
    app()
