"""The SQL both stores run. One text per statement, written with ``:name`` parameters; the PostgreSQL store
rewrites them to ``%(name)s``. Differences between dialects are the few ``{slots}`` filled by
:func:`statements`."""

from __future__ import annotations

import re
from typing import Final

# The failure message a lease expiry on the last attempt leaves (the worker died or hung).
EXPIRED_MESSAGE: Final = "lease expired on the last attempt: the worker died or hung"
DEPENDENCY_MESSAGE: Final = "a step this one depends on failed"

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS pipeline_calls (
    call_id TEXT PRIMARY KEY,
    transcript TEXT NOT NULL,
    metadata TEXT NOT NULL,
    ended_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS pipeline_steps (
    call_id TEXT NOT NULL REFERENCES pipeline_calls (call_id),
    step TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'generating', 'generated', 'failed')),
    claim_token TEXT,
    lease_seconds DOUBLE PRECISION NOT NULL,
    lease_expires_at DOUBLE PRECISION,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    last_error TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (call_id, step)
);
-- The claim walks this in order and stops at the first claimable row, instead of sorting every candidate.
CREATE INDEX IF NOT EXISTS pipeline_steps_open ON pipeline_steps (next_attempt_at, call_id, step)
    WHERE state IN ('pending', 'generating');
