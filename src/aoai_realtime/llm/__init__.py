"""Language-model providers for post-call work: :class:`LocalLLM` (offline, the default) and
:class:`AzureOpenAIChat` (Azure OpenAI chat completions with a JSON-schema response format)."""

from .azure import AzureOpenAIChat
from .local import LocalLLM
from .types import (
    ACTION_ITEMS_SCHEMA,
    ActionItem,
    ActionItems,
    LLMError,
    LLMOutputError,
    LLMProvider,
    Turn,
    parse_action_items,
)

__all__ = [
    "ACTION_ITEMS_SCHEMA",
    "ActionItem",
    "ActionItems",
    "AzureOpenAIChat",
    "LLMError",
    "LLMOutputError",
    "LLMProvider",
    "LocalLLM",
    "Turn",
    "parse_action_items",
]
