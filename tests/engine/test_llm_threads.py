"""The llm brain's thread choice: all the cores only while no speech work runs here and its steps stay fast."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from aoai_realtime.engine import cores
from aoai_realtime.engine.brain.threads import BACK_OFF_S, OtherPrograms, ThreadChoice, thread_range


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Machine:
    """/proc/stat and this process's CPU time, as the test sets them."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.busy = 0.0  # CPU seconds of the whole machine
        self.own = 0.0  # of this process

    def __call__(self) -> tuple[float, float]:
        return self.busy, self.own

    def run(self, seconds: float, *, own_cores: float, other_cores: float) -> None:
        self.clock.now += seconds
        self.own += own_cores * seconds
        self.busy += (own_cores + other_cores) * seconds


def choice_on(clock: Clock, few: int = 1, most: int = 2, gauge: cores.CoreGauge | None = None) -> ThreadChoice:
    """A choice on a machine nobody else uses, in a process whose speech work ``gauge`` counts."""
    machine = Machine(clock)
    others = OtherPrograms(read=machine, clock=clock)
    others.update()
    machine.run(1.0, own_cores=1.0, other_cores=0.0)
    return ThreadChoice(object(), few, most, clock=clock, others=others, gauge=gauge or cores.CoreGauge())


@pytest.fixture(autouse=True)
def no_back_off() -> Iterator[None]:
    ThreadChoice._backed_off_until = 0.0
    yield
    ThreadChoice._backed_off_until = 0.0


def steps(choice: ThreadChoice, clock: Clock, seconds: list[float]) -> list[int]:
    """Run a pass whose steps take ``seconds`` each; the thread count each step ran with."""
    used = []
    choice.before_pass()
    choice.step()  # the first token: the prompt's evaluation, not timed
    for took in seconds:
        used.append(choice.current)
        clock.now += took
        choice.step()
    return used


def test_all_the_cores_while_nothing_else_runs_and_one_less_while_speech_work_does() -> None:
    clock = Clock()
    gauge = cores.CoreGauge()
    choice = choice_on(clock, gauge=gauge)
    choice.before_pass()
    assert choice.current == 2
    release = threading.Event()
    started = threading.Event()

    def synthesis() -> None:
        with gauge.working():
            started.set()
            release.wait()

    worker = threading.Thread(target=synthesis)
    worker.start()
    started.wait()
    try:
        choice.step()
        assert choice.current == 1 and gauge.running() == 1
    finally:
        release.set()
        worker.join()
    choice.step()
    assert choice.current == 2 and gauge.running() == 0


def test_a_pass_does_not_count_against_itself_but_against_every_other_context() -> None:
    clock = Clock()
    gauge = cores.CoreGauge()
    one, other = choice_on(clock, gauge=gauge), choice_on(clock, gauge=gauge)
    with one.running_pass():
        assert one.current == 2 and gauge.running() == 1
        with other.running_pass():
            assert other.current == 1
            one.step()
            assert one.current == 1  # two lanes at once: one thread each
        one.step()
        assert one.current == 2
    assert gauge.running() == 0


def test_a_step_three_times_its_fastest_backs_off_every_context_for_a_while() -> None:
    clock = Clock()
    choice = choice_on(clock)
    other = choice_on(clock)
    used = steps(choice, clock, [0.027, 0.030, 0.028, 0.090, 0.047, 0.047])
    assert used == [2, 2, 2, 2, 1, 1]  # the 90 ms step (> 3 x 27) ends the use of both cores
    other.before_pass()
    assert other.current == 1  # the machine is busy for every context
    clock.now += BACK_OFF_S
    other.before_pass()
    assert other.current == 2


def test_steady_steps_keep_all_the_cores() -> None:
    clock = Clock()
    choice = choice_on(clock)
    assert steps(choice, clock, [0.030, 0.027, 0.060, 0.070, 0.080]) == [2, 2, 2, 2, 2]


def test_a_fixed_count_is_never_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AOAI_LLM_THREADS", "3")
    assert thread_range() == (3, 3)
    clock = Clock()
    choice = choice_on(clock, *thread_range())
    assert steps(choice, clock, [0.01, 0.5, 0.5]) == [3, 3, 3]
    monkeypatch.delenv("AOAI_LLM_THREADS")
    few, most = thread_range()
    assert most >= 1 and few == max(1, most - 1)


def test_other_programs_busy_on_the_machine_keep_the_model_to_one_core_less() -> None:
    clock = Clock()
    machine = Machine(clock)
    others = OtherPrograms(read=machine, clock=clock)
    choice = ThreadChoice(object(), 1, 2, clock=clock, others=others, gauge=cores.CoreGauge())
    choice.before_pass()
    assert choice.current == 1  # nothing measured yet: the extra core is not taken on trust
    machine.run(0.5, own_cores=1.9, other_cores=0.05)  # this process busy (its own threads do not count)
    choice.before_pass()
    assert others.cores == pytest.approx(0.05) and choice.current == 2
    machine.run(0.5, own_cores=1.0, other_cores=0.8)  # a build or a test run next door
    choice.step()
    assert others.cores == pytest.approx(0.8) and choice.current == 1
    machine.run(0.1, own_cores=1.0, other_cores=0.0)  # too short a stretch to measure: the figure stands
    choice.step()
    assert others.cores == pytest.approx(0.8) and choice.current == 1
    machine.run(0.5, own_cores=1.0, other_cores=0.1)
    choice.step()
    assert choice.current == 2


def test_without_proc_stat_the_extra_core_is_never_used() -> None:
    clock = Clock()
    choice = ThreadChoice(object(), 1, 2, clock=clock, others=OtherPrograms(read=lambda: None, clock=clock),
                          gauge=cores.CoreGauge())
    assert steps(choice, clock, [0.03, 0.03]) == [1, 1]
