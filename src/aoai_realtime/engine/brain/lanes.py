"""Lanes: the llm brain's llama.cpp contexts, so that several sessions' replies are written at once.

One context writes one completion at a time, and a session waiting for another's whole reply (1-2 s on the
2-core box) waits past what a caller accepts. A lane is a pair of contexts (the decision prompt with tools, the
reply prompt without) over the one loaded model: a sibling context shares the model's weights (30 MB of its
own, made in ~30 ms, where loading the model again takes 570 MB), and two lanes running one thread each on two
cores write as fast each as one lane alone (21 tokens in 1.27 s either way, measured).

Each context keeps the tokens it last evaluated, and a prompt's fixed prefix (instructions and tools, hundreds
of tokens: seconds to evaluate) is kept as a snapshot when :meth:`Lanes.remember` is called after it was
evaluated; a lane that shares less of a prompt than a snapshot does gets the snapshot's state copied in first
(``llama_state_seq_*``: a few megabytes). A pass takes the free lane, or a new one while fewer than ``most``
exist, that costs the fewest tokens to evaluate: the prompt's tokens it lacks now, plus the tokens it holds
beyond them that no snapshot keeps (another session's conversation, evaluated again when that session comes
back). So a session
keeps its lane, a new session gets a new lane started from the snapshot, and an unrelated request with no
snapshot reuses a lane that already holds its prefix. A lane whose conversation ended (:meth:`Lanes.end`, from
the engine session's close) drops its tokens for free: without that, a new session took the lane of a session
still talking (fewer tokens held) over one whose caller had hung up, and that session's next turn evaluated its
whole conversation again on yet another lane (3 calls after 2 others on the same engine: the brain's first token
up to 1.9-2.1 s on a turn's second and third question, against at most 0.8 s now).
With every lane busy and no new one allowed, the caller waits for one to come free.
"""

from __future__ import annotations

import ctypes
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .threads import ThreadChoice

__all__ = ["DECIDE", "LOAD_LOCK", "REPLY", "Lane", "Lanes", "shared_start", "sibling"]

DECIDE = "decide"  # the context that reads the tools and writes calls (and replies that need no tool)
REPLY = "reply"  # the context that writes replies from tool outputs, or in sessions without tools
_SNAPSHOTS = 4  # fixed prefixes kept (one per persona in use, most recent first)
_ENDED = 256  # ended conversations remembered, for a pass that starts after its conversation ended


def shared_start(held: Any, tokens: list[int]) -> int:
    """How many tokens ``held`` (a context's evaluated tokens) and ``tokens`` have in common from the start."""
    count = 0
    for a, b in zip(held, tokens, strict=False):
        if a != b:
            break
        count += 1
    return count


class _Borrowed:
    """A loaded model lent to a sibling context: closing the sibling leaves the model loaded."""

    def __init__(self, model: Any) -> None:
        self._model = model

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def close(self) -> None:
        pass


# Held while a llama_cpp.Llama is constructed: a sibling swaps the library's model loader for that long, so a
# model loaded at the same moment on another thread must wait (load_llama takes it too).
LOAD_LOCK = threading.Lock()


def sibling(llm: Any, *, n_ctx: int) -> Any:
    """A new ``llama_cpp.Llama`` context over ``llm``'s loaded model (its weights are not loaded again).

    llama-cpp-python (pinned 0.3.36) has no constructor for this: its model loader is swapped, for the
    constructor's duration, for one that lends ``llm``'s model."""
    import llama_cpp
    import llama_cpp._internals

    internals: Any = llama_cpp._internals
    with LOAD_LOCK:
        loader = internals.LlamaModel
        internals.LlamaModel = lambda **_: _Borrowed(llm._model)
        try:
            return llama_cpp.Llama(model_path=llm.model_path, n_ctx=n_ctx, n_threads=llm.n_threads,
                                n_threads_batch=llm.n_threads_batch, verbose=False)  # fmt: skip
        finally:
            internals.LlamaModel = loader


@dataclass(eq=False)
class Lane:
    """Two contexts (``contexts[DECIDE]``, ``contexts[REPLY]``; possibly the same object) and what goes with
    them: each context's thread choice and the tool-call grammars made for its decision context (a grammar
    holds its parse state, so lanes do not share them)."""

    contexts: dict[str, Any]
    threads: dict[str, ThreadChoice] = field(default_factory=dict)
    grammars: dict[str, Any] = field(default_factory=dict)  # by the offered tools' JSON
    busy: bool = False
    used: int = 0
    # Whose conversation the contexts hold beyond the kept prefixes: a conversation id ("" unknown), or None when
    # nobody's (a new lane, or the conversation ended): then dropping those tokens costs nothing.
    owner: str | None = None

    def held(self, kind: str) -> Any:
        llm = self.contexts[kind]
        return llm.input_ids[: llm.n_tokens]


@dataclass
class _Snapshot:
    tokens: list[int]
    state: bytes


