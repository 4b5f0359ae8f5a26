"""The engine's session defaults. The schema itself (defaults, validation, partial merge) is the protocol core's
:mod:`aoai_realtime.protocol.schema`, and the GA <-> beta session shapes are :mod:`aoai_realtime.protocol.dialect`;
this module only adds what is the engine's own: the instructions a local session starts with.
"""

from __future__ import annotations

from typing import Any, cast

from ..protocol.dialect import BETA_TEMPERATURE
from ..protocol.dialect import session_to_beta as ga_to_beta
from ..protocol.dialect import session_update_to_ga as beta_to_ga
from ..protocol.schema import (
    INCLUDABLE,
    REASONING_EFFORTS,
    VOICES,
    RealtimeSession,
    default_transcription_session,
    turn_detection_defaults,
    validate_response_params,
)
from ..protocol.schema import apply_update as _apply_update
from ..protocol.schema import default_session as _default_session

__all__ = [
    "BETA_TEMPERATURE",
    "DEFAULT_INSTRUCTIONS",
    "INCLUDABLE",
    "REASONING_EFFORTS",
    "VOICES",
    "apply_update",
    "beta_to_ga",
    "default_session",
    "default_transcription_session",
    "ga_to_beta",
    "turn_detection_defaults",
    "validate_response_params",
]

DEFAULT_INSTRUCTIONS = (
    "You are a helpful, witty, and friendly AI running on a local engine. Keep answers short and clear."
)


def default_session(*, model: str = "gpt-realtime", session_id: str, expires_at: int) -> RealtimeSession:
    """The effective session a new engine connection starts with: the service's defaults (reference 2.4) with the
    engine's own instructions."""
    return _default_session(model=model, instructions=DEFAULT_INSTRUCTIONS, session_id=session_id,
                            expires_at=expires_at)  # fmt: skip


def apply_update(
    current: RealtimeSession | dict[str, Any], update: Any, *, voice_locked: bool = False, require_type: bool = True
) -> dict[str, Any]:
    """:func:`aoai_realtime.protocol.schema.apply_update` for callers that hand the merged session on as JSON
    (client_secrets, calls): the same rules, the wire dict back."""
    merged = _apply_update(cast(RealtimeSession, current), update, voice_locked=voice_locked,
                           require_type=require_type)  # fmt: skip
    return cast(dict[str, Any], merged)