CREATE INDEX IF NOT EXISTS pipeline_steps_leased ON pipeline_steps (lease_expires_at) WHERE state = 'generating';
CREATE TABLE IF NOT EXISTS pipeline_step_deps (
    step TEXT NOT NULL,
    depends_on TEXT NOT NULL,
    PRIMARY KEY (step, depends_on)
);
-- Deliberately no unique key on (call_id, step): effects model writes to outside systems (a review thread
-- posted twice is two threads), so exactly-once must come from the claim protocol, and a duplicate stays
-- countable instead of turning into a constraint error.
CREATE TABLE IF NOT EXISTS pipeline_effects (
    id {autoincrement_pk},
    call_id TEXT NOT NULL,
    step TEXT NOT NULL,
    claim_token TEXT NOT NULL,
    content_type TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS pipeline_effects_call ON pipeline_effects (call_id, step);
CREATE TABLE IF NOT EXISTS pipeline_index_chunks (
    call_id TEXT NOT NULL,
    key TEXT NOT NULL,
    seq INTEGER NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (call_id, key, seq)
);
"""

INSERT_DEP: Final = (
    "INSERT INTO pipeline_step_deps (step, depends_on) VALUES (:step, :depends_on) ON CONFLICT DO NOTHING"
)

INSERT_CALL: Final = """
INSERT INTO pipeline_calls (call_id, transcript, metadata, ended_at)
VALUES (:call_id, :transcript, :metadata, :now)
ON CONFLICT (call_id) DO NOTHING
"""

INSERT_STEP: Final = """
INSERT INTO pipeline_steps (call_id, step, state, lease_seconds, attempts, max_attempts, next_attempt_at,
                            created_at, updated_at)
VALUES (:call_id, :step, 'pending', :lease_seconds, 0, :max_attempts, :now, :now, :now)
ON CONFLICT (call_id, step) DO NOTHING
"""

# A generating step whose lease expired on its last attempt is failed, not claimed again.
REAP_EXPIRED: Final = f"""
UPDATE pipeline_steps
SET state = 'failed', last_error = '{EXPIRED_MESSAGE}', lease_expires_at = NULL, updated_at = :now
WHERE (call_id, step) IN (
    SELECT call_id, step FROM pipeline_steps
    WHERE state = 'generating' AND lease_expires_at <= :now AND attempts >= max_attempts
    {{lock}})
"""

# Pending steps whose dependency failed can never run: fail them so they are visible. Run until no row
# changes (one level of the dependency graph per run).
CASCADE_FAILED: Final = f"""
UPDATE pipeline_steps
SET state = 'failed', last_error = '{DEPENDENCY_MESSAGE}', updated_at = :now
WHERE state = 'pending' AND EXISTS (
    SELECT 1 FROM pipeline_step_deps d
    JOIN pipeline_steps p ON p.call_id = pipeline_steps.call_id AND p.step = d.depends_on
    WHERE d.step = pipeline_steps.step AND p.state = 'failed')
  AND (CAST(:call_id AS TEXT) IS NULL OR call_id = :call_id)
"""

# THE claim: one atomic UPDATE ... RETURNING. A claimed row's next_attempt_at moves to its lease expiry (and
# with every renewal), so rows in flight sort after every due row and the ordered index scan stops at the
# first claimable row instead of walking past all the in-flight ones. Claimable = pending and due, or
# generating with an expired lease; attempts left; every dependency generated. PostgreSQL adds FOR UPDATE
# SKIP LOCKED so concurrent claimers take different rows instead of queueing on one; SQLite runs it under
# BEGIN IMMEDIATE.
CLAIM: Final = """
UPDATE pipeline_steps
SET state = 'generating', claim_token = :token, lease_expires_at = :now + lease_seconds,
    next_attempt_at = :now + lease_seconds, attempts = attempts + 1, updated_at = :now
WHERE (call_id, step) = (
    SELECT s.call_id, s.step FROM pipeline_steps s
    WHERE s.state IN ('pending', 'generating')
      AND (s.state = 'pending' OR s.lease_expires_at <= :now)
      AND s.next_attempt_at <= :now
      AND s.attempts < s.max_attempts
      AND (CAST(:call_id AS TEXT) IS NULL OR s.call_id = :call_id)
      AND (CAST(:step AS TEXT) IS NULL OR s.step = :step)
      AND NOT EXISTS (
          SELECT 1 FROM pipeline_step_deps d
          JOIN pipeline_steps p ON p.call_id = s.call_id AND p.step = d.depends_on
          WHERE d.step = s.step AND p.state <> 'generated')
    ORDER BY s.next_attempt_at, s.call_id, s.step
    LIMIT 1
    {lock}
)
RETURNING call_id, step, claim_token, attempts, max_attempts, lease_expires_at
"""

EXTEND: Final = """
UPDATE pipeline_steps
SET lease_expires_at = :now + :lease_seconds, next_attempt_at = :now + :lease_seconds, updated_at = :now
WHERE call_id = :call_id AND step = :step AND claim_token = :token AND state = 'generating'
RETURNING attempts
"""

# The fence: only the current claim holder of a generating step moves it. A zombie (its lease expired and
# someone reclaimed, or the step was failed) matches no row and its transaction writes nothing.
MARK_GENERATED: Final = """
UPDATE pipeline_steps SET state = 'generated', lease_expires_at = NULL, updated_at = :now
WHERE call_id = :call_id AND step = :step AND claim_token = :token AND state = 'generating'
RETURNING attempts
"""

INSERT_EFFECT: Final = """
INSERT INTO pipeline_effects (call_id, step, claim_token, content_type, body, created_at)
VALUES (:call_id, :step, :token, :content_type, :body, :now)
"""

MARK_FAILED_ATTEMPT: Final = """
UPDATE pipeline_steps
SET state = CASE WHEN attempts >= max_attempts OR :permanent <> 0 THEN 'failed' ELSE 'pending' END,
    next_attempt_at = :retry_at, lease_expires_at = NULL, last_error = :error, updated_at = :now
WHERE call_id = :call_id AND step = :step AND claim_token = :token AND state = 'generating'
RETURNING state
"""

# A time that is not a finite number (a hand edit, a bad migration) makes a step never due: SQLite sorts text
# after every number, PostgreSQL NaN after every number. Such a row would sit open forever, so each claim fails
# it with the reason (and cascade fails its dependents). {bad} is the dialect's "not a finite number" test on
# {col}, written so the open-rows partial indexes serve it; {show} renders the bad value.
FAIL_CORRUPT: Final = """
UPDATE pipeline_steps
SET state = 'failed', last_error = 'CorruptRow: {col} ' || {show} || ' is not a time; the step cannot be scheduled',
    next_attempt_at = :now, lease_expires_at = NULL, updated_at = :now
WHERE {states} AND {bad}
"""

SELECT_CALL: Final = "SELECT transcript, metadata FROM pipeline_calls WHERE call_id = :call_id"

SELECT_EFFECTS: Final = """
SELECT call_id, step, claim_token, content_type, body, created_at FROM pipeline_effects
WHERE call_id = :call_id AND step = :step ORDER BY id
"""

STEP_COLUMNS: Final = (
    "call_id, step, state, claim_token, lease_expires_at, attempts, max_attempts, next_attempt_at, last_error, "
    "created_at, updated_at"
)
SELECT_STEPS: Final = f"""
SELECT {STEP_COLUMNS} FROM pipeline_steps
WHERE (CAST(:call_id AS TEXT) IS NULL OR call_id = :call_id)
ORDER BY call_id, step
"""

EFFECT_COUNTS: Final = "SELECT step, COUNT(*), COUNT(DISTINCT call_id) FROM pipeline_effects GROUP BY step"
STATE_COUNTS: Final = "SELECT state, COUNT(*) FROM pipeline_steps GROUP BY state"

# While a step is generating, its next_attempt_at is its lease expiry (see CLAIM), so one range covers both.
DUE_CALLS: Final = """
SELECT call_id, MIN(next_attempt_at) AS due
FROM (SELECT call_id, next_attempt_at FROM pipeline_steps
      WHERE state IN ('pending', 'generating') AND next_attempt_at <= :until
      ORDER BY next_attempt_at LIMIT :limit * 16) AS open_steps
GROUP BY call_id
ORDER BY due, call_id
LIMIT :limit
"""

DELETE_CHUNKS: Final = "DELETE FROM pipeline_index_chunks WHERE call_id = :call_id AND key = :key"
INSERT_CHUNK: Final = "INSERT INTO pipeline_index_chunks (call_id, key, seq, text) VALUES (:call_id, :key, :seq, :text)"
SELECT_CHUNKS: Final = "SELECT key, seq, text FROM pipeline_index_chunks WHERE call_id = :call_id ORDER BY key, seq"


def schema(dialect: str) -> list[str]:
    if dialect == "sqlite":
        pk = "INTEGER PRIMARY KEY AUTOINCREMENT"
    else:
        pk = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
    text = _SCHEMA.replace("{autoincrement_pk}", pk)
    return [s.strip() for s in text.split(";") if s.strip()]


def claim(dialect: str) -> str:
    return CLAIM.replace("{lock}", "FOR UPDATE OF s SKIP LOCKED" if dialect == "postgres" else "")


def reap(dialect: str) -> str:
    return REAP_EXPIRED.replace("{lock}", "FOR UPDATE SKIP LOCKED" if dialect == "postgres" else "")


def fail_corrupt(dialect: str) -> list[str]:
    """The statements that fail open steps whose ``next_attempt_at`` or ``lease_expires_at`` is not a time."""
    out = []
    for col, states in (("next_attempt_at", "state IN ('pending', 'generating')"),
                        ("lease_expires_at", "state = 'generating'")):  # fmt: skip
        if dialect == "sqlite":
            # Text and blobs compare above every number, so ">= 9e999" (infinity) catches them and +inf.
            bad, show = f"({col} >= 9e999 OR {col} <= -9e999)", f"quote({col})"
        else:
            bad, show = f"{col} IN ('NaN', 'Infinity', '-Infinity')", f"quote_literal({col})"
        out.append(FAIL_CORRUPT.replace("{col}", col).replace("{states}", states)
                   .replace("{bad}", bad).replace("{show}", show))  # fmt: skip
    return out


_PARAM = re.compile(r"(?<![:\w]):([a-z_]+)\b")


def to_pyformat(sql: str) -> str:
    """``:name`` -> ``%(name)s`` for psycopg."""
    return _PARAM.sub(r"%(\1)s", sql)
