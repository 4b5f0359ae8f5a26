"""The sans-I/O protocol core. No sockets, no asyncio, no clock.

- :mod:`.events` and :mod:`.codec`: the typed events and bytes <-> events;
- :mod:`.connection`: :class:`ClientConnection` / :class:`ServerConnection`, one per side, with their declared
  lifecycles;
- :mod:`.schema`: the one session schema (defaults, validation with the service's wording, partial merge);
  :mod:`.session`: the client's typed builder of it;
- :mod:`.dialect`: all GA <-> beta (preview) knowledge;
- :mod:`.state`: the one conversation model;
- :mod:`.arbiter`: the response arbiter and the tool-call book.
"""

from __future__ import annotations

from .codec import BETA_TO_GA, GA_TO_BETA, decode_client_event, decode_server_event, encode, to_dict
from .connection import ClientConnection, ClientState, LocalProtocolError, ServerConnection, ServerState
from .events import *  # noqa: F403
from .events import __all__ as _events_all
from .schema import RequestRejected

__all__ = [
    *_events_all,
    "BETA_TO_GA",
    "GA_TO_BETA",
    "ClientConnection",
    "ClientState",
    "LocalProtocolError",
    "RequestRejected",
    "ServerConnection",
    "ServerState",
    "decode_client_event",
    "decode_server_event",
    "encode",
    "to_dict",
]
