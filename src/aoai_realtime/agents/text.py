"""``TextChat`` and ``ToolAgent``: the text modality, with history, streamed deltas and tools.

Both run on the same core as the voice assistant (one response writer, tools that always answer), with the
session's ``output_modalities`` set to ``["text"]``::

    async with TextChat(client, instructions="Be brief.") as chat:
        async for delta in chat.stream("Hello!"):
            print(delta, end="")
        print(chat.history)

    async with ToolAgent(client, tools=[get_weather]) as agent:
        result = await agent.run("Weather in Oslo?")
        print(result.text, [r.status for r in result.tool_results])
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from ..errors import ServerError
from ..protocol import events as ev
from ..streaming import Channel
from .tools import Tool, ToolResult, ToolSet
from .transcript import TranscriptEntry
from .voice import AssistantConfig, VoiceAssistant

if TYPE_CHECKING:
    from ..client import RealtimeClient

__all__ = ["AgentResult", "TextChat", "ToolAgent"]

# errors that do not end a turn: races the core recovers from
_BENIGN = {"conversation_already_has_active_response", "response_cancel_not_active"}


class TextChat:
    """A text conversation over a Realtime session. See the module docstring."""

    def __init__(
        self,
        client: RealtimeClient | None = None,
        *,
        connect: Callable[[], RealtimeClient] | None = None,
        instructions: str | None = None,
        tools: ToolSet | Iterable[Tool | Callable[..., Any]] | None = None,
        config: AssistantConfig | None = None,
        queue_size: int = 4096,
    ) -> None:
        self.assistant = VoiceAssistant(
            client, connect=connect, tools=tools, instructions=instructions, config=config
        )
        self._queue_size = queue_size

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        await self.assistant.start()
        update: dict[str, Any] = {"output_modalities": ["text"]}
        if self.assistant.client.transport.dialect == "ga":
            update["type"] = "realtime"
        else:
            update = {"modalities": ["text"]}
        await self.assistant.client.update_session(update)

    async def close(self) -> None:
        await self.assistant.close()

    @property
    def history(self) -> list[TranscriptEntry]:
        """The conversation so far, in item order."""
        return self.assistant.transcript

    async def stream(self, text: str) -> AsyncIterator[str]:
        """Send ``text`` and yield the answer's text as it streams, through any tool calls, until the model
        has finished answering. Raises :class:`~aoai_realtime.errors.ServerError` if the service fails it."""
        client = self.assistant.client
        channel: Channel[Any] = Channel(self._queue_size, overflow="error")
        client.on("*", channel.send_nowait)
        try:
            await self.assistant.send_text(text)
            async for event in channel:
                if isinstance(event, ev.ResponseTextDeltaEvent):
                    yield event.delta
                elif isinstance(event, ev.RealtimeErrorEvent) and event.error.code not in _BENIGN:
                    code = event.error.code if isinstance(event.error.code, str) else None
                    raise ServerError(event.error.message, type=event.error.type, code=code)
                elif isinstance(event, ev.ResponseDoneEvent):
                    if event.response.status == "failed":
                        details = event.response.status_details or {}
                        raise ServerError(f"the response failed: {details.get('error') or details}")
                    if not self.assistant.core.busy:
                        return
        finally:
            client.off("*", channel.send_nowait)
            channel.close()

    async def send(self, text: str) -> str:
        """Send ``text``; return the whole answer."""
        return "".join([delta async for delta in self.stream(text)])


@dataclass(frozen=True, slots=True)
class AgentResult:
    """The final answer and every tool call made on the way."""

    text: str
    tool_results: tuple[ToolResult, ...]


class ToolAgent:
    """A text agent with tools: :meth:`run` asks, lets the model call tools (each answered exactly once), and
    returns the final answer with the tool results."""

    def __init__(
        self,
        client: RealtimeClient | None = None,
        *,
        tools: ToolSet | Iterable[Tool | Callable[..., Any]],
        connect: Callable[[], RealtimeClient] | None = None,
        instructions: str | None = None,
        config: AssistantConfig | None = None,
    ) -> None:
        self.chat = TextChat(client, connect=connect, instructions=instructions, tools=tools, config=config)
        self._results: list[ToolResult] = []
        self.chat.assistant.on("tool_result", self._results.append)

    async def __aenter__(self) -> Self:
        await self.chat.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.chat.close()

    @property
    def tools(self) -> ToolSet:
        return self.chat.assistant.tools

    async def run(self, task: str) -> AgentResult:
        start = len(self._results)
        text = await self.chat.send(task)
        return AgentResult(text, tuple(self._results[start:]))
