"""Keeping a spoken answer ahead of its playback: when the next piece of text goes to the TTS.

An answer is synthesised piece by piece while the listener hears the pieces before it. The first piece is cut
short (at its first comma, or after a few words) so the first audio goes out early. After that a piece is
normally a whole sentence, which sounds best. But a long sentence synthesised whole on a busy machine (piper
makes about 11 s of audio a second on an idle 2-core machine, 3.5 when other work loads it) or a brain that
writes more slowly than the voice speaks can leave the listener in silence between pieces. So the writer
measures two things as it goes, the audio already sent but not yet heard (``ahead_ms``) and how fast the TTS has
been synthesising (:class:`TtsPace`), and cuts the next piece early, at a comma or a word boundary, once
waiting for the sentence's end could outlast the audio in hand.

With several calls on one engine, their pieces queue for the TTS (the engine's synthesis
:class:`~.workers.WorkQueue`) instead of all being synthesised at once: each piece is due when its listener would
run out of audio (an answer's first piece at once), and the most urgent piece goes first. Synthesising four pieces
side by side makes each four times slower and every listener waits; in deadline order the first pieces go out
early and a sentence whose listener still has seconds of audio in hand waits its turn.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LOW_WATER_MS", "MS_PER_WORD", "TtsPace", "hurry", "latest_start"]

# Below this much audio in hand, the next piece is not held back for its sentence's end: a brain's next words
# and their synthesis must both arrive before the listener runs out.
LOW_WATER_MS = 1000.0
# Synthesising a piece must end this long before the audio in hand is heard out (scheduling, the delta's trip).
_MARGIN_MS = 300.0
# A spoken English word, pause included, at the voices here (piper joe speaks about 330 ms a word).
MS_PER_WORD = 350.0


@dataclass
class TtsPace:
    """How fast a TTS has been synthesising: milliseconds of audio per millisecond of compute, a moving average
    of the pieces measured so far (``speed``; starts at a cautious guess). One per session: it follows the
    machine's load as the call goes on. The engine times each chunk from its request to its arrival, waiting in
    the engine's synthesis queue included: the speed this session gets, not the voice's alone."""

    speed: float = 4.0
    weight: float = 0.3  # of each new measurement

    def observe(self, audio_ms: float, compute_ms: float) -> None:
        """Record one synthesised chunk: ``audio_ms`` of audio that took ``compute_ms`` to make. Chunks timed at
        0 ms (a test's fake clock, or a TTS that had it ready) say nothing about speed and are ignored."""
        if audio_ms <= 0 or compute_ms <= 0:
            return
        self.speed += self.weight * (audio_ms / compute_ms - self.speed)

    def synthesis_ms(self, text: str) -> float:
        """The expected time to synthesise ``text``, from its words."""
        return len(text.split()) * MS_PER_WORD / max(self.speed, 0.1)


def latest_start(runs_out: float, text: str) -> float:
    """When the synthesis of ``text`` must start (session clock, seconds) for its audio to be ready by
    ``runs_out``, the moment its listener will have heard everything sent: its synthesis at a cautious pace (the
    :class:`TtsPace` starting guess, not a session's measured pace, which counts time spent waiting in the queue
    and would move every deadline earlier the busier the engine is) and the margin. The engine's synthesis queue
    runs pieces in this order, so a listener about to run out goes before one who still has seconds in hand."""
    return runs_out - (_CAUTIOUS.synthesis_ms(text) + _MARGIN_MS) / 1000.0


def hurry(pending: str, *, ahead_ms: float, pace: TtsPace) -> bool:
    """Whether the text waiting to be spoken should go to the TTS at the next comma or word boundary instead of
    its sentence's end: the audio in hand (``ahead_ms``) is low, or would run out before ``pending`` and the
    rest of its sentence were synthesised."""
    return ahead_ms < max(LOW_WATER_MS, pace.synthesis_ms(pending) + _MARGIN_MS)


_CAUTIOUS = TtsPace()  # never observed: its starting guess
