"""The in-memory transport pair: bounded both ways, and a close ends everything waiting on it."""

from __future__ import annotations

import asyncio

import pytest

from aoai_realtime.errors import ConnectionClosed
from aoai_realtime.transport.memory import memory_pair


async def test_a_full_pipe_pushes_back_and_the_queued_messages_come_before_the_close() -> None:
    client, server = memory_pair(maxsize=2)
    await client.send(b"1")
    await client.send(b"2")
    blocked = asyncio.ensure_future(client.send(b"3"))
    await asyncio.sleep(0)
    assert not blocked.done()  # no room: the writer waits, as on a socket
    assert await server.recv() == b"1"
    await blocked  # room again
    await client.close(4000, "bye")
    assert [await server.recv(), await server.recv()] == [b"2", b"3"]
    for _ in range(2):  # and the close stays for every later reader
        with pytest.raises(ConnectionClosed) as closed:
            await server.recv()
        assert (closed.value.code, closed.value.reason) == (4000, "bye")


async def test_a_writer_waiting_for_room_is_released_by_the_peer_closing() -> None:
    client, server = memory_pair(maxsize=1)
    await client.send(b"1")
    blocked = asyncio.ensure_future(client.send(b"2"))
    await asyncio.sleep(0)
    await server.close(1001, "going away")  # the reader will never read again
    with pytest.raises(ConnectionClosed) as closed:
        await blocked
    assert closed.value.code == 1001
    assert client.sent == [b"1"]  # what was not sent is not recorded as sent
    with pytest.raises(ConnectionClosed):
        await client.send(b"3")


async def test_a_reader_waiting_on_an_empty_pipe_wakes_on_close() -> None:
    client, server = memory_pair()
    reading = asyncio.ensure_future(server.recv())
    await asyncio.sleep(0)
    await client.close()
    with pytest.raises(ConnectionClosed) as closed:
        await reading
    assert closed.value.code == 1000
