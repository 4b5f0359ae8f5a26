"""``aoai-realtime bench speech``: the speech benchmark (see :mod:`.bench`)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add ``bench speech`` to the ``bench`` sub-command of ``app``'s CLI."""
    from ...cli import bench_app

    @bench_app.command("speech")
    def bench_speech(
        repeat: int = typer.Option(5, help="Runs per figure (medians are printed)."),
        only: str = typer.Option(
            "vad,stt,tts,resample", help="Comma-separated parts: vad, stt, tts, resample; offline (root, strace)."
        ),
    ) -> None:
        """VAD x real time, STT latency/RTF, TTS time to first chunk, resampling cost, per implementation."""
        from .bench import run

        run(repeat=repeat, only=only)
