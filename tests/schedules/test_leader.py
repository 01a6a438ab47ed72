"""Two schedulers on one database: only the leader fires; when it stops, the other takes over
within seconds (SCH-2; DESIGN §1 "exactly one holds the scheduler"). SQLite and PostgreSQL.

The clock is scaled (one simulated minute per real second), so ``* * * * *`` fires every second
through the real timers (APScheduler), the real lock (``jobs.leader``) and the real sync loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from collections.abc import Awaitable, Callable

from app.services.actors import Actor
from app.services.runtime import Runtime
from app.services.schedule_firing import new_scheduler
from jobs.leader import lead_forever
from jobs.scheduler import ScaledClock
from tests.schedules.conftest import meta, new_schedule, runs_of


async def _wait_for(condition: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> float:
    started = time.monotonic()
    while True:
        if await condition():
            return time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_only_the_leader_fires_and_the_other_takes_over(runtime: Runtime, admin: Actor,
                                                              smith_id: str) -> None:  # SCH-2
    clock = ScaledClock(origin=time.time(), speed=60)
    schedules = [await new_schedule(runtime, admin, smith_id, "* * * * *", now=clock.now()) for _ in range(2)]
    pair = {name: new_scheduler(runtime.sessions, clock=clock, name=name, database_url=runtime.settings.database_url,
                                freeze_gc=False, sync_interval_s=0.2)
            for name in ("a", "b")}
    tasks = {name: asyncio.create_task(lead_forever(runtime.engine, runtime.settings.data_dir, "scheduler",
                                                    s.run, retry_s=0.2))
             for name, s in pair.items()}

    async def fired_by() -> Counter[str]:
        runs = [r for s in schedules for r in await runs_of(runtime, s)]
        return Counter(meta(r)["fired_by"] for r in runs)

    try:
        async def some_fired() -> bool:
            return sum((await fired_by()).values()) >= 6

        await _wait_for(some_fired, 20, "six fires")
        leading = [name for name, s in pair.items() if s.running]
        assert len(leading) == 1, leading
        first = leading[0]
        second = "b" if first == "a" else "a"
        assert set(await fired_by()) == {first}

        # The leader stops (its task ends, the lock is let go): the other leads within seconds.
        tasks[first].cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tasks[first]
        async def took_over() -> bool:
            return pair[second].running

        took = await _wait_for(took_over, 10, "the takeover")
        assert took < 3, took
        before = (await fired_by())[second]

        async def new_leader_fires() -> bool:
            return (await fired_by())[second] >= before + 4

        await _wait_for(new_leader_fires, 20, "fires by the new leader")
    finally:
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)

    counts = await fired_by()
    print(f"\nleader test: {first} fired {counts[first]}, then {second} fired {counts[second]}; "
          f"takeover in {took:.2f}s")
    # Nothing fired twice, and the lock (not just the unique key) kept it so: no duplicate attempt.
    assert sum(s.stats.duplicates for s in pair.values()) == 0
    for schedule_id in schedules:
        runs = await runs_of(runtime, schedule_id)
        assert len({r.scheduled_for for r in runs}) == len(runs)
        by = [meta(r)["fired_by"] for r in runs]
        assert by == sorted(by, key=lambda name: name == second)  # first's fires, then second's: never mixed
        gaps = [(b.scheduled_for - a.scheduled_for).total_seconds() for a, b in itertools.pairwise(runs)]
        coalesced = sum(meta(r)["coalesced"] for r in runs)
        # Every minute is accounted for: fired, or folded into the takeover's catch-up run.
        assert sum(g / 60 - 1 for g in gaps) == coalesced
