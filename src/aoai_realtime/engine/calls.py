"""WebRTC calls: ``POST /v1/realtime/calls`` (reference 3.1, 4.8) with aiortc.

The offer arrives as ``application/sdp`` (Bearer ``ek_`` secret or the key) or as ``multipart/form-data``
with ``sdp`` and ``session`` parts. The engine answers 201 with its SDP and ``Location:
/v1/realtime/calls/rtc_...``, then runs one :class:`CallHub` per call:

- events travel on the data channel the client opened (any label), one JSON message each, handled in order and
  one at a time as on a WebSocket; a client more than :data:`DATA_QUEUE` events ahead of the session has its call
  ended (logged) rather than an event skipped;
- the caller's audio (Opus, decoded by aiortc to 48 kHz stereo) is downmixed and resampled to 24 kHz mono and
  fed to the session's input buffer and VAD;
- assistant audio goes out on an audio track (:class:`OutputTrack`) paced in real time by the engine clock,
  never as ``response.output_audio.delta`` on the channel; ``output_audio_buffer.started/stopped/cleared`` are
  emitted and an interruption truncates the assistant item to what was actually played;
- sideband WebSockets (``?call_id=rtc_...``) join the same session: they receive every server event and may
  send client events. They need the API key: an ephemeral secret cannot join a call (404 ``call_id_not_found``,
  as the service answered); hangup takes the key, or the very secret that created the call;
- ``?webrtcfilter=on`` (Azure) lets only :data:`WEBRTC_FILTER` reach the data channel (the browser); the
  sideband still receives every event, and so does the recording;
- an offer with a data channel and no audio m-line (a text chat) is a text-only call: no media track, and
  the session starts with ``output_modalities: ["text"]``;
- an offer aiortc cannot parse, or a ``session`` part that is not a valid session object, is a 400 with the
  service's error JSON, never a 500.

Bound to a loopback address, the peer offers only 127.0.0.1 candidates (:mod:`aoai_realtime.transport._ice`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import secrets
from collections import deque
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import ConnectionClosed, ProtocolError, get_logger
from ..protocol.codec import check_depth
from ..protocol.connection import encode_server_event
from ..transport._ice import host_addresses, is_loopback
from ..transport._inbox import Inbox
from .clock import Clock
from .config import apply_update
from .engine import Channel, Engine
from .errors import RequestRejected
from .record import Recorder

if TYPE_CHECKING:
    from .session import EngineSession

__all__ = ["DATA_QUEUE", "WEBRTC_FILTER", "CallHub", "OutputTrack", "create_call", "hangup_call"]

log = get_logger(__name__)

_FRAME_MS = 20
_FRAME_BYTES = 24 * _FRAME_MS * 2  # pcm16 mono 24 kHz
_MAX_QUEUED_MS = 10 * 60 * 1000
DATA_QUEUE = 1024  # client events received on the data channel and not yet handled

# What Azure's ``webrtcfilter=on`` lets through to the browser (reference 3.2): no session, response or error
# events; those stay with the sideband, which holds the key.
WEBRTC_FILTER = frozenset({
    "input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
    "output_audio_buffer.started", "output_audio_buffer.stopped",
    "conversation.item.input_audio_transcription.completed", "conversation.item.added", "conversation.item.created",
    "response.output_text.delta", "response.output_text.done",
    "response.output_audio_transcript.delta", "response.output_audio_transcript.done",
})  # fmt: skip


class OutputTrack:
    """The assistant's voice as an aiortc audio track, and the session's :class:`~.session.AudioOut`.

    aiortc pulls a frame every 20 ms through :meth:`recv`; the track paces those pulls on the engine clock
    (real time) and sends silence when nothing is queued. It knows how much of each item has been played.
    """

    kind = "audio"

    def __init__(self, clock: Clock, *, recorder: Recorder | None = None) -> None:
        from aiortc.mediastreams import MediaStreamTrack

        # aiortc needs a real MediaStreamTrack; compose one instead of subclassing it.
        self.track = _make_track(MediaStreamTrack, self)
        self.clock = clock
        self.recorder = recorder
        self._queue: deque[tuple[str, str, bytes]] = deque()
        self._queued_bytes = 0
        self._space = asyncio.Event()
        self._space.set()
        self._drained = asyncio.Event()
        self._drained.set()
        self._start: float | None = None
        self._frames = 0
        self._played: dict[str, int] = {}  # item_id -> bytes played
        self._current: tuple[str, str] | None = None

    # -- AudioOut ------------------------------------------------------------------------------------------

    async def write(self, response_id: str, item_id: str, pcm: bytes) -> None:
        while self._queued_bytes > _MAX_QUEUED_MS * 48:
            self._space.clear()
            await self._space.wait()
        self._queue.append((response_id, item_id, pcm))
        self._queued_bytes += len(pcm)
        self._drained.clear()

    def clear(self) -> tuple[str, str, int] | None:
        if self._current is None and not self._queue:
            return None
        response_id, item_id = self._current or self._queue[0][:2]
        self._queue.clear()
        self._queued_bytes = 0
        self._current = None
        self._space.set()
        self._drained.set()
        return response_id, item_id, self._played.get(item_id, 0) // 48

    async def wait_drained(self) -> None:
        await self._drained.wait()

    # -- media ---------------------------------------------------------------------------------------------

    def next_frame_pcm(self) -> bytes:
        """The next 20 ms of audio (silence when idle), counting what each item has had played."""
        frame = bytearray()
        while len(frame) < _FRAME_BYTES and self._queue:
            response_id, item_id, pcm = self._queue[0]
            self._current = (response_id, item_id)
            take = pcm[: _FRAME_BYTES - len(frame)]
            frame += take
            self._queued_bytes -= len(take)
            self._played[item_id] = self._played.get(item_id, 0) + len(take)
            if len(take) < len(pcm):
                self._queue[0] = (response_id, item_id, pcm[len(take) :])
            else:
                self._queue.popleft()
        if not self._queue:
            self._current = None
            self._drained.set()
        self._space.set()
        return bytes(frame) + b"\x00" * (_FRAME_BYTES - len(frame))

    async def recv_frame(self) -> Any:
        from av import AudioFrame

        if self._start is None:
            self._start = self.clock.now()
        due = self._start + self._frames * _FRAME_MS / 1000
        wait = due - self.clock.now()
        if wait > 0:
            await self.clock.sleep(wait)
        pcm = self.next_frame_pcm()
        if self.recorder is not None and any(pcm):
            self.recorder.audio_out(pcm)
        frame = AudioFrame(format="s16", layout="mono", samples=_FRAME_BYTES // 2)
        frame.planes[0].update(pcm)
        frame.sample_rate = 24000
        frame.pts = self._frames * (_FRAME_BYTES // 2)
        frame.time_base = fractions.Fraction(1, 24000)
        self._frames += 1
        return frame


def _make_track(base: type, owner: OutputTrack) -> Any:
    class _Track(base):  # type: ignore[misc]
        kind = "audio"

        async def recv(self) -> Any:
            return await owner.recv_frame()

    return _Track()


class _DataChannel:
    """A data channel as an engine Channel (messages before ``open`` are queued by aiortc itself).

    aiortc hands over each message in a callback that cannot make the client wait: :meth:`deliver` queues it, and
    when :data:`DATA_QUEUE` messages are already waiting it fails the channel (logged, closed) instead of dropping
    one. :meth:`recv` returns them in order, then raises :class:`ConnectionClosed`.
    """

    def __init__(self, channel: Any, *, maxsize: int = DATA_QUEUE) -> None:
        self.channel = channel
        self.inbox = Inbox(maxsize)

    def deliver(self, message: bytes) -> None:
        if self.inbox.put(message) or self.inbox.ended is not None:
            return
        log.error("data channel: %d client events waiting unhandled; closing the call", self.inbox.maxsize)
        self.inbox.end(ConnectionClosed("too many client events waiting", code=1008, reason="event queue full"))
        self.channel.close()

    async def send(self, message: bytes) -> None:
        if self.channel.readyState in ("closing", "closed"):
            raise ConnectionClosed("data channel closed", code=1006)
        self.channel.send(message.decode("utf-8"))

    async def recv(self) -> bytes:
        return await self.inbox.get()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.channel.close()


class CallHub:
    """One WebRTC call: its peer connection, its session, the data channel and any sideband sockets."""

    def __init__(self, call_id: str, engine: Engine, pc: Any, session: EngineSession, track: OutputTrack,
                 recorder: Recorder | None) -> None:  # fmt: skip
        self.call_id = call_id
        self.engine = engine
        self.pc = pc
        self.session = session
        self.track = track
        self.recorder = recorder
        self.data: _DataChannel | None = None
        self.creator: str | None = None  # the ephemeral secret that created the call (may hang it up)
        self.data_filter: frozenset[str] | None = None  # event types the data channel gets (webrtcfilter=on)
        self._subscribers: set[Inbox] = set()
        self.sideband_queue = 1024  # server events a sideband socket may be behind
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ended = asyncio.Event()
        self._early: list[bytes] = []

    def spawn(self, coro: Any) -> None:
        """Run ``coro`` for this call. If it fails, the failure is logged and the call ends (never swallowed)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        log.error("call %s: %s failed; ending the call", self.call_id, task.get_coro().__qualname__,  # type: ignore[union-attr]
                  exc_info=exc)
        if not self._ended.is_set():
            self.spawn(self.end())

    async def run(self) -> None:
        """Serve the call until hangup, expiry or the peer goes away."""
        dialect = self.session.options.dialect
        async with self.session:
            try:
                while True:
                    event = await self.session.next_event()
                    if event is None:
                        break
                    data = encode_server_event(event, dialect)
                    if data is None:
                        continue
                    if self.recorder is not None:
                        self.recorder.server(data)
                    if self.data_filter is not None and event.type not in self.data_filter:
                        pass  # filtered out of the browser's channel; the sideband below still gets it
                    elif self.data is None:
                        self._early.append(data)  # session.created etc. wait for the client's channel
                    else:
                        with contextlib.suppress(ConnectionClosed):  # closing: on_close ends the call
                            await self.data.send(data)
                    self.fan_out(data)
            finally:
                await self.end()

    def fan_out(self, data: bytes) -> None:
        """Queue a server event for every sideband socket. One more than :attr:`sideband_queue` events behind is
        closed (1008, logged) rather than left open with events missing."""
        for inbox in list(self._subscribers):
            if not inbox.put(data):
                self._subscribers.discard(inbox)
                inbox.end(ConnectionClosed("sideband socket too slow", code=1008, reason="too slow"))
                log.warning("call %s: a sideband socket fell %d events behind; closed", self.call_id, inbox.maxsize)

    async def end(self) -> None:
        """Hang up: close the peer connection and the session; sideband sockets are closed."""
        if self._ended.is_set():
            return
        self._ended.set()
        self.engine.calls.pop(self.call_id, None)
        for inbox in list(self._subscribers):
            inbox.end(ConnectionClosed("call ended", code=1000, reason="call ended"))  # takes no slot: never lost
        await self.session.aclose()
        await self.pc.close()
        for task in list(self._tasks):
            task.cancel()
        if self.recorder is not None:
            self.recorder.close()

    def on_datachannel(self, channel: Any) -> None:
        if self.data is not None:
            return  # the first channel carries the events; others are ignored
        for data in self._early:
            channel.send(data.decode("utf-8"))
        self._early.clear()
        data_channel = self.data = _DataChannel(channel)
        hub = self

        @channel.on("message")  # type: ignore[untyped-decorator]
        def on_message(message: Any) -> None:
            data_channel.deliver(message.encode("utf-8") if isinstance(message, str) else bytes(message))

        @channel.on("close")  # type: ignore[untyped-decorator]
        def on_close() -> None:
            data_channel.inbox.end(ConnectionClosed("data channel closed", code=1000))
            hub.spawn(hub.end())

        self.spawn(self._serve_data(data_channel))

    async def _serve_data(self, data_channel: _DataChannel) -> None:
        """Client events from the data channel, in order and one at a time (as a WebSocket's are served)."""
        while True:
            try:
                data = await data_channel.recv()
            except ConnectionClosed:
                return
            if self.recorder is not None:
                self.recorder.client(data)
            await self.session.receive(data)

    def on_track(self, track: Any) -> None:
        if track.kind == "audio":
            self.spawn(self._read_audio(track))

    async def _read_audio(self, track: Any) -> None:
        from aiortc.mediastreams import MediaStreamError

        from .speech import StreamResampler

        resampler: StreamResampler | None = None
        while not self._ended.is_set():
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            channels = len(frame.layout.channels)
            if resampler is None:
                resampler = StreamResampler(frame.sample_rate, 24000, channels=min(channels, 2))
            pcm = resampler.push_pcm16(frame.to_ndarray().tobytes())
            if pcm:
                if self.recorder is not None:
                    self.recorder.audio_in(pcm)
                await self.session.push_audio(pcm)

    async def attach(self, channel: Channel) -> None:
        """Serve a sideband socket on this call until it or the call closes."""
        inbox = Inbox(self.sideband_queue)
        self._subscribers.add(inbox)

        async def pump() -> None:
            while True:
                try:
                    data = await inbox.get()
                except ConnectionClosed as end:  # the call ended, or this socket fell too far behind
                    with contextlib.suppress(ConnectionClosed):
                        await channel.close(end.code or 1000, end.reason)
                    return
                try:
                    await channel.send(data)
                except ConnectionClosed:
                    return  # the socket went away; the loop below sees it too

        writer = asyncio.get_running_loop().create_task(pump())
        try:
            while not self._ended.is_set():
                try:
                    message = await channel.recv()
                except ConnectionClosed:
                    break
                if self.recorder is not None:
                    self.recorder.client(message)
                await self.session.receive(message)
        finally:
            self._subscribers.discard(inbox)
            writer.cancel()
            await asyncio.wait({writer})


