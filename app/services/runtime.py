"""The process's shared resources: settings, database engine, sessions, secret box.

Built on first use (never at import: granian imports the app once, then forks workers).
Tests build their own ``Runtime`` and install it with ``set_runtime``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.crypto import SecretBox, secret_box_for
from app.settings import Settings, get_settings
from models.db import make_engine, make_read_engine, make_sessionmaker, session_scope
from models.inline_sqlite import WATCHDOG


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    secrets: SecretBox
    read_engine: AsyncEngine | None = None  # SQLite: reads that take no write lock (make_read_engine)
    reads: async_sessionmaker[AsyncSession] | None = None
    transactions: int = 0  # write transactions begun through ``transaction()`` (tests count them)
    # Closed with the runtime, before the engines: e.g. the channel hub's provider connection pools.
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        engine = make_engine(settings.database_url)
        read_engine = make_read_engine(settings.database_url)
        WATCHDOG.configure(settings.tx_watchdog_seconds, settings.tx_watchdog_strict)
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_sessionmaker(engine),
            secrets=secret_box_for(settings.secret_keys, settings.secret_key_file),
            read_engine=read_engine,
            reads=make_sessionmaker(read_engine) if read_engine is not None else None,
        )

    def transaction(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        self.transactions += 1
        return session_scope(self.sessions)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only, outside any write transaction: on SQLite it never takes the
        write lock (every ``transaction()`` does, BEGIN IMMEDIATE). Nothing it does is committed."""
        async with (self.reads or self.sessions)() as session:
            try:
                yield session
            finally:
                await session.rollback()

    async def close(self) -> None:
        for closer in reversed(self.closers):
            await closer()
        self.closers.clear()
        await self.engine.dispose()
        if self.read_engine is not None:
            await self.read_engine.dispose()


_runtime: Runtime | None = None


def get_runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = Runtime.build(get_settings())
    return _runtime


def set_runtime(runtime: Runtime | None) -> None:
    global _runtime
    _runtime = runtime


@contextlib.asynccontextmanager
async def transaction() -> AsyncIterator[AsyncSession]:
    async with get_runtime().transaction() as session:
        yield session
