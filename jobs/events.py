"""Appending to the project's event feed and to a run's own event log.

The lowest layer that writes events, so that workers (here) and services (above) share one
implementation. Callers pass public fields only: never a secret.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models import Event, RunEvent
from models.types import new_id, utcnow

# Core inserts of prebuilt statements: events are written on every step, and building ORM objects
# (and statements) for them cost more than the inserts themselves.
_INSERT_EVENT = insert(Event)
_INSERT_RUN_EVENT = insert(RunEvent)


async def append_event(
    session: AsyncSession, *, project_id: str, type: str, data: dict[str, Any] | None = None,
    run_id: str | None = None, smith_id: str | None = None, deployment_id: str | None = None,
) -> str:
    event_id = new_id("evt")
    await session.execute(_INSERT_EVENT, {
        "id": event_id, "project_id": project_id, "type": type, "data": data or {}, "run_id": run_id,
        "smith_id": smith_id, "deployment_id": deployment_id, "created_at": utcnow()})
    return event_id


async def append_run_event(
    session: AsyncSession, *, run_id: str, type: str, data: dict[str, Any] | None = None, first: bool = False
) -> str:
    """The run's own timeline; ``seq`` is unique per run, so two writers cannot interleave silently.
    ``first`` skips the lookup for a run created in this transaction; later events of the same run in
    the same transaction count on from the last one.

    On SQLite every transaction holds the write lock from its start, so nobody else can take a seq
    meanwhile. On PostgreSQL a concurrent writer (worker, outbox) can: the insert then runs in a
    savepoint and retries with the next number."""
    transaction = session.sync_session.get_transaction()
    cached = session.info.get("run_event_seq")
    if cached is None or cached[0] is not transaction:  # counts are valid for one transaction only
        cached = session.info["run_event_seq"] = (transaction, {})
    seqs: dict[str, int] = cached[1]
    exclusive = session.bind.dialect.name == "sqlite"
    for attempt in range(5):
        if first and attempt == 0:
            last = 0
        elif run_id in seqs and attempt == 0:
            last = seqs[run_id]
        else:
            last = (await session.execute(
                select(func.max(RunEvent.seq)).where(RunEvent.run_id == run_id)
            )).scalar_one() or 0
        row = {"id": new_id("rev"), "run_id": run_id, "seq": last + 1, "type": type, "data": data or {},
               "created_at": utcnow()}
        if exclusive:
            await session.execute(_INSERT_RUN_EVENT, row)
        else:
            try:
                async with session.begin_nested():
                    await session.execute(_INSERT_RUN_EVENT, row)
            except IntegrityError:
                continue
        seqs[run_id] = last + 1
        return str(row["id"])
    raise RuntimeError(f"could not append an event to run {run_id}")
