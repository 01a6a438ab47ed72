"""The scheduler's fire workers (a mixin of ``jobs.scheduler.Scheduler``): queued slots go out in batches,
one transaction each through the service layer's hooks; a slot fired elsewhere is counted, never doubled."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from jobs.cron import next_fires
from jobs.db_thread import DatabaseThread, Sessions
from jobs.schedule_time import Clock
from jobs.scheduler_values import Entry, FireRequest, FireResult, ScheduleHooks, SchedulerStats, Work
from models import Run
from models.db import session_scope

log = logging.getLogger("ingram.scheduler")
T = TypeVar("T")

# Fires already queued go out together, one transaction and one multi-row INSERT per table: on SQLite
# each statement is a round trip to aiosqlite's thread, the main cost of a fire.
FIRE_BATCH = 100


class FireWorkers:
    """Firing: what ``Scheduler`` does with the slots its timers queue."""

    name: str
    clock: Clock
    hooks: ScheduleHooks
    sessions: Sessions
    stats: SchedulerStats
    _queue: asyncio.Queue[Work]
    _queued: set[tuple[str, datetime]]
    _entries: dict[str, Entry]
    _firing: DatabaseThread | None

    if TYPE_CHECKING:  # the plan's side, in jobs.scheduler
        def _retry_later(self, schedule_id: str, first_unhandled: datetime) -> None: ...
        def _replan(self, entry: Entry, first_unhandled: datetime | None) -> None: ...
        def _forget(self, schedule_id: str) -> None: ...
        def _set_slot(self, entry: Entry, slot: datetime, coalesced: int, *, catch_up: bool) -> None: ...
        async def _reload(self, schedule_id: str) -> None: ...

    # firing

    async def _worker(self) -> None:
        while True:
            items = [await self._queue.get()]
            while len(items) < FIRE_BATCH:
                try:
                    items.append(self._queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            fires: list[FireRequest] = []
            try:
                for work in items:
                    if work.kind == "missed":
                        await self._record_missed(work)
                        continue
                    self._queued.discard((work.schedule_id, work.slot))
                    entry = self._entries.get(work.schedule_id)
                    if entry is not None and entry.slot == work.slot:  # else re-planned since
                        fires.append(FireRequest(work.schedule_id, work.slot, work.coalesced, work.catch_up))
                if fires:
                    await self._fire(fires)
            except Exception:
                # Whatever broke, these schedules must not be left planned with nothing to wake them.
                log.exception("scheduler: unexpected error while firing; retrying those schedules")
                for request in fires:
                    self._retry_later(request.schedule_id, request.slot)
            finally:
                for _ in items:
                    self._queue.task_done()

    async def fire(self, schedule_id: str, slot: datetime, *, coalesced: int = 0, catch_up: bool = False) -> str:
        """Fire one slot now. Returns fired, duplicate, handled, gone, paused or error."""
        return (await self._fire([FireRequest(schedule_id, slot, coalesced, catch_up)]))[0]

    async def _fire(self, requests: list[FireRequest]) -> list[str]:
        for request in requests:
            self._lateness(self.stats.start_ms, request)
        now = self.clock.now()

        async def transaction(sessions: Sessions) -> list[FireResult]:
            async with session_scope(sessions) as session:
                return await self.hooks.fire(session, requests=requests, now=now, fired_by=self.name)

        try:
            results = await self._transaction(transaction)
        except IntegrityError:
            if len(requests) > 1:  # one of them was fired elsewhere: the others must still go out
                return [(await self._fire([request]))[0] for request in requests]
            return [await self._integrity_error(requests[0])]
        except Exception:
            self.stats.errors += len(requests)
            log.exception("firing %d slot(s) failed; retrying", len(requests))
            for request in requests:
                self._retry_later(request.schedule_id, request.slot)
            return ["error"] * len(requests)
        for request, result in zip(requests, results, strict=True):
            self._after_fire(request, result)
        return [result.status for result in results]

    async def _transaction(self, work: Callable[[Sessions], Awaitable[T]]) -> T:
        """Every database step of the scheduler goes through here (the firing thread if any)."""
        if self._firing is None:
            return await work(self.sessions)
        return await self._firing.run(work)

    async def _integrity_error(self, request: FireRequest) -> str:
        async def lookup(sessions: Sessions) -> Any:
            async with sessions() as session:
                return (await session.execute(select(Run.id).where(
                    Run.schedule_id == request.schedule_id, Run.scheduled_for == request.slot).limit(1))).first()

        ran = await self._transaction(lookup)
        entry = self._entries.get(request.schedule_id)
        if ran is None:  # not the unique key: some other constraint; back off, never spin
            self.stats.errors += 1
            log.error("schedule %s: slot %s broke a database constraint; retrying later", request.schedule_id,
                      request.slot.isoformat())
            self._retry_later(request.schedule_id, request.slot)
            return "error"
        # The unique (schedule_id, scheduled_for) key: another scheduler already fired this slot.
        self.stats.duplicates += 1
        log.warning("schedule %s: slot %s already had its run; not firing it twice", request.schedule_id,
                    request.slot.isoformat())
        if entry is not None:
            self._replan(entry, next_fires(entry.cron, entry.zone, request.slot, 1)[0])
        return "duplicate"

    def _after_fire(self, request: FireRequest, result: FireResult) -> None:
        if result.run_id:
            self.stats.fired += 1
            self._lateness(self.stats.commit_ms, request)
        else:
            self.stats.skipped += 1
        entry = self._entries.get(request.schedule_id)
        if result.status in ("gone", "paused"):
            self._forget(request.schedule_id)
        elif entry is not None:
            entry.attempts = 0
            self._replan(entry, result.next_fire_at)

    def _lateness(self, samples: deque[float], request: FireRequest) -> None:
        real = self.clock.real_time_of(request.slot)
        if real is not None and not request.catch_up:
            samples.append((datetime.now(UTC) - real).total_seconds() * 1000)

    async def _record_missed(self, work: Work) -> None:
        entry = self._entries.get(work.schedule_id)
        if entry is None or work.missed is None or work.expected is None:
            return
        expected, missed, now = work.expected, work.missed, self.clock.now()

        async def transaction(sessions: Sessions) -> bool:
            async with session_scope(sessions) as session:
                return await self.hooks.missed(session, schedule_id=work.schedule_id, expected=expected,
                                               missed=missed, resume_at=work.slot, now=now)

        try:
            recorded = await self._transaction(transaction)
        except Exception:
            self.stats.errors += 1
            log.exception("schedule %s: recording missed fires failed; retrying", work.schedule_id)
            self._retry_later(work.schedule_id, work.expected)
            return
        if not recorded:
            await self._reload(work.schedule_id)
            return
        self.stats.missed_events += 1
        log.warning("schedule %s: %s%d fires between %s and %s were missed (older than its grace window)",
                    work.schedule_id, "at least " if work.missed.at_least else "", work.missed.count,
                    work.missed.first.isoformat(), work.missed.last.isoformat())
        if self._entries.get(work.schedule_id) is entry:
            self._set_slot(entry, work.slot, work.coalesced, catch_up=work.catch_up)
