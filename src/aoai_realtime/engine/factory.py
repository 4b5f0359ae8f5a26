"""Build engine parts from command-line style specs: ``--brain`` and ``--speech``."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ..errors import ConfigError
from .brain.base import Brain
from .ports import SpeechPort
from .relay import RelayTarget

__all__ = ["brain_factory", "describe_brain", "relay_target", "speech_for"]


BRAIN_SPECS = "auto, llm, rules, scripted:PATH, llama:PATH or relay:URL"


def brain_factory(spec: str) -> Callable[[], Brain]:
    """``auto`` | ``llm`` | ``rules`` | ``scripted:PATH`` | ``llama:PATH`` | ``relay:URL`` -> a per-session brain
    factory. Raises ConfigError (one line naming the fix) for a bad spec or a model that cannot be loaded.

    ``llm`` is the packaged local language model (``scripts/setup.sh`` installs it); ``auto`` is ``llm`` when it
    is installed, else ``rules``; ``llama:PATH`` loads another GGUF. A language model is loaded once here and
    shared by every session. For ``relay:`` the brain is unused (the engine proxies); rules is returned as a
    harmless default.
    """
    kind, _, arg = spec.partition(":")
    if kind == "auto" and not arg:
        from .brain.llm import llm_available

        kind = "llm" if llm_available() else "rules"
    if kind == "rules" or kind == "relay":
        from .brain.rules import RulesBrain

        return RulesBrain
    if kind == "scripted":
        if not arg or not Path(arg).is_file():
            raise ConfigError(f"scripted brain needs a script file: 'scripted:PATH' (got {spec!r})", field="brain")
        from .brain.scripted import ScriptedBrain

        ScriptedBrain.from_json(arg)  # fail at start, not at the first session
        return lambda: ScriptedBrain.from_json(arg)
    if kind in ("llm", "llama"):
        from .brain.llm import LLMBrain, shared_brain
        from .errors import EngineError

        if kind == "llm" and arg:
            raise ConfigError(f"'llm' takes no path; use llama:PATH for another GGUF (got {spec!r})", field="brain")
        if kind == "llama" and not arg:
            raise ConfigError("llama needs a GGUF file: 'llama:PATH' (or use 'llm' for the packaged model)",
                              field="brain")  # fmt: skip
        try:
            brain = shared_brain() if kind == "llm" else LLMBrain.from_path(arg)
        except EngineError as exc:
            raise ConfigError(str(exc), field="brain") from None
        return lambda: brain
    raise ConfigError(f"unknown brain {spec!r}: use {BRAIN_SPECS}", field="brain")


def describe_brain(spec: str) -> str:
    """One line saying which brain answers for ``spec`` (nothing is loaded), for banners and the demo page."""
    kind, _, arg = spec.partition(":")
    if kind in ("auto", "llm") and not arg:
        from .brain.llm import MODEL_LABEL, llm_available

        if llm_available():
            return MODEL_LABEL
        if kind == "auto":
            return "rules (no language model installed: run bash scripts/setup.sh)"
        return "llm (not installed: run bash scripts/setup.sh)"
    if kind == "rules":
        return "rules (no language model: fixed replies)"
    if kind == "scripted":
        return f"scripted replies from {arg}"
    if kind == "llama":
        return f"{Path(arg).name} (llama.cpp, local)"
    if kind == "relay":
        return f"relayed to {arg.split('?')[0]}"
    return spec


def relay_target(spec: str) -> RelayTarget | None:
    """The upstream of ``relay:URL`` (key from ``AOAI_RELAY_API_KEY``), or None for other brains."""
    kind, _, url = spec.partition(":")
    if kind != "relay":
        return None
    if not url.startswith(("ws://", "wss://")):
        raise ConfigError(f"relay needs a WebSocket URL, e.g. relay:wss://host/openai/v1/realtime (got {url!r})",
                          field="brain")  # fmt: skip
    key = os.environ.get("AOAI_RELAY_API_KEY", "")
    if not key:
        raise ConfigError("relay needs the upstream key in AOAI_RELAY_API_KEY", field="AOAI_RELAY_API_KEY")
    return RelayTarget(url=url, api_key=key)


def speech_for(kind: str) -> SpeechPort:
    """The engine's speech bundle: ``full``, ``light`` or ``fake``."""
    from .speech import load_speech

    if kind not in ("full", "light", "fake"):
        raise ConfigError(f"unknown speech {kind!r}: use full, light or fake", field="speech")
    return load_speech(kind)  # type: ignore[arg-type]
