"""Claiming runs from the run table (the table is the queue), and holding them while working.

PostgreSQL: ``FOR UPDATE SKIP LOCKED`` lets many workers claim different rows without waiting.
SQLite: one writer at a time, so a single UPDATE ... WHERE id = (SELECT ...) is already atomic.
A run whose lease expired (its worker died) is claimable again: that is crash recovery. The
statements are the store's (``models/store/runs.py``); the run comes back as a plain ``RunState``.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from jobs.events import append_run_event, note_last_seq
from models.store import runs as store
from models.store.runs import RunState


async def claim_run(session: AsyncSession, *, worker_id: str, lease_seconds: float) -> RunState | None:
    """The next runnable run, now held by ``worker_id``, with its ``run.started`` (or ``run.resumed``) event."""
    claimed = await store.claim_next(session, worker_id=worker_id, lease_seconds=lease_seconds)
    if claimed is None:
        return None
    run = claimed.run
    note_last_seq(session, run.id, claimed.last_seq)
    await append_run_event(session, run_id=run.id, type="run.started" if run.attempts == 1 else "run.resumed",
                           data={"attempt": run.attempts, "worker": worker_id})
    return run


async def hold_run(session: AsyncSession, *, run_id: str, worker_id: str, lease_seconds: float) -> RunState | None:
    """The run, its lease extended, if ``worker_id`` still holds it; None when it was cancelled or
    taken over (one statement, where loading the run and renewing its lease were two)."""
    return await store.hold_lease(session, run_id=run_id, worker_id=worker_id, lease_seconds=lease_seconds)
