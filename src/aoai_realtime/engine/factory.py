"""Build engine parts from command-line style specs: ``--brain`` and ``--speech``."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ..errors import ConfigError
from .brain.base import Brain
from .ports import SpeechPort
from .relay import RelayTarget

__all__ = ["brain_factory", "relay_target", "speech_for"]


def brain_factory(spec: str) -> Callable[[], Brain]:
    """``rules`` | ``scripted:PATH`` | ``llama:PATH`` | ``relay:URL`` -> a per-session brain factory.

    For ``relay:`` the brain is unused (the engine proxies); rules is returned as a harmless default.
    """
    kind, _, arg = spec.partition(":")
    if kind == "rules" or kind == "relay":
        from .brain.rules import RulesBrain

        return RulesBrain
    if kind == "scripted":
        if not arg or not Path(arg).is_file():
            raise ConfigError(f"scripted brain needs a script file: 'scripted:PATH' (got {spec!r})", field="brain")
        from .brain.scripted import ScriptedBrain

        ScriptedBrain.from_json(arg)  # fail at start, not at the first session
        return lambda: ScriptedBrain.from_json(arg)
    if kind == "llama":
        from .brain.llama import LlamaBrain

        brain = LlamaBrain.from_path(arg)  # one model shared by every session
        return lambda: brain
    raise ConfigError(f"unknown brain {spec!r}: use rules, scripted:PATH, llama:PATH or relay:URL", field="brain")


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
