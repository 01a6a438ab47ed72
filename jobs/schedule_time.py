"""When schedules fire: the scheduler's clocks and its misfire policy, pure (DESIGN §7, SCH-2).

``plan_next`` decides what to do about a schedule whose first unhandled slot is known: fire it on
time, coalesce the slots missed inside the grace window into one catch-up fire for the latest of
them, and count the older ones (reported as one ``schedule.missed`` event, never dropped silently).
Slots come from ``jobs.cron`` (Vixie semantics, DST rule), never from APScheduler's crontab parser.

Clocks are injectable: ``SystemClock`` in production; ``ManualClock`` (no timers: tests call
``Scheduler.run_due``); ``ScaledClock``, selected by ``IC_TEST_SCHEDULER_CLOCK="<origin epoch>,<speed>"``
(test only), reads real time at the origin and runs ``speed`` times faster after it, the same in
every process, so multi-process tests and the bench see many slots quickly.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Protocol

from jobs.cron import CronExpression, fires_between, next_fires, parse_cron, validate_timezone

log = logging.getLogger("ingram.scheduler")

CLOCK_ENV = "IC_TEST_SCHEDULER_CLOCK"
MISSED_COUNT_CAP = 100_000
_MICRO = timedelta(microseconds=1)


# -- clocks ----------------------------------------------------------------------------------------


class Clock(Protocol):
    def now(self) -> datetime:
        """The scheduler's notion of now (aware UTC)."""
        ...

    def real_time_of(self, instant: datetime) -> datetime | None:
        """When (real UTC time) this clock will show ``instant``; None: no timers, call run_due()."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def real_time_of(self, instant: datetime) -> datetime | None:
        return instant


@dataclass(frozen=True)
class ScaledClock:
    """Reads real time at ``origin`` (epoch seconds) and runs ``speed`` times faster after it."""

    origin: float
    speed: float

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.origin + (time.time() - self.origin) * self.speed, UTC)

    def real_time_of(self, instant: datetime) -> datetime | None:
        return datetime.fromtimestamp(self.origin + (instant.timestamp() - self.origin) / self.speed, UTC)


class ManualClock:
    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def set(self, instant: datetime) -> None:
        self._now = instant

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def real_time_of(self, instant: datetime) -> datetime | None:
        return None


def clock_from_env(environ: Mapping[str, str] = os.environ) -> Clock:
    raw = environ.get(CLOCK_ENV, "").strip()
    if not raw:
        return SystemClock()
    origin, _, speed = raw.partition(",")
    log.warning("scheduler clock is simulated (%s=%s): for tests only", CLOCK_ENV, raw)
    return ScaledClock(origin=float(origin), speed=float(speed or "1"))


@dataclass(frozen=True)
class Missed:
    count: int
    first: datetime
    last: datetime
    at_least: bool = False  # counting stopped at MISSED_COUNT_CAP



# -- planning (pure) -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    slot: datetime  # the slot to fire next; in the past for a catch-up
    coalesced: int = 0  # earlier slots inside the grace window folded into it
    missed: Missed | None = None  # slots older than the grace window


def plan_next(cron: CronExpression, zone: tzinfo, grace_seconds: int, first_unhandled: datetime | None,
              now: datetime) -> Plan:
    """What to do about a schedule whose first unhandled slot is ``first_unhandled`` (the misfire policy)."""
    if first_unhandled is None:
        return Plan(next_fires(cron, zone, now, 1)[0])
    if first_unhandled > now:
        return Plan(first_unhandled)
    cutoff = now - timedelta(seconds=max(grace_seconds, 0))
    start = first_unhandled - _MICRO  # fires_between excludes its start
    recent = fires_between(cron, zone, max(start, cutoff - _MICRO), now)  # at most grace/60 slots
    missed = _count_slots(cron, zone, start, cutoff - _MICRO) if start < cutoff - _MICRO else None
    if recent:
        return Plan(recent[-1], coalesced=len(recent) - 1, missed=missed)
    return Plan(next_fires(cron, zone, now, 1)[0], missed=missed)


def _count_slots(cron: CronExpression, zone: tzinfo, start: datetime, end: datetime) -> Missed | None:
    """Slots in (start, end], counted in growing chunks so a long outage costs at most the cap."""
    count, first, last, after, chunk = 0, None, None, start, 64
    while count < MISSED_COUNT_CAP:
        batch = next_fires(cron, zone, after, min(chunk, MISSED_COUNT_CAP - count))
        for instant in batch:
            if instant > end:
                return Missed(count, first, last) if first and last else None
            first = first or instant
            last = instant
            count += 1
        after, chunk = batch[-1], min(chunk * 2, 8192)
    assert first is not None and last is not None
    return Missed(count, first, last, at_least=next_fires(cron, zone, last, 1)[0] <= end)


@functools.lru_cache(maxsize=4096)
def parsed_cron(cron: str) -> CronExpression:
    return parse_cron(cron)


@functools.lru_cache(maxsize=1024)
def zone_named(name: str) -> tzinfo:
    return validate_timezone(name)
