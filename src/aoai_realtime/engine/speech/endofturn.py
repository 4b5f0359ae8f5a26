"""End of turn from the sound of speech, for ``semantic_vad``: Smart Turn v3.2 (offline-models.md 5b).

:class:`SmartTurn` scores the last 8 s of a user's turn (pcm16 24 kHz) with the probability that the speaker has
finished: a phrase cut off in the middle ("I would like to book a table for") scores low, a finished one high.
The engine asks it when the VAD has heard a short silence; a low score keeps the turn open (reference 2.1,
``semantic_vad``). It hears intonation and rhythm, not words.

The model and its feature extractor come from pipecat-ai's wheel (install it with ``--no-deps``: nothing of
pipecat is imported); both files are checked by sha256 before use. ``SmartTurn.installed()`` says whether the
package is there. Blocking and thread-safe: the engine calls :meth:`SmartTurn.probability` in a worker thread
(about 40 ms on one idle core).
"""

from __future__ import annotations

import importlib.util
import threading
from types import ModuleType
from typing import Any

import numpy as np

from .integrity import SMART_TURN, prepare_offline_environment, verify_model_files
from .resample import pcm16_to_float32

__all__ = ["SmartTurn"]

_MODEL_RATE = 16000
_WINDOW_S = 8


class SmartTurn:
    """P(turn complete) of a user's audio. Loads on first use (or :meth:`load`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._session: Any = None
        self._features: ModuleType | None = None

    @staticmethod
    def installed() -> bool:
        """Whether the pinned pipecat-ai (which ships the model) is installed."""
        return SMART_TURN.installed_version() == SMART_TURN.version

    def load(self) -> None:
        """Check the files' sha256 and load the model. Raises ModelIntegrityError when missing or altered."""
        with self._lock:
            if self._session is not None:
                return
            root = verify_model_files(SMART_TURN)
            prepare_offline_environment()
            import onnxruntime as ort  # type: ignore[import-untyped]

            spec = importlib.util.spec_from_file_location("_smart_turn_features", root / "_whisper_features.py")
            assert spec is not None and spec.loader is not None
            features = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(features)
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1  # measured: two threads are slower on 2 cores
            options.inter_op_num_threads = 1
            self._features = features
            self._session = ort.InferenceSession(
                str(root / "data" / "smart-turn-v3.2-cpu.onnx"), sess_options=options,
                providers=["CPUExecutionProvider"],
            )  # fmt: skip

    def probability(self, pcm16_24k: bytes) -> float:
        """P(the speaker has finished) for a turn's audio so far (pcm16 24 kHz mono; the last 8 s count)."""
        self.load()
        import soxr

        audio = soxr.resample(pcm16_to_float32(pcm16_24k[-_WINDOW_S * 48000 :]), 24000, _MODEL_RATE)
        window = _WINDOW_S * _MODEL_RATE
        audio = audio[-window:] if len(audio) > window else np.pad(audio, (window - len(audio), 0))
        assert self._features is not None
        mel = self._features.compute_whisper_log_mel_features(audio.astype(np.float32), do_normalize=True)
        outputs = self._session.run(None, {"input_features": np.expand_dims(mel, 0).astype(np.float32)})
        return float(np.asarray(outputs[0]).reshape(-1)[0])
