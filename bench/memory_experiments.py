"""Second-stage retrieval experiments on the LoCoMo *tune* split only (issue 16; the report split is never read).

    .venv/bin/python bench/memory_experiments.py --locomo ../shared/data/locomo [--embedder e5] [--graph spacy]

Indexes the tune conversations once (as ``bench memory`` does), takes the default hybrid's top 50 for every
question, and prints recall@5, recall@10 and multi-hop (category 1) recall@10 for:

- headroom: recall@20/30/50 of that candidate list, the most any reranker over it could reach;
- pseudo-relevance feedback: the graph entities (``ent``) or the words (``text``) of the top 3 or 5 hits
  searched again, the result added with weight 0.1-0.4 (min-max scaled like the fused scores);
- session diversity: each further hit from a session already chosen is discounted (factor 0.8 or 0.6);
- learned reranking: logistic regression over 11 features of each candidate (fused score, rank, each signal's
  share, speaker match, neighbour share, "is a question", length, query-word and query-entity coverage),
  trained leave-one-conversation-out (train on two tune conversations, score the third);
- with ``--embedder e5``: a second dense list, MiniLM's, added to the E5 hybrid with weight 0.1-0.5.

Embeddings come from the ``bench memory`` cache. Takes a few minutes (the spaCy graph reads every turn).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aoai_realtime.bench.memory_locomo import load_locomo
from aoai_realtime.bench.memory_recall import _questions, index_conversation, tune_split_dir
from aoai_realtime.bench.memory_run import BenchOptions, bench_chunk_graph, bench_embedder
from aoai_realtime.memory import Hit, Scope, SQLiteStore
from aoai_realtime.memory.embeddings import embed_queries
from aoai_realtime.memory.retrieval import HybridRetriever
from aoai_realtime.memory.text import query_terms

CANDIDATES = 50
Matrix = npt.NDArray[np.float64]


class Question:
    def __init__(self, conv: str, text: str, evidence: Sequence[str], category: int, vector: Any) -> None:
        self.conv, self.text, self.evidence, self.category, self.vector = conv, text, set(evidence), category, vector
        self.hits: list[Hit] = []
        self.features: Matrix = np.zeros((0, 11))


def scores(items: Sequence[tuple[Any, float]]) -> dict[Any, float]:
    """Min-max scaled scores, as the retriever's weighted fusion scales each signal."""
    if not items:
        return {}
    values = [s for _, s in items]
    lo, hi = min(values), max(values)
    return {key: (s - lo) / (hi - lo) if hi > lo else 1.0 for key, s in items}


def report(name: str, questions: Sequence[Question], ranked: Sequence[Sequence[str]]) -> None:
    r5 = r10 = c1 = 0.0
    n1 = 0
    for q, refs in zip(questions, ranked, strict=True):
        r5 += len(q.evidence & set(refs[:5])) / len(q.evidence)
        r10 += len(q.evidence & set(refs[:10])) / len(q.evidence)
        if q.category == 1:
            n1 += 1
            c1 += len(q.evidence & set(refs[:10])) / len(q.evidence)
    n = len(questions)
    print(f"{name:<44}{r5 / n:>8.3f}{r10 / n:>8.3f}{c1 / max(n1, 1):>10.3f}", flush=True)


def features(q: Question, entities: Sequence[str]) -> Matrix:
    terms = set(query_terms(q.text))
    top = q.hits[0].score if q.hits else 1.0
    rows = []
    for i, h in enumerate(q.hits):
        sig, text = h.signals, h.chunk.text
        ents = set((h.chunk.meta or {}).get("graph", {}).get("entities", []))
        rows.append([
            h.score / top, 1.0 / math.log2(i + 2), sig.get("dense", 0.0), sig.get("bm25", 0.0), sig.get("graph", 0.0),
            1.0 if sig.get("speaker", 0.0) > 0 else 0.0, sig.get("neighbours", 0.0) / max(top, 1e-9),
            1.0 if text.strip().endswith("?") else 0.0, math.log(1 + len(text.split())),
            len(terms & set(query_terms(text))) / max(1, len(terms)), len(set(entities) & ents) / max(1, len(entities)),
        ])  # fmt: skip
    return np.array(rows, dtype=np.float64).reshape(-1, 11)


