"""WebRTC transport (aiortc): events on a data channel, audio on media tracks (reference 3.1, 3.3, 4.8).

Connecting does what a browser does against ``/realtime/calls``: create the peer connection with an outgoing
audio track and a data channel, POST the SDP offer as ``application/sdp`` with ``Authorization: Bearer <ephemeral
token>``, expect ``201`` with the SDP answer and a ``Location`` header holding the call id, and wait for the data
channel to open (``open_timeout``, 10 s by default). Given an API key or Entra ID instead of an
:class:`~aoai_realtime.auth.EphemeralToken`, it first mints a token at ``/client_secrets`` itself (server-side use).

If any step fails, everything opened so far (the peer connection, its tracks, the HTTP session, the reader
tasks) is closed before the error is raised; the TypeScript SDK this project is modelled on leaked the
microphone and the peer connection on a failed connect.

Audio: :attr:`audio` sends pcm16 mono 24 kHz on the outgoing track, paced in real time (silence when there is
nothing to send; audio that is only late, mid-stream, is waited for, up to ``LATE_AUDIO_S``), and yields the
incoming track as pcm16 mono 24 kHz (aiortc decodes Opus to 48 kHz stereo; PyAV's resampler converts).
Over WebRTC there are no ``input_audio_buffer.append`` or audio delta events.

Events: up to ``queue_size`` received events wait for :meth:`WebRTCTransport.recv`. aiortc delivers them through a
callback that cannot make the service wait, so a reader that falls that far behind fails the call loudly
(:class:`~aoai_realtime.errors.ConnectionClosed` with code 1008, logged) instead of losing an event; the end of the
call is never lost, even behind a full queue (:mod:`._inbox`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import aiohttp
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, AudioResampler

from ..auth import Auth, EphemeralToken
from ..clock import Clock, SystemClock
from ..endpoints import Endpoint
from ..errors import AuthenticationError, ConnectError, ConnectionClosed, get_logger, redact
from ..protocol.session import SessionConfig
from ._ice import host_addresses
from ._inbox import Inbox
from .base import AudioChannel, Dialect

__all__ = ["WebRTCTransport"]

log = get_logger(__name__)

RATE = 24000
FRAME_SAMPLES = 480  # 20 ms at 24 kHz
FRAME_BYTES = FRAME_SAMPLES * 2
LATE_AUDIO_S = 0.5
"""How long the outgoing track waits for the rest of a stream's audio before it takes the stream as ended and
fills with silence. A feeder on its own real-time schedule (a microphone, :func:`~aoai_realtime.audio.pcm_source`)
runs a little behind the track's schedule whenever the event loop is busy; silence sent in its place would be
heard inside the user's words (the local engine transcribed "stop please" as "sttop please" under load)."""


