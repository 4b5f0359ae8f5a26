"""Embedding providers behind one interface, plus batching and a cache keyed by (model, text).

- :class:`LocalEmbedder`: all-MiniLM-L6-v2 computed in-process with numpy (the offline default).
- :class:`~aoai_realtime.memory.azure_embeddings.AzureOpenAIEmbedder`: Azure OpenAI ``/embeddings``.
- :class:`HashEmbedder`: a deterministic bag-of-words hashing embedder for tests and latency benchmarks (no
  model; similar texts get similar vectors, but it is no semantic model).
- :class:`CachedEmbedder`: wraps any provider; an in-memory LRU plus an optional SQLite file on disk.

Every provider returns L2-normalised float32 rows, one per input text, in input order.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ..errors import get_logger
from .types import EmbeddingError

if TYPE_CHECKING:
    from .minilm import MiniLMEncoder

__all__ = ["CachedEmbedder", "EmbeddingProvider", "HashEmbedder", "LocalEmbedder", "embed_queries"]

_log = get_logger(__name__)
F32 = npt.NDArray[np.float32]


@runtime_checkable
class EmbeddingProvider(Protocol):
    """What the memory layer needs from an embedding model."""

    @property
    def model(self) -> str:
        """A stable name of the model (part of the cache key)."""
        ...

    @property
    def dim(self) -> int:
        """Vector dimension."""
        ...

    async def embed(self, texts: Sequence[str]) -> F32:
        """Return an ``(len(texts), dim)`` float32 array of unit vectors. Raises :class:`EmbeddingError`."""
        ...


async def embed_queries(provider: EmbeddingProvider, texts: Sequence[str]) -> F32:
    """Embed search queries: with the provider's ``embed_query`` when it has one (asymmetric models such as E5
    embed queries and passages differently), else with ``embed``."""
    embed_query = getattr(provider, "embed_query", None)
    if embed_query is None:
        return await provider.embed(texts)
    out: F32 = await embed_query(texts)
    return out


class LocalEmbedder:
    """all-MiniLM-L6-v2 in-process (numpy), run in a worker thread so the event loop stays free.

    The model is loaded lazily on first use (about 0.3 s) unless an encoder is passed in.
    """

    dim = 384

    def __init__(self, encoder: MiniLMEncoder | None = None, *, batch_size: int = 32) -> None:
        self._encoder = encoder
        self._lock = threading.Lock()
        self._batch_size = batch_size

    @property
    def model(self) -> str:
        return "all-MiniLM-L6-v2"

    def _get(self) -> MiniLMEncoder:
        from .minilm import MiniLMEncoder

        with self._lock:
            if self._encoder is None:
                self._encoder = MiniLMEncoder.load()
            return self._encoder

    def encode_sync(self, texts: Sequence[str]) -> F32:
        """Blocking variant of :meth:`embed` for scripts and worker threads."""
        return self._get().encode(texts, batch_size=self._batch_size)

    async def embed(self, texts: Sequence[str]) -> F32:
        return await asyncio.to_thread(self.encode_sync, list(texts))


_WORD = re.compile(r"[a-z0-9]+")


class HashEmbedder:
    """Deterministic hashed bag-of-words (+ character trigrams) vectors. For tests and synthetic benchmarks."""

    def __init__(self, dim: int = 64) -> None:
        self._dim = dim

    @property
    def model(self) -> str:
        return f"hash-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def encode_sync(self, texts: Sequence[str]) -> F32:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for i, t in enumerate(texts):
            words = _WORD.findall(t.lower())
            feats = words + [w[j : j + 3] for w in words for j in range(max(1, len(w) - 2))]
            for f in feats:
                h = int.from_bytes(hashlib.blake2b(f.encode(), digest_size=8).digest(), "little")
                out[i, h % self._dim] += 1.0 if (h >> 32) & 1 else -1.0
            n = float(np.linalg.norm(out[i]))
            if n == 0.0:
                out[i, 0] = 1.0
            else:
                out[i] /= n
        return out

    async def embed(self, texts: Sequence[str]) -> F32:
        return self.encode_sync(texts)


class CachedEmbedder:
    """Wraps a provider with a cache keyed by (model, text) and splits large requests into batches.

    ``max_entries`` bounds the in-memory LRU. With ``path`` set, vectors are also kept in a SQLite file so
    later processes (e.g. benchmark re-runs) skip the model. Concurrent calls may embed the same new text
    twice; the result is the same, so no lock is held across the provider call.
    """

    def __init__(
        self,
        inner: EmbeddingProvider,
        *,
        max_entries: int = 10_000,
        batch_size: int = 64,
        path: Path | None = None,
    ) -> None:
        self._inner = inner
        self._lru: OrderedDict[str, F32] = OrderedDict()
        self._max = max_entries
        self._batch = batch_size
        self._db: sqlite3.Connection | None = None
        self._db_lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False)
            self._db.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")

    @property
    def model(self) -> str:
        return self._inner.model

    @property
    def dim(self) -> int:
        return self._inner.dim

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self._inner.model}\x00{text}".encode()).hexdigest()

    def close(self) -> None:
        """Close the disk cache (if any)."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def _disk_get(self, keys: list[str]) -> dict[str, F32]:
        if self._db is None or not keys:
            return {}
        found: dict[str, F32] = {}
        with self._db_lock:
            for start in range(0, len(keys), 500):
                part = keys[start : start + 500]
                rows = self._db.execute(
                    f"SELECT key, vec FROM emb WHERE key IN ({','.join('?' * len(part))})", part
                ).fetchall()
                for k, blob in rows:
                    found[k] = np.frombuffer(blob, dtype=np.float32).copy()
        return found

    def _disk_put(self, items: dict[str, F32]) -> None:
        if self._db is None or not items:
            return
        with self._db_lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO emb (key, vec) VALUES (?, ?)",
                [(k, v.astype(np.float32).tobytes()) for k, v in items.items()],
            )
            self._db.commit()

    def _remember(self, key: str, vec: F32) -> None:
        self._lru[key] = vec
        self._lru.move_to_end(key)
        while len(self._lru) > self._max:
            self._lru.popitem(last=False)

    async def embed(self, texts: Sequence[str]) -> F32:
        return await self._embed(texts, query=False)

    async def embed_query(self, texts: Sequence[str]) -> F32:
        """Queries, through the inner provider's ``embed_query`` when it has one (cached apart from passages)."""
        if getattr(self._inner, "embed_query", None) is None:
            return await self._embed(texts, query=False)
        return await self._embed(texts, query=True)

    async def _embed(self, texts: Sequence[str], *, query: bool) -> F32:
        keys = [self._key("\x1fquery\x1f" + t if query else t) for t in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        missing: dict[str, str] = {}
        for i, k in enumerate(keys):
            v = self._lru.get(k)
            if v is not None:
                self._lru.move_to_end(k)
                out[i] = v
                self.hits += 1
            else:
                missing.setdefault(k, texts[i])
        if missing:
            disk = await asyncio.to_thread(self._disk_get, list(missing))
            for k, v in disk.items():
                if v.shape == (self.dim,):
                    self._remember(k, v)
                    del missing[k]
            new: dict[str, F32] = {}
            todo = list(missing.items())
            for start in range(0, len(todo), self._batch):
                part = todo[start : start + self._batch]
                part_texts = [t for _, t in part]
                vecs = await (embed_queries(self._inner, part_texts) if query else self._inner.embed(part_texts))
                if vecs.shape != (len(part), self.dim):
                    raise EmbeddingError(f"{self.model} returned shape {vecs.shape}, expected {(len(part), self.dim)}")
                for (k, _), v in zip(part, vecs, strict=True):
                    new[k] = v
                    self._remember(k, v)
            self.misses += len(new)
            self.hits += len(disk)
            await asyncio.to_thread(self._disk_put, new)
            for i, k in enumerate(keys):
                v = new.get(k)
                if v is None:
                    v = disk.get(k)
                if v is not None:
                    out[i] = v
        return out
