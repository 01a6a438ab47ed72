"""The process's shared resources: settings, database engine, sessions, secret box.

Built on first use (never at import: granian imports the app once, then forks workers).
Tests build their own ``Runtime`` and install it with ``set_runtime``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.crypto import SecretBox, secret_box_for
from app.settings import Settings, get_settings
from models.db import make_engine, make_sessionmaker, session_scope


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    secrets: SecretBox

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        engine = make_engine(settings.database_url)
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_sessionmaker(engine),
            secrets=secret_box_for(settings.secret_keys, settings.secret_key_file),
        )

    def transaction(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        return session_scope(self.sessions)

    async def close(self) -> None:
        await self.engine.dispose()


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
