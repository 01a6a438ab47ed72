"""Claiming runs from the run table (the table is the queue).

PostgreSQL: ``FOR UPDATE SKIP LOCKED`` lets many workers claim different rows without waiting.
SQLite: one writer at a time, so a single UPDATE ... WHERE id = (SELECT ...) is already atomic.
A run whose lease expired (its worker died) is claimable again: that is crash recovery.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import and_, bindparam, exists, func, inspect, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import instance_state

from jobs.events import LAST_SEQ_OF_RUN, append_run_event, note_last_seq
from models import Run
from models.hot import Hot, flush_pending
from models.types import utcnow

_RUN = Run.__table__


def _claim_statement(dialect: str) -> Any:
    """Built once per dialect: constructing this statement costs more than running it."""
    now = bindparam("now")
    earlier = _RUN.alias("earlier")
    # One run at a time per conversation, in order: a thread's next run waits for the one before.
    blocked = exists().where(earlier.c.thread_id == _RUN.c.thread_id, earlier.c.id < _RUN.c.id,
                             or_(earlier.c.status == "queued",
                                 and_(earlier.c.status == "running", earlier.c.lease_expires_at >= now)))

    def first(*where: Any, order: Any) -> Any:
        candidate = select(_RUN.c.id).where(*where, ~blocked).order_by(order).limit(1)
        if dialect == "postgresql":
            candidate = candidate.with_for_update(skip_locked=True)
        return candidate.scalar_subquery()

    # Two candidates, each walking its own index range in order and stopping at the first runnable
    # run: runs whose worker died (lease expired) first, then queued runs by availability. (One query
    # with OR made SQLite collect and sort every queued run on each claim.)
    candidate = func.coalesce(
        first(_RUN.c.status == "running", _RUN.c.lease_expires_at < now, order=_RUN.c.lease_expires_at),
        first(_RUN.c.status == "queued", _RUN.c.available_at <= now, order=_RUN.c.available_at),
    )
    return (
        update(_RUN)
        .where(_RUN.c.id == candidate)
        .values(status="running", lease_owner=bindparam("worker"), lease_expires_at=bindparam("lease_until"),
                attempts=_RUN.c.attempts + 1, updated_at=now, started_at=func.coalesce(_RUN.c.started_at, now))
        .returning(*_RUN.c, LAST_SEQ_OF_RUN)
    )


# Hot (models/hot.py): every run starts here. The row comes back as a Run built the way the ORM
# builds loaded rows (no __init__, no validation), detached: the loop reads it, ``transition`` keeps
# it current with set_committed_value, and nothing flushes it (loading it through the session's
# ORM UPDATE ... RETURNING cost several times the claim's SQL).
_CLAIM = Hot(_claim_statement)
_COLUMNS = tuple(column.key for column in _RUN.c)
_MAPPER = inspect(Run)


def _detached_run(values: dict[str, Any]) -> Run:
    run = _MAPPER.class_manager.new_instance()
    state = instance_state(run)
    state.dict.update(values)
    state.key = _MAPPER.identity_key_from_primary_key((values["id"],))
    return run


async def claim_run(session: AsyncSession, *, worker_id: str, lease_seconds: float) -> Run | None:
    now = utcnow()
    params = {"now": now, "worker": worker_id, "lease_until": now + timedelta(seconds=lease_seconds)}
    await flush_pending(session)
    row = await _CLAIM.first(session, params)
    if row is None:
        return None
    run, last_seq = _detached_run(dict(zip(_COLUMNS, row, strict=False))), row[-1]
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
