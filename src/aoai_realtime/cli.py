"""The ``aoai-realtime`` command line. Each area registers its own commands (see ``_register_all``)."""

from __future__ import annotations

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
def demo(
    speech: str = typer.Option("full", help="Speech models: full (silero, whisper, piper), light, or fake (none)."),
) -> None:
    """A short conversation with the local Realtime engine: text turns, a tool call, a spoken question."""
    from .demo import main as run

    run(speech=speech)


def _register_all() -> None:
    # One line per area: each module's register() adds its commands. Imports stay light (no heavy deps).
    __import__("aoai_realtime.engine.speech.cli", fromlist=["register"]).register(app)
    __import__("aoai_realtime.server.cli", fromlist=["register"]).register(app)
    __import__("aoai_realtime.pipeline.cli", fromlist=["register"]).register(app)
    __import__("aoai_realtime.memory.cli", fromlist=["register"]).register(app)
    pass


def main() -> None:
    _register_all()
    app()
