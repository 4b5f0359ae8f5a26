"""Azure OpenAI embeddings over HTTP (aiohttp).

Two URL shapes are supported: the deployment route
``{endpoint}/openai/deployments/{deployment}/embeddings?api-version=...`` (default) and, with
``api_version=None``, the v1 route ``{endpoint}/openai/v1/embeddings`` with ``"model": deployment`` in the body.
Auth is an ``api-key`` header or a bearer token from an async ``token_provider`` (e.g. wrapping
azure-identity). Requests are split into batches of ``max_batch`` inputs; 429 and 5xx answers are retried with
backoff (honouring ``Retry-After``); everything else becomes an :class:`EmbeddingError` without secrets in it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import get_logger, redact
from .types import EmbeddingError

__all__ = ["AzureOpenAIEmbedder"]

_log = get_logger(__name__)


class AzureOpenAIEmbedder:
    """Embeddings from an Azure OpenAI deployment (e.g. ``text-embedding-3-small``, 1536-d).

    Pass ``session`` to share an ``aiohttp.ClientSession``; otherwise one is created on first use and closed
    by :meth:`close`. ``dimensions`` asks text-embedding-3 models for shorter vectors (``dim`` must match).
    """

    def __init__(
        self,
        *,
        endpoint: str,
        deployment: str,
        dim: int,
        api_key: str | None = None,
        token_provider: Callable[[], Awaitable[str]] | None = None,
        api_version: str | None = "2024-10-21",
        dimensions: int | None = None,
        max_batch: int = 256,
        timeout: float = 20.0,
        retries: int = 3,
        session: Any | None = None,
    ) -> None:
        if (api_key is None) == (token_provider is None):
            raise EmbeddingError("AzureOpenAIEmbedder needs exactly one of api_key or token_provider")
        if not endpoint.startswith(("https://", "http://")):
            raise EmbeddingError(f"endpoint must be an http(s) URL, got {endpoint!r}")
        base = endpoint.rstrip("/")
        if api_version is None:
            self._url = f"{base}/openai/v1/embeddings"
        else:
            self._url = f"{base}/openai/deployments/{deployment}/embeddings?api-version={api_version}"
        self._deployment = deployment
        self._dim = dim
        self._api_key = api_key
        self._token_provider = token_provider
        self._v1 = api_version is None
        self._dimensions = dimensions
        self._max_batch = max_batch
        self._timeout = timeout
        self._retries = retries
        self._session = session
        self._own_session = session is None

    @property
    def model(self) -> str:
        return f"azure:{self._deployment}" + (f":{self._dimensions}" if self._dimensions else "")

    @property
    def dim(self) -> int:
        return self._dim

    async def close(self) -> None:
        """Close the HTTP session if this object created it."""
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def _headers(self) -> dict[str, str]:
        if self._api_key is not None:
            return {"api-key": self._api_key}
        assert self._token_provider is not None
        return {"Authorization": f"Bearer {await self._token_provider()}"}

    async def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for start in range(0, len(texts), self._max_batch):
            part = list(texts[start : start + self._max_batch])
            out[start : start + len(part)] = await self._embed_batch(part)
        return out

    async def _embed_batch(self, texts: list[str]) -> npt.NDArray[np.float32]:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession()
        body: dict[str, Any] = {"input": texts}
        if self._v1:
            body["model"] = self._deployment
        if self._dimensions:
            body["dimensions"] = self._dimensions
        delay = 0.5
        for attempt in range(self._retries + 1):
            try:
                async with self._session.post(
                    self._url,
                    json=body,
                    headers=await self._headers(),
                    timeout=aiohttp.ClientTimeout(total=self._timeout),
                ) as resp:
                    if resp.status == 200:
                        return self._parse(await resp.json(), len(texts))
                    text = (await resp.text())[:300]
                    if resp.status in (401, 403):
                        raise EmbeddingError(
                            f"Azure OpenAI refused the credentials (HTTP {resp.status}): check the key or the "
                            "token's role on the resource"
                        )
                    if resp.status != 429 and resp.status < 500:
                        raise EmbeddingError(f"Azure OpenAI embeddings failed with HTTP {resp.status}: {redact(text)}")
                    retry_after = resp.headers.get("Retry-After", "")
                    wait = float(retry_after) if retry_after.replace(".", "", 1).isdigit() else delay
                    last = f"HTTP {resp.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                wait, last = delay, f"{type(exc).__name__}: {redact(str(exc))}"
            if attempt < self._retries:
                _log.warning("embedding request failed (%s), retrying in %.1fs", last, wait)
                await asyncio.sleep(min(wait, 30.0))
                delay *= 2
        raise EmbeddingError(f"Azure OpenAI embeddings failed after {self._retries + 1} attempts ({last})")

    def _parse(self, payload: Any, n: int) -> npt.NDArray[np.float32]:
        try:
            items = sorted(payload["data"], key=lambda d: int(d["index"]))
            vecs = np.asarray([d["embedding"] for d in items], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbeddingError(f"Azure OpenAI returned an unexpected embeddings payload: {exc}") from exc
        if vecs.shape != (n, self._dim):
            raise EmbeddingError(
                f"Azure OpenAI returned vectors of shape {vecs.shape}, expected {(n, self._dim)}: set dim to the "
                "deployment's dimension"
            )
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        out: npt.NDArray[np.float32] = (vecs / np.maximum(norms, 1e-12)).astype(np.float32)
        return out
