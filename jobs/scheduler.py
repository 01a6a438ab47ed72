"""The scheduler: fires each enabled schedule's cron slots as runs (DESIGN §7, SCH-2).

The schedule row is the truth; this module keeps a plan in memory and APScheduler only wakes it.

- Plan: per enabled schedule, the next slot to fire, starting from the row's ``next_fire_at`` (the
  first slot not yet handled); what to do about slots already past is ``jobs.schedule_time``'s
  misfire policy. The leader re-reads rows whose ``updated_at`` moved every second (one small
  query) and reads them all every few minutes (deletions, writers with a skewed clock). A fire
  re-reads its row anyway, so a stale plan never fires a deleted, paused or edited schedule.
- Timers: one APScheduler ``DateTrigger`` job per schedule at its next slot, computed by
  ``jobs.cron`` (never ``CronTrigger.from_crontab``, which is not cron), with
  ``misfire_grace_time=None``: APScheduler's default of 1 s would silently drop late fires; our
  own grace policy decides what is too late. The job only queues the slot.
- Fire: a few fire workers take every slot already queued into one transaction through
  ``hooks.fire`` (the service inserts each run with ``scheduled_for`` = the slot's UTC instant,
  moves ``next_fire_at`` on, records ``schedule.fired``). The unique ``(schedule_id,
  scheduled_for)`` key turns a second fire of a slot into an IntegrityError: the batch is retried
  one fire at a time, the duplicate is counted and logged, nothing happens twice.
- Every database step runs on a thread of its own (``jobs.db_thread``: own event loop, own
  engine), so a burst's ORM work never stalls the loop that serves HTTP and runs the timers
  (DESIGN §11).
- Pause: the row holds ``enabled = false``; resuming sets ``next_fire_at`` to the next slot after
  now, so slots that passed while paused are neither fired nor reported missed.
- Leadership: ``jobs.leader`` runs ``Scheduler.run`` in one process only.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from sqlalchemy import select

from jobs.cron import CronError, TimezoneError
from jobs.db_thread import DatabaseThread, Sessions
from jobs.schedule_time import (
    CLOCK_ENV,
    Clock,
    ManualClock,
    Missed,
    Plan,
    ScaledClock,
    SystemClock,
    clock_from_env,
    parsed_cron,
    plan_next,
    zone_named,
)
from jobs.scheduler_fire import FireWorkers
from jobs.scheduler_values import Entry, FireRequest, FireResult, ScheduleHooks, SchedulerStats, Work
from models import Schedule

__all__ = ["CLOCK_ENV", "Clock", "FireRequest", "FireResult", "ManualClock", "Missed", "Plan", "ScaledClock",
           "ScheduleHooks", "Scheduler", "SystemClock", "clock_from_env", "plan_next"]

log = logging.getLogger("ingram.scheduler")
T = TypeVar("T")

SYNC_INTERVAL_S = 1.0
FULL_SYNC_INTERVAL_S = 300.0
# Each sync reads the rows stamped since the previous one began, less this margin: a transaction
# that stamped updated_at and committed a little later, or a writer whose clock is a little behind,
# is still noticed at once; later than that, the full pass catches it.
SYNC_OVERLAP = timedelta(seconds=10)
# Concurrent fire transactions. SQLite has one writer: several would only queue on its lock, and its
# busy handler sleeps up to 100 ms between tries (measured: commit p99 2 s with 4, 0.2 s with 1).
FIRE_WORKERS = {"sqlite": 1, "postgresql": 4}
RETRY_MAX_S = 30.0


_COLUMNS = (Schedule.id, Schedule.cron, Schedule.timezone, Schedule.enabled, Schedule.grace_seconds,
            Schedule.next_fire_at, Schedule.updated_at)


def _reader(stmt: Any) -> Callable[[Sessions], Awaitable[list[Any]]]:
    async def read(sessions: Sessions) -> list[Any]:
        async with sessions() as session:
            return list((await session.execute(stmt)).all())

    return read


class Scheduler(FireWorkers):
    """One leader's scheduler. ``run`` is the leader's work; tests may drive start/sync/fire directly."""

    def __init__(self, sessions: Sessions, hooks: ScheduleHooks, *, database_url: str | None = None,
                 clock: Clock | None = None, name: str | None = None, sync_interval_s: float = SYNC_INTERVAL_S,
                 fire_workers: int | None = None, freeze_gc: bool = True) -> None:
        """``database_url``: fire on a thread of its own with its own engine (production); without it
        the fire transactions use ``sessions`` on the caller's loop."""
        self.sessions = sessions
        self.database_url = database_url
        self.hooks = hooks
        self.clock = clock or SystemClock()
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.sync_interval_s = sync_interval_s
        dialect = sessions.kw["bind"].dialect.name if sessions.kw.get("bind") is not None else "postgresql"
        self.fire_workers = fire_workers or FIRE_WORKERS.get(dialect, 4)
        self.freeze_gc = freeze_gc
        self.running = False
        self._tasks: list[asyncio.Task[None]] = []
        self._retries: set[asyncio.TimerHandle] = set()
        self._aps: AsyncIOScheduler | None = None
        self._firing: DatabaseThread | None = None
        self._frozen = False
        self._reset()

    def _reset(self) -> None:
        """A fresh plan: each won leadership starts from the rows, never from what it knew before."""
        self.stats = SchedulerStats()
        self._entries: dict[str, Entry] = {}
        self._versions: dict[str, datetime] = {}
        self._last_sync: datetime | None = None
        self._queue: asyncio.Queue[Work] = asyncio.Queue()
        self._queued: set[tuple[str, datetime]] = set()

    # lifecycle

    async def run(self) -> None:
        """Lead until cancelled. A failure to start is logged and returns, so the lock is let go."""
        try:
            await self.start()
        except Exception:
            log.exception("the scheduler could not start; stepping down")
            await self.stop()
            return
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def start(self) -> None:
        started = time.perf_counter()
        self._reset()
        aps_log = logging.getLogger("apscheduler")
        if aps_log.level == logging.NOTSET:
            aps_log.setLevel(logging.WARNING)  # its INFO lines ("Running job ...") would be one per fire
        self._aps = AsyncIOScheduler(timezone=UTC, job_defaults={
            "misfire_grace_time": None, "coalesce": False, "max_instances": 1000})
        if self.database_url:
            self._firing = DatabaseThread(self.database_url, pool_size=self.fire_workers, name="schedule-firing")
            await self._firing.start()
        self.running = True
        await self.sync(full=True)  # plans every enabled schedule; queues catch-ups and misses
        self._aps.start()
        self._tasks = [asyncio.create_task(self._worker(), name=f"schedule-fire-{i}")
                       for i in range(self.fire_workers)]
        self._tasks.append(asyncio.create_task(self._sync_loop(), name="schedule-sync"))
        self.stats.load_seconds = time.perf_counter() - started
        if self.freeze_gc:
            # The plan lives as long as the leadership: keep it out of full collections, whose pause
            # is the largest source of timer lateness with many schedules (DESIGN §11).
            gc.collect()
            gc.freeze()
            self._frozen = True
        log.info("scheduler %s leading: %d enabled schedules planned in %.2fs", self.name, len(self._entries),
                 self.stats.load_seconds)

    async def stop(self) -> None:
        self.running = False
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for handle in self._retries:
            handle.cancel()
        self._retries.clear()
        if self._aps is not None and self._aps.running:
            self._aps.shutdown(wait=False)
        self._aps = None
        if self._firing is not None:
            await self._firing.stop()
            self._firing = None
        if self._frozen:
            gc.unfreeze()
            self._frozen = False

    def planned(self, schedule_id: str) -> datetime | None:
        entry = self._entries.get(schedule_id)
        return entry.slot if entry else None

    async def run_due(self) -> None:
        """Fire every planned slot the clock has reached, and wait until the work is done (tests)."""
        now = self.clock.now()
        for entry in list(self._entries.values()):
            if entry.slot is not None and entry.slot <= now:
                self._put_fire(entry)
        await self._queue.join()

    # syncing with the rows

    async def sync(self, *, full: bool = False) -> None:
        started = datetime.now(UTC)  # real time, like the writers' updated_at (not self.clock)
        stmt = select(*_COLUMNS)
        if not full and self._last_sync is not None:
            stmt = stmt.where(Schedule.updated_at > self._last_sync - SYNC_OVERLAP)
        rows = await self._transaction(_reader(stmt))
        self._last_sync = started
        for row in rows:
            if self._versions.get(row.id) == row.updated_at:
                continue
            self._versions[row.id] = row.updated_at
            self._apply(row)
        if full:
            present = {row.id for row in rows}
            for schedule_id in [s for s in self._entries if s not in present]:
                self._forget(schedule_id)
            self._versions = {k: v for k, v in self._versions.items() if k in present}

    async def _reload(self, schedule_id: str) -> None:
        rows = await self._transaction(_reader(select(*_COLUMNS).where(Schedule.id == schedule_id)))
        row = rows[0] if rows else None
        if row is None:
            self._forget(schedule_id)
            return
        self._versions[row.id] = row.updated_at
        self._apply(row)

    def _apply(self, row: Any) -> None:
        if not row.enabled:
            self._forget(row.id)
            return
        try:
            cron, zone = parsed_cron(row.cron), zone_named(row.timezone)
        except (CronError, TimezoneError) as exc:  # the service validates; a hand-edited row may not be
            log.error("schedule %s cannot fire: %s", row.id, exc)
            self._forget(row.id)
            return
        entry = self._entries.get(row.id)
        if entry is None:
            entry = self._entries[row.id] = Entry(row.id, cron, zone, row.grace_seconds)
        else:
            entry.cron, entry.zone, entry.grace_seconds = cron, zone, row.grace_seconds
        self._replan(entry, row.next_fire_at)

    async def _sync_loop(self) -> None:
        last_full = time.monotonic()
        while True:
            await asyncio.sleep(self.sync_interval_s)
            full = time.monotonic() - last_full >= FULL_SYNC_INTERVAL_S
            try:
                await self.sync(full=full)
            except Exception as exc:  # the database may be briefly away; the plan stays as it was
                log.warning("schedule sync failed: %s", exc)
                continue
            if full:
                last_full = time.monotonic()

    # planning

    def _replan(self, entry: Entry, first_unhandled: datetime | None) -> None:
        now = self.clock.now()
        try:
            plan = plan_next(entry.cron, entry.zone, entry.grace_seconds, first_unhandled, now)
        except CronError as exc:  # only near year 9999
            log.error("schedule %s has no further fire time: %s", entry.id, exc)
            self._forget(entry.id)
            return
        if plan.missed is not None and first_unhandled is not None:
            # Nothing fires until the miss is on record and next_fire_at moved past it.
            self._unschedule(entry)
            entry.slot = None
            self._queue.put_nowait(Work("missed", entry.id, plan.slot, plan.coalesced, plan.slot <= now,
                                         expected=first_unhandled, missed=plan.missed))
            return
        self._set_slot(entry, plan.slot, plan.coalesced, catch_up=plan.slot <= now)

    def _set_slot(self, entry: Entry, slot: datetime, coalesced: int, *, catch_up: bool) -> None:
        entry.slot, entry.coalesced, entry.catch_up = slot, coalesced, catch_up
        if slot <= self.clock.now():
            self._unschedule(entry)
            self._put_fire(entry)
            return
        real = self.clock.real_time_of(slot)
        if real is None or self._aps is None:
            return
        self._aps.add_job(self._due, DateTrigger(run_date=real), args=(entry.id, slot), id=entry.id,
                          replace_existing=True)
        entry.timer = True

    def _unschedule(self, entry: Entry) -> None:
        if entry.timer and self._aps is not None:
            with contextlib.suppress(JobLookupError):
                self._aps.remove_job(entry.id)
        entry.timer = False

    def _forget(self, schedule_id: str) -> None:
        entry = self._entries.pop(schedule_id, None)
        if entry is not None:
            self._unschedule(entry)

    async def _due(self, schedule_id: str, slot: datetime) -> None:
        """APScheduler's job: tiny on purpose (queue the slot and return)."""
        real = self.clock.real_time_of(slot)
        if real is not None:
            self.stats.dispatch_ms.append((datetime.now(UTC) - real).total_seconds() * 1000)
        entry = self._entries.get(schedule_id)
        if entry is not None and entry.slot == slot:
            entry.timer = False
            self._put_fire(entry)

    def _put_fire(self, entry: Entry) -> None:
        assert entry.slot is not None
        key = (entry.id, entry.slot)
        if key in self._queued:
            return
        self._queued.add(key)
        self._queue.put_nowait(Work("fire", entry.id, entry.slot, entry.coalesced, entry.catch_up))

    def _retry_later(self, schedule_id: str, first_unhandled: datetime) -> None:
        entry = self._entries.get(schedule_id)
        if entry is None or not self.running:
            return
        entry.attempts += 1
        entry.slot = None  # queued work for it is now stale
        self._unschedule(entry)
        delay = min(RETRY_MAX_S, 0.5 * 2 ** entry.attempts)

        def retry() -> None:
            self._retries.discard(handle)
            current = self._entries.get(schedule_id)
            if self.running and current is entry and entry.slot is None:
                self._replan(entry, first_unhandled)

        handle = asyncio.get_running_loop().call_later(delay, retry)
        self._retries.add(handle)
