"""Several processes, one PostgreSQL database: exactly one run per (schedule, slot) (SCH-2, DESIGN §1).

Three ``python -m app.worker`` processes (run workers + the scheduler, as every server process
runs them) share a fresh database. Real cron minutes would make this test take hours, so every
process reads the same simulated clock (``IC_TEST_SCHEDULER_CLOCK``: one simulated minute per real
second, counted from a shared origin), and five ``* * * * *`` schedules fire five runs a second.
Nothing else is simulated: the advisory lock, the timers, the sync loop, the unique
``(schedule_id, scheduled_for)`` key and the run workers are the product's own.

While it runs, the leader is SIGKILLed twice (a replacement process joins after the first kill).
The checks: at least 100 fires; one run per slot; every minute of every schedule is either fired
or folded into a takeover's catch-up run; no ``schedule.missed``; the leaders' firing periods never
overlap and no process ever hit the unique key (so the lock, not the key, kept fires single);
pausing reaches the leader; every run completes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.services import agents, projects, smiths
from app.services.actors import Actor
from app.services.runtime import Runtime
from app.services.schedules import ScheduleUpdate, update_schedule
from app.settings import Settings
from jobs.scheduler import CLOCK_ENV, ScaledClock
from models import Event, Run
from models.db import migrate
from tests.conftest import create_postgres_database
from tests.schedules.conftest import meta, new_schedule

ROOT = Path(__file__).resolve().parents[2]
SPEED = 60  # one simulated minute per real second
SCHEDULES = 5
OBSERVE_S = 42
KILLS_AT_S = (12, 26)


@pytest.fixture
async def shared(tmp_path: Path) -> AsyncIterator[Runtime]:
    url, drop = create_postgres_database("ic_sched_mp")
    await asyncio.to_thread(migrate, url, tmp_path)
    settings = dataclasses.replace(Settings.from_env(), data_dir=tmp_path, database_url=url,
                                   secret_keys=("test-key",), admin_token="", admin_password="")
    runtime = Runtime.build(settings)
    yield runtime
    await runtime.close()
    drop()


def _start(runtime: Runtime, tmp_path: Path, index: int, clock: ScaledClock) -> subprocess.Popen[bytes]:
    env = {**os.environ, "IC_DATABASE_URL": runtime.settings.database_url, "IC_DATA_DIR": str(tmp_path),
           "IC_WORKERS": "2", "IC_RUN_POLL_SECONDS": "0.2", "IC_SECRET_KEY": "test-key", "IC_LOG_LEVEL": "WARNING",
           CLOCK_ENV: f"{clock.origin},{clock.speed}"}
    return subprocess.Popen([sys.executable, "-m", "app.worker"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=(tmp_path / f"worker-{index}.log").open("ab"))


async def _ready(process: subprocess.Popen[bytes]) -> None:
    assert process.stdout is not None
    line = await asyncio.to_thread(process.stdout.readline)
    assert line.strip() == b"worker ready", line


async def _leader_pid(runtime: Runtime) -> int | None:
    async with runtime.sessions() as session:
        newest = (await session.execute(select(Run).where(Run.scheduled_for.is_not(None))  # type: ignore[union-attr]
                                        .order_by(Run.created_at.desc()).limit(1))).scalar_one_or_none()
    return int(meta(newest)["fired_by"].rsplit(":", 1)[1]) if newest else None


@pytest.mark.timeout(300)
async def test_three_processes_fire_each_slot_exactly_once(shared: Runtime, tmp_path: Path) -> None:  # SCH-2
    runtime = shared
    clock = ScaledClock(origin=time.time(), speed=SPEED)
    async with runtime.transaction() as session:
        project = await projects.ensure_default_project(session)
        admin = Actor(project_id=project.id, kind="admin", subject="tests")
        agent = await agents.create_agent(session, actor=admin, body=agents.AgentCreate(name="Ticker"))
        smith = await smiths.create_smith(session, actor=admin, body=smiths.SmithCreate(agent_id=agent.id, name="s"))
    schedule_ids = [await new_schedule(runtime, admin, smith.id, "* * * * *", now=clock.now())
                    for _ in range(SCHEDULES)]

    processes = {}
    for index in range(3):
        process = _start(runtime, tmp_path, index, clock)
        processes[process.pid] = process
    try:
        await asyncio.gather(*(_ready(p) for p in processes.values()))
        started, kills = time.monotonic(), list(KILLS_AT_S)
        while time.monotonic() - started < OBSERVE_S:
            await asyncio.sleep(0.5)
            if kills and time.monotonic() - started >= kills[0]:
                kills.pop(0)
                pid = await _leader_pid(runtime)
                assert pid in processes, pid
                processes[pid].send_signal(signal.SIGKILL)
                processes[pid].wait(timeout=30)
                del processes[pid]
                if len(kills) == 1:  # a newcomer joins as a follower
                    newcomer = _start(runtime, tmp_path, 3, clock)
                    processes[newcomer.pid] = newcomer
                    await _ready(newcomer)

        # Pausing reaches the leader within its sync interval: no fire after that.
        async with runtime.transaction() as session:
            for schedule_id in schedule_ids:
                await update_schedule(session, actor=admin, smith_id=smith.id, schedule_id=schedule_id,
                                      body=ScheduleUpdate(enabled=False))
        await asyncio.sleep(3)
        async with runtime.sessions() as session:
            count = select(func.count()).select_from(Run)
            after_pause = (await session.execute(count)).scalar_one()
            await asyncio.sleep(4)  # four simulated minutes
            assert (await session.execute(count)).scalar_one() == after_pause

        deadline = time.monotonic() + 90
        while True:  # the surviving processes' workers finish every run
            async with runtime.sessions() as session:
                open_runs = (await session.execute(select(func.count()).select_from(Run).where(
                    Run.status.not_in(("completed", "failed", "cancelled"))))).scalar_one()  # type: ignore[attr-defined]
            if open_runs == 0 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert open_runs == 0
    finally:
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        for process in processes.values():
            process.wait(timeout=30)

    async with runtime.sessions() as session:
        runs = list((await session.execute(select(Run).order_by(Run.scheduled_for))).scalars())
        missed = (await session.execute(select(func.count()).select_from(Event).where(
            Event.type == "schedule.missed"))).scalar_one()
    print(f"\nmulti-process: {len(runs)} scheduled runs across {SCHEDULES} schedules, "
          f"{len({meta(r)['fired_by'] for r in runs})} leaders")
    assert len(runs) >= 100
    assert {r.status for r in runs} == {"completed"}
    assert missed == 0
    per_slot = defaultdict(int)
    for run in runs:
        per_slot[(run.schedule_id, run.scheduled_for)] += 1
        assert run.scheduled_for is not None and run.scheduled_for.second == 0
    assert set(per_slot.values()) == {1}

    for schedule_id in schedule_ids:  # every simulated minute is fired or folded into a catch-up
        own = [r for r in runs if r.schedule_id == schedule_id]
        gaps = sum((b.scheduled_for - a.scheduled_for).total_seconds() / 60 - 1  # type: ignore[operator]
                   for a, b in itertools.pairwise(own))
        assert gaps == sum(meta(r)["coalesced"] for r in own[1:]), schedule_id

    # One leader at a time: the firing periods of the processes never overlap.
    periods = defaultdict(list)
    for run in runs:
        periods[meta(run)["fired_by"]].append(run.created_at)
    spans = sorted((min(times), max(times)) for times in periods.values())
    assert len(spans) == 3, spans  # the first leader and two takeovers
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start > end, spans
    logs = await asyncio.to_thread(lambda: "".join(p.read_text() for p in tmp_path.glob("worker-*.log")))
    assert "already had its run" not in logs
