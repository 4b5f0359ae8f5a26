"""Identifiers in the service's shapes: ``sess_``, ``conv_``, ``item_``, ``resp_``, ``call_``, ``event_``,
``rtc_``, ``ek_`` followed by random letters and digits (reference 7)."""

from __future__ import annotations

import itertools
import secrets
import string

__all__ = ["Ids"]

_ALPHABET = string.ascii_letters + string.digits


class Ids:
    """Makes ids. ``Ids()`` is random; ``Ids(deterministic=True)`` counts (``item_000001``) for tests."""

    def __init__(self, *, deterministic: bool = False) -> None:
        self._deterministic = deterministic
        self._counter = itertools.count(1)

    def new(self, prefix: str, length: int = 21) -> str:
        """A fresh id ``{prefix}_{random}``."""
        if self._deterministic:
            return f"{prefix}_{next(self._counter):06d}"
        return prefix + "_" + "".join(_ALPHABET[b % 62] for b in secrets.token_bytes(length))
