"""Scheduler load bench (run by hand; prints figures; not a test). DESIGN §11.

    .venv/bin/python bench/schedules.py [--schedules 10000] [--speed 1440] [--workers 0]

10,000 enabled schedules on SQLite whose fires are spread evenly over one real minute: each has a
daily cron ``m h * * *`` (1,440 distinct minutes of the day) and the scheduler's clock runs 1,440x
(one simulated day per real minute), so about 167 slots fall due every second, a few every 42 ms.
The scheduler is the product's own (timers, fire workers, sync loop, service hooks that insert
each run); only the clock is scaled.

Reports: load time (rows read, plan built, timers armed), resident memory, fire lateness
(p50/p99/max) measured three ways, event-loop lag, and missed fires (schedules without their run).
Targets: p99 dispatch lateness <= 50 ms, no missed fire.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select  # noqa: E402

from app.services import agents, projects, smiths  # noqa: E402
from app.services.actors import Actor  # noqa: E402
from app.services.background import background  # noqa: E402
from app.services.runtime import Runtime  # noqa: E402
from app.services.schedule_firing import new_scheduler  # noqa: E402
from app.settings import Settings  # noqa: E402
from jobs import scheduler_fire as scheduler_module  # noqa: E402
from jobs.cron import next_fires  # noqa: E402
from jobs.scheduler import ScaledClock  # noqa: E402
from models import Run, Schedule  # noqa: E402
from models.db import migrate  # noqa: E402
from models.types import new_id, utcnow  # noqa: E402

SMITHS = 100
LEAD_S = 30.0  # real seconds before the simulated day starts: loading must finish by then


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def figures(samples: list[float]) -> str:
    if not samples:
        return "no samples"
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    median = statistics.median(ordered)
    return f"p50 {median:7.1f} ms   p99 {p99:7.1f} ms   max {ordered[-1]:7.1f} ms   (n={len(ordered)})"


async def seed(runtime: Runtime, count: int, origin: datetime) -> None:
    async with runtime.transaction() as session:
        project = await projects.ensure_default_project(session)
        admin = Actor(project_id=project.id, kind="admin", subject="bench")
        agent = await agents.create_agent(session, actor=admin, body=agents.AgentCreate(name="bench"))
        smith_ids = [(await smiths.create_smith(session, actor=admin, body=smiths.SmithCreate(
            agent_id=agent.id, name=f"s{i}"))).id for i in range(SMITHS)]
        now, rows = utcnow(), []
        for i in range(count):
            hour, minute = divmod(i % 1440, 60)
            cron = f"{minute} {hour} * * *"
            rows.append({"id": new_id("sch"), "project_id": project.id, "smith_id": smith_ids[i % SMITHS],
                         "name": f"bench {i}", "cron": cron, "timezone": "UTC",
                         "input": [{"role": "user", "content": f"tick {i}"}], "enabled": True, "grace_seconds": 3600,
                         "next_fire_at": next_fires(cron, UTC, origin, 1)[0], "created_at": now, "updated_at": now})
        await session.execute(insert(Schedule), rows)


async def loop_lag(samples: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(0.005)
        samples.append((time.perf_counter() - started - 0.005) * 1000)


async def main(args: argparse.Namespace) -> None:
    if args.batch:
        scheduler_module.FIRE_BATCH = args.batch
    data = Path(tempfile.mkdtemp(prefix="bench-schedules-"))
    url = f"sqlite+aiosqlite:///{data / 'bench.db'}"
    await asyncio.to_thread(migrate, url, data)
    settings = dataclasses.replace(Settings.from_env(), data_dir=data, database_url=url, secret_keys=("bench",),
                                   admin_token="", admin_password="")
    runtime = Runtime.build(settings)
    clock = ScaledClock(origin=time.time() + LEAD_S, speed=args.speed)
    origin = datetime.fromtimestamp(clock.origin, UTC)
    seeded = time.perf_counter()
    await seed(runtime, args.schedules, origin)
    print(f"seeded {args.schedules} schedules in {time.perf_counter() - seeded:.1f}s ({data})")

    rss_before = rss_mb()
    options = {"fire_workers": args.fire_workers} if args.fire_workers else {}
    scheduler = new_scheduler(runtime.sessions, clock=clock, name="bench", database_url=url, **options)
    await scheduler.start()
    print(f"load: {scheduler.stats.load_seconds:.2f}s; resident memory {rss_before:.0f} MB -> {rss_mb():.0f} MB "
          f"(+{rss_mb() - rss_before:.0f} MB for the plan and timers)")
    if time.time() > clock.origin:
        print("WARNING: loading took longer than the lead time; early slots were caught up, not timed")

    day_s = 86_400 / args.speed
    lag: list[float] = []
    stop = asyncio.Event()
    probe = asyncio.create_task(loop_lag(lag, stop))
    async with background(runtime, workers=args.workers, polling=False, delivery=False, scheduler=False) \
            if args.workers else _nothing():
        await asyncio.sleep(clock.origin - time.time() + day_s + 5)  # the whole simulated day, then settle
        stop.set()
        await probe
        stats = scheduler.stats
        await scheduler.stop()

    async with runtime.sessions() as session:
        fired = (await session.execute(select(func.count(func.distinct(Run.schedule_id))).where(
            Run.scheduled_for > origin, Run.scheduled_for <= datetime.fromtimestamp(clock.origin + 86_400, UTC),
        ))).scalar_one()
        total = (await session.execute(select(func.count()).select_from(Run))).scalar_one()
    await runtime.close()

    print(f"fires over {day_s:.0f}s: {stats.fired} fired, {stats.duplicates} duplicates, {stats.errors} errors, "
          f"{stats.missed_events} missed events; runs in the table: {total}")
    print(f"missed fires (schedules with no run for their slot): {args.schedules - fired}")
    print(f"dispatch lateness (timer callback - slot):      {figures(list(stats.dispatch_ms))}")
    print(f"start lateness (fire transaction begins - slot): {figures(list(stats.start_ms))}")
    print(f"commit lateness (run committed - slot):          {figures(list(stats.commit_ms))}")
    print(f"event-loop lag (5 ms sleep overshoot):           {figures(lag)}")


class _nothing:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schedules", type=int, default=10_000)
    parser.add_argument("--speed", type=float, default=1440.0, help="simulated seconds per real second")
    parser.add_argument("--workers", type=int, default=0, help="also run this many run workers in-process")
    parser.add_argument("--batch", type=int, default=0, help="override jobs.scheduler_fire.FIRE_BATCH")
    parser.add_argument("--fire-workers", type=int, default=0, help="override the scheduler's fire workers")
    asyncio.run(main(parser.parse_args()))
