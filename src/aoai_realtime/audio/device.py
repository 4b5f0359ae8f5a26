"""Microphone and speaker through the optional ``sounddevice`` library (PortAudio).

``sounddevice`` is not a dependency: install it (``pip install sounddevice``, plus the system PortAudio
library) to use this module. Importing this module works without it; constructing a device raises
:class:`AudioDeviceUnavailable` saying what to install.

Devices run at their own rate (often 48 kHz); audio is resampled to and from the wire's 24 kHz mono.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import RealtimeError
from .pcm import BYTES_PER_SAMPLE, SAMPLE_RATE, resample
from .player import PlayedListener

__all__ = ["AudioDeviceUnavailable", "Microphone", "Speaker"]


class AudioDeviceUnavailable(RealtimeError):
    """The microphone/speaker adapter cannot run here (``sounddevice`` or PortAudio missing)."""


def _sounddevice() -> ModuleType:
    try:
        sounddevice = importlib.import_module("sounddevice")
    except ImportError as exc:
        raise AudioDeviceUnavailable(
            "the microphone/speaker adapter needs the optional 'sounddevice' package: "
            "pip install sounddevice (and the PortAudio library, e.g. apt-get install libportaudio2); "
            "for headless use, use aoai_realtime.audio.PacedPlayer and pcm_source/wav_source instead"
        ) from exc
    except OSError as exc:  # sounddevice raises OSError when PortAudio itself is missing
        raise AudioDeviceUnavailable(
            f"sounddevice is installed but PortAudio could not be loaded ({exc}); install libportaudio2"
        ) from exc
    return sounddevice


class Speaker:
    """An :class:`~aoai_realtime.audio.AudioSink` on the default (or given) output device."""

    def __init__(self, *, device: int | str | None = None, rate: int | None = None, blocksize_ms: float = 20.0) -> None:
        self._sd = _sounddevice()
        info: Any = self._sd.query_devices(device, "output")
        self.rate = int(rate or info["default_samplerate"])
        self.device = device
        self._blocksize = int(self.rate * blocksize_ms / 1000)
        self._lock = threading.Lock()
        self._buffer = bytearray()  # pcm16 mono at the device rate
        self._listener: PlayedListener | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._generation = 0

    def set_listener(self, listener: PlayedListener | None) -> None:
        self._listener = listener

    def write(self, pcm: bytes) -> None:
        data = resample(pcm, SAMPLE_RATE, self.rate)
        with self._lock:
            self._buffer += data

    def clear(self) -> int:
        with self._lock:
            dropped = len(self._buffer) // BYTES_PER_SAMPLE
            self._buffer.clear()
            self._generation += 1
        return int(dropped * SAMPLE_RATE / self.rate)

    @property
    def queued_samples(self) -> int:
        with self._lock:
            return int(len(self._buffer) // BYTES_PER_SAMPLE * SAMPLE_RATE / self.rate)

    def _report(self, samples_device: int, generation: int) -> None:
        if self._listener is not None and generation == self._generation:
            self._listener(round(samples_device * SAMPLE_RATE / self.rate))

    def _callback(self, outdata: Any, frames: int, time: Any, status: Any) -> None:
        want = frames * BYTES_PER_SAMPLE
        with self._lock:
            chunk = bytes(self._buffer[:want])
            del self._buffer[:want]
            generation = self._generation
        block = np.zeros(frames, dtype="<i2")
        block[: len(chunk) // BYTES_PER_SAMPLE] = np.frombuffer(chunk, dtype="<i2")
        outdata[:, 0] = block
        played = len(chunk) // BYTES_PER_SAMPLE
        if played and self._loop is not None:
            # The block is handed to the device now; it is heard over the next block period.
            self._loop.call_soon_threadsafe(self._report, played, generation)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        stream = self._sd.OutputStream(
            samplerate=self.rate, channels=1, dtype="int16", blocksize=self._blocksize,
            device=self.device, callback=self._callback,
        )
        with stream:
            await asyncio.Event().wait()  # until cancelled


class Microphone:
    """The default (or given) input device as an async iterator of pcm16 mono 24 kHz frames."""

    def __init__(
        self, *, device: int | str | None = None, rate: int | None = None, frame_ms: float = 20.0, maxsize: int = 100
    ) -> None:
        self._sd = _sounddevice()
        info: Any = self._sd.query_devices(device, "input")
        self.rate = int(rate or info["default_samplerate"])
        self.device = device
        self._blocksize = int(self.rate * frame_ms / 1000)
        self._maxsize = maxsize

    async def frames(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes] = asyncio.Queue(self._maxsize)

        def put(data: bytes) -> None:
            if queue.full():
                queue.get_nowait()  # a stalled consumer loses the oldest audio, never blocks the device
            queue.put_nowait(data)

        def callback(indata: Any, frames: int, time: Any, status: Any) -> None:
            loop.call_soon_threadsafe(put, bytes(indata[:, 0].astype("<i2").tobytes()))

        stream = self._sd.InputStream(
            samplerate=self.rate, channels=1, dtype="int16", blocksize=self._blocksize,
            device=self.device, callback=callback,
        )
        with stream:
            while True:
                yield resample(await queue.get(), self.rate, SAMPLE_RATE)
