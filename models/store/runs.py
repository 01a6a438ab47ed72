"""The run table as a queue: create a run, claim it, hold its lease, change its status.

Runs on the hot path are plain values (``RunState``), never ORM objects: a claimed run is read
from the claim's own ``RETURNING``, a status change says whether it won and the caller replaces
its value. (Loading a claimed run through the ORM's ``UPDATE … RETURNING`` cost several times the
claim's SQL, and a detached ORM run kept current by hand was one rule too many: a stray attribute
set on it was silently never written.)
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

from sqlalchemy import and_, bindparam, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import Run, Thread
from models.store.events import LAST_SEQ_OF_RUN
from models.store.hot import Hot, insert_all_columns
from models.types import new_id, utcnow

_RUN = Run.__table__
_THREAD = Thread.__table__


class RunLike(Protocol):
    """What readers of a run use of it: a ``RunState`` or an ORM ``Run`` row."""

    id: str
    project_id: str
    smith_id: str
    thread_id: str | None
    deployment_id: str | None
    schedule_id: str | None
    source: str
    status: str
    run_metadata: dict[str, Any]
    usage: dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class RunState:
    """A run's row as plain values, its fields in the table's column order (a row reads straight
    into it). Change one with ``with_changes``; only the store writes."""

    id: str
    project_id: str
    smith_id: str
    thread_id: str | None
    status: str
    source: str
    input: list[dict[str, Any]]
    output: dict[str, Any]
    run_metadata: dict[str, Any]
    usage: dict[str, Any]
    error: dict[str, Any] | None
    deployment_id: str | None
    schedule_id: str | None
    scheduled_for: datetime | None
    attempts: int
    lease_owner: str | None
    lease_expires_at: datetime | None
    available_at: datetime
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime

    @classmethod
    def of(cls, run: Run) -> RunState:
        """The values of an ORM row (a run loaded by a service)."""
        return cls(*(getattr(run, field.name) for field in dataclasses.fields(cls)))

    def with_changes(self, changes: dict[str, Any]) -> RunState:
        return dataclasses.replace(self, **changes)




class Leased(NamedTuple):
    """A run this worker holds, and its last event number (its next event needs no lookup)."""

    run: RunState
    last_seq: int


def _leased(row: tuple[Any, ...] | None) -> Leased | None:
    if row is None:
        return None
    return Leased(RunState(*row[:-1]), row[-1] or 0)


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


_CLAIM = Hot(_claim_statement)
_RENEW = update(_RUN).where(_RUN.c.id == bindparam("run_id"), _RUN.c.status == "running",
                            _RUN.c.lease_owner == bindparam("worker")).values(lease_expires_at=bindparam("lease_until"))
# Not with the last event number, as the claim does: this UPDATE may wait for the run's row (a
# decision or a delivery writing its events), and on PostgreSQL a subquery then reads the snapshot
# from before the wait, so the number could be stale. A claimed row was free (SKIP LOCKED).
_HOLD = Hot(_RENEW.returning(*_RUN.c))
_RENEW_ONLY = Hot(_RENEW)


async def claim_next(session: AsyncSession, *, worker_id: str, lease_seconds: float) -> Leased | None:
    """Claim the next runnable run for ``worker_id`` (every run starts here), or None."""
    now = utcnow()
    return _leased(await _CLAIM.first(session, {"now": now, "worker": worker_id,
                                                 "lease_until": now + timedelta(seconds=lease_seconds)}))


async def hold_lease(session: AsyncSession, *, run_id: str, worker_id: str, lease_seconds: float) -> RunState | None:
    """The run, its lease extended, while ``worker_id`` still holds it; None when it was taken away
    (cancelled, expired and claimed by another worker). Every later step of a run starts here."""
    row = await _HOLD.first(session, {"run_id": run_id, "worker": worker_id,
                                      "lease_until": utcnow() + timedelta(seconds=lease_seconds)})
    return None if row is None else RunState(*row)


async def renew_lease(session: AsyncSession, *, run_id: str, worker_id: str, lease_seconds: float) -> bool:
    """Extend the lease while working (also during slow model calls); False means it was taken away."""
    return await _RENEW_ONLY.rowcount(session, {"run_id": run_id, "worker": worker_id,
                                           "lease_until": utcnow() + timedelta(seconds=lease_seconds)}) == 1


_STATUS_UPDATES: dict[tuple[tuple[str, ...], bool], Hot] = {}


def _status_update(columns: tuple[str, ...], leased: bool) -> Hot:
    """The conditional UPDATE for this set of columns, built once: building it each time, or the
    ORM's bulk-update path, cost more than running it."""
    key = (columns, leased)
    if key not in _STATUS_UPDATES:
        stmt = update(_RUN).where(_RUN.c.id == bindparam("w_id"), _RUN.c.status == bindparam("w_status"))
        if leased:
            stmt = stmt.where(_RUN.c.lease_owner == bindparam("w_lease"))
        _STATUS_UPDATES[key] = Hot(stmt.values({name: bindparam(name) for name in columns}))
    return _STATUS_UPDATES[key]