def train(x: Matrix, y: Matrix, l2: float) -> Callable[[Matrix], Matrix]:
    """Class-balanced L2 logistic regression by gradient descent; returns the scoring function."""
    mu, sd = x.mean(0), x.std(0) + 1e-9
    z = (x - mu) / sd
    w, b = np.zeros(z.shape[1]), 0.0
    pos = float(y.mean())
    weight = np.where(y > 0, 0.5 / pos, 0.5 / (1 - pos))
    for _ in range(3000):
        g = (1 / (1 + np.exp(-(z @ w + b))) - y) * weight
        w -= 0.5 * (z.T @ g / len(y) + l2 * w)
        b -= 0.5 * float(g.mean())
    return lambda m: np.asarray(((m - mu) / sd) @ w + b, dtype=np.float64)


def learned(questions: Sequence[Question], l2: float) -> list[list[str]]:
    out: dict[int, list[str]] = {}
    for held in sorted({q.conv for q in questions}):
        train_on = [q for q in questions if q.conv != held and q.hits]
        x = np.vstack([q.features for q in train_on])
        y = np.concatenate([[1.0 if h.chunk.ref in q.evidence else 0.0 for h in q.hits] for q in train_on])
        score = train(x, y, l2)
        for i, q in enumerate(questions):
            if q.conv == held:
                order = np.argsort(-score(q.features), kind="stable") if q.hits else []
                out[i] = [q.hits[j].chunk.ref for j in order]
    return [out[i] for i in range(len(questions))]


async def prf(store: SQLiteStore, q: Question, kind: str, m: int, w: float, q_entities: Sequence[str]) -> list[str]:
    scope = Scope(owner=q.conv)
    if kind == "ent":
        ents = list(dict.fromkeys(e for h in q.hits[:m] for e in (h.chunk.meta or {}).get("graph", {})
                                  .get("entities", []) if e not in q_entities))  # fmt: skip
        extra = await store.search_entities(scope, ents, 100) if ents else []
    else:
        terms = list(dict.fromkeys([*query_terms(q.text), *(t for h in q.hits[:m] for t in query_terms(h.chunk.text))]))
        extra = await store.search_text(scope, terms, 100, speaker_weight=0.5, context_weight=0.5)
    total = scores([(h.chunk.id, h.score) for h in q.hits])
    for cid, s in scores(extra).items():
        total[cid] = total.get(cid, 0.0) + w * s
    best = sorted(total, key=lambda c: -total[c])[:10]
    refs = {h.chunk.id: h.chunk.ref for h in q.hits}
    refs |= {c.id: c.ref for c in await store.get_chunks([c for c in best if c not in refs])}
    return [refs[c] for c in best]


def diverse(q: Question, factor: float) -> list[str]:
    chosen: list[Hit] = []
    pool = list(q.hits)
    while pool and len(chosen) < 10:
        best = max(
            pool, key=lambda h: h.score * factor ** sum(c.chunk.session_id == h.chunk.session_id for c in chosen)
        )
        chosen.append(best)
        pool.remove(best)
    return [h.chunk.ref for h in chosen]


