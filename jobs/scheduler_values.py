"""The scheduler's values (jobs/scheduler.py): what the service layer's hooks take and give, the plan's
entries, the work queued for the fire workers, and the figures a run of the scheduler keeps."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Literal, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from jobs.cron import CronExpression
from jobs.schedule_time import Missed

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


# -- the scheduler's own ----------------------------------------------------------------------------------


@dataclass(eq=False)
class Entry:
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
class Work:
    kind: Literal["fire", "missed"]
    schedule_id: str
    slot: datetime
    coalesced: int = 0
    catch_up: bool = False
    expected: datetime | None = None
    missed: Missed | None = None


def samples() -> deque[float]:
    return deque(maxlen=100_000)


@dataclass
class SchedulerStats:
    fired: int = 0
    duplicates: int = 0  # IntegrityError on (schedule_id, scheduled_for): the slot already had its run
    skipped: int = 0  # the row was gone, paused or already past the slot
    missed_events: int = 0
    errors: int = 0
    load_seconds: float = 0.0
    dispatch_ms: deque[float] = field(default_factory=samples)  # timer callback minus the slot
    start_ms: deque[float] = field(default_factory=samples)  # fire transaction start minus the slot
    commit_ms: deque[float] = field(default_factory=samples)  # run committed minus the slot
