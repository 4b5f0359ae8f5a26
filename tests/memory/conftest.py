"""Fixtures for the memory tests: both back ends behind one ``make_store`` fixture.

PostgreSQL runs from the ``pgserver`` wheel (one server per test session, listening on a Unix socket only);
each test gets its own schema, so tests never see each other's rows.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aoai_realtime.memory import HashEmbedder, PostgresStore, SQLiteStore

StoreFactory = Callable[..., Awaitable[Any]]
DIM = 32


@pytest.fixture(scope="session")
def pg_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pgserver = pytest.importorskip("pgserver")
    server = pgserver.get_server(tmp_path_factory.mktemp("pg") / "data", cleanup_mode="stop")
    # The extension lives in public; each test's schema comes first in its search_path.
    server.psql("CREATE EXTENSION IF NOT EXISTS vector SCHEMA public;")
    yield server.get_uri()
    server.cleanup()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make_store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[StoreFactory]:
    """``await make_store(dim=..., exact_limit=..., name=..., migrate_to=...)`` opens a store of the current
    back end; the same ``name`` reopens the same database. Every store is closed after the test.

    ``exact_limit`` also lowers the full-text limits, so small tests reach the large-scope code paths."""
    opened: list[Any] = []
    schema = f"t_{uuid.uuid4().hex[:12]}"
    uri = request.getfixturevalue("pg_uri") if backend == "postgres" else ""

    async def factory(
        *, dim: int = DIM, exact_limit: int | None = None, name: str = "m", migrate_to: int | None = None
    ) -> Any:
        if backend == "sqlite":
            store: Any = await SQLiteStore.open(
                tmp_path / f"{name}.db",
                dim=dim,
                exact_limit=exact_limit or 5000,
                text_exact_limit=exact_limit or 20_000,
                text_budget=100 if exact_limit else 8_000,
                migrate_to=migrate_to,
            )
        else:
            import psycopg

            sch = f"{schema}_{name}"
            async with await psycopg.AsyncConnection.connect(uri, autocommit=True) as conn:
                await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {sch}")
            sep = "&" if "?" in uri else "?"
            store = await PostgresStore.open(
                f"{uri}{sep}options=-csearch_path%3D{sch},public",
                dim=dim,
                exact_limit=exact_limit or 2_000,
                text_exact_limit=exact_limit or 5_000,
                text_budget=100 if exact_limit else 3_000,
                migrate_to=migrate_to,
                max_size=6,
            )
        opened.append(store)
        return store

    yield factory
    for s in opened:
        await s.close()


@pytest.fixture
def embedder() -> HashEmbedder:
    return HashEmbedder(DIM)
