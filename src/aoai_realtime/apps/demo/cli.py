"""``aoai-realtime demo``: the two agents in a local web app, or played end to end with ``--headless``."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, cast

import typer

if TYPE_CHECKING:
    from .stack import DemoOptions

__all__ = ["demo_command"]

DEFAULT_DATA_DIR = Path("~/.local/share/aoai-realtime/demo")


def _has_display() -> bool:
    if os.environ.get("CI"):
        return False
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


_HELP = {
    "headless": "Play both agents end to end with no browser; exit 1 when an expectation fails.",
    "port": "Port of the page (default 8080; headless: a free one).",
    "host": "Address to bind. Beyond loopback, anyone who reaches it can act as any demo user.",
    "data_dir": f"Where memory and visits are kept (default {DEFAULT_DATA_DIR}; headless: a temporary folder).",
    "brain": "Local engine brain: auto (the offline language model when installed, else rules), llm, rules, "
    "scripted:PATH or llama:PATH.",
    "speech": "Local engine speech: full (silero, whisper, piper) or fake (no models; headless turns are typed).",
    "script": "The Visit Agent's question script (YAML or JSON).",
    "local": "Use the local engine even when AZURE_OPENAI_ENDPOINT is set.",
}


def demo_command(
    headless: Annotated[bool, typer.Option(help=_HELP["headless"])] = False,
    port: Annotated[int | None, typer.Option(help=_HELP["port"])] = None,
    host: Annotated[str, typer.Option(help=_HELP["host"])] = "127.0.0.1",
    data_dir: Annotated[Path | None, typer.Option(help=_HELP["data_dir"])] = None,
    brain: Annotated[str, typer.Option(help=_HELP["brain"])] = "auto",
    speech: Annotated[str, typer.Option(help=_HELP["speech"])] = "full",
    script: Annotated[Path | None, typer.Option(help=_HELP["script"])] = None,
    local: Annotated[bool, typer.Option("--local", help=_HELP["local"])] = False,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Do not open a browser.")] = False,
) -> None:
    """The Memory Agent and the Visit Agent in a web page on this machine (local engine, or Azure when
    AZURE_OPENAI_ENDPOINT is set). --headless plays both agents end to end instead."""
    from .stack import DemoError, DemoOptions

    if speech not in ("full", "fake"):
        raise typer.BadParameter("use full or fake", param_hint="--speech")
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        raise typer.BadParameter(f"{host!r} is not an IP address (e.g. 127.0.0.1)", param_hint="--host") from None
    if not loopback:
        typer.echo(f"warning: serving the demo on {host}: anyone who can reach this port can act as any demo user "
                   "(demo sign-in only); keep it on a network you trust", err=True)  # fmt: skip
    temp = tempfile.TemporaryDirectory(prefix="aoai-demo-") if headless and data_dir is None else None
    options = DemoOptions(
        data_dir=Path(temp.name) if temp else (data_dir or DEFAULT_DATA_DIR),
        host=host,
        port=port if port is not None else (0 if headless else 8080),
        brain=brain,
        speech=cast(Literal["full", "fake"], speech),
        script=script,
        upstream="local" if local else "auto",
    )
    try:
        if headless:
            ok = asyncio.run(_headless(options))
            raise typer.Exit(0 if ok else 1)
        asyncio.run(_interactive(options, open_browser=not no_browser and _has_display()))
    except DemoError as exc:
        typer.echo(f"demo: {exc}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        typer.echo("demo: stopped")
    finally:
        if temp is not None:
            temp.cleanup()


async def _interactive(options: DemoOptions, *, open_browser: bool) -> None:
    from .stack import open_demo

    async with open_demo(options, say=typer.echo) as demo:
        typer.echo(f"demo on {demo.url}  (Ctrl-C to stop)")
        if open_browser:
            import webbrowser

            webbrowser.open(demo.url)
        stop = asyncio.Event()
        with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows' loop: Ctrl-C still works
            # SIGTERM (a service manager, `kill`) ends like Ctrl-C: calls hung up, post-call work finished.
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        typer.echo("demo: stopping (finishing post-call work)")


async def _headless(options: DemoOptions) -> bool:
    from .headless import run_headless
    from .stack import open_demo

    async with open_demo(options, say=typer.echo) as demo:
        run = await run_headless(demo, say=typer.echo, spoken=options.speech == "full" and demo.speech is not None)
    return run.all_ok
