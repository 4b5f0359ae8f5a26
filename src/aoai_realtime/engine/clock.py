"""Clocks for the engine: the session's timers (VAD idle timeout, maximum session duration, real-time audio
pacing over WebRTC, scripted pauses) all go through a :class:`Clock`, so tests drive time by hand.

The clock is the library's one clock abstraction, :mod:`aoai_realtime.clock`, shared with the agents and
transports; this module names it for the engine.
"""

from __future__ import annotations

from ..clock import Clock, FakeClock, SystemClock

__all__ = ["Clock", "FakeClock", "SystemClock"]
