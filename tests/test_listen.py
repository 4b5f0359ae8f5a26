"""The listening socket the command line's servers share (engine, demo): bound or a clear cause."""

from __future__ import annotations

import socket

import pytest

from aoai_realtime.listen import ListenError, listen


def test_listens_on_a_free_port_and_says_when_the_port_is_taken() -> None:
    with listen("127.0.0.1", 0) as sock:
        host, port = sock.getsockname()[:2]
        assert host == "127.0.0.1" and port > 0
        assert sock.getblocking() is False
        with socket.create_connection(("127.0.0.1", port)):  # accepted into the backlog before any server runs
            pass
        with pytest.raises(ListenError, match="in use") as taken:
            listen("127.0.0.1", port).close()
        assert taken.value.in_use


def test_an_address_that_is_not_ours_is_refused_with_the_reason() -> None:
    with pytest.raises(ListenError, match=r"cannot listen on 192\.0\.2\.1:0") as refused:
        listen("192.0.2.1", 0).close()  # TEST-NET-1: never a local address
    assert not refused.value.in_use
