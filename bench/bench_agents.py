"""Transcript sync error (ours vs the 285 ms drip, tone and piper speech at 200-350 ms/word) and end of speech ->
first audio heard, against the engine.

    .venv/bin/python bench/bench_agents.py [--sessions 12] [--turns 12] [--speech tone|piper|all] [--realtime]

Same as ``aoai-realtime bench agents``; the code and the meaning of each figure are in
``aoai_realtime.bench.agents``.
"""

from __future__ import annotations

from aoai_realtime.bench.agents import main

if __name__ == "__main__":
    main()
