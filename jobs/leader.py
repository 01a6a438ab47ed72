"""Leader election for work exactly one process may do (long polling a bot, the scheduler).

PostgreSQL: a session-level advisory lock held on a dedicated connection for the leader's whole
life; if the process dies, the connection closes and the lock is free. SQLite: a file lock under
the data directory (released by the OS when the process dies).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from filelock import FileLock, Timeout
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("ingram.leader")


def lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"ingram:{name}".encode()).digest()[:8], "big", signed=True)


@contextlib.asynccontextmanager
async def try_lead(engine: AsyncEngine, data_dir: Path, name: str) -> AsyncIterator[bool]:
    """Yields True while this process holds the named lock, False when another does."""
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            got = (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_key(name)})).scalar()
            await conn.commit()
            try:
                yield bool(got)
            finally:
                if got:
                    with contextlib.suppress(Exception):
                        await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key(name)})
                        await conn.commit()
        return
    data_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once per election, microseconds
    lock = FileLock(str(data_dir / f"{name}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


async def lead_forever(engine: AsyncEngine, data_dir: Path, name: str,
                       work: Callable[[], Awaitable[None]], *, retry_s: float = 3.0) -> None:
    """Retry the lock every ``retry_s``; while held, run ``work`` (which runs until cancelled)."""
    while True:
        async with try_lead(engine, data_dir, name) as leading:
            if leading:
                log.info("leading %s", name)
                await work()
        await asyncio.sleep(retry_s)
