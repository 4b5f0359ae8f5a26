"""Post-call pipeline: idempotent leased steps (summary, action items, vector index, review thread) on
SQLite (the embedded default) or PostgreSQL, run in-process or by procrastinate workers.

Exactly-once comes from the store, not the queue: a worker claims a step with one atomic
``UPDATE ... RETURNING`` that sets a fresh claim token and a lease, and commits the step's effect together
with its ``generated`` mark in one transaction that only matches the row while it still holds that token.
Every queue delivers at least once; duplicates and zombies then change nothing. See ``docs/pipeline.md``.
"""

from .memory_indexer import MemoryIndexer
from .model import (
    TRANSITIONS,
    CallRecord,
    Claim,
    ClaimLost,
    Clock,
    CorruptRow,
    Effect,
    FakeClock,
    IllegalTransition,
    PermanentStepError,
    Pipeline,
    PipelineError,
    RetryPolicy,
    StepContext,
    StepEvent,
    StepRow,
    StepSpec,
    StepState,
    StepStoreError,
    StoredEffect,
    SystemClock,
    transition,
)
from .postgres_store import PostgresStepStore
from .runner import InProcessRunner, StepOutcome, Worker
from .sqlite_store import SQLiteStepStore
from .steps import ACTION_ITEMS, INDEX, REVIEW_THREAD, SUMMARY, Indexer, StoreIndexer, chunk_call, default_pipeline
from .store import EffectCount, StepStore

__all__ = [
    "ACTION_ITEMS",
    "INDEX",
    "REVIEW_THREAD",
    "SUMMARY",
    "TRANSITIONS",
    "CallRecord",
    "Claim",
    "ClaimLost",
    "Clock",
    "CorruptRow",
    "Effect",
    "EffectCount",
    "FakeClock",
    "IllegalTransition",
    "InProcessRunner",
    "Indexer",
    "MemoryIndexer",
    "PermanentStepError",
    "Pipeline",
    "PipelineError",
    "PostgresStepStore",
    "RetryPolicy",
    "SQLiteStepStore",
    "StepContext",
    "StepEvent",
    "StepOutcome",
    "StepRow",
    "StepSpec",
    "StepState",
    "StepStore",
    "StepStoreError",
    "StoreIndexer",
    "StoredEffect",
    "SystemClock",
    "Worker",
    "chunk_call",
    "default_pipeline",
    "transition",
]
