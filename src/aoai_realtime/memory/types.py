"""Values shared by every memory back end: chunks, scopes, hits, and the memory error tree.

::

    RealtimeError
     └── MemoryError_                    anything the memory layer refuses or fails to do
          ├── InvalidChunkError          bad input (empty/huge text, wrong vector dimension); nothing written
          ├── EmbeddingError             an embedding provider failed (model files, HTTP, dimension)
          └── StoreError                 the database failed or is in an unexpected state (migrations)
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import RealtimeError

Vector = Sequence[float] | npt.NDArray[np.float32]

__all__ = [
    "MAX_TEXT_CHARS",
    "Chunk",
    "ChunkKind",
    "EmbeddingError",
    "Hit",
    "InvalidChunkError",
    "MemoryError_",
    "NewChunk",
    "Scope",
    "StoreError",
    "Vector",
    "check_name",
    "check_session_chunks",
    "check_text",
    "check_texts",
    "validate_new_chunks",
]

# A chunk is a turn, an insight or a summary: a few hundred words at most. Anything longer is a caller bug
# (a whole transcript passed as one chunk) and would make BM25 and dense scores meaningless.
MAX_TEXT_CHARS = 20_000


# Text a database cannot store: NUL (PostgreSQL refuses it in text, FTS5 in queries) and lone surrogates (not
# encodable as UTF-8). Scope fields also refuse every other control character: they are ids, not prose.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
_NOT_AN_ID = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


class MemoryError_(RealtimeError):
    """Root of the memory layer's errors."""


