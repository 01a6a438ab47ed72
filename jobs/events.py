"""Appending to the project's event feed and to a run's own event log.

The lowest layer that writes events, so that workers (here) and services (above) share one
implementation. Callers pass public fields only: never a secret.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from jobs.run_signals import note_changed
from models.store.events import insert_event, insert_run_event, last_run_event_seq


async def append_event(
    session: AsyncSession, *, project_id: str, type: str, data: dict[str, Any] | None = None,
    run_id: str | None = None, smith_id: str | None = None, deployment_id: str | None = None,
) -> str:
    return await insert_event(session, project_id=project_id, type=type, data=data, run_id=run_id,
                              smith_id=smith_id, deployment_id=deployment_id)


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
    seqs = _seqs(session)
    if first:
        last = 0
    elif run_id in seqs:
        last = seqs[run_id]
    else:
        last = await last_run_event_seq(session, run_id=run_id, lock=session.bind.dialect.name != "sqlite")
    event_id = await insert_run_event(session, run_id=run_id, seq=last + 1, type=type, data=data)
    seqs[run_id] = last + 1
    await note_changed(session, run_id)  # live views (streams, the console) hear it at commit
    return event_id


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