async def _offer_and_session(request: Request) -> tuple[str, dict[str, Any] | None]:
    """The offer SDP and the multipart ``session`` object; RequestRejected for a ``session`` part that is not one."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        form = await request.form()
        sdp = form.get("sdp")
        raw_session = form.get("session")
        sdp_text = sdp if isinstance(sdp, str) else (await sdp.read()).decode() if sdp is not None else ""
        session_text = (
            raw_session
            if isinstance(raw_session, str) or raw_session is None
            else (await raw_session.read()).decode()
        )
        return sdp_text, _session_part(session_text) if session_text else None
    return (await request.body()).decode("utf-8", "replace"), None


def _session_part(text: str) -> dict[str, Any]:
    try:
        check_depth(text)
        session = msgspec.json.decode(text)
    except (ProtocolError, msgspec.MsgspecError, RecursionError) as exc:
        raise RequestRejected("The 'session' part is not valid JSON.", code="invalid_json", param="session") from exc
    if not isinstance(session, dict):
        raise RequestRejected(
            f"Invalid type for 'session': expected an object, but got {_json_kind(session)} instead.",
            code="invalid_type",
            param="session",
        )
    return session


def _json_kind(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", int: "an integer", float: "a number"}
    return "null" if value is None else names.get(type(value), "a value")


def _offer_media(sdp: str) -> list[str]:
    """The kinds of the offer's m-lines (``audio``, ``application``...); RequestRejected when aiortc cannot read it."""
    from aiortc.sdp import SessionDescription

    try:
        parsed = SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc's parser raises whatever a malformed line trips (Assertion-, Index-, ValueError)
        raise RequestRejected(
            f"Invalid SDP offer: a line could not be parsed ({type(exc).__name__}). Send the offer the browser made "
            "(RTCPeerConnection.createOffer), unchanged.",
            code="invalid_offer",
            param="sdp",
        ) from exc
    kinds = [str(m.kind) for m in parsed.media]
    if "audio" not in kinds and "application" not in kinds:
        raise RequestRejected(
            "Invalid SDP offer: it has neither an audio m-line nor a data channel. Add a microphone track or "
            "createDataChannel() before createOffer().",
            code="invalid_offer",
            param="sdp",
        )
    return kinds


