"""Progress on stderr: in a log (not a terminal) each phase is a line when it starts and when it ends."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from aoai_realtime.progress import Phases, activity


def log_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=False, width=120), out


def test_phases_in_a_log_print_start_and_end_once() -> None:
    console, out = log_console()
    with Phases({"index": "indexing turns"}, console=console) as bars:
        for done in range(1, 4):
            bars.step("index", done, 3)
        bars.step("index", 3, 3)  # a repeated final step prints nothing more
        bars.note("built 3 chunks")
    lines = out.getvalue().splitlines()
    assert lines[0] == "indexing turns: 3 to do"
    assert lines[1].startswith("indexing turns: 3/3 done in ") and lines[1].endswith(" s")
    assert lines[2:] == ["built 3 chunks"]


def test_activity_says_done_or_failed() -> None:
    console, out = log_console()
    with activity("loading speech (fake)", console=console):
        pass
    with pytest.raises(RuntimeError), activity("loading the brain (llm)", console=console):
        raise RuntimeError("model missing")
    lines = out.getvalue().splitlines()
    assert lines[0] == "loading speech (fake)..." and lines[1].startswith("loading speech (fake): done in ")
    assert lines[3].startswith("loading the brain (llm): failed in ")


def test_phases_on_a_terminal_draw_bars() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    with Phases(console=console) as bars:
        bars.step("questions", 5, 10)
    assert "questions" in out.getvalue() and "5/10" in out.getvalue()
