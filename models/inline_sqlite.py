"""SQLite for the async engine without a thread hop per statement.

aiosqlite runs every statement on its own thread and hands the result back through the event loop.
Measured here (bench/webhook.py), that round trip, not SQLite, was the cost of a transaction under
load: each of a transaction's statements waited for the busy loop and for the GIL, while the
transaction held SQLite's only write lock, so everything else queued behind it.

This module gives SQLAlchemy's aiosqlite dialect (``async_creator``) a connection with aiosqlite's
async interface that runs each statement at once on the calling thread. A statement on a local file
takes microseconds. The one call that may wait is ``BEGIN IMMEDIATE`` while another process or thread
holds the write lock: it is tried without waiting first, and only if the database is busy is the
waiting done on a worker thread, so the event loop never blocks on a lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

BUSY_TIMEOUT_MS = 10_000


class InlineCursor:
    """aiosqlite.Cursor's async surface over a sqlite3 cursor."""

    def __init__(self, connection: InlineConnection) -> None:
        self._connection = connection
        self._cursor = connection._conn.cursor()

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *_: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] | None = None) -> InlineCursor:
        if sql.lstrip()[:5].upper() == "BEGIN":
            await self._connection.begin(self._cursor, sql)
        elif parameters is None:
            self._cursor.execute(sql)
        else:
            self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, seq_of_parameters: Iterable[Any]) -> InlineCursor:
        self._cursor.executemany(sql, seq_of_parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    async def nextset(self) -> None:
        return None

    async def setinputsizes(self, *_: Any) -> None:
        return None

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class _CursorContext:
    """What ``connection.cursor()`` returns in aiosqlite: entered (or awaited) to get the cursor."""

    def __init__(self, connection: InlineConnection) -> None:
        self._connection = connection

    async def __aenter__(self) -> InlineCursor:
        return InlineCursor(self._connection)

    async def __aexit__(self, *_: object) -> None:
        return None

    def __await__(self) -> Any:
        return self.__aenter__().__await__()


class InlineConnection:
    """aiosqlite.Connection's async surface over a sqlite3 connection used from one loop."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._connection = conn  # SQLAlchemy's adapter checks this before commit/rollback

    def cursor(self) -> _CursorContext:
        return _CursorContext(self)

    async def begin(self, cursor: sqlite3.Cursor, sql: str) -> None:
        self._conn.execute("PRAGMA busy_timeout=0").close()
        try:
            cursor.execute(sql)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
        finally:
            self._conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}").close()
        # Another process or thread is writing: wait for it off the loop (SQLite's busy handler sleeps).
        waiting = asyncio.ensure_future(asyncio.to_thread(cursor.execute, sql))
        try:
            await asyncio.shield(waiting)
        except asyncio.CancelledError:
            # The thread still owns the connection: let BEGIN end before anyone rolls it back.
            with contextlib.suppress(Exception):
                await waiting
            raise

    async def execute(self, sql: str, parameters: Any = None) -> InlineCursor:
        cursor = InlineCursor(self)
        return await cursor.execute(sql, parameters)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        self._conn.close()

    def stop(self) -> None:
        self._conn.close()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._conn.isolation_level = value


def creator_for(path: str) -> Any:
    """The engine's ``async_creator``: autocommit mode, because we emit BEGIN ourselves."""

    async def connect() -> InlineConnection:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False, detect_types=0)
        return InlineConnection(conn)

    return connect
