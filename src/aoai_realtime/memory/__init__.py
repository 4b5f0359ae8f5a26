"""Cross-session memory: a knowledge store with hybrid retrieval (dense + BM25 + entity graph + recency).

Back ends: :class:`SQLiteStore` (embedded default: FTS5 + sqlite-vec, one file) and :class:`PostgresStore`
(pgvector HNSW + full-text search). Embeddings: :class:`LocalEmbedder` (all-MiniLM-L6-v2, offline, numpy),
:class:`AzureOpenAIEmbedder`, wrapped by :class:`CachedEmbedder`. Retrieval: :class:`HybridRetriever`.
Writing calls into memory: :func:`index_transcript`, or :func:`transcript_chunks` + ``store.replace_session`` to
re-index a call idempotently. Agent tools: :func:`memory_tools`.

Nothing here is imported at package import time beyond light modules: the SQLite, PostgreSQL and model code
load their dependencies when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .azure_embeddings import AzureOpenAIEmbedder
    from .embeddings import CachedEmbedder, EmbeddingProvider, HashEmbedder, LocalEmbedder
    from .indexing import TranscriptTurn, embedding_text, index_texts, index_transcript, text_chunks, transcript_chunks
    from .pg_store import PostgresStore
    from .retrieval import HybridRetriever, RetrievalConfig
    from .sqlite_store import SQLiteStore
    from .store import MemoryStore
    from .tools import MemoryToolkit, memory_tools
    from .types import (
        Chunk,
        ChunkKind,
        EmbeddingError,
        Hit,
        InvalidChunkError,
        MemoryError_,
        NewChunk,
        Scope,
        StoreError,
    )

# Exports load on first use (PEP 562), so `import aoai_realtime.memory` (e.g. by the CLI) costs nothing.
_EXPORTS = {
    "AzureOpenAIEmbedder": ".azure_embeddings",
    "CachedEmbedder": ".embeddings",
    "EmbeddingProvider": ".embeddings",
    "HashEmbedder": ".embeddings",
    "HybridRetriever": ".retrieval",
    "LocalEmbedder": ".embeddings",
    "MemoryStore": ".store",
    "MemoryToolkit": ".tools",
    "PostgresStore": ".pg_store",
    "RetrievalConfig": ".retrieval",
    "SQLiteStore": ".sqlite_store",
    "TranscriptTurn": ".indexing",
    "embedding_text": ".indexing",
    "index_texts": ".indexing",
    "index_transcript": ".indexing",
    "text_chunks": ".indexing",
    "transcript_chunks": ".indexing",
    "memory_tools": ".tools",
    "Chunk": ".types",
    "ChunkKind": ".types",
    "EmbeddingError": ".types",
    "Hit": ".types",
    "InvalidChunkError": ".types",
    "MemoryError_": ".types",
    "NewChunk": ".types",
    "Scope": ".types",
    "StoreError": ".types",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)


__all__ = [
    "AzureOpenAIEmbedder",
    "CachedEmbedder",
    "Chunk",
    "ChunkKind",
    "EmbeddingError",
    "EmbeddingProvider",
    "HashEmbedder",
    "Hit",
    "HybridRetriever",
    "InvalidChunkError",
    "LocalEmbedder",
    "MemoryError_",
    "MemoryStore",
    "MemoryToolkit",
    "NewChunk",
    "PostgresStore",
    "RetrievalConfig",
    "SQLiteStore",
    "Scope",
    "StoreError",
    "TranscriptTurn",
    "embedding_text",
    "index_texts",
    "index_transcript",
    "memory_tools",
    "text_chunks",
    "transcript_chunks",
]
