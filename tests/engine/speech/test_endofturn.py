"""Smart Turn v3.2 as packaged (pipecat-ai, installed with --no-deps): pinned by sha256, and on average it scores
finished sentences above phrases cut after a word that cannot end them (piper's voice; one utterance against 0.5
proves nothing, offline-models.md 5b). Piper speaks without its random noise here (``noise_scale`` and
``noise_w_scale`` 0), so the audio, and so the scores, are the same on every run."""

from __future__ import annotations

import statistics

import pytest

from aoai_realtime.engine.speech import PiperTts
from aoai_realtime.engine.speech.endofturn import SmartTurn
from aoai_realtime.engine.speech.integrity import SMART_TURN, verify_model_files
from aoai_realtime.testing.audio import silence

pytestmark = [pytest.mark.integration, pytest.mark.skipif(not SmartTurn.installed(),
                                                          reason="pipecat-ai==1.14.0 is not installed")]  # fmt: skip

CUT = ["I would like to book a table for", "Can you tell me the weather in", "I need to change my",
       "What time does the", "I was wondering if you could", "Tell me a story about a"]  # fmt: skip
ENDS = ["four people tonight.", "Paris tomorrow?", "delivery address please.", "pharmacy close today?",
        "help me with my password.", "dragon who learns to fly."]  # fmt: skip


def test_the_packaged_files_match_their_pins() -> None:
    root = verify_model_files(SMART_TURN)
    assert (root / "data" / "smart-turn-v3.2-cpu.onnx").stat().st_size > 8_000_000


def test_finished_sentences_score_above_cut_off_phrases() -> None:
    piper = PiperTts(noise_scale=0.0, noise_w_scale=0.0)
    judge = SmartTurn()
    tail = silence(200)  # what the engine has when it asks: the turn and 200 ms of silence

    def score(text: str) -> float:
        return judge.probability(b"".join(piper.synthesize(text)) + tail)

    cut = [score(text) for text in CUT]
    finished = [score(f"{a} {b}") for a, b in zip(CUT, ENDS, strict=True)]
    assert all(0.0 <= p <= 1.0 for p in cut + finished)
    assert statistics.mean(finished) > statistics.mean(cut) + 0.2
