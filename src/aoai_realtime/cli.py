"""The ``aoai-realtime`` command line. Each area registers its own commands (see ``_register_all``).

Errors are reported by :func:`aoai_realtime.cli_errors.run_cli`: one or two lines naming the cause and the fix,
exit code 2 for usage and 1 for failure; ``--debug`` adds the traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# rich_markup_mode=None: plain help (no "<bool>" beside flags, as rich help in typer >= 0.2x shows).
app = typer.Typer(no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  pretty_exceptions_show_locals=False, help="Voice agents on the Azure OpenAI Realtime API.")
bench_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Benchmarks that print their figures.")
app.add_typer(bench_app, name="bench")


def _print_version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"aoai-realtime {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Print the full traceback of an error.")] = False,
    version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version and exit.")
    ] = False,
) -> None:
    """Voice agents on the Azure OpenAI Realtime API: the demo, a terminal conversation, the local engine, the
    browser server, the post-call worker and the benchmarks."""
    # --debug is read by cli_errors.run_cli from the command line; declared here so every command accepts it.


@app.command()
def version() -> None:
    """Print the version."""
    from . import __version__

    typer.echo(__version__)


_SPEECH = ("full", "light", "fake")


@app.command()
def talk(
    inputs: Annotated[list[str] | None, typer.Argument(help="Text lines or .wav files; none: interactive.")] = None,
    url: Annotated[str | None, typer.Option(help="An engine base URL, e.g. http://127.0.0.1:8765/v1.")] = None,
    key: Annotated[str | None, typer.Option(envvar="AOAI_ENGINE_API_KEY", help="The engine's or Azure's key.")] = None,
    azure_resource: Annotated[str | None, typer.Option(help="Talk to Azure OpenAI (AZURE_OPENAI_API_KEY).")] = None,
    deployment: Annotated[str, typer.Option(help="The Azure deployment name.")] = "gpt-realtime",
    speech: Annotated[str, typer.Option(help="In-process engine speech: full, light or fake.")] = "full",
    wav_out: Annotated[Path | None, typer.Option(help="Write each reply as DIR/reply-N.wav.")] = None,
    ca_file: Annotated[
        Path | None,
        typer.Option(help="Trust this PEM certificate for a wss:// URL, e.g. the one 'aoai-realtime engine "
                     "--tls-self-signed' printed."),
    ] = None,
) -> None:
    """A conversation from the terminal: text or WAV in, the reply as text (and WAV) out, with latencies."""
    import asyncio

    from .apps.talk import stdin_line
    from .apps.talk import talk as run

    if speech not in _SPEECH:
        raise typer.BadParameter(f"{speech!r} is not one of {', '.join(_SPEECH)}", param_hint="--speech")
    if any(not text.strip() for text in inputs or ()):
        raise typer.BadParameter("an input is empty: give text to say or a .wav file (no input at all starts an "
                                 "interactive prompt)", param_hint="INPUTS")
    if ca_file is not None and not ca_file.is_file():
        raise typer.BadParameter(f"no such file: {ca_file}", param_hint="--ca-file")
    asyncio.run(run(inputs or [], url=url, key=key, azure_resource=azure_resource, deployment=deployment,
                    speech=speech, wav_out=wav_out, read_line=stdin_line, ca_file=ca_file))


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
    """The ``aoai-realtime`` entry point."""
    import sys

    from .cli_errors import run_cli

    _register_all()
    sys.exit(run_cli(app))
