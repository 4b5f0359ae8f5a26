"""Progress on stderr for long work (benchmarks, index builds, model loading), with rich.

Two shapes, both context managers that print to stderr and leave stdout to results:

- :class:`Phases`: one bar per named phase, driven by ``step(phase, done, total)`` (the shape of a progress
  callback a library function takes, so the library itself stays free of rich), and ``note(message)``.
- :func:`activity`: a spinner with the elapsed time for work with no count (loading a model), then one line
  saying how long it took.

On a terminal the bars redraw in place; elsewhere (a log file, CI) rich prints nothing live, so each phase is
written as a line when it starts and when it ends, and nothing floods the log.

>>> with Phases() as bars:
...     for i, chunk in enumerate(chunks, 1):
...         index(chunk)
...         bars.step("indexing", i, len(chunks))
>>> with activity("loading speech models (full)"):
...     speech = load_speech("full")
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

__all__ = ["Phases", "activity"]


def _stderr() -> Console:
    return Console(stderr=True)


class Phases:
    """One progress bar per phase, on stderr. Use as ``with``; call :meth:`step` from the work.

    ``labels`` maps a phase key to the text shown (default: the key itself). ``console`` defaults to stderr.
    """

    def __init__(self, labels: dict[str, str] | None = None, *, console: Console | None = None) -> None:
        self.console = console or _stderr()
        self._labels = labels or {}
        self._live = self.console.is_terminal
        self._progress = Progress(
            TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=self.console, disable=not self._live,
        )  # fmt: skip
        self._tasks: dict[str, TaskID] = {}
        self._started: dict[str, float] = {}
        self._finished: set[str] = set()

    def __enter__(self) -> Phases:
        self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def step(self, phase: str, done: int, total: int) -> None:
        """``done`` of ``total`` units of ``phase`` are finished (a phase seen first opens a bar)."""
        label = self._labels.get(phase, phase)
        if phase not in self._tasks:
            self._tasks[phase] = self._progress.add_task(label, total=total)
            self._started[phase] = time.perf_counter()
            if not self._live:
                self.console.print(f"{label}: {total} to do")
        self._progress.update(self._tasks[phase], completed=done, total=total)
        if not self._live and done >= total and phase not in self._finished:
            self._finished.add(phase)
            self.console.print(f"{label}: {done}/{total} done in {time.perf_counter() - self._started[phase]:.1f} s")

    def note(self, message: str) -> None:
        """A line above the bars (or in the log)."""
        if self._live:
            self._progress.console.log(message)
        else:
            self.console.print(message)


@contextmanager
def activity(description: str, *, console: Console | None = None) -> Iterator[None]:
    """A spinner and the elapsed time while the block runs, then ``description: done in N s`` on stderr.

    For work that cannot report steps (loading a model). If the block raises, the line says ``failed``.
    """
    console = console or _stderr()
    started = time.perf_counter()
    outcome = "failed"
    if console.is_terminal:
        progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=True
        )
        progress.add_task(description, total=None)
        progress.start()
    else:
        progress = None
        console.print(f"{description}...")
    try:
        yield
        outcome = "done"
    finally:
        if progress is not None:
            progress.stop()
        console.print(f"{description}: {outcome} in {time.perf_counter() - started:.1f} s")
