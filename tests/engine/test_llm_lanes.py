"""Which of the llm brain's lanes (pairs of llama.cpp contexts) a pass takes: the one costing the fewest tokens."""

from __future__ import annotations

import threading

import numpy as np

from aoai_realtime.engine.brain.lanes import DECIDE, REPLY, Lane, Lanes


class Context:
    """What a lane reads of a llama.cpp context: the tokens it holds."""

    def __init__(self, tokens: list[int] | None = None) -> None:
        self.input_ids = np.zeros(4096, dtype=np.intc)
        self.n_tokens = 0
        if tokens:
            self.hold(tokens)

    def hold(self, tokens: list[int]) -> None:
        self.input_ids[: len(tokens)] = tokens
        self.n_tokens = len(tokens)


def lane(tokens: list[int] | None = None) -> Lane:
    """A lane; holding ``tokens``, it stands for some conversation (not known to have ended)."""
    ctx = Context(tokens)
    return Lane({DECIDE: ctx, REPLY: ctx}, owner="" if tokens else None)


SYSTEM = list(range(1000, 1300))  # a persona's fixed prefix: 300 tokens
A = [*SYSTEM, 1, 2, 3, 4, 5, 6, 7, 8]  # session A's turn and its reply
B = [*SYSTEM, 9, 9, 9]


def test_a_session_comes_back_to_its_own_lane_and_a_new_session_gets_a_new_one() -> None:
    made: list[Lane] = []
    first = lane(A)

    def make() -> Lane:
        made.append(lane())
        return made[-1]

    lanes = Lanes(first, most=3, make=make)
    with lanes.take(REPLY, [*A, 10, 11]) as chosen:  # A's next turn
        assert chosen is first
    with lanes.take(REPLY, [*SYSTEM, 20, 21]) as chosen:
        # A's lane would cost B's 2 tokens + A's 8 evaluated again later; a new lane costs all 302 (no snapshot):
        # cheaper to reuse.
        assert chosen is first
    first.contexts[REPLY].hold(A)
    with lanes.take(REPLY, B) as one, lanes.take(REPLY, [*A, 10]) as two:
        assert one is first  # 3 tokens + A's 8 again later, against 303 on a new lane
        assert two is made[-1] and len(lanes.lanes) == 2  # with the first lane busy, A's next pass gets a new one


def test_with_every_lane_busy_a_pass_waits_for_one_to_come_free() -> None:
    lanes = Lanes(lane(A), most=1, make=lambda: lane())
    taken = threading.Event()
    order: list[str] = []

    def second() -> None:
        taken.wait()
        with lanes.take(REPLY, B):
            order.append("second")

    worker = threading.Thread(target=second)
    with lanes.take(REPLY, A):
        worker.start()
        taken.set()
        worker.join(timeout=0.2)  # it cannot get the only lane while this pass holds it
        assert worker.is_alive()
        order.append("first")
    worker.join()
    assert order == ["first", "second"] and len(lanes.lanes) == 1


def test_the_least_costly_free_lane_wins_and_a_busy_lane_is_never_shared() -> None:
    near = lane([*SYSTEM, 50, 51])  # another session's short conversation
    far = lane([*SYSTEM, *range(60, 160)])  # a long one
    lanes = Lanes(near, most=2, make=lambda: far)
    with lanes.take(REPLY, [*SYSTEM, 70]) as first:
        assert first is near  # nothing to make a new lane cheaper than 1 + 2 tokens
    lanes.lanes.append(far)
    with lanes.take(REPLY, [*SYSTEM, 70]) as held, lanes.take(REPLY, [*SYSTEM, 71]) as other:
        assert held is near and other is far


def test_a_new_conversation_takes_an_ended_conversations_lane_rather_than_a_live_ones() -> None:
    short, long = lane(), lane()  # for conversation a (2 tokens of its own) and b (100)
    for fresh in (short, long):
        fresh.contexts[REPLY].hold(SYSTEM)  # both start from the persona's prefix (as from a snapshot)
    lanes = Lanes(short, most=2, make=lambda: long)
    lanes.lanes.append(long)
    with lanes.take(REPLY, [*SYSTEM, 50, 51], "a") as chosen:
        chosen.contexts[REPLY].hold([*SYSTEM, 50, 51])
    with lanes.take(REPLY, [*SYSTEM, *range(60, 160)], "b") as chosen:
        assert chosen is long  # a's lane would cost a's 2 tokens again
        chosen.contexts[REPLY].hold([*SYSTEM, *range(60, 160)])
    with lanes.take(REPLY, [*SYSTEM, 70], "c") as chosen:
        assert chosen is short  # both live: dropping a's 2 tokens beats dropping b's 100
        chosen.contexts[REPLY].hold([*SYSTEM, 50, 51])  # (put a's back, as if c had gone elsewhere)
        chosen.owner = "a"
    lanes.end("b")  # b's caller hung up: its 100 tokens will never be asked for again
    with lanes.take(REPLY, [*SYSTEM, 70], "c") as chosen:
        assert chosen is long  # a, still talking, keeps its lane
    with lanes.take(REPLY, [*SYSTEM, 50, 51, 52], "a") as chosen:
        assert chosen is short


def test_a_pass_that_starts_after_its_conversation_ended_leaves_its_lane_free_to_drop() -> None:
    lanes = Lanes(lane(), most=1, make=lambda: lane())
    lanes.end("a")
    with lanes.take(REPLY, A, "a") as chosen:
        assert chosen.owner is None
    with lanes.take(REPLY, B, "b") as chosen:
        assert chosen.owner == "b"
