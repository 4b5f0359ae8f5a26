"""The sans-I/O protocol core: events, session config, conversation state. No sockets, no asyncio."""

from __future__ import annotations

from .codec import BETA_TO_GA, GA_TO_BETA, decode_client_event, decode_server_event, encode, to_dict
from .events import *  # noqa: F403
from .events import __all__ as _events_all

__all__ = [
    *_events_all,
    "BETA_TO_GA",
    "GA_TO_BETA",
    "decode_client_event",
    "decode_server_event",
    "encode",
    "to_dict",
]
