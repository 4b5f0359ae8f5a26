"""Values shared by every LLM provider: transcript turns, action items and their JSON schema, the provider
protocol, and the LLM error tree.

::

    RealtimeError
     └── LLMError                  a provider could not produce an answer (HTTP, timeout, refusal)
          └── LLMOutputError       the provider answered, but the answer does not validate (names the reason)

Action items always validate: :func:`parse_action_items` turns JSON text into :class:`ActionItems` or raises
:class:`LLMOutputError` saying which field was wrong, so a post-call step either stores valid items or fails
with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Final, Literal, Protocol

import msgspec

from ..errors import RealtimeError, redact

__all__ = [
    "ACTION_ITEMS_SCHEMA",
    "ActionItem",
    "ActionItems",
    "LLMError",
    "LLMOutputError",
    "LLMProvider",
    "Priority",
    "Turn",
    "parse_action_items",
]

MAX_DESCRIPTION_CHARS: Final = 500
MAX_ITEMS: Final = 50

Priority = Literal["low", "medium", "high"]


class LLMError(RealtimeError):
    """A provider could not produce an answer. ``retryable`` is False for errors a retry cannot fix
    (bad credentials, a 400 on our request)."""

    def __init__(self, message: str, *, retryable: bool = True, status: int | None = None) -> None:
        super().__init__(redact(message))
        self.retryable = retryable
        self.status = status


class LLMOutputError(LLMError):
    """The provider answered but its answer is not valid (not JSON, or not the schema). The message names the
    field; a retry may produce a valid answer (sampling), so it stays retryable."""


class Turn(msgspec.Struct, frozen=True):
    """One utterance of a call. ``role`` is who spoke (``"user"``, ``"assistant"``, or a name)."""

    role: str
    text: str


class ActionItem(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One thing someone agreed to do. ``owner`` and ``due`` are free text as said in the call, or None."""

    description: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_DESCRIPTION_CHARS)]
    owner: str | None
    due: str | None
    priority: Priority


class ActionItems(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The action items of one call (the root is an object because JSON-schema response formats require it)."""

    action_items: Annotated[list[ActionItem], msgspec.Meta(max_length=MAX_ITEMS)]


# Written by hand in the subset "strict" structured outputs accept: every property required, no extra keys,
# nullable as a type union. tests/llm check that it agrees with the msgspec types above.
ACTION_ITEMS_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["action_items"],
    "properties": {
        "action_items": {
            "type": "array",
            "maxItems": MAX_ITEMS,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["description", "owner", "due", "priority"],
                "properties": {
                    "description": {"type": "string", "minLength": 1, "maxLength": MAX_DESCRIPTION_CHARS},
                    "owner": {"type": ["string", "null"]},
                    "due": {"type": ["string", "null"]},
                    "priority": {"type": "string", "enum": ["low", "medium", "high"]},
                },
            },
        }
    },
}

_decoder = msgspec.json.Decoder(ActionItems)


def parse_action_items(text: str | bytes) -> ActionItems:
    """Decode and validate action items JSON. Raises :class:`LLMOutputError` naming the invalid field."""
    try:
        return _decoder.decode(text)
    except msgspec.ValidationError as exc:
        raise LLMOutputError(f"action items do not match their schema: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise LLMOutputError(f"action items are not valid JSON: {exc}") from exc


class LLMProvider(Protocol):
    """What the post-call pipeline asks of a language model. Implementations: :class:`LocalLLM` (offline,
    the default) and :class:`AzureOpenAIChat`. Both methods may raise :class:`LLMError`."""

    async def summarize(self, transcript: Sequence[Turn]) -> str:
        """Return a markdown summary of the call."""
        ...

    async def extract_action_items(self, transcript: Sequence[Turn]) -> ActionItems:
        """Return the call's action items, already validated."""
        ...