class InvalidChunkError(MemoryError_, ValueError):
    """A chunk or query was rejected before anything was written. ``index`` is its position in the batch."""

    def __init__(self, message: str, *, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


class EmbeddingError(MemoryError_):
    """An embedding provider could not embed the texts (missing model files, HTTP error, bad response)."""


class StoreError(MemoryError_):
    """The database failed, or its schema is newer than this code understands."""


class ChunkKind(enum.StrEnum):
    """What a chunk is. ``turn``: one utterance of a call; ``insight``: a fact saved on purpose;
    ``summary``: a post-call summary; ``fact``: a relation extracted after a call (e.g. "Maria works at Contoso.")."""

    TURN = "turn"
    INSIGHT = "insight"
    SUMMARY = "summary"
    FACT = "fact"


@dataclasses.dataclass(frozen=True, slots=True)
class Scope:
    """Who may see a chunk. Every query is scoped: ``owner`` is required, ``tenant`` narrows further when set.

    ``session_id`` (optional) restricts a query to one session, e.g. the current call.
    """

    owner: str
    tenant: str = ""
    session_id: str | None = None

    def __post_init__(self) -> None:
        if not self.owner:
            raise InvalidChunkError("Scope.owner must be a non-empty string (the user or agent the memory belongs to)")
        check_name(self.owner, "Scope.owner")
        check_name(self.tenant, "Scope.tenant")
        if self.session_id is not None:
            check_name(self.session_id, "Scope.session_id")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NewChunk:
    """A chunk to be written. ``embedding`` must have the store's dimension and be L2-normalised.

    ``ts`` is the time the chunk refers to (seconds since the epoch, UTC); ``seq`` orders turns inside a
    session (neighbour context uses it); ``ref`` is a caller id (e.g. a LoCoMo ``dia_id``) kept as metadata.
    ``context`` is searchable text that is not part of the chunk (e.g. the neighbouring turns): full-text search
    gives it a lower weight, and it is never returned.
    """

    owner: str
    text: str
    embedding: Vector
    tenant: str = ""
    session_id: str = ""
    speaker: str = ""
    ts: float = 0.0
    seq: int = 0
    source: str = ""
    kind: ChunkKind = ChunkKind.TURN
    ref: str = ""
    meta: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    context: str = ""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Chunk:
    """A stored chunk (without its vector)."""

    id: int
    owner: str
    tenant: str
    session_id: str
    speaker: str
    ts: float
    seq: int
    source: str
    kind: ChunkKind
    ref: str
    text: str
    meta: Mapping[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class Hit:
    """One retrieval result. ``score`` is comparable only within one result list; ``signals`` gives each
    signal's contribution (for debugging and for the benchmark)."""

    chunk: Chunk
    score: float
    signals: Mapping[str, float] = dataclasses.field(default_factory=dict)
    context: tuple[Chunk, ...] = ()


def _describe(c: str) -> str:
    if c == "\x00":
        return "a NUL character"
    kind = "a lone surrogate" if 0xD800 <= ord(c) <= 0xDFFF else "a control character"
    return f"{kind} (U+{ord(c):04X})"


def check_text(value: object, what: str, *, index: int | None = None) -> None:
    """Raise :class:`InvalidChunkError` unless ``value`` is a string a database can store: no NUL character and
    no lone surrogate (decode bytes with ``errors="replace"`` before passing them). ``what`` names the value."""
    if not isinstance(value, str):
        raise InvalidChunkError(f"{what} is a {type(value).__name__}, expected a string", index=index)
    m = _UNSTORABLE.search(value)
    if m is not None:
        raise InvalidChunkError(
            f"{what} contains {_describe(m.group())} at position {m.start()}: pass valid Unicode text without NUL",
            index=index,
        )


def check_name(value: object, what: str, *, index: int | None = None) -> None:
    """Raise :class:`InvalidChunkError` unless ``value`` is a string without control characters or lone
    surrogates. Owners, tenants and session ids are checked with it: scope keys join them with a control
    character, so refusing those keeps every scope's key distinct."""
    if not isinstance(value, str):
        raise InvalidChunkError(f"{what} is a {type(value).__name__}, expected a string", index=index)
    m = _NOT_AN_ID.search(value)
    if m is not None:
        raise InvalidChunkError(
            f"{what} contains {_describe(m.group())} at position {m.start()}: owner, tenant and session ids must be "
            "printable text",
            index=index,
        )


def check_texts(values: Sequence[str], what: str) -> None:
    """:func:`check_text` on every item of a query list (search terms, entity names)."""
    if isinstance(values, str):
        raise InvalidChunkError(f"{what}s must be a list of strings, not one string")
    for i, v in enumerate(values):
        check_text(v, f"{what} {i}")


def _check_meta(meta: Mapping[str, Any], i: int) -> None:
    def walk(v: object) -> None:
        if isinstance(v, str):
            check_text(v, f"chunk {i} meta", index=i)
        elif isinstance(v, Mapping):
            for key, item in v.items():
                walk(key)
                walk(item)
        elif isinstance(v, list | tuple):
            for item in v:
                walk(item)

    walk(meta)
    try:
        json.dumps(dict(meta), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise InvalidChunkError(
            f"chunk {i} meta is not plain JSON ({e}): use strings, finite numbers, lists and dicts", index=i
        ) from e


def validate_new_chunks(chunks: Sequence[NewChunk], dim: int) -> list[npt.NDArray[np.float32]]:
    """Raise :class:`InvalidChunkError` for the first bad chunk, else return the embeddings as float32 arrays.
    Called before any write, so a bad batch leaves the store untouched."""
    vectors: list[npt.NDArray[np.float32]] = []
    for i, c in enumerate(chunks):
        if not isinstance(c, NewChunk):
            raise InvalidChunkError(f"chunk {i} is a {type(c).__name__}, expected NewChunk", index=i)
        if not c.owner:
            raise InvalidChunkError(f"chunk {i} has an empty owner: every chunk needs a scope", index=i)
        for field in ("owner", "tenant", "session_id"):
            check_name(getattr(c, field), f"chunk {i} {field}", index=i)
        for field in ("text", "speaker", "source", "ref", "context"):
            check_text(getattr(c, field), f"chunk {i} {field}", index=i)
        _check_meta(c.meta, i)
        if not c.text or not c.text.strip():
            raise InvalidChunkError(f"chunk {i} has empty text: nothing to remember", index=i)
        if len(c.text) > MAX_TEXT_CHARS:
            raise InvalidChunkError(
                f"chunk {i} text is {len(c.text)} characters, more than {MAX_TEXT_CHARS}: split it into "
                "turns or paragraphs first",
                index=i,
            )
        if len(c.context) > 2 * MAX_TEXT_CHARS:
            raise InvalidChunkError(f"chunk {i} context is {len(c.context)} characters: keep it to neighbours", index=i)
        if len(c.embedding) != dim:
            raise InvalidChunkError(
                f"chunk {i} embedding has dimension {len(c.embedding)}, the store expects {dim}: "
                "use the same embedding model as the store was created with",
                index=i,
            )
        v = np.asarray(c.embedding, dtype=np.float32)
        if not np.all(np.isfinite(v)):
            raise InvalidChunkError(f"chunk {i} embedding holds NaN or infinity", index=i)
        vectors.append(v)
    return vectors


def check_session_chunks(scope: Scope, session_id: str, chunks: Sequence[NewChunk]) -> None:
    """Raise :class:`InvalidChunkError` unless every chunk belongs to ``scope`` and ``session_id`` (what
    ``replace_session`` writes must be the session it replaces)."""
    for i, c in enumerate(chunks):
        if isinstance(c, NewChunk) and (c.owner, c.tenant, c.session_id) != (scope.owner, scope.tenant, session_id):
            raise InvalidChunkError(
                f"chunk {i} belongs to owner {c.owner!r}, tenant {c.tenant!r}, session {c.session_id!r}, not the "
                f"session being replaced ({scope.owner!r}, {scope.tenant!r}, {session_id!r})",
                index=i,
            )