class _OutgoingAudio(MediaStreamTrack):
    """The microphone side: pcm16 24 kHz from :meth:`WebRTCAudio.send_audio`, 20 ms frames in real time."""

    kind = "audio"

    def __init__(self, max_buffer_ms: int, clock: Clock) -> None:
        super().__init__()
        self._clock = clock
        self._buffer = bytearray()
        self._max_bytes = max_buffer_ms * RATE // 1000 * 2
        self._start: float | None = None
        self._pts = 0
        self._streaming = False  # the last frame sent carried fed audio
        self._fed = asyncio.Event()
        self.dropped_bytes = 0

    def feed(self, pcm: bytes) -> None:
        self._buffer += pcm
        self._fed.set()
        excess = len(self._buffer) - self._max_bytes
        if excess > 0:
            # A caller producing audio faster than real time for too long: keep the newest audio.
            excess += excess % 2
            del self._buffer[:excess]
            self.dropped_bytes += excess

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = self._clock.now()
        else:
            self._pts += FRAME_SAMPLES
            wait = self._start + self._pts / RATE - self._clock.now()
            if wait > 0:
                await self._clock.sleep(wait)
        if len(self._buffer) < FRAME_BYTES and (self._buffer or self._streaming):
            await self._await_audio()
        chunk = bytes(self._buffer[:FRAME_BYTES])
        del self._buffer[:FRAME_BYTES]
        self._streaming = len(chunk) == FRAME_BYTES  # a short frame, even after waiting: the stream has ended
        chunk = chunk.ljust(FRAME_BYTES, b"\0")
        frame = AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
        frame.planes[0].update(chunk)
        frame.pts = self._pts
        frame.sample_rate = RATE
        frame.time_base = fractions.Fraction(1, RATE)
        return frame


    async def _await_audio(self) -> None:
        """Mid-stream, the next frame is not all here yet: wait for it (up to ``LATE_AUDIO_S``) rather than send
        silence inside the stream. The schedule is absolute, so the frames after it catch up at once."""
        deadline = self._clock.now() + LATE_AUDIO_S
        while len(self._buffer) < FRAME_BYTES and (left := deadline - self._clock.now()) > 0:
            self._fed.clear()
            fed = asyncio.ensure_future(self._fed.wait())
            timer = asyncio.ensure_future(self._clock.sleep(left))
            try:
                await asyncio.wait({fed, timer}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                fed.cancel()
                timer.cancel()


class WebRTCAudio:
    """The media side of a :class:`WebRTCTransport` (an :class:`AudioChannel`)."""

    def __init__(self, outgoing: _OutgoingAudio, queue_frames: int) -> None:
        self._outgoing = outgoing
        self._incoming: asyncio.Queue[bytes | None] = asyncio.Queue(queue_frames)
        self.dropped_frames = 0

    async def send_audio(self, pcm: bytes) -> None:
        if len(pcm) % 2:
            raise ValueError("pcm16 audio must have an even number of bytes")
        self._outgoing.feed(pcm)

    def _deliver(self, pcm: bytes | None) -> None:
        while True:
            try:
                self._incoming.put_nowait(pcm)
                return
            except asyncio.QueueFull:
                # Nobody is keeping up with the far side's audio: drop the oldest, count it.
                self._incoming.get_nowait()
                self.dropped_frames += 1

    async def received_audio(self) -> AsyncIterator[bytes]:
        while True:
            pcm = await self._incoming.get()
            if pcm is None:
                self._incoming.put_nowait(None)  # let other readers see the end too
                return
            yield pcm


class WebRTCTransport:
    """A Realtime call over WebRTC. ``connect()`` again after ``close()`` places a new call. ``clock`` paces the
    outgoing audio track (default: the event loop's clock)."""

    dialect: Dialect = "ga"

    def __init__(
        self,
        endpoint: Endpoint,
        auth: Auth,
        *,
        session: SessionConfig | Mapping[str, Any] | None = None,
        data_channel_label: str = "oai-events",
        open_timeout: float = 10.0,
        http_timeout: float = 15.0,
        ice_addresses: Sequence[str] | None = None,
        queue_size: int = 1024,
        max_outgoing_buffer_ms: int = 10_000,
        ssl_context: ssl.SSLContext | None = None,
        clock: Clock | None = None,
    ) -> None:
        if endpoint.dialect != "ga":
            raise ConnectError("WebRTC needs a GA endpoint (/realtime/calls); the preview API has none here")
        self.endpoint = endpoint
        self._auth = auth
        self._session = session
        self._label = data_channel_label
        self._open_timeout = open_timeout
        self._http_timeout = http_timeout
        self._ice_addresses = tuple(ice_addresses) if ice_addresses is not None else None
        self._queue_size = queue_size
        self._max_out_ms = max_outgoing_buffer_ms
        self._ssl = ssl_context
        self._clock = clock or SystemClock()  # paces the outgoing audio track
        self._pc: RTCPeerConnection | None = None
        self._channel: Any = None
        self._inbox = Inbox(queue_size)
        self._tasks: set[asyncio.Task[None]] = set()
        self._audio: WebRTCAudio | None = None
        self.call_id: str | None = None

    @property
    def audio(self) -> AudioChannel | None:
        return self._audio

    # -- connecting -----------------------------------------------------------------------------------------

    async def connect(self) -> None:
        await self.close()
        self._inbox = Inbox(self._queue_size)
        try:
            await self._connect()
        except BaseException:
            await self.close()
            raise

    async def _connect(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self._http_timeout)
        connector = aiohttp.TCPConnector(ssl=self._ssl) if self._ssl is not None else None
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
            token = await self._token(http)
            pc = self._pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            outgoing = _OutgoingAudio(self._max_out_ms, self._clock)
            self._audio = WebRTCAudio(outgoing, queue_frames=max(16, self._queue_size))
            pc.addTrack(outgoing)
            channel = self._channel = pc.createDataChannel(self._label)
            opened = asyncio.get_running_loop().create_future()
            self._wire(pc, channel, opened)
            offer = await pc.createOffer()
            with host_addresses(self._ice_addresses) if self._ice_addresses else contextlib.nullcontext():
                await pc.setLocalDescription(offer)  # gathers ICE candidates
            answer_sdp, location = await self._post_offer(http, token, pc.localDescription.sdp)
        self.call_id = location.rstrip("/").rsplit("/", 1)[-1] if location else None
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))
        try:
            await asyncio.wait_for(opened, self._open_timeout)
        except TimeoutError:
            raise ConnectError(
                f"the data channel did not open within {self._open_timeout:g} s (ICE state "
                f"{pc.iceConnectionState}); check that UDP between this host and the service is allowed"
            ) from None

    async def _token(self, http: aiohttp.ClientSession) -> str:
        if isinstance(self._auth, EphemeralToken):
            return await self._auth.token()
        # A long-lived credential: mint an ephemeral token for this call, as a browser's server would.
        session = self._session
        body: dict[str, Any] = {}
        if session is not None:
            body["session"] = session.to_ga() if isinstance(session, SessionConfig) else dict(session)
        headers = await self._auth.headers()
        async with http.post(self.endpoint.client_secrets_url, json=body, headers=headers) as resp:
            text = await resp.text()
            if resp.status in (401, 403):
                raise AuthenticationError(f"client_secrets refused the credentials (HTTP {resp.status})",
                                          status=resp.status)
            if resp.status != 200:
                raise ConnectError(f"client_secrets answered HTTP {resp.status}: {redact(text[:200])}")
            data = await resp.json(content_type=None)
        value = data.get("value") if isinstance(data, dict) else None
        if not isinstance(value, str):
            raise ConnectError("client_secrets answered without a token 'value'")
        return value

    async def _post_offer(self, http: aiohttp.ClientSession, token: str, sdp: str) -> tuple[str, str]:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/sdp"}
        try:
            async with http.post(self.endpoint.calls_url, data=sdp.encode(), headers=headers) as resp:
                text = await resp.text()
                if resp.status in (401, 403):
                    raise AuthenticationError(f"/realtime/calls refused the token (HTTP {resp.status})",
                                              status=resp.status)
                if resp.status not in (200, 201):
                    raise ConnectError(f"/realtime/calls answered HTTP {resp.status}: {redact(text[:200])}")
                return text, resp.headers.get("Location", "")
        except aiohttp.ClientError as exc:
            raise ConnectError(f"could not reach {self.endpoint.calls_url}: {type(exc).__name__}") from None

    def _wire(self, pc: RTCPeerConnection, channel: Any, opened: asyncio.Future[None]) -> None:
        @channel.on("open")  # type: ignore[untyped-decorator]
        def _on_open() -> None:
            if not opened.done():
                opened.set_result(None)

        inbox = self._inbox  # this call's: a later connect() makes a new one

        @channel.on("message")  # type: ignore[untyped-decorator]
        def _on_message(message: str | bytes) -> None:
            data = message.encode() if isinstance(message, str) else message
            if inbox.put(data):
                return
            if inbox.ended is None:
                # Too far behind to catch up, and the service cannot be made to wait: fail, don't skip an event.
                log.error("WebRTC: %d received events are waiting unread; closing the call", inbox.maxsize)
                inbox.end(ConnectionClosed(
                    f"{inbox.maxsize} received events were waiting unread, so the call was closed rather than "
                    "lose one; read events faster (recv) or pass a larger queue_size", code=1008,
                    reason="event queue full"))
                channel.close()
            elif inbox.refused == 1:
                log.warning("WebRTC: events arrived after the call ended (%s); not delivered", inbox.ended)

        @channel.on("close")  # type: ignore[untyped-decorator]
        def _on_close() -> None:
            inbox.end(ConnectionClosed("data channel closed", code=1006))

        @pc.on("connectionstatechange")
        async def _on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                inbox.end(ConnectionClosed(f"peer connection {pc.connectionState}", code=1006))

        def _audio_done(task: asyncio.Task[None]) -> None:
            self._tasks.discard(task)
            if task.cancelled() or task.exception() is None:
                return
            exc = task.exception()
            log.error("WebRTC: reading the incoming audio failed; closing the call", exc_info=exc)
            inbox.end(ConnectionClosed(f"the incoming audio failed ({type(exc).__name__}: {exc})", code=1011))
            channel.close()

        @pc.on("track")
        def _on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                task = asyncio.create_task(self._read_audio(track), name="webrtc-audio-in")
                self._tasks.add(task)
                task.add_done_callback(_audio_done)

    async def _read_audio(self, track: MediaStreamTrack) -> None:
        resampler = AudioResampler(format="s16", layout="mono", rate=RATE)
        audio = self._audio
        try:
            while True:
                frame = await track.recv()
                if not isinstance(frame, AudioFrame):
                    continue
                for out in resampler.resample(frame):
                    if audio is not None:
                        audio._deliver(bytes(out.planes[0])[: out.samples * 2])
        except MediaStreamError:
            pass
        finally:
            if audio is not None:
                audio._deliver(None)

    def _end(self, closed: ConnectionClosed) -> None:
        self._inbox.end(closed)

    # -- messages -------------------------------------------------------------------------------------------

    async def send(self, message: bytes) -> None:
        channel = self._channel
        if channel is None or channel.readyState != "open":
            raise ConnectionClosed("the data channel is not open", code=1006)
        channel.send(message.decode())

    async def recv(self) -> bytes:
        """The next event, in order; after the last one, raises the :class:`ConnectionClosed` that ended the call."""
        return await self._inbox.get()

    async def close(self) -> None:
        pc, self._pc = self._pc, None
        self._channel = None
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if pc is not None:
            for sender in pc.getSenders():
                if sender.track is not None:
                    sender.track.stop()
            with contextlib.suppress(Exception):
                await pc.close()
            self._end(ConnectionClosed("closed", code=1000))
        if self._audio is not None:
            self._audio._deliver(None)
