"""The voice model with its phoneme durations as an output: made in memory from the checked voice file, pinned
by sha256, the same model as piper's own patch (which needs the ``onnx`` package, in the dev extra only); and the
mapping of words to the sounds a sentence says."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from aoai_realtime.engine.speech.alignment import (
    ALIGNED_VOICE_SHA256,
    aligned_model,
    alignment_suffix,
    sound_starts,
    word_sounds,
)
from aoai_realtime.engine.speech.integrity import PIPER_VOICE, ModelIntegrityError, verify_model_files

VOICE = "en_US-joe-medium.onnx"


def test_words_are_matched_to_the_sounds_the_sentence_says() -> None:
    # "from the" said alone is f r V m / D @; in the sentence espeak runs them together and reduces a vowel.
    words = [["f", "r", "V", "m"], ["D", "@"], ["n", "O", "r", "T"]]
    spoken = ["f", "r", "@", "m", "D", "@", "n", "O", "r", "T"]
    assert word_sounds(words, spoken) == [0, 4, 6]
    # with piper's symbols: "from the" is one phoneme word in context, fɹʌmðə; "the" is ði alone and ðə here
    assert word_sounds([["f", "ɹ", "ʌ", "m"], ["ð", "i"]], ["f", "ɹ", "ʌ", "m", "ð", "ə"]) == [0, 4]
    # a word without sounds ("-") starts with the word after it; one whose sounds are all gone, where it would be
    assert word_sounds([["a"], [], ["b"]], ["a", "b"]) == [0, 1, 1]
    assert word_sounds([["a"], ["x", "y"]], ["a"]) == [0, 1]


def test_sounds_start_with_their_stress_mark_and_pauses_are_not_sounds() -> None:
    frames = [("^", 512), ("h", 256), ("ˈ", 256), ("ɛ", 768), ("l", 256), (" ", 512), ("o", 256), ("$", 256)]
    aligned = [SimpleNamespace(phoneme=p, num_samples=n) for p, n in frames]
    assert sound_starts(aligned) == [512, 768, 1792, 2560]


@pytest.mark.integration
def test_the_aligned_voice_is_the_checked_file_plus_the_pinned_suffix() -> None:
    root = verify_model_files(PIPER_VOICE)
    model = aligned_model(root / VOICE, PIPER_VOICE)
    assert hashlib.sha256(model).hexdigest() == ALIGNED_VOICE_SHA256
    assert model == (root / VOICE).read_bytes() + alignment_suffix()


@pytest.mark.integration
def test_the_aligned_voice_is_the_model_piper_patches_with_onnx() -> None:
    onnx: Any = pytest.importorskip("onnx")
    from piper.patch_voice_with_alignment import add_alignment_output

    root = verify_model_files(PIPER_VOICE)
    ours = onnx.load_from_string(aligned_model(root / VOICE, PIPER_VOICE))
    theirs = onnx.load(str(root / VOICE))
    add_alignment_output(theirs)
    assert ours == theirs
    assert [o.name for o in ours.graph.output] == ["output", "/Ceil_output_0"]


def test_a_voice_file_that_changed_after_its_check_fails_with_the_fix(tmp_path: Path) -> None:
    swapped = tmp_path / VOICE
    swapped.write_bytes(b"not the voice")
    with pytest.raises(ModelIntegrityError) as caught:
        aligned_model(swapped, PIPER_VOICE)
    message = str(caught.value)
    assert "changed while it was loaded" in message and "pip install --force-reinstall" in message
    assert len(message.splitlines()) == 1
