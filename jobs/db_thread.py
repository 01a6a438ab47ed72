"""A thread with its own event loop and database engine, for bursts of ORM work (DESIGN §11).

The loop that serves HTTP (and runs the scheduler's timers) then only hands work over and gets
results back: the ORM's CPU time is spent on this thread, holding the GIL only for the
interpreter's short switch intervals, instead of stalling the serving loop for a whole batch.
Used by the scheduler for its fire transactions.

Work handed over always finishes: cancelling the caller does not cancel it, because a transaction
interrupted mid-statement can leave its connection holding SQLite's write lock. ``stop`` waits
for work in flight (at most ``STOP_WAIT_S``), then closes every connection.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from models.db import make_engine, make_sessionmaker

log = logging.getLogger("ingram.db_thread")
T = TypeVar("T")
Sessions = async_sessionmaker[AsyncSession]
STOP_WAIT_S = 30.0


class DatabaseThread:
    """Runs database work on a thread with its own event loop and engine."""

    def __init__(self, database_url: str, *, pool_size: int = 4, name: str = "database-thread") -> None:
        self._url, self._pool_size = database_url, pool_size
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sessions: Sessions | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    async def start(self) -> None:
        self._thread.start()
        await asyncio.to_thread(self._ready.wait)
        if self._sessions is None:
            raise RuntimeError(f"{self._thread.name}: could not open the database")

    def _main(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        options: dict[str, Any] = {} if self._url.startswith("sqlite") else {
            "pool_size": self._pool_size, "max_overflow": 2}
        try:
            engine = make_engine(self._url, **options)
            self._sessions = make_sessionmaker(engine)
        except Exception:
            log.exception("%s could not open the database", self._thread.name)
            loop.close()
            return
        finally:
            self._ready.set()
        try:
            loop.run_forever()
            loop.run_until_complete(_wind_down(engine))
        finally:
            loop.close()

    async def run(self, work: Callable[[Sessions], Awaitable[T]]) -> T:
        """Run ``work`` there. Cancelling the caller does not cancel it: a transaction interrupted
        mid-statement may leave its connection holding SQLite's write lock, so it always finishes
        (commits or rolls back); stop() waits for it."""
        assert self._loop is not None and self._sessions is not None
        done = asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_call(work, self._sessions), self._loop))
        done.add_done_callback(_consume)
        return await asyncio.shield(done)

    async def stop(self) -> None:
        if self._loop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            await asyncio.to_thread(self._thread.join)


async def _call(work: Callable[[Sessions], Awaitable[T]], sessions: Sessions) -> T:
    return await work(sessions)


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # read, so an abandoned failure is not reported as never retrieved


async def _wind_down(engine: AsyncEngine) -> None:
    """Let the transactions in flight finish, then close every connection."""
    pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    if pending:
        _, late = await asyncio.wait(pending, timeout=STOP_WAIT_S)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
    await engine.dispose()
