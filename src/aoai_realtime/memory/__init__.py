"""Cross-session memory: a knowledge store with hybrid retrieval (dense + BM25 + entity graph + recency).

Back ends: :class:`SQLiteStore` (embedded default: FTS5 + sqlite-vec, one file) and :class:`PostgresStore`
(pgvector HNSW + full-text search). Embeddings: :class:`LocalEmbedder` (all-MiniLM-L6-v2, offline, numpy),
:class:`AzureOpenAIEmbedder`, wrapped by :class:`CachedEmbedder`. Retrieval: :class:`HybridRetriever`.
Writing calls into memory: :func:`index_transcript`. Agent tools: :func:`memory_tools`.

Nothing here is imported at package import time beyond light modules: the SQLite, PostgreSQL and model code
load their dependencies when first used.
"""

from __future__ import annotations

from .azure_embeddings import AzureOpenAIEmbedder
from .embeddings import CachedEmbedder, EmbeddingProvider, HashEmbedder, LocalEmbedder
from .indexing import TranscriptTurn, embedding_text, index_texts, index_transcript
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
]
