"""Appending to the project's event feed and to a run's own event log.

The lowest layer that writes events, so that workers (here) and services (above) share one
implementation. Callers pass public fields only: never a secret.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models import Event, RunEvent
from models.types import new_id


async def append_event(
    session: AsyncSession, *, project_id: str, type: str, data: dict[str, Any] | None = None,
    run_id: str | None = None, smith_id: str | None = None, deployment_id: str | None = None,
) -> Event:
    # No flush: the insert goes out with the transaction's other rows, batched by the unit of work.
    event = Event(
        id=new_id("evt"), project_id=project_id, type=type, data=data or {}, run_id=run_id,
        smith_id=smith_id, deployment_id=deployment_id,
    )
    session.add(event)
    return event


async def append_run_event(
    session: AsyncSession, *, run_id: str, type: str, data: dict[str, Any] | None = None, first: bool = False
) -> RunEvent:
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
        event = RunEvent(id=new_id("rev"), run_id=run_id, seq=last + 1, type=type, data=data or {})
        if exclusive:
            session.add(event)
        else:
            try:
                async with session.begin_nested():
                    session.add(event)
            except IntegrityError:
                continue
        seqs[run_id] = last + 1
        return event
    raise RuntimeError(f"could not append an event to run {run_id}")
