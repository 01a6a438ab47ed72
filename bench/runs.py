"""Run engine benchmark: throughput and latency of runs with the built-in model. Run by hand:

    .venv/bin/python -m bench.runs [--runs 500] [--workers 1,4,8] [--databases sqlite,postgres] [--rate 0]

For each database and worker count it starts a fresh, migrated database (SQLite in a temporary
directory; PostgreSQL from IC_BENCH_POSTGRES_URL, default
postgresql+psycopg://postgres@127.0.0.1:5432/test: a new database is created, migrated and dropped),
creates an agent and a smith through the services, starts the run workers
(``app.services.background``), then enqueues N runs through ``app.services.runs.enqueue_run``, one
transaction each, each in its own thread; each commit wakes the workers (jobs.commit_hooks). The
producer and the workers share one event loop, as they do in a server process.

``--rate 0`` (the default) enqueues as fast as the producer can: a burst, so queue latency includes
the backlog. ``--rate R`` paces arrivals at R runs per second to see latency below saturation.

It prints, per database and worker count: runs per second (first enqueue -> last finish), the
enqueue rate, queue latency (enqueue -> start: run.started_at - run.created_at) and end to end
(created -> finished_at) at p50/p99, the process's CPU time per run (what a run costs, apart from
what other programs on the machine take), and how many runs did not complete. Figures only: nothing
here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import inspect
import logging
import os
import platform
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from app.services import agents, projects, runs, smiths
from app.services.actors import Actor
from app.services.background import background
from app.services.runtime import Runtime, set_runtime
from app.settings import Settings
from bench.stats import pct
from jobs.runstate import TERMINAL
from models import Run
from models.db import migrate

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@dataclasses.dataclass
class Result:
    database: str
    workers: int
    runs: int
    completed: int
    seconds: float
    enqueue_seconds: float
    queue: list[float]
    e2e: list[float]
    cpu_seconds: float

    @property
    def per_second(self) -> float:
        return self.runs / self.seconds if self.seconds else float("nan")



@contextlib.contextmanager
def sqlite_database(template: Path) -> Iterator[tuple[str, Path]]:
    directory = Path(tempfile.mkdtemp(prefix="bench-runs-sqlite-"))
    try:
        shutil.copy(template, directory / "ingram.db")
        yield f"sqlite+aiosqlite:///{directory / 'ingram.db'}", directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[tuple[str, Path]]:
    """A new database on the server of ``admin_url``, migrated, dropped afterwards."""
    url = make_url(admin_url)
    name = f"ic_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    directory = Path(tempfile.mkdtemp(prefix="bench-runs-pg-"))
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        database_url = url.set(database=name).render_as_string(hide_password=False)
        migrate(database_url, directory)
        yield database_url, directory
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.asynccontextmanager
async def quiet_background(runtime: Runtime, workers: int) -> AsyncIterator[Any]:
    """Only the run workers (and the outbox, harmless here): no bot polling, no scheduler."""
    accepted = inspect.signature(background).parameters
    extra = {k: False for k in ("polling", "scheduler") if k in accepted}
    async with background(runtime, workers=workers, **extra) as pool:
        yield pool


async def one_round(database: str, url: str, data_dir: Path, *, workers: int, count: int, rate: float) -> Result:
    settings = dataclasses.replace(Settings.from_env(), data_dir=data_dir, database_url=url,
                                   secret_keys=("bench-key",), admin_token="", admin_password="",
                                   model_provider="builtin")
    runtime = Runtime.build(settings)
    set_runtime(runtime)
    try:
        async with runtime.transaction() as session:
            project = await projects.ensure_default_project(session)
        admin = Actor(project_id=project.id, kind="admin", subject="bench")
        async with runtime.transaction() as session:
            agent = await agents.create_agent(session, actor=admin, body=agents.AgentCreate(name="Bench"))
            smith = await smiths.create_smith(session, actor=admin,
                                              body=smiths.SmithCreate(agent_id=agent.id, name="Bench"))
        sender = runs.api_sender(admin)
        async with quiet_background(runtime, workers):
            cpu_started = time.process_time()
            started = time.perf_counter()
            for index in range(count):
                if rate:
                    delay = started + index / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                async with runtime.transaction() as session:
                    await runs.enqueue_run(session, smith=smith, source="api", sender=sender,
                                           messages=[runs.InputMessage(role="user", content=f"bench run {index}")])
                if index % 20 == 19:
                    await asyncio.sleep(0)  # let the workers in even when no await above yielded
            enqueue_seconds = time.perf_counter() - started
            deadline = time.monotonic() + max(120.0, count * 2.0)
            while time.monotonic() < deadline:
                async with runtime.transaction() as session:
                    open_runs = (await session.execute(
                        select(func.count()).select_from(Run).where(Run.status.not_in(TERMINAL)))).scalar_one()
                if open_runs == 0:
                    break
                await asyncio.sleep(0.05)
            cpu_seconds = time.process_time() - cpu_started
        async with runtime.transaction() as session:
            rows = (await session.execute(select(Run.status, Run.created_at, Run.started_at, Run.finished_at))).all()
    finally:
        set_runtime(None)
        await runtime.close()
    done = [r for r in rows if r.status == "completed" and r.started_at and r.finished_at]
    first = min((r.created_at for r in rows), default=None)
    last = max((r.finished_at for r in done), default=None)
    seconds = (last - first).total_seconds() if first and last else float("nan")
    return Result(database=database, workers=workers, runs=count, completed=len(done), seconds=seconds,
                  enqueue_seconds=enqueue_seconds,
                  queue=[(r.started_at - r.created_at).total_seconds() for r in done],
                  e2e=[(r.finished_at - r.created_at).total_seconds() for r in done], cpu_seconds=cpu_seconds)


def print_table(database: str, results: list[Result], count: int, rate: float) -> None:
    arrivals = f"paced at {rate:g}/s" if rate else "burst"
    print(f"\n{database}: {count} runs ({arrivals}), built-in model, one thread per run")
    header = (f"{'workers':>7}  {'runs/s':>8}  {'enqueue/s':>9}  {'queue p50':>10}  {'queue p99':>10}  "
              f"{'e2e p50':>9}  {'e2e p99':>9}  {'cpu/run':>8}  {'not done':>8}")
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r.workers:>7}  {r.per_second:>8.1f}  {r.runs / r.enqueue_seconds:>9.1f}  "
              f"{pct(r.queue, 50):>8.0f}ms  {pct(r.queue, 99):>8.0f}ms  {pct(r.e2e, 50):>7.0f}ms  "
              f"{pct(r.e2e, 99):>7.0f}ms  {r.cpu_seconds / r.runs * 1000:>6.1f}ms  {r.runs - r.completed:>8}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--workers", default="1,4,8", help="comma-separated worker counts")
    parser.add_argument("--databases", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--rate", type=float, default=0.0, help="arrivals per second; 0 = burst")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]
    databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    unknown = set(databases) - {"sqlite", "postgres"}
    if unknown:
        raise SystemExit(f"unknown database {sorted(unknown)}: use sqlite and/or postgres")
    postgres_url = os.environ.get("IC_BENCH_POSTGRES_URL", DEFAULT_POSTGRES)
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}; PostgreSQL admin URL "
          f"{make_url(postgres_url).render_as_string(hide_password=True)}")

    template_dir = Path(tempfile.mkdtemp(prefix="bench-runs-template-"))
    try:
        if "sqlite" in databases:
            migrate(f"sqlite+aiosqlite:///{template_dir / 'template.db'}", template_dir)
        for database in databases:
            results = []
            for workers in worker_counts:
                context = (sqlite_database(template_dir / "template.db") if database == "sqlite"
                           else postgres_database(postgres_url))
                with context as (url, data_dir):
                    results.append(asyncio.run(one_round(database, url, data_dir, workers=workers,
                                                         count=args.runs, rate=args.rate)))
            print_table(database, results, args.runs, args.rate)
    finally:
        shutil.rmtree(template_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
