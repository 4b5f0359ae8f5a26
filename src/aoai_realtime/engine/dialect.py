"""The preview (beta) dialect of server events: kept as a name for the engine's drivers. All GA <-> beta
knowledge lives in :mod:`aoai_realtime.protocol.dialect`."""

from __future__ import annotations

from ..protocol.dialect import event_to_beta as to_beta
from ..protocol.dialect import response_to_beta as beta_response

__all__ = ["beta_response", "to_beta"]
