"""Engines, sessions and migrations. Nothing connects at import time."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from filelock import FileLock
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.util import await_

from models.inline_sqlite import GroupWriter, creator_for

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same in every process of this product.
_MIGRATION_LOCK_KEY = 72_610_001


def sync_url(url: str) -> str:
    """Alembic runs synchronously: the same database through the sync driver."""
    return url.replace("sqlite+aiosqlite", "sqlite", 1)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # We emit BEGIN ourselves (below), so the driver must not (inline connections start that way).
    if dbapi_connection.isolation_level is not None:
        dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin_immediate(conn: Any) -> None:
    """Take SQLite's write lock when a transaction starts. A deferred transaction that read
    first cannot upgrade to a writer once another connection committed (SQLITE_BUSY at once,
    no waiting), which read-then-write steps such as "claim a run" or "mint a smith" would hit.
    Straight to the inline connection (models/inline_sqlite.py): running BEGIN as a statement
    through the engine cost a tenth of a short transaction."""
    await_(conn.connection.driver_connection.begin_immediate())


_WRITERS: weakref.WeakKeyDictionary[Engine, list[GroupWriter]] = weakref.WeakKeyDictionary()


def sqlite_writer(engine: AsyncEngine) -> GroupWriter | None:
    """The SQLite engine's shared writer (its lock is the write transaction), if it connected yet."""
    writers = _WRITERS.get(engine.sync_engine)
    return writers[0] if writers else None


def _sqlite_query_only(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.cursor().execute("PRAGMA query_only=ON")


def make_read_engine(url: str) -> AsyncEngine | None:
    """SQLite: an engine for reads that must not take the write lock (verifying a webhook before
    its transaction): its own connection, no BEGIN, so each statement reads the last committed state
    (WAL readers never wait for the writer). None on PostgreSQL, where a read takes no such lock."""
    if not url.startswith("sqlite"):
        return None
    engine = create_async_engine(url, async_creator=creator_for(make_url(url).database or ""), pool_size=4,
                                 max_overflow=4, pool_timeout=60)
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    event.listen(engine.sync_engine, "connect", _sqlite_query_only)
    return engine


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    if url.startswith("sqlite"):
        # One sqlite3 connection behind every pooled one (models/inline_sqlite.py): SQLite has one writer
        # anyway, and every transaction here takes the write lock (BEGIN IMMEDIATE). Transactions wait
        # for it FIFO on the event loop, handed over the moment the previous one ends (SQLite's own busy
        # handler sleeps up to 100 ms between polls), and commit together (group commit). The pool
        # holds the facades of transactions waiting for their turn or for their group's COMMIT.
        kwargs.setdefault("pool_size", 32)
        kwargs.setdefault("max_overflow", 32)
        kwargs.setdefault("pool_timeout", 60)
        writers: list[GroupWriter] = []
        engine = create_async_engine(url, async_creator=creator_for(make_url(url).database or "", writers=writers),
                                     **kwargs)
        _WRITERS[engine.sync_engine] = writers
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@contextlib.asynccontextmanager
async def session_scope(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One transaction: commit on success, roll back on any error (nothing half-written)."""
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", sync_url(url).replace("%", "%%"))
    return config


@contextlib.contextmanager
def _migration_lock(url: str, engine: Engine, data_dir: Path) -> Iterator[None]:
    """Several processes may start at once: only one migrates at a time, the rest then no-op."""
    if url.startswith("sqlite"):
        data_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(data_dir / "migrate.lock"), timeout=120):
            yield
        return
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK_KEY})
            conn.commit()


def migrate(url: str, data_dir: Path) -> None:
    """Bring the schema to head. Synchronous: call it in a thread from async code."""
    if url.startswith("sqlite"):
        data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(sync_url(url))
    try:
        with _migration_lock(url, engine, data_dir):
            command.upgrade(alembic_config(url), "head")
    finally:
        engine.dispose()
