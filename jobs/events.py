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
    event = Event(
        id=new_id("evt"), project_id=project_id, type=type, data=data or {}, run_id=run_id,
        smith_id=smith_id, deployment_id=deployment_id,
    )
    session.add(event)
    await session.flush()
    return event


async def append_run_event(
    session: AsyncSession, *, run_id: str, type: str, data: dict[str, Any] | None = None, first: bool = False
) -> RunEvent:
    """The run's own timeline; ``seq`` is unique per run, so two writers cannot interleave silently.
    ``first`` skips the lookup for a run created in this transaction."""
    for attempt in range(5):
        last = 0 if first and attempt == 0 else (await session.execute(
            select(func.max(RunEvent.seq)).where(RunEvent.run_id == run_id)
        )).scalar_one()
        event = RunEvent(id=new_id("rev"), run_id=run_id, seq=(last or 0) + 1, type=type, data=data or {})
        try:
            async with session.begin_nested():  # a concurrent writer (worker, deliverer) took the seq
                session.add(event)
        except IntegrityError:
            continue
        return event
    raise RuntimeError(f"could not append an event to run {run_id}")
