"""Per-turn figures: end of user speech -> first audio heard, tool latency, tokens and cost.

Latency is measured at the client: from the moment the last sample of the user's speech was sent (or, when
the client does not send the audio itself, the moment ``input_audio_buffer.speech_stopped`` arrived) to the
moment the first sample of the answer finished playing on the local player (or ``output_audio_buffer.started``
over WebRTC). Tokens and cost come from ``response.done.response.usage`` (reference 4.2) with a configurable
:class:`PriceTable`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

__all__ = ["PriceTable", "TurnMetrics", "Usage"]


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
        cached_text = int(cached.get("text_tokens") or 0)
        cached_audio = int(cached.get("audio_tokens") or 0)
        if not cached and inp.get("cached_tokens"):
            cached_text = int(inp["cached_tokens"])  # no split given: count it as text
        return cls(
            text_input=max(0, int(inp.get("text_tokens") or 0) - cached_text),
            text_cached_input=cached_text,
            audio_input=max(0, int(inp.get("audio_tokens") or 0) - cached_audio),
            audio_cached_input=cached_audio,
            text_output=int(out.get("text_tokens") or 0),
            audio_output=int(out.get("audio_tokens") or 0),
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


@dataclass(slots=True)
class TurnMetrics:
    """One user turn and the assistant's answer to it. Times are seconds on the assistant's clock."""

    turn: int
    user_item_id: str | None = None
    speech_end_at: float | None = None
    first_audio_at: float | None = None
    tool_latency_ms: dict[str, float] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    responses: int = 0
    interrupted: bool = False

    @property
    def response_latency_ms(self) -> float | None:
        """End of user speech -> first audio heard, in milliseconds (None if either is unknown)."""
        if self.speech_end_at is None or self.first_audio_at is None:
            return None
        return (self.first_audio_at - self.speech_end_at) * 1000.0
