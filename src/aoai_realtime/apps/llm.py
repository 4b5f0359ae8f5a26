"""Which language model writes the apps' post-call results (summaries, action items, the knowledge graph).

:func:`post_call_llm` reads the environment: with ``AZURE_OPENAI_ENDPOINT`` and a chat deployment
(``AZURE_OPENAI_CHAT_DEPLOYMENT``, or ``AZURE_OPENAI_DEPLOYMENT`` as the ``worker`` command names it) it returns an
:class:`~aoai_realtime.llm.AzureOpenAIChat` authenticated by ``AZURE_OPENAI_API_KEY``, else by Entra ID
(azure-identity's ``DefaultAzureCredential``); otherwise the offline :class:`~aoai_realtime.llm.LocalLLM` (no model:
extractive summaries and rule-based action items). The second value is one line saying which, never a secret.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import ConfigError
from ..llm import AzureOpenAIChat, LocalLLM
from ..llm.types import LLMProvider

__all__ = ["post_call_llm"]


def post_call_llm(environ: Mapping[str, str]) -> tuple[LLMProvider, str]:
    """``(provider, description)`` for the apps' ``llm=``. Close an :class:`AzureOpenAIChat` (``await
    llm.close()``) after the apps; the apps do not close what they are given."""
    endpoint = environ.get("AZURE_OPENAI_ENDPOINT", "").strip()
    deployment = (environ.get("AZURE_OPENAI_CHAT_DEPLOYMENT", "") or environ.get("AZURE_OPENAI_DEPLOYMENT", "")).strip()
    if not endpoint or not deployment:
        why = "set AZURE_OPENAI_CHAT_DEPLOYMENT to use an Azure chat model" if endpoint else "no Azure endpoint"
        return LocalLLM(), f"post-call: offline LocalLLM (extractive summary, rule-based action items; {why})"
    key = environ.get("AZURE_OPENAI_API_KEY", "").strip()
    if key:
        return (AzureOpenAIChat(endpoint=endpoint, deployment=deployment, api_key=key),
                f"post-call: Azure OpenAI chat deployment {deployment} (API key)")
    try:
        from azure.identity.aio import DefaultAzureCredential
    except ImportError:
        raise ConfigError("AZURE_OPENAI_CHAT_DEPLOYMENT is set without AZURE_OPENAI_API_KEY and azure-identity is not "
                          "installed: set the key, or pip install 'aoai-realtime[azure]' for Entra ID",
                          field="AZURE_OPENAI_API_KEY") from None
    from ..auth import EntraId

    entra = EntraId(DefaultAzureCredential())

    async def token() -> str:
        return (await entra.token()).value

    return (AzureOpenAIChat(endpoint=endpoint, deployment=deployment, token_provider=token),
            f"post-call: Azure OpenAI chat deployment {deployment} (Entra ID)")
