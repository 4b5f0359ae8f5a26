"""RealtimeClient against a scripted in-memory server: no sockets, no sleeps (the backoff sleep is injected)."""

from __future__ import annotations

import asyncio
import base64
import json
import random
from typing import Any

import pytest

from aoai_realtime.client import RealtimeClient, Reconnected, ReconnectPolicy
from aoai_realtime.errors import AuthenticationError, Busy, ConnectError, ConnectionClosed, ServerError, SessionExpired
from aoai_realtime.protocol import events as ev
from aoai_realtime.protocol.session import ServerVad, SessionConfig
from aoai_realtime.transport.memory import memory_pair

from .fakes import Dialer, FakeServer


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def _sent(server: FakeServer, type_: str) -> list[Any]:
    return [e for e in server.received if e.type == type_]


async def test_connect_sends_the_session_and_waits_for_confirmation() -> None:
    server = FakeServer()
    config = SessionConfig(instructions="Be brief.", voice="marin", turn_detection=ServerVad(silence_duration_ms=400))
    async with RealtimeClient(Dialer(server), session=config) as client:
        updates = _sent(server, "session.update")
        assert len(updates) == 1
        assert updates[0].session["type"] == "realtime"
        assert updates[0].session["audio"]["output"]["voice"] == "marin"
        assert updates[0].session["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 400
        # the client knows the effective session the service confirmed
        assert client.session["instructions"] == "Be brief."
        assert client.session["audio"]["output"]["voice"] == "marin"


async def test_a_rejected_session_raises_naming_the_field_and_closes_everything() -> None:
    dialer = Dialer(FakeServer(reject_param="session.voice"))
    client = RealtimeClient(dialer, session={"type": "realtime", "voice": "alloy"})
    with pytest.raises(ServerError) as info:
        await client.connect()
    assert info.value.param == "session.voice"
    assert info.value.code == "unknown_parameter"
    assert dialer.closes >= 1
    assert dialer.conn is not None and dialer.conn.closed
    assert not client.connected


async def test_no_session_created_is_a_clear_connect_error_and_nothing_leaks() -> None:
    dialer = Dialer(FakeServer(greet=False))
    client = RealtimeClient(dialer, connect_timeout=0.05)
    with pytest.raises(ConnectError, match=r"session\.created"):
        await client.connect()
    assert dialer.conn is not None and dialer.conn.closed


async def test_failed_transport_connect_propagates_and_leaves_client_reusable() -> None:
    server = FakeServer()
    dialer = Dialer(server)
    dialer.fail_next = [AuthenticationError("refused", status=401)]
    client = RealtimeClient(dialer)
    with pytest.raises(AuthenticationError):
        await client.connect()
    await client.connect()  # the same client connects on the next try
    assert client.connected
    await client.close()


async def test_events_are_typed_and_handlers_fire_including_wildcard_and_async() -> None:
    dialer = Dialer(FakeServer())
    seen: list[str] = []
    async_seen: list[str] = []
    async with RealtimeClient(dialer) as client:
        client.on("response.output_audio.delta", lambda e: seen.append(e.delta))
        client.on("*", lambda e: seen.append("*" + e.type))

        async def slow(e: Any) -> None:
            async_seen.append(e.type)

        client.on("response.done", slow)
        stream = client.events()
        await dialer.push(ev.ResponseAudioDeltaEvent(event_id="e1", response_id="r", item_id="i", output_index=0,
                                                     content_index=0, delta="AAAA"))
        await dialer.push(ev.ResponseDoneEvent(event_id="e2", response=ev.Response(id="r", status="completed")))
        first = await anext(stream)
        second = await anext(stream)
        assert isinstance(first, ev.ResponseAudioDeltaEvent)
        assert isinstance(second, ev.ResponseDoneEvent)
        await asyncio.sleep(0)  # let the async handler task run
    assert seen == ["AAAA", "*response.output_audio.delta", "*response.done"]
    assert async_seen == ["response.done"]


async def test_off_removes_a_handler() -> None:
    dialer = Dialer(FakeServer())
    seen: list[str] = []

    def handler(e: Any) -> None:
        seen.append(e.type)

    async with RealtimeClient(dialer) as client:
        client.on("input_audio_buffer.cleared", handler)
        await dialer.push(ev.InputAudioBufferClearedEvent(event_id="e1"))
        await client.wait_for("input_audio_buffer.cleared")
        client.off("input_audio_buffer.cleared", handler)
        client.off("input_audio_buffer.cleared", handler)  # removing twice is harmless
        await dialer.push(ev.InputAudioBufferClearedEvent(event_id="e2"))
        await client.wait_for("input_audio_buffer.cleared")
    assert seen == ["input_audio_buffer.cleared"]


async def test_a_malformed_message_is_skipped_and_the_loop_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    dialer = Dialer(FakeServer())
    async with RealtimeClient(dialer) as client:
        await dialer.push(b'{"type": "response.output_audio.delta", "event_id": "x"}')
        await dialer.push(b"{not json")
        await dialer.push(ev.InputAudioBufferClearedEvent(event_id="ok"))
        got = await client.wait_for(ev.InputAudioBufferClearedEvent, timeout=5)
        assert got.event_id == "ok"
    assert "malformed" in caplog.text


async def test_beta_event_names_arrive_as_ga_types() -> None:
    dialer = Dialer(FakeServer())
    async with RealtimeClient(dialer) as client:
        await dialer.push(json.dumps({"type": "response.audio_transcript.delta", "event_id": "e", "response_id": "r",
                                      "item_id": "i", "output_index": 0, "content_index": 0,
                                      "delta": "Hi"}).encode())
        got = await client.wait_for(ev.ResponseAudioTranscriptDeltaEvent, timeout=5)
        assert got.delta == "Hi"


async def test_reconnects_with_backoff_resends_session_and_keeps_handlers() -> None:
    server = FakeServer()
    dialer = Dialer(server)
    sleeps = Sleeps()
    dialer_fail = [ConnectError("refused")]
    seen: list[str] = []
    client = RealtimeClient(dialer, session=SessionConfig(instructions="hello"), sleep=sleeps,
                            rng=random.Random(7), reconnect=ReconnectPolicy(max_attempts=4, base_delay=0.5))
    async with client:
        client.on("input_audio_buffer.cleared", lambda e: seen.append(e.event_id))
        await client.update_session({"type": "realtime", "audio": {"output": {"voice": "cedar"}}})
        stream = client.events()
        dialer.fail_next = list(dialer_fail)
        await dialer.drop(1006)
        before: list[object] = []
        got = await anext(stream)
        while not isinstance(got, Reconnected):
            before.append(got)
            got = await anext(stream)
        assert got.attempt == 2  # the first attempt was refused
        assert len(sleeps.delays) == 2
        assert 0 <= sleeps.delays[0] <= 0.5 and 0 <= sleeps.delays[1] <= 1.0
        # Reconnected comes once the new session has the config: its session.updated went first.
        assert [type(e) for e in before][-2:] == [ev.SessionCreatedEvent, ev.SessionUpdatedEvent]
        assert client.session["instructions"] == "hello"
        resent = _sent(server, "session.update")[-1].session
        assert resent["instructions"] == "hello"
        assert resent["audio"]["output"]["voice"] == "cedar"  # the later update is re-sent too
        await dialer.push(ev.InputAudioBufferClearedEvent(event_id="after"))
        await client.wait_for("input_audio_buffer.cleared")
    assert seen == ["after"]
    assert server.sessions_created == 2


async def test_no_reconnect_after_an_authentication_failure() -> None:
    dialer = Dialer(FakeServer())
    sleeps = Sleeps()
    async with RealtimeClient(dialer, sleep=sleeps) as client:
        stream = client.events()
        dialer.fail_next = [AuthenticationError("key revoked", status=401)]
        await dialer.drop(1006)
        with pytest.raises(AuthenticationError):
            async for _ in stream:
                pass
        assert dialer.connects == 2  # one attempt, then stop
        with pytest.raises(ConnectionClosed):
            await client.commit_audio()


async def test_gives_up_after_max_attempts() -> None:
    dialer = Dialer(FakeServer())
    async with RealtimeClient(dialer, sleep=Sleeps(), reconnect=ReconnectPolicy(max_attempts=3)) as client:
        stream = client.events()
        dialer.fail_next = [ConnectError("down")] * 5
        await dialer.drop(1011)
        with pytest.raises(ConnectionClosed, match="3 reconnect attempts"):
            async for _ in stream:
                pass


async def test_session_expiry_ends_events_with_session_expired_and_no_reconnect() -> None:
    dialer = Dialer(FakeServer())
    sleeps = Sleeps()
    async with RealtimeClient(dialer, sleep=sleeps) as client:
        stream = client.events()
        err = ev.ErrorDetails(type="invalid_request_error", code="session_expired",
                              message="Your session hit the maximum duration of 60 minutes.")
        await dialer.push(ev.RealtimeErrorEvent(event_id="e", error=err))
        await dialer.drop(1001, "Your session hit the maximum duration of 60 minutes.")
        first = await anext(stream)
        assert isinstance(first, ev.RealtimeErrorEvent) and first.error.code == "session_expired"
        with pytest.raises(SessionExpired) as info:
            await anext(stream)
        assert info.value.code == 1001
    assert sleeps.delays == []
    assert dialer.connects == 1


async def test_close_is_idempotent_ends_iterators_and_the_client_can_connect_again() -> None:
    dialer = Dialer(FakeServer())
    client = RealtimeClient(dialer)
    await client.connect()
    handler_calls: list[str] = []
    client.on("input_audio_buffer.cleared", lambda e: handler_calls.append(e.event_id))
    stream = client.events()
    waiter = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    await client.close()
    await client.close()
    with pytest.raises(StopAsyncIteration):
        await waiter
    await client.connect()  # reusable, and the handler is still there
    await dialer.push(ev.InputAudioBufferClearedEvent(event_id="again"))
    await client.wait_for("input_audio_buffer.cleared")
    assert handler_calls == ["again"]
    await client.close()


async def test_helpers_send_the_documented_events() -> None:
    server = FakeServer()
    async with RealtimeClient(Dialer(server)) as client:
        await client.append_audio(b"\x01\x00\x02\x00")
        await client.commit_audio()
        await client.clear_audio()
        await client.create_response(instructions="Say hi", metadata={"k": "v"})
        await client.cancel_response("resp_1")
        await client.truncate("item_1", 1234)
        await client.create_item({"type": "message", "role": "user",
                                  "content": [{"type": "input_text", "text": "hi"}]}, previous_item_id="root")
        await client.delete_item("item_1")
        await client.clear_output_audio()
        await client.send_text("hello")
    types = [e.type for e in server.received]
    assert types == ["input_audio_buffer.append", "input_audio_buffer.commit", "input_audio_buffer.clear",
                     "response.create", "response.cancel", "conversation.item.truncate",
                     "conversation.item.create", "conversation.item.delete", "output_audio_buffer.clear",
                     "conversation.item.create", "response.create"]
    append = server.received[0]
    assert isinstance(append, ev.InputAudioBufferAppendEvent)
    assert base64.b64decode(append.audio) == b"\x01\x00\x02\x00"
    truncate = server.received[5]
    assert isinstance(truncate, ev.ConversationItemTruncateEvent)
    assert (truncate.item_id, truncate.audio_end_ms, truncate.content_index) == ("item_1", 1234, 0)
    create = server.received[3]
    assert isinstance(create, ev.ResponseCreateEvent)
    assert create.response == {"instructions": "Say hi", "metadata": {"k": "v"}}


async def test_conversation_state_follows_the_events() -> None:
    dialer = Dialer(FakeServer())
    async with RealtimeClient(dialer) as client:
        item = ev.Item(id="item_a", type="message", role="assistant", status="in_progress", content=[])
        await dialer.push(ev.ResponseCreatedEvent(event_id="1", response=ev.Response(id="r1", conversation_id="c")))
        await dialer.push(ev.ResponseOutputItemAddedEvent(event_id="2", response_id="r1", output_index=0, item=item))
        pcm = base64.b64encode(b"\0" * 4800).decode()  # 100 ms
        await dialer.push(ev.ResponseAudioDeltaEvent(event_id="3", response_id="r1", item_id="item_a",
                                                     output_index=0, content_index=0, delta=pcm))
        await client.wait_for("response.output_audio.delta")
        assert client.conversation.active_response_id == "r1"
        assert client.conversation.audio_ms("item_a") == pytest.approx(100.0)


async def test_memory_transport_close_reaches_the_peer_with_its_code() -> None:
    a, b = memory_pair(2)
    await a.send(b"1")
    await a.send(b"2")
    await a.close(1001, "bye")  # a full queue still delivers what was sent, then the close
    assert await b.recv() == b"1"
    assert await b.recv() == b"2"
    with pytest.raises(ConnectionClosed) as info:
        await b.recv()
    assert info.value.code == 1001
    with pytest.raises(ConnectionClosed):
        await b.send(b"x")


async def test_a_consumer_that_stops_reading_is_cut_off_and_the_session_goes_on() -> None:
    dialer = Dialer(FakeServer())
    async with RealtimeClient(dialer, queue_size=4) as client:
        stalled = client.events()
        first = asyncio.ensure_future(anext(stalled))  # subscribe, then never read again
        await asyncio.sleep(0)
        live = client.events()
        for i in range(8):
            await dialer.push(ev.InputAudioBufferClearedEvent(event_id=f"e{i}"))
            got = await anext(live)  # the reading consumer sees every event, in order
            assert got.event_id == f"e{i}"
        assert (await first).event_id == "e0"
        with pytest.raises(Busy, match="fell 4 events behind"):
            async for _ in stalled:
                pass


async def test_async_handlers_still_running_are_cancelled_at_close() -> None:
    dialer = Dialer(FakeServer())
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def slow(_: Any) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    client = RealtimeClient(dialer)
    await client.connect()
    client.on("input_audio_buffer.cleared", slow)
    await dialer.push(ev.InputAudioBufferClearedEvent(event_id="e"))
    await started.wait()
    await client.close()
    assert cancelled.is_set()


async def test_a_new_session_refusing_the_config_ends_the_client_without_retrying() -> None:
    server = FakeServer()
    dialer = Dialer(server)
    sleeps = Sleeps()
    client = RealtimeClient(dialer, session=SessionConfig(instructions="hello"), sleep=sleeps,
                            reconnect=ReconnectPolicy(max_attempts=4))
    async with client:
        stream = client.events()
        server.reject_param = "instructions"  # e.g. a deployment changed under the client
        await dialer.drop(1006)
        with pytest.raises(ServerError, match="rejected the session config") as info:
            async for _ in stream:
                pass
        assert info.value.param == "instructions"
        assert dialer.connects == 2 and len(sleeps.delays) == 1  # one reconnect, no retries of a refused config


async def test_nothing_is_sent_to_a_session_that_is_reconnecting() -> None:
    # Between the drop and the new session's session.updated the client refuses to send: the event would go to
    # no socket, or to a session that does not have the config yet.
    dialer = Dialer(FakeServer())
    refused: list[str] = []
    client: RealtimeClient

    async def sleep(delay: float) -> None:
        assert client.state.value == "reconnecting"
        try:
            await client.commit_audio()
        except ConnectionClosed as exc:
            refused.append(str(exc))

    client = RealtimeClient(dialer, session=SessionConfig(instructions="hi"), sleep=sleep)
    async with client:
        stream = client.events()
        await dialer.drop(1006)
        while not isinstance(await anext(stream), Reconnected):
            pass
        assert client.state.value == "open"
        await client.commit_audio()  # open again: it goes out (no ConnectionClosed)
    assert refused == ["not connected: can't handle send in state reconnecting"]
