"""How many threads llama.cpp computes with, chosen again before every step of a completion.

llama.cpp's threads meet at a barrier at every step, so a thread that shares a busy core stalls the others: on
the 2-core box, 2 threads generated 1-2 tokens a second with other work running, where 1 thread made 14; with
the box otherwise idle, 2 threads made a 0.5B model twice as fast as 1 (a token 27 ms against 47, a 16-token
prompt 153 ms against 296). So a context computes with all the cores only while

- this process runs no speech work (:mod:`..cores`),
- other programs used less than half a core lately (the machine's busy time in ``/proc/stat`` minus this
  process's own CPU time; without ``/proc/stat`` the extra threads are never used), and
- its steps stay fast: a step with all the cores that takes three times its fastest stops their use, for every
  context, for :data:`BACK_OFF_S`.

Otherwise it computes with one core less. ``AOAI_LLM_THREADS`` fixes the count instead.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .. import cores

__all__ = ["BACK_OFF_S", "OtherPrograms", "ThreadChoice", "thread_range"]

BACK_OFF_S = 10.0
_SLOW = 3.0  # a step this many times its fastest with all the cores means they are contended
_OTHERS_MAX = 0.5  # cores other programs may use while the model takes all of them
_WINDOW_S = 0.25  # the shortest stretch measured (/proc/stat counts in 10 ms ticks)


def _cpu_seconds() -> tuple[float, float] | None:
    """(CPU seconds the whole machine has been busy, CPU seconds of this process), or None off Linux."""
    try:
        with open("/proc/stat", "rb") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    if len(fields) < 5:
        return None
    busy = (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
    own = os.times()
    return busy, own.user + own.system


class OtherPrograms:
    """How many cores programs other than this one kept busy lately (measured over at least 0.25 s)."""

    def __init__(self, read: Any = _cpu_seconds, clock: Any = time.monotonic) -> None:
        self._read, self._clock = read, clock
        self._last: tuple[float, float, float] | None = None  # wall time, machine busy, own
        self.cores: float | None = None  # None: not measured yet (or not measurable here)
        self._lock = threading.Lock()  # lanes on several threads ask at once

    def update(self) -> float | None:
        """Measure again if the last measurement is old enough; the latest figure."""
        with self._lock:
            return self._update()

    def _update(self) -> float | None:
        now = self._clock()
        if self._last is not None and now - self._last[0] < _WINDOW_S:
            return self.cores
        sample = self._read()
        if sample is None:
            self.cores = None
            return None
        if self._last is not None:
            wall, busy, own = self._last
            self.cores = max(0.0, (sample[0] - busy) - (sample[1] - own)) / (now - wall)
        self._last = (now, *sample)
        return self.cores

    def quiet(self) -> bool:
        """True when other programs used under half a core in the latest measurement."""
        cores = self.update()
        return cores is not None and cores < _OTHERS_MAX


def thread_range() -> tuple[int, int]:
    """(threads while speech work runs, threads while none does): ``AOAI_LLM_THREADS`` for both when set, else
    one core less than the machine (at least 1) and all of its cores."""
    value = os.environ.get("AOAI_LLM_THREADS", "")
    if value.isdigit() and int(value) > 0:
        return int(value), int(value)
    total = os.cpu_count() or 2
    return max(1, total - 1), total


class ThreadChoice:
    """The thread count of one llama.cpp context. Call :meth:`before_pass` before a completion or prompt
    evaluation and :meth:`step` between its steps (a logits processor is called once per generated token).
    Safe to call from the one thread that drives the context; the back-off is shared by every instance."""

    _backed_off_until = 0.0
    _lock = threading.Lock()
    others = OtherPrograms()  # shared: one machine

    def __init__(self, llm: Any, few: int, most: int, *, clock: Any = time.monotonic,
                 others: OtherPrograms | None = None, gauge: cores.CoreGauge = cores.GAUGE) -> None:  # fmt: skip
        self._llm = llm
        self._gauge = gauge
        self.few, self.most = few, most
        self._clock = clock
        if others is not None:
            self.others = others
        self.current = few
        self._own = 0  # 1 while this context's pass is marked as running (it does not count against itself)
        self._fastest: float | None = None  # fastest one-token step with ``most`` threads, seconds
        self._step_started: float | None = None

    def wanted(self) -> int:
        """``most`` while no speech work runs here, other programs are quiet and no back-off holds, else ``few``."""
        busy = self._gauge.running() - self._own > 0
        if self.most == self.few or busy or self._clock() < ThreadChoice._backed_off_until:
            return self.few
        return self.most if self.others.quiet() else self.few

    @contextmanager
    def running_pass(self) -> Iterator[None]:
        """A pass of this context: marked as running for every other context (:mod:`..cores`), threads chosen
        at its start (call :meth:`step` between its steps)."""
        with self._gauge.working():
            self._own = 1
            try:
                self.before_pass()
                yield
            finally:
                self._own = 0

    def before_pass(self) -> None:
        """Choose the threads for the pass about to start (its prompt is evaluated with them)."""
        self._step_started = None
        self._apply(self.wanted())

    def step(self) -> None:
        """One token was produced: time the step that made it, then choose the threads for the next one."""
        now = self._clock()
        if self._step_started is not None and self.current == self.most > self.few:
            took = now - self._step_started
            if self._fastest is None or took < self._fastest:
                self._fastest = took
            elif took > _SLOW * self._fastest:
                with ThreadChoice._lock:
                    ThreadChoice._backed_off_until = now + BACK_OFF_S
        self._apply(self.wanted())
        self._step_started = self._clock()

    def _apply(self, threads: int) -> None:
        if threads == self.current:
            return
        self.current = threads
        ctx = getattr(getattr(self._llm, "_ctx", None), "ctx", None)
        if ctx is None:  # not a llama.cpp model (a test's stand-in)
            return
        import llama_cpp

        llama_cpp.llama_set_n_threads(ctx, threads, threads)
