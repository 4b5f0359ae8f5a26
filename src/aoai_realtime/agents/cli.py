"""``aoai-realtime bench agents``: transcript sync error and response latency against the local engine."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["register"]


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``agents`` to the bench sub-app."""

    @bench_app.command("agents")
    def bench_agents(
        sessions: Annotated[int, typer.Option(help="Sessions for the transcript sync error.")] = 12,
        turns: Annotated[int, typer.Option(help="Spoken turns for the latency figures (0: skip).")] = 12,
        realtime: Annotated[bool, typer.Option(help="Run the sync benchmark on the real clock.")] = False,
    ) -> None:
        """Transcript sync error (ours vs a 285 ms drip) and end of speech -> first audio heard, p50/p95."""
        from .bench import main

        argv = ["--sessions", str(sessions), "--turns", str(turns)]
        main([*argv, "--realtime"] if realtime else argv)
