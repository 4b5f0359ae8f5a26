"""Memory benchmark: LoCoMo evidence recall (BM25 / dense / hybrid, plus ablations) and retrieval latency at
1k / 10k / 100k chunks on SQLite and PostgreSQL, with and without query embedding.

    .venv/bin/python bench/bench_memory.py --locomo ../shared/data/locomo [--quick] [--json out.json]

Same code as ``aoai-realtime bench memory`` (see aoai_realtime.memory.benchmark); this script adds the
ablations by default and can save the JSON report. Embeddings of the LoCoMo turns are cached under
~/.cache/aoai-realtime, so re-runs skip the model. The machine is shared: figures are medians/p95 measured
side by side in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from aoai_realtime.bench.memory_run import BenchOptions, render_text, run_memory_bench


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--locomo", type=Path, required=True, help="directory of LoCoMo-format conversations")
    ap.add_argument("--k", type=int, nargs="+", default=[5, 10])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--recall-backend", default="sqlite")
    ap.add_argument("--no-latency", action="store_true")
    ap.add_argument("--quick", action="store_true", help="sizes 1000,10000 and 30 queries")
    ap.add_argument("--json", type=Path, help="also write the JSON report here")
    args = ap.parse_args()
    opts = BenchOptions(
        locomo=args.locomo,
        ks=tuple(sorted(set(args.k))),
        recall_backend=args.recall_backend,
        latency_backends=tuple(b for b in args.backends.split(",") if b),
        sizes=(1000, 10_000) if args.quick else tuple(int(s) for s in args.sizes.split(",") if s),
        queries=30 if args.quick else args.queries,
        ablations=True,
        latency=not args.no_latency,
    )
    report = asyncio.run(run_memory_bench(opts, progress=lambda m: print(m, file=sys.stderr, flush=True)))
    print(render_text(report, opts.ks))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
