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

Group commit (``GroupWriter``): the engine's pooled connections are facades over one sqlite3
connection; their transactions run one after the other as savepoints of one real transaction that
commits once nobody waits for the connection. Each transaction still commits or rolls back on its
own, and its ``commit()`` returns only once the real COMMIT is done; a burst of transactions shares
one WAL write instead of paying one each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

BUSY_TIMEOUT_MS = 10_000

log = logging.getLogger("ingram.db")


class Watchdog:
    """Transactions that hold the writer longer than ``bound_s``: a provider call (or any other
    network wait) inside a transaction stalls every other transaction of the process behind it.
    Each is logged; in strict mode (the test suite) it is also recorded, and the suite fails on it,
    so "no provider call while a transaction is open" is enforced rather than remembered."""

    def __init__(self) -> None:
        self.bound_s = 2.0
        self.strict = False
        self.violations: list[str] = []

    def configure(self, bound_s: float, strict: bool) -> None:
        self.bound_s, self.strict = bound_s, strict

    def held(self, seconds: float, task: asyncio.Task[Any] | None) -> None:
        coro = task.get_coro() if task is not None else None
        where = getattr(coro, "__qualname__", None) or (task.get_name() if task is not None else "?")
        log.warning("a transaction held the SQLite writer for %.2f s (bound %.2f s), in %s: no network "
                    "call belongs inside a transaction", seconds, self.bound_s, where)
        if self.strict:
            self.violations.append(f"{seconds:.2f} s in {where}")

    def take(self) -> list[str]:
        found, self.violations = self.violations, []
        return found


WATCHDOG = Watchdog()  # one per process, configured from the settings by app.services.runtime


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
        elif self._connection.skips(sql):
            return self
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


class GroupWriter:
    """One sqlite3 connection shared by the engine's pooled connections, with group commit.

    The pool hands out several ``InlineConnection`` facades over this one connection. Their
    transactions run one at a time (a FIFO lock, as the single pooled connection did before), each
    inside a savepoint of one real transaction, so each still commits or rolls back alone. The real
    COMMIT, SQLite's costly part (the WAL write), happens once no transaction waits, or when the
    group reaches ``MAX_UNITS`` or ``MAX_AGE_S``. A facade's ``commit()`` returns only after that
    COMMIT: whoever answers a webhook or calls a provider after committing acts on durable data.
    """

    MAX_UNITS = 64
    MAX_AGE_S = 0.05
    LOCK_TIMEOUT_S = 60.0

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.lock = asyncio.Lock()
        self.waiting = 0  # transactions queued for the lock
        self.in_transaction = False
        self.started = 0.0
        self.units = 0
        self.durable: list[asyncio.Future[None]] = []
        self.facades = 0
        self.transactions = 0  # turns taken on the lock (write transactions begun): tests count them
        self.held_since = 0.0
        self.holder: asyncio.Task[Any] | None = None

    async def acquire(self) -> None:
        self.waiting += 1
        try:
            async with asyncio.timeout(self.LOCK_TIMEOUT_S):
                await self.lock.acquire()
        except TimeoutError:
            raise sqlite3.OperationalError("database is locked (waited for the connection)") from None
        finally:
            self.waiting -= 1
        self.transactions += 1
        self.held_since, self.holder = asyncio.get_running_loop().time(), asyncio.current_task()

    def release(self) -> None:
        loop = asyncio.get_running_loop()
        held = loop.time() - self.held_since
        if held > WATCHDOG.bound_s:
            WATCHDOG.held(held, self.holder)
        self.holder = None
        self.lock.release()
        loop.call_soon(self.commit_if_idle)

    def commit_if_idle(self) -> None:
        if self.in_transaction and not self.lock.locked() and not self.waiting:
            self.commit_group()

    def group_full(self) -> bool:
        return self.in_transaction and (self.units >= self.MAX_UNITS or
                                        asyncio.get_running_loop().time() - self.started > self.MAX_AGE_S)

    def commit_group(self) -> None:
        durable, self.durable = self.durable, []
        self.in_transaction, self.units = False, 0
        try:
            self.conn.commit()
        except BaseException as exc:
            with contextlib.suppress(Exception):
                self.conn.rollback()
            for future in durable:
                if not future.done():
                    future.set_exception(exc)
            return
        for future in durable:
            if not future.done():
                future.set_result(None)


