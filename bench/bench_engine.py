"""End of the user's speech -> first audio at microphone pace, its parts, and concurrent real-time calls.

    .venv/bin/python bench/bench_engine.py [--speech fake|full] [--brain scripted|rules|llm] [--concurrency] [--json]

Same as ``aoai-realtime bench engine``; the code and the meaning of each figure are in
``aoai_realtime.bench.engine``.
"""

from __future__ import annotations

import typer

from aoai_realtime.bench.engine import register

if __name__ == "__main__":
    app = typer.Typer(add_completion=False)
    register(app)
    app()  # one command: typer runs it directly
