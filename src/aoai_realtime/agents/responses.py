"""The single writer of ``response.create``: moved to :mod:`aoai_realtime.protocol.arbiter`.

``ResponseWriter`` stays importable here as an alias of :class:`~aoai_realtime.protocol.arbiter.ResponseArbiter`.
"""

from __future__ import annotations

from ..protocol.arbiter import ResponseArbiter

__all__ = ["ResponseWriter"]

ResponseWriter = ResponseArbiter
