"""Post-call pipeline throughput and crash recovery on SQLite and PostgreSQL.

    .venv/bin/python bench/bench_pipeline.py [--seconds 3] [--calls 2000] [--lease 1.0] [--poll 0.25] [--repeat 5]

Same as ``aoai-realtime bench pipeline``; the code and the meaning of each figure are in
``aoai_realtime.bench.pipeline``.
"""

from __future__ import annotations

from aoai_realtime.bench.pipeline import main

if __name__ == "__main__":
    main()
