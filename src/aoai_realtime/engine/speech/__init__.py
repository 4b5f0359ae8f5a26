"""Offline speech for the local engine: voice activity detection, speech-to-text and text-to-speech, all on
pcm16 24 kHz mono (the Realtime API's audio format), with models shipped inside pinned PyPI packages.

Deviations from the issue's sketch, for the engine core:

* ``Speech`` holds a VAD *factory*, ``speech.new_vad()``, not a VAD: a detector keeps per-stream state, so
  each session needs its own. Its attributes (``new_vad``, ``stt``, ``tts``, ``name``) match the engine's
  ``SpeechKit`` port.
* ``frame_ms`` is an ``int`` attribute (32 for silero, 30 for webrtc and energy).
* The "fake" kind's STT is :class:`ToneStt`, which decodes :class:`ToneTts` audio back to its words, rather
  than a table of audio hashes: a user turn spoken with ``ToneTts`` is transcribed exactly, however the engine
  cuts or pads it.

Kinds (:func:`load_speech`): ``"full"`` = silero + whisper tiny.en + piper; ``"light"`` = webrtc + whisper +
tones; ``"fake"`` = energy + tones both ways (no model). Parts can also be injected: build a :class:`Speech`.

Loading is lazy and blocking. Importing this package loads no model and imports neither onnxruntime nor
faster_whisper; the loaders (``WhisperStt.load``, ``PiperTts.load``, ``SileroVad()``, ``load_speech``) check
the model files' sha256 (:mod:`.integrity`; a mismatch raises :class:`ModelIntegrityError` naming the file),
then set ``ORT_DISABLE_TELEMETRY=1`` and ``HF_HUB_OFFLINE=1`` (``setdefault``) before importing onnxruntime or
faster_whisper. Code that imports onnxruntime itself, earlier, must call :func:`prepare_offline_environment`
first. STT and TTS calls are synchronous and CPU-bound: run them in a worker thread.
"""

from __future__ import annotations

from .integrity import ModelIntegrityError, prepare_offline_environment, verify_model_files
from .load import Speech, SpeechKind, load_speech
from .resample import (
    StreamResampler,
    float32_to_pcm16,
    mono24k_to_stereo48k,
    pcm16_to_float32,
    resample,
    resample_pcm16,
    stereo48k_to_mono24k,
)
from .stt import Segment, SpeechToText, Transcription, WhisperStt
from .tone import ToneStt, ToneTts, WordTiming
from .tts import PiperTts, TextToSpeech
from .vad import EnergyVad, SileroVad, VoiceActivityDetector, WebRtcVad, speech_segments

__all__ = [
    "EnergyVad",
    "ModelIntegrityError",
    "PiperTts",
    "Segment",
    "SileroVad",
    "Speech",
    "SpeechKind",
    "SpeechToText",
    "StreamResampler",
    "TextToSpeech",
    "ToneStt",
    "ToneTts",
    "Transcription",
    "VoiceActivityDetector",
    "WebRtcVad",
    "WhisperStt",
    "WordTiming",
    "float32_to_pcm16",
    "load_speech",
    "mono24k_to_stereo48k",
    "pcm16_to_float32",
    "prepare_offline_environment",
    "resample",
    "resample_pcm16",
    "speech_segments",
    "stereo48k_to_mono24k",
    "verify_model_files",
]