def _error(message: str, status: int, *, code: str | None = None, param: str | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


async def create_call(engine: Engine, request: Request, credential: str | None) -> Response:
    """``POST /v1/realtime/calls``: answer the offer, start the call, 201 with the answer SDP. ``credential`` is
    what the request carries (the app reads it)."""
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    kind = engine.check_key(credential)
    if kind is None:
        return _error("Incorrect API key provided or expired ephemeral key.", 401, code="invalid_api_key")
    try:
        sdp, session_part = await _offer_and_session(request)
    except UnicodeDecodeError:
        return _error("The 'session' part is not valid JSON.", 400, code="invalid_json", param="session")
    except RequestRejected as exc:
        return _error(exc.message, 400, code=exc.code, param=exc.param)
    if "v=0" not in sdp:
        return _error("Invalid SDP offer: expected an SDP body (application/sdp).", 400, code="invalid_offer",
                      param="sdp")  # fmt: skip
    initial = engine.secret_session(credential or "") if kind == "ephemeral" else None
    try:
        media = _offer_media(sdp)
        if session_part is not None:
            base = initial or {}
            initial = {**base, **session_part} if base else session_part
        if "audio" not in media:  # a data channel only: a text chat
            initial = {**(initial or {"type": "realtime"}), "output_modalities": ["text"]}
        if initial is not None:
            from .config import default_session

            apply_update(default_session(session_id="sess_check", expires_at=0), initial)
    except RequestRejected as exc:
        return _error(exc.message, 400, code=exc.code, param=exc.param)
    call_id = engine.ids.new("rtc")
    recorder = engine.recorder_for(call_id)
    track = OutputTrack(engine.config.clock, recorder=recorder)
    audio_out = track if "audio" in media else None
    session = engine.new_session(transport="webrtc", initial=initial, audio_out=audio_out)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    hub = CallHub(call_id, engine, pc, session, track, recorder)
    hub.creator = credential if kind == "ephemeral" else None
    if request.query_params.get("webrtcfilter", "").lower() in ("on", "true", "1"):
        hub.data_filter = WEBRTC_FILTER
    pc.on("datachannel", hub.on_datachannel)
    pc.on("track", hub.on_track)

    @pc.on("connectionstatechange")
    async def on_state() -> None:
        if pc.connectionState in ("failed", "closed"):
            await hub.end()

    server_host = (request.scope.get("server") or ("127.0.0.1", 0))[0]
    addresses = ["127.0.0.1"] if is_loopback(str(server_host)) else None
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        if audio_out is not None:
            pc.addTrack(track.track)
        ctx = host_addresses(addresses) if addresses else contextlib.nullcontext()
        with ctx:
            await pc.setLocalDescription(await pc.createAnswer())
    except Exception as exc:  # noqa: BLE001  # aiortc refuses an offer it cannot use with assorted errors
        await pc.close()
        return _error(f"Invalid SDP offer: {exc or type(exc).__name__}. Send the offer the browser made, unchanged.",
                      400, code="invalid_offer", param="sdp")  # fmt: skip
    engine.calls[call_id] = hub
    engine.spawn(hub.run())
    return Response(pc.localDescription.sdp, status_code=201, media_type="application/sdp",
                    headers={"Location": f"/v1/realtime/calls/{call_id}"})  # fmt: skip


async def hangup_call(engine: Engine, request: Request, credential: str | None) -> Response:
    """``POST /v1/realtime/calls/{call_id}/hangup``; ``credential`` as for :func:`create_call`."""
    kind = engine.check_key(credential)
    if kind is None:
        return _error("Incorrect API key provided.", 401, code="invalid_api_key")
    hub = engine.calls.get(request.path_params["call_id"])
    own = hub is not None and hub.creator is not None and secrets.compare_digest(hub.creator, credential or "")
    if hub is None or (kind == "ephemeral" and not own):  # another browser's call does not exist for this one
        return _error("No call found for the provided call_id.", 404, code="call_id_not_found", param="call_id")
    await hub.end()
    return Response(status_code=200)