async def indexed(opts: BenchOptions, graph_kind: str, directory: Path, db: Path) -> tuple[SQLiteStore, Any, Any]:
    _, cached = bench_embedder(opts)
    graph = await bench_chunk_graph(graph_kind)
    store = await SQLiteStore.open(db, dim=cached.dim)
    for conv in load_locomo(directory):
        await index_conversation(store, cached, conv, graph=graph)
    return store, cached, graph


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--locomo", type=Path, required=True)
    ap.add_argument("--embedder", default="e5")
    ap.add_argument("--graph", default="spacy")
    ap.add_argument("--cache-dir", type=Path, default=None)
    args = ap.parse_args()
    opts = BenchOptions(locomo=args.locomo, embedder=args.embedder, graph=args.graph, cache_dir=args.cache_dir)
    with tempfile.TemporaryDirectory() as tmp:
        only = tune_split_dir(args.locomo, Path(tmp))
        store, cached, graph = await indexed(opts, args.graph, only, Path(tmp) / "t.db")
        retriever = HybridRetriever(store, cached, graph=graph)
        questions: list[Question] = []
        entities: list[list[str]] = []
        for conv in load_locomo(only):
            items = _questions(conv)
            vectors = await embed_queries(cached, [text for text, _, _ in items])
            for (text, evidence, category), vector in zip(items, vectors, strict=True):
                q = Question(conv.name, text, evidence, category, vector)
                q.hits = await retriever.retrieve(text, Scope(owner=conv.name), CANDIDATES, query_vector=vector)
                ents = await graph.query_entities(text) if graph is not None else []
                q.features = features(q, ents)
                questions.append(q)
                entities.append(ents)
        print(f"tune split, {len(questions)} questions, embedder {args.embedder}, graph {args.graph}")
        print(f"{'method':<44}{'R@5':>8}{'R@10':>8}{'R@10 c1':>10}")
        plain = [[h.chunk.ref for h in q.hits] for q in questions]
        report("hybrid (default)", questions, plain)
        for k in (20, 30, 50):
            found = [len(q.evidence & set(r[:k])) / len(q.evidence) for q, r in zip(questions, plain, strict=True)]
            multi = [f for f, q in zip(found, questions, strict=True) if q.category == 1]
            print(
                f"{f'headroom: recall@{k} of the candidates':<44}{'':>8}{np.mean(found):>8.3f}{np.mean(multi):>10.3f}"
            )
        for kind in ("ent", "text"):
            for m, w in ((3, 0.2), (3, 0.4), (5, 0.2)):
                ranked = [await prf(store, q, kind, m, w, e) for q, e in zip(questions, entities, strict=True)]
                report(f"feedback {kind}, top {m}, weight {w}", questions, ranked)
        for factor in (0.8, 0.6):
            report(f"session diversity {factor}", questions, [diverse(q, factor) for q in questions])
        for l2 in (1e-3, 1e-2, 1e-1):
            report(f"learned rerank (leave-one-out), l2 {l2}", questions, learned(questions, l2))
        if args.embedder == "e5":
            await second_embedder(opts, only, Path(tmp) / "m.db", questions)
        await store.close()
        cached.close()


async def second_embedder(opts: BenchOptions, only: Path, db: Path, questions: Sequence[Question]) -> None:
    local = BenchOptions(locomo=opts.locomo, embedder="local", graph="names", cache_dir=opts.cache_dir)
    store, cached, _ = await indexed(local, "names", only, db)
    vectors = await embed_queries(cached, [q.text for q in questions])
    lists = [await store.search_dense(Scope(owner=q.conv), v, 100) for q, v in zip(questions, vectors, strict=True)]
    refs = {c.id: c.ref for c in await store.get_chunks([cid for items in lists for cid, _ in items])}
    for w in (0.1, 0.2, 0.3, 0.5):
        ranked = []
        for q, items in zip(questions, lists, strict=True):
            total = scores([(h.chunk.ref, h.score) for h in q.hits])
            for ref, s in scores([(refs[cid], s) for cid, s in items]).items():
                total[ref] = total.get(ref, 0.0) + w * s
            ranked.append(sorted(total, key=lambda r: -total[r])[:10])
        report(f"E5 hybrid + MiniLM dense, weight {w}", questions, ranked)
    await store.close()
    cached.close()


if __name__ == "__main__":
    asyncio.run(main())
