"""Claiming runs from the run table (the table is the queue).

PostgreSQL: ``FOR UPDATE SKIP LOCKED`` lets many workers claim different rows without waiting.
SQLite: one writer at a time, so a single UPDATE ... WHERE id = (SELECT ...) is already atomic.
A run whose lease expired (its worker died) is claimable again: that is crash recovery.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import and_, bindparam, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from jobs.events import LAST_SEQ_OF_RUN, append_run_event, note_last_seq
from models import Run
from models.types import utcnow


def _claim_statement(postgres: bool) -> Any:
    """Built once per dialect: constructing this statement costs more than running it."""
    now = bindparam("now")
    earlier = aliased(Run)
    # One run at a time per conversation, in order: a thread's next run waits for the one before.
    blocked = exists().where(earlier.thread_id == Run.thread_id, earlier.id < Run.id,
                             or_(earlier.status == "queued",
                                 and_(earlier.status == "running", earlier.lease_expires_at >= now)))

    def first(*where: Any, order: Any) -> Any:
        candidate = select(Run.id).where(*where, ~blocked).order_by(order).limit(1)
        if postgres:
            candidate = candidate.with_for_update(skip_locked=True)
        return candidate.scalar_subquery()

    # Two candidates, each walking its own index range in order and stopping at the first runnable
    # run: runs whose worker died (lease expired) first, then queued runs by availability. (One query
    # with OR made SQLite collect and sort every queued run on each claim.)
    candidate = func.coalesce(
        first(Run.status == "running", Run.lease_expires_at < now, order=Run.lease_expires_at),
        first(Run.status == "queued", Run.available_at <= now, order=Run.available_at),
    )
    return (
        update(Run)
        .where(Run.id == candidate)
        .values(status="running", lease_owner=bindparam("worker"), lease_expires_at=bindparam("lease_until"),
                attempts=Run.attempts + 1, updated_at=now, started_at=func.coalesce(Run.started_at, now))
        .returning(Run, LAST_SEQ_OF_RUN)
        .execution_options(synchronize_session=False, populate_existing=True)
    )


_CLAIM = {False: _claim_statement(False), True: _claim_statement(True)}


async def claim_run(session: AsyncSession, *, worker_id: str, lease_seconds: float) -> Run | None:
    now = utcnow()
    stmt = _CLAIM[session.bind.dialect.name == "postgresql"]
    params = {"now": now, "worker": worker_id, "lease_until": now + timedelta(seconds=lease_seconds)}
    row = (await session.execute(stmt, params)).first()
    if row is None:
        return None
    run, last_seq = row
    note_last_seq(session, run.id, last_seq)
    await append_run_event(session, run_id=run.id, type="run.started" if run.attempts == 1 else "run.resumed",
                           data={"attempt": run.attempts, "worker": worker_id})
    return run


async def renew_lease(session: AsyncSession, *, run_id: str, worker_id: str, lease_seconds: float) -> bool:
    """Extend the lease while working; False means the run was taken away (cancelled, expired)."""
    result = await session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status == "running", Run.lease_owner == worker_id)
        .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
    )
    return result.rowcount == 1  # type: ignore[attr-defined]
