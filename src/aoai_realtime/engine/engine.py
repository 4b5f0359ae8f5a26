"""The engine: sessions, credentials (API key, ephemeral ``ek_`` secrets), WebRTC calls, and the pump that
connects a session to any message channel.

One :class:`Engine` serves many sessions. Drivers call :meth:`Engine.new_session` and then
:func:`serve_channel` with anything that moves whole messages (``send``/``recv``/``close(code, reason)``:
the in-memory transport, a Starlette WebSocket adapter, a WebRTC data channel adapter).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ..errors import ConnectionClosed, get_logger
from ..protocol.connection import encode_server_event
from .brain.base import Brain
from .clock import Clock, SystemClock
from .ids import Ids
from .ports import SpeechPort
from .record import DEFAULT_MAX_RECORD_BYTES, Recorder
from .workers import WorkQueue, transcription_workers

if TYPE_CHECKING:
    from .calls import CallHub
    from .relay import RelayTarget
from .session import AudioOut, EngineSession, SessionOptions

__all__ = ["Channel", "Engine", "EngineConfig", "Secret", "serve_channel"]

log = get_logger(__name__)


class Channel(Protocol):
    """A message pipe seen from the engine's side."""

    async def send(self, message: bytes) -> None: ...

    async def recv(self) -> bytes: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


@dataclass(frozen=True, kw_only=True)
class EngineConfig:
    """Settings of one engine. ``brain`` makes the brain of each new session (or is a shared brain)."""

    api_key: str
    brain: Callable[[], Brain]
    speech: SpeechPort
    clock: Clock = field(default_factory=SystemClock)
    max_session_s: float = 3600.0
    model: str = "gpt-realtime"
    deterministic_ids: bool = False
    record_dir: Path | None = None
    record_max_bytes: int = DEFAULT_MAX_RECORD_BYTES  # per session; past it the recording stops (marked)
    # Browser origins allowed to call the HTTP routes (CORS). None: any origin while the engine listens on a
    # loopback address (a local dev tool), none otherwise. ("*",) allows any origin anywhere.
    cors_origins: tuple[str, ...] | None = None
    relay: RelayTarget | None = None  # proxy every WebSocket session to a real deployment (relay mode)
    replay: Path | None = None  # serve every WebSocket session from this recording (replay mode)


@dataclass
class Secret:
    """An ephemeral client secret: usable to create sessions until ``expires_at`` (unix seconds)."""

    value: str
    expires_at: float
    session: dict[str, Any]


class Engine:
    """Holds what outlives one connection: credentials, calls, the speech models, id generation."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.ids = Ids(deterministic=config.deterministic_ids)
        self._secrets: dict[str, Secret] = {}
        self.calls: dict[str, CallHub] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self.synthesis = WorkQueue()  # every session's TTS pieces, the most urgent first (see .pacing)
        self.transcription = WorkQueue(transcription_workers(config.speech.stt))  # every session's Whisper passes

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run a task that outlives the request that started it (a WebRTC call); ended by :meth:`aclose`."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def aclose(self) -> None:
        """End every call and background task (server shutdown)."""
        for hub in list(self.calls.values()):
            await hub.end()
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.wait(set(self._background))

    # ------------------------------------------------------------------------------------------- credentials

    def check_key(self, credential: str | None) -> Literal["key", "ephemeral"] | None:
        """What ``credential`` is: the API key, a live ephemeral secret, or nothing valid (None)."""
        if not credential:
            return None
        if secrets.compare_digest(credential.encode(), self.config.api_key.encode()):
            return "key"
        secret = self._secrets.get(credential)
        if secret is not None and secret.expires_at > self.config.clock.wall():
            return "ephemeral"
        return None

    def secret_session(self, value: str) -> dict[str, Any] | None:
        """The session config a live ephemeral secret was minted with."""
        secret = self._secrets.get(value)
        return secret.session if secret is not None and secret.expires_at > self.config.clock.wall() else None

    def mint_secret(self, session: dict[str, Any], seconds: int) -> Secret:
        """A new ``ek_`` secret valid for ``seconds``, bound to ``session`` (GA shape)."""
        now = self.config.clock.wall()
        for value in [v for v, s in self._secrets.items() if s.expires_at <= now]:
            del self._secrets[value]  # drop expired secrets so the table stays small
        secret = Secret(
            value="ek_" + secrets.token_urlsafe(24).replace("-", "x"), expires_at=now + seconds, session=session
        )
        self._secrets[secret.value] = secret
        return secret

    # ------------------------------------------------------------------------------------------- sessions

    def new_session(
        self,
        *,
        dialect: Literal["ga", "beta"] = "ga",
        transport: Literal["websocket", "webrtc"] = "websocket",
        model: str | None = None,
        initial: dict[str, Any] | None = None,
        audio_out: AudioOut | None = None,
        kind: Literal["realtime", "transcription"] = "realtime",
    ) -> EngineSession:
        """A new session (not started: enter it, or pass it to :func:`serve_channel`). ``kind="transcription"``
        (``?intent=transcription``) makes a transcription session: speech in, transcripts out, no responses."""
        options = SessionOptions(
            kind=kind,
            model=model or self.config.model,
            dialect=dialect,
            transport=transport,
            max_duration_s=self.config.max_session_s,
            initial=initial,
            created_at=int(self.config.clock.wall()),
        )
        return EngineSession(
            options,
            brain=self.config.brain(),
            speech=self.config.speech,
            clock=self.config.clock,
            ids=self.ids,
            audio_out=audio_out,
            synthesis=self.synthesis,
            transcription=self.transcription,
        )

    def recorder(self, session: EngineSession) -> Recorder | None:
        """A recorder for ``session`` when the engine records (``record_dir``)."""
        return self.recorder_for(session.id)

    def recorder_for(self, name: str) -> Recorder | None:
        """A recorder writing ``record_dir/<name>.jsonl``, or None when the engine does not record."""
        if self.config.record_dir is None:
            return None
        return Recorder.open(
            self.config.record_dir / f"{name}.jsonl", clock=self.config.clock, max_bytes=self.config.record_max_bytes
        )


async def serve_channel(
    session: EngineSession,
    channel: Channel,
    *,
    recorder: Recorder | None = None,
    on_start: Callable[[], None] | None = None,
) -> None:
    """Run ``session`` over ``channel`` until either side ends it.

    Sends ``session.created`` first, then every event the session makes; feeds every message received to
    the session. A session that ends itself (maximum duration) closes the channel with its close code
    (1001); a channel closed by the peer ends the session.
    """
    dialect = session.options.dialect

    async def pump_out() -> None:
        while True:
            event = await session.next_event()
            if event is None:
                break
            data = encode_server_event(event, dialect)
            if data is None:
                continue
            if recorder is not None:
                recorder.server(data)
            await channel.send(data)
        if session.close_code is not None:
            await channel.close(session.close_code, session.close_reason)

    async with session:
        if on_start is not None:
            on_start()
        writer = asyncio.get_running_loop().create_task(pump_out())
        try:
            while True:
                try:
                    message = await channel.recv()
                except ConnectionClosed:
                    break
                if recorder is not None:
                    recorder.client(message)
                await session.receive(message)
                if session.closed:
                    break
        finally:
            await session.aclose()
            if session.close_code is None:
                writer.cancel()  # the peer left: nothing more needs to reach it
            await asyncio.wait({writer})
            failure = None if writer.cancelled() else writer.exception()
            if failure is not None and not isinstance(failure, ConnectionClosed):
                log.error("engine send loop failed", exc_info=failure)
            if recorder is not None:
                recorder.close()