class Lanes:
    """Up to ``most`` lanes, the first built from ``first``; more are made with ``make`` when needed.
    :meth:`take` is a context manager that blocks until a lane is free; thread-safe."""

    def __init__(self, first: Lane, *, most: int, make: Callable[[], Lane]) -> None:
        if most < 1:
            raise ValueError(f"the llm brain needs at least one lane, got {most}")
        self.lanes = [first]
        self.most = most
        self._make = make
        self._free = threading.Condition()
        self._ended: OrderedDict[str, None] = OrderedDict()  # conversations that ended lately (see end)
        self._clock = 0
        self._snapshots: dict[str, OrderedDict[tuple[int, ...], _Snapshot]] = {DECIDE: OrderedDict(),
                                                                               REPLY: OrderedDict()}  # fmt: skip

    @contextmanager
    def take(self, kind: str, tokens: list[int], owner: str = "") -> Iterator[Lane]:
        """A lane for a pass of conversation ``owner`` ("" unknown) that starts on context ``kind`` with
        ``tokens`` (see the module's rules), held until the block ends; its ``kind`` context already holds the
        best snapshot's state if that saves work."""
        with self._free:
            while (lane := self._choose(kind, tokens, owner)) is None:
                self._free.wait()
            lane.busy = True
            lane.owner = None if owner in self._ended else owner  # a pass that started after its call ended
            self._clock += 1
            lane.used = self._clock
        try:
            self._restore(lane, kind, tokens)
            yield lane
        finally:
            with self._free:
                lane.busy = False
                self._free.notify()

    def end(self, owner: str) -> None:
        """Conversation ``owner`` ended: what its lanes hold will not be asked for again (free to drop)."""
        if not owner:
            return
        with self._free:
            self._ended[owner] = None
            while len(self._ended) > _ENDED:
                self._ended.popitem(last=False)
            for lane in self.lanes:
                if lane.owner == owner:
                    lane.owner = None

    def _choose(self, kind: str, tokens: list[int], owner: str) -> Lane | None:
        start, _ = self._snapshot(kind, tokens)
        options: list[tuple[int, int, int, Lane | None]] = []
        for lane in self.lanes:
            if not lane.busy:
                held = lane.held(kind)
                shared = shared_start(held, tokens)
                kept = max(shared, self._snapshot(kind, list(held))[0])  # what a snapshot would give back
                # Another live conversation's tokens are evaluated again when it comes back; an ended one's (or
                # this conversation's own, which its prompt no longer starts with) never are.
                returns = lane.owner is not None and (lane.owner == "" or lane.owner != owner)
                cost = len(tokens) - max(shared, start) + ((len(held) - kept) if returns else 0)
                options.append((cost, 0, -lane.used, lane))
        if len(self.lanes) < self.most:
            options.append((len(tokens) - start, 1, 0, None))
        if not options:
            return None
        chosen = min(options, key=lambda o: o[:3])[3]
        if chosen is None:
            chosen = self._make()
            self.lanes.append(chosen)
        return chosen

    def _snapshot(self, kind: str, tokens: list[int]) -> tuple[int, _Snapshot | None]:
        """The kept prefix sharing the longest start with ``tokens``, and how long that start is (call with the
        condition held). A prefix rarely begins a prompt whole: it was rendered with the reply's opening
        (``<|im_start|>assistant``) where the prompt has the user's turn."""
        best: tuple[int, _Snapshot | None] = (0, None)
        for snapshot in self._snapshots[kind].values():
            shared = shared_start(snapshot.tokens, tokens)
            if shared > best[0]:
                best = (shared, snapshot)
        return best

    def remember(self, lane: Lane, kind: str, tokens: list[int]) -> None:
        """Keep the state of ``lane``'s ``kind`` context, which has just evaluated ``tokens`` (a prompt's fixed
        prefix), for other lanes to start from. Call it from the lane's holder."""
        import llama_cpp

        llm = lane.contexts[kind]
        if list(lane.held(kind)) != tokens:
            return
        ctx = llm._ctx.ctx
        size = int(llama_cpp.llama_state_seq_get_size(ctx, 0))
        buffer = (ctypes.c_uint8 * size)()
        written = int(llama_cpp.llama_state_seq_get_data(ctx, buffer, size, 0))
        with self._free:
            kept = self._snapshots[kind]
            kept[tuple(tokens)] = _Snapshot(list(tokens), bytes(buffer[:written]))
            kept.move_to_end(tuple(tokens), last=False)
            while len(kept) > _SNAPSHOTS:
                kept.popitem()

    def _restore(self, lane: Lane, kind: str, tokens: list[int]) -> None:
        have = shared_start(lane.held(kind), tokens)
        with self._free:
            shared, best = self._snapshot(kind, tokens)
        if best is None or shared <= have:
            return
        import llama_cpp

        llm = lane.contexts[kind]
        ctx = llm._ctx.ctx
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
        buffer = (ctypes.c_uint8 * len(best.state)).from_buffer_copy(best.state)
        if int(llama_cpp.llama_state_seq_set_data(ctx, buffer, len(best.state), 0)) == 0:
            llm.n_tokens = 0  # not restored: the pass evaluates its prompt from the start
            return
        llm.input_ids[: len(best.tokens)] = best.tokens
        llm.n_tokens = len(best.tokens)  # the pass keeps the start it shares and evaluates the rest
        llm._requires_eval = True  # the logits are not restored: the next pass decodes before it samples