async def change_status(session: AsyncSession, *, run_id: str, expected: str, changes: dict[str, Any],
                        lease_owner: str | None = None) -> bool:
    """Write ``changes`` if the run is still ``expected`` (and, given ``lease_owner``, still held by
    it). False when someone else changed it first. ORM ``Run`` objects loaded in the session are not
    refreshed: whoever holds one refreshes it."""
    params = {**changes, "w_id": run_id, "w_status": expected, "w_lease": lease_owner}
    return await _status_update(tuple(changes), lease_owner is not None).rowcount(session, params) == 1


def queued_run_row(*, project_id: str, smith_id: str, thread_id: str, source: str, input: list[dict[str, Any]],
                   metadata: dict[str, Any], deployment_id: str | None, schedule_id: str | None,
                   scheduled_for: datetime | None, now: datetime) -> dict[str, Any]:
    """A new queued run, every column given (``insert_run`` applies no column defaults)."""
    return {"id": new_id("run"), "project_id": project_id, "smith_id": smith_id, "thread_id": thread_id,
            "status": "queued", "source": source, "input": input, "output": {}, "run_metadata": metadata,
            "usage": {}, "error": None, "deployment_id": deployment_id, "schedule_id": schedule_id,
            "scheduled_for": scheduled_for, "attempts": 0, "lease_owner": None, "lease_expires_at": None,
            "available_at": now, "created_at": now, "started_at": None, "finished_at": None, "updated_at": now}


_INSERT_RUN = insert_all_columns(_RUN)
_TOUCH_THREAD = Hot(update(_THREAD).where(_THREAD.c.id == bindparam("thread_id")).values(updated_at=bindparam("now")))
_THREAD_SMITH = Hot(select(_THREAD.c.smith_id).where(_THREAD.c.id == bindparam("thread_id")))
_THREAD_BY_KEY = Hot(select(_THREAD.c.id).where(_THREAD.c.smith_id == bindparam("smith_id"),
                                                _THREAD.c.external_key == bindparam("key")))


async def insert_run(session: AsyncSession, row: dict[str, Any]) -> None:
    """Store a ``queued_run_row`` and mark its thread as active (every inbound message's path)."""
    await _INSERT_RUN.all(session, row)
    await _TOUCH_THREAD.all(session, {"thread_id": row["thread_id"], "now": row["updated_at"]})


async def thread_owner(session: AsyncSession, *, thread_id: str) -> str | None:
    """The smith a thread belongs to (None: no such thread)."""
    row = await _THREAD_SMITH.first(session, {"thread_id": thread_id})
    return None if row is None else str(row[0])


async def thread_by_key(session: AsyncSession, *, smith_id: str, external_key: str) -> str | None:
    """The smith's thread for a conversation's key (a chat, a channel thread), if one exists."""
    row = await _THREAD_BY_KEY.first(session, {"smith_id": smith_id, "key": external_key})
    return None if row is None else str(row[0])
