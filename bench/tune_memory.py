"""Weight search for hybrid retrieval on the LoCoMo *tune* split only (the report split is never looked at here).

    .venv/bin/python bench/tune_memory.py --locomo ../shared/data/locomo [--embedder local|e5] [--graph names|spacy]

Indexes the tune conversations once and prints recall@5/@10 (overall and multi-hop) for a small grid of
RetrievalConfig variations around the defaults, best first. Embeddings are cached as by ``bench memory``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import tempfile
from pathlib import Path

from aoai_realtime.bench.memory_recall import evaluate_locomo, tune_split_dir
from aoai_realtime.bench.memory_run import BenchOptions, bench_chunk_graph, bench_embedder
from aoai_realtime.memory import RetrievalConfig, SQLiteStore
from aoai_realtime.memory.retrieval import HybridRetriever


def grid() -> dict[str, RetrievalConfig]:
    base = RetrievalConfig()
    out = {"default": base}
    for dw, sw, cw, gw in itertools.product((0.8, 1.0), (1.0, 1.5, 2.5), (0.5, 0.8), (0.2, 0.4)):
        cfg = dataclasses.replace(base, dense_weight=dw, speaker_boost_weight=sw, bm25_context_weight=cw,
                                  graph_weight=gw, graph=gw > 0)  # fmt: skip
        out[f"dense{dw} speaker{sw} context{cw} graph{gw}"] = cfg
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--locomo", type=Path, required=True)
    ap.add_argument("--embedder", default="local")
    ap.add_argument("--graph", default="names")
    ap.add_argument("--cache-dir", type=Path, default=None)
    args = ap.parse_args()
    opts = BenchOptions(locomo=args.locomo, embedder=args.embedder, graph=args.graph, cache_dir=args.cache_dir)
    with tempfile.TemporaryDirectory() as tmp:
        only = tune_split_dir(args.locomo, Path(tmp))
        _, cached = bench_embedder(opts)
        graph = await bench_chunk_graph(opts.graph)
        store = await SQLiteStore.open(Path(tmp) / "t.db", dim=cached.dim)
        try:
            report = await evaluate_locomo(only, store=store, embedder=cached, methods=grid(),
                                           retriever=HybridRetriever(store, cached, graph=graph),
                                           index_options={"graph": graph})  # fmt: skip
        finally:
            await store.close()
            cached.close()
    rows = sorted(report.methods.items(), key=lambda kv: -kv[1]["recall@5"]["overall"] - kv[1]["recall@10"]["overall"])
    print(f"tune split, {report.questions} questions, embedder {args.embedder}, graph {args.graph}")
    print(f"{'config':<34}{'R@5':>8}{'R@10':>8}{'R@5 c1':>8}{'R@10 c1':>8}")
    for name, res in rows:
        r5, r10 = res["recall@5"], res["recall@10"]
        print(f"{name:<34}{r5['overall']:>8.3f}{r10['overall']:>8.3f}{r5['1']:>8.3f}{r10['1']:>8.3f}")


if __name__ == "__main__":
    asyncio.run(main())
