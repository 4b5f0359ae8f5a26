"""Structured concurrency of the voice assistant (issue 12 item 2): a child task that dies fails the assistant
visibly (state ``error``, the ``error`` callback, waiters raise, ``close()`` / ``async with`` raise it) instead of
being logged and swallowed; the :class:`Supervisor` underneath, driven directly."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import aoai_realtime.testing.engine as harness_module
from aoai_realtime.agents import AssistantState, VoiceAssistant
from aoai_realtime.agents.supervisor import Supervisor
from aoai_realtime.audio import PacedPlayer
from aoai_realtime.client import RealtimeClient
from aoai_realtime.testing.virtual_time import run_virtual

S = AssistantState


class UnpluggedSpeaker(PacedPlayer):
    """A player whose device goes away as soon as it starts."""

    async def run(self) -> None:
        raise RuntimeError("speaker unplugged")


def test_a_dying_task_fails_the_assistant_visibly() -> None:
    async def scenario() -> None:
        async with harness_module.EngineHarness() as harness:
            client = RealtimeClient(harness.connect())
            assistant = VoiceAssistant(client, player=UnpluggedSpeaker())
            errors: list[BaseException] = []
            assistant.on("error", errors.append)

            async def body() -> None:
                async with assistant:
                    with pytest.raises(RuntimeError, match="unplugged"):  # a waiter gets it
                        await assistant.wait_for_state(S.SPEAKING, timeout=30)  # virtual time: a bound
                    assert assistant.state is S.ERROR
                    assert [str(e) for e in errors] == ["speaker unplugged"]
                    assert assistant.failure is errors[0]

            with pytest.raises(RuntimeError, match="unplugged"):  # and leaving async with raises it
                await body()
            assert not client.connected  # the assistant opened the connection, and closed it

    run_virtual(scenario())


def test_close_raises_the_failure_once() -> None:
    async def scenario() -> None:
        async with harness_module.EngineHarness() as harness:
            assistant = VoiceAssistant(RealtimeClient(harness.connect()), player=UnpluggedSpeaker())
            await assistant.start()
            with pytest.raises(RuntimeError, match="unplugged"):
                await assistant.wait_for_state(S.SPEAKING, timeout=30)  # virtual time: a bound, not a wait
            with pytest.raises(RuntimeError, match="unplugged"):
                await assistant.close()
            await assistant.close()  # idempotent: reported once

    run_virtual(scenario())


async def test_supervisor_a_failing_child_cancels_its_siblings_and_is_reported() -> None:
    failures: list[BaseException] = []
    supervisor = Supervisor("test", on_failure=failures.append)
    await supervisor.start()
    sibling_cancelled = asyncio.Event()
    release = asyncio.Event()

    async def sibling() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            sibling_cancelled.set()
            raise

    async def failing() -> None:
        await release.wait()
        raise ValueError("child bug")

    supervisor.spawn(sibling())
    supervisor.spawn(failing())
    release.set()
    await sibling_cancelled.wait()
    await supervisor.stop()
    assert [str(f) for f in failures] == ["child bug"]
    assert not supervisor.running


async def test_supervisor_crash_from_a_callback_ends_the_group() -> None:
    failures: list[BaseException] = []
    supervisor = Supervisor("test", on_failure=failures.append)
    await supervisor.start()
    child_ended = asyncio.Event()

    async def child() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            child_ended.set()

    supervisor.spawn(child())
    await asyncio.sleep(0)  # let the child start
    supervisor.crash(KeyError("handler bug"))
    await child_ended.wait()
    await supervisor.stop()
    assert [type(f) for f in failures] == [KeyError]


async def test_supervisor_stop_cancels_children_and_reports_nothing() -> None:
    failures: list[BaseException] = []
    supervisor = Supervisor("test", on_failure=failures.append)
    await supervisor.start()
    started: list[Any] = []

    async def child() -> None:
        started.append(1)
        await asyncio.Event().wait()

    supervisor.spawn(child())
    await asyncio.sleep(0)
    await supervisor.stop()
    assert started == [1] and failures == []
    coro = child()
    supervisor.spawn(coro)  # after the end: closed unrun, no "never awaited" warning
    assert coro.cr_frame is None
