"""The SQLite driver that runs statements on the event loop's thread (models/inline_sqlite.py)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

from sqlalchemy import text

from models.db import make_engine, make_sessionmaker


async def test_a_writer_in_another_connection_is_waited_for_without_blocking_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    sessions = make_sessionmaker(engine)
    async with sessions() as session, session.begin():
        await session.execute(text("CREATE TABLE t (v INTEGER)"))

    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process or thread holds the write lock
    released = threading.Event()

    def release_later() -> None:
        time.sleep(0.4)
        other.execute("INSERT INTO t VALUES (1)")
        other.execute("COMMIT")
        released.set()

    threading.Thread(target=release_later).start()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    began = time.monotonic()
    async with sessions() as session, session.begin():
        await session.execute(text("INSERT INTO t VALUES (2)"))
    waited = time.monotonic() - began
    ticking.cancel()
    assert released.is_set() and waited >= 0.35  # it waited for the other writer instead of failing
    assert ticks >= 10  # and the event loop kept running meanwhile
    async with sessions() as session:
        assert (await session.execute(text("SELECT v FROM t ORDER BY v"))).scalars().all() == [1, 2]
    other.close()
    await engine.dispose()


async def test_statements_and_rollback(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'plain.db'}")
    sessions = make_sessionmaker(engine)
    async with sessions() as session, session.begin():
        await session.execute(text("CREATE TABLE t (v INTEGER)"))
        await session.execute(text("INSERT INTO t VALUES (:v)"), [{"v": 1}, {"v": 2}])
    try:
        async with sessions() as session, session.begin():
            await session.execute(text("INSERT INTO t VALUES (3)"))
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    async with sessions() as session:
        assert (await session.execute(text("SELECT v FROM t ORDER BY v"))).scalars().all() == [1, 2]
        assert (await session.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
    await engine.dispose()
