"""A minimal non-streaming brain over any object with llama-cpp-python's ``create_chat_completion``.

``--brain llm`` and ``--brain llama:PATH`` use :class:`~aoai_realtime.engine.brain.llm.LLMBrain` (streamed
tokens, grammar-constrained tool calls, the packaged model); this adapter stays for callers that bring their
own chat-completion object (a remote client, a test double). It sends the session's instructions as the
system message, the conversation as chat messages and the function tools in OpenAI form, then streams the
whole answer word by word.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from .base import BrainOutput, BrainRequest, CallTool, Say
from .scripted import split_words

__all__ = ["LlamaBrain", "chat_messages"]


def chat_messages(request: BrainRequest) -> list[dict[str, Any]]:
    """The request as OpenAI-style chat messages (what ``Llama.create_chat_completion`` takes)."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": request.instructions}]
    for item in request.items:
        if item.kind == "message":
            role = item.role if item.role in ("user", "assistant", "system") else "user"
            messages.append({"role": role, "content": item.text})
        elif item.kind == "function_call":
            messages.append({"role": "assistant", "content": None, "tool_calls": [
                {"id": item.call_id, "type": "function",
                 "function": {"name": item.name, "arguments": item.arguments}}]})  # fmt: skip
        elif item.kind == "function_call_output":
            messages.append({"role": "tool", "tool_call_id": item.call_id, "content": item.output})
    return messages


def _tools(request: BrainRequest) -> list[dict[str, Any]]:
    return [
        {"type": "function", "function": {"name": t["name"], "description": t.get("description", ""),
                                          "parameters": t.get("parameters", {"type": "object", "properties": {}})}}
        for t in request.tools if t.get("type", "function") == "function"
    ]  # fmt: skip


class LlamaBrain:
    """A brain over a ``llama_cpp.Llama`` (or anything with its ``create_chat_completion``)."""

    needs_transcripts = True

    def __init__(self, llm: Any, *, max_tokens: int = 256, temperature: float = 0.6) -> None:
        self.llm = llm
        self.max_tokens = max_tokens
        self.temperature = temperature
        self._lock = asyncio.Lock()  # one llama context: one completion at a time

    @classmethod
    def from_path(cls, path: str, *, n_ctx: int = 4096) -> LlamaBrain:
        """Load a GGUF with the project's llama.cpp. Raises EngineError naming the fix when it cannot."""
        from pathlib import Path

        from .llm import load_llama

        return cls(load_llama(Path(path), n_ctx=n_ctx))

    def _complete(self, request: BrainRequest) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"messages": chat_messages(request), "max_tokens": self.max_tokens,
                                  "temperature": self.temperature}  # fmt: skip
        tools = _tools(request)
        if tools and request.tool_choice != "none":
            kwargs["tools"] = tools
            choice = request.tool_choice
            if isinstance(choice, dict):
                kwargs["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
            elif choice in ("auto", "required"):
                kwargs["tool_choice"] = choice
        result: dict[str, Any] = self.llm.create_chat_completion(**kwargs)
        return result

    async def respond(self, request: BrainRequest) -> AsyncIterator[BrainOutput]:
        async with self._lock:
            result = await asyncio.to_thread(self._complete, request)
        message = (result.get("choices") or [{}])[0].get("message") or {}
        text = message.get("content") or ""
        for chunk in split_words(text.strip()):
            yield Say(chunk)
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            arguments = function.get("arguments", "{}")
            yield CallTool(
                str(function.get("name", "")), arguments if isinstance(arguments, str) else json.dumps(arguments)
            )
