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
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Literal, Protocol, TypeVar

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from jobs.cron import CronError, CronExpression, TimezoneError, next_fires
from jobs.db_thread import DatabaseThread, Sessions
from jobs.runner import wake_workers
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
from models import Run, Schedule
from models.db import session_scope

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
# Fires already queued go out together, one transaction and one multi-row INSERT per table: on SQLite
# each statement is a round trip to aiosqlite's thread, the main cost of a fire.
FIRE_BATCH = 100
RETRY_MAX_S = 30.0


# -- what the service layer provides ------------------------------------------------------------------


@dataclass(frozen=True)
class FireRequest:
    schedule_id: str
    slot: datetime
    coalesced: int = 0  # earlier slots (inside the grace window) folded into this one
    catch_up: bool = False  # fired after downtime or delay, not on time


@dataclass(frozen=True)
class FireResult:
    run_id: str | None
    status: Literal["fired", "gone", "paused", "handled"]  # handled: the row is already past this slot
    next_fire_at: datetime | None = None  # the row's first unhandled slot afterwards


class ScheduleHooks(Protocol):
    async def fire(self, session: AsyncSession, *, requests: list[FireRequest], now: datetime,
                   fired_by: str) -> list[FireResult]:
        """One result per request, in order; each fired request's run is in ``session``."""
        ...

    async def missed(self, session: AsyncSession, *, schedule_id: str, expected: datetime, missed: Missed,
                     resume_at: datetime, now: datetime) -> bool:
        """Record the miss and move next_fire_at from ``expected`` to ``resume_at``; False if the row
        no longer says ``expected`` (someone else handled it)."""
        ...


# -- the scheduler ----------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Entry:
    id: str
    cron: CronExpression
    zone: tzinfo
    grace_seconds: int
    slot: datetime | None = None
    coalesced: int = 0
    catch_up: bool = False
    timer: bool = False
    attempts: int = 0


@dataclass(frozen=True)
class _Work:
    kind: Literal["fire", "missed"]
    schedule_id: str
    slot: datetime
    coalesced: int = 0
    catch_up: bool = False
    expected: datetime | None = None
    missed: Missed | None = None


def _samples() -> deque[float]:
    return deque(maxlen=100_000)


@dataclass
class SchedulerStats:
    fired: int = 0
    duplicates: int = 0  # IntegrityError on (schedule_id, scheduled_for): the slot already had its run
    skipped: int = 0  # the row was gone, paused or already past the slot
    missed_events: int = 0
    errors: int = 0
    load_seconds: float = 0.0
    dispatch_ms: deque[float] = field(default_factory=_samples)  # timer callback minus the slot
    start_ms: deque[float] = field(default_factory=_samples)  # fire transaction start minus the slot
    commit_ms: deque[float] = field(default_factory=_samples)  # run committed minus the slot


_COLUMNS = (Schedule.id, Schedule.cron, Schedule.timezone, Schedule.enabled, Schedule.grace_seconds,
            Schedule.next_fire_at, Schedule.updated_at)


def _reader(stmt: Any) -> Callable[[Sessions], Awaitable[list[Any]]]:
    async def read(sessions: Sessions) -> list[Any]:
        async with sessions() as session:
            return list((await session.execute(stmt)).all())

    return read


class Scheduler:
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
        self._entries: dict[str, _Entry] = {}
        self._versions: dict[str, datetime] = {}
        self._last_sync: datetime | None = None
        self._queue: asyncio.Queue[_Work] = asyncio.Queue()
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
            entry = self._entries[row.id] = _Entry(row.id, cron, zone, row.grace_seconds)
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

    def _replan(self, entry: _Entry, first_unhandled: datetime | None) -> None:
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
            self._queue.put_nowait(_Work("missed", entry.id, plan.slot, plan.coalesced, plan.slot <= now,
                                         expected=first_unhandled, missed=plan.missed))
            return
        self._set_slot(entry, plan.slot, plan.coalesced, catch_up=plan.slot <= now)

    def _set_slot(self, entry: _Entry, slot: datetime, coalesced: int, *, catch_up: bool) -> None:
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

    def _unschedule(self, entry: _Entry) -> None:
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

    def _put_fire(self, entry: _Entry) -> None:
        assert entry.slot is not None
        key = (entry.id, entry.slot)
        if key in self._queued:
            return
        self._queued.add(key)
        self._queue.put_nowait(_Work("fire", entry.id, entry.slot, entry.coalesced, entry.catch_up))

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
        if any(result.run_id for result in results):
            wake_workers()  # this process's workers; others poll
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

    async def _record_missed(self, work: _Work) -> None:
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
