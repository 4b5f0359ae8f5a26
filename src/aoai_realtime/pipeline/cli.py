"""``aoai-realtime worker`` (run post-call steps) and ``aoai-realtime bench pipeline``."""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from ..llm.types import LLMProvider
    from .model import Pipeline
    from .store import StepStore


def register(app: typer.Typer) -> None:
    """Add ``worker`` to ``app`` (``bench pipeline`` lives in :mod:`aoai_realtime.bench.pipeline`)."""

    @app.command("worker")
    def worker(
        store: str = typer.Option(
            os.environ.get("AOAI_PIPELINE_STORE", "pipeline.db"),
            help="postgresql://... (procrastinate runner) or a SQLite file path (in-process runner). "
            "Default: $AOAI_PIPELINE_STORE or pipeline.db.",
            show_default=False,
        ),
        runner: str = typer.Option("auto", help="auto, procrastinate (PostgreSQL only) or inprocess."),
        concurrency: int = typer.Option(4, min=1, help="Steps run at once by this process."),
        poll_interval: float = typer.Option(2.0, min=0.01, help="Seconds between looks for due retries/leases."),
        llm: str = typer.Option("local", help="local (offline, no model) or azure ($AZURE_OPENAI_ENDPOINT, "
                                "$AZURE_OPENAI_API_KEY, $AZURE_OPENAI_DEPLOYMENT)."),
        status: bool = typer.Option(False, "--status", help="Print step counts and failed steps, then exit."),
    ) -> None:
        """Run post-call steps (summary, action items, index, review thread) until interrupted."""
        import sqlite3

        from ..errors import ConfigError

        try:
            asyncio.run(_worker(store, runner, concurrency, poll_interval, llm, status))
        except sqlite3.DatabaseError as exc:  # a file that is not a SQLite database, or a damaged one
            raise ConfigError(f"cannot use {store} as the steps store ({exc}); pass a SQLite file this worker "
                              "created, or a postgresql:// URL", field="store") from None


def _make_llm(name: str) -> LLMProvider:
    from ..errors import ConfigError
    from ..llm import AzureOpenAIChat, LocalLLM

    if name == "local":
        return LocalLLM()
    if name == "azure":
        try:
            return AzureOpenAIChat(
                endpoint=os.environ["AZURE_OPENAI_ENDPOINT"],
                api_key=os.environ["AZURE_OPENAI_API_KEY"],
                deployment=os.environ.get("AZURE_OPENAI_DEPLOYMENT", "gpt-4o-mini"),
            )
        except KeyError as exc:
            raise ConfigError(f"--llm azure needs ${exc.args[0]} set", field="llm") from None
    raise ConfigError(f"--llm must be local or azure, not {name!r}", field="llm")


async def open_store(target: str) -> StepStore:
    """A store for ``target``: a ``postgresql://`` / ``postgres://`` URL, or a SQLite path (``sqlite:///``
    prefix optional). PostgreSQL stores come back open."""
    from .postgres_store import PostgresStepStore
    from .sqlite_store import SQLiteStepStore

    if target.startswith(("postgresql://", "postgres://")):
        pg = PostgresStepStore(target)
        await pg.open()
        return pg
    return SQLiteStepStore(target.removeprefix("sqlite:///"))


def build_pipeline(store: StepStore, llm_name: str) -> Pipeline:
    from .steps import StoreIndexer, default_pipeline

    return default_pipeline(llm=_make_llm(llm_name), indexer=StoreIndexer(store))


async def _worker(target: str, runner: str, concurrency: int, poll: float, llm: str, status: bool) -> None:
    from ..errors import ConfigError
    from .postgres_store import PostgresStepStore
    from .procrastinate_runner import ProcrastinateRunner
    from .runner import InProcessRunner

    store = await open_store(target)
    try:
        pipeline = build_pipeline(store, llm)
        if status:
            await store.setup(pipeline)
            await _print_status(store)
            return
        use_procrastinate = runner == "procrastinate" or (runner == "auto" and isinstance(store, PostgresStepStore))
        if use_procrastinate:
            if not isinstance(store, PostgresStepStore):
                raise ConfigError("the procrastinate runner needs a postgresql:// store", field="runner")
            pr = ProcrastinateRunner(pipeline, store)
            await pr.setup()
            async with pr:
                typer.echo(f"procrastinate worker on queue {pr.queue!r}, concurrency {concurrency}", err=True)
                await pr.run_worker(concurrency=concurrency, sweep_interval=poll, fetch_interval=poll)
        elif runner in ("auto", "inprocess"):
            await store.setup(pipeline)
            async with InProcessRunner(pipeline, store, concurrency=concurrency, poll_interval=poll):
                typer.echo(f"in-process worker, concurrency {concurrency}; Ctrl-C to stop", err=True)
                await asyncio.Event().wait()
        else:
            raise ConfigError(f"--runner must be auto, procrastinate or inprocess, not {runner!r}", field="runner")
    finally:
        await store.close()


async def _print_status(store: StepStore) -> None:
    from .model import StepState

    counts = await store.state_counts()
    typer.echo("  ".join(f"{s.value}={counts.get(s, 0)}" for s in StepState))
    for row in await store.steps():
        if row.problem is not None:
            typer.echo(f"corrupt  {row.call_id}  {row.step}  {row.state.value}: {row.problem} "
                       "(a running worker marks it failed)")  # fmt: skip
        elif row.state is StepState.FAILED:
            typer.echo(f"failed  {row.call_id}  {row.step}  attempts={row.attempts}  {row.last_error}")
