"""Decode + dispatch cost per message of a realistic Realtime stream, side by side in one run.

    .venv/bin/python bench/bench_protocol.py [--turns 40] [--repeat 7]

The stream is what one spoken turn looks like on the wire: lifecycle events (response.created, output_item,
content_part, done events, rate_limits), 20 ms audio deltas (pcm16 24 kHz: 960 bytes, base64), and transcript
deltas interleaved with them. Per message it measures, on the same bytes in the same process:

- ``json.loads`` alone (the floor);
- ours: ``decode_server_event`` into typed events + ``ConversationState.apply`` + a handler lookup;
- the official ``openai`` SDK's own parse path (``json.loads`` + ``construct_type_unchecked`` into the
  ``RealtimeServerEvent`` union, what ``connection.parse_event`` does);
- pydantic validation of the official union (``TypeAdapter.validate_json``).

It prints medians over ``--repeat`` runs and ratios to ``json.loads`` (the machines are shared: ratios measured
in one run are what to compare). Targets (issue 2): ours <= 1x json.loads, >= 10x faster than the SDK path.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any


def make_stream(turns: int) -> list[bytes]:
    out: list[bytes] = []
    n = 0

    def add(event: dict[str, Any]) -> None:
        nonlocal n
        n += 1
        out.append(json.dumps({"event_id": f"event_{n:08d}", **event}, separators=(",", ":")).encode())

    words = "Sure, the quarterly review moves to Thursday at three in the afternoon, see you there.".split()
    for t in range(turns):
        rid, iid = f"resp_{t:06d}", f"item_{t:06d}"
        base = {"response_id": rid, "item_id": iid, "output_index": 0, "content_index": 0}
        add({"type": "input_audio_buffer.speech_started", "item_id": f"user_{t}", "audio_start_ms": t * 5000})
        add({"type": "input_audio_buffer.speech_stopped", "item_id": f"user_{t}", "audio_end_ms": t * 5000 + 2000})
        add({"type": "input_audio_buffer.committed", "item_id": f"user_{t}", "previous_item_id": None})
        add({"type": "response.created", "response": {"id": rid, "object": "realtime.response",
                                                       "status": "in_progress", "output": [],
                                                       "conversation_id": "conv_1", "usage": None}})
        add({"type": "response.output_item.added", "response_id": rid, "output_index": 0,
             "item": {"id": iid, "object": "realtime.item", "type": "message", "role": "assistant",
                      "status": "in_progress", "content": []}})
        add({"type": "response.content_part.added", **base, "part": {"type": "audio", "transcript": ""}})
        chunk = base64.b64encode(os.urandom(960)).decode()
        for i in range(100):  # 2 s of audio in 20 ms deltas, a transcript word every ~5 deltas
            add({"type": "response.output_audio.delta", **base, "delta": chunk})
            if i % 5 == 0 and i // 5 < len(words):
                add({"type": "response.output_audio_transcript.delta", **base, "delta": words[i // 5] + " "})
        add({"type": "response.output_audio.done", **base})
        add({"type": "response.output_audio_transcript.done", **base, "transcript": " ".join(words)})
        add({"type": "response.content_part.done", **base, "part": {"type": "audio", "transcript": " ".join(words)}})
        done_item = {"id": iid, "object": "realtime.item", "type": "message", "role": "assistant",
                     "status": "completed", "content": [{"type": "output_audio", "transcript": " ".join(words)}]}
        add({"type": "response.output_item.done", "response_id": rid, "output_index": 0, "item": done_item})
        add({"type": "response.done", "response": {"id": rid, "object": "realtime.response", "status": "completed",
                                                    "output": [done_item], "conversation_id": "conv_1",
                                                    "usage": {"total_tokens": 10, "input_tokens": 4,
                                                              "output_tokens": 6}}})
        add({"type": "rate_limits.updated", "rate_limits": [{"name": "tokens", "limit": 1, "remaining": 1,
                                                             "reset_seconds": 1.0}]})
    return out


def timed(fn: Callable[[list[bytes]], None], stream: list[bytes], repeat: int) -> float:
    """Median seconds per message over ``repeat`` passes (after one warm-up pass)."""
    fn(stream)
    samples = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn(stream)
        samples.append((time.perf_counter() - t0) / len(stream))
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    from openai._models import construct_type_unchecked
    from openai.types.realtime import RealtimeServerEvent
    from pydantic import TypeAdapter

    from aoai_realtime.protocol.codec import decode_server_event
    from aoai_realtime.protocol.state import ConversationState

    stream = make_stream(args.turns)
    handlers: dict[str, Callable[[Any], None]] = {}

    def plain_json(s: list[bytes]) -> None:
        loads = json.loads
        for m in s:
            loads(m)

    def ours(s: list[bytes]) -> None:
        state = ConversationState()
        get = handlers.get
        for m in s:
            e = decode_server_event(m)
            state.apply(e)
            h = get(e.type)
            if h is not None:
                h(e)

    def sdk_parse(s: list[bytes]) -> None:
        loads = json.loads
        for m in s:
            construct_type_unchecked(value=loads(m), type_=RealtimeServerEvent)

    adapter: TypeAdapter[Any] = TypeAdapter(RealtimeServerEvent)

    def sdk_validate(s: list[bytes]) -> None:
        for m in s:
            adapter.validate_json(m)

    results = {
        "json.loads": timed(plain_json, stream, args.repeat),
        "ours (decode+state+dispatch)": timed(ours, stream, args.repeat),
        "openai SDK parse_event": timed(sdk_parse, stream, max(3, args.repeat // 2)),
        "pydantic validate (official union)": timed(sdk_validate, stream, max(3, args.repeat // 2)),
    }
    base = results["json.loads"]
    size = sum(map(len, stream)) / len(stream)
    print(f"stream: {len(stream)} messages over {args.turns} turns, mean {size:.0f} bytes/message")
    print(f"{'path':38s} {'us/message':>11s} {'x json.loads':>13s}")
    for name, sec in results.items():
        print(f"{name:38s} {sec * 1e6:11.2f} {sec / base:13.2f}")
    ours_t = results["ours (decode+state+dispatch)"]
    print(f"ours vs SDK parse_event: {results['openai SDK parse_event'] / ours_t:.1f}x faster")
    print(f"ours vs pydantic validation: {results['pydantic validate (official union)'] / ours_t:.1f}x faster")


if __name__ == "__main__":
    main()
