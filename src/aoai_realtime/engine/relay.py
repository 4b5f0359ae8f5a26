"""Relay mode: the engine forwards each session to a real deployment, message for message.

With ``--brain relay:URL`` every WebSocket session is proxied to ``URL`` (Azure GA
``wss://<res>.openai.azure.com/openai/v1/realtime?model=<deployment>``, OpenAI, or another engine), with the
upstream key from ``AOAI_RELAY_API_KEY`` sent as both ``Authorization: Bearer`` and ``api-key``. Combined with
``--record DIR`` the engine becomes a recording proxy: real sessions saved to JSONL for :mod:`.replay`.
Clients authenticate to the engine with the engine's own key; the upstream key never leaves the engine.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import websockets
from websockets.exceptions import ConnectionClosed as WsClosed

from ..errors import ConnectionClosed, get_logger
from .engine import Channel
from .record import Recorder

__all__ = ["RelayTarget", "relay_channel"]

log = get_logger(__name__)


@dataclass(frozen=True)
class RelayTarget:
    """Where relayed sessions go. ``api_key`` is never logged."""

    url: str
    api_key: str

    def __repr__(self) -> str:
        return f"RelayTarget(url={self.url!r}, api_key='***')"

    def url_for(self, model: str | None) -> str:
        """The upstream URL, with ``model`` added when the target names none."""
        parts = urlsplit(self.url)
        query = dict(parse_qsl(parts.query))
        if model and not ({"model", "deployment", "call_id"} & query.keys()):
            query["model"] = model
        return urlunsplit(parts._replace(query=urlencode(query)))


async def relay_channel(
    target: RelayTarget, channel: Channel, *, model: str | None, recorder: Recorder | None = None
) -> None:
    """Proxy ``channel`` to the upstream until either side closes; the close code is passed on."""
    try:
        await _relay(target, channel, model=model, recorder=recorder)
    finally:
        if recorder is not None:
            recorder.close()


async def _relay(target: RelayTarget, channel: Channel, *, model: str | None, recorder: Recorder | None) -> None:
    headers = {"Authorization": f"Bearer {target.api_key}", "api-key": target.api_key}
    try:
        upstream = await websockets.connect(target.url_for(model), additional_headers=headers, max_size=None)
    except (OSError, websockets.InvalidHandshake) as exc:
        log.warning("relay: cannot reach upstream %s: %s", urlsplit(target.url).netloc, type(exc).__name__)
        await channel.close(1011, "relay upstream unavailable")
        return

    async def down() -> None:  # upstream -> client
        try:
            async for message in upstream:
                data = message.encode() if isinstance(message, str) else message
                if recorder is not None:
                    recorder.server(data)
                await channel.send(data)
        except ConnectionClosed:
            return  # the client went away; up() sees it too
        except WsClosed:
            pass
        close = upstream.close_code or 1000
        await channel.close(close, upstream.close_reason or "")

    async def up() -> None:  # client -> upstream
        while True:
            try:
                data = await channel.recv()
            except ConnectionClosed:
                break
            if recorder is not None:
                recorder.client(data)
            try:
                await upstream.send(data.decode("utf-8"))
            except WsClosed:
                break
        await upstream.close()

    async with upstream:
        # Either direction ending ends the relay; an error in either is raised here, never left unretrieved.
        tasks = {asyncio.create_task(down()), asyncio.create_task(up())}
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                task.result()
