"""The SQLite driver that runs statements on the event loop's thread (models/inline_sqlite.py)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from models.db import make_engine, make_sessionmaker


async def engine_with_table(path: Path) -> tuple[AsyncEngine, async_sessionmaker[AsyncSession]]:
    """An engine on a new SQLite file holding one table ``t (v INTEGER)``."""
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    sessions = make_sessionmaker(engine)
    async with sessions() as session, session.begin():
        await session.execute(text("CREATE TABLE t (v INTEGER)"))
    return engine, sessions


async def test_a_writer_in_another_connection_is_waited_for_without_blocking_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    engine, sessions = await engine_with_table(path)

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


async def test_concurrent_transactions_commit_together_yet_each_alone(tmp_path: Path) -> None:
    path = tmp_path / "group.db"
    engine, sessions = await engine_with_table(path)
    async with sessions() as session:
        connection = await session.connection()
        shared = (await connection.get_raw_connection()).driver_connection._conn
    commits: list[str] = []
    shared.set_trace_callback(lambda sql: commits.append(sql) if sql.strip().upper() == "COMMIT" else None)
    outside = sqlite3.connect(path)  # what another process sees: only what was really committed

    async def write(v: int) -> str:
        try:
            async with sessions() as session, session.begin():
                await session.execute(text("INSERT INTO t VALUES (:v)"), {"v": v})
                await asyncio.sleep(0)  # let the others queue behind this transaction
                if v % 5 == 0:
                    raise RuntimeError("this one fails")
        except RuntimeError:
            return "rolled back"
        # commit() returned: the row is durable, visible to another connection
        seen = outside.execute("SELECT count(*) FROM t WHERE v = ?", (v,)).fetchone()[0]
        return "visible" if seen == 1 else "not yet committed"

    results = await asyncio.gather(*(write(v) for v in range(1, 41)))
    assert results.count("rolled back") == 8
    assert results.count("visible") == 32
    rows = [r[0] for r in outside.execute("SELECT v FROM t ORDER BY v")]
    assert rows == [v for v in range(1, 41) if v % 5]  # the failed ones left nothing, the rest all landed
    assert 1 <= len(commits) < 20  # 40 transactions, a few real COMMITs
    outside.close()
    await engine.dispose()
