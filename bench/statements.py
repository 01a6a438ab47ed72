"""One hot statement three ways, to see whether SQLAlchemy's public Core API could replace ``models.store.hot``
(issue 19 §5: "measure whether SQLAlchemy Core on the session's connection comes close enough to drop the
reliance on SQLAlchemy internals"). Run by hand:

    .venv/bin/python -m bench.statements [--rows 3000] [--repeats 3] [--databases sqlite,postgres]

On a fresh, migrated database it inserts ``--rows`` feed events (the statement every run step writes:
``jobs.events.append_event``), 20 per transaction, each of these ways:
  orm      ``session.execute(insert(table), row)``: the ORM session's execution path
  core     ``(await session.connection()).execute(insert(table), row)``: Core on the session's connection
           (public API; SQLAlchemy's compiled cache on)
  hot      ``models.store.hot.Hot(insert(table)).all(session, row)``: compiled once, the driver called directly
           (what the product uses; it relies on SQLAlchemy's compiler internals)
It prints the process's CPU time per statement (microseconds, the minimum and range over the repeats) and
core/hot and orm/hot. Figures only: nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.services import projects
from app.services.runtime import Runtime
from app.settings import Settings
from bench.runs import DEFAULT_POSTGRES, postgres_database, sqlite_database
from models import Event
from models.db import migrate
from models.store.hot import Hot
from models.types import new_id, utcnow

PER_TRANSACTION = 20
TABLE = Event.__table__
STATEMENT = insert(TABLE)
HOT = Hot(STATEMENT)
Way = Callable[[AsyncSession, dict[str, Any]], Awaitable[Any]]


async def by_orm(session: AsyncSession, row: dict[str, Any]) -> None:
    await session.execute(STATEMENT, row)


async def by_core(session: AsyncSession, row: dict[str, Any]) -> None:
    await (await session.connection()).execute(STATEMENT, row)


async def by_hot(session: AsyncSession, row: dict[str, Any]) -> None:
    await HOT.all(session, row)


WAYS: dict[str, Way] = {"orm": by_orm, "core": by_core, "hot": by_hot}


def event_row(project_id: str, index: int) -> dict[str, Any]:
    return {"id": new_id("evt"), "project_id": project_id, "type": "bench.step", "data": {"n": index},
            "run_id": None, "smith_id": None, "deployment_id": None, "created_at": utcnow()}


async def cpu_per_statement(runtime: Runtime, project_id: str, way: Way, rows: int) -> float:
    """Microseconds of this process's CPU per statement, transactions included."""
    started = time.process_time()
    for first in range(0, rows, PER_TRANSACTION):
        async with runtime.transaction() as session:
            for index in range(first, min(first + PER_TRANSACTION, rows)):
                await way(session, event_row(project_id, index))
    return (time.process_time() - started) / rows * 1e6


async def measure(url: str, data_dir: Path, rows: int, repeats: int) -> dict[str, list[float]]:
    settings = dataclasses.replace(Settings.from_env(), data_dir=data_dir, database_url=url,
                                   secret_keys=("bench-key",), admin_token="", admin_password="")
    runtime = Runtime.build(settings)
    try:
        async with runtime.transaction() as session:
            project = await projects.ensure_default_project(session)
        figures: dict[str, list[float]] = {name: [] for name in WAYS}
        for way in WAYS.values():  # a warm-up each: compiled caches and plans built
            await cpu_per_statement(runtime, project.id, way, PER_TRANSACTION * 5)
        for _ in range(repeats):  # interleaved, so a noisy moment hits every way alike
            for name, way in WAYS.items():
                figures[name].append(await cpu_per_statement(runtime, project.id, way, rows))
        return figures
    finally:
        await runtime.close()


def show(database: str, figures: dict[str, list[float]]) -> None:
    best = {name: min(values) for name, values in figures.items()}
    print(f"== {database}: CPU per statement (us), best of {len(figures['hot'])} [range]")
    for name, values in figures.items():
        print(f"  {name:5} {best[name]:7.1f}  [{min(values):.1f}-{max(values):.1f}]")
    print(f"  core/hot {best['core'] / best['hot']:.2f}x   orm/hot {best['orm'] / best['hot']:.2f}x", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--databases", default="sqlite,postgres")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; {args.rows} inserts, "
          f"{PER_TRANSACTION} per transaction", flush=True)
    template_dir = Path(tempfile.mkdtemp(prefix="bench-statements-"))
    try:
        for database in args.databases.split(","):
            if database == "sqlite":
                migrate(f"sqlite+aiosqlite:///{template_dir / 'template.db'}", template_dir)
                context = sqlite_database(template_dir / "template.db")
            else:
                context = postgres_database(os.environ.get("IC_BENCH_POSTGRES_URL", DEFAULT_POSTGRES))
            with context as (url, data_dir):
                show(database, asyncio.run(measure(url, data_dir, args.rows, args.repeats)))
    finally:
        shutil.rmtree(template_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
