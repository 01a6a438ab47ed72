"""The project's event feed and a run's own timeline, as written on every step.

The session's machinery around an insert cost several times the insert, and nothing loads event
rows as ORM objects in the transaction that writes them. How a run's events are numbered (and who
may write them concurrently) is ``jobs/events.py``'s rule; here are its statements.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, bindparam, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Event, Run, RunEvent
from models.store.hot import Hot, insert_all_columns
from models.types import new_id, utcnow

_INSERT_EVENT = insert_all_columns(Event.__table__)
_INSERT_RUN_EVENT = insert_all_columns(RunEvent.__table__)
_LOCK_RUN = Hot(select(Run.id).where(Run.id == bindparam("run_id")).with_for_update(key_share=True))
_LAST_SEQ = Hot(select(func.max(RunEvent.seq)).where(RunEvent.run_id == bindparam("run_id")))

# A run's last event number, for a statement on the run table to return beside the row (the claim).
# Written out: SQLAlchemy renders RETURNING columns unqualified on SQLite, and inside the subquery an
# unqualified ``id`` would be run_event's own.
LAST_SEQ_OF_RUN = literal_column(
    "(SELECT max(run_event.seq) FROM run_event WHERE run_event.run_id = run.id)", Integer)


async def insert_event(session: AsyncSession, *, project_id: str, type: str, data: dict[str, Any] | None,
                       run_id: str | None, smith_id: str | None, deployment_id: str | None) -> str:
    """One entry of the project's feed; its id."""
    event_id = new_id("evt")
    await _INSERT_EVENT.all(session, {
        "id": event_id, "project_id": project_id, "type": type, "data": data or {}, "run_id": run_id,
        "smith_id": smith_id, "deployment_id": deployment_id, "created_at": utcnow()})
    return event_id


async def insert_run_event(session: AsyncSession, *, run_id: str, seq: int, type: str,
                           data: dict[str, Any] | None) -> str:
    """Event number ``seq`` of the run's timeline; its id."""
    event_id = new_id("rev")
    await _INSERT_RUN_EVENT.all(session, {"id": event_id, "run_id": run_id, "seq": seq, "type": type,
                                          "data": data or {}, "created_at": utcnow()})
    return event_id


async def last_run_event_seq(session: AsyncSession, *, run_id: str, lock: bool) -> int:
    """The run's last event number (0 before its first). ``lock`` first locks the run's row
    (``FOR NO KEY UPDATE``), so writers of one run's events queue on that row; only PostgreSQL needs
    it (a SQLite transaction holds the write lock from its start)."""
    if lock:
        await _LOCK_RUN.all(session, {"run_id": run_id})
    found = await _LAST_SEQ.first(session, {"run_id": run_id})
    return (found[0] if found else None) or 0
