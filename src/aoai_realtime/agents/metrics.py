"""Per-turn figures: end of user speech -> first audio heard, tool latency, tokens and cost.

Latency is measured at the client: from the moment the last sample of the user's speech was sent (or, when
the client does not send the audio itself, the moment ``input_audio_buffer.speech_stopped`` arrived) to the
moment the first sample of the answer finished playing on the local player (or ``output_audio_buffer.started``
over WebRTC). Tokens and cost come from ``response.done.response.usage`` (reference 4.2) with a configurable
:class:`PriceTable`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..pricing import PriceTable, Usage

__all__ = ["PriceTable", "TurnMetrics", "Usage"]  # prices and usage live in ..pricing


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
