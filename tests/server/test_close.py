"""RealtimeServer.close never hangs on one stuck part: a call that ignores its hang-up, a back end that never closes."""

from __future__ import annotations

import asyncio
import logging

import pytest

from aoai_realtime.server import router

from .support import MakeServer


class _IgnoresHangUp:
    async def hang_up(self) -> None:
        pass


async def test_close_goes_on_past_a_stuck_call_and_a_back_end_that_does_not_close(
    make_server: MakeServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    server, _ = await make_server()
    monkeypatch.setattr(router, "CLOSE_GRACE_S", 0.05)
    never = asyncio.Event()
    stuck = asyncio.get_running_loop().create_task(never.wait())
    server.calls["rtc_stuck"] = router._LiveCall("alice", "slot", _IgnoresHangUp(), stuck)  # type: ignore[arg-type]

    async def never_closes() -> None:
        await never.wait()

    monkeypatch.setattr(server.call_gate, "close", never_closes)
    with caplog.at_level(logging.WARNING, logger="aoai_realtime.server.router"):
        await server.close()
    assert stuck.cancelled()
    assert "1 task(s) still running" in caplog.text and "closing the call gate took over" in caplog.text
    server.calls.clear()
