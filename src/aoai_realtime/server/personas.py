"""Personas and users: who may open which voice session, and the session config built from them.

The browser names a persona id and nothing else. Everything that shapes the model's behaviour (instructions,
tools, voice, transcription, turn detection, ``tool_choice``) comes from the :class:`Persona` defined on the
server, with the authenticated :class:`User`'s name, role and context injected into the instructions.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..protocol.session import SemanticVad, ServerVad, SessionConfig, Transcription
from .tools import ToolRegistry

__all__ = ["Persona", "User", "build_session"]

_PERSONA_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# The only placeholders an instructions template may use; anything else is a typo caught at startup.
_PLACEHOLDERS = frozenset({"user_name", "user_role", "user_context"})


@dataclass(frozen=True, kw_only=True)
class User:
    """An authenticated user, as returned by the auth hook.

    ``personas`` is the user's allow-list of persona ids; a request naming any other persona gets 403.
    ``name``, ``role`` and ``context`` are injected into the persona's instructions: they come from your
    user store, never from the browser's request.
    """

    id: str
    personas: frozenset[str]
    name: str = ""
    role: str = ""
    context: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            raise ConfigError("User.id must be a non-empty string (it keys rate limits and call caps)", field="id")


@dataclass(frozen=True, kw_only=True)
class Persona:
    """A server-defined voice persona.

    ``instructions`` is a template: ``{user_name}``, ``{user_role}`` and ``{user_context}`` are replaced by the
    user's values (write ``{{``/``}}`` for literal braces). ``tools`` names tools of the server's
    :class:`~aoai_realtime.server.tools.ToolRegistry`; they form the persona's allow-list, checked again at
    every call on the sideband. ``max_output_tokens`` caps each response (``None``: the service's default).
    ``max_usd`` is this persona's spend ceiling per call (``None``: the server's
    :class:`~aoai_realtime.server.sideband.CallPolicy` ceiling).

    ``token_route``: whether ``POST /session`` may hand the browser a token for this persona. A token's session
    is out of the server's sight (no sideband: tools do not run, spend is not counted, the browser may change the
    session), so ``None`` (the default) allows it only for a persona without tools and without a spend ceiling
    (its own or the server's); such personas are served through the SDP proxy (``POST /calls``) alone.
    ``True`` allows it anyway, knowingly (logged at start-up); ``False`` refuses it.
    """

    id: str
    instructions: str
    title: str = ""
    tools: tuple[str, ...] = ()
    voice: str = "alloy"
    transcription: Transcription | None = field(default_factory=lambda: Transcription(model="whisper-1"))
    turn_detection: ServerVad | SemanticVad | None = field(default_factory=ServerVad)
    max_output_tokens: int | None = None
    max_usd: float | None = None
    token_route: bool | None = None

    def __post_init__(self) -> None:
        if not _PERSONA_ID.match(self.id):
            raise ConfigError(
                f"persona id {self.id!r} must match {_PERSONA_ID.pattern} (lowercase letters, digits, '_', '-')",
                field="id",
            )
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(self.instructions) if name is not None}
        except ValueError as exc:
            raise ConfigError(f"persona {self.id!r}: instructions template is malformed ({exc})") from exc
        if self.max_usd is not None and not self.max_usd > 0:
            raise ConfigError(f"persona {self.id!r}: max_usd must be > 0 (or None)", field="max_usd")
        unknown = fields - _PLACEHOLDERS
        if unknown:
            raise ConfigError(
                f"persona {self.id!r}: unknown placeholders {sorted(unknown)} in instructions; "
                f"use {sorted(_PLACEHOLDERS)} or double the braces",
                field="instructions",
            )

    def token_route_allowed(self, server_max_usd: float | None) -> bool:
        """Whether the token route may serve this persona, given the server's per-call spend ceiling."""
        if self.token_route is not None:
            return self.token_route
        return not self.tools and self.max_usd is None and server_max_usd is None

    def render_instructions(self, user: User) -> str:
        """The instructions with the user's values injected."""
        return self.instructions.format(user_name=user.name, user_role=user.role, user_context=user.context)


def build_session(
    persona: Persona, user: User, *, model: str, registry: ToolRegistry, context: str = ""
) -> dict[str, Any]:
    """The GA ``session`` object for ``persona`` and ``user`` (reference section 2.1). ``context`` (from the
    server's :class:`~aoai_realtime.server.hooks.CallHooks`) is appended to the rendered instructions.

    Raises :class:`ConfigError` if the persona names a tool the registry does not hold.
    """
    instructions = persona.render_instructions(user)
    config = SessionConfig(
        model=model,
        instructions=f"{instructions}\n\n{context}" if context else instructions,
        voice=persona.voice,
        output_modalities=("audio",),
        transcription=persona.transcription,
        turn_detection=persona.turn_detection,
        tools=registry.definitions(persona.tools),
        tool_choice="auto",
        max_output_tokens=persona.max_output_tokens,
    )
    return config.to_ga()


def check_personas(personas: Mapping[str, Persona], registry: ToolRegistry) -> None:
    """Raise :class:`ConfigError` at startup if a persona is keyed wrongly or names an unknown tool."""
    for key, persona in personas.items():
        if key != persona.id:
            raise ConfigError(f"persona registered as {key!r} has id {persona.id!r}; use the same id")
        missing = [name for name in persona.tools if name not in registry]
        if missing:
            raise ConfigError(
                f"persona {persona.id!r} names tools {missing} that are not registered; "
                f"registered: {sorted(registry.names())}",
                field="tools",
            )
