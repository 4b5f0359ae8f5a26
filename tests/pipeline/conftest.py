"""Fixtures for the pipeline tests: a real PostgreSQL from the ``pgserver`` wheel (one server per test
session, one fresh database per test), SQLite files, and a ``store`` fixture that runs a test on both."""

from __future__ import annotations

import os
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from aoai_realtime.pipeline import PostgresStepStore, SQLiteStepStore, StepStore


@pytest.fixture(scope="session")
def pg_server_uri() -> Iterator[str]:
    """The URI of a PostgreSQL server started for this test session (Unix socket, no TCP)."""
    pgserver = pytest.importorskip("pgserver")
    root = tempfile.mkdtemp(prefix="aoai-pg-")
    os.environ.setdefault("XDG_RUNTIME_DIR", root)  # platformdirs warns without it (warnings are errors)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pgserver.get_server(Path(root) / "data", cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def _with_db(uri: str, db: str) -> str:
    base, _, query = uri.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{db}?{query}"


@pytest.fixture
def pg_dsn(pg_server_uri: str) -> Iterator[str]:
    """A fresh, empty database on the session's server."""
    import psycopg

    db = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_uri, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {db}")
    try:
        yield _with_db(pg_server_uri, db)
    finally:
        with psycopg.connect(pg_server_uri, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "steps.db"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StepStore]:
    """An empty steps store: a SQLite file, then a real PostgreSQL database."""
    if request.param == "sqlite":
        s: StepStore = SQLiteStepStore(tmp_path / "steps.db", max_connections=8)
    else:
        pg = PostgresStepStore(request.getfixturevalue("pg_dsn"), max_connections=8)
        await pg.open()
        s = pg
    try:
        yield s
    finally:
        await s.close()
