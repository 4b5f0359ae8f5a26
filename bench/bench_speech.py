"""Cost of the engine's offline speech parts (VAD, STT, TTS, resampling), side by side in one run.

    .venv/bin/python bench/bench_speech.py [--repeat 5] [--only vad,stt,tts,resample]

Same as ``aoai-realtime bench speech``; the code and the description of each figure are in
``aoai_realtime.bench.speech``.
"""

from __future__ import annotations

from aoai_realtime.bench.speech import main

if __name__ == "__main__":
    main()
