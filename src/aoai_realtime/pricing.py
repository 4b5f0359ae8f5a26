"""What a response cost: token usage from ``response.done`` (reference 4.2) and a price table.

One place for the arithmetic, used by the agents' per-turn metrics and by the browser server's spend ceiling.
Cached input tokens are a subset of the input tokens and are billed apart. A malformed count counts as 0:
usage arrives from the wire, and a bad number must not end a call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

__all__ = ["PriceTable", "Usage"]


def _tokens(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


@dataclass(frozen=True, slots=True)
class PriceTable:
    """US dollars per one million tokens. Defaults: gpt-realtime list prices (2025-08); set your own."""

    text_input: float = 4.0
    text_cached_input: float = 0.4
    audio_input: float = 32.0
    audio_cached_input: float = 0.4
    text_output: float = 16.0
    audio_output: float = 64.0

    def __post_init__(self) -> None:
        for name in ("text_input", "text_cached_input", "audio_input", "audio_cached_input", "text_output",
                     "audio_output"):
            if getattr(self, name) < 0:
                raise ConfigError(f"price {name} must be >= 0 dollars per 1M tokens", field=name)


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one response, split the way they are billed."""

    text_input: int = 0
    text_cached_input: int = 0
    audio_input: int = 0
    audio_cached_input: int = 0
    text_output: int = 0
    audio_output: int = 0

    @classmethod
    def from_response_usage(cls, usage: dict[str, Any] | None) -> Usage:
        """Parse ``response.usage``. Cached tokens are a subset of input tokens and are billed apart."""
        if not usage:
            return cls()
        inp = usage.get("input_token_details") or {}
        out = usage.get("output_token_details") or {}
        cached = inp.get("cached_tokens_details") or {}
        cached_text = _tokens(cached.get("text_tokens"))
        cached_audio = _tokens(cached.get("audio_tokens"))
        if not cached and inp.get("cached_tokens"):
            cached_text = _tokens(inp["cached_tokens"])  # no split given: count it as text
        return cls(
            text_input=max(0, _tokens(inp.get("text_tokens")) - cached_text),
            text_cached_input=cached_text,
            audio_input=max(0, _tokens(inp.get("audio_tokens")) - cached_audio),
            audio_cached_input=cached_audio,
            text_output=_tokens(out.get("text_tokens")),
            audio_output=_tokens(out.get("audio_tokens")),
        )

    def __add__(self, other: Usage) -> Usage:
        return Usage(*(getattr(self, f) + getattr(other, f) for f in self.__slots__))

    @property
    def total(self) -> int:
        return sum(getattr(self, f) for f in self.__slots__)

    def cost(self, prices: PriceTable) -> float:
        """Dollars for these tokens at ``prices``."""
        return (
            self.text_input * prices.text_input
            + self.text_cached_input * prices.text_cached_input
            + self.audio_input * prices.audio_input
            + self.audio_cached_input * prices.audio_cached_input
            + self.text_output * prices.text_output
            + self.audio_output * prices.audio_output
        ) / 1_000_000
