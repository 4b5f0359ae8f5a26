"""TLS for tests against the local engine: :func:`self_signed` and :func:`client_context` (from
:mod:`aoai_realtime.engine.tls`, which ``aoai-realtime engine --tls`` uses too)."""

from __future__ import annotations

from ..engine.tls import client_context, self_signed

__all__ = ["client_context", "self_signed"]
