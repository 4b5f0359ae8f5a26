"""What the sideband holds a call to: the persona's whole session config, and the responses it allows. Sans I/O.

A browser on a WebRTC call can send ``session.update`` and ``response.create`` on its data channel; the server
sees their effect on the sideband (``session.updated``, ``response.created``), never the browser's events
themselves. :class:`SessionGuard` compares those against the session the server built for the persona:

- :meth:`SessionGuard.drift` names every guarded field of a ``session.updated`` that differs: the
  instructions, the output modalities, the full tool definitions (type, name, description, parameters),
  ``tool_choice``, ``max_output_tokens``, the voice, input transcription and turn detection.
  :meth:`SessionGuard.restore` is the ``session.update`` that puts all of them back.
- :meth:`SessionGuard.response_overrides` names what a ``response.created`` overrides that the persona does not
  allow: another voice or output modalities, or more ``max_output_tokens`` than the persona's.

What it cannot see: a ``response.create``'s own ``instructions``, ``tools`` or ``tool_choice`` (the response
object does not carry them). Tool calls are checked where they run, against the persona's allow-list.
"""

from __future__ import annotations

from typing import Any

from ..protocol import events as ev

__all__ = ["GUARDED_FIELDS", "SessionGuard"]

GUARDED_FIELDS: tuple[str, ...] = (
    "instructions",
    "output_modalities",
    "tools",
    "tool_choice",
    "max_output_tokens",
    "audio.output.voice",
    "audio.input.transcription",
    "audio.input.turn_detection",
)
"""The session fields a call is held to, as dotted paths into the GA ``session`` object. Not ``model``: it
cannot change within a session, and the service may name a deployment's model differently from the server
(comparing it would count every call as tampered)."""

_ABSENT = object()
_DEFAULTS: dict[str, Any] = {"max_output_tokens": "inf", "tool_choice": "auto"}
_TOOL_KEYS = ("type", "name", "description", "parameters")


def _get(session: Any, path: str) -> Any:
    node = session
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return _ABSENT
        node = node[key]
    return node


def _tools(value: Any) -> list[tuple[Any, ...]] | None:
    if not isinstance(value, list):
        return None
    out = [tuple(t.get(k) for k in _TOOL_KEYS) if isinstance(t, dict) else (t,) for t in value]
    return sorted(out, key=repr)


def _same(path: str, want: Any, have: Any) -> bool:
    if path == "tools":
        return _tools(want) == _tools(have)
    if isinstance(want, dict) and isinstance(have, dict):
        # The service echoes its defaults too (fields the server did not set): compare what the server set.
        return all(k in have and _same(f"{path}.{k}", v, have[k]) for k, v in want.items())
    return bool(want == have)


class SessionGuard:
    """Holds the session the server built for a call (:func:`~aoai_realtime.server.personas.build_session`)."""

    def __init__(self, session: dict[str, Any]) -> None:
        self.session = session

    def expected(self, path: str) -> Any:
        """The value the persona's session has for a guarded field (the service's default when it sets none)."""
        value = _get(self.session, path)
        return _DEFAULTS.get(path, _ABSENT) if value is _ABSENT else value

    def drift(self, session: dict[str, Any]) -> list[str]:
        """The guarded fields of ``session`` (from ``session.updated``) that are not the persona's. A field the
        event leaves out is not compared; one the persona does not set is held to the service's default."""
        changed = []
        for path in GUARDED_FIELDS:
            want, have = self.expected(path), _get(session, path)
            if want is _ABSENT or have is _ABSENT:
                continue
            if not _same(path, want, have):
                changed.append(path)
        return changed

    def restore(self) -> dict[str, Any]:
        """The ``session`` of a ``session.update`` that puts every guarded field back."""
        out: dict[str, Any] = {"type": "realtime"}
        for path in GUARDED_FIELDS:
            value = self.expected(path)
            if value is _ABSENT:
                continue
            node = out
            *parents, leaf = path.split(".")
            for key in parents:
                node = node.setdefault(key, {})
            node[leaf] = value
        return out

    def response_overrides(self, response: ev.Response) -> list[str]:
        """What ``response`` (of ``response.created``) sets that the persona does not allow."""
        found = []
        modalities = response.output_modalities
        want_modalities = self.expected("output_modalities")
        if isinstance(modalities, list) and want_modalities is not _ABSENT and modalities != want_modalities:
            found.append("output_modalities")
        voice = _get(response.audio, "output.voice") if isinstance(response.audio, dict) else _ABSENT
        want_voice = self.expected("audio.output.voice")
        if voice is not _ABSENT and voice is not None and want_voice is not _ABSENT and voice != want_voice:
            found.append("audio.output.voice")
        cap = self.expected("max_output_tokens")
        tokens = response.max_output_tokens
        if isinstance(cap, int) and (tokens == "inf" or (isinstance(tokens, int) and tokens > cap)):
            found.append("max_output_tokens")
        return found