class InlineConnection:
    """aiosqlite.Connection's async surface over the engine's shared sqlite3 connection."""

    def __init__(self, writer: GroupWriter) -> None:
        self._writer = writer
        self._conn = writer.conn
        self._connection = writer.conn  # SQLAlchemy's adapter checks this before commit/rollback
        self._active = False  # inside this facade's transaction (its savepoint)
        self._first = writer.facades == 0  # the connection's PRAGMAs run once, from the first facade
        writer.facades += 1

    def cursor(self) -> _CursorContext:
        return _CursorContext(self)

    def skips(self, sql: str) -> bool:
        """Later facades skip the connect-time PRAGMAs: the shared connection has them already, and
        some may not change inside the open group transaction."""
        return not self._first and sql.lstrip()[:6].upper() == "PRAGMA"

    async def begin_immediate(self) -> None:
        """``BEGIN IMMEDIATE`` without a statement's round trip through the engine."""
        cursor = self._conn.cursor()
        try:
            await self.begin(cursor, "BEGIN IMMEDIATE")
        finally:
            cursor.close()

    async def begin(self, cursor: sqlite3.Cursor, sql: str) -> None:
        writer = self._writer
        await writer.acquire()
        try:
            if writer.group_full():
                writer.commit_group()
            if not writer.in_transaction:
                await self._begin_for_real(cursor, sql)
                writer.in_transaction, writer.started = True, asyncio.get_running_loop().time()
            self._conn.execute("SAVEPOINT ic_unit").close()
        except BaseException:
            writer.release()
            raise
        self._active = True

    async def _begin_for_real(self, cursor: sqlite3.Cursor, sql: str) -> None:
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
        if not self._active:
            return
        writer = self._writer
        self._active = False
        try:
            self._conn.execute("RELEASE ic_unit").close()
        except BaseException:
            self._roll_back_unit()
            raise
        durable = asyncio.get_running_loop().create_future()
        writer.durable.append(durable)
        writer.units += 1
        if writer.group_full():
            writer.commit_group()
        writer.release()
        await durable  # the group's COMMIT: raises if it failed

    async def rollback(self) -> None:
        if self._active:
            self._active = False
            self._roll_back_unit()

    def _roll_back_unit(self) -> None:
        """Undo this transaction's savepoint (the group's other work stays) and hand the lock on."""
        try:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK TO ic_unit").close()
                self._conn.execute("RELEASE ic_unit").close()
        finally:
            self._writer.release()

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        writer = self._writer
        if self._active:  # closed mid-transaction (invalidated): its work is undone, the group's kept
            self._active = False
            self._roll_back_unit()
        writer.facades -= 1
        if writer.facades == 0:
            if writer.in_transaction:
                writer.commit_group()
            self._conn.close()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._conn.isolation_level = value


def creator_for(path: str, *, writers: list[GroupWriter] | None = None) -> Any:
    """The engine's ``async_creator``: facades over one shared connection, in autocommit mode
    because we emit BEGIN ourselves. A new connection once every facade was closed (dispose).
    ``writers`` (optional) receives the current writer, so a caller can watch it (tests count its
    transactions)."""
    writers = writers if writers is not None else []

    async def connect() -> InlineConnection:
        if not writers or writers[0].facades == 0:
            conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   check_same_thread=False, detect_types=0)
            writers[:] = [GroupWriter(conn)]
        return InlineConnection(writers[0])

    return connect
