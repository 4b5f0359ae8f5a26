"""Request and response bodies. Requests are closed (``extra="forbid"``): a browser that tries to set
``instructions``, ``tools``, ``model``, ``voice`` or anything else gets 400, not a silently ignored field."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ErrorBody", "ErrorReply", "PersonaInfo", "PersonaList", "SessionReply", "SessionRequest"]

PERSONA_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class SessionRequest(BaseModel):
    """Ask for an ephemeral token for one persona the user is allowed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    persona: str = Field(pattern=PERSONA_PATTERN, description="id of a persona the user is allowed to use")


class PersonaInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    title: str


class SessionReply(BaseModel):
    """An ephemeral token, its expiry (Unix seconds) and the persona it was minted for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: str
    expires_at: int
    persona: PersonaInfo


class PersonaList(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    personas: list[PersonaInfo]


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    message: str


class ErrorReply(BaseModel):
    """Every error this server sends. Upstream errors never carry the upstream's body."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    error: ErrorBody
