"""Appending to the project's event feed and to a run's own event log.

The lowest layer that writes events, so that workers (here) and services (above) share one
implementation. Callers pass public fields only: never a secret.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, bindparam, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from jobs.run_signals import note_changed
from models import Event, Run, RunEvent
from models.hot import Hot, flush_pending, insert_all_columns
from models.types import new_id, utcnow

# Hot statements (models/hot.py): events are written on every step, and the session's machinery
# around an insert cost several times the insert. Rows they refer to (a run added just before) are
# flushed first; nothing loads event rows as ORM objects in the transaction that writes them.
_INSERT_EVENT = insert_all_columns(Event.__table__)
_INSERT_RUN_EVENT = insert_all_columns(RunEvent.__table__)


async def append_event(
    session: AsyncSession, *, project_id: str, type: str, data: dict[str, Any] | None = None,
    run_id: str | None = None, smith_id: str | None = None, deployment_id: str | None = None,
) -> str:
    await flush_pending(session)
    event_id = new_id("evt")
    await _INSERT_EVENT.all(session, {
        "id": event_id, "project_id": project_id, "type": type, "data": data or {}, "run_id": run_id,
        "smith_id": smith_id, "deployment_id": deployment_id, "created_at": utcnow()})
    return event_id


async def append_run_event(
    session: AsyncSession, *, run_id: str, type: str, data: dict[str, Any] | None = None, first: bool = False
) -> str:
    """The run's own timeline, numbered by ``seq`` (unique per run).

    The next number comes from the database once per run and transaction, then counts on. Writers of
    one run's events must not interleave: on SQLite every transaction holds the write lock from its
    start; on PostgreSQL the first event of a transaction locks the run's row (FOR NO KEY UPDATE), so
    writers queue on that row in the order they reach it. (Racing on the unique seq instead made two
    writers wait on each other: the outbox holding its entry and waiting for the run row, a decision
    holding the run row and waiting for the outbox's seq: a deadlock.) ``first`` skips the lookup for a
    run created in this transaction."""
    await flush_pending(session)
    seqs = _seqs(session)
    if first:
        last = 0
    elif run_id in seqs:
        last = seqs[run_id]
    else:
        if session.bind.dialect.name != "sqlite":
            await _LOCK_RUN.all(session, {"run_id": run_id})
        found = await _LAST_SEQ.first(session, {"run_id": run_id})
        last = (found[0] if found else None) or 0
    row = {"id": new_id("rev"), "run_id": run_id, "seq": last + 1, "type": type, "data": data or {},
           "created_at": utcnow()}
    await _INSERT_RUN_EVENT.all(session, row)
    seqs[run_id] = last + 1
    await note_changed(session, run_id)  # live views (streams, the console) hear it at commit
    return str(row["id"])


def _seqs(session: AsyncSession) -> dict[str, int]:
    """Last seq per run, as this transaction knows it (valid for one transaction only)."""
    transaction = session.sync_session.get_transaction()
    cached = session.info.get("run_event_seq")
    if cached is None or cached[0] is not transaction:
        cached = session.info["run_event_seq"] = (transaction, {})
    return cached[1]


def note_last_seq(session: AsyncSession, run_id: str, last: int | None) -> None:
    """A statement that already locked the run's row (the claim) also read its last seq: remember
    it, so the next event needs no lookup."""
    _seqs(session)[run_id] = last or 0


# Written out: SQLAlchemy renders RETURNING columns unqualified on SQLite, and inside the subquery an
# unqualified ``id`` would be run_event's own.
LAST_SEQ_OF_RUN = literal_column(
    "(SELECT max(run_event.seq) FROM run_event WHERE run_event.run_id = run.id)", Integer)
_LOCK_RUN = Hot(select(Run.id).where(Run.id == bindparam("run_id")).with_for_update(key_share=True))
_LAST_SEQ = Hot(select(func.max(RunEvent.seq)).where(RunEvent.run_id == bindparam("run_id")))
