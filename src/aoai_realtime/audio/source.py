"""Audio input for headless use: pcm arrays and WAV files as async streams of frames."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from .pcm import SAMPLE_RATE, frames
from .wav import read_wav

__all__ = ["pcm_source", "wav_source"]


async def pcm_source(
    pcm: bytes,
    *,
    frame_ms: float = 20.0,
    realtime: bool = True,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncIterator[bytes]:
    """Yield ``pcm`` (pcm16 mono 24 kHz) in frames; with ``realtime=True`` at the pace of a microphone, on an
    absolute schedule so the pace does not drift."""
    now = clock or asyncio.get_running_loop().time
    start = now()
    sent = 0
    for frame in frames(pcm, frame_ms, SAMPLE_RATE):
        if realtime:
            # a microphone delivers a frame once it has been captured
            sent += len(frame) // 2
            await sleep(max(0.0, start + sent / SAMPLE_RATE - now()))
        yield frame


async def wav_source(path: str | Path, *, frame_ms: float = 20.0, realtime: bool = True) -> AsyncIterator[bytes]:
    """A WAV file (any rate, mono or stereo, 16-bit) as a stream of pcm16 mono 24 kHz frames."""
    async for frame in pcm_source(read_wav(path), frame_ms=frame_ms, realtime=realtime):
        yield frame
